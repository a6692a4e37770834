//! A run's figures: the metrics table (per class and overall, with deltas against a second prediction
//! set), the confusion matrix, the per-image table sorted worst first, and the comparison view of one
//! image (truth filled, predictions outlined, coloured by outcome).

use std::sync::Arc;

use lamina_runs::metrics::{Figures, Outcome, Report};
use lamina_runs::view::outcome_colour;
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::Clamped;
use web_sys::{HtmlCanvasElement, ImageData};

use crate::features::runs;
use crate::state::AppState;

/// The columns of the metrics table: key (as in `lamina metrics --json`), heading.
const COLUMNS: [(&str, &str); 13] = [
    ("n_gt", "truth"),
    ("n_pred", "pred"),
    ("precision", "P"),
    ("recall", "R"),
    ("f1", "F1"),
    ("mean_iou", "IoU"),
    ("dice", "Dice"),
    ("pq", "PQ"),
    ("dq", "DQ"),
    ("sq", "SQ"),
    ("aji", "AJI"),
    ("map", "mAP"),
    ("ap50", "AP50"),
];

fn value(f: &Figures, key: &str) -> Option<f64> {
    Some(match key {
        "n_gt" => f.n_gt as f64,
        "n_pred" => f.n_pred as f64,
        "precision" => f.precision,
        "recall" => f.recall,
        "f1" => f.f1,
        "mean_iou" => f.mean_iou,
        "dice" => f.dice,
        "pq" => f.pq,
        "dq" => f.dq,
        "sq" => f.sq,
        "aji" => f.aji?,
        "map" => f.map?,
        "ap50" => f.ap50?,
        _ => return None,
    })
}

fn show(key: &str, v: Option<f64>) -> String {
    match v {
        None => "–".into(),
        Some(v) if key.starts_with("n_") => format!("{v:.0}"),
        Some(v) => format!("{v:.4}"),
    }
}

fn row(name: String, a: &Figures, b: Option<&Figures>) -> impl IntoView {
    let cells = COLUMNS
        .iter()
        .map(|(key, _)| {
            let va = value(a, key);
            let delta = b.and_then(|b| Some(va? - value(b, key)?));
            let delta_view = delta.map(|d| {
                let class = if d > 0.0 { "delta up" } else if d < 0.0 { "delta down" } else { "delta" };
                let text = if key.starts_with("n_") { format!("{d:+.0}") } else { format!("{d:+.4}") };
                view! { <span class=class data-testid="delta">{text}</span> }
            });
            view! {
                <td data-class=name.clone() data-metric=*key data-value=va.map(|v| v.to_string()).unwrap_or_default()>
                    {show(key, va)} {delta_view}
                </td>
            }
        })
        .collect_view();
    view! { <tr><th>{name.clone()}</th>{cells}</tr> }
}

#[component]
pub fn MetricsTables(state: AppState) -> impl IntoView {
    let r = state.runs;
    move || {
        let a: Arc<Report> = r.report_a.get()?;
        let b = r.report_b.get();
        let heads = COLUMNS
            .iter()
            .map(|(_, h)| view! { <th>{*h}</th> })
            .collect_view();
        let mut rows =
            vec![row("all".into(), &a.overall, b.as_ref().map(|b| &b.overall)).into_any()];
        for (name, f) in &a.classes {
            let fb = b.as_ref().and_then(|b| b.classes.get(name));
            rows.push(row(name.clone(), f, fb).into_any());
        }
        let pq_line = format!(
            "bPQ {} · mPQ {} · {} images · IoU > {} · score ≥ {}",
            show("", a.bpq),
            show("", a.mpq),
            a.images.len(),
            a.iou_threshold,
            a.score_threshold
        );
        let confusion = {
            let c = &a.confusion;
            let used: Vec<usize> = (0..c.classes.len())
                .filter(|&i| {
                    c.counts[i].iter().any(|&n| n > 0) || c.counts.iter().any(|row| row[i] > 0)
                })
                .collect();
            let head = used
                .iter()
                .map(|&j| view! { <th>{c.classes[j].clone()}</th> })
                .collect_view();
            let body = used
                .iter()
                .map(|&i| {
                    let cells = used
                        .iter()
                        .map(|&j| view! { <td class:diagonal=i == j>{c.counts[i][j]}</td> })
                        .collect_view();
                    view! { <tr><th>{c.classes[i].clone()}</th>{cells}</tr> }
                })
                .collect_view();
            view! {
                <table class="confusion" data-testid="confusion">
                    <caption>"Matched pairs: truth class (rows) × predicted class (columns)"</caption>
                    <tr><th></th>{head}</tr>{body}
                </table>
            }
        };
        Some(view! {
            <div class="metrics">
                <table data-testid="metrics-table"><tr><th></th>{heads}</tr>{rows}</table>
                <p class="meta" data-testid="pq-line">{pq_line}</p>
                {confusion}
            </div>
        })
    }
}

