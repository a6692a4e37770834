//! Labelbox NDJSON read from hand-written files (fixtures/labelbox/README.md explains each line).
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use lamina_interop::labelbox::{self, RgbImage};

/// The composite mask of tile_a as Labelbox would give it: red 3×3 at (0, 0), green 2×4 at (10, 10).
fn composite() -> RgbImage {
    let (w, h) = (32u32, 32u32);
    let mut rgb = vec![0u8; (w * h * 3) as usize];
    let mut paint = |x0: u32, y0: u32, cw: u32, ch: u32, c: [u8; 3]| {
        for y in y0..y0 + ch {
            for x in x0..x0 + cw {
                let i = ((y * w + x) * 3) as usize;
                rgb[i..i + 3].copy_from_slice(&c);
            }
        }
    };
    paint(0, 0, 3, 3, [255, 0, 0]);
    paint(10, 10, 2, 4, [0, 255, 0]);
    RgbImage {
        width: w,
        height: h,
        rgb,
    }
}

#[test]
fn import_lines_give_polygons_boxes_and_composite_masks_and_name_what_they_skip() {
    let text = include_str!("fixtures/labelbox/prelabels.ndjson");
    assert_eq!(
        labelbox::mask_uris(text),
        [
            "https://storage.labelbox.com/masks/tile_a.png",
            "masks/missing.png"
        ]
    );
    let masks = HashMap::from([("tile_a.png".to_owned(), composite())]);
    let labels = labelbox::read(text, &masks).unwrap();
    let got: Vec<(String, Option<String>, u64)> = labels
        .images
        .iter()
        .flat_map(|img| {
            img.instances.iter().map(|i| {
                (
                    img.name.clone(),
                    i.class_name.clone(),
                    i.shape.to_mask(32, 32).unwrap().area(),
                )
            })
        })
        .collect();
    let want = [
        ("tile_b.png", "Neoplastic", 100),
        ("tile_b.png", "Inflammatory", 15),
        ("tile_a.png", "Connective", 9),
        ("tile_a.png", "Epithelial", 8),
    ];
    assert_eq!(got.len(), want.len());
    for ((image, class, area), (wi, wc, wa)) in got.iter().zip(want) {
        assert_eq!(
            (image.as_str(), class.as_deref(), *area),
            (wi, Some(wc), wa)
        );
    }
    assert_eq!(labels.skipped.len(), 3, "{:?}", labels.skipped);
    assert!(labels.skipped[0]
        .starts_with("tile_c.png, line 6: its mask masks/missing.png was not given"));
    assert!(labels.skipped[1].contains("line 7") && labels.skipped[1].contains("global keys"));
    assert!(
        labels.skipped[2].contains("line 8")
            && labels.skipped[2].contains("no polygon, mask or box")
    );
}

#[test]
fn export_rows_are_read_with_their_size() {
    let labels = labelbox::read(
        include_str!("fixtures/labelbox/export_v2.ndjson"),
        &HashMap::new(),
    )
    .unwrap();
    assert_eq!(labels.images.len(), 1);
    let image = &labels.images[0];
    assert_eq!(
        (image.name.as_str(), image.width, image.height),
        ("tile_b.png", Some(32), Some(32))
    );
    let areas: Vec<_> = image
        .instances
        .iter()
        .map(|i| i.shape.to_mask(32, 32).unwrap().area())
        .collect();
    assert_eq!(areas, [16, 4]);
}

#[test]
fn a_broken_line_is_named() {
    let err = labelbox::read(
        "{\"dataRow\": {\"globalKey\": \"a.png\"}}\n{oops\n",
        &HashMap::new(),
    )
    .unwrap_err();
    assert_eq!(err.at, "line 2");
    let err = labelbox::read("{\"name\": \"Dead\"}\n", &HashMap::new()).unwrap_err();
    assert!(err.message.contains("which image"), "{err}");
}
