//! `lamina bench sam`: native timings of a SAM-family model through the same engine the browser runs.
//! Prints figures; it asserts nothing (benchmarks are not timed tests).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use lamina_sam::{load_dir, DecoderVariant, Prompts};
use serde_json::json;

use crate::Report;

#[derive(Args)]
pub struct BenchSamArgs {
    /// Folder with manifest.json and the ONNX files.
    #[arg(long)]
    model: PathBuf,
    /// Image to encode (default: a 256x256 tile of the dev set, or a synthetic one if absent).
    #[arg(long)]
    image: Option<PathBuf>,
    /// Decoder variant: low_res (upsampling in Rust) or orig_size (pinned per image size).
    #[arg(long, default_value = "low_res")]
    variant: String,
    #[arg(long, default_value_t = 3)]
    encodes: usize,
    #[arg(long, default_value_t = 30)]
    decodes: usize,
    /// Also time the decoder per graph node over this many single-click decodes and list the slowest
    /// (the browser bench has the same, `node bench/browser_sam.mjs --profile N`).
    #[arg(long, default_value_t = 0)]
    profile: usize,
}

/// The slowest nodes of a decode profile as text, with their share of the total.
fn profile_table(rows: &[lamina_sam::NodeTime], top: usize) -> String {
    let total: f64 = rows.iter().map(|r| r.ms).sum();
    let mut out = format!("  decode profile: {total:.2} ms per decode, slowest nodes:");
    for r in rows.iter().take(top) {
        out += &format!(
            "\n  {:7.3} ms {:5.1}%  {:<28} {:<36} {}",
            r.ms,
            100.0 * r.ms / total.max(1e-9),
            r.op.chars().take(28).collect::<String>(),
            r.name.chars().take(36).collect::<String>(),
            r.shape
        );
    }
    out
}

fn percentile(sorted_ms: &[f64], p: f64) -> f64 {
    if sorted_ms.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted_ms.len() - 1) as f64).round() as usize;
    sorted_ms[rank.min(sorted_ms.len() - 1)]
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

pub fn run(args: &BenchSamArgs) -> Result<Report> {
    let variant = match args.variant.as_str() {
        "low_res" => DecoderVariant::LowRes,
        "orig_size" => DecoderVariant::OrigSize,
        other => anyhow::bail!("--variant must be low_res or orig_size, not {other}"),
    };
    let default_tile =
        PathBuf::from("../shared/data/nuinsseg-dev/images/nuinsseg_human_bladder_01_x0y0.png");
    let image = match args
        .image
        .clone()
        .or_else(|| default_tile.exists().then_some(default_tile))
    {
        Some(path) => image::open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?
            .to_rgb8(),
        None => image::RgbImage::from_fn(256, 256, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
        }),
    };

    let t = Instant::now();
    let engine = load_dir(&args.model, variant)?;
    let load_ms = ms_since(t);

    let mut encode_ms = Vec::new();
    let mut embedding = None;
    for _ in 0..args.encodes.max(1) {
        let t = Instant::now();
        embedding = Some(engine.encode(&image)?);
        encode_ms.push(ms_since(t));
    }
    let embedding = embedding.context("no encode ran")?;

    // Single clicks over a grid of the tile: the hover-preview workload.
    let (w, h) = (f64::from(image.width()), f64::from(image.height()));
    let mut decode_ms = Vec::new();
    let mut first_decode_ms = None;
    for i in 0..args.decodes.max(1) {
        let (gx, gy) = ((i % 6) as f64 + 0.5, ((i / 6) % 6) as f64 + 0.5);
        let prompts = Prompts {
            points_image: vec![([gx * w / 6.0, gy * h / 6.0], true)],
            ..Prompts::default()
        };
        let t = Instant::now();
        let decoded = engine.decode(&embedding, &prompts)?;
        let _mask = engine.mask(&decoded.candidates[decoded.best], &decoded.transform);
        let ms = ms_since(t);
        // The first orig_size decode includes optimising for this image size.
        if first_decode_ms.is_none() {
            first_decode_ms = Some(ms);
        } else {
            decode_ms.push(ms);
        }
    }
    decode_ms.sort_by(f64::total_cmp);
    let encode_p50 = {
        let mut e = encode_ms.clone();
        e.sort_by(f64::total_cmp);
        percentile(&e, 50.0)
    };
    let (p50, p95) = (percentile(&decode_ms, 50.0), percentile(&decode_ms, 95.0));
    let m = &engine.manifest;
    let started = Instant::now();
    let profile = if args.profile > 0 {
        let prompts = Prompts {
            points_image: vec![([w / 2.0, h / 2.0], true)],
            ..Prompts::default()
        };
        let clock = || ms_since(started);
        Some(engine.profile_decode(&embedding, &prompts, args.profile, &clock)?)
    } else {
        None
    };
    let profile_text = profile
        .as_ref()
        .map(|rows| format!("\n{}", profile_table(rows, 20)))
        .unwrap_or_default();
    Ok(Report {
        ok: true,
        json: json!({
            "ok": true, "model": m.id, "variant": args.variant, "threads": 1,
            "image": [image.width(), image.height()], "input_size": m.input_size,
            "windows": embedding.windows.len(),
            "load_ms": load_ms, "encode_ms": encode_ms, "encode_p50_ms": encode_p50,
            "first_decode_ms": first_decode_ms, "decode_p50_ms": p50, "decode_p95_ms": p95,
            "decodes": decode_ms.len(), "decode_profile": profile,
        }),
        human: format!(
            "model {} ({}, decoder {}), image {}x{} -> input {} ({} window{})\n  load   {load_ms:8.1} ms\n  encode {encode_p50:8.1} ms p50 over {} runs\n  decode {p50:8.1} ms p50, {p95:.1} ms p95 over {} single clicks (first: {:.1} ms), incl. mask to image size",
            m.id, m.family, args.variant, image.width(), image.height(), m.input_size,
            embedding.windows.len(), if embedding.windows.len() == 1 { "" } else { "s" },
            encode_ms.len(), decode_ms.len(), first_decode_ms.unwrap_or(f64::NAN)
        ) + &profile_text,
    })
}
