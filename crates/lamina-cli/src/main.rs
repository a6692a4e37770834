//! `lamina`: validate label bundles, export COCO and other tools' formats, import instance-mask tile sets
//! and other tools' labels.
//!
//! Every subcommand takes `--json` for scripts: exactly one JSON object on stdout (`"ok": false` plus
//! the error on failure). Errors also go to stderr, and the exit code is 1 on any failure.

#[cfg(feature = "models")]
mod bench;
#[cfg(feature = "models")]
mod bench_catalog;
#[cfg(feature = "models")]
mod eval;
mod import;
mod interop;
#[cfg(feature = "models")]
mod predict;
mod runs;
#[cfg(feature = "models")]
mod similar;
#[cfg(feature = "sync")]
mod sync;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use serde_json::json;

use lamina_core::bundle::{parse_bundle, Bundle, BundleError};
use lamina_core::coco::{bundle_to_coco, CocoOptions};
use lamina_core::review::Stage;

#[derive(Parser)]
#[command(
    name = "lamina",
    version,
    about = "Lamina label bundles from the command line"
)]
struct Cli {
    /// Print one JSON object on stdout instead of human-readable text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Work with label bundles.
    #[command(subcommand)]
    Bundle(BundleCommand),
    /// Export a bundle to another format.
    #[command(subcommand)]
    Export(ExportCommand),
    /// Build a bundle from a tile set with 16-bit instance masks (the format of shared/data/FORMAT.md).
    ImportMasks(import::ImportArgs),
    /// Add labels from QuPath GeoJSON, Labelbox NDJSON, CVAT (XML or COCO 1.0), COCO or Label Studio JSON
    /// to a bundle's images. Prints what it will do first; images with labels are left alone unless
    /// --existing says otherwise.
    Import(interop::ImportArgs),
    /// Model runs: a bundle frozen with a train / validation / test split, exported for training.
    #[command(subcommand)]
    Run(RunCommand),
    /// Measure predictions against labels: P/R/F1, IoU, Dice, PQ (bPQ, mPQ), AJI, COCO mAP and AP50
    /// (definitions in docs/model-runs.md).
    Metrics(runs::MetricsArgs),
    /// Pre-labels: every nucleus of each image found by a model's automatic mode (or `classical`),
    /// written as a bundle that `lamina metrics` scores.
    #[cfg(feature = "models")]
    Predict(predict::PredictArgs),
    /// Benchmarks (print figures; assert nothing).
    #[cfg(feature = "models")]
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Quality benchmarks of segment suggestions on a tile set with ground truth.
    #[cfg(feature = "models")]
    #[command(subcommand)]
    Eval(EvalCommand),
    /// Team sync with an S3 or WebDAV-style endpoint: the protocol the app uses (docs/sync.md).
    #[cfg(feature = "sync")]
    #[command(subcommand)]
    Sync(sync::SyncCommand),
}

#[cfg(feature = "models")]
#[derive(Subcommand)]
enum EvalCommand {
    /// Simulated clicks on every nucleus: NoC@85/90, NoF@85/90, mIoU after 1/3/5 clicks, box IoU
    /// (tight and +2 px), per size bucket and border contact, ms per prediction.
    Noc(eval::EvalNocArgs),
    /// Find-similar quality: precision@k of a metadata field (organ) with each tile of one set as the
    /// anchor and another set ranked, for the model's pooled embedding, a colour histogram and random.
    Similar(similar::EvalSimilarArgs),
}

#[cfg(feature = "models")]
#[derive(Subcommand)]
enum BenchCommand {
    /// Native timings of a SAM-family model: load, encode, decode p50/p95.
    Sam(bench::BenchSamArgs),
    /// The catalog over many generated images: rows, layered filters, chart counts, a slice.
    Catalog(bench_catalog::BenchCatalogArgs),
}

#[derive(Subcommand)]
enum RunCommand {
    /// A zip with the run's bundle (each image's split), COCO per split and a YOLO-seg dataset.
    Export(runs::RunExportArgs),
}

#[derive(Subcommand)]
enum BundleCommand {
    /// Check a bundle: JSON, references, masks, areas and boxes. Lists every problem.
    Validate { file: PathBuf },
}

#[derive(Subcommand)]
enum ExportCommand {
    /// COCO instance segmentation (RLE by default; pycocotools reads it back exactly).
    Coco {
        bundle: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Write simplified polygons instead of RLE (lossy; holes are filled).
        #[arg(long)]
        polygons: bool,
        /// Douglas–Peucker tolerance for --polygons, in image pixels.
        #[arg(long, default_value_t = 0.5)]
        tolerance: f64,
        /// Only the images at this review stage (to_label, in_review, rework, done, skipped).
        #[arg(long, value_parser = Stage::parse)]
        stage: Option<Stage>,
    },
    /// QuPath GeoJSON: one `<image name without extension>.geojson` per image (holes kept).
    Geojson(interop::GeojsonArgs),
    /// Labelbox NDJSON import lines, with a composite mask PNG per image (or --polygons).
    Ndjson(interop::NdjsonArgs),
    /// Label Studio JSON tasks with brush (RLE) regions, exact.
    Labelstudio(interop::LabelStudioArgs),
    /// A bundle of the images at one review stage (e.g. `--stage done`), with their labels and history.
    Bundle {
        bundle: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, value_parser = Stage::parse)]
        stage: Stage,
    },
}

