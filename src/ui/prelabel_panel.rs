//! Pre-labeling: the run form (which images, settings, the model's classes mapped to the project's,
//! where the images go), the preview, the run's progress with Cancel, the offer to resume a run that
//! stopped; and, beside the labels, the open image's pending pre-labels with accept and delete.

use lamina_core::edit::instance_from_mask;
use lamina_core::labels::{Instance, Provenance, Tool};
use lamina_core::overlay::compose_overlay_rgba;
use lamina_core::prelabel::{MappedTo, PrelabelSettings};
use lamina_core::review::Stage;
use lamina_core::rle::Rle;
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::Clamped;
use web_sys::ImageData;

use crate::editing::prelabel as edits;
use crate::features::prelabel;
use crate::state::prelabel::{PreviewImage, Scope};
use crate::state::AppState;

/// A number field of the settings: `set` applies a parsed value; a value that does not parse is left.
fn setting_input(
    state: AppState,
    testid: &'static str,
    label: &'static str,
    read: fn(&PrelabelSettings) -> String,
    set: fn(&mut PrelabelSettings, f64),
) -> impl IntoView {
    let ui = state.prelabel;
    view! {
        <label>{label}
            <input type="number" step="any" data-testid=testid
                prop:value=move || ui.settings.get().map(|s| read(&s)).unwrap_or_default()
                on:change=move |ev| {
                    if let Ok(v) = event_target_value(&ev).trim().parse::<f64>() {
                        ui.settings.update(|s| if let Some(s) = s { set(s, v) });
                    }
                }/>
        </label>
    }
}

