//! Pre-labeling a selection of images on the device: the model the form runs (the loaded segment model
//! in automatic mode, or a user's YOLO-seg file), the form's defaults, which images, and a preview on up
//! to five images (shown, nothing saved). The run itself, over a pool of workers: [`run`].

pub mod run;

use lamina_core::prelabel::{self, MappedTo, PrelabelSettings};
use leptos::prelude::*;

use crate::browser::files::{array_buffer, sha256_hex};
use crate::error::AppError;
use crate::features::{batch_images, model};
use crate::state::catalog::in_label_queue;
use crate::state::model::{LoadedModelInfo, ModelStatus};
use crate::state::prelabel::{PreviewImage, Scope, YoloChoice};
use crate::state::AppState;
use crate::store;
use crate::store::AssetRecord;
use crate::worker_client::{self, PoolWorker};

/// A preview shows the model's work on this many images, before anything is stored.
pub const PREVIEW_IMAGES: usize = 5;
fn ready_model(state: AppState) -> Result<LoadedModelInfo, AppError> {
    match state.model.get_untracked() {
        ModelStatus::Ready(m) => Ok(m),
        ModelStatus::Loading(_) => Err(AppError::invalid(
            "the model is still loading; try again when it is ready",
        )),
        _ => Err(AppError::invalid(
            "load a segmentation model first (Segment model panel)",
        )),
    }
}

/// The model a run uses: the loaded segment model in automatic mode, or a user's YOLO-seg file.
#[derive(Clone)]
enum RunModel {
    Sam(LoadedModelInfo),
    Yolo(YoloChoice),
}

impl RunModel {
    fn key(&self) -> String {
        match self {
            RunModel::Sam(m) => m.key.clone(),
            RunModel::Yolo(y) => prelabel::yolo_key(&y.sha256),
        }
    }

    fn id(&self) -> String {
        match self {
            RunModel::Sam(m) => m.id.clone(),
            RunModel::Yolo(y) => y.file_name.clone(),
        }
    }

    fn classes(&self) -> Vec<String> {
        match self {
            RunModel::Sam(m) => prelabel::model_classes(&m.family),
            RunModel::Yolo(y) => y.classes.clone(),
        }
    }

    fn family(&self) -> String {
        match self {
            RunModel::Sam(m) => m.family.clone(),
            RunModel::Yolo(_) => prelabel::YOLO_FAMILY.into(),
        }
    }
}

/// The classes of the model the form will run (tracked, for the mapping form).
pub fn model_classes(state: AppState) -> Vec<String> {
    if let Some(y) = state.prelabel.yolo.get() {
        return y.classes;
    }
    match state.model.get() {
        ModelStatus::Ready(m) => prelabel::model_classes(&m.family),
        _ => Vec::new(),
    }
}

/// Opens the run form, with the model's measured settings unless the user set some.
pub fn open(state: AppState) {
    let ui = state.prelabel;
    if ui.settings.get_untracked().is_none() {
        if let Ok(m) = chosen_model(state) {
            ui.settings
                .set(Some(PrelabelSettings::for_family(&m.family())));
        }
    }
    ui.open.set(true);
}

/// The model the form runs now.
fn chosen_model(state: AppState) -> Result<RunModel, AppError> {
    match state.prelabel.yolo.get_untracked() {
        Some(y) => Ok(RunModel::Yolo(y)),
        None => ready_model(state).map(RunModel::Sam),
    }
}

/// A model's choice changed: its classes and measured settings replace the old ones.
fn reset_form(state: AppState, family: &str) {
    clear_preview(state);
    state.prelabel.mapping.set(Default::default());
    state
        .prelabel
        .settings
        .set(Some(PrelabelSettings::for_family(family)));
}