#[component]
pub fn ImageTable(state: AppState) -> impl IntoView {
    let r = state.runs;
    // What "worst" means: the lowest F1, PQ or AJI, or the most errors (FP + FN).
    let sort_by = RwSignal::new("f1".to_owned());
    let rows = move || {
        let a = r.report_a.get()?;
        let bundle = r.bundle.get_value()?;
        let mut images = a.images.clone();
        // Worst first: lowest F1, then most errors.
        images.sort_by(|x, y| {
            x.f1.total_cmp(&y.f1)
                .then((y.fp + y.fn_).cmp(&(x.fp + x.fn_)))
        });
        let picked = r.picked.get();
        Some(
            images
                .into_iter()
                .map(|im| {
                    let asset_id = bundle.assets.iter().find(|a| a.name == im.name).map(|a| a.id.clone());
                    let name = im.name.clone();
                    let checked = picked.contains(&im.name);
                    let open = move |_| {
                        if let Some(id) = asset_id.clone() {
                            spawn_local(runs::compare_image(state, id));
                        }
                    };
                    let toggle = {
                        let name = name.clone();
                        move |_| r.picked.update(|p| {
                            if let Some(i) = p.iter().position(|n| *n == name) {
                                p.remove(i);
                            } else {
                                p.push(name.clone());
                            }
                        })
                    };
                    view! {
                        <tr data-testid="run-image">
                            <td><input type="checkbox" data-testid="pick-image" prop:checked=checked on:change=toggle/></td>
                            <td class="name link" on:click=open>{name}</td>
                            <td>{im.tp}</td><td>{im.fp}</td><td>{im.fn_}</td>
                            <td>{format!("{:.3}", im.f1)}</td><td>{format!("{:.3}", im.pq)}</td>
                            <td>{im.aji.map(|v| format!("{v:.3}")).unwrap_or_else(|| "–".into())}</td>
                        </tr>
                    }
                })
                .collect_view(),
        )
    };
    view! {
        <div class="image-table">
            <div class="row">
                <label>"Worst first by "
                    <select data-testid="sort-images" on:change=move |ev| sort_by.set(event_target_value(&ev))>
                        <option value="f1">"F1"</option>
                        <option value="pq">"PQ"</option>
                        <option value="aji">"AJI"</option>
                        <option value="errors">"errors (FP + FN)"</option>
                    </select>
                </label>
                <button data-testid="send-to-labeling" disabled=move || r.picked.with(Vec::is_empty)
                    on:click=move |_| spawn_local(runs::send_to_labeling(state))>
                    {move || format!("Send {} picked to labeling", r.picked.with(Vec::len))}
                </button>
            </div>
            <table>
                <tr><th></th><th>"image"</th><th>"TP"</th><th>"FP"</th><th>"FN"</th><th>"F1"</th><th>"PQ"</th><th>"AJI"</th></tr>
                {rows}
            </table>
        </div>
    }
}

fn paint(canvas: &HtmlCanvasElement, width: u32, height: u32, rgba: &[u8]) {
    canvas.set_width(width);
    canvas.set_height(height);
    let Some(ctx) = super::context_2d(canvas) else {
        return;
    };
    if let Ok(data) = ImageData::new_with_u8_clamped_array_and_sh(Clamped(rgba), width, height) {
        let _ = ctx.put_image_data(&data, 0.0, 0.0);
    }
}

#[component]
pub fn Comparison(state: AppState) -> impl IntoView {
    let r = state.runs;
    let truth_canvas = NodeRef::<leptos::html::Canvas>::new();
    let pred_canvas = NodeRef::<leptos::html::Canvas>::new();
    Effect::new(move |_| {
        let (Some(c), Some(t), Some(p)) =
            (r.comparison.get(), truth_canvas.get(), pred_canvas.get())
        else {
            return;
        };
        paint(&t, c.width, c.height, &c.truth_rgba);
        paint(&p, c.width, c.height, &c.predictions_rgba);
    });
    let legend = move || {
        let c = r.comparison.get()?;
        let items = [
            (Outcome::Matched, "matched", c.counts[0]),
            (Outcome::Missed, "missed", c.counts[1]),
            (Outcome::FalsePositive, "false positive", c.counts[2]),
            (Outcome::BelowScore, "below score", c.counts[3]),
        ]
        .into_iter()
        .map(|(o, label, n)| {
            view! { <span class="legend-item" data-testid=format!("legend-{}", label.replace(' ', "-"))>
                <i style=format!("background:{}", outcome_colour(o))></i>{format!("{label} {n}")}</span> }
        })
        .collect_view();
        Some(view! { <div class="legend"><strong>{c.name.clone()}</strong>" "{items}</div> })
    };
    view! {
        <div class="comparison" data-testid="comparison" class:hidden=move || r.comparison.with(Option::is_none)>
            {legend}
            <div class="row">
                <label><input type="checkbox" data-testid="show-truth" prop:checked=move || r.show_truth.get()
                    on:change=move |ev| r.show_truth.set(event_target_checked(&ev))/>" truth (filled)"</label>
                <label><input type="checkbox" data-testid="show-predictions" prop:checked=move || r.show_predictions.get()
                    on:change=move |ev| r.show_predictions.set(event_target_checked(&ev))/>" predictions (outlined)"</label>
                <label>"opacity " <input type="range" min="0" max="1" step="0.05" data-testid="opacity"
                    prop:value=move || r.opacity.get().to_string()
                    on:input=move |ev| if let Ok(v) = event_target_value(&ev).parse() { r.opacity.set(v) }/></label>
            </div>
            <div class="stack">
                <img data-testid="compare-image" src=move || r.comparison.get().map(|c| c.image_url).unwrap_or_default()/>
                <canvas node_ref=truth_canvas data-testid="truth-layer"
                    style=move || format!("opacity:{}", if r.show_truth.get() { r.opacity.get() } else { 0.0 })></canvas>
                <canvas node_ref=pred_canvas data-testid="prediction-layer"
                    style=move || format!("opacity:{}", if r.show_predictions.get() { r.opacity.get() } else { 0.0 })></canvas>
            </div>
        </div>
    }
}
