//! Model runs in IndexedDB (schema v4): `runs` holds each run with its frozen label bundle (as JSON text,
//! which the worker reads as it is), `run_predictions` each prediction set imported into a run. A run
//! is written in one transaction, and so is each prediction set: an import lands whole or not at all.

use idb::{Database, KeyPath, ObjectStoreParams};
use lamina_runs::run::RunInfo;
use serde::{Deserialize, Serialize};
use wasm_bindgen::JsValue;

use super::{add_index, from_js, to_js, Store};
use crate::error::AppError;

pub(crate) const RUNS: &str = "runs";
pub(crate) const RUN_PREDICTIONS: &str = "run_predictions";

pub(super) fn migrate_to_v4(db: &Database) -> Result<(), idb::Error> {
    let keyed_by_id = || {
        let mut p = ObjectStoreParams::new();
        p.key_path(Some(KeyPath::new_single("id")));
        p
    };
    let runs = db.create_object_store(RUNS, keyed_by_id())?;
    add_index(&runs, "project", "project_id")?;
    let predictions = db.create_object_store(RUN_PREDICTIONS, keyed_by_id())?;
    add_index(&predictions, "run", "run_id")?;
    Ok(())
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: String,
    pub project_id: String,
    pub info: RunInfo,
    /// The run's label bundle (each asset's split in its metadata), JSON.
    pub bundle_json: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PredictionRecord {
    pub id: String,
    pub run_id: String,
    pub name: String,
    pub imported: String,
    /// The file it came from.
    pub source: String,
    pub count: usize,
    /// `lamina_runs::run::Prediction`s, JSON.
    pub predictions_json: String,
}

impl Store {
    pub async fn runs(&self, project_id: &str) -> Result<Vec<RunRecord>, AppError> {
        let mut runs: Vec<RunRecord> = self.get_all(RUNS, Some(("project", project_id))).await?;
        runs.sort_by(|a, b| a.info.created.cmp(&b.info.created));
        Ok(runs)
    }

    pub async fn put_run(&self, run: &RunRecord) -> Result<(), AppError> {
        let value = to_js(run)?;
        self.write(&[RUNS], |tx| {
            tx.object_store(RUNS)?.put(&value, None)?;
            Ok(())
        })
        .await
    }

    pub async fn prediction_sets(&self, run_id: &str) -> Result<Vec<PredictionRecord>, AppError> {
        let mut sets: Vec<PredictionRecord> =
            self.get_all(RUN_PREDICTIONS, Some(("run", run_id))).await?;
        sets.sort_by(|a, b| a.imported.cmp(&b.imported));
        Ok(sets)
    }

    /// One prediction set, by id.
    pub async fn prediction_set(&self, id: &str) -> Result<Option<PredictionRecord>, AppError> {
        self.get_value(RUN_PREDICTIONS, id)
            .await?
            .filter(|v| !v.is_undefined())
            .map(from_js)
            .transpose()
    }

    pub async fn put_prediction_set(&self, set: &PredictionRecord) -> Result<(), AppError> {
        let value = to_js(set)?;
        self.write(&[RUN_PREDICTIONS], |tx| {
            tx.object_store(RUN_PREDICTIONS)?.put(&value, None)?;
            Ok(())
        })
        .await
    }

    /// Removes a run and its prediction sets in one transaction.
    pub async fn delete_run(&self, run_id: &str) -> Result<(), AppError> {
        let sets = self.prediction_sets(run_id).await?;
        let key = JsValue::from_str(run_id);
        self.write(&[RUNS, RUN_PREDICTIONS], |tx| {
            tx.object_store(RUNS)?.delete(idb::Query::Key(key))?;
            let predictions = tx.object_store(RUN_PREDICTIONS)?;
            for s in &sets {
                predictions.delete(idb::Query::Key(JsValue::from_str(&s.id)))?;
            }
            Ok(())
        })
        .await
    }
}
