//! Getting images and labels in: files, folders, URL manifests, label bundles, and the demo project.
//! One image is one transaction: a failure (bad file, full quota, server error) loses only that image and
//! is reported by name; the rest of the import goes on, except after a full quota, which stops it.

use std::collections::{BTreeMap, HashMap};

use lamina_core::bundle::{parse_bundle, Bundle};
use lamina_core::edit::Edit;
use lamina_core::image_list::parse_manifest;
use lamina_core::labels::{Asset, LabelStatus, Project};
use lamina_core::view::is_image_file_name;
use leptos::prelude::*;
use serde_json::Value;
use wasm_bindgen::JsCast;
use web_sys::{Blob, File, FileSystemDirectoryEntry, FileSystemEntry, FileSystemFileEntry};

use crate::browser::fetch::{fetch_blob, fetch_text};
use crate::browser::files::{array_buffer, entry_file, read_directory};
use crate::browser::{new_id, page_url, resolve_url};
use crate::editing;
use crate::editing::push::change_queued;
use crate::editing::review;
use crate::error::AppError;
use crate::features::navigate;
use crate::state::AppState;
use crate::store;
use crate::store::review::ReviewRecord;
use crate::store::AssetRecord;
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
    /// Imported, but with something to fix (bad values in a number column of a manifest).
    pub warnings: Vec<String>,
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
        if !self.warnings.is_empty() {
            text += &format!("\nTo check in the manifest:\n{}", self.warnings.join("\n"));
        }
        if let Some(why) = &self.stopped {
            text = format!("{why}\n{text}");
        }
        if self.problems.is_empty() && self.warnings.is_empty() && self.stopped.is_none() {
            state.info(text);
        } else {
            state.error(text);
        }
    }
}

/// Decodes in the worker, checks, and stores one image. Returns the stored record.
async fn import_one(
    state: AppState,
    project_id: &str,
    item: Incoming,
) -> Result<AssetRecord, ImportError> {
    let bytes = array_buffer(&item.blob, &item.name)
        .await
        .map_err(ImportError::Skip)?;
    let decoded = decode_image(bytes).await.map_err(ImportError::Skip)?;
    if let Some(expected) = &item.expected_sha256 {
        if expected != &decoded.info.sha256 {
            return Err(ImportError::Skip(AppError::invalid(format!(
                "its sha256 is {}, not the {} the manifest gives",
                &decoded.info.sha256[..12],
                &expected[..12.min(expected.len())]
            ))));
        }
    }
    if state
        .assets
        .with_untracked(|a| a.iter().any(|r| r.asset.sha256 == decoded.info.sha256))
    {
        return Err(ImportError::Skip(AppError::invalid(
            "the same image is already in this project",
        )));
    }
    let blob = match &decoded.display {
        Some(_) => decoded
            .blob(&js_sys::Uint8Array::new_with_length(0))
            .map_err(ImportError::Skip)?,
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
            sha256: decoded.info.sha256,
            width: decoded.info.width,
            height: decoded.info.height,
            metadata: item.metadata,
            uri: item.uri,
            status: item.status,
            stage: Default::default(),
        },
        remote: None,
        review_note: None,
        label_counts: None,
        imported: Some(crate::browser::now()),
    };
    let store = store::shared().map_err(ImportError::Stop)?;
    store.add_asset(&record, &blob).await.map_err(|e| match e {
        AppError::StorageFull => ImportError::Stop(e),
        other => ImportError::Skip(other),
    })?;
    state.assets.update(|a| a.push(record.clone()));
    Ok(record)
}

/// Why one image was not imported: `Skip` loses only that image, `Stop` (a full disk) ends the import.
enum ImportError {
    Skip(AppError),
    Stop(AppError),
}

