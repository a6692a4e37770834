//! A binary mask in image pixels, and the painting operations the brush, eraser and box tools use.
//!
//! Painting rules are stated in terms of pixel centres: pixel (x, y) covers [x, x+1) x [y, y+1), so its
//! centre is (x + 0.5, y + 0.5). Every operation clips to the image and ignores non-finite input
//! rather than panicking, because coordinates come straight from pointer events.

/// Binary mask in image pixels, row-major: `data[y * width + x]` is 0 or 1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mask {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MaskError {
    #[error(
        "mask sizes differ: {left_width}x{left_height} vs {right_width}x{right_height} (w x h)"
    )]
    SizeMismatch {
        left_width: u32,
        left_height: u32,
        right_width: u32,
        right_height: u32,
    },
}

impl Mask {
    /// An all-background mask.
    pub fn new(width: u32, height: u32) -> Mask {
        Mask {
            width,
            height,
            data: vec![0; width as usize * height as usize],
        }
    }

    /// A mask drawn as text, one string per row, `#` for foreground (tests and examples read better so).
    pub fn from_rows(rows: &[&str]) -> Mask {
        let width = rows.first().map_or(0, |r| r.chars().count()) as u32;
        let mut m = Mask::new(width, rows.len() as u32);
        for (y, row) in rows.iter().enumerate() {
            for (x, ch) in row.chars().enumerate() {
                m.set(x as u32, y as u32, ch == '#');
            }
        }
        m
    }

    fn index(&self, x: u32, y: u32) -> Option<usize> {
        (x < self.width && y < self.height).then(|| y as usize * self.width as usize + x as usize)
    }

    /// False out of bounds.
    pub fn get(&self, x: u32, y: u32) -> bool {
        self.index(x, y)
            .and_then(|i| self.data.get(i))
            .is_some_and(|&v| v != 0)
    }

    /// No-op out of bounds.
    pub fn set(&mut self, x: u32, y: u32, value: bool) {
        if let Some(px) = self.index(x, y).and_then(|i| self.data.get_mut(i)) {
            *px = u8::from(value);
        }
    }

    /// Number of foreground pixels.
    pub fn area(&self) -> u64 {
        self.data.iter().filter(|&&v| v != 0).count() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.data.iter().all(|&v| v == 0)
    }

    /// `[x, y, w, h]` of the foreground in image pixels; `[0, 0, 0, 0]` when empty (as pycocotools'
    /// `toBbox`). Row by row over the bytes: it runs on every suggestion drawn, over the whole image.
    pub fn bbox(&self) -> [u32; 4] {
        let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
        let width = self.width as usize;
        if width == 0 {
            return [0, 0, 0, 0];
        }
        for (y, row) in self.data.chunks_exact(width).enumerate() {
            let Some(first) = row.iter().position(|&v| v != 0) else {
                continue;
            };
            let last = row.iter().rposition(|&v| v != 0).unwrap_or(first);
            x0 = x0.min(first);
            x1 = x1.max(last);
            y0 = y0.min(y);
            y1 = y;
        }
        if x0 == usize::MAX {
            [0, 0, 0, 0]
        } else {
            [x0, y0, x1 - x0 + 1, y1 - y0 + 1].map(|v| v as u32)
        }
    }

    /// The part of the mask inside `rect` (`[x, y, w, h]`, clipped to the mask), as a mask of its own.
    pub fn crop(&self, rect: [u32; 4]) -> Mask {
        let [x, y, w, h] = self.clip(rect);
        let mut part = Mask::new(w, h);
        if w == 0 {
            return part;
        }
        let (x, width) = (x as usize, self.width as usize);
        for (row, out) in part.data.chunks_exact_mut(w as usize).enumerate() {
            let start = (y as usize + row) * width + x;
            out.copy_from_slice(&self.data[start..start + w as usize]);
        }
        part
    }

