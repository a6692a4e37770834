//! One vector per image from its embedding, for find-similar: each channel's mean and standard
//! deviation over every cell of every window. The mean says what the image holds (tissue, stain,
//! nuclei density), the deviation how varied it is; both are blind to where things are, as a
//! "more like this" over tiles should be.

use crate::engine::Embedding;

/// `2 × channels` values: the means, then the deviations.
pub fn pooled(embedding: &Embedding) -> Vec<f32> {
    let [_, channels, h, w] = embedding.shape;
    let cells = h * w;
    let mut sum = vec![0f64; channels];
    let mut sum_sq = vec![0f64; channels];
    let mut n = 0f64;
    for window in &embedding.windows {
        for c in 0..channels {
            for v in &window.values[c * cells..(c + 1) * cells] {
                let v = f64::from(*v);
                sum[c] += v;
                sum_sq[c] += v * v;
            }
        }
        n += cells as f64;
    }
    if n == 0.0 {
        return vec![0.0; 2 * channels];
    }
    let means = sum.iter().map(|s| (s / n) as f32);
    let deviations = sum
        .iter()
        .zip(&sum_sq)
        .map(|(s, q)| ((q / n - (s / n).powi(2)).max(0.0).sqrt()) as f32);
    means.chain(deviations).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::WindowEmbedding;
    use crate::transform::ModelFromImage;

    #[test]
    fn means_then_deviations_over_all_windows() {
        let window = |values: Vec<f32>| WindowEmbedding {
            values,
            transform: ModelFromImage::new(4, 4, 2),
        };
        // Two channels of 2×1 cells, two windows.
        let e = Embedding {
            shape: [1, 2, 2, 1],
            windows: vec![
                window(vec![1.0, 3.0, 5.0, 5.0]),
                window(vec![1.0, 3.0, 7.0, 7.0]),
            ],
        };
        assert_eq!(pooled(&e), [2.0, 6.0, 1.0, 1.0]);
    }
}
