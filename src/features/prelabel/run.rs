//! The pre-label run: a pool of workers beside the app's own (one per core, within the memory budget),
//! each taking the next image; what they find stored image by image as pending pre-labels, and the job
//! saved after each image so that a reload resumes it. Cancel terminates the workers at once.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use futures_util::future::join_all;
use lamina_core::prelabel::{self, PrelabelJob};
use lamina_core::review::Stage;
use leptos::prelude::*;
use wasm_bindgen::JsValue;

use super::{
    clear_preview, image_bytes, ready_model, ready_to_run, record_of, selection, start_worker,
    RunModel,
};
use crate::browser::{new_id, now, now_ms};
use crate::editing::prelabel::{store_found, Stored};
use crate::editing::review::signer;
use crate::error::AppError;
use crate::state::prelabel::{RunView, YoloChoice};
use crate::state::AppState;
use crate::store;
use crate::worker_client::PoolWorker;

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