    /// A `width` × `height` mask holding `part` with its top-left corner at (`x`, `y`); what falls
    /// outside is left out.
    pub fn placed(width: u32, height: u32, part: &Mask, x: u32, y: u32) -> Mask {
        let mut mask = Mask::new(width, height);
        let [x, y, w, h] = mask.clip([x, y, part.width, part.height]);
        let (w, full) = (w as usize, width as usize);
        for row in 0..h as usize {
            let start = (y as usize + row) * full + x as usize;
            let src = row * part.width as usize;
            mask.data[start..start + w].copy_from_slice(&part.data[src..src + w]);
        }
        mask
    }

    /// `rect` clipped to the mask: `[x, y, w, h]` with w and h 0 when nothing is left.
    fn clip(&self, [x, y, w, h]: [u32; 4]) -> [u32; 4] {
        let (x, y) = (x.min(self.width), y.min(self.height));
        [x, y, w.min(self.width - x), h.min(self.height - y)]
    }

    /// Pixels whose index range could hold centres in [lo, hi] along an axis of `len` pixels,
    /// clipped to the image. `None` when the range misses the image or is not finite.
    fn pixel_span(lo: f64, hi: f64, len: u32) -> Option<(u32, u32)> {
        if !(lo.is_finite() && hi.is_finite()) || len == 0 {
            return None;
        }
        // Centre c = i + 0.5 lies in [lo, hi] for i in [lo - 0.5, hi - 0.5].
        let first = (lo - 0.5).ceil().max(0.0);
        let last = (hi - 0.5).floor().min(f64::from(len - 1));
        (first <= last).then_some((first as u32, last as u32))
    }

    /// Paint every pixel whose centre lies within `radius` of (cx, cy) (image pixels). A small radius
    /// (≤ 0.5) would otherwise paint nothing between centres, so the pixel containing the point is
    /// always painted: a click with a thin brush must leave a mark.
    pub fn paint_disc(&mut self, cx: f64, cy: f64, radius: f64, value: bool) {
        self.paint_point_pixel(cx, cy, value);
        if radius.is_nan() || radius <= 0.0 {
            return;
        }
        let (Some((xa, xb)), Some((ya, yb))) = (
            Self::pixel_span(cx - radius, cx + radius, self.width),
            Self::pixel_span(cy - radius, cy + radius, self.height),
        ) else {
            return;
        };
        let r2 = radius * radius;
        for y in ya..=yb {
            for x in xa..=xb {
                let (dx, dy) = (f64::from(x) + 0.5 - cx, f64::from(y) + 0.5 - cy);
                if dx * dx + dy * dy <= r2 {
                    self.set(x, y, value);
                }
            }
        }
    }

    fn paint_point_pixel(&mut self, x_image: f64, y_image: f64, value: bool) {
        if let Some((x, y)) = self.pixel_at(x_image, y_image) {
            self.set(x, y, value);
        }
    }

    /// Paint a capsule: every pixel whose centre lies within `radius` of the segment from → to, plus the
    /// pixels under both ends (same small-radius rule as [`Mask::paint_disc`]).
    pub fn paint_stroke(&mut self, from: [f64; 2], to: [f64; 2], radius: f64, value: bool) {
        self.paint_point_pixel(from[0], from[1], value);
        self.paint_point_pixel(to[0], to[1], value);
        if radius.is_nan() || radius <= 0.0 {
            return;
        }
        let (Some((xa, xb)), Some((ya, yb))) = (
            Self::pixel_span(
                from[0].min(to[0]) - radius,
                from[0].max(to[0]) + radius,
                self.width,
            ),
            Self::pixel_span(
                from[1].min(to[1]) - radius,
                from[1].max(to[1]) + radius,
                self.height,
            ),
        ) else {
            return;
        };
        let r2 = radius * radius;
        for y in ya..=yb {
            for x in xa..=xb {
                let p = [f64::from(x) + 0.5, f64::from(y) + 0.5];
                if distance_sq_to_segment(p, from, to) <= r2 {
                    self.set(x, y, value);
                }
            }
        }
    }

