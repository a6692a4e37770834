//! `lamina import-masks`: a tile set with 16-bit instance masks (shared/data/FORMAT.md) → label bundle.
//!
//! The manifest is the only index: files are opened through `item.image` / `item.mask`, never found by
//! listing folders. Every item is checked and all problems are reported together.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use image::{DynamicImage, ImageReader};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use lamina_core::bundle::{validate, Bundle, BundleProject};
use lamina_core::labels::{
    Asset, ClassDef, Instance, InstanceStatus, LabelStatus, Ontology, Provenance, Tool,
};
use lamina_core::rle::encode_labels;

use crate::Report;

#[derive(Args)]
pub struct ImportArgs {
    /// The set's folder (holding manifest.json).
    dir: PathBuf,
    /// Write the bundle here (pretty JSON); stdout otherwise.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Import only the first N items (after --every).
    #[arg(long)]
    limit: Option<usize>,
    /// Take every Nth item, for a small set that still spans the organs (the demo uses it).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    every: u64,
    /// Class given to every instance (the masks carry no class).
    #[arg(long, default_value = "nucleus")]
    class_id: String,
    /// Prefix for asset URIs (a URL or a path); the manifest's image path is appended.
    #[arg(long)]
    image_base: Option<String>,
    /// Created/updated time written on every instance; fixed by default so imports are reproducible.
    #[arg(long, default_value = "1970-01-01T00:00:00Z")]
    timestamp: String,
}

/// The fields of a manifest item the import needs; the rest are read as metadata.
#[derive(Deserialize)]
struct Item {
    id: String,
    image: String,
    mask: String,
    width: Option<u32>,
    height: Option<u32>,
}

/// Item keys that are structure, not metadata.
const NOT_METADATA: [&str; 7] = [
    "id",
    "image",
    "mask",
    "width",
    "height",
    "instances",
    "source",
];

pub fn run(args: &ImportArgs, json_output: bool) -> Result<Report> {
    let bundle = import(args)?;
    let text = bundle.to_json_pretty();
    let instances = bundle.instances.len();
    let summary = format!(
        "Imported {} tiles and {instances} instances into project {:?}",
        bundle.assets.len(),
        bundle.project.id
    );
    let mut report = json!({
        "ok": true,
        "project": bundle.project.id,
        "assets": bundle.assets.len(),
        "instances": instances,
    });
    let Some(out) = &args.out else {
        // The bundle itself is the output (and already one JSON object for --json).
        if !json_output {
            eprintln!("{summary}");
        }
        return Ok(Report {
            ok: true,
            json: serde_json::from_str(&text)?,
            human: text,
        });
    };
    std::fs::write(out, text).with_context(|| format!("cannot write {}", out.display()))?;
    report["out"] = json!(out.display().to_string());
    Ok(Report {
        ok: true,
        json: report,
        human: format!("{summary}; wrote {}", out.display()),
    })
}

fn import(args: &ImportArgs) -> Result<Bundle> {
    let manifest_path = args.dir.join("manifest.json");
    if !args.dir.is_dir() {
        bail!("{} is not a folder", args.dir.display());
    }
    let text = std::fs::read_to_string(&manifest_path)
        .with_context(|| format!("cannot read {}", manifest_path.display()))?;
    let manifest: Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", manifest_path.display()))?;
    let items = manifest
        .get("items")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("{}: no \"items\" list", manifest_path.display()))?;
    let set = manifest
        .get("set")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();

    let ontology = tile_set_ontology();
    if ontology.class(&args.class_id).is_none() {
        let ids: Vec<&str> = ontology.classes.iter().map(|c| c.id.as_str()).collect();
        bail!(
            "--class-id {:?} is not a class; choose one of {}",
            args.class_id,
            ids.join(", ")
        );
    }
    // The folder name is the set's name in FORMAT.md ("nuinsseg-dev"); the manifest's `set` is only
    // "dev", which would collide across sources.
    let project_id = project_id(&args.dir, &set);
    let mut bundle = Bundle::new(
        BundleProject {
            id: project_id.clone(),
            name: project_id,
        },
        ontology,
    );

    let mut problems = Vec::new();
    for (i, raw) in items
        .iter()
        .step_by(args.every as usize)
        .take(args.limit.unwrap_or(usize::MAX))
        .enumerate()
    {
        let label = raw.get("id").and_then(Value::as_str).unwrap_or("?");
        match import_item(args, raw, &set) {
            Ok((asset, instances)) => {
                bundle.assets.push(asset);
                bundle.instances.extend(instances);
            }
            Err(e) => problems.push(format!("items[{i}] ({label}): {e:#}")),
        }
    }
    if !problems.is_empty() {
        bail!(
            "{} problem(s) in {}:\n  {}",
            problems.len(),
            args.dir.display(),
            problems.join("\n  ")
        );
    }
    // Belt and braces: never hand out a bundle our own validator rejects.
    let problems = validate(&bundle);
    if !problems.is_empty() {
        bail!(
            "the imported bundle is invalid:\n  {}",
            problems.join("\n  ")
        );
    }
    Ok(bundle)
}

fn project_id(dir: &Path, set: &str) -> String {
    let folder = dir
        .canonicalize()
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()));
    match folder {
        Some(name) if !name.is_empty() => name,
        _ if !set.is_empty() => set.to_owned(),
        _ => "import".to_owned(),
    }
}

