//! Automatic mode: every object of an image without clicks, for pre-labels.
//!
//! Seeds are where a click would go. Lamina's nuclei models (`family: lamina-nuclei`) carry a dense head
//! in their embedding: per 2×2-pixel cell a foreground logit and a vote for the centre of its nucleus.
//! The votes of foreground cells are summed on the cell grid; each peak is a nucleus centre. Other
//! SAM-family models get SAM's point grid. Every seed is decoded as one positive click; masks are kept
//! by predicted IoU (and, for the grid, stability), size, and whether they hold their own seed; then,
//! best first, a mask overlapping a kept one by more than `nms_iou` is dropped and the rest lose the
//! pixels already taken, so no two instances share a pixel.

use lamina_core::mask::Mask;
use lamina_core::prelabel::{PrelabelSettings, NUCLEI_FAMILY};

use crate::engine::{Embedding, Prompts, SamEngine, SamError};

/// The nuclei models' embedding layout (models/tools/nuclei/model.py): 64 context channels, 64 packed
/// detail channels, then the dense head (foreground logit, vote dy, vote dx) packed 4×4 into 48.
const DENSE_FIRST_CHANNEL: usize = 128;
const DENSE_CHANNELS: usize = 3;
const DENSE_PACK: usize = 4;
/// Votes are offsets in units of this many model pixels.
const VOTE_UNIT: f64 = 16.0;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AutoOptions {
    /// Lowest predicted IoU kept.
    pub min_score: f32,
    /// Lowest stability kept (SAM's `stability_score_thresh`; 0 keeps all).
    pub min_stability: f32,
    /// A mask overlapping a better one by more than this IoU is the same object.
    pub nms_iou: f64,
    /// Smallest instance, image pixels (after overlaps are removed).
    pub min_area: u64,
    /// Points per side of the seed grid for models without a vote head (SAM's `points_per_side`).
    pub grid: usize,
    /// Nuclei models: the least summed foreground probability of the votes at a centre.
    pub min_votes: f32,
}

impl AutoOptions {
    /// Settings measured on nuinsseg-dev for the nuclei models; SAM's own defaults otherwise.
    pub fn for_family(family: &str) -> AutoOptions {
        AutoOptions::with_settings(family, &PrelabelSettings::for_family(family))
    }

    /// The family's seeding with a user's thresholds (`lamina predict`'s flags, the app's run form).
    pub fn with_settings(family: &str, settings: &PrelabelSettings) -> AutoOptions {
        let base = AutoOptions {
            min_score: settings.min_score,
            nms_iou: settings.nms_iou,
            min_area: settings.min_area,
            min_stability: 0.0,
            grid: 0,
            min_votes: 0.0,
        };
        if family == NUCLEI_FAMILY {
            // Chosen on nuinsseg-dev (BENCHMARKS.md, "Automatic mode"): F1 at IoU 0.5 peaks between
            // predicted IoU 0.3 and 0.5; fewer votes per seed changes little (the masks, not the
            // seeds, limit recall).
            AutoOptions {
                min_votes: 2.0,
                ..base
            }
        } else {
            AutoOptions {
                min_stability: 0.95,
                grid: 32,
                ..base
            }
        }
    }
}

/// One object found: its mask in image pixels and its predicted IoU.
#[derive(Clone, Debug)]
pub struct AutoInstance {
    pub mask_image: Mask,
    pub score: f32,
    /// The model's class index (SAM-family models have one class, 0).
    pub class: usize,
}

/// Seeds in image pixels: vote peaks for nuclei models, the point grid otherwise; seeds closer than
/// 2 image pixels to an earlier one (from an overlapping window) are dropped.
pub fn seeds_image(
    engine: &SamEngine,
    embedding: &Embedding,
    options: &AutoOptions,
) -> Vec<[f64; 2]> {
    let manifest = &engine.manifest;
    let [_, channels, side, _] = embedding.shape;
    let has_votes = manifest.family == "lamina-nuclei"
        && channels == DENSE_FIRST_CHANNEL + DENSE_CHANNELS * DENSE_PACK * DENSE_PACK;
    let input = f64::from(manifest.input_size);
    let mut out: Vec<[f64; 2]> = Vec::new();
    for window in &embedding.windows {
        let model_points = if has_votes {
            vote_peaks_model(&window.values, side, input, options.min_votes)
        } else {
            grid_model(window.transform.resized_size(), options.grid)
        };
        for [x, y] in model_points {
            let p = window.transform.image_from_model(x, y);
            let (w, h) = (window.transform.image_width, window.transform.image_height);
            let inside = p[0] >= 0.0 && p[1] >= 0.0 && p[0] < f64::from(w) && p[1] < f64::from(h);
            if inside && out.iter().all(|q| (q[0] - p[0]).hypot(q[1] - p[1]) >= 2.0) {
                out.push(p);
            }
        }
    }
    out
}

