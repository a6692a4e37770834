//! The one transform between image pixels and model-input pixels: a window of the image (the whole image
//! for SAM-family models), scaled uniformly and padded at the bottom and right of the model input.
//!
//! SAM resizes the whole image so its longest side is `input_size`. A model trained at one pixel scale
//! (nuclei-v3: 256 px tiles) would see a 1,024 px image's nuclei four times too small that way, so its
//! manifest asks for `windows`: the image is covered by overlapping `input_size` windows at scale 1
//! ([`window_layout`]), and an image smaller than the input is padded, not enlarged.

use lamina_core::model_manifest::Windows;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ModelFromImage {
    pub image_width: u32,
    pub image_height: u32,
    pub input_size: u32,
    /// The part of the image the model sees, `[x, y, width, height]` in image pixels.
    pub window_image: [u32; 4],
    /// Model pixels per image pixel.
    scale: f64,
}

impl ModelFromImage {
    /// SAM's transform: the whole image, its longest side resized to `input_size`.
    pub fn new(image_width: u32, image_height: u32, input_size: u32) -> Self {
        ModelFromImage {
            image_width,
            image_height,
            input_size,
            window_image: [0, 0, image_width, image_height],
            scale: f64::from(input_size) / f64::from(image_width.max(image_height).max(1)),
        }
    }

    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// Size of the resized window inside the model input, `(width, height)`, rounded as SAM's
    /// `ResizeLongestSide.get_preprocess_shape` does (`int(x + 0.5)`).
    pub fn resized_size(&self) -> (u32, u32) {
        let s = self.scale;
        let round = |v: u32| ((f64::from(v) * s) + 0.5).floor() as u32;
        let [_, _, w, h] = self.window_image;
        (
            round(w).max(1).min(self.input_size),
            round(h).max(1).min(self.input_size),
        )
    }

    /// A point in image pixels → model-input pixels. SAM scales coordinates by the resized/original size
    /// ratio per axis, which equals `scale()` up to rounding.
    pub fn model_from_image(&self, x_image: f64, y_image: f64) -> [f64; 2] {
        let (w, h) = self.resized_size();
        let [x0, y0, ww, wh] = self.window_image;
        [
            (x_image - f64::from(x0)) * f64::from(w) / f64::from(ww.max(1)),
            (y_image - f64::from(y0)) * f64::from(h) / f64::from(wh.max(1)),
        ]
    }

    pub fn image_from_model(&self, x_model: f64, y_model: f64) -> [f64; 2] {
        let (w, h) = self.resized_size();
        let [x0, y0, ww, wh] = self.window_image;
        [
            f64::from(x0) + x_model * f64::from(ww) / f64::from(w),
            f64::from(y0) + y_model * f64::from(wh) / f64::from(h),
        ]
    }

    /// How far the image-pixel rectangle `[x0, y0, x1, y1]` stays inside this window; a window side on
    /// the image's own border does not count, since nothing lies beyond it. Negative when it sticks out.
    pub fn margin_image(&self, rect_image: [f64; 4]) -> f64 {
        let [wx, wy, ww, wh] = self.window_image.map(f64::from);
        let (iw, ih) = (f64::from(self.image_width), f64::from(self.image_height));
        let side = |inner: f64, on_border: bool| if on_border { f64::INFINITY } else { inner };
        let [x0, y0, x1, y1] = rect_image;
        side(x0 - wx, wx <= 0.0)
            .min(side(y0 - wy, wy <= 0.0))
            .min(side(wx + ww - x1, wx + ww >= iw))
            .min(side(wy + wh - y1, wy + wh >= ih))
    }
}

