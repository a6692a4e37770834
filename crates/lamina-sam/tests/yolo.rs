//! A user's YOLO-seg ONNX: the project's fixture loads with its class names; files that are not a
//! YOLO-seg export are refused with a message naming what does not fit. (Parity of the detections with
//! onnxruntime + numpy: tests/reference/check_yolo_seg.py.)
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its location

use std::path::PathBuf;

use lamina_sam::auto::AutoOptions;
use lamina_sam::yolo::{YoloError, YoloSeg};

fn fixture(path: &str) -> Vec<u8> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/fixtures");
    std::fs::read(root.join(path)).unwrap()
}

fn tile() -> image::RgbImage {
    let dev = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/nuinsseg-dev/images/nuinsseg_human_bladder_01_x0y0.png");
    image::open(dev).unwrap().to_rgb8()
}

#[test]
fn the_fixture_loads_with_its_names_and_finds_non_overlapping_objects() {
    let model = YoloSeg::load("model.onnx", &fixture("yolo-seg-tiny/model.onnx")).unwrap();
    assert_eq!(model.class_names, ["nucleus", "debris"]);
    assert_eq!(model.input, 256);
    let mut options = AutoOptions::for_family(lamina_core::prelabel::YOLO_FAMILY);
    options.min_score = 0.5;
    let found = model.segment_all(&tile(), &options).unwrap();
    assert!(found.len() > 10, "{} found", found.len());
    let mut owner = vec![false; 256 * 256];
    for f in &found {
        assert!(f.score >= 0.5 && f.class < 2 && f.mask_image.area() >= options.min_area);
        for (i, v) in f.mask_image.data.iter().enumerate() {
            if *v != 0 {
                assert!(!owner[i], "two instances share a pixel");
                owner[i] = true;
            }
        }
    }
    // A non-square image is letterboxed: masks come back at the image's own size.
    let wide = image::imageops::crop_imm(&tile(), 0, 0, 256, 128).to_image();
    let found = model.segment_all(&wide, &options).unwrap();
    assert!(found
        .iter()
        .all(|f| (f.mask_image.width, f.mask_image.height) == (256, 128)));
}

#[test]
fn files_that_are_not_yolo_seg_exports_are_named_and_refused() {
    let err = YoloSeg::load("encoder.onnx", &fixture("sam-tiny/encoder.onnx"))
        .err()
        .unwrap();
    assert!(
        matches!(err, YoloError::Contract { .. }) && err.to_string().contains("output"),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with("encoder.onnx is not a YOLO-seg export"),
        "{err}"
    );
    let err = YoloSeg::load("decoder.onnx", &fixture("sam-tiny/decoder_low_res.onnx"))
        .err()
        .unwrap();
    assert!(err.to_string().contains("inputs"), "{err}");
    let err = YoloSeg::load("notes.onnx", b"not a model at all")
        .err()
        .unwrap();
    assert!(
        matches!(err, YoloError::Load { .. }) && err.to_string().contains("notes.onnx"),
        "{err}"
    );
}