/// Centres the foreground cells vote for, in model pixels: votes summed (weighted by foreground
/// probability) on the dense grid, smoothed over 3×3 cells, local maxima over 5×5 of at least
/// `min_votes`.
fn vote_peaks_model(values: &[f32], side: usize, input: f64, min_votes: f32) -> Vec<[f64; 2]> {
    let grid = side * DENSE_PACK; // 128 cells across for nuclei-v3
    let cell = input / grid as f64; // model pixels per cell
    let dense = |c: usize, y: usize, x: usize| {
        let channel = DENSE_FIRST_CHANNEL
            + c * DENSE_PACK * DENSE_PACK
            + (y % DENSE_PACK) * DENSE_PACK
            + x % DENSE_PACK;
        values
            .get((channel * side + y / DENSE_PACK) * side + x / DENSE_PACK)
            .copied()
            .unwrap_or(f32::NEG_INFINITY)
    };
    let mut votes = vec![0f32; grid * grid];
    for y in 0..grid {
        for x in 0..grid {
            let logit = dense(0, y, x);
            if logit <= 0.0 {
                continue;
            }
            let p = 1.0 / (1.0 + (-logit).exp());
            let centre_y = (y as f64 + 0.5) * cell + VOTE_UNIT * f64::from(dense(1, y, x));
            let centre_x = (x as f64 + 0.5) * cell + VOTE_UNIT * f64::from(dense(2, y, x));
            let (cy, cx) = ((centre_y / cell).floor(), (centre_x / cell).floor());
            if cy >= 0.0 && cx >= 0.0 && (cy as usize) < grid && (cx as usize) < grid {
                votes[cy as usize * grid + cx as usize] += p;
            }
        }
    }
    let smoothed = box_sum(&votes, grid, 1);
    let mut peaks = Vec::new();
    for y in 0..grid {
        for x in 0..grid {
            let v = smoothed[y * grid + x];
            if v < min_votes {
                continue;
            }
            // A strict maximum over earlier cells and ≥ over later ones, so a plateau gives one peak.
            let is_peak = (y.saturating_sub(2)..(y + 3).min(grid)).all(|ny| {
                (x.saturating_sub(2)..(x + 3).min(grid)).all(|nx| {
                    let n = smoothed[ny * grid + nx];
                    let earlier = (ny, nx) < (y, x);
                    if earlier {
                        n < v
                    } else {
                        n <= v
                    }
                })
            });
            if is_peak {
                peaks.push([(x as f64 + 0.5) * cell, (y as f64 + 0.5) * cell]);
            }
        }
    }
    peaks
}

/// The sum over the (2r+1)² cells around each cell.
fn box_sum(values: &[f32], side: usize, r: usize) -> Vec<f32> {
    let mut out = vec![0f32; values.len()];
    for y in 0..side {
        for x in 0..side {
            let mut s = 0.0;
            for ny in y.saturating_sub(r)..(y + r + 1).min(side) {
                for nx in x.saturating_sub(r)..(x + r + 1).min(side) {
                    s += values[ny * side + nx];
                }
            }
            out[y * side + x] = s;
        }
    }
    out
}

/// SAM's point grid over the resized image inside the model input.
fn grid_model((width, height): (u32, u32), per_side: usize) -> Vec<[f64; 2]> {
    let n = per_side.max(1);
    let mut out = Vec::with_capacity(n * n);
    for j in 0..n {
        for i in 0..n {
            out.push([
                (i as f64 + 0.5) / n as f64 * f64::from(width),
                (j as f64 + 0.5) / n as f64 * f64::from(height),
            ]);
        }
    }
    out
}

