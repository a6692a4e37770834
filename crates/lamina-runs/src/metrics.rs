//! Instance-segmentation metrics of predictions against truth, defined in `docs/model-runs.md`: one-to-one
//! matching (highest IoU first, IoU strictly above the threshold), precision, recall, F1, mean IoU and
//! Dice of matched pairs, PQ = DQ × SQ (Kirillov et al.), PanNuke's bPQ and mPQ, AJI (Kumar et al. 2017)
//! and COCO's mAP (`coco_eval`). `tests/reference/check_metrics.py` checks every figure against an
//! independent implementation and pycocotools.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::coco_eval::{coco_average_precision, CocoAp};
use crate::shape::{iou, Shape};

/// One truth or predicted instance. `class` indexes the class list given to [`evaluate`]; truth has
/// score 1.
#[derive(Clone, Debug)]
pub struct Object {
    pub class: usize,
    pub score: f64,
    pub shape: Shape,
}

/// The truth and predictions of one image, each in its own order (bundle order, file order): ties in
/// matching and in COCO's ranking are broken by these orders.
#[derive(Clone, Debug)]
pub struct EvalImage {
    pub name: String,
    pub truth: Vec<Object>,
    pub predictions: Vec<Object>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Thresholds {
    /// A pair matches when its IoU is strictly above this.
    pub iou: f64,
    /// Predictions scoring below this are dropped before anything is counted.
    pub score: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            iou: 0.5,
            score: 0.0,
        }
    }
}

/// The figures of one class, or of all classes together.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    pub n_gt: u64,
    pub n_pred: u64,
    pub tp: u64,
    pub fp: u64,
    #[serde(rename = "fn")]
    pub fn_: u64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub mean_iou: f64,
    pub dice: f64,
    pub pq: f64,
    pub dq: f64,
    pub sq: f64,
    /// Mean per-image AJI over images with truth or predictions; `None` when there are none.
    pub aji: Option<f64>,
    /// COCO segm AP@[.5:.95] and AP@.5; `None` without truth.
    pub map: Option<f64>,
    pub ap50: Option<f64>,
}

/// Per image, class-agnostic: what the app lists and sorts to find where a model fails.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageFigures {
    pub name: String,
    pub n_gt: u64,
    pub n_pred: u64,
    pub tp: u64,
    pub fp: u64,
    #[serde(rename = "fn")]
    pub fn_: u64,
    pub f1: f64,
    pub pq: f64,
    pub aji: Option<f64>,
}

/// Matched pairs of the class-agnostic matching, counted by (truth class, predicted class).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Confusion {
    pub classes: Vec<String>,
    /// `counts[truth][predicted]`.
    pub counts: Vec<Vec<u64>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub iou_threshold: f64,
    pub score_threshold: f64,
    #[serde(flatten)]
    pub overall: Figures,
    /// PanNuke's binary PQ: class-agnostic PQ per image, averaged over images with truth or predictions.
    pub bpq: Option<f64>,
    /// PanNuke's multi-class PQ: per image the mean PQ of the classes with truth there, averaged over
    /// images with truth.
    pub mpq: Option<f64>,
    /// By class name; classes with neither truth nor predictions are left out.
    pub classes: BTreeMap<String, Figures>,
    pub confusion: Confusion,
    pub images: Vec<ImageFigures>,
}

/// What is matched in one image: which objects take part (all, or one class).
#[derive(Clone, Copy)]
enum Subset {
    All,
    Class(usize),
}

impl Subset {
    fn has(self, o: &Object) -> bool {
        match self {
            Subset::All => true,
            Subset::Class(c) => o.class == c,
        }
    }
}

/// An overlapping (truth, prediction) pair of one image.
#[derive(Clone, Copy, Debug)]
struct Pair {
    truth: usize,
    pred: usize,
    intersection: u64,
    iou: f64,
}

/// One image with its predictions over the score threshold and every overlapping pair.
struct Scored<'a> {
    image: &'a EvalImage,
    /// Indices into `image.predictions` of those kept.
    kept: Vec<usize>,
    pairs: Vec<Pair>,
}

impl<'a> Scored<'a> {
    fn new(image: &'a EvalImage, score: f64) -> Self {
        let kept: Vec<usize> = (0..image.predictions.len())
            .filter(|&p| image.predictions[p].score >= score)
            .collect();
        let mut pairs = Vec::new();
        for (t, truth) in image.truth.iter().enumerate() {
            for &p in &kept {
                let pred = &image.predictions[p].shape;
                let intersection = truth.shape.intersection(pred);
                if intersection > 0 {
                    pairs.push(Pair {
                        truth: t,
                        pred: p,
                        intersection,
                        iou: iou(intersection, truth.shape.area, pred.area),
                    });
                }
            }
        }
        Scored { image, kept, pairs }
    }