#[component]
pub fn PrelabelPanel(state: AppState) -> impl IntoView {
    let ui = state.prelabel;
    let shown = move || {
        ui.open.get() || ui.running.with(Option::is_some) || ui.interrupted.with(Option::is_some)
    };
    let count = move || prelabel::selection(state).len();
    let unmapped = move || {
        let classes = prelabel::model_classes(state);
        lamina_core::prelabel::unmapped(&classes, &ui.mapping.get(), &state.ontology())
    };
    let mapping_rows = move || {
        let ontology = state.ontology();
        prelabel::model_classes(state)
            .into_iter()
            .map(|class| {
                let current = ui.mapping.with(|m| m.get(&class).cloned());
                let value = match &current {
                    Some(MappedTo::Class(id)) => id.clone(),
                    Some(MappedTo::Ignored) => "__ignore".into(),
                    None => String::new(),
                };
                let options = ontology
                    .classes
                    .iter()
                    .map(|c| {
                        let selected = value == c.id;
                        view! { <option value=c.id.clone() selected=selected>{c.name.clone()}</option> }
                    })
                    .collect_view();
                let key = class.clone();
                view! {
                    <label>{format!("model class \u{201c}{class}\u{201d} \u{2192} ")}
                        <select data-testid=format!("prelabel-map-{class}") on:change=move |ev| {
                            let v = event_target_value(&ev);
                            ui.mapping.update(|m| match v.as_str() {
                                "" => { m.remove(&key); }
                                "__ignore" => { m.insert(key.clone(), MappedTo::Ignored); }
                                id => { m.insert(key.clone(), MappedTo::Class(id.to_owned())); }
                            });
                        }>
                            <option value="" selected=value.is_empty()>"choose…"</option>
                            {options}
                            <option value="__ignore" selected=value == "__ignore">"ignore"</option>
                        </select>
                    </label>
                }
            })
            .collect_view()
    };
    let progress = move || {
        ui.running.with(|r| {
            r.as_ref().map(|r| {
                let rate = r
                    .rate
                    .map(|v| format!(", {v:.2} images/s"))
                    .unwrap_or_default();
                format!(
                    "{} of {} images, {} pre-labels, {} worker(s){rate}",
                    r.job.done(),
                    r.job.asset_ids.len(),
                    r.job.instances,
                    r.workers
                )
            })
        })
    };
    let interrupted = move || {
        ui.interrupted.with(|j| {
            j.as_ref().map(|j| {
                format!(
                    "A pre-label run with {} stopped after {} of {} images.",
                    j.model_id,
                    j.done(),
                    j.asset_ids.len()
                )
            })
        })
    };
    let previews = move || {
        // Each model class drawn in the colour of the project class it maps to.
        let ontology = state.ontology();
        let colours: Vec<String> = prelabel::model_classes(state)
            .iter()
            .map(|c| match ui.mapping.with(|m| m.get(c).cloned()) {
                Some(MappedTo::Class(id)) => ontology.class(&id).map(|c| c.color.clone()),
                _ => None,
            })
            .map(|c| c.unwrap_or_else(|| "#9e9e9e".into()))
            .collect();
        ui.preview
            .get()
            .into_iter()
            .map(|p| view! { <PreviewTile preview=p colours=colours.clone()/> })
            .collect_view()
    };
    let source = move || match ui.yolo.get() {
        Some(y) => format!(
            "{} (YOLO-seg, {}×{} input, classes: {})",
            y.file_name,
            y.input,
            y.input,
            y.classes.join(", ")
        ),
        None => match state.model.get() {
            crate::state::model::ModelStatus::Ready(m) => format!("{} (automatic mode)", m.id),
            _ => "no segment model loaded".into(),
        },
    };
    view! {
        <Show when=shown>
            <section class="prelabel" data-testid="prelabel-panel">
                <h2>"Pre-label with the model"</h2>
                <Show when=move || ui.interrupted.with(Option::is_some)>
                    <p class="interrupted" data-testid="prelabel-interrupted">{interrupted}
                        <button data-testid="prelabel-resume" on:click=move |_| spawn_local(prelabel::run::resume(state))>"Resume"</button>
                        <button data-testid="prelabel-discard" on:click=move |_| spawn_local(prelabel::run::discard(state))>"Forget it"</button>
                    </p>
                </Show>
                <Show when=move || ui.running.with(Option::is_some)>
                    <p data-testid="prelabel-progress">{progress}
                        <button data-testid="prelabel-cancel" on:click=move |_| prelabel::run::cancel(state)>"Cancel"</button>
                    </p>
                </Show>
                <Show when=move || ui.open.get() && ui.running.with(Option::is_none)>
                    <div class="row">
                        <span>"Model: " <b data-testid="prelabel-model">{source}</b></span>
                        <label class="button" title="An instance-segmentation ONNX exported by ultralytics (YOLOv8/YOLO11-seg)">"YOLO-seg ONNX…"
                            <input type="file" accept=".onnx" data-testid="prelabel-yolo-file" on:change=move |ev| {
                                let input: web_sys::HtmlInputElement = event_target(&ev);
                                let file = input.files().and_then(|l| l.get(0));
                                input.set_value("");
                                if let Some(file) = file {
                                    spawn_local(prelabel::pick_yolo(state, file));
                                }
                            }/>
                        </label>
                        <Show when=move || ui.yolo.with(Option::is_some)>
                            <button data-testid="prelabel-use-segment-model" on:click=move |_| prelabel::use_segment_model(state)>"Use the segment model"</button>
                        </Show>
                    </div>
                    <div class="row">
                        <label>"Images: "
                            <select data-testid="prelabel-scope" on:change=move |ev| ui.scope.set(
                                if event_target_value(&ev) == "checked" { Scope::Checked } else { Scope::Listed })>
                                <option value="listed" selected=move || ui.scope.get() == Scope::Listed>"the images listed"</option>
                                <option value="checked" selected=move || ui.scope.get() == Scope::Checked>"the images checked in the list"</option>
                            </select>
                        </label>
                        <span data-testid="prelabel-count">{move || format!("{} images", count())}</span>
                    </div>
                    <div class="row">
                        {setting_input(state, "prelabel-min-score", "score ≥ ", |s| s.min_score.to_string(), |s, v| s.min_score = v as f32)}
                        {setting_input(state, "prelabel-nms", "NMS IoU ", |s| s.nms_iou.to_string(), |s, v| s.nms_iou = v)}
                        {setting_input(state, "prelabel-min-area", "min area px ", |s| s.min_area.to_string(), |s, v| s.min_area = v.max(0.0) as u64)}
                    </div>
                    <div class="row">{mapping_rows}</div>
                    <Show when=move || !unmapped().is_empty()>
                        <p class="warn" data-testid="prelabel-unmapped">
                            {move || format!("Map every model class to start: {} has no class yet.", unmapped().join(", "))}
                        </p>
                    </Show>
                    <div class="row">
                        <label>"Then: "
                            <select data-testid="prelabel-stage" on:change=move |ev| ui.to_stage.set(
                                Stage::parse(&event_target_value(&ev)).unwrap_or(Stage::ToLabel))>
                                <option value="to_label" selected=move || ui.to_stage.get() == Stage::ToLabel>"leave them in To label"</option>
                                <option value="in_review" selected=move || ui.to_stage.get() == Stage::InReview>"send them straight to review"</option>
                            </select>
                        </label>
                        <label>"workers "
                            <input type="number" min="1" max="8" placeholder="auto" data-testid="prelabel-workers"
                                prop:value=move || ui.workers.get().map(|n| n.to_string()).unwrap_or_default()
                                on:change=move |ev| ui.workers.set(event_target_value(&ev).trim().parse().ok())/>
                        </label>
                    </div>
                    <span class="group">
                        <button data-testid="prelabel-preview" disabled=move || !unmapped().is_empty() || ui.previewing.get()
                            on:click=move |_| spawn_local(prelabel::preview(state))>
                            {format!("Preview (up to {} images)", prelabel::PREVIEW_IMAGES)}</button>
                        <button data-testid="prelabel-run" disabled=move || !unmapped().is_empty() || ui.previewing.get()
                            on:click=move |_| spawn_local(prelabel::run::run(state))>"Run"</button>
                        <button data-testid="prelabel-close" on:click=move |_| prelabel::close(state)>"Close"</button>
                    </span>
                    <div class="previews" data-testid="prelabel-previews">{previews}</div>
                </Show>
            </section>
        </Show>
    }
}

