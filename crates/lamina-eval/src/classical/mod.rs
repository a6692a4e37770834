//! The classical baseline: no learning, the segmentation a careful labeler could script in an afternoon.
//!
//! 1. Hematoxylin from colour deconvolution ([`stain`]), lightly blurred: nuclei are its bright blobs.
//! 2. Clicks: Otsu's threshold in a window around the positive clicks, holes filled, a small disk
//!    forced in at each positive click (a click on a pale spot must still count); then a watershed on
//!    the distance transform seeded by the clicks (positive = object, negative = not), so a negative
//!    click on a merged neighbour cuts it off along the neck between the two.
//! 3. Box: Otsu's threshold inside the box, holes filled, the largest component.

mod ops;
pub mod stain;

use image::{ImageBuffer, Luma, RgbImage};
use lamina_core::mask::Mask;

use crate::clicks::Click;
use crate::edt::squared_distance_to_background;
use crate::segmenter::{InteractiveSegmenter, LowRes, Prediction};

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClassicalParams {
    /// Half-size of the thresholding window around the positive clicks, in image pixels: room for a
    /// large nucleus (NuInsSeg's median is ~30 px across) plus background for Otsu to contrast it with.
    pub window_radius: u32,
    /// Gaussian blur of the hematoxylin channel, in image pixels (chromatin texture is noise here).
    pub blur_sigma: f32,
    /// Radius of the disk forced into the object at each positive click, in image pixels.
    pub seed_radius: u32,
}

impl Default for ClassicalParams {
    fn default() -> Self {
        ClassicalParams {
            window_radius: 32,
            blur_sigma: 1.0,
            seed_radius: 2,
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

    /// Otsu-thresholded hematoxylin in the window, holes filled.
    fn foreground(&self, win: Window) -> Vec<bool> {
        let values = self.window_values(win);
        let t = ops::otsu(&values);
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
        let mut fg = self.foreground(win);
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
        // Deeper inside the blob = lower: floods meet at the necks between touching nuclei.
        let fg_mask = Mask {
            width: w as u32,
            height: h as u32,
            data: fg.iter().map(|&v| u8::from(v)).collect(),
        };
        let elevation: Vec<f32> = squared_distance_to_background(&fg_mask)
            .iter()
            .map(|&d| -(d as f32))
            .collect();
        let seeds: Vec<(usize, u8)> = clicks
            .iter()
            .filter_map(|c| {
                win.index(c.x_image, c.y_image)
                    .map(|i| (i, if c.positive { 1 } else { 2 }))
            })
            .collect();
        let labels = ops::watershed(&fg, &elevation, w, h, &seeds);
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
        let fg = self.foreground(win);
        let object = ops::largest_component(&fg, win.w(), win.h());
        Ok(self.to_mask(win, &object))
    }
}
