//! Pre-labeling a selection of images on the device: the run form's defaults, a preview on up to five
//! images (shown, nothing saved), and the run itself over a pool of workers beside the app's own, stored
//! image by image so that a reload resumes it and Cancel stops it at once.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use futures_util::future::join_all;
use lamina_core::prelabel::{self, MappedTo, PrelabelJob, PrelabelSettings};
use lamina_core::review::Stage;
use leptos::prelude::*;
use wasm_bindgen::JsValue;

use crate::browser::files::{array_buffer, sha256_hex};
use crate::browser::{new_id, now, now_ms};
use crate::editing::prelabel::{store_found, Stored};
use crate::editing::review::signer;
use crate::error::AppError;
use crate::features::{batch_images, model};
use crate::state::model::{LoadedModelInfo, ModelStatus};
use crate::state::prelabel::{PreviewImage, RunView, Scope, YoloChoice};
use crate::state::AppState;
use crate::store;
use crate::store::AssetRecord;
use crate::worker_client::{self, PoolWorker};

/// A preview shows the model's work on this many images, before anything is stored.
pub const PREVIEW_IMAGES: usize = 5;

/// What one pool worker holds at most, MB: the wasm and tract's plan of the model, one image's
/// embedding (tens of MB for a big image in windows) and its masks.
const WORKER_BUDGET_MB: f64 = 600.0;

thread_local! {
    /// The workers of the run going on, so that Cancel can stop them mid-image.
    static POOL: RefCell<Vec<Rc<PoolWorker>>> = const { RefCell::new(Vec::new()) };
}