/// Takes a user's YOLO-seg ONNX file for the runs: checked by loading it in a worker (a file that is not
/// a YOLO-seg export is refused, naming what does not fit), and kept in the model cache by its SHA-256
/// so that a resumed run finds it.
pub async fn pick_yolo(state: AppState, file: web_sys::File) {
    let name = file.name();
    let picked = async {
        let bytes = array_buffer(&file, &name).await?;
        let sha256 = sha256_hex(&bytes).await?;
        // The worker takes its copy (transferred); the cache keeps this one.
        let kept = bytes.slice(0);
        state
            .progress
            .set(Some(format!("Checking {name} (loading it in a worker)…")));
        let worker = PoolWorker::start()?;
        let loaded = worker.load_yolo(&name, bytes).await?;
        store::shared()?.put_model_file(&sha256, &kept).await?;
        Ok::<_, AppError>(YoloChoice {
            file_name: name.clone(),
            sha256,
            classes: loaded.classes,
            input: loaded.input,
        })
    }
    .await;
    state.progress.set(None);
    match picked {
        Ok(choice) => {
            reset_form(state, prelabel::YOLO_FAMILY);
            state.info(format!(
                "{} is a YOLO-seg model ({}×{} input, classes: {}); map its classes to run it",
                choice.file_name,
                choice.input,
                choice.input,
                choice.classes.join(", ")
            ));
            state.prelabel.yolo.set(Some(choice));
        }
        Err(e) => state.fail(&format!("{name} was not taken"), &e),
    }
}

/// Back to the loaded segment model.
pub fn use_segment_model(state: AppState) {
    state.prelabel.yolo.set(None);
    let family = ready_model(state).map(|m| m.family).unwrap_or_default();
    reset_form(state, &family);
}

pub fn close(state: AppState) {
    clear_preview(state);
    state.prelabel.open.set(false);
}

fn clear_preview(state: AppState) {
    for p in state.prelabel.preview.get_untracked() {
        let _ = web_sys::Url::revoke_object_url(&p.url);
    }
    state.prelabel.preview.set(Vec::new());
}

/// The image ids a run covers, in list order (tracked).
pub fn selection(state: AppState) -> Vec<String> {
    let scope = state.prelabel.scope.get();
    let queue = state.review.queue.get();
    let slice = state.catalog.queue.get();
    let checked = state.prelabel.checked.get();
    state.assets.with(|all| {
        all.iter()
            .filter(|r| match scope {
                Scope::Listed => in_label_queue(r, queue, slice.as_ref()),
                Scope::Checked => checked.contains(&r.asset.id),
            })
            .map(|r| r.asset.id.clone())
            .collect()
    })
}

/// What a run needs before it starts: a model, valid settings, and every model class mapped, not all
/// of them ignored.
fn ready_to_run(state: AppState) -> Result<(RunModel, PrelabelSettings), AppError> {
    let model = chosen_model(state)?;
    let settings = state
        .prelabel
        .settings
        .get_untracked()
        .unwrap_or_else(|| PrelabelSettings::for_family(&model.family()));
    settings.validate().map_err(AppError::invalid)?;
    let classes = model.classes();
    let mapping = state.prelabel.mapping.get_untracked();
    let unmapped = prelabel::unmapped(&classes, &mapping, &state.ontology_now());
    if !unmapped.is_empty() {
        return Err(AppError::invalid(format!(
            "map the model's class {} to a project class (or ignore it) first",
            unmapped.join(", ")
        )));
    }
    if classes
        .iter()
        .all(|c| mapping.get(c) == Some(&MappedTo::Ignored))
    {
        return Err(AppError::invalid(
            "every model class is ignored: there is nothing to pre-label",
        ));
    }
    Ok((model, settings))
}

fn record_of(state: AppState, asset_id: &str) -> Option<AssetRecord> {
    state
        .assets
        .with_untracked(|all| all.iter().find(|r| r.asset.id == asset_id).cloned())
}

