//! Side panels: the image list, the tools, the ontology editor, and the selected instance.

use lamina_core::labels::{ClassDef, LabelStatus, Ontology};
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::browser::new_id;
use crate::editing;
use crate::editing::builders::{delete_selected, reclass_selected};
use crate::features::navigate;
use crate::state::catalog::in_label_queue;
use crate::state::{AppState, ToolKind};

pub fn status_label(status: LabelStatus) -> &'static str {
    match status {
        LabelStatus::Unlabeled => "unlabeled",
        LabelStatus::InProgress => "in progress",
        LabelStatus::Submitted => "submitted",
        LabelStatus::Skipped => "skipped",
    }
}

#[component]
pub fn ImageList(state: AppState) -> impl IntoView {
    let rows = move || {
        let current = state.current.get();
        let queue = state.review.queue.get();
        let slice = state.catalog.queue.get();
        state
            .assets
            .get()
            .into_iter()
            .enumerate()
            .filter(|(_, r)| in_label_queue(r, queue, slice.as_ref()))
            .map(|(i, r)| {
                let organ = r
                    .asset
                    .metadata
                    .get("organ")
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
                    .to_owned();
                let stage = r.asset.stage;
                let id = r.asset.id.clone();
                let checked = state.prelabel.checked.with(|c| c.contains(&id));
                view! {
                    <li
                        class:current=i == current
                        data-testid="image-row"
                        on:click=move |_| spawn_local(navigate::open_asset(state, i))
                    >
                        <input type="checkbox" data-testid="image-check" title="Check for a pre-label run"
                            prop:checked=checked
                            on:click=|ev| ev.stop_propagation()
                            on:change=move |ev| {
                                let on = event_target_checked(&ev);
                                let id = id.clone();
                                state.prelabel.checked.update(|c| {
                                    if on { c.insert(id); } else { c.remove(&id); }
                                });
                            }/>
                        <span class="name">{r.asset.name.clone()}</span>
                        <span class="meta">{organ}</span>
                        <span class=format!("badge {}", stage.key()) data-testid="row-stage">{stage.label()}</span>
                    </li>
                }
            })
            .collect_view()
    };
    view! {
        <aside class="images">
            <h2>"Images " <small data-testid="image-count">{move || state.assets.with(Vec::len)}</small></h2>
            {move || state.catalog.queue.get().map(|q| view! {
                <p class="slice-queue" data-testid="slice-queue-chip">
                    {format!("Selection \"{}\": {} image(s) ", q.name, q.ids.len())}
                    <button title="Show every image again" data-testid="slice-queue-leave"
                        on:click=move |_| state.catalog.queue.set(None)>"×"</button>
                </p>
            })}
            <crate::ui::review::StageTabs state/>
            <ul>{rows}</ul>
        </aside>
    }
}

#[component]
pub fn ToolBar(state: AppState) -> impl IntoView {
    let buttons = ToolKind::ALL
        .into_iter()
        .map(|tool| {
            view! {
                <button
                    class:active=move || state.tool.get() == tool
                    data-testid=format!("tool-{}", tool.label().to_lowercase())
                    title=format!("{} ({})", tool.label(), tool.key().to_uppercase())
                    on:click=move |_| state.tool.set(tool)
                >
                    {tool.label()}
                    <kbd>{tool.key().to_uppercase()}</kbd>
                </button>
            }
        })
        .collect_view();
    view! {
        <section class="tools">
            <h2>"Tools"</h2>
            <div class="tool-grid">{buttons}</div>
            <label class="brush">
                "Brush size "
                <input
                    type="range" min="1" max="40" step="1"
                    prop:value=move || state.brush_radius.get().to_string()
                    on:input=move |ev| {
                        if let Ok(r) = event_target_value(&ev).parse::<f64>() {
                            state.brush_radius.set(r)
                        }
                    }
                />
                {move || format!(" {} px", state.brush_radius.get())}
            </label>
            <crate::ui::suggest_layer::SuggestPanel state=state/>
        </section>
    }
}