fn import_item(args: &ImportArgs, raw: &Value, set: &str) -> Result<(Asset, Vec<Instance>)> {
    let item = Item::deserialize(raw).context("bad manifest item")?;
    let image_path = args.dir.join(&item.image);
    let bytes = std::fs::read(&image_path)
        .with_context(|| format!("cannot read image {}", image_path.display()))?;
    let (width, height) = ImageReader::new(Cursor::new(&bytes))
        .with_guessed_format()?
        .into_dimensions()
        .with_context(|| format!("cannot decode image {}", image_path.display()))?;
    if let (Some(w), Some(h)) = (item.width, item.height) {
        if (w, h) != (width, height) {
            bail!(
                "manifest says {w}x{h} but image {} is {width}x{height}",
                image_path.display()
            );
        }
    }
    let mask_path = args.dir.join(&item.mask);
    let (mask_width, mask_height, labels) = read_label_mask(&mask_path)?;
    if (mask_width, mask_height) != (width, height) {
        bail!(
            "mask {} is {mask_width}x{mask_height} but its image is {width}x{height}",
            mask_path.display()
        );
    }

    let author = raw
        .pointer("/source/dataset")
        .and_then(Value::as_str)
        .unwrap_or("import")
        .to_owned();
    let instances = encode_labels(width, height, &labels)?
        .into_iter()
        .map(|(n, rle)| Instance {
            id: format!("{}/{n}", item.id),
            asset_id: item.id.clone(),
            class_id: args.class_id.clone(),
            mask: rle.compress(),
            bbox: rle.bbox(),
            area: rle.area(),
            provenance: Provenance {
                tool: Tool::Import,
                prompts: Vec::new(),
                model_id: None,
                author: Some(author.clone()),
                created: args.timestamp.clone(),
                updated: args.timestamp.clone(),
                score: None,
            },
            status: InstanceStatus::Approved,
        })
        .collect();

    let name = Path::new(&item.image)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| item.image.clone());
    let asset = Asset {
        id: item.id.clone(),
        name,
        sha256: hex(&Sha256::digest(&bytes)),
        width,
        height,
        metadata: metadata(raw, set),
        uri: Some(uri(args.image_base.as_deref(), &item.image)),
        status: LabelStatus::Submitted,
        stage: Default::default(),
    };
    Ok((asset, instances))
}

/// Decode an instance mask: 16-bit (or 8-bit) single-channel, values used as they are. Other colour
/// types are refused, since converting them would change the instance ids.
fn read_label_mask(path: &Path) -> Result<(u32, u32, Vec<u16>)> {
    let img = ImageReader::open(path)
        .with_context(|| format!("cannot open mask {}", path.display()))?
        .with_guessed_format()?
        .decode()
        .with_context(|| format!("cannot decode mask {}", path.display()))?;
    let (w, h) = (img.width(), img.height());
    let labels = match img {
        DynamicImage::ImageLuma16(buf) => buf.into_raw(),
        DynamicImage::ImageLuma8(buf) => buf.into_raw().into_iter().map(u16::from).collect(),
        other => bail!(
            "mask {} is {:?}, expected single-channel 16-bit grayscale",
            path.display(),
            other.color()
        ),
    };
    Ok((w, h, labels))
}

/// Scalar item fields (organ, species, pannuke_tissue, magnification, ...) plus the set name. Nulls are
/// left out: "unknown" is already said by the key being absent.
fn metadata(raw: &Value, set: &str) -> BTreeMap<String, Value> {
    let mut out: BTreeMap<String, Value> = raw
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, v)| {
            !NOT_METADATA.contains(&k.as_str())
                && (v.is_string() || v.is_number() || v.is_boolean())
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !set.is_empty() {
        out.insert("set".into(), json!(set));
    }
    out
}

/// PanNuke's classes plus "Nucleus (unclassified)" (`nucleus`), which tile sets' masks and pre-labels
/// without a class use.
pub fn tile_set_ontology() -> Ontology {
    let mut ontology = Ontology::pannuke();
    ontology.classes.push(ClassDef {
        id: "nucleus".into(),
        name: "Nucleus (unclassified)".into(),
        color: "#00e5ff".into(),
    });
    ontology
}

/// `base` + the manifest's image path: joined with `/` for URLs, as a path otherwise.
pub fn uri(base: Option<&str>, image: &str) -> String {
    match base {
        None => image.to_owned(),
        Some(b) if b.contains("://") => format!("{}/{}", b.trim_end_matches('/'), image),
        Some(b) => Path::new(b).join(image).to_string_lossy().into_owned(),
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_joins_urls_with_slashes_and_paths_as_paths() {
        assert_eq!(uri(None, "images/a.png"), "images/a.png");
        assert_eq!(
            uri(Some("https://x.org/set/"), "images/a.png"),
            "https://x.org/set/images/a.png"
        );
        assert_eq!(
            uri(Some("/data/set"), "images/a.png"),
            "/data/set/images/a.png"
        );
    }

    #[test]
    fn metadata_keeps_scalars_and_the_set() {
        let raw = json!({"id": "t", "image": "i", "organ": "liver", "mpp": null, "n_nuclei": 3,
                         "source": {"dataset": "X"}, "instances": []});
        let m = metadata(&raw, "dev");
        assert_eq!(m.keys().collect::<Vec<_>>(), ["n_nuclei", "organ", "set"]);
    }
}
