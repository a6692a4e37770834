//! Per-instance click results and their aggregates: NoC/NoF at 0.85 and 0.90, mIoU after 1/3/5
//! clicks, box IoU; overall, per size bucket and by border contact.

use std::collections::BTreeMap;

use serde::Serialize;

/// Clicks allowed per instance; failures count as this many.
pub const MAX_CLICKS: usize = 20;
/// Clicks always simulated (unless the mask is already perfect), so mIoU@1/3/5 is defined for every
/// instance even when it reached the targets sooner.
pub const MIN_CLICKS: usize = 5;
pub const TARGETS: [f64; 2] = [0.85, 0.90];
/// Size buckets by area in pixels: `< 200`, `200..=600`, `> 600`.
pub const SMALL_BELOW: u64 = 200;
pub const LARGE_ABOVE: u64 = 600;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InstanceResult {
    pub tile: String,
    pub label: u16,
    pub area: u64,
    pub touches_tile_border: bool,
    /// IoU after click 1, 2, ...; at least [`MIN_CLICKS`] long (a perfect mask is carried forward).
    pub ious: Vec<f64>,
    pub box_iou: f64,
    pub box_iou_loose: f64,
}

impl InstanceResult {
    /// Clicks needed to reach `target`, or `None` if not reached within [`MAX_CLICKS`].
    pub fn clicks_to(&self, target: f64) -> Option<usize> {
        self.ious
            .iter()
            .take(MAX_CLICKS)
            .position(|&iou| iou >= target)
            .map(|i| i + 1)
    }

    /// IoU after `k` clicks (the last one recorded if the run stopped earlier on a perfect mask).
    pub fn iou_after(&self, k: usize) -> f64 {
        let i = k.min(self.ious.len()).saturating_sub(1);
        self.ious.get(i).copied().unwrap_or(0.0)
    }

    pub fn size_bucket(&self) -> &'static str {
        if self.area < SMALL_BELOW {
            "area_lt_200"
        } else if self.area <= LARGE_ABOVE {
            "area_200_600"
        } else {
            "area_gt_600"
        }
    }
}

/// Aggregates over a group of instances. Means of an empty group are NaN (null in JSON).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    pub n_instances: usize,
    pub noc85: f64,
    pub noc90: f64,
    pub nof85: usize,
    pub nof90: usize,
    pub miou1: f64,
    pub miou3: f64,
    pub miou5: f64,
    pub box_iou: f64,
    pub box_iou_loose: f64,
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 {
        f64::NAN
    } else {
        sum / n as f64
    }
}

impl Summary {
    pub fn of<'a>(results: impl IntoIterator<Item = &'a InstanceResult> + Clone) -> Summary {
        let all = || results.clone().into_iter();
        let noc = |t: f64| mean(all().map(|r| r.clicks_to(t).unwrap_or(MAX_CLICKS) as f64));
        let nof = |t: f64| all().filter(|r| r.clicks_to(t).is_none()).count();
        Summary {
            n_instances: all().count(),
            noc85: noc(TARGETS[0]),
            noc90: noc(TARGETS[1]),
            nof85: nof(TARGETS[0]),
            nof90: nof(TARGETS[1]),
            miou1: mean(all().map(|r| r.iou_after(1))),
            miou3: mean(all().map(|r| r.iou_after(3))),
            miou5: mean(all().map(|r| r.iou_after(5))),
            box_iou: mean(all().map(|r| r.box_iou)),
            box_iou_loose: mean(all().map(|r| r.box_iou_loose)),
        }
    }
}

/// The whole benchmark: overall figures at the top level, then breakdowns.
#[derive(Clone, Debug, Serialize)]
pub struct EvalReport {
    pub model: String,
    pub data: String,
    pub n_tiles: usize,
    #[serde(flatten)]
    pub overall: Summary,
    /// Wall time per `predict`/`predict_box` call (clicks and boxes), excluding image preparation.
    pub ms_per_prediction: f64,
    pub n_predictions: usize,
    /// Wall time of `set_image` per tile (the embedding).
    pub ms_per_image: f64,
    pub by_size: BTreeMap<&'static str, Summary>,
    pub by_border: BTreeMap<&'static str, Summary>,
}

