//! Small image operations on a rectangular window (row-major `w * h`): Otsu's threshold, hole filling,
//! connected components, distance-transform peaks and a seeded geodesic (travel-time) split.
//! Hand-written to keep the crate free of heavy image-processing dependencies; each is a few lines.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// 4-neighbours of `i` inside a `w x h` grid.
fn neighbours(i: usize, w: usize, h: usize) -> impl Iterator<Item = usize> {
    let (x, y) = (i % w, i / w);
    [
        (x > 0).then(|| i - 1),
        (x + 1 < w).then(|| i + 1),
        (y > 0).then(|| i - w),
        (y + 1 < h).then(|| i + w),
    ]
    .into_iter()
    .flatten()
}

/// Otsu's threshold over a 256-bin histogram spanning the values' range: foreground is `v > t`.
/// A constant input gives its value (so nothing is foreground).
pub fn otsu(values: &[f32]) -> f32 {
    let (lo, hi) = values
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| {
            (l.min(v), h.max(v))
        });
    if values.is_empty() || hi <= lo {
        return lo;
    }
    const BINS: usize = 256;
    let width = (hi - lo) / BINS as f32;
    let mut hist = [0u64; BINS];
    for &v in values {
        hist[(((v - lo) / width) as usize).min(BINS - 1)] += 1;
    }
    let total = values.len() as f64;
    let sum_all: f64 = hist
        .iter()
        .enumerate()
        .map(|(i, &c)| i as f64 * c as f64)
        .sum();
    let (mut w0, mut sum0, mut best, mut best_bin) = (0.0f64, 0.0f64, -1.0f64, 0usize);
    for (i, &c) in hist.iter().enumerate() {
        w0 += c as f64;
        sum0 += i as f64 * c as f64;
        let w1 = total - w0;
        if w0 == 0.0 || w1 == 0.0 {
            continue;
        }
        let (m0, m1) = (sum0 / w0, (sum_all - sum0) / w1);
        let between = w0 * w1 * (m0 - m1) * (m0 - m1);
        if between > best {
            best = between;
            best_bin = i;
        }
    }
    lo + width * (best_bin + 1) as f32
}

/// Background regions not connected to the window's edge become foreground.
pub fn fill_holes(fg: &mut [bool], w: usize, h: usize) {
    let mut outside = vec![false; fg.len()];
    let mut queue: VecDeque<usize> = (0..fg.len())
        .filter(|&i| {
            let (x, y) = (i % w, i / w);
            !fg[i] && (x == 0 || y == 0 || x + 1 == w || y + 1 == h)
        })
        .collect();
    for &i in &queue {
        outside[i] = true;
    }
    while let Some(i) = queue.pop_front() {
        for n in neighbours(i, w, h) {
            if !fg[n] && !outside[n] {
                outside[n] = true;
                queue.push_back(n);
            }
        }
    }
    for (f, o) in fg.iter_mut().zip(outside) {
        *f = !o;
    }
}

/// The 4-connected component of `fg` containing `start` (empty if `start` is background).
pub fn component(fg: &[bool], w: usize, h: usize, start: usize) -> Vec<bool> {
    let mut seen = vec![false; fg.len()];
    if !fg[start] {
        return seen;
    }
    seen[start] = true;
    let mut queue = VecDeque::from([start]);
    while let Some(i) = queue.pop_front() {
        for n in neighbours(i, w, h) {
            if fg[n] && !seen[n] {
                seen[n] = true;
                queue.push_back(n);
            }
        }
    }
    seen
}

/// The largest 4-connected component of `fg` (first found on ties, in raster order).
pub fn largest_component(fg: &[bool], w: usize, h: usize) -> Vec<bool> {
    let mut done = vec![false; fg.len()];
    let mut best: Vec<bool> = vec![false; fg.len()];
    let mut best_area = 0;
    for i in 0..fg.len() {
        if fg[i] && !done[i] {
            let c = component(fg, w, h, i);
            let area = c.iter().filter(|&&v| v).count();
            for (d, &v) in done.iter_mut().zip(&c) {
                *d |= v;
            }
            if area > best_area {
                best_area = area;
                best = c;
            }
        }
    }
    best
}

