//! Image → model input, as SAM's `ResizeLongestSide` + `Sam.preprocess`: resize so the longest side is
//! `input_size` (bilinear, on 8-bit pixels as PIL does), normalise by the pixel mean/std, pad with zeros at
//! the bottom and right.

use image::imageops::{resize, FilterType};
use image::RgbImage;

use crate::manifest::ModelManifest;
use crate::transform::ModelFromImage;

/// `[1, 3, S, S]` row-major, ready for the encoder's `image` input.
pub fn model_input_from_image(image: &RgbImage, manifest: &ModelManifest) -> Vec<f32> {
    let s = manifest.input_size as usize;
    let transform = ModelFromImage::new(image.width(), image.height(), manifest.input_size);
    let (w, h) = transform.resized_size();
    // `image`'s Triangle filter is bilinear, widened when shrinking like PIL's BILINEAR.
    let resized = if (w, h) == image.dimensions() {
        image.clone()
    } else {
        resize(image, w, h, FilterType::Triangle)
    };
    let mut input = vec![0.0f32; 3 * s * s];
    for (x, y, px) in resized.enumerate_pixels() {
        for c in 0..3 {
            let v = (f32::from(px[c]) - manifest.pixel_mean[c]) / manifest.pixel_std[c];
            input[c * s * s + y as usize * s + x as usize] = v;
        }
    }
    input
}
