//! COCO instances JSON, read from a fixture written by hand in the shape of CVAT's COCO 1.0 export
//! (licenses, info, extra image fields, `attributes` on annotations, masks as uncompressed RLE with
//! `iscrowd: 1`). The compressed RLE string was worked out by hand from cocoapi's `rleToString` and
//! checked with pycocotools 2.0.11 `mask.encode`.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its location

use lamina_core::mask::Mask;
use lamina_interop::coco_import::read;
use lamina_interop::foreign::{ForeignImage, ForeignLabels, Shape};

const FIXTURE: &str = include_str!("fixtures/coco/instances.json");

fn fixture() -> ForeignLabels {
    read(FIXTURE).unwrap()
}

fn image<'a>(labels: &'a ForeignLabels, name: &str) -> &'a ForeignImage {
    labels.images.iter().find(|i| i.name == name).unwrap()
}

fn mask(image: &ForeignImage, index: usize) -> Mask {
    let (w, h) = (image.width.unwrap(), image.height.unwrap());
    image.instances[index].shape.to_mask(w, h).unwrap()
}

#[test]
fn images_keep_the_file_order_and_annotations_find_theirs_by_id() {
    let labels = fixture();
    // Listed with ids 7, 3, 9; annotations refer to them by id.
    let listed: Vec<_> = labels
        .images
        .iter()
        .map(|i| (i.name.as_str(), i.width, i.height, i.instances.len()))
        .collect();
    assert_eq!(
        listed,
        [
            ("b.png", Some(40), Some(24), 3),
            ("a.png", Some(32), Some(32), 2),
            ("empty.png", Some(16), Some(16), 0),
        ]
    );
    let at: Vec<_> = labels
        .images
        .iter()
        .flat_map(|i| i.instances.iter().map(|n| n.at.as_str()))
        .collect();
    assert_eq!(
        at,
        [
            "annotation 2",
            "annotation 4",
            "annotation 6",
            "annotation 1",
            "annotation 3"
        ]
    );
    assert!(labels.class_colors.is_empty(), "COCO has no colours");
}

#[test]
fn polygons_in_two_parts_are_one_instance() {
    let labels = fixture();
    let a = image(&labels, "a.png");
    assert_eq!(a.instances[0].class_name.as_deref(), Some("Neoplastic"));
    // [2, 6)² is 16 pixels and [10, 14) × [10, 12) is 8: 24, the file's own `area`.
    let m = mask(a, 0);
    assert_eq!(m.area(), 24);
    assert!(m.get(2, 2) && m.get(5, 5) && m.get(10, 10) && m.get(13, 11));
    assert!(!m.get(6, 6) && !m.get(8, 8) && !m.get(13, 12));
    assert_eq!(a.instances[0].score, None);
}

#[test]
fn an_uncompressed_crowd_rle_is_a_normal_instance_in_column_major_order() {
    let labels = fixture();
    let b = image(&labels, "b.png");
    let instance = &b.instances[0];
    assert_eq!(instance.class_name.as_deref(), Some("Inflammatory"));
    assert!(matches!(instance.shape, Shape::Rle(_)));
    // counts [0, 2, 121, 3, 21, 3, 810] over 24 rows × 40 columns, walking down each column
    // (pixel (x, y) at y + 24·x) from a background run of 0: pixels 0..2 are (0, 0) and (0, 1); 123..126
    // are (5, 3..=5); 147..150 are (6, 3..=5). 2 + 3 + 3 = 8 pixels; read row-major, 123 would be (3, 3).
    let m = mask(b, 0);
    assert_eq!(m.area(), 8);
    assert!(m.get(0, 0) && m.get(0, 1) && m.get(5, 3) && m.get(5, 5) && m.get(6, 3) && m.get(6, 5));
    assert!(!m.get(1, 0) && !m.get(0, 2) && !m.get(3, 3) && !m.get(7, 3) && !m.get(5, 6));
}

#[test]
fn a_compressed_rle_decodes_to_its_pixels() {
    let labels = fixture();
    let a = image(&labels, "a.png");
    assert_eq!(a.instances[1].class_name.as_deref(), Some("Inflammatory"));
    // "Xd03m0000g8N" is counts [648, 3, 29, 3, 29, 3, 308, 1] on 32×32: columns 20..=22 at rows
    // 8..=10 (648 = 8 + 32·20) and the last pixel of the image, (31, 31): 9 + 1 = 10 pixels.
    let m = mask(a, 1);
    assert_eq!(m.area(), 10);
    assert!(m.get(20, 8) && m.get(22, 10) && m.get(31, 31));
    assert!(!m.get(19, 8) && !m.get(20, 11) && !m.get(30, 31));
}

