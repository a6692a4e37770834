//! `lamina run export` and `lamina metrics`: the model-run zip and the metrics of a model's predictions,
//! from `lamina-runs`, the code the app runs (docs/model-runs.md).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use lamina_runs::evaluate::run_metrics;
use lamina_runs::export::RunZipWriter;
use lamina_runs::metrics::{Report as MetricsReport, Thresholds};
use lamina_runs::predictions::{
    read_predictions_file, read_yolo_predictions, ImportSummary, Unmapped,
};
use lamina_runs::run::{make_run, Prediction, RunSpec};
use lamina_runs::split::{Split, SplitFractions};
use serde_json::json;

use crate::{read_text, read_valid_bundle, Report};

#[derive(Args)]
pub struct RunExportArgs {
    /// The label bundle to freeze into a run (e.g. a project's export).
    bundle: PathBuf,
    /// Folder holding the images, found by each image's file name; without it the zip has no images.
    #[arg(long)]
    images: Option<PathBuf>,
    #[arg(long)]
    out: PathBuf,
    /// Seed of the split: the same seed and images always give the same split.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Train, validation and test shares.
    #[arg(long, default_value = "80,10,10")]
    split: String,
    /// Split each value of this metadata field on its own (e.g. organ).
    #[arg(long)]
    stratify: Option<String>,
    #[arg(long, default_value = "run")]
    name: String,
    #[arg(long, default_value = "")]
    description: String,
}

pub fn export(args: &RunExportArgs) -> Result<Report> {
    let bundle = read_valid_bundle(&args.bundle)?;
    let fractions = SplitFractions::parse(&args.split).map_err(anyhow::Error::msg)?;
    let spec = RunSpec {
        name: args.name.clone(),
        description: args.description.clone(),
        seed: args.seed,
        fractions,
        stratify: args.stratify.clone(),
    };
    let created = now();
    let (info, run_bundle) = make_run(&bundle, &spec, &format!("run-{}", args.seed), &created);
    let mut zip = RunZipWriter::new(&info, &run_bundle)?;
    if let Some(dir) = &args.images {
        for asset in &run_bundle.assets {
            let path = dir.join(&asset.name);
            let bytes = std::fs::read(&path)
                .with_context(|| format!("cannot read image {} (from --images)", path.display()))?;
            zip.add_image(asset, &bytes)?;
        }
    }
    let (loss, images) = (zip.loss.clone(), zip.images_written);
    let bytes = zip.finish()?;
    std::fs::write(&args.out, &bytes)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    let counts: Vec<String> = info
        .counts
        .iter()
        .map(|(s, n)| format!("{} {n}", s.as_str()))
        .collect();
    Ok(Report {
        ok: true,
        json: json!({
            "ok": true,
            "out": args.out.display().to_string(),
            "counts": info.counts,
            "images_written": images,
            "yolo_multi_piece": loss.multi_piece,
            "yolo_with_holes": loss.with_holes,
        }),
        human: format!(
            "Wrote {}: {} ({images} image files); YOLO polygons: {} instances in several pieces written as their largest, {} with holes written filled",
            args.out.display(),
            counts.join(", "),
            loss.multi_piece,
            loss.with_holes
        ),
    })
}

/// Now, as the app writes times (RFC 3339, UTC).
fn now() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

#[derive(Args)]
pub struct MetricsArgs {
    /// The labels: a bundle (a run's bundle.json or any export).
    #[arg(long)]
    gt: PathBuf,
    /// The predictions: a COCO results JSON (ids of `lamina export coco` of the same bundle), a folder
    /// or zip of YOLO-seg .txt files, or a bundle.
    #[arg(long)]
    pred: PathBuf,
    /// A pair matches when its IoU is strictly above this.
    #[arg(long, default_value_t = 0.5)]
    iou: f64,
    /// Predictions scoring below this are dropped.
    #[arg(long, default_value_t = 0.0)]
    score: f64,
    /// Only the images of this split (train, val or test) of a run's bundle.
    #[arg(long)]
    split: Option<String>,
    /// Leave out predictions whose class is not in the ontology instead of refusing the file.
    #[arg(long)]
    drop_unmapped: bool,
}