#[component]
pub fn OntologyEditor(state: AppState) -> impl IntoView {
    let edit = move |f: Box<dyn FnOnce(&mut Ontology)>| {
        let mut o = state.ontology_now();
        f(&mut o);
        spawn_local(editing::save_ontology(state, o));
    };
    let rows = move || {
        let classes = state.ontology().classes;
        let counts = state.instances.with(|list| {
            classes
                .iter()
                .map(|c| list.iter().filter(|i| i.class_id == c.id).count())
                .collect::<Vec<_>>()
        });
        classes
            .into_iter()
            .zip(counts)
            .enumerate()
            .map(|(k, (c, n))| {
                let id = c.id.clone();
                let (id_name, id_colour, id_delete, id_pick) =
                    (id.clone(), id.clone(), id.clone(), id.clone());
                view! {
                    <li class:current=move || state.class_id.get() == id data-testid="class-row">
                        <kbd>{if k < 9 { (k + 1).to_string() } else { String::new() }}</kbd>
                        <input
                            type="color"
                            prop:value=c.color.clone()
                            on:change=move |ev| {
                                let colour = event_target_value(&ev);
                                let id = id_colour.clone();
                                edit(Box::new(move |o| {
                                    if let Some(c) = o.classes.iter_mut().find(|c| c.id == id) {
                                        c.color = colour
                                    }
                                }))
                            }
                        />
                        <input
                            class="class-name"
                            prop:value=c.name.clone()
                            on:change=move |ev| {
                                let name = event_target_value(&ev);
                                let id = id_name.clone();
                                edit(Box::new(move |o| {
                                    if let Some(c) = o.classes.iter_mut().find(|c| c.id == id) {
                                        c.name = name
                                    }
                                }))
                            }
                        />
                        <button class="pick" title="Use this class" on:click=move |_| {
                            state.class_id.set(id_pick.clone());
                            reclass_selected(state, id_pick.clone());
                        }>{n}</button>
                        <button
                            class="remove"
                            title="Remove class (only when no label on this image uses it)"
                            disabled={n > 0}
                            on:click=move |_| {
                                let id = id_delete.clone();
                                edit(Box::new(move |o| o.classes.retain(|c| c.id != id)))
                            }
                        >"×"</button>
                    </li>
                }
            })
            .collect_view()
    };
    let add_class = move |_| {
        edit(Box::new(|o| {
            let n = o.classes.len() + 1;
            o.classes.push(ClassDef {
                id: new_id(),
                name: format!("Class {n}"),
                color: "#a050ff".into(),
            })
        }))
    };
    let add_preset = move |_| {
        edit(Box::new(|o| {
            for c in Ontology::pannuke().classes {
                if o.class(&c.id).is_none() {
                    o.classes.push(c);
                }
            }
        }))
    };
    view! {
        <section class="ontology">
            <h2>"Classes"</h2>
            <ul data-testid="classes">{rows}</ul>
            <div class="row">
                <button on:click=add_class data-testid="add-class">"Add class"</button>
                <button on:click=add_preset title="Neoplastic, Inflammatory, Connective, Dead, Epithelial">"PanNuke preset"</button>
            </div>
        </section>
    }
}

#[component]
pub fn SelectionPanel(state: AppState) -> impl IntoView {
    let info = move || {
        let id = state.selected.get()?;
        let inst = state
            .instances
            .with(|l| l.iter().find(|i| i.id == id).cloned())?;
        let class = state
            .ontology()
            .class(&inst.class_id)
            .map(|c| c.name.clone())
            .unwrap_or_default();
        let [x, y, w, h] = inst.bbox;
        let tool = format!("{:?}", inst.provenance.tool).to_lowercase();
        Some(view! {
            <p data-testid="selection">
                <b>{class}</b>
                {format!(" · {} px · box {x},{y} {w}×{h} · {tool}", inst.area)}
            </p>
            <button on:click=move |_| delete_selected(state) data-testid="delete-selected">"Delete (Del)"</button>
        })
    };
    view! {
        <section class="selection">
            <h2>"Labels " <small data-testid="instance-count">{move || state.instances.with(Vec::len)}</small></h2>
            {info}
        </section>
    }
}

#[component]
pub fn ModelPanel(state: AppState) -> impl IntoView {
    use crate::features::model::{load_from_files, load_from_url};
    use crate::state::model::{EmbeddingStatus, ModelStatus};
    let url = RwSignal::new(String::new());
    let status = move || match state.model.get() {
        ModelStatus::None => "no model".to_string(),
        ModelStatus::Loading(stage) => format!("loading: {stage}"),
        ModelStatus::Ready(m) => format!("ready: {}", m.id),
        ModelStatus::Failed(e) => format!("not loaded: {e}"),
    };
    let embedding = move || match state.embedding.get() {
        EmbeddingStatus::None => String::new(),
        EmbeddingStatus::Encoding(_) => "image: encoding…".into(),
        EmbeddingStatus::Ready { cached: true, .. } => "image: ready (cached embedding)".into(),
        EmbeddingStatus::Ready { encode_ms, .. } => {
            format!("image: ready (encoded in {:.0} ms)", encode_ms)
        }
        EmbeddingStatus::Failed(e) => format!("image: not encoded: {e}"),
    };
    view! {
        <section class="model">
            <h2>"Segment model"</h2>
            <p class="model-status" data-testid="model-status">{status}</p>
            <p class="model-status" data-testid="embedding-status">{embedding}</p>
            <div class="row">
                <input class="url" placeholder="model URL (manifest.json)" data-testid="model-url"
                    on:input=move |ev| url.set(event_target_value(&ev))/>
                <button data-testid="load-model" on:click=move |_| spawn_local(load_from_url(state, url.get_untracked()))>"Load"</button>
            </div>
            <label class="button" title="manifest.json with its .onnx files">"Model files"
                <input type="file" multiple accept=".json,.onnx" data-testid="model-files"
                    on:change=move |ev| {
                        let input: web_sys::HtmlInputElement = event_target(&ev);
                        let files = input.files().map(|l| (0..l.length()).filter_map(|i| l.get(i)).collect()).unwrap_or_default();
                        input.set_value("");
                        spawn_local(load_from_files(state, files));
                    }/>
            </label>
        </section>
    }
}
