//! Model runs (docs/model-runs.md): freeze the project's labels with a split, export the run zip,
//! import a model's predictions, measure them in the worker, look at one image's errors, and send
//! images back to labeling. The logic is `lamina_runs`; this module moves data between storage, the
//! worker and the screen.

use std::sync::Arc;

use lamina_core::bundle::{parse_bundle, Bundle};
use lamina_core::labels::LabelStatus;
use lamina_core::view::file_stem;
use lamina_runs::export::RunZipWriter;
use lamina_runs::metrics::{match_image, EvalImage, Object, Outcome, Report, Thresholds};
use lamina_runs::predictions::ImportSummary;
use lamina_runs::run::{make_run, Prediction, RunSpec};
use lamina_runs::shape::Shape;
use lamina_runs::view::outcome_layer_rgba;
use leptos::prelude::*;

use crate::browser::download::download_bytes;
use crate::browser::files::array_buffer;
use crate::browser::{new_id, now};
use crate::editing;
use crate::error::AppError;
use crate::features::export::current_bundle;
use crate::state::runs::{Comparison, SetSummary};
use crate::state::AppState;
use crate::store;
use crate::store::runs::{PredictionRecord, RunRecord};
use crate::worker_client;

/// Which images a new run takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunSource {
    /// Images marked submitted (the ones whose labels are finished).
    Submitted,
    /// Images a reviewer approved (stage Done).
    Done,
    /// Every image with at least one label.
    Labeled,
}

/// Reads the open project's runs; keeps the chosen one if it is still there.
pub async fn reload(state: AppState) {
    let Some(project) = state.project_now() else {
        state.runs.runs.set(Vec::new());
        return;
    };
    match async { store::shared()?.runs(&project.id).await }.await {
        Ok(runs) => {
            let keep = state
                .runs
                .run_id
                .get_untracked()
                .filter(|id| runs.iter().any(|r| &r.id == id));
            state.runs.runs.set(runs);
            if keep.is_none() {
                state.runs.run_id.set(None);
            }
        }
        Err(e) => state.fail("The model runs could not be read", &e),
    }
}

pub async fn create(state: AppState, spec: RunSpec, source: RunSource) {
    let result = async {
        if spec.name.trim().is_empty() {
            return Err(AppError::invalid("give the run a name"));
        }
        let project = state.project_now().ok_or(AppError::NoProject)?;
        let mut bundle = current_bundle(state).await?;
        let labeled: std::collections::HashSet<String> =
            bundle.instances.iter().map(|i| i.asset_id.clone()).collect();
        bundle.assets.retain(|a| match source {
            RunSource::Submitted => a.status == LabelStatus::Submitted,
            RunSource::Done => a.stage == lamina_core::review::Stage::Done,
            RunSource::Labeled => labeled.contains(&a.id),
        });
        if bundle.assets.is_empty() {
            return Err(AppError::invalid(match source {
                RunSource::Submitted => "no image is submitted yet: submit the images whose labels are done, or make the run from all labeled images",
                RunSource::Done => "no image is approved yet (stage Done): review the submitted images, or make the run from the submitted ones",
                RunSource::Labeled => "no image has labels yet",
            }));
        }
        let kept: std::collections::HashSet<&str> =
            bundle.assets.iter().map(|a| a.id.as_str()).collect();
        let instances = std::mem::take(&mut bundle.instances);
        bundle.instances = instances
            .into_iter()
            .filter(|i| kept.contains(i.asset_id.as_str()))
            .collect();
        let id = new_id();
        let (info, run_bundle) = make_run(&bundle, &spec, &id, &now());
        let record = RunRecord {
            id: id.clone(),
            project_id: project.id,
            info,
            bundle_json: run_bundle.to_json(),
        };
        store::shared()?.put_run(&record).await?;
        Ok(record)
    }
    .await;
    match result {
        Ok(record) => {
            let counts: Vec<String> = record
                .info
                .counts
                .iter()
                .map(|(s, n)| format!("{} {n}", s.as_str()))
                .collect();
            state.info(format!(
                "Run \"{}\" made: {}",
                record.info.spec.name,
                counts.join(", ")
            ));
            reload(state).await;
            choose_run(state, Some(record.id)).await;
        }
        Err(e) => state.fail("The run was not made", &e),
    }
}

