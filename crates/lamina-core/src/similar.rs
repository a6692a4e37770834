//! Find similar: images ranked by how close their embedding is to one or more anchors' (cosine to the
//! anchors' mean direction), the colour-histogram baseline embedding, and precision@k for the quality
//! report. Embeddings come from elsewhere (the segmentation encoder, pooled: `lamina_sam::pooled`).

/// A joint RGB histogram with `bins` levels per channel (`bins³` values), square-rooted so that cosine
/// similarity is the Bhattacharyya coefficient of the two colour distributions. `rgb` is interleaved.
pub fn colour_histogram(rgb: &[u8], bins: usize) -> Vec<f32> {
    let bins = bins.clamp(1, 16);
    let mut h = vec![0f32; bins * bins * bins];
    let level = |v: u8| (usize::from(v) * bins) / 256;
    let mut n = 0f32;
    for p in rgb.chunks_exact(3) {
        h[(level(p[0]) * bins + level(p[1])) * bins + level(p[2])] += 1.0;
        n += 1.0;
    }
    if n > 0.0 {
        h.iter_mut().for_each(|v| *v = (*v / n).sqrt());
    }
    h
}

/// Puts every dimension of a set of embeddings on the same scale (zero mean, unit deviation over the
/// set), so that cosine similarity is not decided by the few channels with the largest values.
pub fn standardize(vectors: &mut [Vec<f32>]) {
    let Some(dim) = vectors.first().map(Vec::len) else {
        return;
    };
    let n = vectors.len() as f64;
    for d in 0..dim {
        let mean = vectors.iter().map(|v| f64::from(v[d])).sum::<f64>() / n;
        let var = vectors
            .iter()
            .map(|v| (f64::from(v[d]) - mean).powi(2))
            .sum::<f64>()
            / n;
        let sd = var.sqrt().max(1e-12);
        for v in vectors.iter_mut() {
            v[d] = ((f64::from(v[d]) - mean) / sd) as f32;
        }
    }
}

fn unit(v: &[f32]) -> Vec<f64> {
    let norm = v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    v.iter()
        .map(|x| {
            if norm > 0.0 {
                f64::from(*x) / norm
            } else {
                0.0
            }
        })
        .collect()
}

/// Every candidate's similarity to the anchors (cosine to the mean of their unit vectors), best first
/// (ties in candidate order): `(candidate index, score in -1..1)`. Anchors among the candidates are left
/// out by the caller if unwanted.
pub fn rank(anchors: &[&[f32]], candidates: &[Vec<f32>]) -> Vec<(usize, f32)> {
    let Some(dim) = anchors.first().map(|a| a.len()) else {
        return Vec::new();
    };
    let mut centre = vec![0f64; dim];
    for a in anchors {
        for (c, x) in centre.iter_mut().zip(unit(a)) {
            *c += x;
        }
    }
    let centre = unit(&centre.iter().map(|c| *c as f32).collect::<Vec<_>>());
    let mut out: Vec<(usize, f32)> = candidates
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let s: f64 = unit(v).iter().zip(&centre).map(|(a, b)| a * b).sum();
            (i, s as f32)
        })
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1));
    out
}

/// The share of the first `k` ranked items whose label equals `wanted`.
pub fn precision_at_k(ranked_labels: &[&str], wanted: &str, k: usize) -> f64 {
    let top = &ranked_labels[..k.min(ranked_labels.len())];
    if top.is_empty() {
        return 0.0;
    }
    top.iter().filter(|l| **l == wanted).count() as f64 / top.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_sees_colour_and_its_cosine_with_itself_is_one() {
        let pink: Vec<u8> = [230u8, 150, 200].repeat(100);
        let purple: Vec<u8> = [90u8, 40, 140].repeat(100);
        let (a, b) = (colour_histogram(&pink, 4), colour_histogram(&purple, 4));
        assert_eq!(a.len(), 64);
        let ranked = rank(&[&a], &[b.clone(), a.clone()]);
        assert_eq!(ranked[0].0, 1);
        assert!((ranked[0].1 - 1.0).abs() < 1e-6 && ranked[1].1.abs() < 1e-6);
    }

    #[test]
    fn several_anchors_pull_towards_what_they_share() {
        let anchors = [vec![1.0, 0.0, 0.2], vec![0.0, 1.0, 0.2]];
        let candidates = vec![
            vec![1.0, 0.0, 0.0],
            vec![1.0, 1.0, 0.3],
            vec![0.0, 0.0, 1.0],
        ];
        let refs: Vec<&[f32]> = anchors.iter().map(Vec::as_slice).collect();
        let order: Vec<usize> = rank(&refs, &candidates)
            .into_iter()
            .map(|(i, _)| i)
            .collect();
        assert_eq!(order, [1, 0, 2]);
    }

    #[test]
    fn standardized_dimensions_weigh_alike() {
        // Dimension 0 is huge but says nothing; dimension 1 separates the two groups.
        let mut v = vec![
            vec![1000.0, 1.0],
            vec![1001.0, 1.1],
            vec![1000.5, -1.0],
            vec![999.5, -1.1],
        ];
        standardize(&mut v);
        let order: Vec<usize> = rank(&[&v[0]], &v).into_iter().map(|(i, _)| i).collect();
        assert_eq!(&order[..2], [0, 1]);
    }

    #[test]
    fn precision_counts_the_top_k() {
        assert_eq!(precision_at_k(&["a", "b", "a", "a"], "a", 2), 0.5);
        assert_eq!(precision_at_k(&["a"], "a", 10), 1.0);
        assert_eq!(precision_at_k(&[], "a", 10), 0.0);
    }
}
