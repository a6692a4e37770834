//! `lamina export geojson|ndjson|labelstudio` and `lamina import`: labels to and from QuPath, Labelbox,
//! CVAT and Label Studio (the formats themselves are in `lamina-interop`; this reads and writes files).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::json;

use lamina_core::bundle::Bundle;
use lamina_core::labels::LabelStatus;
use lamina_core::review::Stage;
use lamina_interop::detect::{self, Format};
use lamina_interop::labelbox::{self, RgbImage};
use lamina_interop::labelstudio;
use lamina_interop::plan::{plan, Existing, ImportPlan, Origin, PlanOptions, Target};
use lamina_interop::qupath::{self, ObjectType};

use crate::{read_valid_bundle, Report};

#[derive(Args)]
pub struct GeojsonArgs {
    bundle: PathBuf,
    /// A folder: one `<image name without extension>.geojson` per image with labels.
    #[arg(long)]
    out: PathBuf,
    /// How QuPath treats the objects: detection (fast with thousands) or annotation (editable).
    #[arg(long, default_value = "detection", value_parser = ObjectType::parse)]
    object_type: ObjectType,
    /// Only the images at this review stage.
    #[arg(long, value_parser = Stage::parse)]
    stage: Option<Stage>,
}

#[derive(Args)]
pub struct NdjsonArgs {
    bundle: PathBuf,
    /// The NDJSON file; composite mask PNGs go to `masks/` beside it.
    #[arg(long)]
    out: PathBuf,
    /// Outlines instead of masks (simplified; holes are filled).
    #[arg(long)]
    polygons: bool,
    /// Douglas–Peucker tolerance for --polygons, in image pixels.
    #[arg(long, default_value_t = 0.5)]
    tolerance: f64,
    #[arg(long, value_parser = Stage::parse)]
    stage: Option<Stage>,
}

#[derive(Args)]
pub struct LabelStudioArgs {
    bundle: PathBuf,
    #[arg(long)]
    out: PathBuf,
    #[arg(long, value_parser = Stage::parse)]
    stage: Option<Stage>,
}

#[derive(Args)]
pub struct ImportArgs {
    /// The files (or folders of them, for QuPath's per-image GeoJSON).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// qupath, labelbox, cvat, coco or labelstudio; found from the files when left out.
    #[arg(long, value_parser = Format::parse)]
    format: Option<Format>,
    /// The bundle whose images the labels belong to (matched by sha256, then by file name).
    #[arg(long)]
    onto: PathBuf,
    /// The bundle with the imported labels added.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Images that already have labels: skip them, add beside their labels, or replace their labels.
    #[arg(long, default_value = "skip", value_parser = Existing::parse)]
    existing: Existing,
    /// Add the file's classes the project lacks, instead of skipping their labels.
    #[arg(long)]
    add_classes: bool,
    /// The class id for labels the file gives no class.
    #[arg(long)]
    unclassified: Option<String>,
    /// Print what the import would do, and write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Created/updated time written on every imported label.
    #[arg(long, default_value = "1970-01-01T00:00:00Z")]
    timestamp: String,
}