/// Opens a run: parses its labels once and lists its prediction sets.
pub async fn choose_run(state: AppState, id: Option<String>) {
    let r = state.runs;
    r.run_id.set(id);
    r.report_a.set(None);
    r.report_b.set(None);
    r.comparison.set(None);
    r.picked.set(Vec::new());
    r.predictions_a.set_value(None);
    let Some(run) = r.run_now() else {
        r.bundle.set_value(None);
        r.sets.set(Vec::new());
        return;
    };
    match parse_bundle(&run.bundle_json) {
        Ok(b) => r.bundle.set_value(Some(Arc::new(b))),
        Err(e) => {
            r.bundle.set_value(None);
            return state.fail(
                "The run cannot be opened",
                &AppError::Corrupt(e.to_string()),
            );
        }
    }
    reload_sets(state, &run.id).await;
    let first = r.sets.with_untracked(|s| s.last().map(|s| s.id.clone()));
    r.set_a.set(first);
    r.set_b.set(None);
    if r.set_a.get_untracked().is_some() {
        measure(state).await;
    }
}

async fn reload_sets(state: AppState, run_id: &str) {
    match async { store::shared()?.prediction_sets(run_id).await }.await {
        Ok(sets) => state
            .runs
            .sets
            .set(sets.iter().map(SetSummary::from).collect()),
        Err(e) => state.fail("The prediction sets could not be read", &e),
    }
}

fn bundle_now(state: AppState) -> Result<Arc<Bundle>, AppError> {
    state
        .runs
        .bundle
        .get_value()
        .ok_or_else(|| AppError::invalid("choose a run first"))
}

/// The run zip: bundle with splits, COCO per split, the YOLO-seg dataset with every image.
pub async fn export_zip(state: AppState) {
    let result = async {
        let run = state
            .runs
            .run_now()
            .ok_or_else(|| AppError::invalid("choose a run first"))?;
        let bundle = bundle_now(state)?;
        let mut zip =
            RunZipWriter::new(&run.info, &bundle).map_err(|e| AppError::invalid(e.to_string()))?;
        let store = store::shared()?;
        let n = bundle.assets.len();
        let mut missing = 0;
        for (k, asset) in bundle.assets.iter().enumerate() {
            state
                .progress
                .set(Some(format!("Exporting the run: image {} of {n}", k + 1)));
            match store.blob(&asset.id).await? {
                Some(blob) => {
                    let buffer = array_buffer(&blob, &asset.name).await?;
                    let bytes = js_sys::Uint8Array::new(&buffer);
                    zip.add_image(asset, &bytes.to_vec())
                        .map_err(|e| AppError::invalid(e.to_string()))?;
                }
                // An image of a synced batch never opened on this device: labels only.
                None => missing += 1,
            }
        }
        let loss = zip.loss.clone();
        let bytes = zip.finish().map_err(|e| AppError::invalid(e.to_string()))?;
        let name = format!("{}.run.zip", file_stem(&run.info.spec.name));
        download_bytes(&name, &bytes, "application/zip")?;
        Ok((name, n, missing, loss))
    }
    .await;
    state.progress.set(None);
    match result {
        Ok((name, n, missing, loss)) => {
            let mut text = format!("Exported {name}: {n} images with their splits, COCO per split and a YOLO-seg dataset");
            if missing > 0 {
                text.push_str(&format!(
                    "; {missing} images are not on this device (open them once) and are left out of yolo/images"
                ));
            }
            if loss.multi_piece + loss.with_holes > 0 {
                text.push_str(&format!(
                    "; YOLO polygons: {} labels in several pieces written as their largest, {} with holes filled",
                    loss.multi_piece, loss.with_holes
                ));
            }
            state.info(text)
        }
        Err(e) => state.fail("The run was not exported", &e),
    }
}