#[test]
fn an_annotation_without_category_has_no_class_and_scores_are_kept() {
    let labels = fixture();
    let b = image(&labels, "b.png");
    assert_eq!(b.instances[1].class_name, None);
    assert_eq!(mask(b, 1).area(), 16);
    // Annotation 6: a 4×3 rectangle and a part of two points, which encloses nothing and is dropped.
    assert_eq!(b.instances[2].score, Some(0.87));
    assert_eq!(b.instances[2].class_name.as_deref(), Some("Neoplastic"));
    let m = mask(b, 2);
    assert_eq!(m.area(), 12);
    assert!(!m.get(1, 1));
}

#[test]
fn a_box_without_segmentation_is_skipped_with_why() {
    assert_eq!(
        fixture().skipped,
        ["annotation 5 (image 'a.png'): no segmentation, only a box"]
    );
}

fn error(json: &str) -> String {
    read(json).unwrap_err().to_string()
}

/// The fixture with one annotation in place of its own.
fn with_annotation(annotation: &str) -> String {
    let start = FIXTURE.find("\"annotations\": [").unwrap();
    format!("{}\"annotations\": [{annotation}]}}", &FIXTURE[..start])
}

#[test]
fn unknown_images_and_categories_are_named_by_annotation() {
    let json = with_annotation(
        "{\"id\": 41, \"image_id\": 8, \"category_id\": 1, \"segmentation\": [[0,0,1,0,1,1]]}",
    );
    assert_eq!(
        error(&json),
        "annotation 41: image_id 8 is not in the images"
    );
    let json = with_annotation(
        "{\"id\": 42, \"image_id\": 3, \"category_id\": 5, \"segmentation\": [[0,0,1,0,1,1]]}",
    );
    assert_eq!(
        error(&json),
        "annotation 42: category_id 5 is not in the categories"
    );
    let json = with_annotation("{\"image_id\": 3, \"category_id\": 1, \"segmentation\": [[0,0,1,0,1,1]]}, {\"image_id\": \"3\"}");
    assert!(
        error(&json).starts_with("annotation #2 (no id): invalid type"),
        "{}",
        error(&json)
    );
}

#[test]
fn an_rle_of_another_size_than_its_image_is_refused() {
    let json = with_annotation("{\"id\": 43, \"image_id\": 3, \"category_id\": 1, \"segmentation\": {\"size\": [24, 40], \"counts\": [960]}}");
    assert_eq!(
        error(&json),
        "annotation 43 (image 'a.png'): its RLE is 40×24 (size [24, 40]) but the image is 32×32"
    );
}

#[test]
fn malformed_rles_and_polygons_are_named() {
    let json = with_annotation("{\"id\": 44, \"image_id\": 3, \"category_id\": 1, \"segmentation\": {\"size\": [32, 32], \"counts\": [1000, 3]}}");
    let err = error(&json);
    assert!(
        err.starts_with("annotation 44 (image 'a.png'): RLE counts sum to 1003"),
        "{err}"
    );
    let json = with_annotation("{\"id\": 45, \"image_id\": 3, \"category_id\": 1, \"segmentation\": {\"size\": [32, 32], \"counts\": \"Xd0 3\"}}");
    assert!(error(&json).contains("annotation 45 (image 'a.png'): RLE string has ' '"));
    let json = with_annotation(
        "{\"id\": 46, \"image_id\": 3, \"category_id\": 1, \"segmentation\": [[0, 0, 4, 0, 4]]}",
    );
    assert_eq!(
        error(&json),
        "annotation 46 (image 'a.png'): polygon 1 has 5 numbers, not x, y pairs"
    );
}

#[test]
fn other_files_are_refused_clearly() {
    assert!(error("<annotations/>").starts_with("line 1, column 1: not JSON"));
    assert!(error("{\"images\": [").starts_with("line 1, column 12: not JSON"));
    assert!(error("[{\"image_id\": 1, \"score\": 0.5}]").contains("COCO results file"));
    assert!(error("{\"annotations\": []}")
        .contains("not a COCO instances file: missing field `images`"));
    let json = "{\"images\": [{\"id\": 1, \"file_name\": \"a.png\"}, {\"id\": 1, \"file_name\": \"b.png\"}]}";
    assert_eq!(
        error(json),
        "image 1 ('b.png'): another image has the same id"
    );
}

#[test]
fn polygons_of_fewer_than_three_points_are_skipped_with_why() {
    // Not "only a box": the annotation has a segmentation, just no area in it.
    let json = with_annotation(
        "{\"id\": 47, \"image_id\": 3, \"segmentation\": [[0, 0, 4, 0]], \"bbox\": [0, 0, 4, 0]}",
    );
    assert_eq!(
        read(&json).unwrap().skipped,
        ["annotation 47 (image 'a.png'): no polygon of three points or more: no area"]
    );
}