/// The found instances of a preview as pending pre-labels (class id: the model class index), to draw
/// them as the labeler will.
fn preview_instances(p: &PreviewImage) -> Vec<Instance> {
    p.found
        .iter()
        .enumerate()
        .filter_map(|(k, f)| {
            let mask = Rle::decompress(&f.rle).ok()?.to_mask();
            let provenance = Provenance {
                tool: Tool::PreLabel,
                prompts: Vec::new(),
                model_id: None,
                author: None,
                created: String::new(),
                updated: String::new(),
                score: Some(f.score),
            };
            Some(instance_from_mask(
                k.to_string(),
                p.asset_id.clone(),
                String::new(),
                &mask,
                provenance,
            ))
        })
        .collect()
}

#[component]
fn PreviewTile(preview: PreviewImage, colours: Vec<String>) -> impl IntoView {
    let canvas = NodeRef::<leptos::html::Canvas>::new();
    let (width, height) = (preview.width, preview.height);
    let instances = preview_instances(&preview);
    Effect::new(move |_| {
        let Some(canvas) = canvas.get() else { return };
        let colour_of = |i: &Instance| {
            i.class_id
                .parse::<usize>()
                .ok()
                .and_then(|k| colours.get(k))
                .map(String::as_str)
        };
        let Ok(rgba) = compose_overlay_rgba(width, height, &instances, colour_of, None) else {
            return;
        };
        canvas.set_width(width);
        canvas.set_height(height);
        if let (Some(ctx), Ok(data)) = (
            super::context_2d(&canvas),
            ImageData::new_with_u8_clamped_array_and_sh(Clamped(&rgba), width, height),
        ) {
            let _ = ctx.put_image_data(&data, 0.0, 0.0);
        }
    });
    let mean = if preview.found.is_empty() {
        0.0
    } else {
        preview
            .found
            .iter()
            .map(|f| f64::from(f.score))
            .sum::<f64>()
            / preview.found.len() as f64
    };
    let caption = format!(
        "{}: {} found, mean score {mean:.2}, {:.0} ms",
        preview.name,
        preview.found.len(),
        preview.ms
    );
    view! {
        <figure class="preview" data-testid="prelabel-preview-image">
            <div class="stack">
                <img src=preview.url.clone() alt=preview.name.clone()/>
                <canvas node_ref=canvas></canvas>
            </div>
            <figcaption data-testid="prelabel-preview-caption">{caption}</figcaption>
        </figure>
    }
}

/// The open image's pending pre-labels, with accept and delete (beside the labels list).
#[component]
pub fn PendingPrelabels(state: AppState) -> impl IntoView {
    let pending = move || {
        state
            .instances
            .with(|l| lamina_core::prelabel::pending_count(l))
    };
    let selected_pending = move || {
        state.selected.get().is_some_and(|id| {
            state.instances.with(|l| {
                l.iter()
                    .any(|i| i.id == id && lamina_core::prelabel::is_pending(i))
            })
        })
    };
    view! {
        <Show when=move || { pending() > 0 }>
            <section class="pending-prelabels">
                <h2>"Pre-labels " <small data-testid="prelabel-pending">{pending}</small></h2>
                <p class="hint">"Dashed outlines: proposed by the model, not yet looked at. Accept them, fix them with the brush or eraser (that accepts them), or delete them."</p>
                <span class="group">
                    <button data-testid="prelabel-accept-selected" disabled=move || !selected_pending()
                        on:click=move |_| spawn_local(edits::accept_selected(state))>"Accept selected"</button>
                    <button data-testid="prelabel-accept-all" on:click=move |_| spawn_local(edits::accept_all(state))>"Accept all"</button>
                    <button data-testid="prelabel-delete-all" on:click=move |_| spawn_local(edits::delete_all(state))>"Delete all"</button>
                </span>
            </section>
        </Show>
    }
}