fn staged(path: &Path, stage: Option<Stage>) -> Result<Bundle> {
    let b = read_valid_bundle(path)?;
    Ok(match stage {
        Some(s) => b.only_stage(s),
        None => b,
    })
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

pub fn export_geojson(args: &GeojsonArgs) -> Result<Report> {
    let b = staged(&args.bundle, args.stage)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let mut files = 0;
    for asset in &b.assets {
        if !b.instances.iter().any(|i| i.asset_id == asset.id) {
            continue;
        }
        let text = qupath::write_image(&b, asset, args.object_type)?;
        write(&args.out.join(qupath::file_name_for(asset)), &text)?;
        files += 1;
    }
    Ok(done("QuPath GeoJSON", &args.out, files, b.instances.len()))
}

pub fn export_ndjson(args: &NdjsonArgs) -> Result<Report> {
    if !(args.tolerance.is_finite() && args.tolerance >= 0.0) {
        bail!(
            "--tolerance must be a number ≥ 0 (image pixels), got {}",
            args.tolerance
        );
    }
    let b = staged(&args.bundle, args.stage)?;
    let export = labelbox::write(&b, args.polygons, args.tolerance)?;
    write(&args.out, &export.ndjson)?;
    let dir = args.out.parent().unwrap_or(Path::new("."));
    for (relative, picture) in &export.composites {
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        image::save_buffer(
            &path,
            &picture.rgb,
            picture.width,
            picture.height,
            image::ExtendedColorType::Rgb8,
        )
        .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(done(
        "Labelbox NDJSON",
        &args.out,
        export.composites.len(),
        b.instances.len(),
    ))
}

pub fn export_labelstudio(args: &LabelStudioArgs) -> Result<Report> {
    let b = staged(&args.bundle, args.stage)?;
    write(&args.out, &labelstudio::write(&b)?)?;
    Ok(done(
        "Label Studio JSON",
        &args.out,
        b.assets.len(),
        b.instances.len(),
    ))
}

fn done(what: &str, out: &Path, files: usize, labels: usize) -> Report {
    Report {
        ok: true,
        json: json!({"ok": true, "out": out.display().to_string(), "files": files, "labels": labels}),
        human: format!(
            "Wrote {what} to {}: {labels} labels ({files} files or images)",
            out.display()
        ),
    }
}

/// The files to read: folders are opened one level deep (a QuPath export is a folder of GeoJSON).
fn expand(files: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for f in files {
        if f.is_dir() {
            let mut inside: Vec<_> = std::fs::read_dir(f)
                .with_context(|| format!("cannot list {}", f.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "geojson" || e == "json"))
                .collect();
            inside.sort();
            out.extend(inside);
        } else {
            out.push(f.clone());
        }
    }
    Ok(out)
}

/// The mask PNGs a Labelbox file names, read from beside it (a URL by its last part, under `masks/`).
fn labelbox_masks(file: &Path, text: &str) -> Result<HashMap<String, RgbImage>> {
    let dir = file.parent().unwrap_or(Path::new("."));
    let mut masks = HashMap::new();
    for uri in labelbox::mask_uris(text) {
        let name = lamina_interop::plan::file_name(&uri).to_owned();
        let candidates = [
            dir.join(&uri),
            dir.join(labelbox::MASK_DIR).join(&name),
            dir.join(&name),
        ];
        let Some(path) = candidates.iter().find(|p| p.is_file()) else {
            continue; // the import says which masks were missing
        };
        let picture = image::open(path)
            .with_context(|| format!("cannot decode mask {}", path.display()))?
            .to_rgb8();
        masks.insert(
            name,
            RgbImage {
                width: picture.width(),
                height: picture.height(),
                rgb: picture.into_raw(),
            },
        );
    }
    Ok(masks)
}

pub fn import(args: &ImportArgs) -> Result<Report> {
    let mut bundle = read_valid_bundle(&args.onto)?;
    let mut parts = Vec::new();
    let mut format_used = None;
    for file in expand(&args.files)? {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let format = match args.format.or_else(|| detect::detect(&name, &text)) {
            Some(f) => f,
            None => bail!("{}: not a QuPath, Labelbox, CVAT, COCO or Label Studio file; name it with --format", file.display()),
        };
        let masks = if format == Format::Labelbox {
            labelbox_masks(&file, &text)?
        } else {
            HashMap::new()
        };
        let labels = detect::read(format, &name, &text, &masks)
            .with_context(|| format!("{} ({}) not imported", file.display(), format.tool()))?;
        format_used.get_or_insert(format);
        parts.push(labels);
    }
    let Some(format) = format_used else {
        bail!("no file to import")
    };
    let foreign = detect::merge(parts);
    let mut labels_now = HashMap::new();
    for i in &bundle.instances {
        *labels_now.entry(i.asset_id.clone()).or_insert(0) += 1;
    }
    let options = PlanOptions {
        unclassified_to: args.unclassified.clone(),
        add_missing_classes: args.add_classes,
        class_map: Default::default(),
    };
    let plan = plan(
        &foreign,
        &Target {
            assets: &bundle.assets,
            ontology: &bundle.ontology,
            labels_now,
        },
        &options,
    );
    let summary = plan.summary();
    if args.dry_run {
        return Ok(report(&plan, &summary, None, &[]));
    }
    let Some(out) = &args.out else {
        bail!("say where to write the bundle with --out (or use --dry-run)")
    };
    let left = apply(&mut bundle, &plan, args, format)?;
    write(out, &bundle.to_json_pretty())?;
    Ok(report(&plan, &summary, Some(out), &left))
}

/// Writes the plan into the bundle; the names of labeled images left alone are returned.
fn apply(
    bundle: &mut Bundle,
    plan: &ImportPlan,
    args: &ImportArgs,
    format: Format,
) -> Result<Vec<String>> {
    bundle
        .ontology
        .classes
        .extend(plan.new_classes.iter().cloned());
    let mut taken: HashSet<String> = bundle.instances.iter().map(|i| i.id.clone()).collect();
    let mut n = 0;
    let new_id = || loop {
        n += 1;
        let id = format!("{}-{n}", format.key());
        if taken.insert(id.clone()) {
            break id;
        }
    };
    let origin = Origin {
        author: format.tool(),
        timestamp: &args.timestamp,
        model_id: None,
    };
    let (images, left) = plan.instances(args.existing, &origin, new_id);
    for image in images {
        if image.replace {
            bundle.instances.retain(|i| i.asset_id != image.asset_id);
        }
        bundle.instances.extend(image.instances);
        if let Some(asset) = bundle.assets.iter_mut().find(|a| a.id == image.asset_id) {
            if asset.status == LabelStatus::Unlabeled {
                asset.status = LabelStatus::InProgress;
            }
        }
    }
    // The result must be a bundle Lamina reads: check it as the app would.
    lamina_core::bundle::parse_bundle(&bundle.to_json())
        .context("the imported labels did not make a valid bundle")?;
    Ok(left)
}

fn report(plan: &ImportPlan, summary: &str, out: Option<&Path>, left: &[String]) -> Report {
    let mut human = summary.to_owned();
    if !left.is_empty() {
        human += &format!(
            "\nleft alone, as they already have labels ({}; --existing add or replace to change them): {}",
            left.len(),
            left.join(", ")
        );
    }
    match out {
        Some(out) => human += &format!("\nWrote {}", out.display()),
        None => human += "\n(dry run: nothing written)",
    }
    let classes: Vec<_> = plan
        .classes
        .iter()
        .map(|c| json!({"name": c.name, "class_id": c.class_id, "labels": c.instances}))
        .collect();
    Report {
        ok: true,
        json: json!({
            "ok": true,
            "images": plan.images.len(),
            "labels": plan.instance_count(),
            "classes": classes,
            "new_classes": plan.new_classes.iter().map(|c| &c.id).collect::<Vec<_>>(),
            "already_labeled": plan.already_labeled(),
            "left_alone": left,
            "skipped": plan.skipped,
            "out": out.map(|o| o.display().to_string()),
        }),
        human,
    }
}
