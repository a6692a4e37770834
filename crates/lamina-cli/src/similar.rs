//! `lamina eval similar`: the quality of find-similar. Every tile of one set is an anchor; the tiles of
//! another are ranked by similarity to it; precision@k is the share of the top k with the anchor's
//! metadata value (organ, by default). Three rankings side by side: the segmentation encoder's pooled
//! embedding (`lamina_sam::pooled`, standardized over both sets), a colour histogram, and random order
//! (its expected precision: the share of the pool with the anchor's value).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;

use lamina_core::similar::{colour_histogram, precision_at_k, rank, standardize};
use lamina_sam::pooled::pooled;

use crate::eval::{load_engine, DEFAULT_MODEL_DIR};
use crate::Report;

/// Joint RGB histogram levels per channel (8³ = 512 bins).
const HISTOGRAM_BINS: usize = 8;

#[derive(Args)]
pub struct EvalSimilarArgs {
    /// The tile set ranked (a folder with manifest.json, shared/data/FORMAT.md).
    #[arg(long)]
    pool: PathBuf,
    /// The tile set whose every tile is an anchor.
    #[arg(long)]
    anchors: PathBuf,
    /// A Lamina or SAM-family model folder.
    #[arg(long, default_value = DEFAULT_MODEL_DIR)]
    model: PathBuf,
    /// The metadata field that says whether two tiles are alike.
    #[arg(long, default_value = "organ")]
    field: String,
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// Only the first N tiles of the pool.
    #[arg(long)]
    limit: Option<usize>,
    /// Also write every tile's label, pooled embedding and histogram as JSON (for analysis).
    #[arg(long)]
    dump: Option<PathBuf>,
}

struct Tile {
    label: String,
    embedding: Vec<f32>,
    histogram: Vec<f32>,
}

/// `(image path, the field's value)` of each item of a tile set's manifest.
fn items(dir: &Path, field: &str, limit: Option<usize>) -> Result<Vec<(PathBuf, String)>> {
    let path = dir.join("manifest.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let manifest: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let list = manifest["items"]
        .as_array()
        .with_context(|| format!("{} has no items", path.display()))?;
    let mut out = Vec::new();
    for item in list.iter().take(limit.unwrap_or(usize::MAX)) {
        let image = item["image"]
            .as_str()
            .with_context(|| format!("an item of {} has no image", path.display()))?;
        let label = item[field].as_str().unwrap_or("").to_owned();
        out.push((dir.join(image), label));
    }
    Ok(out)
}

pub fn run(args: &EvalSimilarArgs) -> Result<Report> {
    let engine = load_engine(&args.model)?;
    let anchors = items(&args.anchors, &args.field, None)?;
    let pool = items(&args.pool, &args.field, args.limit)?;
    let mut tiles = Vec::with_capacity(anchors.len() + pool.len());
    let mut encode_ms = Vec::new();
    let all = anchors.iter().chain(&pool);
    let total = anchors.len() + pool.len();
    for (n, (path, label)) in all.enumerate() {
        let rgb = image::open(path)
            .with_context(|| format!("cannot decode {}", path.display()))?
            .to_rgb8();
        let started = Instant::now();
        let embedding = pooled(&engine.encode(&rgb)?);
        encode_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        tiles.push(Tile {
            label: label.clone(),
            embedding,
            histogram: colour_histogram(rgb.as_raw(), HISTOGRAM_BINS),
        });
        if (n + 1) % 200 == 0 {
            eprintln!("[{}/{total}] encoded", n + 1);
        }
    }
    if let Some(dump) = &args.dump {
        let rows: Vec<serde_json::Value> = tiles
            .iter()
            .enumerate()
            .map(|(i, t)| {
                json!({"anchor": i < anchors.len(), "label": t.label,
                "embedding": t.embedding, "histogram": t.histogram})
            })
            .collect();
        std::fs::write(dump, serde_json::to_string(&rows)?)
            .with_context(|| format!("cannot write {}", dump.display()))?;
    }
    let mut embeddings: Vec<Vec<f32>> = tiles.iter().map(|t| t.embedding.clone()).collect();
    standardize(&mut embeddings);
    let (anchor_model, pool_model) = embeddings.split_at(anchors.len());
    let histograms: Vec<Vec<f32>> = tiles.iter().map(|t| t.histogram.clone()).collect();
    let (anchor_hist, pool_hist) = histograms.split_at(anchors.len());
    let pool_labels: Vec<&str> = tiles[anchors.len()..]
        .iter()
        .map(|t| t.label.as_str())
        .collect();
    let precision = |anchor: &[f32], candidates: &[Vec<f32>], wanted: &str| {
        let ranked: Vec<&str> = rank(&[anchor], candidates)
            .into_iter()
            .map(|(i, _)| pool_labels[i])
            .collect();
        precision_at_k(&ranked, wanted, args.k)
    };
    let (mut model_p, mut hist_p, mut random_p) = (0.0, 0.0, 0.0);
    let mut scored = 0usize;
    for (a, tile) in tiles[..anchors.len()].iter().enumerate() {
        let wanted = tile.label.as_str();
        let share = pool_labels.iter().filter(|l| **l == wanted).count() as f64;
        if wanted.is_empty() || share == 0.0 {
            // No tile of that kind in the pool: nothing to find.
            continue;
        }
        model_p += precision(&anchor_model[a], pool_model, wanted);
        hist_p += precision(&anchor_hist[a], pool_hist, wanted);
        random_p += share / pool_labels.len() as f64;
        scored += 1;
    }
    let n = scored.max(1) as f64;
    let (model_p, hist_p, random_p) = (model_p / n, hist_p / n, random_p / n);
    encode_ms.sort_by(f64::total_cmp);
    let p50 = encode_ms.get(encode_ms.len() / 2).copied().unwrap_or(0.0);
    let k = args.k;
    Ok(Report {
        ok: true,
        json: json!({"ok": true, "model": engine.manifest.id, "field": args.field, "k": k,
            "anchors": scored, "pool": pool_labels.len(),
            "precision": {"model": model_p, "colour_histogram": hist_p, "random": random_p},
            "encode_ms_p50": p50}),
        human: format!(
            "{} precision@{k} over {scored} anchors, pool of {}: {} embedding {model_p:.3}, colour histogram {hist_p:.3}, random {random_p:.3} (encode p50 {p50:.0} ms)",
            args.field,
            pool_labels.len(),
            engine.manifest.id
        ),
    })
}
