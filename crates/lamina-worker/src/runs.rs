//! Model runs in the worker: reading a predictions file and computing the metrics (`lamina_runs`), off
//! the UI thread. [`read_predictions`] and [`metrics`] are plain Rust, tested natively; the two
//! `#[wasm_bindgen]` functions only convert.

use lamina_core::bundle::{parse_bundle, Bundle};
use lamina_core::worker_protocol::{MetricsComputed, PredictionsRead};
use lamina_runs::evaluate::run_metrics;
use lamina_runs::metrics::Thresholds;
use lamina_runs::predictions::{read_predictions_file, Unmapped};
use lamina_runs::run::Prediction;
use lamina_runs::split::Split;
use wasm_bindgen::prelude::*;

fn truth_bundle(json: &str) -> Result<Bundle, String> {
    parse_bundle(json).map_err(|e| format!("the run's labels cannot be read: {e}"))
}

/// The predictions in a file, by its name's extension.
pub fn read_predictions(
    truth_json: &str,
    file_name: &str,
    bytes: &[u8],
    drop_unmapped: bool,
) -> Result<(Vec<Prediction>, String), String> {
    let truth = truth_bundle(truth_json)?;
    let unmapped = if drop_unmapped {
        Unmapped::Drop
    } else {
        Unmapped::Refuse
    };
    let read = read_predictions_file(file_name, bytes, &truth, unmapped);
    let (predictions, summary) = read.map_err(|e| e.to_string())?;
    let summary = serde_json::to_string(&summary).map_err(|e| e.to_string())?;
    Ok((predictions, summary))
}

/// The metrics report, as JSON.
pub fn metrics(
    truth_json: &str,
    predictions_json: &str,
    split: Option<&str>,
    thresholds: Thresholds,
) -> Result<String, String> {
    let truth = truth_bundle(truth_json)?;
    let predictions: Vec<Prediction> = serde_json::from_str(predictions_json)
        .map_err(|e| format!("the stored predictions cannot be read: {e}"))?;
    let only = match split {
        None => None,
        Some(s) => Some(Split::parse(s).ok_or_else(|| format!("{s:?} is not a split"))?),
    };
    let report = run_metrics(&truth, &predictions, only, thresholds).map_err(|e| e.to_string())?;
    serde_json::to_string(&report).map_err(|e| e.to_string())
}

fn reply<T: serde::Serialize>(value: &T) -> Result<JsValue, JsError> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| JsError::new(&e.to_string()))
}

/// Worker entry of `read_predictions`: a [`PredictionsRead`], or a thrown message listing the problems.
#[wasm_bindgen(js_name = read_predictions)]
pub fn read_predictions_js(
    truth_json: &str,
    file_name: &str,
    bytes: &[u8],
    drop_unmapped: bool,
) -> Result<JsValue, JsError> {
    let start = js_sys::Date::now();
    let (predictions, summary) = read_predictions(truth_json, file_name, bytes, drop_unmapped)
        .map_err(|e| JsError::new(&e))?;
    reply(&PredictionsRead {
        count: predictions.len(),
        predictions: serde_json::to_string(&predictions)
            .map_err(|e| JsError::new(&e.to_string()))?,
        summary,
        ms: js_sys::Date::now() - start,
    })
}

/// Worker entry of `run_metrics`: a [`MetricsComputed`], or a thrown message.
#[wasm_bindgen(js_name = run_metrics)]
pub fn run_metrics_js(
    truth_json: &str,
    predictions_json: &str,
    split: Option<String>,
    iou: f64,
    score: f64,
) -> Result<JsValue, JsError> {
    let start = js_sys::Date::now();
    let report = metrics(
        truth_json,
        predictions_json,
        split.as_deref(),
        Thresholds { iou, score },
    )
    .map_err(|e| JsError::new(&e))?;
    reply(&MetricsComputed {
        report,
        ms: js_sys::Date::now() - start,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use lamina_core::bundle::BundleProject;
    use lamina_core::labels::{
        Asset, Instance, InstanceStatus, LabelStatus, Ontology, Provenance, Tool,
    };
    use lamina_core::mask::Mask;
    use lamina_core::rle::Rle;

    fn truth_json() -> (String, serde_json::Value) {
        let mut b = Bundle::new(
            BundleProject {
                id: "p".into(),
                name: "p".into(),
            },
            Ontology::pannuke(),
        );
        b.assets.push(Asset {
            id: "a".into(),
            name: "a.png".into(),
            sha256: "0".repeat(64),
            width: 8,
            height: 8,
            metadata: Default::default(),
            uri: None,
            status: LabelStatus::Submitted,
            stage: Default::default(),
        });
        let mut m = Mask::new(8, 8);
        m.fill_rect(1.0, 1.0, 5.0, 5.0, true);
        let rle = Rle::from_mask(&m);
        b.instances.push(Instance {
            id: "i".into(),
            asset_id: "a".into(),
            class_id: b.ontology.classes[0].id.clone(),
            mask: rle.compress(),
            bbox: rle.bbox(),
            area: rle.area(),
            provenance: Provenance {
                tool: Tool::Import,
                prompts: vec![],
                model_id: None,
                author: None,
                created: "t".into(),
                updated: "t".into(),
                score: None,
            },
            status: InstanceStatus::default(),
        });
        let mask = serde_json::to_value(rle.compress()).unwrap_or_default();
        (b.to_json(), mask)
    }

    #[test]
    fn a_coco_results_file_is_read_and_measured() {
        let (truth, mask) = truth_json();
        let results = serde_json::json!([{"image_id": 1, "category_id": 1, "segmentation": mask, "score": 0.9}]);
        let (preds, _) = read_predictions(&truth, "r.json", results.to_string().as_bytes(), false)
            .expect("read");
        assert_eq!(preds.len(), 1);
        let predictions = serde_json::to_string(&preds).expect("json");
        let report: serde_json::Value = serde_json::from_str(
            &metrics(&truth, &predictions, None, Thresholds::default()).expect("metrics"),
        )
        .expect("report json");
        assert_eq!(report["f1"], 1.0);
        assert_eq!(report["n_gt"], 1);
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let (truth, _) = truth_json();
        let e = read_predictions(&truth, "r.json", b"{not json", false).unwrap_err();
        assert!(e.contains("not valid JSON") || e.contains("bundle"), "{e}");
        let e = read_predictions(&truth, "p.zip", b"PK not a zip", false).unwrap_err();
        assert!(e.starts_with("zip:"), "{e}");
        let e = read_predictions(&truth, "a.txt", &[0xff, 0xfe], false).unwrap_err();
        assert!(e.contains("UTF-8"), "{e}");
        let e = metrics(&truth, "[]", Some("holdout"), Thresholds::default()).unwrap_err();
        assert!(e.contains("not a split"), "{e}");
    }
}
