//! The model-runs page: the project's runs and the form that makes one (left), the chosen run with its
//! export, prediction import, thresholds and metrics (`run_metrics.rs`) on the right.

use lamina_runs::run::RunSpec;
use lamina_runs::split::SplitFractions;
use leptos::prelude::*;
use leptos::task::spawn_local;
use web_sys::HtmlInputElement;

use super::run_metrics::{Comparison, ImageTable, MetricsTables};
use crate::features::runs::{self, RunSource};
use crate::state::AppState;

#[component]
fn NewRunForm(state: AppState) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let description = RwSignal::new(String::new());
    let source = RwSignal::new(RunSource::Submitted);
    let split = RwSignal::new("80,10,10".to_owned());
    let seed = RwSignal::new("0".to_owned());
    let stratify = RwSignal::new(String::new());
    // Metadata fields of the project's images, for stratifying.
    let fields = move || {
        let mut keys: Vec<String> = state.assets.with(|all| {
            all.iter()
                .flat_map(|r| r.asset.metadata.keys().cloned())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect()
        });
        keys.retain(|k| k != "split");
        keys.into_iter()
            .map(|k| view! { <option value=k.clone()>{k.clone()}</option> })
            .collect_view()
    };
    let create = move |_| {
        let fractions = match SplitFractions::parse(&split.get_untracked()) {
            Ok(f) => f,
            Err(e) => return state.error(format!("The run was not made: {e}")),
        };
        let Ok(seed) = seed.get_untracked().trim().parse::<u64>() else {
            return state.error("The run was not made: the seed is a whole number (0 or more)");
        };
        let field = stratify.get_untracked();
        let spec = RunSpec {
            name: name.get_untracked().trim().to_owned(),
            description: description.get_untracked(),
            seed,
            fractions,
            stratify: (!field.is_empty()).then_some(field),
        };
        spawn_local(runs::create(state, spec, source.get_untracked()));
    };
    view! {
        <form class="new-run" on:submit=|ev| ev.prevent_default()>
            <h3>"New run"</h3>
            <input placeholder="name" data-testid="run-name" prop:value=move || name.get()
                on:input=move |ev| name.set(event_target_value(&ev))/>
            <input placeholder="description" data-testid="run-description"
                on:input=move |ev| description.set(event_target_value(&ev))/>
            <label>"Images "
                <select data-testid="run-source" on:change=move |ev| source.set(
                    match event_target_value(&ev).as_str() { "labeled" => RunSource::Labeled, "done" => RunSource::Done, _ => RunSource::Submitted })>
                    <option value="submitted">"submitted"</option>
                    <option value="done">"done (approved in review)"</option>
                    <option value="labeled">"all labeled"</option>
                </select>
            </label>
            <label title="train, validation, test">"Split "
                <input class="short" data-testid="run-split" prop:value=move || split.get()
                    on:input=move |ev| split.set(event_target_value(&ev))/>
            </label>
            <label>"Seed "
                <input class="short" data-testid="run-seed" prop:value=move || seed.get()
                    on:input=move |ev| seed.set(event_target_value(&ev))/>
            </label>
            <label title="Split each value of this metadata field in proportion">"Stratify by "
                <select data-testid="run-stratify" on:change=move |ev| stratify.set(event_target_value(&ev))>
                    <option value="">"nothing"</option>
                    {fields}
                </select>
            </label>
            <button on:click=create data-testid="run-create">"Make run"</button>
        </form>
    }
}

#[component]
fn RunList(state: AppState) -> impl IntoView {
    let rows = move || {
        let chosen = state.runs.run_id.get();
        state
            .runs
            .runs
            .get()
            .into_iter()
            .map(|r| {
                let id = r.id.clone();
                let counts: Vec<String> = r.info.counts.values().map(|n| n.to_string()).collect();
                view! {
                    <li data-testid="run-row" class:current=chosen.as_deref() == Some(r.id.as_str())
                        on:click=move |_| spawn_local(runs::choose_run(state, Some(id.clone())))>
                        <span class="name">{r.info.spec.name.clone()}</span>
                        <span class="meta">{counts.join(" / ")}</span>
                    </li>
                }
            })
            .collect_view()
    };
    view! { <ul class="run-list">{rows}</ul> }
}

