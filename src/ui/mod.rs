//! The app shell: header (projects, import, export), image list, labeling view, side panels, status bar,
//! and the keyboard shortcuts.

mod labeler;
mod panels;
mod suggest_layer;
mod sync_panel;

use lamina_core::model::LabelStatus;
use leptos::ev;
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsCast;
use web_sys::{DragEvent, File, FileSystemEntry, HtmlInputElement, KeyboardEvent};

use crate::export::{export, ExportKind};
use crate::import;
use crate::state::{AppState, Notice, ToolKind};
use crate::suggest;
use labeler::{finish_polygon, Labeler};
use panels::{
    delete_selected, pick_class, status_label, ImageList, ModelPanel, OntologyEditor,
    SelectionPanel, ToolBar,
};

fn files_of(input: &HtmlInputElement) -> Vec<File> {
    let Some(list) = input.files() else {
        return Vec::new();
    };
    (0..list.length()).filter_map(|i| list.get(i)).collect()
}

/// Reads a picked text file (manifest or bundle) and hands its text on; the input is reset so the same file
/// can be picked again.
fn with_picked_text(ev: ev::Event, then: impl FnOnce(String) + 'static) {
    let input: HtmlInputElement = event_target(&ev);
    let Some(file) = files_of(&input).into_iter().next() else {
        return;
    };
    input.set_value("");
    spawn_local(async move {
        if let Ok(text) = wasm_bindgen_futures::JsFuture::from(file.text()).await {
            then(text.as_string().unwrap_or_default());
        }
    });
}

/// Imports the images a file or folder picker holds; the input is reset so the same files can be picked
/// again.
fn import_picked(state: AppState, ev: ev::Event) {
    let input: HtmlInputElement = event_target(&ev);
    let files = files_of(&input);
    input.set_value("");
    spawn_local(import::import_files(state, files));
}

fn on_drop(state: AppState, ev: DragEvent) {
    ev.prevent_default();
    let Some(dt) = ev.data_transfer() else { return };
    // Entries must be taken while the event is being handled; the walk happens afterwards.
    let items = dt.items();
    let entries: Vec<FileSystemEntry> = (0..items.length())
        .filter_map(|i| items.get(i))
        .filter_map(|item| item.webkit_get_as_entry().ok().flatten())
        .collect();
    if !entries.is_empty() {
        spawn_local(import::import_entries(state, entries));
    } else if let Some(list) = dt.files() {
        let files = (0..list.length()).filter_map(|i| list.get(i)).collect();
        spawn_local(import::import_files(state, files));
    }
}

