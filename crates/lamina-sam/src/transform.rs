//! The one transform between image pixels and model-input pixels: a uniform scale so the longest side is
//! `input_size`, with padding at the bottom and right (so no offset).

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ModelFromImage {
    pub image_width: u32,
    pub image_height: u32,
    pub input_size: u32,
}

impl ModelFromImage {
    pub fn new(image_width: u32, image_height: u32, input_size: u32) -> Self {
        ModelFromImage {
            image_width,
            image_height,
            input_size,
        }
    }

    pub fn scale(&self) -> f64 {
        f64::from(self.input_size) / f64::from(self.image_width.max(self.image_height).max(1))
    }

    /// Size of the resized image inside the model input, `(width, height)`, rounded as SAM's
    /// `ResizeLongestSide.get_preprocess_shape` does (`int(x + 0.5)`).
    pub fn resized_size(&self) -> (u32, u32) {
        let s = self.scale();
        let round = |v: u32| ((f64::from(v) * s) + 0.5).floor() as u32;
        (
            round(self.image_width).max(1),
            round(self.image_height).max(1),
        )
    }

    /// A point in image pixels → model-input pixels. SAM scales coordinates by the resized/original size
    /// ratio per axis, which equals `scale()` up to rounding.
    pub fn model_from_image(&self, x_image: f64, y_image: f64) -> [f64; 2] {
        let (w, h) = self.resized_size();
        [
            x_image * f64::from(w) / f64::from(self.image_width),
            y_image * f64::from(h) / f64::from(self.image_height),
        ]
    }

    pub fn image_from_model(&self, x_model: f64, y_model: f64) -> [f64; 2] {
        let (w, h) = self.resized_size();
        [
            x_model * f64::from(self.image_width) / f64::from(w),
            y_model * f64::from(self.image_height) / f64::from(h),
        ]
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

    #[test]
    fn rounding_follows_sam() {
        // 1024 * 333 / 1000 = 340.992 -> 341
        assert_eq!(
            ModelFromImage::new(1000, 333, 1024).resized_size(),
            (1024, 341)
        );
    }
}