/// What a command has to say: `json` for --json, `human` otherwise. Failures that are results (an
/// invalid bundle) rather than errors set `ok: false`.
pub struct Report {
    pub ok: bool,
    pub json: serde_json::Value,
    pub human: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Bundle(BundleCommand::Validate { file }) => validate(&file),
        Command::Export(ExportCommand::Coco {
            bundle,
            out,
            polygons,
            tolerance,
            stage,
        }) => export_coco(&bundle, &out, polygons, tolerance, stage),
        Command::Export(ExportCommand::Bundle { bundle, out, stage }) => {
            export_bundle(&bundle, &out, stage)
        }
        Command::ImportMasks(args) => import::run(&args, cli.json),
        Command::Import(args) => interop::import(&args),
        Command::Export(ExportCommand::Geojson(args)) => interop::export_geojson(&args),
        Command::Export(ExportCommand::Ndjson(args)) => interop::export_ndjson(&args),
        Command::Export(ExportCommand::Labelstudio(args)) => interop::export_labelstudio(&args),
        Command::Run(RunCommand::Export(args)) => runs::export(&args),
        Command::Metrics(args) => runs::metrics(&args),
        #[cfg(feature = "models")]
        Command::Predict(args) => predict::run(&args),
        #[cfg(feature = "models")]
        Command::Bench(BenchCommand::Sam(args)) => bench::run(&args),
        #[cfg(feature = "models")]
        Command::Bench(BenchCommand::Catalog(args)) => bench_catalog::run(&args),
        #[cfg(feature = "models")]
        Command::Eval(EvalCommand::Noc(args)) => eval::run(&args, cli.json),
        #[cfg(feature = "models")]
        Command::Eval(EvalCommand::Similar(args)) => similar::run(&args),
        #[cfg(feature = "sync")]
        Command::Sync(command) => sync::run(&command),
    };
    match result {
        Ok(report) => {
            if cli.json {
                println!("{}", report.json);
            } else if report.ok {
                println!("{}", report.human);
            } else {
                eprintln!("{}", report.human);
            }
            if report.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            if cli.json {
                println!("{}", json!({ "ok": false, "error": format!("{e:#}") }));
            }
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn validate(file: &Path) -> Result<Report> {
    let text = read_text(file)?;
    Ok(match parse_bundle(&text) {
        Ok(b) => Report {
            ok: true,
            json: json!({
                "ok": true,
                "assets": b.assets.len(),
                "instances": b.instances.len(),
                "classes": b.ontology.classes.len(),
                "review_events": b.review.len(),
                "stages": stage_counts(&b),
            }),
            human: format!(
                "OK: {} is a valid bundle: {} assets, {} instances, {} classes, {} review events; stages: {}",
                file.display(),
                b.assets.len(),
                b.instances.len(),
                b.ontology.classes.len(),
                b.review.len(),
                stage_counts(&b)
                    .iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
        Err(e) => {
            let problems = match e {
                BundleError::Invalid(problems) => problems,
                other => vec![other.to_string()],
            };
            Report {
                ok: false,
                json: json!({ "ok": false, "problems": problems }),
                human: format!(
                    "INVALID: {} has {} problem(s):\n  {}",
                    file.display(),
                    problems.len(),
                    problems.join("\n  ")
                ),
            }
        }
    })
}

fn read_valid_bundle(path: &Path) -> Result<Bundle> {
    parse_bundle(&read_text(path)?)
        .with_context(|| format!("{} is not a valid bundle", path.display()))
}

/// `{"done": 3, ...}` for every stage.
fn stage_counts(b: &Bundle) -> serde_json::Map<String, serde_json::Value> {
    Stage::ALL
        .into_iter()
        .map(|s| {
            let n = b.assets.iter().filter(|a| a.stage == s).count();
            (s.key().to_owned(), json!(n))
        })
        .collect()
}

fn export_bundle(bundle: &Path, out: &Path, stage: Stage) -> Result<Report> {
    let b = read_valid_bundle(bundle)?.only_stage(stage);
    std::fs::write(out, b.to_json_pretty())
        .with_context(|| format!("cannot write {}", out.display()))?;
    Ok(Report {
        ok: true,
        json: json!({
            "ok": true,
            "out": out.display().to_string(),
            "stage": stage.key(),
            "assets": b.assets.len(),
            "instances": b.instances.len(),
        }),
        human: format!(
            "Wrote the {} image(s) at stage {} to {} ({} instances)",
            b.assets.len(),
            stage.key(),
            out.display(),
            b.instances.len()
        ),
    })
}

fn export_coco(
    bundle: &Path,
    out: &Path,
    polygons: bool,
    tolerance: f64,
    stage: Option<Stage>,
) -> Result<Report> {
    if !(tolerance.is_finite() && tolerance >= 0.0) {
        bail!("--tolerance must be a number ≥ 0 (image pixels), got {tolerance}");
    }
    let mut b = read_valid_bundle(bundle)?;
    if let Some(stage) = stage {
        b = b.only_stage(stage);
    }
    let coco = bundle_to_coco(
        &b,
        &CocoOptions {
            polygons,
            tolerance,
        },
    )?;
    std::fs::write(out, coco.to_json())
        .with_context(|| format!("cannot write {}", out.display()))?;
    let form = if polygons { "polygons" } else { "rle" };
    Ok(Report {
        ok: true,
        json: json!({
            "ok": true,
            "out": out.display().to_string(),
            "segmentation": form,
            "images": coco.images.len(),
            "annotations": coco.annotations.len(),
            "categories": coco.categories.len(),
        }),
        human: format!(
            "Wrote COCO ({form}) to {}: {} images, {} annotations, {} categories",
            out.display(),
            coco.images.len(),
            coco.annotations.len(),
            coco.categories.len()
        ),
    })
}
