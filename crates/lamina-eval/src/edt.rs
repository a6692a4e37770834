//! Exact Euclidean distance transform (Felzenszwalb & Huttenlocher 2012, "Distance transforms of sampled
//! functions"): two passes of the 1-D lower envelope of parabolas. Written here because the crates that
//! have it (imageproc) would pull nalgebra, rand and more into a crate that needs one function.

use lamina_core::mask::Mask;

/// Squared distance transform of one line of sampled values `f` (0 = feature, a value
/// above any reachable squared distance = none).
fn envelope_1d(f: &[f64], out: &mut [f64], v: &mut [usize], z: &mut [f64]) {
    let n = f.len();
    let mut k = 0usize;
    v[0] = 0;
    z[0] = f64::NEG_INFINITY;
    z[1] = f64::INFINITY;
    for q in 1..n {
        let qf = q as f64;
        // Pop the parabolas the new one hides; z[0] = -inf stops the loop at the first one.
        let mut s;
        loop {
            let p = v[k] as f64;
            // Where the parabola rooted at q overtakes the one rooted at v[k].
            s = ((f[q] + qf * qf) - (f[v[k]] + p * p)) / (2.0 * qf - 2.0 * p);
            if s > z[k] {
                break;
            }
            k -= 1;
        }
        k += 1;
        v[k] = q;
        z[k] = s;
        z[k + 1] = f64::INFINITY;
    }
    k = 0;
    for (q, o) in out.iter_mut().enumerate() {
        while z[k + 1] < q as f64 {
            k += 1;
        }
        let d = q as f64 - v[k] as f64;
        *o = d * d + f[v[k]];
    }
}

/// Squared Euclidean distance from each foreground pixel to the nearest background pixel, with the
/// image padded by 1 px of background (so a pixel on the image edge is at distance 1). Background pixels
/// are 0. Row-major, `width * height` values; exact (integers held in f64).
pub fn squared_distance_to_background(mask: &Mask) -> Vec<f64> {
    let (w, h) = (mask.width as usize + 2, mask.height as usize + 2);
    // "No background yet": finite, so the envelope never computes inf - inf, and small enough that every
    // sum stays an exact integer in f64.
    let far = ((w + h) * (w + h)) as f64 + 1.0;
    let mut grid = vec![0.0f64; w * h];
    for y in 0..mask.height as usize {
        for x in 0..mask.width as usize {
            if mask.data[y * mask.width as usize + x] != 0 {
                grid[(y + 1) * w + x + 1] = far;
            }
        }
    }
    let n = w.max(h);
    let (mut f, mut out, mut v, mut z) = (
        vec![0.0; n],
        vec![0.0; n],
        vec![0usize; n],
        vec![0.0; n + 1],
    );
    for x in 0..w {
        for y in 0..h {
            f[y] = grid[y * w + x];
        }
        envelope_1d(&f[..h], &mut out[..h], &mut v, &mut z);
        for y in 0..h {
            grid[y * w + x] = out[y];
        }
    }
    for y in 0..h {
        f[..w].copy_from_slice(&grid[y * w..][..w]);
        envelope_1d(&f[..w], &mut out[..w], &mut v, &mut z);
        grid[y * w..][..w].copy_from_slice(&out[..w]);
    }
    let mut cropped = Vec::with_capacity(mask.data.len());
    for y in 1..h - 1 {
        cropped.extend_from_slice(&grid[y * w + 1..][..w - 2]);
    }
    cropped
}

/// The interior-most foreground pixel `(x, y, squared distance)`: the argmax of
/// [`squared_distance_to_background`], ties to the smallest row, then the smallest column. `None` when
/// the mask is empty.
pub fn interior_most(mask: &Mask) -> Option<(u32, u32, f64)> {
    let d = squared_distance_to_background(mask);
    let mut best: Option<(usize, f64)> = None;
    // Row-major scan with a strict `>` keeps the first of equal maxima: smallest row, then column.
    for (i, &v) in d.iter().enumerate() {
        if v > 0.0 && best.is_none_or(|(_, b)| v > b) {
            best = Some((i, v));
        }
    }
    let w = mask.width as usize;
    best.map(|(i, v)| ((i % w) as u32, (i / w) as u32, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask_from(rows: &[&str]) -> Mask {
        let mut m = Mask::new(rows[0].len() as u32, rows.len() as u32);
        for (y, r) in rows.iter().enumerate() {
            for (x, c) in r.chars().enumerate() {
                m.set(x as u32, y as u32, c == '#');
            }
        }
        m
    }

    /// O(n²) reference: nearest background pixel, the 1-px ring outside the image included.
    fn brute(mask: &Mask) -> Vec<f64> {
        let (w, h) = (mask.width as i64, mask.height as i64);
        let mut out = vec![0.0; (w * h) as usize];
        for y in 0..h {
            for x in 0..w {
                if !mask.get(x as u32, y as u32) {
                    continue;
                }
                let mut best = i64::MAX;
                for by in -1..=h {
                    for bx in -1..=w {
                        let inside = bx >= 0 && by >= 0 && bx < w && by < h;
                        if inside && mask.get(bx as u32, by as u32) {
                            continue;
                        }
                        best = best.min((bx - x).pow(2) + (by - y).pow(2));
                    }
                }
                out[(y * w + x) as usize] = best as f64;
            }
        }
        out
    }

    #[test]
    fn matches_brute_force_on_pseudo_random_masks() {
        let mut state = 12345u64;
        for trial in 0..200 {
            let (w, h) = (1 + trial % 13, 1 + (trial * 7) % 11);
            let mut m = Mask::new(w, h);
            for px in m.data.iter_mut() {
                // xorshift: deterministic, no rand dependency for a test.
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *px = u8::from(state % 10 < 7);
            }
            assert_eq!(squared_distance_to_background(&m), brute(&m), "{m:?}");
        }
    }

    #[test]
    fn the_image_edge_counts_as_background() {
        let d = squared_distance_to_background(&mask_from(&["###"]));
        assert_eq!(d, vec![1.0, 1.0, 1.0]);
    }

    #[test]
    fn interior_most_pixel_of_a_rectangle_and_its_tie_break() {
        // 5 wide x 3 tall: the middle row is at distance 2 for x = 2..=4; smallest column wins.
        let m = mask_from(&[".......", ".#####.", ".#####.", ".#####.", "......."]);
        assert_eq!(interior_most(&m), Some((2, 2, 4.0)));
        // A 4x4 square: the four central pixels tie; smallest row, then column.
        let m = mask_from(&["......", ".####.", ".####.", ".####.", ".####.", "......"]);
        assert_eq!(interior_most(&m), Some((2, 2, 4.0)));
        assert_eq!(interior_most(&Mask::new(3, 3)), None);
    }
}
