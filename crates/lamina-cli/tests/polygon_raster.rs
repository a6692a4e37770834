//! Polygon raster check on real nuclei: Lamina's exact rings, filled by Lamina's own rasterizer, give
//! back each source instance pixel for pixel; simplified polygons stay close.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its location

use std::path::Path;

use lamina_core::mask::Mask;
use lamina_core::polygon::{mask_to_polygons, mask_to_rings, rasterize_polygon};

const TILES: [&str; 3] = [
    "masks/nuinsseg_human_bladder_01_x0y0.png",
    "masks/nuinsseg_human_bladder_05_x0y0.png",
    // Holds an instance with a hole (id 4).
    "masks/nuinsseg_human_tongue_40_x0y256.png",
];

fn instances(path: &str) -> Vec<Mask> {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/nuinsseg-dev")
        .join(path);
    let img = image::open(&file).unwrap().into_luma16();
    let (w, h) = img.dimensions();
    let max = img.pixels().map(|p| p.0[0]).max().unwrap();
    (1..=max)
        .map(|id| {
            let mut m = Mask::new(w, h);
            for (x, y, p) in img.enumerate_pixels() {
                m.set(x, y, p.0[0] == id);
            }
            m
        })
        .collect()
}

#[test]
fn rings_rasterize_back_to_every_instance_exactly() {
    let mut holes = 0;
    let mut checked = 0;
    for tile in TILES {
        for m in instances(tile) {
            let rings = mask_to_rings(&m);
            let mut rebuilt = Mask::new(m.width, m.height);
            let mut piece = Mask::new(m.width, m.height);
            for (i, ring) in rings.iter().enumerate() {
                let fill = rasterize_polygon(&ring.points, m.width, m.height);
                if ring.is_hole {
                    holes += 1;
                    piece.subtract(&fill).unwrap();
                } else {
                    piece = fill;
                }
                if rings.get(i + 1).is_none_or(|r| !r.is_hole) {
                    rebuilt.union_with(&piece).unwrap();
                }
            }
            assert_eq!(rebuilt, m, "{tile}: instance {checked}");
            checked += 1;
        }
    }
    assert!(
        holes >= 1,
        "the tongue tile's ring-shaped nucleus has a hole"
    );
}

#[test]
fn simplified_polygons_overlap_the_instances() {
    for tile in TILES {
        for (i, m) in instances(tile).iter().enumerate() {
            let mut filled = Mask::new(m.width, m.height);
            for poly in mask_to_polygons(m, 0.5) {
                filled
                    .union_with(&rasterize_polygon(&poly, m.width, m.height))
                    .unwrap();
            }
            let iou = filled.iou(m).unwrap();
            assert!(iou > 0.85, "{tile}: instance {}: IoU {iou}", i + 1);
        }
    }
}
