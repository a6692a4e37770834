//! From a run's labels and a prediction set to the metrics: objects grouped by image, classes in
//! ontology order, optionally one split only.

use std::collections::HashMap;

use lamina_core::bundle::Bundle;

use crate::metrics::{evaluate, EvalImage, Object, Report, Thresholds};
use crate::run::{split_of, Prediction};
use crate::shape::Shape;
use crate::split::Split;
use crate::RunError;

/// The images of `truth` (those of `only` when given) with their truth (bundle order) and predictions
/// (given order).
pub fn eval_images(
    truth: &Bundle,
    predictions: &[Prediction],
    only: Option<Split>,
) -> Result<(Vec<String>, Vec<EvalImage>), RunError> {
    let class_index = crate::class_indices(&truth.ontology);
    let mut images: Vec<EvalImage> = Vec::new();
    let mut image_index: HashMap<&str, usize> = HashMap::new();
    for asset in &truth.assets {
        if only.is_some() && split_of(asset) != only {
            continue;
        }
        image_index.insert(asset.id.as_str(), images.len());
        images.push(EvalImage {
            name: asset.name.clone(),
            truth: Vec::new(),
            predictions: Vec::new(),
        });
    }
    let class_of = |id: &str, what: &str| {
        class_index
            .get(id)
            .copied()
            .ok_or_else(|| RunError::Bundle(format!("{what}: class {id:?} is not in the ontology")))
    };
    let shape_of = |mask, what: &str| {
        Shape::from_compressed(mask).map_err(|e| RunError::Bundle(format!("{what}: mask: {e}")))
    };
    for inst in &truth.instances {
        if let Some(&i) = image_index.get(inst.asset_id.as_str()) {
            let what = format!("instance {}", inst.id);
            images[i].truth.push(Object {
                class: class_of(&inst.class_id, &what)?,
                score: 1.0,
                shape: shape_of(&inst.mask, &what)?,
            });
        }
    }
    for (n, p) in predictions.iter().enumerate() {
        if let Some(&i) = image_index.get(p.asset_id.as_str()) {
            let what = format!("prediction {n}");
            images[i].predictions.push(Object {
                class: class_of(&p.class_id, &what)?,
                score: p.score,
                shape: shape_of(&p.mask, &what)?,
            });
        }
    }
    let classes = truth
        .ontology
        .classes
        .iter()
        .map(|c| c.name.clone())
        .collect();
    Ok((classes, images))
}

/// Every figure for a prediction set against the run's labels.
pub fn run_metrics(
    truth: &Bundle,
    predictions: &[Prediction],
    only: Option<Split>,
    thresholds: Thresholds,
) -> Result<Report, RunError> {
    let (classes, images) = eval_images(truth, predictions, only)?;
    Ok(evaluate(&classes, &images, thresholds))
}
