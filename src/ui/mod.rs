//! The app shell: header (projects, import, export), image list, labeling view, side panels, status bar,
//! and the keyboard shortcuts.

mod catalog;
mod catalog_charts;
mod interop_panel;
mod labeler;
mod panels;
mod prelabel_panel;
mod review;
mod run_metrics;
mod runs;
mod suggest_layer;
mod sync_panel;

use leptos::ev;
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsCast;
use web_sys::{DragEvent, File, FileSystemEntry, HtmlInputElement, KeyboardEvent};

use lamina_core::review::Stage;
use lamina_core::shortcuts::{action_for, brush_radius_after, Action};

use crate::browser::fetch::fetch_text;
use crate::browser::files::read_text;
use crate::browser::{page_url, resolve_url};
use crate::editing;
use crate::editing::builders::{delete_selected, finish_polygon, pick_class};
use crate::features::export::{export, ExportKind};
use crate::features::interop::{self, InteropExport};
use crate::features::review as review_mode;
use crate::features::{boot, import, navigate, suggest};
use crate::state::runs::Page;
use crate::state::{AppState, Notice};
use labeler::Labeler;
use panels::{status_label, ImageList, ModelPanel, OntologyEditor, SelectionPanel, ToolBar};

/// The 2D context of a canvas layer (labels, suggestion, comparison); `None` if the browser gives none.
fn context_2d(canvas: &web_sys::HtmlCanvasElement) -> Option<web_sys::CanvasRenderingContext2d> {
    canvas
        .get_context("2d")
        .ok()
        .flatten()
        .and_then(|c| c.dyn_into().ok())
}

fn files_of(input: &HtmlInputElement) -> Vec<File> {
    let Some(list) = input.files() else {
        return Vec::new();
    };
    (0..list.length()).filter_map(|i| list.get(i)).collect()
}