/// The windows a model sees an image through: one whole-image window (SAM's resize) without `windows`;
/// with it, `input_size` windows at scale 1 overlapping by `overlap` model pixels, evenly spread, or at
/// the largest scale step (× 0.9 each) at which `max` windows cover the image.
pub fn window_layout(
    image_width: u32,
    image_height: u32,
    input_size: u32,
    windows: Option<&Windows>,
) -> Vec<ModelFromImage> {
    let Some(cfg) = windows else {
        return vec![ModelFromImage::new(image_width, image_height, input_size)];
    };
    let input = f64::from(input_size);
    let step_model = f64::from(input_size.saturating_sub(cfg.overlap).max(1));
    let mut scale = 1.0f64;
    loop {
        // Image pixels per window side and per step at this scale.
        let span = ((input / scale).floor() as u32).max(1);
        let step = step_model / scale;
        let count = |side: u32| -> u32 {
            if side <= span {
                1
            } else {
                (f64::from(side - span) / step).ceil() as u32 + 1
            }
        };
        let (nx, ny) = (count(image_width), count(image_height));
        if nx * ny <= cfg.max.max(1) || scale < 1e-3 {
            let starts = |side: u32, n: u32| -> Vec<u32> {
                (0..n)
                    .map(|i| {
                        if n == 1 {
                            0
                        } else {
                            (f64::from(i) * f64::from(side - span) / f64::from(n - 1)).round()
                                as u32
                        }
                    })
                    .collect()
            };
            let (xs, ys) = (starts(image_width, nx), starts(image_height, ny));
            return ys
                .iter()
                .flat_map(|&y| xs.iter().map(move |&x| (x, y)))
                .map(|(x, y)| ModelFromImage {
                    image_width,
                    image_height,
                    input_size,
                    window_image: [x, y, span.min(image_width - x), span.min(image_height - y)],
                    scale,
                })
                .collect();
        }
        scale *= 0.9;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_256_tile_fills_the_1024_input() {
        let t = ModelFromImage::new(256, 256, 1024);
        assert_eq!(t.resized_size(), (1024, 1024));
        assert_eq!(t.model_from_image(10.0, 255.5), [40.0, 1022.0]);
    }

    #[test]
    fn a_wide_image_is_scaled_by_its_width_and_padded_below() {
        let t = ModelFromImage::new(2000, 1000, 1024);
        assert_eq!(t.resized_size(), (1024, 512));
        let p = t.model_from_image(1000.0, 500.0);
        assert!((p[0] - 512.0).abs() < 1e-9 && (p[1] - 256.0).abs() < 1e-9);
        let back = t.image_from_model(p[0], p[1]);
        assert!((back[0] - 1000.0).abs() < 1e-9 && (back[1] - 500.0).abs() < 1e-9);
    }

    fn cfg(overlap: u32, max: u32) -> Windows {
        Windows { overlap, max }
    }

    #[test]
    fn without_windows_the_layout_is_sams_whole_image_resize() {
        let layout = window_layout(2000, 1000, 1024, None);
        assert_eq!(layout, vec![ModelFromImage::new(2000, 1000, 1024)]);
    }

    #[test]
    fn a_small_image_is_padded_not_enlarged() {
        let layout = window_layout(200, 180, 256, Some(&cfg(64, 36)));
        assert_eq!(layout.len(), 1);
        assert_eq!(layout[0].resized_size(), (200, 180));
        assert_eq!(layout[0].model_from_image(10.0, 20.0), [10.0, 20.0]);
    }

    #[test]
    fn a_512_image_gets_three_by_three_overlapping_windows_at_scale_one() {
        let layout = window_layout(512, 512, 256, Some(&cfg(64, 36)));
        let origins: Vec<[u32; 2]> = layout
            .iter()
            .map(|t| [t.window_image[0], t.window_image[1]])
            .collect();
        assert_eq!(origins.len(), 9);
        assert_eq!(&origins[..3], &[[0, 0], [128, 0], [256, 0]]);
        for t in &layout {
            assert_eq!(t.scale(), 1.0);
            assert_eq!(t.resized_size(), (256, 256));
        }
        // Window 4 starts at (128, 128): image pixel (300, 200) is model pixel (172, 72) in it.
        assert_eq!(layout[4].model_from_image(300.0, 200.0), [172.0, 72.0]);
        assert_eq!(layout[4].image_from_model(172.0, 72.0), [300.0, 200.0]);
    }

    #[test]
    fn a_huge_image_is_scaled_down_until_max_windows_cover_it() {
        let layout = window_layout(5000, 3000, 256, Some(&cfg(64, 36)));
        assert!(layout.len() <= 36, "{}", layout.len());
        let s = layout[0].scale();
        assert!(s < 1.0 && s > 0.1, "{s}");
        // Every image pixel is in some window.
        let covered = |x: u32, y: u32| {
            layout.iter().any(|t| {
                let [wx, wy, ww, wh] = t.window_image;
                x >= wx && x < wx + ww && y >= wy && y < wy + wh
            })
        };
        for (x, y) in [(0, 0), (4999, 2999), (2500, 1500), (4999, 0), (1234, 2999)] {
            assert!(covered(x, y), "({x}, {y})");
        }
    }

    #[test]
    fn margins_ignore_sides_on_the_image_border() {
        let layout = window_layout(512, 512, 256, Some(&cfg(64, 36)));
        // A click at (10, 10) is 10 px from the first window's left and top, which are the image's.
        assert_eq!(layout[0].margin_image([10.0, 10.0, 10.0, 10.0]), 246.0);
        // In the middle window it sticks out.
        assert!(layout[4].margin_image([10.0, 10.0, 10.0, 10.0]) < 0.0);
    }

    #[test]
    fn rounding_follows_sam() {
        // 1024 * 333 / 1000 = 340.992 -> 341
        assert_eq!(
            ModelFromImage::new(1000, 333, 1024).resized_size(),
            (1024, 341)
        );
    }
}
