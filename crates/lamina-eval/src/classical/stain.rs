//! Colour deconvolution of H&E(-DAB) (Ruifrok & Johnston 2001), as scikit-image's `rgb2hed`: optical
//! density per channel times the inverse of the stain matrix. Nuclei are where hematoxylin is high.

use image::RgbImage;

/// Rows: the RGB optical-density vectors of hematoxylin, eosin and DAB (skimage's `rgb_from_hed`).
const RGB_FROM_HED: [[f64; 3]; 3] = [[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]];

fn inverse3(m: [[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let c = |r: usize, k: usize| {
        let (r1, r2) = ((r + 1) % 3, (r + 2) % 3);
        let (k1, k2) = ((k + 1) % 3, (k + 2) % 3);
        m[r1][k1] * m[r2][k2] - m[r1][k2] * m[r2][k1]
    };
    let det = m[0][0] * c(0, 0) + m[0][1] * c(0, 1) + m[0][2] * c(0, 2);
    let mut inv = [[0.0; 3]; 3];
    for (i, row) in inv.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            // Adjugate: the transpose of the cofactor matrix (cyclic indices carry the signs).
            *v = c(j, i) / det;
        }
    }
    inv
}

/// The hematoxylin concentration of every pixel (row-major, ≥ 0), as `rgb2hed(rgb)[..., 0]`.
pub fn hematoxylin(rgb: &RgbImage) -> Vec<f32> {
    let hed_from_rgb = inverse3(RGB_FROM_HED);
    let log_adjust = 1e-6f64.ln();
    rgb.pixels()
        .map(|p| {
            let h: f64 = (0..3)
                .map(|k| {
                    let od = (f64::from(p[k]) / 255.0).max(1e-6).ln() / log_adjust;
                    od * hed_from_rgb[k][0]
                })
                .sum();
            h.max(0.0) as f32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inverse_is_an_inverse() {
        let inv = inverse3(RGB_FROM_HED);
        for (i, row) in RGB_FROM_HED.iter().enumerate() {
            for j in 0..3 {
                let v: f64 = row
                    .iter()
                    .zip(&inv)
                    .map(|(a, inv_row)| a * inv_row[j])
                    .sum();
                assert!((v - f64::from(u8::from(i == j))).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn matches_skimage_rgb2hed() {
        // Reference: numpy with skimage's formula, `(log(max(rgb/255, 1e-6)) / log(1e-6)) @
        // inv(rgb_from_hed)`, clipped at 0, channel 0.
        let cases = [
            ([255, 255, 255], 0.0),
            ([70, 50, 130], 0.138_604_647_147_835_5),
            ([200, 120, 170], 0.011_763_347_846_701_107),
            ([0, 0, 0], 1.210_167_311_189_283),
            ([120, 80, 160], 0.076_625_798_884_094_1),
        ];
        for (px, want) in cases {
            let img = RgbImage::from_pixel(1, 1, image::Rgb(px));
            let got = hematoxylin(&img)[0];
            assert!(
                (f64::from(got) - want).abs() < 1e-6,
                "{px:?}: {got} vs {want}"
            );
        }
    }
}