pub fn read_predictions(
    path: &Path,
    truth: &lamina_core::bundle::Bundle,
    unmapped: Unmapped,
) -> Result<(Vec<Prediction>, ImportSummary)> {
    let read = if path.is_dir() {
        let mut files = Vec::new();
        for entry in
            std::fs::read_dir(path).with_context(|| format!("cannot list {}", path.display()))?
        {
            let p = entry?.path();
            if p.extension().is_some_and(|e| e.eq_ignore_ascii_case("txt")) {
                files.push((p.display().to_string(), read_text(&p)?));
            }
        }
        files.sort();
        read_yolo_predictions(&files, truth, unmapped)
    } else {
        // A zip, one .txt, or JSON (COCO results or a bundle), as the app reads them.
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        read_predictions_file(&path.display().to_string(), &bytes, truth, unmapped)
    };
    read.with_context(|| format!("{}", path.display()))
}

pub fn metrics(args: &MetricsArgs) -> Result<Report> {
    if !(args.iou.is_finite() && (0.0..1.0).contains(&args.iou)) {
        bail!("--iou must be at least 0 and below 1, got {}", args.iou);
    }
    if !(args.score.is_finite() && (0.0..=1.0).contains(&args.score)) {
        bail!("--score must be from 0 to 1, got {}", args.score);
    }
    let only = match &args.split {
        None => None,
        Some(s) => Some(
            Split::parse(s).with_context(|| format!("--split {s:?}: use train, val or test"))?,
        ),
    };
    let truth = read_valid_bundle(&args.gt)?;
    let unmapped = if args.drop_unmapped {
        Unmapped::Drop
    } else {
        Unmapped::Refuse
    };
    let (predictions, summary) = read_predictions(&args.pred, &truth, unmapped)?;
    let started = Instant::now();
    let report = run_metrics(
        &truth,
        &predictions,
        only,
        Thresholds {
            iou: args.iou,
            score: args.score,
        },
    )?;
    let seconds = started.elapsed().as_secs_f64();
    let mut value = serde_json::to_value(&report)?;
    if let Some(o) = value.as_object_mut() {
        o.insert("ok".into(), json!(true));
        o.insert("dropped_unmapped".into(), json!(summary.dropped_unmapped));
        o.insert("seconds".into(), json!(seconds));
    }
    Ok(Report {
        ok: true,
        json: value,
        human: human(&report, &summary, seconds),
    })
}

fn opt(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.4}")).unwrap_or_else(|| "-".into())
}

fn human(r: &MetricsReport, summary: &ImportSummary, seconds: f64) -> String {
    let o = &r.overall;
    let mut out = format!(
        "{} truth, {} predictions (score ≥ {}, IoU > {}), {} images, {:.2} s\n",
        o.n_gt,
        o.n_pred,
        r.score_threshold,
        r.iou_threshold,
        r.images.len(),
        seconds
    );
    for (name, n) in &summary.dropped_unmapped {
        out.push_str(&format!(
            "left out: {n} predictions of {name} (not in the ontology)\n"
        ));
    }
    out.push_str(&format!(
        "{:<28} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6}\n",
        "class", "P", "R", "F1", "IoU", "Dice", "PQ", "AJI", "mAP", "AP50"
    ));
    let mut row = |name: &str, f: &lamina_runs::metrics::Figures| {
        out.push_str(&format!(
            "{:<28} {:>6.4} {:>6.4} {:>6.4} {:>6.4} {:>6.4} {:>6.4} {:>6} {:>6} {:>6}\n",
            name,
            f.precision,
            f.recall,
            f.f1,
            f.mean_iou,
            f.dice,
            f.pq,
            opt(f.aji),
            opt(f.map),
            opt(f.ap50)
        ));
    };
    row("all", o);
    for (name, f) in &r.classes {
        row(name, f);
    }
    out.push_str(&format!("bPQ {}  mPQ {}", opt(r.bpq), opt(r.mpq)));
    out
}