impl EvalReport {
    pub fn from_results(
        model: String,
        data: String,
        n_tiles: usize,
        results: &[InstanceResult],
        timing: Timing,
    ) -> EvalReport {
        let mut by_size = BTreeMap::new();
        for bucket in ["area_lt_200", "area_200_600", "area_gt_600"] {
            let group = results.iter().filter(|r| r.size_bucket() == bucket);
            by_size.insert(bucket, Summary::of(group));
        }
        let mut by_border = BTreeMap::new();
        for (key, touching) in [("touching", true), ("not_touching", false)] {
            let group = results
                .iter()
                .filter(move |r| r.touches_tile_border == touching);
            by_border.insert(key, Summary::of(group));
        }
        EvalReport {
            model,
            data,
            n_tiles,
            overall: Summary::of(results),
            ms_per_prediction: timing.predict_ms / timing.predictions.max(1) as f64,
            n_predictions: timing.predictions,
            ms_per_image: timing.set_image_ms / n_tiles.max(1) as f64,
            by_size,
            by_border,
        }
    }
}

/// Accumulated wall times.
#[derive(Clone, Copy, Debug, Default)]
pub struct Timing {
    pub predict_ms: f64,
    pub predictions: usize,
    pub set_image_ms: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(area: u64, border: bool, ious: &[f64], box_iou: f64) -> InstanceResult {
        InstanceResult {
            tile: "t".into(),
            label: 1,
            area,
            touches_tile_border: border,
            ious: ious.to_vec(),
            box_iou,
            box_iou_loose: box_iou / 2.0,
        }
    }

    #[test]
    fn noc_nof_and_miou_by_hand() {
        // A reaches 0.85 at click 2 and 0.90 at click 5; B reaches 0.85 at click 1 then 0.95 at 5;
        // C never reaches either within 20 clicks.
        let a = result(100, false, &[0.5, 0.86, 0.87, 0.88, 0.91], 0.8);
        let b = result(300, true, &[0.85, 0.6, 0.7, 0.8, 0.95], 0.6);
        let c = result(900, false, &[0.1; 20], 0.1);
        let s = Summary::of(&[a.clone(), b.clone(), c.clone()]);
        assert_eq!(s.n_instances, 3);
        assert!((s.noc85 - (2.0 + 1.0 + 20.0) / 3.0).abs() < 1e-12);
        assert!((s.noc90 - (5.0 + 5.0 + 20.0) / 3.0).abs() < 1e-12);
        assert_eq!((s.nof85, s.nof90), (1, 1));
        assert!((s.miou1 - (0.5 + 0.85 + 0.1) / 3.0).abs() < 1e-12);
        assert!((s.miou3 - (0.87 + 0.7 + 0.1) / 3.0).abs() < 1e-12);
        assert!((s.miou5 - (0.91 + 0.95 + 0.1) / 3.0).abs() < 1e-12);
        assert!((s.box_iou - 0.5).abs() < 1e-12);
        assert!((s.box_iou_loose - 0.25).abs() < 1e-12);

        let timing = Timing {
            predict_ms: 60.0,
            predictions: 30,
            set_image_ms: 10.0,
        };
        let r = EvalReport::from_results("m".into(), "d".into(), 2, &[a, b, c], timing);
        assert_eq!(r.ms_per_prediction, 2.0);
        assert_eq!(r.ms_per_image, 5.0);
        assert_eq!(r.by_size["area_lt_200"].n_instances, 1);
        assert_eq!(r.by_size["area_200_600"].noc85, 1.0);
        assert_eq!(r.by_size["area_gt_600"].nof90, 1);
        assert_eq!(r.by_border["touching"].n_instances, 1);
        assert!((r.by_border["not_touching"].noc85 - 11.0).abs() < 1e-12);
    }

    #[test]
    fn a_perfect_mask_is_carried_forward_and_empty_groups_are_nan() {
        let perfect = result(50, false, &[1.0], 1.0);
        assert_eq!(perfect.iou_after(5), 1.0);
        assert_eq!(perfect.clicks_to(0.9), Some(1));
        let s = Summary::of(&Vec::<InstanceResult>::new());
        assert_eq!(s.n_instances, 0);
        assert!(s.noc85.is_nan() && s.miou1.is_nan());
        assert_eq!(
            serde_json::to_value(&s).unwrap()["noc85"],
            serde_json::Value::Null
        );
    }

    #[test]
    fn size_bucket_edges() {
        assert_eq!(result(199, false, &[], 0.0).size_bucket(), "area_lt_200");
        assert_eq!(result(200, false, &[], 0.0).size_bucket(), "area_200_600");
        assert_eq!(result(600, false, &[], 0.0).size_bucket(), "area_200_600");
        assert_eq!(result(601, false, &[], 0.0).size_bucket(), "area_gt_600");
    }
}
