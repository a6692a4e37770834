//! The classical baseline without clicks: every nucleus of an image, for pre-labels and as the
//! yardstick of the model's automatic mode. Hematoxylin above Otsu's threshold over the whole image,
//! holes filled; one seed per distance-transform peak that a neck separates from every deeper peak
//! (the rule the click mode splits touching nuclei by); the blobs split between the seeds by travel
//! time, slow at narrow places (a watershed on depth in effect); blobs with no peak are one nucleus each.

use lamina_core::mask::Mask;

use super::{min_along, ops, Classical, MIN_PEAK_RADIUS, NECK_RATIO};
use crate::edt::squared_distance_to_background;

impl Classical {
    /// Every nucleus of the image given to `set_image`, at least `min_area` pixels each, none
    /// overlapping. Empty before `set_image`.
    pub fn segment_all(&self, min_area: u64) -> Vec<Mask> {
        let (w, h) = (self.width as usize, self.height as usize);
        if self.hema.is_empty() {
            return Vec::new();
        }
        let threshold = ops::otsu(&self.hema);
        let mut fg: Vec<bool> = self.hema.iter().map(|&v| v > threshold).collect();
        ops::fill_holes(&mut fg, w, h);
        let fg_mask = Mask {
            width: self.width,
            height: self.height,
            data: fg.iter().map(|&v| u8::from(v)).collect(),
        };
        let depth = squared_distance_to_background(&fg_mask);
        let step_cost: Vec<f64> = depth.iter().map(|&d| 1.0 / d.sqrt().max(1.0)).collect();
        let seeds = separate_peaks(&depth, w, h);
        let mut labels = ops::geodesic_split(&fg, &step_cost, w, h, &seeds);
        // Blobs no seed reached (too thin for a peak): each 4-connected blob is one nucleus.
        let mut next = seeds.len() as u32 + 1;
        for start in 0..fg.len() {
            if fg[start] && labels[start] == 0 {
                for (i, inside) in ops::component(&fg, w, h, start).into_iter().enumerate() {
                    if inside && labels[i] == 0 {
                        labels[i] = next;
                    }
                }
                next += 1;
            }
        }
        let mut masks: Vec<Mask> = (1..next)
            .map(|_| Mask::new(self.width, self.height))
            .collect();
        for (i, &label) in labels.iter().enumerate() {
            if label > 0 {
                masks[label as usize - 1].data[i] = 1;
            }
        }
        masks.retain(|m| m.area() >= min_area.max(1));
        masks
    }
}

/// Distance peaks, deepest first, each kept only if a neck (see `NECK_RATIO`) separates it from every
/// peak kept before it; labelled 1, 2, ... in that order.
fn separate_peaks(depth: &[f64], w: usize, h: usize) -> Vec<(usize, u32)> {
    let mut candidates = ops::peaks(depth, w, h, MIN_PEAK_RADIUS * MIN_PEAK_RADIUS);
    candidates.sort_by(|&a, &b| depth[b].total_cmp(&depth[a]).then(a.cmp(&b)));
    let mut kept: Vec<(usize, usize, f64)> = Vec::new();
    for i in candidates {
        let (x, y, r) = (i % w, i / w, depth[i].sqrt());
        let separate = kept.iter().all(|&(kx, ky, kr)| {
            let far = (x.abs_diff(kx).pow(2) + y.abs_diff(ky).pow(2)) as f64;
            // Farther apart than both radii and a margin: different nuclei without a look at the path.
            far > (3.0 * (r + kr)).powi(2)
                || min_along(depth, w, (kx, ky), (x, y)).sqrt() < NECK_RATIO * r.min(kr)
        });
        if separate {
            kept.push((x, y, r));
        }
    }
    kept.iter()
        .enumerate()
        .map(|(n, &(x, y, _))| (y * w + x, n as u32 + 1))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segmenter::InteractiveSegmenter;
    use image::{Rgb, RgbImage};

    /// Pale pink with dark purple discs: two touching, one apart, one tiny speck.
    fn tile() -> RgbImage {
        let mut img = RgbImage::from_pixel(96, 64, Rgb([235, 200, 215]));
        let discs = [
            (20.0, 20.0, 8.0),
            (36.0, 20.0, 8.0),
            (70.0, 40.0, 9.0),
            (10.0, 55.0, 1.0),
        ];
        for (x, y, px) in img.enumerate_pixels_mut() {
            for &(cx, cy, r) in &discs {
                if (f64::from(x) + 0.5 - cx).powi(2) + (f64::from(y) + 0.5 - cy).powi(2) <= r * r {
                    *px = Rgb([70, 40, 140]);
                }
            }
        }
        img
    }

    #[test]
    fn touching_nuclei_are_split_apart_and_specks_dropped() {
        let mut c = Classical::default();
        c.set_image(&tile()).unwrap();
        let masks = c.segment_all(20);
        assert_eq!(
            masks.len(),
            3,
            "{:?}",
            masks.iter().map(Mask::area).collect::<Vec<_>>()
        );
        // No pixel belongs to two nuclei.
        let mut owner = vec![0u8; 96 * 64];
        for m in &masks {
            for (o, &v) in owner.iter_mut().zip(&m.data) {
                *o += v;
            }
        }
        assert!(owner.iter().all(|&o| o <= 1));
        // Each disc centre is in exactly one mask, and the two touching ones in different masks.
        let which = |x: u32, y: u32| masks.iter().position(|m| m.get(x, y));
        assert!(which(19, 19).is_some() && which(36, 19).is_some());
        assert_ne!(which(19, 19), which(36, 19));
        assert!(which(9, 54).is_none());
    }
}
