//! The outputs of an ultralytics YOLOv8/YOLO11-seg ONNX export, decoded: candidates, per-class NMS on
//! boxes, and each kept detection's mask from the prototypes, in image pixels.
//!
//! The contract: input `[1, 3, S, S]` (RGB in 0..1, the image letterboxed into the square with grey
//! 114 padding); output 0 `[1, 4 + classes + M, N]` holding per anchor the box centre and size in input
//! pixels, each class's score (already a probability) and M mask coefficients; output 1 `[1, M, P, P]`,
//! the prototypes at a quarter of the input. A detection's mask logits are its coefficients times the
//! prototypes; a pixel is foreground where those logits, sampled bilinearly at the pixel centre, are
//! above 0 (probability 0.5), and the centre lies in the detection's box. The numpy decoder of
//! tests/reference/check_yolo_seg.py states the same rules independently.

use lamina_core::mask::Mask;

/// How an image sits in the model's square input: scaled to fit, centred, padded (ultralytics'
/// `LetterBox(auto=False)`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Letterbox {
    pub input: u32,
    /// The image's size inside the input, input pixels.
    pub scaled: [u32; 2],
    /// Padding left and top, input pixels.
    pub pad: [u32; 2],
    pub image: [u32; 2],
}

impl Letterbox {
    pub fn for_image(width: u32, height: u32, input: u32) -> Letterbox {
        let r = (f64::from(input) / f64::from(width)).min(f64::from(input) / f64::from(height));
        let scaled = [
            ((f64::from(width) * r).round() as u32).clamp(1, input),
            ((f64::from(height) * r).round() as u32).clamp(1, input),
        ];
        // ultralytics: `top, bottom = round(dh - 0.1), round(dh + 0.1)`, likewise left.
        let pad =
            [0, 1].map(|k| ((f64::from(input - scaled[k]) / 2.0 - 0.1).round()).max(0.0) as u32);
        Letterbox {
            input,
            scaled,
            pad,
            image: [width, height],
        }
    }

    /// An image point (pixels) in input pixels.
    pub fn input_from_image(&self, p_image: [f64; 2]) -> [f64; 2] {
        [0, 1].map(|k| {
            p_image[k] * f64::from(self.scaled[k]) / f64::from(self.image[k])
                + f64::from(self.pad[k])
        })
    }

    /// An input point in image pixels.
    pub fn image_from_input(&self, p_input: [f64; 2]) -> [f64; 2] {
        [0, 1].map(|k| {
            (p_input[k] - f64::from(self.pad[k])) * f64::from(self.image[k])
                / f64::from(self.scaled[k])
        })
    }

    /// Whether the image fills the input exactly (no resize, no padding).
    pub fn is_identity(&self) -> bool {
        self.scaled == [self.input; 2] && self.image == [self.input; 2]
    }
}

/// Output 0 of the model, `[4 + classes + M, N]` row-major (the batch dimension dropped).
#[derive(Clone, Copy, Debug)]
pub struct Detections<'a> {
    pub values: &'a [f32],
    pub classes: usize,
    pub coefficients: usize,
    pub anchors: usize,
}

/// Output 1, `[M, P, P]` row-major.
#[derive(Clone, Copy, Debug)]
pub struct Prototypes<'a> {
    pub values: &'a [f32],
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

/// One detection kept after NMS.
#[derive(Clone, Debug, PartialEq)]
pub struct Detection {
    /// `[x0, y0, x1, y1]`, input pixels.
    pub box_input: [f32; 4],
    pub class: usize,
    pub score: f32,
    pub coefficients: Vec<f32>,
}

/// ultralytics' default cap on detections per image.
pub const MAX_DETECTIONS: usize = 300;

fn box_iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let area = |r: &[f32; 4]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let union = area(a) + area(b) - inter;
    if union > 0.0 {
        inter / union
    } else {
        0.0
    }
}

