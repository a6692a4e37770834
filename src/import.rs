//! Getting images and labels in: files, folders, URL manifests, label bundles, and the demo project.
//! One image is one transaction: a failure (bad file, full quota, server error) loses only that image and
//! is reported by name; the rest of the import goes on, except after a full quota, which stops it.

use std::collections::{BTreeMap, HashMap};

use js_sys::{ArrayBuffer, Promise};
use lamina_core::bundle::{parse_bundle, Bundle};
use lamina_core::edit::Edit;
use lamina_core::manifest::parse_manifest;
use lamina_core::model::{Asset, LabelStatus, Project};
use leptos::prelude::*;
use serde_json::Value;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    Blob, BlobPropertyBag, File, FileSystemDirectoryEntry, FileSystemEntry, FileSystemFileEntry,
    Response,
};

use crate::state::{new_id, store, AppState};
use crate::store::{AssetRecord, StoreError};
use crate::worker_client::decode_image;

/// Where an image comes from, and what we know about it before decoding.
pub struct Incoming {
    pub name: String,
    pub blob: Blob,
    pub metadata: BTreeMap<String, Value>,
    pub uri: Option<String>,
    pub expected_sha256: Option<String>,
    pub status: LabelStatus,
}

#[derive(Default)]
pub struct Report {
    pub imported: usize,
    pub problems: Vec<String>,
    pub stopped: Option<String>,
}

impl Report {
    fn show(&self, state: AppState, what: &str) {
        let mut text = format!("{what}: {} imported", self.imported);
        if !self.problems.is_empty() {
            text += &format!(
                ", {} skipped:\n{}",
                self.problems.len(),
                self.problems.join("\n")
            );
        }
        if let Some(why) = &self.stopped {
            text = format!("{why}\n{text}");
        }
        if self.problems.is_empty() && self.stopped.is_none() {
            state.info(text);
        } else {
            state.error(text);
        }
    }
}

async fn promise<T: JsCast>(p: Promise) -> Result<T, String> {
    JsFuture::from(p)
        .await
        .map_err(js_text)?
        .dyn_into::<T>()
        .map_err(|_| "unexpected value from the browser".into())
}

pub fn js_text(e: JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| format!("{e:?}"))
}

/// The blob to display and store for a decoded image: the worker's PNG when it converted (TIFF), else
/// the original bytes.
pub fn blob_of(
    decoded: &crate::worker_client::DecodedImage,
    original: &js_sys::Uint8Array,
) -> Result<Blob, String> {
    let parts = js_sys::Array::of1(decoded.display.as_ref().unwrap_or(original));
    let options = BlobPropertyBag::new();
    options.set_type(&decoded.mime);
    Blob::new_with_u8_array_sequence_and_options(&parts, &options).map_err(js_text)
}

/// Decodes in the worker, checks, and stores one image. Returns the stored record.
async fn import_one(
    state: AppState,
    project_id: &str,
    item: Incoming,
) -> Result<AssetRecord, ImportError> {
    let bytes: ArrayBuffer = promise(item.blob.array_buffer())
        .await
        .map_err(ImportError::Skip)?;
    let decoded = decode_image(bytes).await.map_err(ImportError::Skip)?;
    if let Some(expected) = &item.expected_sha256 {
        if expected != &decoded.sha256 {
            return Err(ImportError::Skip(format!(
                "its sha256 is {}, not the {} the manifest gives",
                &decoded.sha256[..12],
                &expected[..12.min(expected.len())]
            )));
        }
    }
    if state
        .assets
        .with_untracked(|a| a.iter().any(|r| r.asset.sha256 == decoded.sha256))
    {
        return Err(ImportError::Skip(
            "the same image is already in this project".into(),
        ));
    }
    let blob = match &decoded.display {
        Some(_) => {
            blob_of(&decoded, &js_sys::Uint8Array::new_with_length(0)).map_err(ImportError::Skip)?
        }
        None => item.blob,
    };
    let record = AssetRecord {
        project_id: project_id.to_owned(),
        position: state
            .assets
            .with_untracked(|a| a.iter().map(|r| r.position + 1).max().unwrap_or(0)),
        asset: Asset {
            id: new_id(),
            name: item.name,
            sha256: decoded.sha256,
            width: decoded.width,
            height: decoded.height,
            metadata: item.metadata,
            uri: item.uri,
            status: item.status,
        },
        remote: None,
    };
    let store = store().map_err(ImportError::Stop)?;
    store.add_asset(&record, &blob).await.map_err(|e| match e {
        StoreError::QuotaExceeded => ImportError::Stop(e),
        other => ImportError::Skip(other.to_string()),
    })?;
    state.assets.update(|a| a.push(record.clone()));
    Ok(record)
}