/// Reads a picked text file (manifest or bundle) and hands its text on; the input is reset so the same file
/// can be picked again. A file that cannot be read (removed or changed on disk since it was picked) is
/// named in an error, and nothing is imported.
fn with_picked_text(state: AppState, ev: ev::Event, then: impl FnOnce(String) + 'static) {
    let input: HtmlInputElement = event_target(&ev);
    let Some(file) = files_of(&input).into_iter().next() else {
        return;
    };
    input.set_value("");
    spawn_local(async move {
        match read_text(&file).await {
            Ok(text) => then(text),
            Err(e) => state.fail("Nothing was imported", &e),
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

/// Labels files of another tool (and the mask PNGs a Labelbox file names): read, then planned.
fn import_labels_picked(state: AppState, ev: ev::Event) {
    let input: HtmlInputElement = event_target(&ev);
    let files = files_of(&input);
    input.set_value("");
    spawn_local(interop::pick(state, files));
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

/// Hands the open image in for review.
async fn submit(state: AppState) {
    review_mode::act(
        state,
        "The image was not submitted",
        editing::review::submit(state),
    )
    .await
}

fn in_text_field(ev: &KeyboardEvent) -> bool {
    ev.target()
        .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
        .is_some_and(|el| matches!(el.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT"))
}

fn on_key(state: AppState, ev: KeyboardEvent) {
    // The labeling keys act on the labeling view only, not behind the model-runs page.
    if in_text_field(&ev) || state.runs.page.get_untracked() != Page::Label {
        return;
    }
    let Some(action) = action_for(&ev.key(), ev.ctrl_key() || ev.meta_key(), ev.shift_key()) else {
        return;
    };
    ev.prevent_default();
    match action {
        Action::Redo => spawn_local(editing::redo(state)),
        // While a suggestion is being built, undo takes back its last prompt.
        Action::Undo => suggest::undo(state, ev.time_stamp()),
        Action::SubmitImage => spawn_local(submit(state)),
        // Deciding by key only in review mode, so a stray key while labeling decides nothing.
        Action::Approve | Action::Reject
            if state.review.queue.get_untracked() != Some(Stage::InReview) =>
        {
            state.info("A and X decide in review mode: press Start review (or use the buttons)")
        }
        Action::Approve => spawn_local(review_mode::decide(state, true)),
        Action::Reject => spawn_local(review_mode::decide(state, false)),
        Action::PinIssue => state.review.pin_mode.update(|m| *m = !*m),
        Action::Skip => spawn_local(review_mode::act(
            state,
            "The image was not skipped",
            editing::review::toggle_skip(state),
        )),
        Action::Confirm if state.suggest.is_editing() => suggest::accept(state),
        Action::Confirm => finish_polygon(state),
        Action::Cancel => {
            suggest::cancel(state);
            state.polygon_image.set(Vec::new());
            state.selected.set(None);
        }
        Action::Back if !state.polygon_image.with_untracked(Vec::is_empty) => {
            state.polygon_image.update(|p| {
                p.pop();
            })
        }
        Action::Back | Action::DeleteSelected => delete_selected(state),
        Action::NextImage => spawn_local(navigate::go(state, 1)),
        Action::PreviousImage => spawn_local(navigate::go(state, -1)),
        Action::BrushSmaller | Action::BrushBigger => state
            .brush_radius
            .update(|r| *r = brush_radius_after(*r, action)),
        Action::PickClass(index) => pick_class(state, index),
        Action::Tool(tool) => {
            state.polygon_image.set(Vec::new());
            state.tool.set(tool)
        }
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
                navigate::create_project(state, name.trim().to_owned()).await;
            });
        }
    };
    let fetch_manifest = move |_| {
        let url = resolve_url(manifest_url.get_untracked().trim(), &page_url());
        spawn_local(async move {
            match fetch_text(&url).await {
                Ok(text) => import::import_manifest(state, text, Some(url)).await,
                Err(e) => state.fail("Manifest not imported", &e),
            }
        });
    };
    view! {
        <header>
            <h1>"Lamina"</h1>
            <span class="group tabs">
                <button class:active=move || state.runs.page.get() == Page::Catalog data-testid="page-catalog"
                    on:click=move |_| state.runs.page.set(Page::Catalog)>"Catalog"</button>
                <button class:active=move || state.runs.page.get() == Page::Label data-testid="page-label"
                    on:click=move |_| state.runs.page.set(Page::Label)>"Label"</button>
                <button class:active=move || state.runs.page.get() == Page::Runs data-testid="page-runs"
                    on:click=move |_| state.runs.page.set(Page::Runs)>"Model runs"</button>
            </span>
            <select data-testid="project" on:change=move |ev| spawn_local(navigate::open_project(state, event_target_value(&ev)))>
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
                        on:change=move |ev| with_picked_text(state, ev, move |text| spawn_local(import::import_manifest(state, text, None)))/>
                </label>
                <input class="url" placeholder="manifest URL" data-testid="manifest-url"
                    on:input=move |ev| manifest_url.set(event_target_value(&ev))/>
                <button on:click=fetch_manifest data-testid="fetch-manifest">"Fetch"</button>
                <label class="button" title="Merge a Lamina label bundle into this project">"Import bundle"
                    <input type="file" accept=".json,application/json" data-testid="import-bundle"
                        on:change=move |ev| with_picked_text(state, ev, move |text| spawn_local(import::import_bundle(state, text, None, None)))/>
                </label>
                <label class="button" title=move || format!("Labels from {} (with a Labelbox file, pick its mask PNGs too)", interop::format_names())>"Import labels"
                    <input type="file" multiple accept=".geojson,.json,.ndjson,.xml,.png" data-testid="import-labels"
                        on:change=move |ev| import_labels_picked(state, ev)/>
                </label>
            </span>
            <span class="group">
                <select data-testid="export-stage" title="Which images the exports hold"
                    on:change=move |ev| state.review.export_stage.set(
                        lamina_core::review::Stage::parse(&event_target_value(&ev)).ok())>
                    <option value="all">"All images"</option>
                    <option value="done">"Done only"</option>
                </select>
                <button on:click=move |_| spawn_local(export(state, ExportKind::Bundle)) data-testid="export-bundle">"Export bundle"</button>
                <button on:click=move |_| spawn_local(export(state, ExportKind::CocoRle)) data-testid="export-coco">"COCO (RLE)"</button>
                <button on:click=move |_| spawn_local(export(state, ExportKind::CocoPolygons)) data-testid="export-coco-polygons">"COCO (polygons)"</button>
                <button on:click=move |_| spawn_local(interop::export(state, InteropExport::QuPath)) data-testid="export-qupath" title="One GeoJSON file per image, zipped">"QuPath"</button>
                <button on:click=move |_| spawn_local(interop::export(state, InteropExport::LabelStudio)) data-testid="export-labelstudio">"Label Studio"</button>
            </span>
            <button data-testid="prelabel-open" title="Run the model over images and start labeling from its predictions"
                on:click=move |_| crate::features::prelabel::open(state)>"Pre-label…"</button>
            <input class="author" placeholder="your name" title="Written into each label's provenance"
                prop:value=move || state.author.get()
                on:change=move |ev| spawn_local(editing::set_author(state, event_target_value(&ev)))/>
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
            <button on:click=move |_| spawn_local(navigate::go(state, -1)) title="Previous image (←)">"◀"</button>
            <span data-testid="position">{position}</span>
            <button on:click=move |_| spawn_local(navigate::go(state, 1)) title="Next image (→)">"▶"</button>
            <button disabled=move || !state.can_undo() && !state.suggest.session.with(|s| !s.is_empty()) on:click=move |ev| suggest::undo(state, ev.time_stamp()) data-testid="undo" title="Ctrl+Z">"Undo"</button>
            <button disabled=move || !state.can_redo() on:click=move |_| spawn_local(editing::redo(state)) data-testid="redo" title="Ctrl+Shift+Z">"Redo"</button>
            <span class="status" data-testid="status">{status}</span>
            <button on:click=move |_| spawn_local(submit(state)) data-testid="submit" title="Ctrl+Enter">"Submit image"</button>
            <span class="progress" data-testid="progress">{move || state.progress.get()}</span>
            <span class="attribution">"Demo tiles: NuInsSeg (Mahbod et al., Scientific Data 2024), CC BY 4.0"</span>
            {notice}
        </footer>
    }
}

#[component]
pub fn App() -> impl IntoView {
    let state = AppState::new();
    spawn_local(boot::boot(state));
    let _keys = window_event_listener(ev::keydown, move |ev| on_key(state, ev));
    view! {
        <div class="app" on:dragover=|ev: DragEvent| ev.prevent_default() on:drop=move |ev| on_drop(state, ev)>
            <Header state/>
            <interop_panel::ImportPlanPanel state/>
            <prelabel_panel::PrelabelPanel state/>
            <main class:hidden=move || state.runs.page.get() != Page::Label>
                <ImageList state/>
                <Labeler state/>
                <aside class="panel">
                    <ToolBar state/>
                    <OntologyEditor state/>
                    <SelectionPanel state/>
                    <prelabel_panel::PendingPrelabels state/>
                    <ModelPanel state/>
                    <review::ReviewPanel state/>
                    <sync_panel::SyncPanel state/>
                    <section class="help">
                        <h2>"Keys"</h2>
                        <p>"S suggest: hover, click, Alt-click, drag a box, Enter accept · 1-9 class · Del delete · Ctrl+Z / Ctrl+Shift+Z undo/redo · ← → image · [ ] brush · Enter close polygon · Esc cancel · wheel zoom · middle-drag pan · Ctrl+Enter submit · review: A approve, X reject, I pin an issue, K skip"</p>
                    </section>
                </aside>
            </main>
            <Show when=move || state.runs.page.get() == Page::Catalog>
                <catalog::CatalogPage state/>
            </Show>
            <Show when=move || state.runs.page.get() == Page::Runs>
                <runs::RunsPage state/>
            </Show>
            <StatusBar state/>
        </div>
    }
}