/// Candidates at or above `min_score` (a candidate's class is its best-scoring one), then greedy NMS
/// within each class: best first (ties in anchor order), dropping a box whose IoU with a kept box of its
/// class exceeds `nms_iou`; at most [`MAX_DETECTIONS`], best first.
pub fn detect(out: &Detections<'_>, min_score: f32, nms_iou: f32) -> Vec<Detection> {
    let n = out.anchors;
    let at = |row: usize, anchor: usize| out.values[row * n + anchor];
    let mut candidates: Vec<Detection> = (0..n)
        .filter_map(|a| {
            let (class, score) = (0..out.classes).map(|c| (c, at(4 + c, a))).fold(
                (0, f32::NEG_INFINITY),
                |best, (c, s)| if s > best.1 { (c, s) } else { best },
            );
            // NaN scores fail this too.
            if score.partial_cmp(&min_score).is_none_or(|o| o.is_lt()) {
                return None;
            }
            let (cx, cy, w, h) = (at(0, a), at(1, a), at(2, a), at(3, a));
            Some(Detection {
                box_input: [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0],
                class,
                score,
                coefficients: (0..out.coefficients)
                    .map(|k| at(4 + out.classes + k, a))
                    .collect(),
            })
        })
        .collect();
    // Stable: equal scores keep anchor order, as the reference does.
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Detection> = Vec::new();
    for c in candidates {
        if kept.len() == MAX_DETECTIONS {
            break;
        }
        let duplicate = kept
            .iter()
            .any(|k| k.class == c.class && box_iou(&k.box_input, &c.box_input) > nms_iou);
        if !duplicate {
            kept.push(c);
        }
    }
    kept
}