/// Imports items one by one, with progress, into the current project.
async fn import_all(
    state: AppState,
    items: Vec<Incoming>,
    mut report: Report,
    what: &str,
) -> Vec<AssetRecord> {
    let Some(project_id) = state.project_id.get_untracked() else {
        state.fail(&format!("{what} failed"), &AppError::NoProject);
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
        navigate::open_asset(state, 0).await;
    }
    stored
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
        items.partition(|i| !i.name.contains('/') || is_image_file_name(&i.name));
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
                Err(e) => state.fail("A dropped folder was not imported", &e),
            }
        } else if entry.is_file() {
            let path = entry.full_path().trim_start_matches('/').to_owned();
            if !is_image_file_name(&path) && path.contains('/') {
                skipped += 1;
                continue;
            }
            let file_entry: FileSystemFileEntry = entry.unchecked_into();
            match entry_file(&file_entry).await {
                Ok(f) => files.push(incoming_file(f, path)),
                Err(e) => state.fail("A dropped file was not imported", &e),
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

/// A CSV or JSON manifest of image URLs (with metadata columns), given as text read from `base_url`.
pub async fn import_manifest(state: AppState, text: String, base_url: Option<String>) {
    let manifest = match parse_manifest(&text) {
        Ok(m) => m,
        Err(e) => return state.error(format!("Manifest not imported: {e}")),
    };
    let base = base_url.unwrap_or_else(page_url);
    let mut report = Report {
        problems: manifest.problems.clone(),
        warnings: lamina_core::catalog::mixed_columns(
            manifest
                .entries
                .iter()
                .map(|e| (e.name.as_str(), &e.metadata)),
        ),
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
        if navigate::create_project(state, name).await.is_none() {
            return;
        }
    }
    if let Err(e) = merge_ontology(state, &bundle).await {
        return state.fail("Bundle not imported", &e);
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
    let labels = match store_bundle_instances(state, &bundle, &local_id).await {
        Ok(n) => store_bundle_review(&bundle, &local_id).await.map(|()| n),
        Err(e) => Err(e),
    };
    // The project is shown again with its new labels before the outcome is announced, so whoever reads
    // the notice (a user, a test) finds the labels on screen.
    navigate::open_project(state, state.project_id.get_untracked().unwrap_or_default()).await;
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
        Err(e) => state.fail("Bundle labels not imported", &e),
    }
}

/// Adds the bundle's classes that the project lacks (by id), keeping the project's own names and colours.
async fn merge_ontology(state: AppState, bundle: &Bundle) -> Result<(), AppError> {
    let Some(mut project): Option<Project> = state.project_now() else {
        return Err(AppError::NoProject);
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
    store::shared()?.put_project(&project).await?;
    editing::reload_projects(state).await
}

/// Writes the bundle's instances onto the matching local images, one transaction per image. In a synced
/// batch they are changes like any other: queued in the outbox with them, and pushed.
async fn store_bundle_instances(
    state: AppState,
    bundle: &Bundle,
    local: &HashMap<String, AssetRecord>,
) -> Result<usize, AppError> {
    let store = store::shared()?;
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
        change_queued(state);
    }
    Ok(count)
}

/// Writes the bundle's review events onto the matching local images and sets each image's stage from
/// its labels and events, one transaction per image.
async fn store_bundle_review(
    bundle: &Bundle,
    local: &HashMap<String, AssetRecord>,
) -> Result<(), AppError> {
    let store = store::shared()?;
    let Some(project_id) = local.values().next().map(|r| r.project_id.clone()) else {
        return Ok(());
    };
    // The records as stored now (the labels just written may have moved their statuses on).
    let mut stored: HashMap<String, AssetRecord> = store
        .assets(&project_id)
        .await?
        .into_iter()
        .map(|r| (r.asset.id.clone(), r))
        .collect();
    for (bundle_asset_id, record) in local {
        let events: Vec<ReviewRecord> = bundle
            .review
            .iter()
            .filter(|e| &e.asset_id == bundle_asset_id)
            .map(|e| {
                let mut e = e.clone();
                e.asset_id = record.asset.id.clone();
                ReviewRecord::new(&record.project_id, e, false)
            })
            .collect();
        let Some(mut record) = stored.remove(&record.asset.id) else {
            continue;
        };
        let instances = store.instances(&record.asset.id).await?;
        let mut all = store.review_events(&record.asset.id).await?;
        all.extend(events.iter().map(|r| r.event.clone()));
        review::restage(&mut record, &instances, &all);
        store.record_review(&record, &events, None).await?;
    }
    Ok(())
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
        // No demo served with the app (a bare build): an empty project to start from.
        Err(_) => {
            navigate::create_project(state, "My project".into()).await;
        }
    }
}
