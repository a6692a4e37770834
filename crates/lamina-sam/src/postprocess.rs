//! Decoder logits → masks, as SAM's `mask_postprocessing`: low-res logits upsampled to the model input,
//! cropped to the resized image, upsampled to the image, thresholded.

use lamina_core::mask::Mask;

use crate::transform::ModelFromImage;

/// One axis of a bilinear resampling with half-pixel centres (`align_corners=False`, no antialiasing), as
/// torch's `F.interpolate(mode="bilinear")`: for each destination index, the two source indices it reads
/// and the weight of the second.
fn bilinear_axis(dst: usize, src: usize) -> Vec<(usize, usize, f32)> {
    let scale = src as f32 / dst as f32;
    (0..dst)
        .map(|d| {
            let s = ((d as f32 + 0.5) * scale - 0.5).max(0.0);
            let i0 = (s.floor() as usize).min(src - 1);
            let i1 = (i0 + 1).min(src - 1);
            (i0, i1, s - i0 as f32)
        })
        .collect()
}

/// The bilinear value from the four source values around a destination pixel. Every resampling here
/// goes through this one expression, so two paths to the same pixel give the same bits.
#[inline]
fn blend(
    top_left: f32,
    top_right: f32,
    bottom_left: f32,
    bottom_right: f32,
    fx: f32,
    fy: f32,
) -> f32 {
    let top = top_left + (top_right - top_left) * fx;
    let bottom = bottom_left + (bottom_right - bottom_left) * fx;
    top + (bottom - top) * fy
}

/// Bilinear resampling of one plane, as torch's `F.interpolate(mode="bilinear")`.
pub fn resize_bilinear(
    src: &[f32],
    src_w: usize,
    src_h: usize,
    dst_w: usize,
    dst_h: usize,
) -> Vec<f32> {
    let (xs, ys) = (bilinear_axis(dst_w, src_w), bilinear_axis(dst_h, src_h));
    let mut out = Vec::with_capacity(dst_w * dst_h);
    for &(y0, y1, fy) in &ys {
        let (row0, row1) = (&src[y0 * src_w..][..src_w], &src[y1 * src_w..][..src_w]);
        for &(x0, x1, fx) in &xs {
            out.push(blend(row0[x0], row0[x1], row1[x0], row1[x1], fx, fy));
        }
    }
    out
}

/// Low-res logits (`low_res` x `low_res`, covering the padded model input) → logits at image resolution
/// over the transform's window (the whole image for SAM), row-major, window width × height.
///
/// SAM upsamples the low-res logits to the whole model input (1024² values for SAM), crops the resized
/// image and resamples that to the image. The second resampling reads at most two model rows and columns
/// per image row and column, so only those model values are computed (for a 256 px tile under SAM, 512²
/// at most, usually far fewer, instead of 1024²); each by the same expression on the same inputs, so the
/// logits are bit for bit those of the two full passes (a test compares them).
pub fn image_logits_from_low_res(
    low_res_logits: &[f32],
    low_res: usize,
    transform: &ModelFromImage,
) -> Vec<f32> {
    let s = transform.input_size as usize;
    let (w, h) = transform.resized_size();
    let [_, _, window_w, window_h] = transform.window_image;
    // Image (window) pixel → the two model pixels of the cropped input it reads.
    let xs_image = bilinear_axis(window_w as usize, w as usize);
    let ys_image = bilinear_axis(window_h as usize, h as usize);
    // Model pixel → the two low-res pixels it reads.
    let model_axis = bilinear_axis(s, low_res);
    let (columns, xs_image) = compacted(&xs_image, w as usize);
    let (rows, ys_image) = compacted(&ys_image, h as usize);
    // Only the used model values, one compact row per used model row.
    let mut model_values = Vec::with_capacity(columns.len() * rows.len());
    for &y_model in &rows {
        let (ly0, ly1, fy) = model_axis[y_model];
        let (row0, row1) = (
            &low_res_logits[ly0 * low_res..][..low_res],
            &low_res_logits[ly1 * low_res..][..low_res],
        );
        for &x_model in &columns {
            let (lx0, lx1, fx) = model_axis[x_model];
            model_values.push(blend(row0[lx0], row0[lx1], row1[lx0], row1[lx1], fx, fy));
        }
    }
    let stride = columns.len();
    let mut out = Vec::with_capacity(window_w as usize * window_h as usize);
    for &(y0, y1, fy) in &ys_image {
        let (r0, r1) = (y0 * stride, y1 * stride);
        for &(x0, x1, fx) in &xs_image {
            out.push(blend(
                model_values[r0 + x0],
                model_values[r0 + x1],
                model_values[r1 + x0],
                model_values[r1 + x1],
                fx,
                fy,
            ));
        }
    }
    out
}