    /// Paint pixels whose centres are inside the rectangle with corners (x0, y0) and (x1, y1), given in
    /// any order. Half-open (min ≤ centre < max), so two boxes sharing an edge never share a pixel.
    pub fn fill_rect(&mut self, x0: f64, y0: f64, x1: f64, y1: f64, value: bool) {
        let (xmin, xmax) = (x0.min(x1), x0.max(x1));
        let (ymin, ymax) = (y0.min(y1), y0.max(y1));
        let (Some((xa, xb)), Some((ya, yb))) = (
            Self::pixel_span(xmin, xmax, self.width),
            Self::pixel_span(ymin, ymax, self.height),
        ) else {
            return;
        };
        for y in ya..=yb {
            for x in xa..=xb {
                let (cx, cy) = (f64::from(x) + 0.5, f64::from(y) + 0.5);
                if cx < xmax && cy < ymax {
                    self.set(x, y, value);
                }
            }
        }
    }

    fn check_size(&self, other: &Mask) -> Result<(), MaskError> {
        if (self.width, self.height) == (other.width, other.height) {
            Ok(())
        } else {
            Err(MaskError::SizeMismatch {
                left_width: self.width,
                left_height: self.height,
                right_width: other.width,
                right_height: other.height,
            })
        }
    }

    /// Add `other`'s foreground to this mask.
    pub fn union_with(&mut self, other: &Mask) -> Result<(), MaskError> {
        self.check_size(other)?;
        for (a, &b) in self.data.iter_mut().zip(&other.data) {
            *a = u8::from(*a != 0 || b != 0);
        }
        Ok(())
    }

    /// Remove `other`'s foreground from this mask (the eraser, and "no overlap" between instances).
    pub fn subtract(&mut self, other: &Mask) -> Result<(), MaskError> {
        self.check_size(other)?;
        for (a, &b) in self.data.iter_mut().zip(&other.data) {
            *a = u8::from(*a != 0 && b == 0);
        }
        Ok(())
    }

    /// Intersection over union. Two empty masks are identical, so their IoU is 1.0.
    pub fn iou(&self, other: &Mask) -> Result<f64, MaskError> {
        self.check_size(other)?;
        let (mut inter, mut union) = (0u64, 0u64);
        for (&a, &b) in self.data.iter().zip(&other.data) {
            inter += u64::from(a != 0 && b != 0);
            union += u64::from(a != 0 || b != 0);
        }
        Ok(if union == 0 {
            1.0
        } else {
            inter as f64 / union as f64
        })
    }

    /// The pixel under a point in image pixels, if inside the image.
    pub fn pixel_at(&self, x_image: f64, y_image: f64) -> Option<(u32, u32)> {
        let inside = x_image >= 0.0
            && y_image >= 0.0
            && x_image < f64::from(self.width)
            && y_image < f64::from(self.height);
        inside.then(|| (x_image.floor() as u32, y_image.floor() as u32))
    }

    /// Whether the pixel under a point (image pixels) is foreground: the hit test for selecting an
    /// instance by clicking it.
    pub fn contains_point(&self, x_image: f64, y_image: f64) -> bool {
        self.pixel_at(x_image, y_image)
            .is_some_and(|(x, y)| self.get(x, y))
    }
}