/// Reads a predictions file in the worker and stores it as a new prediction set of the chosen run.
pub async fn import_predictions(state: AppState, file: web_sys::File, drop_unmapped: bool) {
    let name = file.name();
    let result = async {
        let run = state
            .runs
            .run_now()
            .ok_or_else(|| AppError::invalid("choose a run first"))?;
        let bytes = array_buffer(&file, &name).await?;
        let read =
            worker_client::read_predictions(&run.bundle_json, &name, bytes, drop_unmapped).await?;
        let summary: ImportSummary = serde_json::from_str(&read.summary)
            .map_err(|e| AppError::Worker(format!("the import summary is not understood: {e}")))?;
        let n = state.runs.sets.with_untracked(Vec::len) + 1;
        let record = PredictionRecord {
            id: new_id(),
            run_id: run.id.clone(),
            name: format!("#{n} {}", lamina_runs::yolo::stem(&name)),
            imported: now(),
            source: name.clone(),
            count: read.count,
            predictions_json: read.predictions,
        };
        store::shared()?.put_prediction_set(&record).await?;
        Ok((record, summary))
    }
    .await;
    match result {
        Ok((record, summary)) => {
            let mut text = format!(
                "Imported {} predictions on {} images from {name} as \"{}\"",
                summary.predictions, summary.images, record.name
            );
            for (class, n) in &summary.dropped_unmapped {
                text.push_str(&format!("; left out {n} of {class} (not in the ontology)"));
            }
            let r = state.runs;
            let previous = r.set_a.get_untracked();
            reload_sets(state, &record.run_id).await;
            r.set_a.set(Some(record.id));
            r.set_b.set(previous);
            measure(state).await;
            state.info(text);
        }
        Err(e) => state.fail("No predictions were imported", &e),
    }
}

async fn report_of(
    state: AppState,
    run: &RunRecord,
    set_id: &str,
) -> Result<(Report, PredictionRecord), AppError> {
    let set = store::shared()?
        .prediction_set(set_id)
        .await?
        .ok_or_else(|| AppError::invalid("that prediction set is gone"))?;
    let r = state.runs;
    let computed = worker_client::run_metrics(
        &run.bundle_json,
        &set.predictions_json,
        r.split.get_untracked().as_deref(),
        r.iou.get_untracked(),
        r.score.get_untracked(),
    )
    .await?;
    let report: Report = serde_json::from_str(&computed.report)
        .map_err(|e| AppError::Worker(format!("the metrics are not understood: {e}")))?;
    Ok((report, set))
}

/// Computes the metrics of set A (and B, to compare) in the worker with the chosen thresholds and split.
pub async fn measure(state: AppState) {
    let r = state.runs;
    let Some(run) = r.run_now() else { return };
    let result = async {
        // Set A's predictions are also kept parsed for the comparison view; set B gives only figures.
        let a = match r.set_a.get_untracked() {
            Some(id) => {
                let (report, set) = report_of(state, &run, &id).await?;
                let predictions: Vec<Prediction> = serde_json::from_str(&set.predictions_json)
                    .map_err(|e| {
                        AppError::Corrupt(format!("the stored predictions of {}: {e}", set.name))
                    })?;
                Some((report, predictions))
            }
            None => None,
        };
        let b = match r.set_b.get_untracked() {
            Some(id) if Some(&id) != r.set_a.get_untracked().as_ref() => {
                Some(report_of(state, &run, &id).await?.0)
            }
            _ => None,
        };
        Ok::<_, AppError>((a, b))
    }
    .await;
    match result {
        Ok((a, b)) => {
            let (report_a, predictions_a) = a.unzip();
            r.predictions_a.set_value(predictions_a.map(Arc::new));
            r.report_a.set(report_a.map(Arc::new));
            r.report_b.set(b.map(Arc::new));
            if let Some(c) = r.comparison.get_untracked() {
                compare_image(state, c.asset_id).await;
            }
        }
        Err(e) => state.fail("The metrics could not be computed", &e),
    }
}