#[component]
fn PredictionControls(state: AppState) -> impl IntoView {
    let r = state.runs;
    let drop_unmapped = RwSignal::new(false);
    let on_file = move |ev: leptos::ev::Event| {
        let input: HtmlInputElement = event_target(&ev);
        let file = input.files().and_then(|l| l.get(0));
        input.set_value("");
        if let Some(file) = file {
            spawn_local(runs::import_predictions(
                state,
                file,
                drop_unmapped.get_untracked(),
            ));
        }
    };
    let options = move |selected: Option<String>, none: &'static str| {
        let mut v =
            vec![view! { <option value="" selected=selected.is_none()>{none}</option> }.into_any()];
        for s in r.sets.get().into_iter().rev() {
            let is = selected.as_deref() == Some(s.id.as_str());
            v.push(view! { <option value=s.id.clone() selected=is>{format!("{} ({})", s.name, s.count)}</option> }.into_any());
        }
        v
    };
    let pick = |slot: RwSignal<Option<String>>| {
        move |ev: leptos::ev::Event| {
            let v = event_target_value(&ev);
            slot.set((!v.is_empty()).then_some(v));
            spawn_local(runs::measure(state));
        }
    };
    // IoU threshold in [0, 1), score threshold in [0, 1].
    let threshold = |signal: RwSignal<f64>, max_inclusive: bool| {
        move |ev: leptos::ev::Event| {
            let v = event_target_value(&ev)
                .trim()
                .parse::<f64>()
                .unwrap_or(f64::NAN);
            let ok = v.is_finite() && v >= 0.0 && (v < 1.0 || (max_inclusive && v == 1.0));
            if ok {
                signal.set(v);
                spawn_local(runs::measure(state));
            } else {
                state.error("Thresholds are numbers from 0 to 1 (the IoU one below 1)");
            }
        }
    };
    view! {
        <div class="predictions">
            <label class="button" title="COCO results JSON, a zip of YOLO-seg .txt files, one .txt, or a Lamina bundle">"Import predictions"
                <input type="file" accept=".json,.zip,.txt,application/json,application/zip" data-testid="import-predictions" on:change=on_file/>
            </label>
            <label><input type="checkbox" data-testid="drop-unmapped" prop:checked=move || drop_unmapped.get()
                on:change=move |ev| drop_unmapped.set(event_target_checked(&ev))/>" leave out classes not in the ontology"</label>
            <div class="row">
                <label>"Predictions " <select data-testid="set-a" on:change=pick(r.set_a)>{move || options(r.set_a.get(), "none")}</select></label>
                <label>"compared with " <select data-testid="set-b" on:change=pick(r.set_b)>{move || options(r.set_b.get(), "nothing")}</select></label>
            </div>
            <div class="row">
                <label>"Images " <select data-testid="split" on:change=move |ev| {
                    let v = event_target_value(&ev);
                    r.split.set((!v.is_empty()).then_some(v));
                    spawn_local(runs::measure(state));
                }>
                    <option value="test" selected=move || r.split.get().as_deref() == Some("test")>"test"</option>
                    <option value="val">"validation"</option>
                    <option value="train">"train"</option>
                    <option value="" selected=move || r.split.get().is_none()>"all"</option>
                </select></label>
                <label>"IoU > " <input class="short" data-testid="iou" prop:value=move || r.iou.get().to_string() on:change=threshold(r.iou, false)/></label>
                <label>"score ≥ " <input class="short" data-testid="score" prop:value=move || r.score.get().to_string() on:change=threshold(r.score, true)/></label>
            </div>
        </div>
    }
}

#[component]
fn RunDetail(state: AppState) -> impl IntoView {
    let r = state.runs;
    move || {
        let run = r.run()?;
        let counts: Vec<String> = run
            .info
            .counts
            .iter()
            .map(|(s, n)| format!("{} {n}", s.as_str()))
            .collect();
        let f = run.info.spec.fractions;
        let stratified = run
            .info
            .spec
            .stratify
            .clone()
            .map(|s| format!(", stratified by {s}"))
            .unwrap_or_default();
        Some(view! {
            <section class="run-detail">
                <h2 data-testid="run-title">{run.info.spec.name.clone()}</h2>
                <p class="meta" data-testid="run-counts">{format!(
                    "{} · split {}/{}/{} seed {}{stratified} · {}",
                    counts.join(", "), f.train, f.val, f.test, run.info.spec.seed, run.info.created
                )}</p>
                <p class="meta">{run.info.spec.description.clone()}</p>
                <div class="row">
                    <button data-testid="run-export" on:click=move |_| spawn_local(runs::export_zip(state))
                        title="bundle.json with each image's split, COCO per split, a YOLO-seg dataset (data.yaml, images, labels)">"Export run (zip)"</button>
                    <button on:click=move |_| {
                        let ok = web_sys::window().and_then(|w| w.confirm_with_message("Delete this run and its predictions? The project's labels stay.").ok()).unwrap_or(false);
                        if ok { spawn_local(runs::delete_run(state)) }
                    }>"Delete run"</button>
                </div>
                <PredictionControls state/>
                <MetricsTables state/>
                <div class="run-bottom">
                    <ImageTable state/>
                    <Comparison state/>
                </div>
            </section>
        })
    }
}

#[component]
pub fn RunsPage(state: AppState) -> impl IntoView {
    // The runs of whichever project is open.
    Effect::new(move |_| {
        let _ = state.project_id.get();
        spawn_local(async move {
            runs::reload(state).await;
            if state.runs.run_id.get_untracked().is_none() {
                runs::choose_run(state, None).await;
            }
        });
    });
    view! {
        <div class="runs-page" data-testid="runs-page">
            <aside class="images">
                <h2>"Model runs " <small data-testid="run-count">{move || state.runs.runs.with(Vec::len)}</small></h2>
                <RunList state/>
                <NewRunForm state/>
            </aside>
            <RunDetail state/>
        </div>
    }
}
