//! QuPath GeoJSON read from a hand-written export (fixtures/qupath/README.md explains each area).
#![allow(clippy::unwrap_used)]

use lamina_interop::foreign::ForeignLabels;
use lamina_interop::qupath;

fn fixture() -> ForeignLabels {
    let text = include_str!("fixtures/qupath/tile_b.geojson");
    qupath::read("tile_b.geojson", text).unwrap()
}

#[test]
fn every_area_feature_becomes_one_instance_with_its_class_and_exact_pixels() {
    let labels = fixture();
    assert_eq!(labels.images.len(), 1);
    let image = &labels.images[0];
    assert_eq!(image.name, "tile_b.geojson");
    let got: Vec<(Option<&str>, u64)> = image
        .instances
        .iter()
        .map(|i| {
            (
                i.class_name.as_deref(),
                i.shape.to_mask(32, 32).unwrap().area(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (Some("Neoplastic"), 91),
            (Some("Inflammatory"), 20),
            (None, 9),
            (Some("Connective"), 16),
            (Some("Dead"), 8),
        ]
    );
    let hole = image.instances[0].shape.to_mask(32, 32).unwrap();
    assert!(hole.get(2, 2) && !hole.get(6, 6) && hole.get(11, 11) && !hole.get(12, 12));
    // The cell's nucleus, not its 30×11 outline.
    let nucleus = image.instances[3].shape.to_mask(32, 32).unwrap();
    assert!(nucleus.get(10, 22) && !nucleus.get(0, 20));
}

#[test]
fn colours_come_from_both_spellings_and_points_are_skipped_with_the_reason() {
    let labels = fixture();
    assert_eq!(labels.class_colors["Neoplastic"], [255, 0, 0]);
    assert_eq!(labels.class_colors["Inflammatory"], [0, 255, 0]);
    assert_eq!(
        labels.skipped,
        ["tile_b.geojson, feature 6: a Point, not an area"]
    );
}

#[test]
fn a_bare_list_of_features_and_a_single_feature_are_read_too() {
    let one = r#"{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0,0],[2,0],[2,2],[0,2]]]}, "properties": {}}"#;
    assert_eq!(qupath::read("a.png", one).unwrap().instance_count(), 1);
    let list = format!("[{one}, {one}]");
    assert_eq!(qupath::read("a.png", &list).unwrap().instance_count(), 2);
}

#[test]
fn broken_files_name_the_feature() {
    let err = qupath::read("a.png", "{\"type\": \"FeatureCollection\"").unwrap_err();
    assert!(err.message.starts_with("not JSON"), "{err}");
    let bad_point = r#"{"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0,0],[2,0],[2]]]}}]}"#;
    let err = qupath::read("a.png", bad_point).unwrap_err();
    assert_eq!(err.at, "feature 1");
    assert!(err.message.contains("is not [x, y]"), "{err}");
    let err = qupath::read("a.png", r#"{"type": "Topology"}"#).unwrap_err();
    assert!(err.message.contains("not GeoJSON"), "{err}");
}
