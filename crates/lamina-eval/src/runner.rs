//! Drives a segmenter through the protocol on every instance of a tile set.

use std::time::Instant;

use anyhow::Context;
use lamina_core::mask::Mask;

use crate::clicks::{first_click, next_click, Click};
use crate::dataset::{DataSet, GtInstance, Tile};
use crate::metrics::{EvalReport, InstanceResult, Timing, MAX_CLICKS, MIN_CLICKS, TARGETS};
use crate::segmenter::{InteractiveSegmenter, LowRes};

/// Pixels a labeler's box is assumed to overshoot the tight box on every side.
pub const LOOSE_BOX_MARGIN: f64 = 2.0;

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

/// Clicks on one instance until IoU ≥ the highest target after at least [`MIN_CLICKS`], or
/// [`MAX_CLICKS`]. Returns the IoU after each click.
pub fn click_until_done(
    seg: &mut dyn InteractiveSegmenter,
    gt: &Mask,
    timing: &mut Timing,
) -> anyhow::Result<Vec<f64>> {
    let highest = TARGETS.iter().copied().fold(0.0, f64::max);
    let mut clicks: Vec<Click> = Vec::new();
    let mut low_res: Option<LowRes> = None;
    let mut pred: Option<Mask> = None;
    let mut ious = Vec::new();
    while ious.len() < MAX_CLICKS {
        let click = match &pred {
            None => first_click(gt),
            Some(p) => next_click(gt, p)?,
        };
        let Some(click) = click else {
            // The mask equals the instance: no error left to click on; it stays perfect.
            let last = ious.last().copied().unwrap_or(1.0);
            ious.resize(ious.len().max(MIN_CLICKS), last);
            break;
        };
        clicks.push(click);
        let t = Instant::now();
        let p = seg.predict(&clicks, low_res.as_ref(), clicks.len() == 1)?;
        timing.predict_ms += ms_since(t);
        timing.predictions += 1;
        let iou = gt
            .iou(&p.mask_image)
            .context("the model's mask has the wrong size")?;
        ious.push(iou);
        low_res = p.low_res;
        pred = Some(p.mask_image);
        if ious.len() >= MIN_CLICKS && iou >= highest {
            break;
        }
    }
    Ok(ious)
}

/// `[x0, y0, x1, y1]` grown by `margin` on every side and clamped to the image.
pub fn grow_box(b: [u32; 4], margin: f64, width: u32, height: u32) -> [f64; 4] {
    [
        (f64::from(b[0]) - margin).max(0.0),
        (f64::from(b[1]) - margin).max(0.0),
        (f64::from(b[2]) + margin).min(f64::from(width)),
        (f64::from(b[3]) + margin).min(f64::from(height)),
    ]
}

fn box_iou(
    seg: &mut dyn InteractiveSegmenter,
    gt: &GtInstance,
    margin: f64,
    timing: &mut Timing,
) -> anyhow::Result<f64> {
    let b = grow_box(gt.bbox_xyxy, margin, gt.mask.width, gt.mask.height);
    let t = Instant::now();
    let mask = seg.predict_box(b)?;
    timing.predict_ms += ms_since(t);
    timing.predictions += 1;
    gt.mask
        .iou(&mask)
        .context("the model's box mask has the wrong size")
}

/// Every instance of one tile (the image prepared once).
pub fn evaluate_tile(
    seg: &mut dyn InteractiveSegmenter,
    tile: &Tile,
    timing: &mut Timing,
) -> anyhow::Result<Vec<InstanceResult>> {
    let t = Instant::now();
    seg.set_image(&tile.rgb)?;
    timing.set_image_ms += ms_since(t);
    tile.instances
        .iter()
        .map(|gt| {
            Ok(InstanceResult {
                tile: tile.id.clone(),
                label: gt.label,
                area: gt.area,
                touches_tile_border: gt.touches_tile_border,
                ious: click_until_done(seg, &gt.mask, timing)?,
                box_iou: box_iou(seg, gt, 0.0, timing)?,
                box_iou_loose: box_iou(seg, gt, LOOSE_BOX_MARGIN, timing)?,
            })
        })
        .collect::<anyhow::Result<_>>()
        .with_context(|| format!("tile {}", tile.id))
}

