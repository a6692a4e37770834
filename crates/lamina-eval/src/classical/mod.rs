//! The classical baseline: no learning, the segmentation a careful labeler could script in an afternoon.
//!
//! 1. Hematoxylin from colour deconvolution ([`stain`]), lightly blurred: nuclei are its bright blobs.
//! 2. Clicks: Otsu's threshold in a window around the positive clicks, holes filled, a small disk
//!    forced in at each positive click (a click on a pale spot must still count); then a split by travel time
//!    through the blob, slow at narrow places, seeded by the clicks (positive = object, negative = not), so a negative
//!    click on a merged neighbour cuts it off along the neck between the two.
//! 3. Box: Otsu's threshold inside the box, holes filled, the largest component.

mod auto;
mod ops;
pub mod stain;

use image::{ImageBuffer, Luma, RgbImage};
use lamina_core::mask::Mask;

use crate::clicks::Click;
use crate::edt::squared_distance_to_background;
use crate::segmenter::{InteractiveSegmenter, LowRes, Prediction};

/// Distance-transform peaks shallower than this (image pixels) are texture, not nuclei.
const MIN_PEAK_RADIUS: f64 = 3.0;

/// Two distance peaks are two nuclei when the straight path between them narrows below this fraction
/// of the smaller one's radius; an elongated nucleus keeps its width along its ridge.
const NECK_RATIO: f64 = 0.7;

