//! Reading a Label Studio export made after its documentation, with brush masks encoded by
//! label-studio-converter (see `fixtures/labelstudio/README.md` for how and for the expected areas).

#![allow(clippy::unwrap_used)] // helpers too: a failed unwrap is a failed test, with its location

use std::collections::HashMap;

use lamina_core::labels::{Asset, Ontology};
use lamina_interop::foreign::ForeignInstance;
use lamina_interop::labelstudio;
use lamina_interop::ls_rle;
use lamina_interop::plan::{plan, MatchedBy, PlanOptions, Target};

const EXPORT: &str = include_str!("fixtures/labelstudio/export.json");

fn area(instance: &ForeignInstance, width: u32, height: u32) -> u64 {
    instance.shape.to_mask(width, height).unwrap().area()
}

#[test]
fn the_export_reads_as_its_readme_says() {
    let labels = labelstudio::read(EXPORT).unwrap();
    let names: Vec<_> = labels.images.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "/data/upload/1/1a2b3c4d-tile_b.png",
            "/data/upload/1/5e6f7a8b-tile_a.png"
        ]
    );

    let tile_b = &labels.images[0];
    assert_eq!((tile_b.width, tile_b.height), (Some(40), Some(32)));
    let read: Vec<_> = tile_b
        .instances
        .iter()
        .map(|i| {
            (
                i.at.as_str(),
                i.class_name.as_deref(),
                area(i, 40, 32),
                i.score,
            )
        })
        .collect();
    assert_eq!(
        read,
        [
            ("task 12, region 'br1'", Some("Neoplastic"), 112, None),
            ("task 12, region 'pg1'", Some("Inflammatory"), 160, None),
            ("task 12, region 'pg2'", None, 32, None),
        ]
    );

    let tile_a = &labels.images[1];
    assert_eq!((tile_a.width, tile_a.height), (Some(64), Some(48)));
    let read: Vec<_> = tile_a
        .instances
        .iter()
        .map(|i| {
            (
                i.at.as_str(),
                i.class_name.as_deref(),
                area(i, 64, 48),
                i.score,
            )
        })
        .collect();
    assert_eq!(
        read,
        [
            // 208 pixels with alpha >= 128 of the 256 the antialiased stroke touches.
            ("task 10, region 'br2'", Some("Connective"), 208, Some(0.91)),
            ("task 10, region 'rc1'", Some("Connective"), 192, Some(0.74)),
        ]
    );

    assert_eq!(
        labels.skipped,
        [
            "task 12, region 'kp1': a keypointlabels result, not an area",
            "task 12, region 'ch1': a choices result, not an area",
            "1 task has no annotation or prediction (task 11)",
        ]
    );
}

/// The converter's bytes, region by region.
fn converter_rle(region_id: &str) -> Vec<u8> {
    let tasks: serde_json::Value = serde_json::from_str(EXPORT).unwrap();
    let regions = tasks.as_array().unwrap().iter().flat_map(|t| {
        let annotations = t["annotations"].as_array().unwrap();
        let predictions = t["predictions"].as_array().unwrap();
        annotations
            .iter()
            .chain(predictions)
            .flat_map(|a| a["result"].as_array().unwrap().clone())
    });
    let region = regions.into_iter().find(|r| r["id"] == region_id).unwrap();
    serde_json::from_value(region["value"]["rle"].clone()).unwrap()
}

#[test]
fn our_encoder_writes_the_converters_bytes() {
    // The antialiased stroke: arbitrary RGBA values, literals and runs of every class.
    let soft = converter_rle("br2");
    let values: Vec<u8> = ls_rle::decode(&soft)
        .unwrap()
        .into_iter()
        .map(|v| v as u8)
        .collect();
    assert_eq!(values.len(), 64 * 48 * 4);
    assert_eq!(ls_rle::encode(&values), soft);
    // The binary disc, from a mask, as mask2rle wrote it.
    let disc = converter_rle("br1");
    let mask = ls_rle::rle_to_mask(&disc, 40, 32).unwrap();
    assert_eq!(mask.area(), 112);
    assert_eq!(ls_rle::mask_to_rle(&mask), disc);
}

fn asset(id: &str, width: u32, height: u32) -> Asset {
    Asset {
        id: id.into(),
        name: format!("{id}.png"),
        sha256: format!("{id:0>64}"),
        width,
        height,
        metadata: Default::default(),
        uri: None,
        status: Default::default(),
        stage: Default::default(),
    }
}

#[test]
fn upload_names_match_the_project_images_whatever_their_order() {
    let labels = labelstudio::read(EXPORT).unwrap();
    let assets = [
        asset("tile_a", 64, 48),
        asset("tile_b", 40, 32),
        asset("tile_c", 40, 32),
    ];
    let ontology = Ontology::pannuke();
    let target = Target {
        assets: &assets,
        ontology: &ontology,
        labels_now: HashMap::new(),
    };
    let planned = plan(&labels, &target, &PlanOptions::default());
    let images: Vec<_> = planned
        .images
        .iter()
        .map(|i| (i.asset_id.as_str(), i.matched_by, i.instances.len()))
        .collect();
    // pg2 has no class and none was chosen for such labels: left out, and said so.
    assert_eq!(
        images,
        [
            ("tile_b", MatchedBy::Name, 2),
            ("tile_a", MatchedBy::Name, 2)
        ]
    );
    assert!(planned
        .skipped
        .contains(&"1 labels without a class (choose a class for them to keep them)".to_owned()));
    let areas: Vec<u64> = planned
        .images
        .iter()
        .flat_map(|i| i.instances.iter().map(|p| p.rle.area()))
        .collect();
    assert_eq!(areas, [112, 160, 208, 192]);
}

#[test]
fn a_region_claiming_a_giant_image_is_refused_before_any_mask_is_made() {
    let task = r#"[{"id": 5, "data": {"image": "a.png"}, "annotations": [{"result": [
        {"id": "g", "type": "brushlabels", "original_width": 20000, "original_height": 20000,
         "value": {"format": "rle", "rle": [0, 0, 0, 0], "brushlabels": ["Dead"]}}]}]}]"#;
    let err = lamina_interop::labelstudio::read(task).unwrap_err();
    assert!(
        err.message.contains("larger than the images Lamina opens"),
        "{err}"
    );
    assert!(err.at.contains("task 5"), "{err}");
}