/// Local maxima of `values` (≥ all 8 neighbours, so plateaus give every pixel) of at least `min`.
pub fn peaks(values: &[f64], w: usize, h: usize, min: f64) -> Vec<usize> {
    (0..values.len())
        .filter(|&i| {
            let (x, y) = ((i % w) as i64, (i / w) as i64);
            values[i] >= min
                && (-1..=1).all(|dy| {
                    (-1..=1).all(|dx| {
                        let (nx, ny) = (x + dx, y + dy);
                        nx < 0
                            || ny < 0
                            || nx >= w as i64
                            || ny >= h as i64
                            || values[ny as usize * w + nx as usize] <= values[i]
                    })
                })
        })
        .collect()
}

/// Seeded split by travel time: each `(pixel, label)` seed spreads through `fg` (4-connected, Dijkstra),
/// a step onto pixel `n` costing `step_cost[n]`; a pixel takes the label of the seed that reaches it
/// first. With a cost high at narrow places, fronts meet at the necks between touching nuclei, and,
/// unlike a watershed on depth, a seed off its blob's deepest point does not lose the blob to a deeper
/// seed. Ties go to the earlier arrival, so the result is deterministic. Unreached pixels stay 0.
pub fn geodesic_split(
    fg: &[bool],
    step_cost: &[f64],
    w: usize,
    h: usize,
    seeds: &[(usize, u32)],
) -> Vec<u32> {
    let mut labels = vec![0u32; fg.len()];
    let mut done = vec![false; fg.len()];
    let mut time = vec![f64::INFINITY; fg.len()];
    // Non-negative f64s order like their bit patterns; min-heap through `Reverse`.
    let mut heap = BinaryHeap::new();
    let mut arrival = 0u64;
    for &(i, label) in seeds {
        if fg[i] && labels[i] == 0 {
            labels[i] = label;
            time[i] = 0.0;
            heap.push(Reverse((0u64, arrival, i)));
            arrival += 1;
        }
    }
    while let Some(Reverse((_, _, i))) = heap.pop() {
        if done[i] {
            continue;
        }
        done[i] = true;
        for n in neighbours(i, w, h) {
            let t = time[i] + step_cost[n];
            if fg[n] && !done[n] && t < time[n] {
                time[n] = t;
                labels[n] = labels[i];
                heap.push(Reverse((t.to_bits(), arrival, n)));
                arrival += 1;
            }
        }
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otsu_splits_two_clusters() {
        let v: Vec<f32> = [0.1f32; 50].iter().chain(&[0.9f32; 50]).copied().collect();
        let t = otsu(&v);
        assert!(t > 0.1 && t < 0.9, "{t}");
        assert_eq!(otsu(&[0.5; 4]), 0.5);
    }

    #[test]
    fn holes_are_filled_but_open_bays_are_not() {
        #[rustfmt::skip]
        let mut fg = [
            false, false, false, false, false,
            false, true,  true,  true,  false,
            false, true,  false, true,  false,
            false, true,  true,  true,  false,
            false, false, false, false, false,
        ];
        fill_holes(&mut fg, 5, 5);
        assert!(fg[12]);
        let mut bay = [true, false, true, true, true, true];
        fill_holes(&mut bay, 3, 2);
        assert!(!bay[1]);
    }

    #[test]
    fn the_split_follows_the_neck_not_the_midpoint() {
        // A 9x1 bar with a costly (narrow) pixel at index 6; seeds at both ends. By steps the split
        // would be at the middle (index 4); by travel time it is at the neck.
        let fg = [true; 9];
        let mut cost = [1.0; 9];
        cost[6] = 10.0;
        let labels = geodesic_split(&fg, &cost, 9, 1, &[(0, 1), (8, 2)]);
        assert_eq!(labels, [1, 1, 1, 1, 1, 1, 2, 2, 2]);
        let lone = largest_component(&[true, false, true, true], 4, 1);
        assert_eq!(lone, vec![false, false, true, true]);
    }
}
