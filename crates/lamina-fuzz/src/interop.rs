//! The readers of other tools' label files (QuPath, Labelbox, CVAT, COCO, Label Studio), fuzzed with
//! the import plan they feed: whatever a file says, the labels planned from it fit the project's images.

use std::collections::HashMap;

use lamina_core::bundle::instance_problems;
use lamina_core::labels::{Asset, Ontology};
use lamina_interop::detect::{self, Format};
use lamina_interop::labelbox::RgbImage;
use lamina_interop::plan::{plan, Existing, Origin, PlanOptions, Target};

/// The images every fuzzed file is planned onto, named as the hand-written fixtures name theirs.
const IMAGES: [(&str, u32, u32); 4] = [
    ("tile_a.png", 32, 32),
    ("tile_b.png", 32, 32),
    ("a.png", 32, 32),
    ("b.png", 40, 24),
];

/// The first byte picks the format; the rest is the file's text. Accepted files must plan to labels
/// that are valid on their images: inside them, of their size, with matching box and area.
pub fn interop(data: &[u8]) {
    let Some((&pick, text)) = data.split_first() else {
        return;
    };
    let format = Format::ALL[usize::from(pick) % Format::ALL.len()];
    let text = String::from_utf8_lossy(text);
    // Labelbox masks: one small composite, found under any URI's last part "tile_a.png".
    let masks = HashMap::from([(
        "tile_a.png".to_owned(),
        RgbImage {
            width: 32,
            height: 32,
            rgb: (0..32 * 32 * 3)
                .map(|i| if i % 7 == 0 { 255 } else { 0 })
                .collect(),
        },
    )]);
    let Ok(labels) = detect::read(format, "tile_b.geojson", &text, &masks) else {
        return;
    };
    let assets: Vec<Asset> = IMAGES
        .iter()
        .enumerate()
        .map(|(i, &(name, width, height))| Asset {
            id: format!("asset-{i}"),
            name: name.to_owned(),
            sha256: format!("{i:064x}"),
            width,
            height,
            metadata: Default::default(),
            uri: None,
            status: Default::default(),
            stage: Default::default(),
        })
        .collect();
    let ontology = Ontology::pannuke();
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
    let planned = plan(&labels, &target, &options);
    let origin = Origin {
        author: "fuzz",
        timestamp: "2026-01-01T00:00:00Z",
        model_id: None,
    };
    let mut n = 0;
    let (images, _) = planned.instances(Existing::Add, &origin, || {
        n += 1;
        format!("i{n}")
    });
    for image in images {
        let Some(asset) = assets.iter().find(|a| a.id == image.asset_id) else {
            panic!("a label planned for an image that is not in the project");
        };
        for instance in &image.instances {
            let problems = instance_problems(instance, asset.width, asset.height);
            assert!(
                problems.is_empty(),
                "a planned label is invalid: {problems:?}"
            );
            assert!(instance.area > 0, "an empty label was planned");
        }
    }
}