fn distance_sq_to_segment(p: [f64; 2], a: [f64; 2], b: [f64; 2]) -> f64 {
    let (abx, aby) = (b[0] - a[0], b[1] - a[1]);
    let len2 = abx * abx + aby * aby;
    let t = if len2 > 0.0 {
        (((p[0] - a[0]) * abx + (p[1] - a[1]) * aby) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (dx, dy) = (p[0] - (a[0] + t * abx), p[1] - (a[1] + t * aby));
    dx * dx + dy * dy
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rows(mask: &Mask) -> Vec<String> {
        (0..mask.height)
            .map(|y| {
                (0..mask.width)
                    .map(|x| if mask.get(x, y) { '#' } else { '.' })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn get_and_set_ignore_out_of_bounds() {
        let mut m = Mask::new(3, 2);
        m.set(2, 1, true);
        m.set(3, 0, true);
        m.set(0, 2, true);
        assert!(m.get(2, 1));
        assert!(!m.get(3, 0));
        assert_eq!(m.area(), 1);
        assert_eq!(m.data[5], 1);
    }

    #[test]
    fn bbox_is_xywh_and_zero_when_empty() {
        let mut m = Mask::new(10, 8);
        assert_eq!(m.bbox(), [0, 0, 0, 0]);
        assert!(m.is_empty());
        m.set(3, 5, true);
        m.set(4, 7, true);
        assert_eq!(m.bbox(), [3, 5, 2, 3]);
    }

    #[test]
    fn bbox_wider_on_a_lower_row_and_a_single_pixel() {
        let m = Mask::from_rows(&["......", "..#...", "......", ".####.", "......"]);
        assert_eq!(m.bbox(), [1, 1, 4, 3]);
        let mut one = Mask::new(5, 5);
        one.set(4, 4, true);
        assert_eq!(one.bbox(), [4, 4, 1, 1]);
        assert_eq!(Mask::new(0, 3).bbox(), [0, 0, 0, 0]);
    }

    #[test]
    fn a_crop_to_the_bbox_placed_back_is_the_same_mask() {
        let m = Mask::from_rows(&["......", "..#...", ".###..", "..#...", "......"]);
        let bbox = m.bbox();
        let part = m.crop(bbox);
        assert_eq!(part, Mask::from_rows(&[".#.", "###", ".#."]));
        assert_eq!(Mask::placed(6, 5, &part, bbox[0], bbox[1]), m);
    }

    #[test]
    fn crop_and_placement_clip_to_the_mask() {
        let m = Mask::from_rows(&["..#", ".##"]);
        assert_eq!(m.crop([1, 0, 10, 10]), Mask::from_rows(&[".#", "##"]));
        assert_eq!(m.crop([5, 5, 2, 2]), Mask::new(0, 0));
        let part = Mask::from_rows(&["##", "##"]);
        assert_eq!(
            Mask::placed(3, 2, &part, 2, 1),
            Mask::from_rows(&["...", "..#"])
        );
        assert!(Mask::placed(3, 2, &part, 7, 7).is_empty());
    }

    #[test]
    fn disc_paints_pixel_centres_within_radius() {
        let mut m = Mask::new(7, 7);
        m.paint_disc(3.5, 3.5, 1.0, true);
        assert_eq!(
            rows(&m),
            [".......", ".......", "...#...", "..###..", "...#...", ".......", "......."]
        );
        assert_eq!(m.area(), 5);
    }

    #[test]
    fn tiny_disc_still_paints_the_clicked_pixel() {
        let mut m = Mask::new(4, 4);
        m.paint_disc(2.9, 1.1, 0.2, true);
        assert_eq!(m.area(), 1);
        assert!(m.get(2, 1));
        m.paint_disc(-3.0, 1.0, 0.2, true);
        m.paint_disc(f64::NAN, 1.0, 5.0, true);
        assert_eq!(m.area(), 1);
    }

    #[test]
    fn stroke_is_a_capsule_and_erases() {
        let mut m = Mask::new(8, 3);
        m.paint_stroke([0.5, 1.5], [7.5, 1.5], 0.5, true);
        assert_eq!(rows(&m), ["........", "########", "........"]);
        m.paint_stroke([2.5, 1.5], [3.5, 1.5], 0.5, false);
        assert_eq!(rows(&m)[1], "##..####");
    }

    #[test]
    fn fill_rect_accepts_any_corner_order_and_clips() {
        let mut m = Mask::new(5, 4);
        m.fill_rect(7.0, 3.0, 2.0, -1.0, true);
        assert_eq!(rows(&m), ["..###", "..###", "..###", "....."]);
        let mut a = Mask::new(4, 1);
        let mut b = Mask::new(4, 1);
        a.fill_rect(0.0, 0.0, 2.0, 1.0, true);
        b.fill_rect(2.0, 0.0, 4.0, 1.0, true);
        assert_eq!(a.iou(&b), Ok(0.0), "boxes sharing an edge share no pixel");
    }

    #[test]
    fn union_subtract_iou_and_size_mismatch() {
        let mut a = Mask::new(4, 4);
        a.fill_rect(0.0, 0.0, 2.0, 2.0, true);
        let mut b = Mask::new(4, 4);
        b.fill_rect(1.0, 0.0, 3.0, 2.0, true);
        assert_eq!(a.iou(&b), Ok(2.0 / 6.0));
        let mut u = a.clone();
        u.union_with(&b).unwrap();
        assert_eq!(u.area(), 6);
        u.subtract(&a).unwrap();
        assert_eq!(rows(&u), ["..#.", "..#.", "....", "...."]);
        assert_eq!(Mask::new(2, 2).iou(&Mask::new(2, 2)), Ok(1.0));
        let err = a.union_with(&Mask::new(4, 5)).unwrap_err();
        assert!(err.to_string().contains("4x4 vs 4x5"), "{err}");
        assert!(a.subtract(&Mask::new(3, 4)).is_err());
    }

    #[test]
    fn contains_point_hits_the_pixel_under_the_point() {
        let mut m = Mask::new(4, 4);
        m.set(1, 2, true);
        assert!(m.contains_point(1.0, 2.0));
        assert!(m.contains_point(1.99, 2.99));
        assert!(!m.contains_point(2.0, 2.5));
        assert!(!m.contains_point(-0.5, 2.5));
    }

    proptest! {
        #[test]
        fn disc_matches_its_definition(cx in -3.0..12.0f64, cy in -3.0..12.0f64, r in 0.0..6.0f64) {
            let mut m = Mask::new(9, 9);
            m.paint_disc(cx, cy, r, true);
            for y in 0..9u32 {
                for x in 0..9u32 {
                    let (dx, dy) = (f64::from(x) + 0.5 - cx, f64::from(y) + 0.5 - cy);
                    let under = cx.floor() == f64::from(x) && cy.floor() == f64::from(y);
                    prop_assert_eq!(m.get(x, y), dx * dx + dy * dy <= r * r || under);
                }
            }
        }

        #[test]
        fn stroke_covers_discs_at_both_ends(
            a in proptest::array::uniform2(0.0..16.0f64),
            b in proptest::array::uniform2(0.0..16.0f64),
            r in 0.0..4.0f64,
        ) {
            let mut stroke = Mask::new(16, 16);
            stroke.paint_stroke(a, b, r, true);
            for end in [a, b] {
                let mut disc = Mask::new(16, 16);
                disc.paint_disc(end[0], end[1], r, true);
                let mut missing = disc.clone();
                missing.subtract(&stroke).unwrap();
                prop_assert!(missing.is_empty());
            }
        }

        #[test]
        fn iou_is_symmetric_and_bounded(a in proptest::collection::vec(0u8..2, 36), b in proptest::collection::vec(0u8..2, 36)) {
            let a = Mask { width: 6, height: 6, data: a };
            let b = Mask { width: 6, height: 6, data: b };
            let (ab, ba) = (a.iou(&b).unwrap(), b.iou(&a).unwrap());
            prop_assert_eq!(ab, ba);
            prop_assert!((0.0..=1.0).contains(&ab));
            prop_assert_eq!(a.iou(&a).unwrap(), 1.0);
        }
    }
}