/// Opens the comparison view of one image of the run: its truth filled and set A's predictions
/// outlined, each coloured matched / missed / false positive at the chosen thresholds.
pub async fn compare_image(state: AppState, asset_id: String) {
    let r = state.runs;
    let result = async {
        let bundle = bundle_now(state)?;
        let asset = bundle
            .assets
            .iter()
            .find(|a| a.id == asset_id)
            .ok_or_else(|| AppError::invalid("that image is not in the run"))?;
        let predictions = r
            .predictions_a
            .get_value()
            .ok_or_else(|| AppError::invalid("import or choose a prediction set first"))?;
        let truth: Vec<&lamina_core::labels::Instance> = bundle
            .instances
            .iter()
            .filter(|i| i.asset_id == asset_id)
            .collect();
        let preds: Vec<&Prediction> = predictions
            .iter()
            .filter(|p| p.asset_id == asset_id)
            .collect();
        let shape = |m| Shape::from_compressed(m).map_err(|e| AppError::Corrupt(e.to_string()));
        let image = EvalImage {
            name: asset.name.clone(),
            truth: truth
                .iter()
                .map(|i| {
                    Ok(Object {
                        class: 0,
                        score: 1.0,
                        shape: shape(&i.mask)?,
                    })
                })
                .collect::<Result<_, AppError>>()?,
            predictions: preds
                .iter()
                .map(|p| {
                    Ok(Object {
                        class: 0,
                        score: p.score,
                        shape: shape(&p.mask)?,
                    })
                })
                .collect::<Result<_, AppError>>()?,
        };
        let thresholds = Thresholds {
            iou: r.iou.get_untracked(),
            score: r.score.get_untracked(),
        };
        let (truth_outcomes, pred_outcomes) = match_image(&image, thresholds);
        let layer = |masks: Vec<(&lamina_core::rle::CompressedRle, Outcome)>, fill| {
            outcome_layer_rgba(asset.width, asset.height, &masks, fill)
                .map_err(|e| AppError::Corrupt(e.to_string()))
        };
        let truth_rgba = layer(
            truth
                .iter()
                .map(|i| &i.mask)
                .zip(truth_outcomes.iter().copied())
                .collect(),
            true,
        )?;
        let predictions_rgba = layer(
            preds
                .iter()
                .map(|p| &p.mask)
                .zip(pred_outcomes.iter().copied())
                .collect(),
            false,
        )?;
        let count = |o: Outcome| {
            truth_outcomes
                .iter()
                .chain(&pred_outcomes)
                .filter(|x| **x == o)
                .count()
        };
        let blob = store::shared()?.blob(&asset_id).await?.ok_or_else(|| {
            AppError::invalid("this image is not on this device yet: open it in labeling once")
        })?;
        let image_url = web_sys::Url::create_object_url_with_blob(&blob)
            .map_err(|e| AppError::browser("show the image", crate::browser::js_text(e)))?;
        Ok(Comparison {
            asset_id: asset_id.clone(),
            name: asset.name.clone(),
            width: asset.width,
            height: asset.height,
            image_url,
            truth_rgba: Arc::new(truth_rgba),
            predictions_rgba: Arc::new(predictions_rgba),
            // A matched pair counts once.
            counts: [
                count(Outcome::Matched) / 2,
                count(Outcome::Missed),
                count(Outcome::FalsePositive),
                count(Outcome::BelowScore),
            ],
        })
    }
    .await;
    match result {
        Ok(c) => {
            if let Some(old) = r.comparison.get_untracked() {
                let _ = web_sys::Url::revoke_object_url(&old.image_url);
            }
            r.comparison.set(Some(c));
        }
        Err(e) => state.fail("The image cannot be compared", &e),
    }
}

/// Sends the picked images back to labeling: their status goes back to "in progress" in the project.
pub async fn send_to_labeling(state: AppState) {
    let r = state.runs;
    let names = r.picked.get_untracked();
    let result = async {
        let bundle = bundle_now(state)?;
        let ids: Vec<String> = bundle
            .assets
            .iter()
            .filter(|a| names.contains(&a.name))
            .map(|a| a.id.clone())
            .collect();
        editing::set_statuses(state, &ids, LabelStatus::InProgress).await
    }
    .await;
    match result {
        Ok(n) => {
            r.picked.set(Vec::new());
            state.info(format!(
                "{n} images sent back to labeling (status: in progress)"
            ));
        }
        Err(e) => state.fail("The images were not sent back to labeling", &e),
    }
}

/// Deletes the chosen run and its prediction sets (the project's labels are not touched).
pub async fn delete_run(state: AppState) {
    let Some(run) = state.runs.run_now() else {
        return;
    };
    match async { store::shared()?.delete_run(&run.id).await }.await {
        Ok(()) => {
            choose_run(state, None).await;
            reload(state).await;
            state.info(format!("Run \"{}\" deleted", run.info.spec.name));
        }
        Err(e) => state.fail("The run was not deleted", &e),
    }
}
