//! An instance mask as the metrics need it: its foreground as sorted runs of the column-major pixel walk
//! (COCO RLE's order), its area and its box, so that the overlap of two masks costs a merge of their runs
//! and nothing when their boxes are apart.

use lamina_core::rle::{CompressedRle, Rle, RleError};

#[derive(Clone, Debug, PartialEq)]
pub struct Shape {
    /// `[height, width]` of the image, in image pixels.
    pub size: [u32; 2],
    pub area: u64,
    /// `[x, y, w, h]` in image pixels (pycocotools' `toBbox`).
    pub bbox: [u32; 4],
    /// Foreground runs `[start, end)` of the column-major walk (index `y + h·x`), sorted, disjoint.
    runs: Vec<(u64, u64)>,
}

impl Shape {
    pub fn from_rle(rle: &Rle) -> Shape {
        let mut runs = Vec::with_capacity(rle.counts.len() / 2);
        let mut at = 0u64;
        for (i, &count) in rle.counts.iter().enumerate() {
            let end = at + u64::from(count);
            if i % 2 == 1 && count > 0 {
                runs.push((at, end));
            }
            at = end;
        }
        Shape {
            size: [rle.height, rle.width],
            area: rle.area(),
            bbox: rle.bbox(),
            runs,
        }
    }

    pub fn from_compressed(c: &CompressedRle) -> Result<Shape, RleError> {
        Ok(Shape::from_rle(&Rle::decompress(c)?))
    }

    /// Pixels in both masks. Zero without looking at the runs when the boxes do not touch.
    pub fn intersection(&self, other: &Shape) -> u64 {
        if !boxes_overlap(self.bbox, other.bbox) || self.size != other.size {
            return 0;
        }
        let (a, b) = (&self.runs, &other.runs);
        let (mut i, mut j, mut total) = (0, 0, 0u64);
        while i < a.len() && j < b.len() {
            let start = a[i].0.max(b[j].0);
            let end = a[i].1.min(b[j].1);
            if end > start {
                total += end - start;
            }
            if a[i].1 < b[j].1 {
                i += 1;
            } else {
                j += 1;
            }
        }
        total
    }
}

fn boxes_overlap(a: [u32; 4], b: [u32; 4]) -> bool {
    let (ax1, ay1) = (
        u64::from(a[0]) + u64::from(a[2]),
        u64::from(a[1]) + u64::from(a[3]),
    );
    let (bx1, by1) = (
        u64::from(b[0]) + u64::from(b[2]),
        u64::from(b[1]) + u64::from(b[3]),
    );
    u64::from(a[0]) < bx1 && u64::from(b[0]) < ax1 && u64::from(a[1]) < by1 && u64::from(b[1]) < ay1
}

/// `|A ∩ B| / |A ∪ B|`, 0 when both are empty.
pub fn iou(intersection: u64, area_a: u64, area_b: u64) -> f64 {
    let union = area_a + area_b - intersection;
    if union == 0 {
        0.0
    } else {
        intersection as f64 / union as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lamina_core::mask::Mask;
    use proptest::prelude::*;

    fn shape_of(mask: &Mask) -> Shape {
        Shape::from_rle(&Rle::from_mask(mask))
    }

    proptest! {
        /// The merge of runs counts exactly the pixels set in both masks.
        #[test]
        fn intersection_counts_common_pixels(
            w in 1u32..20, h in 1u32..20,
            a in proptest::collection::vec(any::<bool>(), 400),
            b in proptest::collection::vec(any::<bool>(), 400),
        ) {
            let (mut ma, mut mb) = (Mask::new(w, h), Mask::new(w, h));
            let mut expected = 0;
            for y in 0..h {
                for x in 0..w {
                    let i = (y * w + x) as usize;
                    ma.set(x, y, a[i]);
                    mb.set(x, y, b[i]);
                    expected += u64::from(a[i] && b[i]);
                }
            }
            let (sa, sb) = (shape_of(&ma), shape_of(&mb));
            prop_assert_eq!(sa.intersection(&sb), expected);
            prop_assert_eq!(sa.area, ma.area());
        }
    }

    #[test]
    fn iou_of_disjoint_and_identical() {
        let mut m = Mask::new(4, 4);
        m.set(1, 1, true);
        m.set(1, 2, true);
        let mut n = Mask::new(4, 4);
        n.set(3, 3, true);
        let (a, b) = (shape_of(&m), shape_of(&n));
        assert_eq!(a.intersection(&b), 0);
        assert_eq!(iou(a.intersection(&a), a.area, a.area), 1.0);
    }
}
