//! Decoder logits → masks, as SAM's `mask_postprocessing`: low-res logits upsampled to the model input,
//! cropped to the resized image, upsampled to the image, thresholded.

use lamina_core::mask::Mask;

use crate::transform::ModelFromImage;

/// Bilinear resampling of one plane with half-pixel centres (`align_corners=False`, no antialiasing), as
/// torch's `F.interpolate(mode="bilinear")`.
pub fn resize_bilinear(
    src: &[f32],
    src_w: usize,
    src_h: usize,
    dst_w: usize,
    dst_h: usize,
) -> Vec<f32> {
    let axis = |dst: usize, src: usize| -> Vec<(usize, usize, f32)> {
        let scale = src as f32 / dst as f32;
        (0..dst)
            .map(|d| {
                let s = ((d as f32 + 0.5) * scale - 0.5).max(0.0);
                let i0 = (s.floor() as usize).min(src - 1);
                let i1 = (i0 + 1).min(src - 1);
                (i0, i1, s - i0 as f32)
            })
            .collect()
    };
    let (xs, ys) = (axis(dst_w, src_w), axis(dst_h, src_h));
    let mut out = Vec::with_capacity(dst_w * dst_h);
    for &(y0, y1, fy) in &ys {
        let (row0, row1) = (&src[y0 * src_w..][..src_w], &src[y1 * src_w..][..src_w]);
        for &(x0, x1, fx) in &xs {
            let top = row0[x0] + (row0[x1] - row0[x0]) * fx;
            let bottom = row1[x0] + (row1[x1] - row1[x0]) * fx;
            out.push(top + (bottom - top) * fy);
        }
    }
    out
}

/// Low-res logits (`low_res` x `low_res`, covering the padded model input) → logits at image resolution
/// over the transform's window (the whole image for SAM), row-major, window width × height.
pub fn image_logits_from_low_res(
    low_res_logits: &[f32],
    low_res: usize,
    transform: &ModelFromImage,
) -> Vec<f32> {
    let s = transform.input_size as usize;
    let model_logits = resize_bilinear(low_res_logits, low_res, low_res, s, s);
    let (w, h) = transform.resized_size();
    let (w, h) = (w as usize, h as usize);
    let cropped: Vec<f32> = (0..h)
        .flat_map(|y| model_logits[y * s..][..w].iter().copied())
        .collect();
    let [_, _, window_w, window_h] = transform.window_image;
    resize_bilinear(&cropped, w, h, window_w as usize, window_h as usize)
}

/// Pixels whose logit is above `threshold`.
pub fn mask_from_logits(logits: &[f32], width: u32, height: u32, threshold: f32) -> Mask {
    let mut mask = Mask::new(width, height);
    for (m, &l) in mask.data.iter_mut().zip(logits) {
        *m = u8::from(l > threshold);
    }
    mask
}

/// SAM's stability score: IoU of the masks thresholded at `threshold ± offset`.
pub fn stability_score(logits: &[f32], threshold: f32, offset: f32) -> f32 {
    let inner = logits.iter().filter(|&&l| l > threshold + offset).count();
    let outer = logits.iter().filter(|&&l| l > threshold - offset).count();
    if outer == 0 {
        0.0
    } else {
        inner as f32 / outer as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upsampling_by_two_matches_torch_half_pixel_weights() {
        // torch: F.interpolate(tensor([[[[0., 1.]]]]), size=(1, 4), mode="bilinear") -> [0, .25, .75, 1]
        assert_eq!(
            resize_bilinear(&[0.0, 1.0], 2, 1, 4, 1),
            vec![0.0, 0.25, 0.75, 1.0]
        );
    }

    #[test]
    fn same_size_is_identity() {
        let src: Vec<f32> = (0..12).map(|v| v as f32).collect();
        assert_eq!(resize_bilinear(&src, 4, 3, 4, 3), src);
    }

    #[test]
    fn image_logits_cover_only_the_resized_part_of_the_padded_input() {
        // A 4x2 image in an 8x8 input: resized 8x4, the lower half of the input is padding.
        let t = ModelFromImage::new(4, 2, 8);
        let low_res: Vec<f32> = (0..16).map(|i| if i < 8 { 1.0 } else { -1.0 }).collect(); // 4x4: top half +
        let logits = image_logits_from_low_res(&low_res, 4, &t);
        assert_eq!(logits.len(), 8);
        assert!(logits.iter().all(|&l| l > 0.0), "{logits:?}");
    }

    #[test]
    fn stability_is_one_for_sharp_logits_and_lower_for_soft_ones() {
        assert_eq!(stability_score(&[5.0, 5.0, -5.0], 0.0, 1.0), 1.0);
        assert_eq!(stability_score(&[5.0, 0.5, -5.0], 0.0, 1.0), 0.5);
    }
}