/// The source indices (of `n`) an axis reads, ascending, and the axis with each index replaced by its
/// position among them.
fn compacted(axis: &[(usize, usize, f32)], n: usize) -> (Vec<usize>, Vec<(usize, usize, f32)>) {
    let mut read = vec![false; n];
    for &(i0, i1, _) in axis {
        read[i0] = true;
        read[i1] = true;
    }
    let used: Vec<usize> = (0..n).filter(|&i| read[i]).collect();
    let mut position = vec![0; n];
    for (p, &i) in used.iter().enumerate() {
        position[i] = p;
    }
    let axis = axis
        .iter()
        .map(|&(i0, i1, f)| (position[i0], position[i1], f))
        .collect();
    (used, axis)
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
    use crate::transform::window_layout;
    use lamina_core::model_manifest::Windows;

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

    /// SAM's own two passes: the whole model input, cropped, then resampled to the window.
    fn two_full_passes(low_res_logits: &[f32], low_res: usize, t: &ModelFromImage) -> Vec<f32> {
        let s = t.input_size as usize;
        let model_logits = resize_bilinear(low_res_logits, low_res, low_res, s, s);
        let (w, h) = t.resized_size();
        let (w, h) = (w as usize, h as usize);
        let cropped: Vec<f32> = (0..h)
            .flat_map(|y| model_logits[y * s..][..w].iter().copied())
            .collect();
        let [_, _, window_w, window_h] = t.window_image;
        resize_bilinear(&cropped, w, h, window_w as usize, window_h as usize)
    }

    #[test]
    fn image_logits_equal_sams_two_full_passes_bit_for_bit() {
        // SAM at 1024 over a 256 px tile, a large and a non-square image; a 256 px windowed model over a
        // tile, a window of a large image and a small image padded.
        // A window inside a large image, and one scaled down (6000 px with at most 36 windows).
        let windows = |side| {
            let cfg = Windows {
                overlap: 64,
                max: 36,
            };
            window_layout(side, side, 256, Some(&cfg))[7]
        };
        let cases = [
            (ModelFromImage::new(256, 256, 1024), 256),
            (ModelFromImage::new(1000, 1000, 1024), 256),
            (ModelFromImage::new(700, 300, 1024), 256),
            (ModelFromImage::new(256, 256, 256), 128),
            (ModelFromImage::new(100, 60, 256), 128),
            (windows(1000), 128),
            (windows(6000), 128),
        ];
        for (t, low_res) in cases {
            // Irregular logits with both signs, so every weight matters.
            let low: Vec<f32> = (0..low_res * low_res)
                .map(|i| ((i * 7919 % 1013) as f32 - 506.0) / 37.0)
                .collect();
            let direct = image_logits_from_low_res(&low, low_res, &t);
            let reference = two_full_passes(&low, low_res, &t);
            assert_eq!(direct.len(), reference.len(), "{t:?}");
            let same = direct
                .iter()
                .zip(&reference)
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{t:?}");
        }
    }

    #[test]
    fn stability_is_one_for_sharp_logits_and_lower_for_soft_ones() {
        assert_eq!(stability_score(&[5.0, 5.0, -5.0], 0.0, 1.0), 1.0);
        assert_eq!(stability_score(&[5.0, 0.5, -5.0], 0.0, 1.0), 0.5);
    }
}