/// The benchmark on the first `limit` tiles (all if `None`) of a set. `progress` hears each tile done.
pub fn evaluate(
    seg: &mut dyn InteractiveSegmenter,
    data: &DataSet,
    limit: Option<usize>,
    mut progress: impl FnMut(usize, usize, &str),
) -> anyhow::Result<(EvalReport, Vec<InstanceResult>)> {
    let n = limit.unwrap_or(usize::MAX).min(data.items.len());
    let mut timing = Timing::default();
    let mut results = Vec::new();
    for i in 0..n {
        let tile = data.tile(i)?;
        results.extend(evaluate_tile(seg, &tile, &mut timing)?);
        progress(i + 1, n, &tile.id);
    }
    let report = EvalReport::from_results(seg.id(), data.name.clone(), n, &results, timing);
    Ok((report, results))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segmenter::Prediction;
    use image::RgbImage;

    /// Answers every prompt with a fixed sequence of masks, and records the clicks it was given.
    struct Scripted {
        answers: Vec<Mask>,
        seen: Vec<Vec<Click>>,
    }

    impl InteractiveSegmenter for Scripted {
        fn id(&self) -> String {
            "scripted".into()
        }
        fn set_image(&mut self, _: &RgbImage) -> anyhow::Result<()> {
            Ok(())
        }
        fn predict(
            &mut self,
            clicks: &[Click],
            _: Option<&LowRes>,
            multimask_allowed: bool,
        ) -> anyhow::Result<Prediction> {
            assert_eq!(multimask_allowed, clicks.len() == 1);
            self.seen.push(clicks.to_vec());
            let i = (self.seen.len() - 1).min(self.answers.len() - 1);
            Ok(Prediction {
                mask_image: self.answers[i].clone(),
                low_res: None,
            })
        }
        fn predict_box(&mut self, _: [f64; 4]) -> anyhow::Result<Mask> {
            Ok(self.answers[0].clone())
        }
    }

    fn square(x0: u32, y0: u32, side: u32) -> Mask {
        let mut m = Mask::new(32, 32);
        for y in y0..y0 + side {
            for x in x0..x0 + side {
                m.set(x, y, true);
            }
        }
        m
    }

    #[test]
    fn a_model_that_never_learns_is_clicked_twenty_times() {
        let gt = square(4, 4, 10);
        let mut seg = Scripted {
            answers: vec![Mask::new(32, 32)],
            seen: vec![],
        };
        let ious = click_until_done(&mut seg, &gt, &mut Timing::default()).unwrap();
        assert_eq!(ious, vec![0.0; MAX_CLICKS]);
        assert_eq!(seg.seen.len(), MAX_CLICKS);
        assert_eq!(seg.seen.last().unwrap().len(), MAX_CLICKS);
    }

    #[test]
    fn stops_after_five_clicks_once_the_highest_target_is_met() {
        let gt = square(4, 4, 10);
        let mut seg = Scripted {
            answers: vec![square(4, 4, 9), gt.clone()],
            seen: vec![],
        };
        let mut timing = Timing::default();
        let ious = click_until_done(&mut seg, &gt, &mut timing).unwrap();
        // Click 1 gives 81/100; clicks 2.. give the exact mask, which leaves nothing to click, so
        // the IoU of 1.0 is carried to click 5 with no more predictions.
        assert_eq!(ious, vec![0.81, 1.0, 1.0, 1.0, 1.0]);
        assert_eq!(timing.predictions, 2);
        // The second click is positive, in the missed L-shaped strip.
        let second = seg.seen[1][1];
        assert!(second.positive && gt.get(second.x_image, second.y_image));
    }

    #[test]
    fn stops_at_the_fifth_click_when_good_but_imperfect() {
        let gt = square(4, 4, 20);
        let mut near = gt.clone();
        near.set(4, 4, false); // IoU 399/400 ≥ 0.90 but still one FN pixel to click.
        let mut seg = Scripted {
            answers: vec![near],
            seen: vec![],
        };
        let ious = click_until_done(&mut seg, &gt, &mut Timing::default()).unwrap();
        assert_eq!(ious.len(), MIN_CLICKS);
    }

    #[test]
    fn loose_boxes_are_clamped_to_the_image() {
        assert_eq!(
            grow_box([1, 5, 30, 32], 2.0, 32, 32),
            [0.0, 3.0, 32.0, 32.0]
        );
    }
}
