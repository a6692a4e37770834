//! The classical baseline on a real dev tile, judged as a labeler would: does one click on a nucleus
//! mostly select that nucleus, and do a few corrections make it better?
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its location

use std::path::Path;

use lamina_eval::classical::{Classical, ClassicalParams};
use lamina_eval::metrics::Timing;
use lamina_eval::runner::evaluate_tile;
use lamina_eval::DataSet;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[test]
fn one_click_mostly_selects_the_nucleus_and_corrections_help() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/nuinsseg-dev");
    let data = DataSet::open(&dir).unwrap();
    // The second tile of the manifest (bladder, 13 nuclei).
    let tile = data.tile(1).unwrap();
    let mut seg = Classical::new(ClassicalParams::default());
    let results = evaluate_tile(&mut seg, &tile, &mut Timing::default()).unwrap();
    assert_eq!(results.len(), tile.instances.len());
    let first = median(results.iter().map(|r| r.iou_after(1)).collect());
    let fifth = median(results.iter().map(|r| r.iou_after(5)).collect());
    let boxes = median(results.iter().map(|r| r.box_iou).collect());
    eprintln!("median IoU: 1 click {first:.3}, 5 clicks {fifth:.3}, box {boxes:.3}");
    // Measured on this tile: 0.575 after 1 click, 0.721 after 5, 0.667 from the box. The bounds leave
    // ~0.07 of margin: they catch a broken baseline, not a float difference.
    assert!(first > 0.50, "median first-click IoU {first}");
    assert!(fifth > 0.65, "median IoU after 5 clicks {fifth}");
    assert!(
        fifth > first,
        "corrections did not help: {first} -> {fifth}"
    );
    assert!(boxes > 0.60, "median box IoU {boxes}");
}