enum ImportError {
    Skip(String),
    Stop(StoreError),
}

/// Imports items one by one, with progress, into the current project.
async fn import_all(
    state: AppState,
    items: Vec<Incoming>,
    mut report: Report,
    what: &str,
) -> Vec<AssetRecord> {
    let Some(project_id) = state.project_id.get_untracked() else {
        state.error("create a project first");
        return Vec::new();
    };
    let was_empty = state.assets.with_untracked(Vec::is_empty);
    let total = items.len();
    let mut stored = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        state
            .progress
            .set(Some(format!("{what}: image {} of {total}", i + 1)));
        let name = item.name.clone();
        match import_one(state, &project_id, item).await {
            Ok(record) => {
                report.imported += 1;
                stored.push(record);
            }
            Err(ImportError::Skip(why)) => report.problems.push(format!("{name}: {why}")),
            Err(ImportError::Stop(e)) => {
                report.stopped = Some(format!("Import stopped at {name}: {e}"));
                break;
            }
        }
    }
    state.progress.set(None);
    report.show(state, what);
    if was_empty && !stored.is_empty() {
        state.open_asset(0).await;
    }
    stored
}

fn is_image_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [".png", ".jpg", ".jpeg", ".tif", ".tiff"]
        .iter()
        .any(|ext| lower.ends_with(ext))
}

fn incoming_file(file: File, path: String) -> Incoming {
    Incoming {
        name: path,
        blob: file.into(),
        metadata: BTreeMap::new(),
        uri: None,
        expected_sha256: None,
        status: LabelStatus::Unlabeled,
    }
}

/// Files the user picked: every file is tried, so a non-image gets its own clear error.
pub async fn import_files(state: AppState, files: Vec<File>) {
    let items = files.into_iter().map(|f| {
        // Set for files picked with a folder picker: "folder/sub/name.png".
        let path = js_sys::Reflect::get(&f, &"webkitRelativePath".into())
            .ok()
            .and_then(|v| v.as_string())
            .unwrap_or_default();
        let name = if path.is_empty() { f.name() } else { path };
        incoming_file(f, name)
    });
    // A picked folder brings every file in it; only images are meant.
    let (images, others): (Vec<_>, Vec<_>) =
        items.partition(|i| !i.name.contains('/') || is_image_name(&i.name));
    let mut report = Report::default();
    if !others.is_empty() {
        report.problems.push(format!(
            "{} file(s) in the folder are not PNG, JPEG or TIFF",
            others.len()
        ));
    }
    import_all(state, images, report, "Import").await;
}

