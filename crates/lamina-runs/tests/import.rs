//! Prediction files that must be refused as a whole, with every problem named, and the run zip's
//! path safety.
#![allow(clippy::unwrap_used)]

use std::io::Write;

use lamina_core::bundle::{Bundle, BundleProject};
use lamina_core::labels::{Asset, LabelStatus, Ontology};
use lamina_core::mask::Mask;
use lamina_core::rle::Rle;
use lamina_runs::export::read_zip_texts;
use lamina_runs::predictions::{read_coco_results, read_yolo_predictions, Unmapped};
use lamina_runs::RunError;

fn bundle() -> Bundle {
    let mut b = Bundle::new(
        BundleProject {
            id: "p".into(),
            name: "p".into(),
        },
        Ontology::pannuke(),
    );
    for i in 0..2 {
        b.assets.push(Asset {
            id: format!("a{i}"),
            name: format!("tile{i}.png"),
            sha256: format!("{i:064}"),
            width: 10,
            height: 8,
            metadata: Default::default(),
            uri: None,
            status: LabelStatus::Submitted,
            stage: Default::default(),
        });
    }
    b
}

fn rle_json() -> serde_json::Value {
    let mut m = Mask::new(10, 8);
    m.set(2, 3, true);
    serde_json::to_value(Rle::from_mask(&m).compress()).unwrap()
}

fn problems(r: Result<impl std::fmt::Debug, RunError>) -> Vec<String> {
    match r {
        Err(RunError::Predictions(p)) => p,
        other => panic!("expected refused predictions, got {other:?}"),
    }
}

#[test]
fn coco_results_are_read_with_ids_of_the_coco_export() {
    let json = serde_json::json!([
        {"image_id": 2, "category_id": 3, "segmentation": rle_json(), "score": 0.7},
        {"image_id": 1, "category_id": 1, "segmentation": [[0, 0, 4, 0, 4, 4]], "score": 1},
    ]);
    let (preds, summary) =
        read_coco_results(&json.to_string(), &bundle(), Unmapped::Refuse).unwrap();
    assert_eq!(summary.predictions, 2);
    assert_eq!(preds[0].asset_id, "a1");
    assert_eq!(preds[0].class_id, Ontology::pannuke().classes[2].id);
    // Pixels whose centres are inside the triangle (0,0) (4,0) (4,4): 4 + 3 + 2 + 1.
    assert_eq!(Rle::decompress(&preds[1].mask).unwrap().area(), 10);
}

#[test]
fn every_bad_result_is_named_and_nothing_is_imported() {
    let json = serde_json::json!([
        {"image_id": 99999, "category_id": 1, "segmentation": rle_json(), "score": 0.5},
        {"image_id": 1, "category_id": 1, "segmentation": {"size": [8, 10], "counts": "!!!"}, "score": 0.5},
        {"image_id": 1, "category_id": 1, "segmentation": {"size": [9, 10], "counts": "0"}, "score": 0.5},
        {"image_id": 1, "category_id": 1, "segmentation": rle_json(), "score": 1.5},
        {"image_id": 1, "category_id": 1, "segmentation": rle_json(), "score": -0.1},
        {"image_id": 1, "category_id": 999, "segmentation": rle_json(), "score": 0.5},
        {"image_id": 1, "category_id": 1, "segmentation": rle_json(), "score": 0.5},
    ]);
    let p = problems(read_coco_results(
        &json.to_string(),
        &bundle(),
        Unmapped::Refuse,
    ));
    let text = p.join("\n");
    assert_eq!(p.len(), 6, "{text}");
    assert!(text.contains("99999"), "{text}");
    assert!(text.contains("character"), "{text}");
    assert!(text.contains("9x10"), "{text}");
    assert!(text.contains("score 1.5"), "{text}");
    assert!(text.contains("score -0.1"), "{text}");
    assert!(text.contains("category_id 999"), "{text}");
}

#[test]
fn unmapped_classes_can_be_left_out_on_purpose() {
    let json = serde_json::json!([
        {"image_id": 1, "category_id": 999, "segmentation": rle_json(), "score": 0.5},
        {"image_id": 1, "category_id": 1, "segmentation": rle_json(), "score": 0.5},
    ]);
    let (preds, summary) = read_coco_results(&json.to_string(), &bundle(), Unmapped::Drop).unwrap();
    assert_eq!(preds.len(), 1);
    assert_eq!(summary.dropped_unmapped["category_id 999"], 1);
}

#[test]
fn yolo_lines_with_and_without_confidence() {
    let files = vec![(
        "labels/tile1.txt".to_owned(),
        "0 0 0 0.5 0 0.5 0.5 0.25\n1 0 0 0.5 0 0.5 0.5\n".to_owned(),
    )];
    let (preds, _) = read_yolo_predictions(&files, &bundle(), Unmapped::Refuse).unwrap();
    assert_eq!(preds.len(), 2);
    assert_eq!(preds[0].asset_id, "a1");
    assert_eq!(preds[0].score, 0.25);
    assert_eq!(preds[1].score, 1.0);
    // A triangle over half of a 5×4 box: pixels whose centres are inside.
    assert!(Rle::decompress(&preds[0].mask).unwrap().area() > 5);

    let bad = vec![
        ("nope.txt".to_owned(), "0 0 0 1 0 1 1\n".to_owned()),
        (
            "tile0.txt".to_owned(),
            "0 0 0 2 0 1 1\n0 0 0 1 0 1 1 7\nx y\n".to_owned(),
        ),
    ];
    let p = problems(read_yolo_predictions(&bad, &bundle(), Unmapped::Refuse)).join("\n");
    assert!(p.contains("no image of this run is named \"nope\""), "{p}");
    assert!(p.contains("normalised"), "{p}");
    assert!(p.contains("score 7"), "{p}");
    assert!(p.contains("line 3"), "{p}");
}

#[test]
fn a_zip_entry_that_escapes_refuses_the_whole_zip() {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut buf);
        let options = zip::write::SimpleFileOptions::default();
        zip.start_file("labels/tile0.txt", options).unwrap();
        zip.write_all(b"0 0 0 1 0 1 1\n").unwrap();
        zip.start_file("../../evil.txt", options).unwrap();
        zip.write_all(b"0 0 0 1 0 1 1\n").unwrap();
        zip.finish().unwrap();
    }
    let err = read_zip_texts(buf.get_ref()).unwrap_err().to_string();
    assert!(err.contains("outside the folder"), "{err}");
}
