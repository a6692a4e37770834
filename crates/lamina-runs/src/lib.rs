//! Model runs (`docs/model-runs.md`): a project's labels frozen with a reproducible train / validation /
//! test split, exported for training (bundle, COCO and a YOLO-seg dataset in one zip), a model's
//! predictions read back (COCO results, YOLO-seg text, bundles) and measured against the labels
//! (P/R/F1, IoU, Dice, PQ, bPQ/mPQ, AJI, COCO mAP). Pure: the app and the CLI share every number.

pub mod coco_eval;
pub mod evaluate;
pub mod export;
pub mod metrics;
pub mod predictions;
pub mod run;
pub mod shape;
pub mod split;
pub mod view;
pub mod yolo;

/// Each ontology class id's position: class indices in YOLO labels, COCO category ids minus one, and
/// the metrics' class numbers all follow ontology order.
pub fn class_indices(
    ontology: &lamina_core::labels::Ontology,
) -> std::collections::HashMap<&str, usize> {
    ontology
        .classes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.id.as_str(), i))
        .collect()
}

/// Everything that can go wrong with a run, worded for the person who sees it.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RunError {
    #[error("the predictions cannot be imported ({} problem(s); nothing was imported):\n  {}", .0.len(), .0.join("\n  "))]
    Predictions(Vec<String>),
    #[error("the run's labels: {0}")]
    Bundle(String),
    #[error("zip: {0}")]
    Zip(String),
}