/// Dropped entries: files, and folders walked recursively.
pub async fn import_entries(state: AppState, entries: Vec<FileSystemEntry>) {
    let mut files = Vec::new();
    let mut stack: Vec<FileSystemEntry> = entries;
    let mut skipped = 0;
    while let Some(entry) = stack.pop() {
        if entry.is_directory() {
            let dir: FileSystemDirectoryEntry = entry.unchecked_into();
            match read_directory(&dir).await {
                Ok(children) => stack.extend(children),
                Err(e) => state.error(format!("cannot read folder {}: {e}", dir.full_path())),
            }
        } else if entry.is_file() {
            let path = entry.full_path().trim_start_matches('/').to_owned();
            if !is_image_name(&path) && path.contains('/') {
                skipped += 1;
                continue;
            }
            let file_entry: FileSystemFileEntry = entry.unchecked_into();
            match entry_file(&file_entry).await {
                Ok(f) => files.push(incoming_file(f, path)),
                Err(e) => state.error(format!("cannot read {path}: {e}")),
            }
        }
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    let mut report = Report::default();
    if skipped > 0 {
        report.problems.push(format!(
            "{skipped} file(s) in the folder are not PNG, JPEG or TIFF"
        ));
    }
    import_all(state, files, report, "Import").await;
}

async fn entry_file(entry: &FileSystemFileEntry) -> Result<File, String> {
    let p = Promise::new(&mut |resolve, reject| {
        entry.file_with_callback_and_callback(&resolve, &reject)
    });
    promise(p).await
}

/// All children of a folder (readEntries returns them in batches until an empty one).
async fn read_directory(dir: &FileSystemDirectoryEntry) -> Result<Vec<FileSystemEntry>, String> {
    let reader = dir.create_reader();
    let mut out = Vec::new();
    loop {
        let p = Promise::new(&mut |resolve, reject| {
            if let Err(e) = reader.read_entries_with_callback_and_callback(&resolve, &reject) {
                let _ = reject.call1(&JsValue::NULL, &e);
            }
        });
        let batch: js_sys::Array = promise(p).await?;
        if batch.length() == 0 {
            return Ok(out);
        }
        out.extend(
            batch
                .iter()
                .filter_map(|v| v.dyn_into::<FileSystemEntry>().ok()),
        );
    }
}

pub async fn fetch_blob(url: &str) -> Result<Blob, String> {
    let window = web_sys::window().ok_or("no window")?;
    let response: Response = promise(window.fetch_with_str(url))
        .await
        .map_err(|e| format!("could not fetch {url}: {e}"))?;
    if !response.ok() {
        return Err(format!("{url} answered HTTP {}", response.status()));
    }
    promise(response.blob().map_err(js_text)?).await
}

pub async fn fetch_text(url: &str) -> Result<String, String> {
    let blob = fetch_blob(url).await?;
    let text: JsValue = JsFuture::from(blob.text()).await.map_err(js_text)?;
    text.as_string()
        .ok_or_else(|| "the answer is not text".into())
}

/// `relative` resolved against `base` (a page or manifest URL).
pub fn resolve_url(relative: &str, base: &str) -> String {
    web_sys::Url::new_with_base(relative, base)
        .map(|u| u.href())
        .unwrap_or_else(|_| relative.to_owned())
}

fn page_url() -> String {
    web_sys::window()
        .and_then(|w| w.location().href().ok())
        .unwrap_or_default()
}

/// A CSV or JSON manifest of image URLs (with metadata columns), given as text read from `base_url`.
pub async fn import_manifest(state: AppState, text: String, base_url: Option<String>) {
    let manifest = match parse_manifest(&text) {
        Ok(m) => m,
        Err(e) => return state.error(format!("Manifest not imported: {e}")),
    };
    let base = base_url.unwrap_or_else(page_url);
    let mut report = Report {
        problems: manifest.problems.clone(),
        ..Report::default()
    };
    let mut items = Vec::new();
    let total = manifest.entries.len();
    for (i, entry) in manifest.entries.into_iter().enumerate() {
        state
            .progress
            .set(Some(format!("Fetching image {} of {total}", i + 1)));
        let url = resolve_url(&entry.url, &base);
        match fetch_blob(&url).await {
            Ok(blob) => items.push(Incoming {
                name: entry.name,
                blob,
                metadata: entry.metadata,
                uri: Some(url),
                expected_sha256: entry.sha256,
                status: LabelStatus::Unlabeled,
            }),
            Err(e) => report.problems.push(format!("{}: {e}", entry.name)),
        }
    }
    import_all(state, items, report, "Manifest").await;
}

/// A label bundle, merged into the current project (or into a new project when `new_project` is set).
/// Its images are matched to the project's by sha256; images not there are fetched from their `uri`.
pub async fn import_bundle(
    state: AppState,
    text: String,
    base_url: Option<String>,
    new_project: Option<String>,
) {
    let bundle = match parse_bundle(&text) {
        Ok(b) => b,
        Err(e) => return state.error(format!("Bundle not imported: {e}")),
    };
    if let Some(name) = new_project {
        if state.create_project(name).await.is_none() {
            return;
        }
    }
    if let Err(e) = merge_ontology(state, &bundle).await {
        return state.error(format!("Bundle not imported: {e}"));
    }
    let base = base_url.unwrap_or_else(page_url);
    let mut report = Report::default();
    let mut local_id: HashMap<String, AssetRecord> = HashMap::new();
    let mut to_fetch = Vec::new();
    for asset in &bundle.assets {
        let here = state
            .assets
            .with_untracked(|a| a.iter().find(|r| r.asset.sha256 == asset.sha256).cloned());
        match (here, &asset.uri) {
            (Some(record), _) => {
                local_id.insert(asset.id.clone(), record);
            }
            (None, Some(_)) => to_fetch.push(asset.clone()),
            (None, None) => report
                .problems
                .push(format!("{}: not in this project and the bundle has no URL for it; add the image, then import again", asset.name)),
        }
    }
    let mut items = Vec::new();
    for (i, asset) in to_fetch.iter().enumerate() {
        state.progress.set(Some(format!(
            "Fetching image {} of {}",
            i + 1,
            to_fetch.len()
        )));
        let url = resolve_url(asset.uri.as_deref().unwrap_or_default(), &base);
        match fetch_blob(&url).await {
            Ok(blob) => {
                items.push(Incoming {
                    name: asset.name.clone(),
                    blob,
                    metadata: asset.metadata.clone(),
                    uri: asset.uri.clone(),
                    expected_sha256: Some(asset.sha256.clone()),
                    status: asset.status,
                });
            }
            Err(e) => report.problems.push(format!("{}: {e}", asset.name)),
        }
    }
    let stored = import_all(state, items, Report::default(), "Bundle images").await;
    for record in stored {
        if let Some(source) = bundle
            .assets
            .iter()
            .find(|a| a.sha256 == record.asset.sha256)
        {
            local_id.insert(source.id.clone(), record);
        }
    }
    let labels = store_bundle_instances(state, &bundle, &local_id).await;
    // The project is shown again with its new labels before the outcome is announced, so whoever reads
    // the notice (a user, a test) finds the labels on screen.
    state
        .open_project(state.project_id.get_untracked().unwrap_or_default())
        .await;
    match labels {
        Ok(n) => {
            let mut text = format!("Bundle: {n} labels on {} images", local_id.len());
            if !report.problems.is_empty() {
                text += &format!("; skipped:\n{}", report.problems.join("\n"));
                state.error(text);
            } else {
                state.info(text);
            }
        }
        Err(e) => state.error(format!("Bundle labels not imported: {e}")),
    }
}

/// Adds the bundle's classes that the project lacks (by id), keeping the project's own names and colours.
async fn merge_ontology(state: AppState, bundle: &Bundle) -> Result<(), StoreError> {
    let Some(mut project): Option<Project> = state.project_now() else {
        return Err(StoreError::Idb("no project is open".into()));
    };
    let missing: Vec<_> = bundle
        .ontology
        .classes
        .iter()
        .filter(|c| project.ontology.class(&c.id).is_none())
        .cloned()
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    project.ontology.classes.extend(missing);
    store()?.put_project(&project).await?;
    state.reload_projects().await
}

/// Writes the bundle's instances onto the matching local images, one transaction per image. In a synced
/// batch they are changes like any other: queued in the outbox with them, and pushed.
async fn store_bundle_instances(
    state: AppState,
    bundle: &Bundle,
    local: &HashMap<String, AssetRecord>,
) -> Result<usize, StoreError> {
    let store = store()?;
    let mut count = 0;
    for (bundle_asset_id, record) in local {
        let existing = store.instances(&record.asset.id).await?;
        let added: Vec<_> = bundle
            .instances
            .iter()
            .filter(|i| &i.asset_id == bundle_asset_id)
            .map(|i| {
                let mut i = i.clone();
                i.asset_id = record.asset.id.clone();
                i
            })
            .collect();
        if added.is_empty() {
            continue;
        }
        let removed = existing
            .into_iter()
            .filter(|e| added.iter().any(|a| a.id == e.id))
            .collect();
        let mut record = record.clone();
        if record.asset.status == LabelStatus::Unlabeled {
            record.asset.status = LabelStatus::InProgress;
        }
        count += added.len();
        let outbox = state.sync.outbox_entry(&record);
        store
            .apply_edit(&record, &Edit { removed, added }, outbox.as_ref())
            .await?;
    }
    if count > 0 {
        crate::sync::schedule_push(state, 800);
    }
    Ok(count)
}

/// First open: the demo project of NuInsSeg tiles the run script put under `demo/`.
pub async fn import_demo(state: AppState) {
    let url = resolve_url("demo/bundle.json", &page_url());
    match fetch_text(&url).await {
        Ok(text) => {
            import_bundle(
                state,
                text,
                Some(url),
                Some("Demo: NuInsSeg nuclei (CC BY 4.0)".into()),
            )
            .await;
        }
        Err(_) => {
            state.create_project("My project".into()).await;
        }
    }
}
