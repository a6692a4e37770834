//! COCO's segm AP@[.5:.95] and AP@.5, computed as pycocotools' `COCOeval` does (`evaluateImg`,
//! `accumulate`, `summarize`) for area range "all" and 100 detections per image and class, so that the
//! numbers agree to rounding: the same thresholds (numpy's `linspace` arithmetic), the same stable
//! ordering of equal scores, the same greedy matching (IoU ≥ threshold, later truth wins ties), the
//! same monotone precision envelope sampled at 101 recall points. No truth is ever "crowd" in Lamina.

use crate::metrics::EvalImage;
use crate::shape::iou;

const MAX_DETS: usize = 100;

/// `np.linspace(start, stop, num)`: `i * step + start`, the last value exactly `stop`.
fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    let step = (stop - start) / (num - 1) as f64;
    let mut v: Vec<f64> = (0..num).map(|i| i as f64 * step + start).collect();
    if let Some(last) = v.last_mut() {
        *last = stop;
    }
    v
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CocoAp {
    pub map: f64,
    pub ap50: f64,
}

pub struct CocoApReport {
    /// `None` when no class has truth (pycocotools prints -1).
    pub overall: Option<CocoAp>,
    pub per_class: Vec<Option<CocoAp>>,
}

/// One (image, class) cell of `evaluateImg`: detections sorted by score, which of them matched at each
/// IoU threshold, and how many truth instances there are.
struct Cell {
    scores: Vec<f64>,
    /// `matched[t][d]`.
    matched: Vec<Vec<bool>>,
    n_truth: usize,
}

fn evaluate_cell(
    image: &EvalImage,
    class: usize,
    score_min: f64,
    thresholds: &[f64],
) -> Option<Cell> {
    let truth: Vec<usize> = (0..image.truth.len())
        .filter(|&t| image.truth[t].class == class)
        .collect();
    let mut dets: Vec<usize> = (0..image.predictions.len())
        .filter(|&p| image.predictions[p].class == class && image.predictions[p].score >= score_min)
        .collect();
    if truth.is_empty() && dets.is_empty() {
        return None;
    }
    // Stable sort by descending score (numpy's mergesort of -score), then the 100 best.
    dets.sort_by(|&a, &b| {
        image.predictions[b]
            .score
            .total_cmp(&image.predictions[a].score)
    });
    dets.truncate(MAX_DETS);
    let ious: Vec<Vec<f64>> = dets
        .iter()
        .map(|&d| {
            let ds = &image.predictions[d].shape;
            truth
                .iter()
                .map(|&t| {
                    let ts = &image.truth[t].shape;
                    iou(ds.intersection(ts), ds.area, ts.area)
                })
                .collect()
        })
        .collect();
    let matched = thresholds
        .iter()
        .map(|&threshold| {
            let mut truth_taken = vec![false; truth.len()];
            dets.iter()
                .enumerate()
                .map(|(d, _)| {
                    let mut best = threshold.min(1.0 - 1e-10);
                    let mut m = None;
                    for (g, taken) in truth_taken.iter().enumerate() {
                        if *taken || ious[d][g] < best {
                            continue;
                        }
                        best = ious[d][g];
                        m = Some(g);
                    }
                    if let Some(g) = m {
                        truth_taken[g] = true;
                    }
                    m.is_some()
                })
                .collect()
        })
        .collect();
    Some(Cell {
        scores: dets.iter().map(|&d| image.predictions[d].score).collect(),
        matched,
        n_truth: truth.len(),
    })
}

/// `accumulate` for one class: precision at each recall threshold, per IoU threshold; `None` without
/// truth (pycocotools leaves -1 there and skips it when averaging).
fn class_precision(
    cells: &[Cell],
    n_thresholds: usize,
    recall_thresholds: &[f64],
) -> Option<Vec<Vec<f64>>> {
    let n_truth: usize = cells.iter().map(|c| c.n_truth).sum();
    if n_truth == 0 {
        return None;
    }
    // Concatenate in image order, then a stable sort by descending score.
    let mut order: Vec<(usize, usize)> = cells
        .iter()
        .enumerate()
        .flat_map(|(i, c)| (0..c.scores.len()).map(move |d| (i, d)))
        .collect();
    order.sort_by(|a, b| cells[b.0].scores[b.1].total_cmp(&cells[a.0].scores[a.1]));
    let per_threshold = (0..n_thresholds)
        .map(|t| {
            let (mut tp, mut fp) = (0.0f64, 0.0f64);
            let mut recall = Vec::with_capacity(order.len());
            let mut precision = Vec::with_capacity(order.len());
            for &(i, d) in &order {
                if cells[i].matched[t][d] {
                    tp += 1.0;
                } else {
                    fp += 1.0;
                }
                recall.push(tp / n_truth as f64);
                precision.push(tp / (fp + tp + f64::EPSILON));
            }
            for i in (1..precision.len()).rev() {
                if precision[i] > precision[i - 1] {
                    precision[i - 1] = precision[i];
                }
            }
            recall_thresholds
                .iter()
                .map(|&r| {
                    // np.searchsorted(recall, r, side="left"): the first index with recall >= r.
                    let at = recall.partition_point(|&x| x < r);
                    precision.get(at).copied().unwrap_or(0.0)
                })
                .collect()
        })
        .collect();
    Some(per_threshold)
}

/// COCO mAP and AP50 overall and per class, over predictions scoring at least `score_min`.
pub fn coco_average_precision(
    n_classes: usize,
    images: &[EvalImage],
    score_min: f64,
) -> CocoApReport {
    let thresholds = linspace(0.5, 0.95, 10);
    let recall_thresholds = linspace(0.0, 1.0, 101);
    let per_class: Vec<Option<Vec<Vec<f64>>>> = (0..n_classes)
        .map(|class| {
            let cells: Vec<Cell> = images
                .iter()
                .filter_map(|im| evaluate_cell(im, class, score_min, &thresholds))
                .collect();
            class_precision(&cells, thresholds.len(), &recall_thresholds)
        })
        .collect();
    let summary = |classes: &[&Vec<Vec<f64>>]| -> Option<CocoAp> {
        if classes.is_empty() {
            return None;
        }
        let all: Vec<f64> = classes
            .iter()
            .flat_map(|p| p.iter().flatten().copied())
            .collect();
        let at50: Vec<f64> = classes.iter().flat_map(|p| p[0].iter().copied()).collect();
        Some(CocoAp {
            map: all.iter().sum::<f64>() / all.len() as f64,
            ap50: at50.iter().sum::<f64>() / at50.len() as f64,
        })
    };
    let with_truth: Vec<&Vec<Vec<f64>>> = per_class.iter().flatten().collect();
    CocoApReport {
        overall: summary(&with_truth),
        per_class: per_class
            .iter()
            .map(|p| p.as_ref().and_then(|p| summary(&[p])))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linspace_matches_numpy() {
        // Values numpy prints for np.linspace(.5, .95, 10) and np.linspace(0, 1, 101).
        let t = linspace(0.5, 0.95, 10);
        assert_eq!(t[0], 0.5);
        assert_eq!(t[1], 0.55);
        assert_eq!(t[9], 0.95);
        let r = linspace(0.0, 1.0, 101);
        assert_eq!(r[3], 0.03);
        assert_eq!(r[57], 0.5700000000000001);
        assert_eq!(r[100], 1.0);
    }
}
