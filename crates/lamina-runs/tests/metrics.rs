//! Hand-computed cases of every figure (the data-scale comparison with pycocotools and an independent
//! implementation is `tests/reference/check_metrics.py`).
#![allow(clippy::unwrap_used)]

use lamina_core::mask::Mask;
use lamina_core::rle::Rle;
use lamina_runs::metrics::{evaluate, EvalImage, Object, Thresholds};
use lamina_runs::shape::Shape;

/// A `w`×`h` rectangle at (x, y) in a 20×20 image.
fn rect(x: u32, y: u32, w: u32, h: u32) -> Shape {
    let mut m = Mask::new(20, 20);
    m.fill_rect(
        f64::from(x),
        f64::from(y),
        f64::from(x + w),
        f64::from(y + h),
        true,
    );
    Shape::from_rle(&Rle::from_mask(&m))
}

fn obj(class: usize, score: f64, shape: Shape) -> Object {
    Object {
        class,
        score,
        shape,
    }
}

fn classes() -> Vec<String> {
    vec!["A".into(), "B".into()]
}

#[test]
fn perfect_predictions_score_one_everywhere() {
    let truth = vec![
        obj(0, 1.0, rect(0, 0, 4, 4)),
        obj(1, 1.0, rect(10, 10, 5, 5)),
    ];
    let image = EvalImage {
        name: "i".into(),
        truth: truth.clone(),
        predictions: truth,
    };
    let r = evaluate(&classes(), &[image], Thresholds::default());
    let o = &r.overall;
    assert_eq!((o.tp, o.fp, o.fn_), (2, 0, 0));
    for v in [
        o.precision,
        o.recall,
        o.f1,
        o.mean_iou,
        o.dice,
        o.pq,
        o.dq,
        o.sq,
    ] {
        assert_eq!(v, 1.0);
    }
    assert_eq!(o.aji, Some(1.0));
    // pycocotools' precision is tp / (tp + fp + eps): a perfect run gives 1 - 2e-16, as here.
    assert!((o.map.unwrap() - 1.0).abs() < 1e-12);
    assert_eq!(r.bpq, Some(1.0));
    assert_eq!(r.mpq, Some(1.0));
    assert_eq!(r.confusion.counts, vec![vec![1, 0], vec![0, 1]]);
}

#[test]
fn one_shifted_one_missed_one_false_positive() {
    // Truth: a 4×4 square (16 px) and a 2×2 one (4 px). Prediction 1 covers the square shifted by one
    // column: 12 common pixels, union 20, IoU 0.6. The small square is missed; a 3×3 prediction (9 px)
    // elsewhere is a false positive.
    let truth = vec![
        obj(0, 1.0, rect(0, 0, 4, 4)),
        obj(0, 1.0, rect(10, 0, 2, 2)),
    ];
    let predictions = vec![
        obj(0, 0.9, rect(1, 0, 4, 4)),
        obj(0, 0.8, rect(15, 15, 3, 3)),
    ];
    let image = EvalImage {
        name: "i".into(),
        truth,
        predictions,
    };
    let r = evaluate(&classes(), &[image], Thresholds::default());
    let o = &r.overall;
    assert_eq!((o.tp, o.fp, o.fn_), (1, 1, 1));
    assert_eq!(o.precision, 0.5);
    assert_eq!(o.recall, 0.5);
    assert_eq!(o.f1, 0.5);
    assert!((o.mean_iou - 0.6).abs() < 1e-12);
    assert!((o.dice - 24.0 / 32.0).abs() < 1e-12);
    // DQ = 1 / (1 + 0.5 + 0.5) = 0.5, SQ = 0.6.
    assert!((o.pq - 0.3).abs() < 1e-12);
    // AJI: C = 12, U = 20 (square pair) + 4 (missed) + 9 (unused prediction) = 33.
    assert!((o.aji.unwrap() - 12.0 / 33.0).abs() < 1e-12);
    // COCO: dets by score: TP at IoU 0.5 and 0.55 (IoU 0.6 ≥ t), FP after; 2 truths. Precision at recall
    // ≤ 0.5 is 1, none beyond: AP = 51/101 at those thresholds, 0 from 0.65 up... except 0.6 itself:
    // thresholds 0.5, 0.55, 0.6 count it (0.6 ≥ 0.6).
    let ap_at = 51.0 / 101.0;
    assert!((o.ap50.unwrap() - ap_at).abs() < 1e-12);
    assert!((o.map.unwrap() - 3.0 * ap_at / 10.0).abs() < 1e-12);
}