/// Every object of the embedded image; `progress(done, total)` is called after each seed's decode.
pub fn segment_all(
    engine: &SamEngine,
    embedding: &Embedding,
    options: &AutoOptions,
    mut progress: impl FnMut(usize, usize),
) -> Result<Vec<AutoInstance>, SamError> {
    let seeds = seeds_image(engine, embedding, options);
    let mut found: Vec<AutoInstance> = Vec::new();
    for (n, &seed) in seeds.iter().enumerate() {
        let prompts = Prompts {
            points_image: vec![(seed, true)],
            ..Prompts::default()
        };
        let decoded = engine.decode(embedding, &prompts)?;
        progress(n + 1, seeds.len());
        let Some(best) = decoded.candidates.get(decoded.best) else {
            continue;
        };
        if best.iou_prediction < options.min_score || best.stability < options.min_stability {
            continue;
        }
        let mask_image = engine.mask(best, &decoded.transform);
        // A mask that leaves out its own click answered some other question.
        if mask_image.area() < options.min_area || !mask_image.contains_point(seed[0], seed[1]) {
            continue;
        }
        found.push(AutoInstance {
            mask_image,
            score: best.iou_prediction,
            class: 0,
        });
    }
    Ok(without_overlaps(found, options))
}

/// Best first: drops a mask that overlaps a kept one by more than `nms_iou`, takes the pixels already
/// kept out of the rest, and drops what falls under `min_area` or half its size.
pub fn without_overlaps(mut found: Vec<AutoInstance>, options: &AutoOptions) -> Vec<AutoInstance> {
    found.sort_by(|a, b| b.score.total_cmp(&a.score));
    let Some(first) = found.first() else {
        return found;
    };
    let (w, h) = (first.mask_image.width, first.mask_image.height);
    // Which kept instance (1-based) owns each pixel.
    let mut owner = vec![0u32; w as usize * h as usize];
    let mut kept: Vec<AutoInstance> = Vec::new();
    for mut candidate in found {
        let area = candidate.mask_image.area();
        let mut shared = std::collections::HashMap::<u32, u64>::new();
        for (i, _) in candidate
            .mask_image
            .data
            .iter()
            .enumerate()
            .filter(|(_, &v)| v != 0)
        {
            if owner[i] > 0 {
                *shared.entry(owner[i]).or_default() += 1;
            }
        }
        let duplicate = shared.iter().any(|(&k, &inter)| {
            let other = kept[k as usize - 1].mask_image.area();
            inter as f64 / (area + other - inter) as f64 > options.nms_iou
        });
        if duplicate {
            continue;
        }
        for (i, v) in candidate.mask_image.data.iter_mut().enumerate() {
            if owner[i] > 0 {
                *v = 0;
            }
        }
        let left = candidate.mask_image.area();
        if left < options.min_area || left * 2 < area {
            continue;
        }
        let id = kept.len() as u32 + 1;
        for (i, _) in candidate
            .mask_image
            .data
            .iter()
            .enumerate()
            .filter(|(_, &v)| v != 0)
        {
            owner[i] = id;
        }
        kept.push(candidate);
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square(x0: u32, y0: u32, side: u32, score: f32) -> AutoInstance {
        let mut m = Mask::new(40, 40);
        m.fill_rect(
            f64::from(x0),
            f64::from(y0),
            f64::from(x0 + side),
            f64::from(y0 + side),
            true,
        );
        AutoInstance {
            mask_image: m,
            score,
            class: 0,
        }
    }

    #[test]
    fn duplicates_go_and_overlaps_are_given_to_the_better_mask() {
        let options = AutoOptions::for_family("lamina-nuclei");
        let kept = without_overlaps(
            vec![
                square(0, 0, 10, 0.6),   // overlaps the best by 2 columns: keeps the rest
                square(8, 0, 10, 0.9),   // best
                square(9, 0, 10, 0.8),   // the same object as the best (IoU 0.82): dropped
                square(30, 30, 4, 0.95), // apart, but 16 px: under min_area
            ],
            &options,
        );
        let areas: Vec<u64> = kept.iter().map(|k| k.mask_image.area()).collect();
        assert_eq!(areas, [100, 80]);
        assert_eq!(kept[0].score, 0.9);
        assert!(kept[1].mask_image.get(7, 0) && !kept[1].mask_image.get(8, 0));
    }

    #[test]
    fn the_grid_covers_the_resized_image() {
        let g = grid_model((200, 100), 4);
        assert_eq!(g.len(), 16);
        assert_eq!(g[0], [25.0, 12.5]);
        assert_eq!(g[15], [175.0, 87.5]);
    }
}