/// A detection's mask in image pixels (see the module comment for the rule).
pub fn mask_image(det: &Detection, protos: &Prototypes<'_>, letterbox: &Letterbox) -> Mask {
    let [width, height] = letterbox.image;
    let mut mask = Mask::new(width, height);
    let [bx0, by0, bx1, by1] = det.box_input.map(f64::from);
    // The image pixels whose centres can lie in the box.
    let [ix0, iy0] = letterbox.image_from_input([bx0, by0]);
    let [ix1, iy1] = letterbox.image_from_input([bx1, by1]);
    let span = |a: f64, b: f64, size: u32| {
        let lo = (a - 1.0).floor().max(0.0) as u32;
        let hi = ((b + 1.0).ceil().max(0.0) as u32).min(size);
        (lo.min(size), hi)
    };
    let (x_lo, x_hi) = span(ix0, ix1, width);
    let (y_lo, y_hi) = span(iy0, iy1, height);
    if x_lo >= x_hi || y_lo >= y_hi {
        return mask;
    }
    let (pw, ph) = (protos.width, protos.height);
    let to_proto = |u: f64, size: usize| {
        let p = (u * size as f64 / f64::from(letterbox.input) - 0.5).clamp(0.0, (size - 1) as f64);
        let p0 = p.floor() as usize;
        (p0, (p0 + 1).min(size - 1), p - p0 as f64)
    };
    // Logits on the prototype cells the box's pixels sample, computed once each.
    let mut logits: std::collections::HashMap<(usize, usize), f64> = Default::default();
    let mut logit = |px: usize, py: usize| -> f64 {
        *logits.entry((px, py)).or_insert_with(|| {
            (0..protos.channels)
                .map(|k| {
                    f64::from(det.coefficients[k])
                        * f64::from(protos.values[(k * ph + py) * pw + px])
                })
                .sum()
        })
    };
    for y in y_lo..y_hi {
        for x in x_lo..x_hi {
            let [u, v] = letterbox.input_from_image([f64::from(x) + 0.5, f64::from(y) + 0.5]);
            if u < bx0 || u >= bx1 || v < by0 || v >= by1 {
                continue;
            }
            let (x0, x1, fx) = to_proto(u, pw);
            let (y0, y1, fy) = to_proto(v, ph);
            let top = logit(x0, y0) * (1.0 - fx) + logit(x1, y0) * fx;
            let bottom = logit(x0, y1) * (1.0 - fx) + logit(x1, y1) * fx;
            if top * (1.0 - fy) + bottom * fy > 0.0 {
                mask.set(x, y, true);
            }
        }
    }
    mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letterbox_fits_centres_and_maps_both_ways() {
        let lb = Letterbox::for_image(1000, 500, 640);
        assert_eq!(lb.scaled, [640, 320]);
        assert_eq!(lb.pad, [0, 160]);
        let p = lb.input_from_image([500.0, 250.0]);
        assert_eq!(p, [320.0, 320.0]);
        assert_eq!(lb.image_from_input(p), [500.0, 250.0]);
        assert!(Letterbox::for_image(256, 256, 256).is_identity());
        // An odd margin: ultralytics puts the extra pixel at the bottom (round(dh - 0.1)).
        assert_eq!(Letterbox::for_image(100, 99, 100).pad, [0, 0]);
        assert_eq!(Letterbox::for_image(100, 97, 100).pad, [0, 1]);
    }

    /// Two classes, no coefficients beyond one: anchors given as (cx, cy, w, h, s0, s1, coef).
    fn outputs(anchors: &[[f32; 7]]) -> Vec<f32> {
        let n = anchors.len();
        let mut v = vec![0.0; 7 * n];
        for (a, row) in anchors.iter().enumerate() {
            for (r, value) in row.iter().enumerate() {
                v[r * n + a] = *value;
            }
        }
        v
    }

    #[test]
    fn nms_is_per_class_best_first_and_drops_low_scores() {
        let values = outputs(&[
            [50.0, 50.0, 20.0, 20.0, 0.9, 0.1, 1.0],
            [51.0, 50.0, 20.0, 20.0, 0.8, 0.1, 1.0], // same object, same class: dropped
            [51.0, 50.0, 20.0, 20.0, 0.1, 0.7, 1.0], // same place, other class: kept
            [10.0, 10.0, 8.0, 8.0, 0.2, 0.3, 1.0],   // under the threshold
        ]);
        let out = Detections {
            values: &values,
            classes: 2,
            coefficients: 1,
            anchors: 4,
        };
        let kept = detect(&out, 0.5, 0.5);
        let summary: Vec<(usize, f32)> = kept.iter().map(|d| (d.class, d.score)).collect();
        assert_eq!(summary, [(0, 0.9), (1, 0.7)]);
        assert_eq!(kept[0].box_input, [40.0, 40.0, 60.0, 60.0]);
    }

    #[test]
    fn a_mask_is_where_the_prototype_logits_are_positive_inside_the_box() {
        // One prototype channel at 4×4 for a 16 px input: positive on the left half.
        let proto: Vec<f32> = (0..16)
            .map(|i| if i % 4 < 2 { 1.0 } else { -1.0 })
            .collect();
        let protos = Prototypes {
            values: &proto,
            channels: 1,
            height: 4,
            width: 4,
        };
        let det = Detection {
            box_input: [0.0, 4.0, 16.0, 12.0],
            class: 0,
            score: 0.9,
            coefficients: vec![2.0],
        };
        let m = mask_image(&det, &protos, &Letterbox::for_image(16, 16, 16));
        // Left half (logit > 0 up to the midpoint of cells 1 and 2, x < 8), rows 4..12 (the box).
        assert_eq!(m.area(), 8 * 8);
        assert_eq!(m.bbox(), [0, 4, 8, 8]);
        // A negative coefficient flips it: the right half.
        let flipped = Detection {
            coefficients: vec![-2.0],
            ..det
        };
        assert_eq!(
            mask_image(&flipped, &protos, &Letterbox::for_image(16, 16, 16)).bbox(),
            [8, 4, 8, 8]
        );
    }
}