fn job_setting(project_id: &str) -> String {
    format!("prelabel_job/{project_id}")
}

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
    let checked = state.prelabel.checked.get();
    state.assets.with(|all| {
        all.iter()
            .filter(|r| match scope {
                Scope::Listed => queue.is_none_or(|s| r.asset.stage == s),
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

/// Starts a run over the selection.
pub async fn run(state: AppState) {
    let ui = state.prelabel;
    if ui.running.with_untracked(Option::is_some) {
        return state.info("A pre-label run is going on already");
    }
    let (model, settings) = match ready_to_run(state) {
        Ok(ready) => ready,
        Err(e) => return state.fail("Pre-labeling not started", &e),
    };
    let Some(project_id) = state.project_id.get_untracked() else {
        return state.fail("Pre-labeling not started", &AppError::NoProject);
    };
    let asset_ids = selection(state);
    if asset_ids.is_empty() {
        return state.info("No image is selected: pick a stage list or check images first");
    }
    let job = PrelabelJob {
        id: new_id(),
        project_id,
        model_key: model.key(),
        model_id: model.id(),
        classes: model.classes(),
        settings,
        mapping: ui.mapping.get_untracked(),
        to_stage: ui.to_stage.get_untracked(),
        asset_ids,
        finished: Default::default(),
        failed: Default::default(),
        instances: 0,
        started: now(),
    };
    clear_preview(state);
    execute(state, job).await;
}

/// Resumes the run a reload, a crash or Cancel stopped.
pub async fn resume(state: AppState) {
    let Some(job) = state.prelabel.interrupted.get_untracked() else {
        return;
    };
    if state.prelabel.running.with_untracked(Option::is_some) {
        return state.info("A pre-label run is going on already");
    }
    execute(state, job).await;
}

/// Forgets an interrupted run; the pre-labels it stored stay.
pub async fn discard(state: AppState) {
    let Some(job) = state.prelabel.interrupted.get_untracked() else {
        return;
    };
    match async {
        store::shared()?
            .put_setting(&job_setting(&job.project_id), "")
            .await
    }
    .await
    {
        Ok(()) => state.prelabel.interrupted.set(None),
        Err(e) => state.fail("The interrupted run was not forgotten", &e),
    }
}

/// Stops the run at once: each worker is terminated mid-image, and the run can be resumed.
pub fn cancel(state: AppState) {
    state.prelabel.cancel.set_value(true);
    let workers = POOL.with_borrow_mut(std::mem::take);
    for w in workers {
        w.stop();
    }
}

/// When a project opens: a run of it that did not finish is offered for resuming.
pub async fn load_interrupted(state: AppState, project_id: &str) {
    let stored = async { store::shared()?.setting(&job_setting(project_id)).await }.await;
    let job = match stored {
        Ok(Some(text)) if !text.is_empty() => match serde_json::from_str::<PrelabelJob>(&text) {
            Ok(job) => Some(job),
            Err(e) => {
                state.error(format!(
                    "An interrupted pre-label run could not be read ({e}); it is ignored"
                ));
                None
            }
        },
        Ok(_) => None,
        Err(e) => {
            state.fail("An interrupted pre-label run could not be read", &e);
            None
        }
    };
    state
        .prelabel
        .interrupted
        .set(job.filter(|j| !j.is_finished()));
}

/// The pool's size: what the user asked for, else one worker per core within the memory budget.
fn pool_size(state: AppState) -> usize {
    if let Some(n) = state.prelabel.workers.get_untracked() {
        return n.clamp(1, prelabel::MAX_POOL);
    }
    let navigator = web_sys::window().map(|w| w.navigator());
    let cores = navigator.as_ref().map(|n| n.hardware_concurrency() as u32);
    // Chromium only (`navigator.deviceMemory`, GB, rounded and capped at 8).
    let memory = navigator.and_then(|n| {
        js_sys::Reflect::get(&n, &JsValue::from_str("deviceMemory"))
            .ok()
            .and_then(|v| v.as_f64())
    });
    prelabel::pool_size(cores, memory, WORKER_BUDGET_MB)
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

async fn save_job(job: &PrelabelJob) -> Result<(), AppError> {
    let text = serde_json::to_string(job)
        .map_err(|e| AppError::invalid(format!("the run cannot be saved: {e}")))?;
    store::shared()?
        .put_setting(&job_setting(&job.project_id), &text)
        .await
}

/// How a worker's share of the run ended.
enum LoopEnd {
    Drained,
    Cancelled,
    Fatal(AppError),
}

async fn execute(state: AppState, job: PrelabelJob) {
    let ui = state.prelabel;
    let fail = |e: &AppError| state.fail("Pre-labeling stopped", e);
    let model = match (job.yolo_sha256(), ready_model(state)) {
        (Some(sha256), _) => RunModel::Yolo(YoloChoice {
            file_name: job.model_id.clone(),
            sha256: sha256.to_owned(),
            classes: job.classes.clone(),
            input: 0,
        }),
        (None, Ok(m)) if m.key == job.model_key => RunModel::Sam(m),
        (None, _) => {
            ui.interrupted.set(Some(job.clone()));
            return fail(&AppError::invalid(format!(
                "this run uses the model {}; load it first",
                job.model_id
            )));
        }
    };
    let targets = job.targets();
    let signer = if job.to_stage == Stage::InReview {
        match signer(state) {
            Ok(name) => Some(name),
            Err(e) => return fail(&e),
        }
    } else {
        None
    };
    if let Err(e) = save_job(&job).await {
        return fail(&e);
    }
    ui.interrupted.set(None);
    ui.cancel.set_value(false);
    let remaining = job.remaining();
    let n = pool_size(state).min(remaining.len()).max(1);
    state.progress.set(Some(format!(
        "Pre-labeling: starting {n} worker(s), each loading the model…"
    )));
    ui.running.set(Some(RunView {
        job: job.clone(),
        workers: n,
        rate: None,
    }));
    let started = join_all((0..n).map(|_| start_worker(&model))).await;
    let mut workers = Vec::new();
    for w in started {
        match w {
            Ok(w) => workers.push(Rc::new(w)),
            Err(e) => {
                ui.running.set(None);
                state.progress.set(None);
                ui.interrupted.set(Some(job));
                return fail(&e);
            }
        }
    }
    POOL.with_borrow_mut(|p| *p = workers.clone());
    let queue = Rc::new(RefCell::new(VecDeque::from(remaining)));
    let job = Rc::new(RefCell::new(job));
    let run_started = (now_ms(), job.borrow().done());
    let worker_ms = Rc::new(RefCell::new(Vec::new()));
    let ends = join_all(workers.iter().map(|w| {
        work(
            state,
            w.clone(),
            Shared {
                queue: queue.clone(),
                job: job.clone(),
                worker_ms: worker_ms.clone(),
                yolo: matches!(model, RunModel::Yolo(_)),
            },
            &targets,
            signer.as_deref(),
            run_started,
        )
    }))
    .await;
    let seconds = (now_ms() - run_started.0) / 1000.0;
    POOL.with_borrow_mut(Vec::clear);
    drop(workers);
    ui.running.set(None);
    state.progress.set(None);
    let job = job.borrow().clone();
    if let Some(e) = ends.iter().find_map(|e| match e {
        LoopEnd::Fatal(e) => Some(e),
        _ => None,
    }) {
        ui.interrupted.set(Some(job));
        return fail(e);
    }
    if ends.iter().any(|e| matches!(e, LoopEnd::Cancelled)) || !job.is_finished() {
        state.info(format!(
            "Pre-labeling cancelled after {} of {} images; resume it from the Pre-label panel",
            job.done(),
            job.asset_ids.len()
        ));
        ui.interrupted.set(Some(job));
        return;
    }
    let forgot = async {
        store::shared()?
            .put_setting(&job_setting(&job.project_id), "")
            .await
    }
    .await;
    if let Err(e) = forgot {
        web_sys::console::warn_1(&format!("finished run not forgotten: {e}").into());
    }
    let skipped = if job.failed.is_empty() {
        String::new()
    } else {
        let names: Vec<String> = job
            .failed
            .iter()
            .map(|(id, why)| {
                let name = record_of(state, id).map_or(id.clone(), |r| r.asset.name);
                format!("{name} ({why})")
            })
            .collect();
        format!("; left alone: {}", names.join(", "))
    };
    let mut ms = worker_ms.borrow().clone();
    ms.sort_by(f64::total_cmp);
    let timing = ms.get(ms.len() / 2).map_or(String::new(), |p50| {
        format!(
            " ({:.2} images/s on {n} worker(s), p50 {p50:.0} ms per image in a worker)",
            ms.len() as f64 / seconds.max(1e-3)
        )
    });
    state.info(format!(
        "Pre-labeled {} images: {} pre-labels, sent to {}{skipped}{timing}",
        job.asset_ids.len() - job.failed.len(),
        job.instances,
        job.to_stage.label()
    ));
}

/// What the workers of one run share.
struct Shared {
    queue: Rc<RefCell<VecDeque<String>>>,
    job: Rc<RefCell<PrelabelJob>>,
    /// Each image's time in its worker (encode and automatic mode), for the summary.
    worker_ms: Rc<RefCell<Vec<f64>>>,
    /// The workers run a YOLO-seg model (else a segment model's automatic mode).
    yolo: bool,
}

/// One worker's share: takes the next image until none is left, stores what it finds, and saves the
/// run after each image.
async fn work(
    state: AppState,
    worker: Rc<PoolWorker>,
    shared: Shared,
    targets: &[Option<String>],
    signer: Option<&str>,
    (started_ms, done_at_start): (f64, usize),
) -> LoopEnd {
    let ui = state.prelabel;
    let Shared {
        queue,
        job,
        worker_ms,
        yolo,
    } = shared;
    loop {
        if ui.cancel.get_value() {
            return LoopEnd::Cancelled;
        }
        let Some(id) = queue.borrow_mut().pop_front() else {
            return LoopEnd::Drained;
        };
        let outcome = match record_of(state, &id) {
            None => Err("no longer in the project".to_string()),
            Some(record) => {
                let settings = job.borrow().settings;
                let found = async {
                    let bytes = image_bytes(state, &record).await?;
                    if yolo {
                        worker.prelabel_yolo(bytes, &settings).await
                    } else {
                        worker.prelabel(bytes, &settings).await
                    }
                }
                .await;
                match found {
                    Err(AppError::Cancelled) => return LoopEnd::Cancelled,
                    Err(e) if ui.cancel.get_value() => {
                        web_sys::console::warn_1(&format!("after cancel: {e}").into());
                        return LoopEnd::Cancelled;
                    }
                    Err(e) => Err(e.to_string()),
                    Ok(found) => {
                        worker_ms.borrow_mut().push(found.ms);
                        let snapshot = job.borrow().clone();
                        match store_found(state, &snapshot, targets, &id, found.instances, signer)
                            .await
                        {
                            Ok(Stored::Labels(n)) => {
                                job.borrow_mut().instances += n;
                                Ok(())
                            }
                            Ok(Stored::Skipped(why)) => Err(why),
                            // Storage refusing (full, or gone) stops the run; the image runs again
                            // on resume.
                            Err(e @ (AppError::StorageFull | AppError::Storage(_))) => {
                                return LoopEnd::Fatal(e)
                            }
                            Err(e) => Err(e.to_string()),
                        }
                    }
                }
            }
        };
        let snapshot = {
            let mut j = job.borrow_mut();
            if let Err(why) = outcome {
                j.failed.insert(id.clone(), why);
            }
            j.finished.insert(id);
            j.clone()
        };
        if let Err(e) = save_job(&snapshot).await {
            return LoopEnd::Fatal(e);
        }
        let done = snapshot.done();
        let seconds = (now_ms() - started_ms) / 1000.0;
        let rate = (seconds > 0.0).then(|| (done - done_at_start) as f64 / seconds);
        state.progress.set(Some(format!(
            "Pre-labeling: {done} of {} images",
            snapshot.asset_ids.len()
        )));
        ui.running.update(|r| {
            if let Some(r) = r {
                r.job = snapshot;
                r.rate = rate;
            }
        });
    }
}
