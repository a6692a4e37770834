//! Matching a foreign file's images and classes to a project's, and what the user is told first.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use lamina_core::labels::{Asset, Ontology};
use lamina_interop::foreign::{ForeignImage, ForeignInstance, ForeignLabels, Shape};
use lamina_interop::plan::{match_image, plan, Existing, MatchedBy, Origin, PlanOptions, Target};
use lamina_interop::qupath;

fn asset(id: &str, name: &str, sha: &str) -> Asset {
    serde_json::from_value(serde_json::json!({
        "id": id, "name": name, "sha256": sha, "width": 32, "height": 32,
    }))
    .unwrap()
}

fn assets() -> Vec<Asset> {
    vec![
        asset("a", "tile_a.png", "aaaa"),
        asset("b", "tile_b.png", "bbbb"),
        asset("c", "tile_c.jpg", "cccc"),
    ]
}

#[test]
fn images_match_by_content_then_name_then_stem_ignoring_paths_and_upload_prefixes() {
    let assets = assets();
    let m = |sha: Option<&str>, name: &str| {
        match_image(&assets, sha, name).map(|(a, by)| (a.id.as_str(), by))
    };
    assert_eq!(
        m(Some("BBBB"), "whatever.png"),
        Some(("b", MatchedBy::Sha256))
    );
    assert_eq!(
        m(None, "https://x.org/set/tile_a.png?sig=1"),
        Some(("a", MatchedBy::Name))
    );
    assert_eq!(
        m(None, "/data/upload/3/1a2b3c4d-tile_c.jpg"),
        Some(("c", MatchedBy::Name))
    );
    assert_eq!(m(None, "tile_b.geojson"), Some(("b", MatchedBy::Name)));
    assert_eq!(
        m(None, "C:\\exports\\tile_c.tif"),
        Some(("c", MatchedBy::Name))
    );
    assert_eq!(m(None, "tile_d.png"), None);
}

fn qupath_labels() -> ForeignLabels {
    qupath::read(
        "tile_b.geojson",
        include_str!("fixtures/qupath/tile_b.geojson"),
    )
    .unwrap()
}

#[test]
fn classes_map_by_name_and_the_rest_is_skipped_with_counts_before_anything_changes() {
    let (assets, ontology) = (assets(), Ontology::pannuke());
    let target = Target {
        assets: &assets,
        ontology: &ontology,
        labels_now: HashMap::new(),
    };
    let plan = plan(&qupath_labels(), &target, &PlanOptions::default());
    assert_eq!(plan.images.len(), 1);
    assert_eq!(plan.images[0].asset_id, "b");
    // Four classified areas map onto PanNuke; the unclassified one is skipped, and the point was.
    assert_eq!(plan.instance_count(), 4);
    let summary = plan.summary();
    assert!(
        summary.starts_with("4 labels on 1 images (0 matched by content, 1 by name)"),
        "{summary}"
    );
    assert!(
        summary.contains("class Neoplastic → neoplastic, 1 labels"),
        "{summary}"
    );
    assert!(
        summary.contains("class (no class) → skipped, 1 labels"),
        "{summary}"
    );
    assert!(summary.contains("1 labels without a class"), "{summary}");
    assert!(
        summary.contains("feature 6: a Point, not an area"),
        "{summary}"
    );
}

#[test]
fn unclassified_labels_take_the_chosen_class_and_missing_classes_can_be_added_with_the_files_colour(
) {
    let mut labels = qupath_labels();
    labels.images[0].instances[0].class_name = Some("Mitosis".into());
    labels.class_colors.insert("Mitosis".into(), [10, 20, 30]);
    let (assets, ontology) = (assets(), Ontology::pannuke());
    let target = Target {
        assets: &assets,
        ontology: &ontology,
        labels_now: HashMap::new(),
    };
    let options = PlanOptions {
        unclassified_to: Some("dead".into()),
        add_missing_classes: true,
        class_map: Default::default(),
    };
    let plan = plan(&labels, &target, &options);
    assert_eq!(plan.instance_count(), 5);
    assert_eq!(plan.new_classes.len(), 1);
    assert_eq!(plan.new_classes[0].id, "mitosis");
    assert_eq!(plan.new_classes[0].color, "#0a141e");
    assert!(plan.skipped.iter().all(|s| !s.contains("without a class")));
}

#[test]
fn a_size_that_disagrees_with_the_projects_image_skips_that_image() {
    let mut labels = ForeignLabels::default();
    labels.images.push(ForeignImage {
        width: Some(64),
        height: Some(64),
        instances: vec![ForeignInstance {
            class_name: Some("Dead".into()),
            shape: Shape::rectangle(0.0, 0.0, 4.0, 4.0),
            at: "mask 1".into(),
            score: None,
        }],
        ..ForeignImage::named("tile_a.png")
    });
    let (assets, ontology) = (assets(), Ontology::pannuke());
    let plan = plan(
        &labels,
        &Target {
            assets: &assets,
            ontology: &ontology,
            labels_now: HashMap::new(),
        },
        &PlanOptions::default(),
    );
    assert!(plan.images.is_empty());
    assert_eq!(
        plan.skipped,
        ["tile_a.png: the file says 64×64 but the project's image is 32×32"]
    );
}

#[test]
fn images_with_labels_are_left_alone_unless_the_user_says_add_or_replace() {
    let (assets, ontology) = (assets(), Ontology::pannuke());
    let labels_now = HashMap::from([("b".to_owned(), 3)]);
    let plan = plan(
        &qupath_labels(),
        &Target {
            assets: &assets,
            ontology: &ontology,
            labels_now,
        },
        &PlanOptions::default(),
    );
    assert_eq!(plan.already_labeled(), 1);
    let origin = Origin {
        author: "QuPath",
        timestamp: "2026-12-02T00:00:00Z",
        model_id: None,
    };
    let mut n = 0;
    let mut ids = || {
        n += 1;
        format!("q{n}")
    };
    let (images, left) = plan.instances(Existing::Skip, &origin, &mut ids);
    assert!(images.is_empty());
    assert_eq!(left, ["tile_b.png"]);
    let (images, _) = plan.instances(Existing::Replace, &origin, &mut ids);
    assert_eq!(images.len(), 1);
    assert!(images[0].replace);
    let first = &images[0].instances[0];
    assert_eq!(
        (first.id.as_str(), first.class_id.as_str(), first.area),
        ("q1", "neoplastic", 91)
    );
    assert_eq!(first.bbox, [2, 2, 10, 10]);
    assert_eq!(first.provenance.author.as_deref(), Some("QuPath"));
}