    fn truth_in(&self, s: Subset) -> impl Iterator<Item = usize> + '_ {
        (0..self.image.truth.len()).filter(move |&t| s.has(&self.image.truth[t]))
    }

    fn preds_in(&self, s: Subset) -> impl Iterator<Item = usize> + '_ {
        self.kept
            .iter()
            .copied()
            .filter(move |&p| s.has(&self.image.predictions[p]))
    }

    fn pair_in(&self, s: Subset, pair: &Pair) -> bool {
        s.has(&self.image.truth[pair.truth]) && s.has(&self.image.predictions[pair.pred])
    }

    /// One-to-one matching: pairs above the threshold, highest IoU first, then lower truth index, then
    /// lower prediction index.
    fn matched(&self, s: Subset, iou_threshold: f64) -> Vec<Pair> {
        let mut candidates: Vec<Pair> = self
            .pairs
            .iter()
            .filter(|p| p.iou > iou_threshold && self.pair_in(s, p))
            .copied()
            .collect();
        candidates.sort_by(|a, b| {
            b.iou
                .total_cmp(&a.iou)
                .then(a.truth.cmp(&b.truth))
                .then(a.pred.cmp(&b.pred))
        });
        let mut truth_used = vec![false; self.image.truth.len()];
        let mut pred_used = vec![false; self.image.predictions.len()];
        let mut out = Vec::new();
        for c in candidates {
            if !truth_used[c.truth] && !pred_used[c.pred] {
                truth_used[c.truth] = true;
                pred_used[c.pred] = true;
                out.push(c);
            }
        }
        out
    }

    fn counts(&self, s: Subset, iou_threshold: f64) -> Counts {
        let matched = self.matched(s, iou_threshold);
        let n_gt = self.truth_in(s).count() as u64;
        let n_pred = self.preds_in(s).count() as u64;
        let tp = matched.len() as u64;
        let mut c = Counts {
            n_gt,
            n_pred,
            tp,
            fp: n_pred - tp,
            fn_: n_gt - tp,
            ..Counts::default()
        };
        for m in &matched {
            c.sum_iou += m.iou;
            let areas =
                self.image.truth[m.truth].shape.area + self.image.predictions[m.pred].shape.area;
            c.sum_dice += 2.0 * m.intersection as f64 / areas as f64;
        }
        c
    }

    /// Kumar et al.'s AJI of this image (HoVer-Net's convention for truth nobody overlaps); `None` when
    /// the image has neither truth nor predictions in the subset.
    fn aji(&self, s: Subset) -> Option<f64> {
        let mut used = vec![false; self.image.predictions.len()];
        let (mut common, mut union) = (0u64, 0u64);
        let mut any = false;
        for t in self.truth_in(s) {
            any = true;
            let area_t = self.image.truth[t].shape.area;
            // Pairs are in truth-major, prediction-minor order: the first maximum is the lowest index.
            let best = self
                .pairs
                .iter()
                .filter(|p| p.truth == t && self.pair_in(s, p))
                .fold(None::<Pair>, |best, p| match best {
                    Some(b) if b.iou >= p.iou => Some(b),
                    _ => Some(*p),
                });
            match best {
                Some(b) => {
                    let area_p = self.image.predictions[b.pred].shape.area;
                    common += b.intersection;
                    union += area_t + area_p - b.intersection;
                    used[b.pred] = true;
                }
                None => union += area_t,
            }
        }
        for p in self.preds_in(s) {
            any = true;
            if !used[p] {
                union += self.image.predictions[p].shape.area;
            }
        }
        (any && union > 0).then(|| common as f64 / union as f64)
    }
}

/// Pooled counts and sums behind [`Figures`].
#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    n_gt: u64,
    n_pred: u64,
    tp: u64,
    fp: u64,
    fn_: u64,
    sum_iou: f64,
    sum_dice: f64,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.n_gt += o.n_gt;
        self.n_pred += o.n_pred;
        self.tp += o.tp;
        self.fp += o.fp;
        self.fn_ += o.fn_;
        self.sum_iou += o.sum_iou;
        self.sum_dice += o.sum_dice;
    }

    fn ratio(num: f64, den: f64) -> f64 {
        if den > 0.0 {
            num / den
        } else {
            0.0
        }
    }

    fn dq(&self) -> f64 {
        let (tp, fp, fn_) = (self.tp as f64, self.fp as f64, self.fn_ as f64);
        Self::ratio(tp, tp + fp / 2.0 + fn_ / 2.0)
    }

    fn sq(&self) -> f64 {
        Self::ratio(self.sum_iou, self.tp as f64)
    }

    fn pq(&self) -> f64 {
        self.dq() * self.sq()
    }

    fn f1(&self) -> f64 {
        let (tp, fp, fn_) = (self.tp as f64, self.fp as f64, self.fn_ as f64);
        Self::ratio(2.0 * tp, 2.0 * tp + fp + fn_)
    }

    fn figures(&self, aji: Option<f64>, ap: Option<CocoAp>) -> Figures {
        let (tp, fp, fn_) = (self.tp as f64, self.fp as f64, self.fn_ as f64);
        Figures {
            n_gt: self.n_gt,
            n_pred: self.n_pred,
            tp: self.tp,
            fp: self.fp,
            fn_: self.fn_,
            precision: Self::ratio(tp, tp + fp),
            recall: Self::ratio(tp, tp + fn_),
            f1: self.f1(),
            mean_iou: self.sq(),
            dice: Self::ratio(self.sum_dice, tp),
            pq: self.pq(),
            dq: self.dq(),
            sq: self.sq(),
            aji,
            map: ap.map(|a| a.map),
            ap50: ap.map(|a| a.ap50),
        }
    }
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