/// The image's bytes from storage, fetched first if it is a batch image not opened yet.
async fn image_bytes(
    state: AppState,
    record: &AssetRecord,
) -> Result<js_sys::ArrayBuffer, AppError> {
    let db = store::shared()?;
    let blob = match db.blob(&record.asset.id).await? {
        Some(b) => b,
        None if record.remote.is_some() => {
            let updated = batch_images::fetch_image(state, record).await?;
            state.replace_record(updated);
            db.blob(&record.asset.id).await?.ok_or_else(|| {
                AppError::Corrupt(format!("the image of {} is missing", record.asset.name))
            })?
        }
        None => {
            return Err(AppError::Corrupt(format!(
                "the image of {} is missing from storage",
                record.asset.name
            )))
        }
    };
    array_buffer(&blob, &record.asset.name).await
}

/// Runs the model on the first images of the selection and shows what it finds; nothing is stored.
pub async fn preview(state: AppState) {
    let ui = state.prelabel;
    let (model, settings) = match ready_to_run(state) {
        Ok(ready) => ready,
        Err(e) => return state.fail("No preview", &e),
    };
    let ids: Vec<String> = selection(state).into_iter().take(PREVIEW_IMAGES).collect();
    if ids.is_empty() {
        return state.info("No image is selected: pick a stage list or check images first");
    }
    clear_preview(state);
    ui.previewing.set(true);
    // A YOLO-seg model runs in a worker of its own; the segment model in the app's (with its cache).
    let yolo_worker = match &model {
        RunModel::Yolo(_) => match start_worker(&model).await {
            Ok(w) => Some(w),
            Err(e) => {
                ui.previewing.set(false);
                return state.fail("No preview", &e);
            }
        },
        RunModel::Sam(_) => None,
    };
    for (k, id) in ids.iter().enumerate() {
        let Some(record) = record_of(state, id) else {
            continue;
        };
        state.progress.set(Some(format!(
            "Previewing {} ({} of {})…",
            record.asset.name,
            k + 1,
            ids.len()
        )));
        let shown = async {
            let found = match (&model, &yolo_worker) {
                (RunModel::Yolo(_), Some(w)) => {
                    w.prelabel_yolo(image_bytes(state, &record).await?, &settings)
                        .await?
                }
                (_, _) => {
                    // The app's worker, with the embedding cache: a previewed image is ready to
                    // label after.
                    let key = model.key();
                    let (handle, _, _) = model::embed(state, &record, &key).await?;
                    worker_client::segment_all(handle, &settings).await?
                }
            };
            let blob = store::shared()?.blob(id).await?.ok_or_else(|| {
                AppError::Corrupt(format!("the image of {} is missing", record.asset.name))
            })?;
            let url = web_sys::Url::create_object_url_with_blob(&blob)
                .map_err(|e| AppError::browser("show the image", crate::browser::js_text(e)))?;
            Ok::<_, AppError>(PreviewImage {
                asset_id: id.clone(),
                name: record.asset.name.clone(),
                url,
                width: record.asset.width,
                height: record.asset.height,
                ms: found.ms,
                found: found.instances,
            })
        }
        .await;
        match shown {
            Ok(p) => ui.preview.update(|list| list.push(p)),
            Err(e) => state.fail(&format!("No preview of {}", record.asset.name), &e),
        }
    }
    state.progress.set(None);
    ui.previewing.set(false);
}

async fn start_worker(model: &RunModel) -> Result<PoolWorker, AppError> {
    let worker = PoolWorker::start()?;
    // Each worker gets its own copy: the files are transferred into it.
    match model {
        RunModel::Sam(m) => {
            let files = model::cached_files(&m.manifest).await?;
            worker.load_model(&m.manifest, &files).await?;
        }
        RunModel::Yolo(y) => {
            let bytes = store::shared()?
                .model_file(&y.sha256)
                .await?
                .ok_or_else(|| {
                    AppError::invalid(format!(
                        "{} is not in this browser's cache any more; pick the file again",
                        y.file_name
                    ))
                })?;
            worker.load_yolo(&y.file_name, bytes).await?;
        }
    }
    Ok(worker)
}