fn in_text_field(ev: &KeyboardEvent) -> bool {
    ev.target()
        .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
        .is_some_and(|el| matches!(el.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT"))
}

fn on_key(state: AppState, ev: KeyboardEvent) {
    if in_text_field(&ev) {
        return;
    }
    let key = ev.key();
    let ctrl = ev.ctrl_key() || ev.meta_key();
    let mut handled = true;
    match key.as_str() {
        "z" | "Z" if ctrl && ev.shift_key() => spawn_local(state.redo()),
        // While a suggestion is being built, undo takes back its last prompt.
        "z" | "Z" if ctrl => suggest::undo(state, ev.time_stamp()),
        "y" if ctrl => spawn_local(state.redo()),
        "Enter" if ctrl => spawn_local(state.set_status(LabelStatus::Submitted)),
        "Enter" if state.suggest.is_editing() => suggest::accept(state),
        "Enter" => finish_polygon(state),
        "Escape" => {
            suggest::cancel(state);
            state.polygon_image.set(Vec::new());
            state.selected.set(None);
        }
        "Backspace" if !state.polygon_image.with_untracked(Vec::is_empty) => {
            state.polygon_image.update(|p| {
                p.pop();
            })
        }
        "Delete" | "Backspace" => delete_selected(state),
        "ArrowRight" | "." => spawn_local(state.go(1)),
        "ArrowLeft" | "," => spawn_local(state.go(-1)),
        "[" => state.brush_radius.update(|r| *r = (*r - 1.0).max(1.0)),
        "]" => state.brush_radius.update(|r| *r = (*r + 1.0).min(40.0)),
        k if !ctrl && k.len() == 1 && k.as_bytes()[0].is_ascii_digit() && k != "0" => {
            pick_class(state, usize::from(k.as_bytes()[0] - b'1'))
        }
        k if !ctrl => match ToolKind::ALL
            .into_iter()
            .find(|t| t.key() == k.to_lowercase())
        {
            Some(tool) => {
                state.polygon_image.set(Vec::new());
                state.tool.set(tool)
            }
            None => handled = false,
        },
        _ => handled = false,
    }
    if handled {
        ev.prevent_default();
    }
}

#[component]
fn Header(state: AppState) -> impl IntoView {
    let manifest_url = RwSignal::new(String::new());
    // `webkitdirectory` (pick a whole folder) has no typed attribute in the view macro.
    let folder_input = NodeRef::<leptos::html::Input>::new();
    Effect::new(move |_| {
        if let Some(input) = folder_input.get() {
            let _ = input.set_attribute("webkitdirectory", "");
        }
    });
    let project_options = move || {
        let current = state.project_id.get();
        state
            .projects
            .get()
            .into_iter()
            .map(|p| {
                let selected = current.as_deref() == Some(p.id.as_str());
                view! { <option value=p.id.clone() selected=selected>{p.name.clone()}</option> }
            })
            .collect_view()
    };
    let new_project = move |_| {
        let n = state.projects.with_untracked(Vec::len) + 1;
        let name = web_sys::window().and_then(|w| {
            w.prompt_with_message_and_default("Project name", &format!("Project {n}"))
                .ok()
                .flatten()
        });
        if let Some(name) = name.filter(|n| !n.trim().is_empty()) {
            spawn_local(async move {
                state.create_project(name.trim().to_owned()).await;
            });
        }
    };
    let fetch_manifest = move |_| {
        let url = import::resolve_url(
            manifest_url.get_untracked().trim(),
            &web_sys::window()
                .and_then(|w| w.location().href().ok())
                .unwrap_or_default(),
        );
        spawn_local(async move {
            match import::fetch_text(&url).await {
                Ok(text) => import::import_manifest(state, text, Some(url)).await,
                Err(e) => state.error(format!("Manifest not imported: {e}")),
            }
        });
    };
    view! {
        <header>
            <h1>"Lamina"</h1>
            <select data-testid="project" on:change=move |ev| spawn_local(state.open_project(event_target_value(&ev)))>
                {project_options}
            </select>
            <button on:click=new_project>"New project"</button>
            <span class="group">
                <label class="button">"Add images"
                    <input type="file" multiple accept=".png,.jpg,.jpeg,.tif,.tiff,image/png,image/jpeg,image/tiff" data-testid="add-images"
                        on:change=move |ev| import_picked(state, ev)/>
                </label>
                <label class="button">"Add folder"
                    <input type="file" node_ref=folder_input data-testid="add-folder"
                        on:change=move |ev| import_picked(state, ev)/>
                </label>
                <label class="button" title="CSV or JSON list of image URLs with metadata columns">"Manifest file"
                    <input type="file" accept=".csv,.json,text/csv,application/json" data-testid="add-manifest"
                        on:change=move |ev| with_picked_text(ev, move |text| spawn_local(import::import_manifest(state, text, None)))/>
                </label>
                <input class="url" placeholder="manifest URL" data-testid="manifest-url"
                    on:input=move |ev| manifest_url.set(event_target_value(&ev))/>
                <button on:click=fetch_manifest data-testid="fetch-manifest">"Fetch"</button>
                <label class="button" title="Merge a Lamina label bundle into this project">"Import bundle"
                    <input type="file" accept=".json,application/json" data-testid="import-bundle"
                        on:change=move |ev| with_picked_text(ev, move |text| spawn_local(import::import_bundle(state, text, None, None)))/>
                </label>
            </span>
            <span class="group">
                <button on:click=move |_| spawn_local(export(state, ExportKind::Bundle)) data-testid="export-bundle">"Export bundle"</button>
                <button on:click=move |_| spawn_local(export(state, ExportKind::CocoRle)) data-testid="export-coco">"COCO (RLE)"</button>
                <button on:click=move |_| spawn_local(export(state, ExportKind::CocoPolygons)) data-testid="export-coco-polygons">"COCO (polygons)"</button>
            </span>
            <input class="author" placeholder="your name" title="Written into each label's provenance"
                prop:value=move || state.author.get()
                on:change=move |ev| spawn_local(state.set_author(event_target_value(&ev)))/>
        </header>
    }
}

#[component]
fn StatusBar(state: AppState) -> impl IntoView {
    let status = move || {
        state
            .current_record()
            .map(|r| status_label(r.asset.status))
            .unwrap_or("")
    };
    let position = move || {
        let n = state.assets.with(Vec::len);
        if n == 0 {
            String::new()
        } else {
            format!("{} / {n}", state.current.get() + 1)
        }
    };
    let notice = move || {
        match state.notice.get() {
        Some(Notice::Error(t)) => Some(view! { <div class="notice error" data-testid="error" on:click=move |_| state.notice.set(None)>{t}</div> }.into_any()),
        Some(Notice::Info(t)) => Some(view! { <div class="notice info" data-testid="info" on:click=move |_| state.notice.set(None)>{t}</div> }.into_any()),
        None => None,
    }
    };
    view! {
        <footer>
            <button on:click=move |_| spawn_local(state.go(-1)) title="Previous image (←)">"◀"</button>
            <span data-testid="position">{position}</span>
            <button on:click=move |_| spawn_local(state.go(1)) title="Next image (→)">"▶"</button>
            <button disabled=move || !state.can_undo() && !state.suggest.session.with(|s| !s.is_empty()) on:click=move |ev| suggest::undo(state, ev.time_stamp()) data-testid="undo" title="Ctrl+Z">"Undo"</button>
            <button disabled=move || !state.can_redo() on:click=move |_| spawn_local(state.redo()) data-testid="redo" title="Ctrl+Shift+Z">"Redo"</button>
            <span class="status" data-testid="status">{status}</span>
            <button on:click=move |_| spawn_local(state.set_status(LabelStatus::Submitted)) data-testid="submit" title="Ctrl+Enter">"Submit image"</button>
            <span class="progress" data-testid="progress">{move || state.progress.get()}</span>
            <span class="attribution">"Demo tiles: NuInsSeg (Mahbod et al., Scientific Data 2024), CC BY 4.0"</span>
            {notice}
        </footer>
    }
}

#[component]
pub fn App() -> impl IntoView {
    let state = AppState::new();
    spawn_local(state.boot());
    let _keys = window_event_listener(ev::keydown, move |ev| on_key(state, ev));
    view! {
        <div class="app" on:dragover=|ev: DragEvent| ev.prevent_default() on:drop=move |ev| on_drop(state, ev)>
            <Header state/>
            <main>
                <ImageList state/>
                <Labeler state/>
                <aside class="panel">
                    <ToolBar state/>
                    <OntologyEditor state/>
                    <SelectionPanel state/>
                    <ModelPanel state/>
                    <sync_panel::SyncPanel state/>
                    <section class="help">
                        <h2>"Keys"</h2>
                        <p>"S suggest: hover, click, Alt-click, drag a box, Enter accept · 1-9 class · Del delete · Ctrl+Z / Ctrl+Shift+Z undo/redo · ← → image · [ ] brush · Enter close polygon · Esc cancel · wheel zoom · middle-drag pan · Ctrl+Enter submit"</p>
                    </section>
                </aside>
            </main>
            <StatusBar state/>
        </div>
    }
}