/// What became of each instance of one image: the app colours them by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Truth found, or a prediction that found it.
    Matched,
    /// Truth no prediction matched.
    Missed,
    /// A prediction that matched no truth.
    FalsePositive,
    /// A prediction under the score threshold (not counted).
    BelowScore,
}

/// The class-agnostic matching of one image: an outcome per truth and per prediction, in their order.
pub fn match_image(image: &EvalImage, thresholds: Thresholds) -> (Vec<Outcome>, Vec<Outcome>) {
    let scored = Scored::new(image, thresholds.score);
    let mut truth = vec![Outcome::Missed; image.truth.len()];
    let mut predictions: Vec<Outcome> = image
        .predictions
        .iter()
        .map(|p| {
            if p.score >= thresholds.score {
                Outcome::FalsePositive
            } else {
                Outcome::BelowScore
            }
        })
        .collect();
    for m in scored.matched(Subset::All, thresholds.iou) {
        truth[m.truth] = Outcome::Matched;
        predictions[m.pred] = Outcome::Matched;
    }
    (truth, predictions)
}

/// Every figure of `docs/model-runs.md` for these images. `classes` names the class indices of the
/// objects (ontology order).
pub fn evaluate(classes: &[String], images: &[EvalImage], thresholds: Thresholds) -> Report {
    let scored: Vec<Scored> = images
        .iter()
        .map(|im| Scored::new(im, thresholds.score))
        .collect();
    let coco = coco_average_precision(classes.len(), images, thresholds.score);

    let mut overall = Counts::default();
    let mut per_class = vec![Counts::default(); classes.len()];
    let mut confusion = vec![vec![0u64; classes.len()]; classes.len()];
    let mut image_figures = Vec::with_capacity(images.len());
    let (mut bpq, mut mpq) = (Vec::new(), Vec::new());
    for s in &scored {
        let all = s.counts(Subset::All, thresholds.iou);
        overall.add(&all);
        for m in s.matched(Subset::All, thresholds.iou) {
            let (t, p) = (&s.image.truth[m.truth], &s.image.predictions[m.pred]);
            if let Some(row) = confusion.get_mut(t.class) {
                if let Some(cell) = row.get_mut(p.class) {
                    *cell += 1;
                }
            }
        }
        if all.n_gt + all.n_pred > 0 {
            bpq.push(all.pq());
        }
        let mut class_pq = Vec::new();
        for (c, counts) in per_class.iter_mut().enumerate() {
            let cc = s.counts(Subset::Class(c), thresholds.iou);
            counts.add(&cc);
            if cc.n_gt > 0 {
                class_pq.push(cc.pq());
            }
        }
        if let Some(m) = mean(class_pq.into_iter()) {
            mpq.push(m);
        }
        image_figures.push(ImageFigures {
            name: s.image.name.clone(),
            n_gt: all.n_gt,
            n_pred: all.n_pred,
            tp: all.tp,
            fp: all.fp,
            fn_: all.fn_,
            f1: all.f1(),
            pq: all.pq(),
            aji: s.aji(Subset::All),
        });
    }

    let aji_of = |subset: Subset| mean(scored.iter().filter_map(|s| s.aji(subset)));
    let classes_out = classes
        .iter()
        .enumerate()
        .filter(|(c, _)| per_class[*c].n_gt + per_class[*c].n_pred > 0)
        .map(|(c, name)| {
            let figures = per_class[c].figures(aji_of(Subset::Class(c)), coco.per_class[c]);
            (name.clone(), figures)
        })
        .collect();
    Report {
        iou_threshold: thresholds.iou,
        score_threshold: thresholds.score,
        overall: overall.figures(aji_of(Subset::All), coco.overall),
        bpq: mean(bpq.into_iter()),
        mpq: mean(mpq.into_iter()),
        classes: classes_out,
        confusion: Confusion {
            classes: classes.to_vec(),
            counts: confusion,
        },
        images: image_figures,
    }
}
