//! The model-runs page: the runs of the project, the chosen run and prediction sets, the thresholds, the
//! metrics shown, and the comparison view's image and layers.

use std::sync::Arc;

use lamina_core::bundle::Bundle;
use lamina_runs::metrics::Report;
use lamina_runs::run::Prediction;
use leptos::prelude::*;

use crate::store::runs::{PredictionRecord, RunRecord};

/// Which page the app shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Page {
    Catalog,
    Label,
    Runs,
}

/// A prediction set as listed (its predictions stay in storage until chosen).
#[derive(Clone, Debug, PartialEq)]
pub struct SetSummary {
    pub id: String,
    pub name: String,
    pub count: usize,
}

impl From<&PredictionRecord> for SetSummary {
    fn from(r: &PredictionRecord) -> Self {
        SetSummary {
            id: r.id.clone(),
            name: r.name.clone(),
            count: r.count,
        }
    }
}

/// The comparison view of one image: its picture and the two layers (RGBA at image resolution).
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    pub asset_id: String,
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub image_url: String,
    pub truth_rgba: Arc<Vec<u8>>,
    pub predictions_rgba: Arc<Vec<u8>>,
    /// Matched, missed, false positives, below the score threshold.
    pub counts: [usize; 4],
}

#[derive(Clone, Copy)]
pub struct RunsState {
    pub page: RwSignal<Page>,
    pub runs: RwSignal<Vec<RunRecord>>,
    pub run_id: RwSignal<Option<String>>,
    /// The chosen run's labels, parsed once when it is chosen.
    pub bundle: StoredValue<Option<Arc<Bundle>>>,
    pub sets: RwSignal<Vec<SetSummary>>,
    /// The prediction set measured, and the one it is compared with.
    pub set_a: RwSignal<Option<String>>,
    pub set_b: RwSignal<Option<String>>,
    /// Set A's predictions, parsed for the comparison view.
    pub predictions_a: StoredValue<Option<Arc<Vec<Prediction>>>>,
    pub iou: RwSignal<f64>,
    pub score: RwSignal<f64>,
    /// `train`, `val`, `test`, or every image.
    pub split: RwSignal<Option<String>>,
    pub report_a: RwSignal<Option<Arc<Report>>>,
    pub report_b: RwSignal<Option<Arc<Report>>>,
    /// Images picked in the per-image table, by name.
    pub picked: RwSignal<Vec<String>>,
    pub comparison: RwSignal<Option<Comparison>>,
    pub show_truth: RwSignal<bool>,
    pub show_predictions: RwSignal<bool>,
    pub opacity: RwSignal<f64>,
}

impl RunsState {
    pub fn new() -> Self {
        RunsState {
            page: RwSignal::new(Page::Label),
            runs: RwSignal::new(Vec::new()),
            run_id: RwSignal::new(None),
            bundle: StoredValue::new(None),
            sets: RwSignal::new(Vec::new()),
            set_a: RwSignal::new(None),
            set_b: RwSignal::new(None),
            predictions_a: StoredValue::new(None),
            iou: RwSignal::new(0.5),
            score: RwSignal::new(0.0),
            split: RwSignal::new(Some("test".into())),
            report_a: RwSignal::new(None),
            report_b: RwSignal::new(None),
            picked: RwSignal::new(Vec::new()),
            comparison: RwSignal::new(None),
            show_truth: RwSignal::new(true),
            show_predictions: RwSignal::new(true),
            opacity: RwSignal::new(1.0),
        }
    }

    /// The chosen run's record.
    pub fn run(&self) -> Option<RunRecord> {
        let id = self.run_id.get()?;
        self.runs.with(|rs| rs.iter().find(|r| r.id == id).cloned())
    }

    pub fn run_now(&self) -> Option<RunRecord> {
        let id = self.run_id.get_untracked()?;
        self.runs
            .with_untracked(|rs| rs.iter().find(|r| r.id == id).cloned())
    }
}

impl Default for RunsState {
    fn default() -> Self {
        Self::new()
    }
}