/// The smallest value of `grid` on the straight segment between two points (sampled per pixel).
fn min_along(grid: &[f64], w: usize, a: (usize, usize), b: (usize, usize)) -> f64 {
    let (dx, dy) = (b.0 as f64 - a.0 as f64, b.1 as f64 - a.1 as f64);
    let steps = dx.abs().max(dy.abs()).ceil().max(1.0) as usize;
    (0..=steps)
        .map(|k| {
            let t = k as f64 / steps as f64;
            let x = (a.0 as f64 + t * dx).round() as usize;
            let y = (a.1 as f64 + t * dy).round() as usize;
            grid[y * w + x]
        })
        .fold(f64::INFINITY, f64::min)
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClassicalParams {
    /// Half-size of the thresholding window around the positive clicks, in image pixels: room for a
    /// large nucleus (NuInsSeg's median is ~30 px across) plus background for Otsu to contrast it with.
    pub window_radius: u32,
    /// Gaussian blur of the hematoxylin channel, in image pixels (chromatin texture is noise here).
    pub blur_sigma: f32,
    /// Radius of the disk forced into the object at each positive click, in image pixels.
    pub seed_radius: u32,
    /// Clicks: the threshold is at least background + this fraction of (clicked core − background),
    /// so a dark nucleus does not leak into mid-dark cytoplasm that Otsu alone lets in. 0 = Otsu only.
    pub edge_fraction: f32,
    /// Clicks: foreground on the window's edge (inside the image) seeds "not this object", so a blob
    /// that runs out of the window is cut at its narrowest neck instead of squarely at the edge.
    pub edge_seeds: bool,
    /// Clicks: a peak of the distance transform cut off from the click by a neck (see [`NECK_RATIO`])
    /// seeds "another nucleus", splitting touching nuclei without a negative click.
    pub split_peaks: bool,
    /// Clicks: a positive click after the first lowers the threshold to just below its pixel.
    pub follow_pale_clicks: bool,
}

impl Default for ClassicalParams {
    fn default() -> Self {
        ClassicalParams {
            window_radius: 32,
            blur_sigma: 2.0,
            seed_radius: 2,
            edge_fraction: 0.5,
            edge_seeds: true,
            split_peaks: true,
            follow_pale_clicks: true,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct Classical {
    pub params: ClassicalParams,
    width: u32,
    height: u32,
    /// Blurred hematoxylin, row-major.
    hema: Vec<f32>,
}

/// A rectangle of image pixels, `[x0, x1) x [y0, y1)`.
#[derive(Clone, Copy, Debug)]
struct Window {
    x0: u32,
    y0: u32,
    x1: u32,
    y1: u32,
}

impl Window {
    fn w(&self) -> usize {
        (self.x1 - self.x0) as usize
    }
    fn h(&self) -> usize {
        (self.y1 - self.y0) as usize
    }
    /// Index in the window of image pixel (x, y), if inside.
    fn index(&self, x: u32, y: u32) -> Option<usize> {
        (x >= self.x0 && x < self.x1 && y >= self.y0 && y < self.y1)
            .then(|| (y - self.y0) as usize * self.w() + (x - self.x0) as usize)
    }
}

impl Classical {
    pub fn new(params: ClassicalParams) -> Classical {
        Classical {
            params,
            ..Classical::default()
        }
    }

    fn window_values(&self, win: Window) -> Vec<f32> {
        let mut v = Vec::with_capacity(win.w() * win.h());
        for y in win.y0..win.y1 {
            let row = y as usize * self.width as usize;
            v.extend_from_slice(&self.hema[row + win.x0 as usize..row + win.x1 as usize]);
        }
        v
    }

    /// Hematoxylin above `threshold(values, Otsu's threshold)` in the window, holes filled.
    fn foreground(&self, win: Window, threshold: impl Fn(&[f32], f32) -> f32) -> Vec<bool> {
        let values = self.window_values(win);
        let t = threshold(&values, ops::otsu(&values));
        let mut fg: Vec<bool> = values.iter().map(|&v| v > t).collect();
        ops::fill_holes(&mut fg, win.w(), win.h());
        fg
    }

    fn to_mask(&self, win: Window, selected: &[bool]) -> Mask {
        let mut mask = Mask::new(self.width, self.height);
        for (i, _) in selected.iter().enumerate().filter(|(_, &s)| s) {
            let (x, y) = (win.x0 + (i % win.w()) as u32, win.y0 + (i / win.w()) as u32);
            mask.set(x, y, true);
        }
        mask
    }

    fn segment_clicks(&self, clicks: &[Click]) -> Mask {
        let positives: Vec<&Click> = clicks.iter().filter(|c| c.positive).collect();
        if positives.is_empty() || self.hema.is_empty() {
            return Mask::new(self.width, self.height);
        }
        let r = self.params.window_radius;
        let win = Window {
            x0: positives
                .iter()
                .map(|c| c.x_image)
                .min()
                .unwrap_or(0)
                .saturating_sub(r),
            y0: positives
                .iter()
                .map(|c| c.y_image)
                .min()
                .unwrap_or(0)
                .saturating_sub(r),
            x1: (positives.iter().map(|c| c.x_image).max().unwrap_or(0) + r + 1).min(self.width),
            y1: (positives.iter().map(|c| c.y_image).max().unwrap_or(0) + r + 1).min(self.height),
        };
        let (w, h) = (win.w(), win.h());
        let first = positives[0];
        let core = self.hema[first.y_image as usize * self.width as usize + first.x_image as usize];
        let f = self.params.edge_fraction;
        // A later positive click on a paler pixel says the object reaches that pale: lower the
        // threshold to include it (leaks this causes are for negative clicks to cut off).
        let palest = positives[1..]
            .iter()
            .map(|c| self.hema[c.y_image as usize * self.width as usize + c.x_image as usize])
            .fold(f32::INFINITY, f32::min);
        let mut fg = self.foreground(win, |values, otsu| {
            let below: Vec<f32> = values.iter().copied().filter(|&v| v <= otsu).collect();
            let background = below.iter().sum::<f32>() / below.len().max(1) as f32;
            let t = otsu.max(background + f * (core - background));
            if self.params.follow_pale_clicks {
                t.min(palest * 0.98)
            } else {
                t
            }
        });
        let s = i64::from(self.params.seed_radius);
        for c in &positives {
            for dy in -s..=s {
                for dx in -s..=s {
                    let (x, y) = (i64::from(c.x_image) + dx, i64::from(c.y_image) + dy);
                    if dx * dx + dy * dy <= s * s && x >= 0 && y >= 0 {
                        if let Some(i) = win.index(x as u32, y as u32) {
                            fg[i] = true;
                        }
                    }
                }
            }
        }
        let fg_mask = Mask {
            width: w as u32,
            height: h as u32,
            data: fg.iter().map(|&v| u8::from(v)).collect(),
        };
        let depth = squared_distance_to_background(&fg_mask);
        // Slow where the blob is narrow, so the fronts from two clicks meet at the neck between nuclei.
        let step_cost: Vec<f64> = depth.iter().map(|&d| 1.0 / d.sqrt().max(1.0)).collect();
        let mut seeds: Vec<(usize, u32)> = clicks
            .iter()
            .filter_map(|c| {
                win.index(c.x_image, c.y_image)
                    .map(|i| (i, if c.positive { 1 } else { 2 }))
            })
            .collect();
        if self.params.edge_seeds {
            // Clicks were seeded first, so they win any pixel they share with the edge.
            for (i, _) in fg.iter().enumerate().filter(|(_, &v)| v) {
                let (x, y) = (i % w, i / w);
                let cut = (x == 0 && win.x0 > 0)
                    || (y == 0 && win.y0 > 0)
                    || (x + 1 == w && win.x1 < self.width)
                    || (y + 1 == h && win.y1 < self.height);
                if cut {
                    seeds.push((i, 2));
                }
            }
        }
        if self.params.split_peaks {
            let clicked: Vec<(usize, usize, f64)> = positives
                .iter()
                .filter_map(|c| win.index(c.x_image, c.y_image))
                .map(|i| (i % w, i / w, depth[i].sqrt()))
                .collect();
            for i in ops::peaks(&depth, w, h, MIN_PEAK_RADIUS * MIN_PEAK_RADIUS) {
                let (x, y, r) = (i % w, i / w, depth[i].sqrt());
                let separate = clicked.iter().all(|&(cx, cy, cr)| {
                    let neck = min_along(&depth, w, (cx, cy), (x, y)).sqrt();
                    neck < NECK_RATIO * r.min(cr)
                });
                if separate {
                    seeds.push((i, 2));
                }
            }
        }
        let labels = ops::geodesic_split(&fg, &step_cost, w, h, &seeds);
        let object: Vec<bool> = labels.iter().map(|&l| l == 1).collect();
        self.to_mask(win, &object)
    }
}

impl InteractiveSegmenter for Classical {
    fn id(&self) -> String {
        "classical-hed-otsu-watershed".into()
    }

    fn set_image(&mut self, rgb: &RgbImage) -> anyhow::Result<()> {
        let (w, h) = rgb.dimensions();
        let hema = ImageBuffer::<Luma<f32>, Vec<f32>>::from_raw(w, h, stain::hematoxylin(rgb))
            .ok_or_else(|| anyhow::anyhow!("hematoxylin buffer does not match {w}x{h}"))?;
        let blurred = if self.params.blur_sigma > 0.0 {
            image::imageops::blur(&hema, self.params.blur_sigma)
        } else {
            hema
        };
        self.width = w;
        self.height = h;
        self.hema = blurred.into_raw();
        Ok(())
    }

    fn predict(
        &mut self,
        clicks: &[Click],
        _prev_low_res: Option<&LowRes>,
        _multimask_allowed: bool,
    ) -> anyhow::Result<Prediction> {
        Ok(Prediction {
            mask_image: self.segment_clicks(clicks),
            low_res: None,
        })
    }

    fn predict_box(&mut self, box_xyxy_image: [f64; 4]) -> anyhow::Result<Mask> {
        let [x0, y0, x1, y1] = box_xyxy_image;
        let clamp = |v: f64, hi: u32| v.clamp(0.0, f64::from(hi)) as u32;
        let win = Window {
            x0: clamp(x0.floor(), self.width),
            y0: clamp(y0.floor(), self.height),
            x1: clamp(x1.ceil(), self.width),
            y1: clamp(y1.ceil(), self.height),
        };
        if win.w() == 0 || win.h() == 0 || self.hema.is_empty() {
            return Ok(Mask::new(self.width, self.height));
        }
        let fg = self.foreground(win, |_, otsu| otsu);
        let object = ops::largest_component(&fg, win.w(), win.h());
        Ok(self.to_mask(win, &object))
    }
}