#[test]
fn matching_is_one_to_one_highest_iou_first() {
    // Two predictions on one nucleus: the better one matches, the other is a false positive.
    let truth = vec![obj(0, 1.0, rect(0, 0, 4, 4))];
    let predictions = vec![obj(0, 0.9, rect(1, 0, 4, 4)), obj(0, 0.5, rect(0, 0, 4, 4))];
    let image = EvalImage {
        name: "i".into(),
        truth,
        predictions,
    };
    let r = evaluate(&classes(), &[image], Thresholds::default());
    assert_eq!((r.overall.tp, r.overall.fp), (1, 1));
    assert_eq!(r.overall.mean_iou, 1.0);
}

#[test]
fn wrong_class_counts_overall_but_not_per_class() {
    let truth = vec![obj(0, 1.0, rect(0, 0, 4, 4))];
    let predictions = vec![obj(1, 0.9, rect(0, 0, 4, 4))];
    let image = EvalImage {
        name: "i".into(),
        truth,
        predictions,
    };
    let r = evaluate(&classes(), &[image], Thresholds::default());
    assert_eq!(r.overall.tp, 1);
    assert_eq!(r.classes["A"].fn_, 1);
    assert_eq!(r.classes["B"].fp, 1);
    assert_eq!(r.confusion.counts, vec![vec![0, 1], vec![0, 0]]);
    // COCO matches within a class: nothing found.
    assert_eq!(r.overall.map, Some(0.0));
    // Class B has no truth: no COCO AP for it.
    assert_eq!(r.classes["B"].map, None);
    // mPQ only averages classes with truth in the image: class A's PQ, 0.
    assert_eq!(r.mpq, Some(0.0));
}

#[test]
fn score_threshold_drops_predictions_first() {
    let truth = vec![obj(0, 1.0, rect(0, 0, 4, 4))];
    let predictions = vec![obj(0, 0.2, rect(0, 0, 4, 4))];
    let image = EvalImage {
        name: "i".into(),
        truth,
        predictions,
    };
    let r = evaluate(
        &classes(),
        &[image],
        Thresholds {
            iou: 0.5,
            score: 0.3,
        },
    );
    assert_eq!((r.overall.n_pred, r.overall.tp, r.overall.fn_), (0, 0, 1));
    assert_eq!(r.overall.aji, Some(0.0));
}

#[test]
fn iou_must_be_strictly_above_the_threshold() {
    // IoU exactly 0.6 (see above) does not match at --iou 0.6.
    let truth = vec![obj(0, 1.0, rect(0, 0, 4, 4))];
    let predictions = vec![obj(0, 1.0, rect(1, 0, 4, 4))];
    let image = EvalImage {
        name: "i".into(),
        truth,
        predictions,
    };
    let r = evaluate(
        &classes(),
        &[image],
        Thresholds {
            iou: 0.6,
            score: 0.0,
        },
    );
    assert_eq!(r.overall.tp, 0);
}

#[test]
fn images_with_nothing_do_not_count_in_image_means() {
    let empty = EvalImage {
        name: "e".into(),
        truth: vec![],
        predictions: vec![],
    };
    let truth = vec![obj(0, 1.0, rect(0, 0, 4, 4))];
    let full = EvalImage {
        name: "f".into(),
        truth: truth.clone(),
        predictions: truth,
    };
    let r = evaluate(&classes(), &[empty, full], Thresholds::default());
    assert_eq!(r.overall.aji, Some(1.0));
    assert_eq!(r.bpq, Some(1.0));
    assert_eq!(r.images.len(), 2);
    assert_eq!(r.images[0].aji, None);
}

#[test]
fn match_image_gives_each_instance_its_outcome() {
    use lamina_runs::metrics::{match_image, Outcome};
    let truth = vec![
        obj(0, 1.0, rect(0, 0, 4, 4)),
        obj(0, 1.0, rect(10, 0, 2, 2)),
    ];
    let predictions = vec![
        obj(0, 0.9, rect(1, 0, 4, 4)),
        obj(0, 0.8, rect(15, 15, 3, 3)),
        obj(0, 0.1, rect(10, 0, 2, 2)),
    ];
    let image = EvalImage {
        name: "i".into(),
        truth,
        predictions,
    };
    let (t, p) = match_image(
        &image,
        Thresholds {
            iou: 0.5,
            score: 0.2,
        },
    );
    assert_eq!(t, vec![Outcome::Matched, Outcome::Missed]);
    assert_eq!(
        p,
        vec![
            Outcome::Matched,
            Outcome::FalsePositive,
            Outcome::BelowScore
        ]
    );
}
