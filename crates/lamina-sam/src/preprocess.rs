//! Image → model input, as SAM's `ResizeLongestSide` + `Sam.preprocess`: resize so the longest side is
//! `input_size` (bilinear, on 8-bit pixels as PIL does), normalise by the pixel mean/std, pad with zeros at
//! the bottom and right. Models with `windows` see one window of the image at a time, the same way.

use image::imageops::{crop_imm, resize, FilterType};
use image::RgbImage;

use crate::manifest::ModelManifest;
use crate::transform::ModelFromImage;

/// `[1, 3, S, S]` row-major, ready for the encoder's `image` input: the whole image, as SAM does.
pub fn model_input_from_image(image: &RgbImage, manifest: &ModelManifest) -> Vec<f32> {
    let whole = ModelFromImage::new(image.width(), image.height(), manifest.input_size);
    model_input_from_window(image, &whole, manifest)
}

/// `[1, 3, S, S]` row-major: the part of the image `window` covers, at its scale.
pub fn model_input_from_window(
    image: &RgbImage,
    window: &ModelFromImage,
    manifest: &ModelManifest,
) -> Vec<f32> {
    let s = manifest.input_size as usize;
    let (w, h) = window.resized_size();
    let [x0, y0, ww, wh] = window.window_image;
    let part = if [x0, y0, ww, wh] == [0, 0, image.width(), image.height()] {
        image.clone()
    } else {
        crop_imm(image, x0, y0, ww, wh).to_image()
    };
    // `image`'s Triangle filter is bilinear, widened when shrinking like PIL's BILINEAR.
    let resized = if (w, h) == part.dimensions() {
        part
    } else {
        resize(&part, w, h, FilterType::Triangle)
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
