//! `lamina predict`: pre-labels for a folder of images or a tile set, with the automatic mode of a
//! Lamina or SAM-family model (the engine the worker runs), a YOLOv8/YOLO11-seg ONNX export, or the
//! classical baseline. The result is a bundle of `pre_label` instances that `lamina metrics` scores and
//! the app imports.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use image::RgbImage;
use serde_json::json;
use sha2::{Digest, Sha256};

use lamina_core::bundle::{Bundle, BundleProject};
use lamina_core::labels::{
    Asset, ClassDef, Instance, InstanceStatus, LabelStatus, Ontology, Provenance, Tool,
};
use lamina_core::prelabel::YOLO_FAMILY;
use lamina_core::rle::Rle;
use lamina_core::view::is_image_file_name;
use lamina_eval::classical::{Classical, ClassicalParams};
use lamina_eval::segmenter::InteractiveSegmenter;
use lamina_sam::auto::{segment_all, AutoOptions};
use lamina_sam::yolo::YoloSeg;

use crate::eval::{load_engine, DEFAULT_MODEL_DIR};
use crate::import::{hex, tile_set_ontology};
use crate::Report;

#[derive(Args)]
pub struct PredictArgs {
    /// A Lamina or SAM-family model folder, a YOLO-seg `.onnx` export (its classes become the bundle's,
    /// by name), or `classical` (hematoxylin threshold + watershed).
    #[arg(long, default_value = DEFAULT_MODEL_DIR)]
    model: String,
    /// A folder of images, or a tile set (a folder with manifest.json, shared/data/FORMAT.md).
    #[arg(long)]
    data: PathBuf,
    /// The bundle of pre-labels to write.
    #[arg(long)]
    out: PathBuf,
    /// Only the first N images.
    #[arg(long)]
    limit: Option<usize>,
    /// Lowest score kept (default: predicted IoU 0.4 for nuclei models, 0.88 for SAM; class score 0.25 for
    /// YOLO-seg).
    #[arg(long)]
    min_score: Option<f32>,
    /// Masks overlapping a better one by more than this IoU are dropped.
    #[arg(long)]
    nms_iou: Option<f64>,
    /// Smallest instance, in image pixels.
    #[arg(long)]
    min_area: Option<u64>,
    /// Nuclei models: the least summed foreground probability of the votes at a seed.
    #[arg(long)]
    min_votes: Option<f32>,
}

/// The images to predict on: `(id, path relative to the data folder)`.
fn images(data: &Path) -> Result<Vec<(String, String)>> {
    let manifest = data.join("manifest.json");
    if manifest.is_file() {
        let set = lamina_eval::dataset::DataSet::open(data)?;
        return Ok(set.items.into_iter().map(|i| (i.id, i.image)).collect());
    }
    let mut out: Vec<(String, String)> = std::fs::read_dir(data)
        .with_context(|| format!("cannot list {}", data.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| is_image_file_name(name))
        .map(|name| {
            (
                name.rsplit_once('.')
                    .map_or(name.clone(), |(s, _)| s.to_owned()),
                name,
            )
        })
        .collect();
    out.sort();
    if out.is_empty() {
        bail!(
            "{} holds no PNG, JPEG or TIFF image and no manifest.json",
            data.display()
        );
    }
    Ok(out)
}

enum Predictor {
    Model(Box<lamina_sam::SamEngine>, AutoOptions),
    Yolo(Box<YoloSeg>, AutoOptions),
    Classical(Classical, u64),
}

/// One instance found: its mask, class id and score.
type Found = (lamina_core::mask::Mask, String, f32);

impl Predictor {
    fn id(&self) -> String {
        match self {
            Predictor::Model(engine, _) => engine.manifest.id.clone(),
            Predictor::Yolo(model, _) => model.file.clone(),
            Predictor::Classical(..) => "classical-auto".into(),
        }
    }

    /// The bundle's classes: the tile sets' (PanNuke + `nucleus`), or the YOLO model's own names.
    fn ontology(&self) -> Ontology {
        match self {
            Predictor::Yolo(model, _) => Ontology {
                classes: model
                    .class_names
                    .iter()
                    .enumerate()
                    .map(|(k, name)| ClassDef {
                        id: name.clone(),
                        name: name.clone(),
                        color: PALETTE[k % PALETTE.len()].into(),
                    })
                    .collect(),
            },
            _ => tile_set_ontology(),
        }
    }

    fn predict(&mut self, rgb: &RgbImage) -> Result<Vec<Found>> {
        match self {
            Predictor::Model(engine, options) => {
                let embedding = engine.encode(rgb)?;
                Ok(segment_all(engine, &embedding, options, |_, _| {})?
                    .into_iter()
                    .map(|i| (i.mask_image, "nucleus".into(), i.score))
                    .collect())
            }
            Predictor::Yolo(model, options) => Ok(model
                .segment_all(rgb, options)?
                .into_iter()
                .map(|i| (i.mask_image, model.class_names[i.class].clone(), i.score))
                .collect()),
            Predictor::Classical(classical, min_area) => {
                classical.set_image(rgb)?;
                Ok(classical
                    .segment_all(*min_area)
                    .into_iter()
                    .map(|m| (m, "nucleus".into(), 1.0))
                    .collect())
            }
        }
    }
}

/// Colours for a YOLO model's classes, in order.
const PALETTE: [&str; 6] = [
    "#00e5ff", "#ff4081", "#76ff03", "#ffea00", "#d500f9", "#ff9100",
];

pub fn run(args: &PredictArgs) -> Result<Report> {
    let mut predictor = if args.model == "classical" {
        Predictor::Classical(
            Classical::new(ClassicalParams::default()),
            args.min_area.unwrap_or(20),
        )
    } else if args.model.ends_with(".onnx") {
        let path = Path::new(&args.model);
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let file = path
            .file_name()
            .map_or(args.model.clone(), |n| n.to_string_lossy().into_owned());
        let model = YoloSeg::load(&file, &bytes)?;
        let mut options = AutoOptions::for_family(YOLO_FAMILY);
        options.min_score = args.min_score.unwrap_or(options.min_score);
        options.nms_iou = args.nms_iou.unwrap_or(options.nms_iou);
        options.min_area = args.min_area.unwrap_or(options.min_area);
        Predictor::Yolo(Box::new(model), options)
    } else {
        let engine = load_engine(Path::new(&args.model))?;
        let mut options = AutoOptions::for_family(&engine.manifest.family);
        options.min_score = args.min_score.unwrap_or(options.min_score);
        options.nms_iou = args.nms_iou.unwrap_or(options.nms_iou);
        options.min_area = args.min_area.unwrap_or(options.min_area);
        options.min_votes = args.min_votes.unwrap_or(options.min_votes);
        Predictor::Model(Box::new(engine), options)
    };
    let model_id = predictor.id();
    let name = args
        .data
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut bundle = Bundle::new(
        BundleProject {
            id: name.clone(),
            name: name.clone(),
        },
        predictor.ontology(),
    );
    let mut ms = Vec::new();
    let list = images(&args.data)?;
    let list = &list[..args.limit.unwrap_or(usize::MAX).min(list.len())];
    for (n, (id, relative)) in list.iter().enumerate() {
        let path = args.data.join(relative);
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let rgb = image::load_from_memory(&bytes)
            .with_context(|| format!("cannot decode {}", path.display()))?
            .to_rgb8();
        let started = Instant::now();
        let found = predictor.predict(&rgb)?;
        ms.push(started.elapsed().as_secs_f64() * 1000.0);
        eprintln!("[{}/{}] {id}: {} instances", n + 1, list.len(), found.len());
        for (k, (mask, class_id, score)) in found.into_iter().enumerate() {
            let rle = Rle::from_mask(&mask);
            bundle.instances.push(Instance {
                id: format!("{id}/auto-{}", k + 1),
                asset_id: id.clone(),
                class_id,
                mask: rle.compress(),
                bbox: rle.bbox(),
                area: rle.area(),
                provenance: Provenance {
                    tool: Tool::PreLabel,
                    prompts: Vec::new(),
                    model_id: Some(model_id.clone()),
                    author: None,
                    created: "1970-01-01T00:00:00Z".into(),
                    updated: "1970-01-01T00:00:00Z".into(),
                    score: Some(score),
                },
                status: InstanceStatus::Draft,
            });
        }
        bundle.assets.push(Asset {
            id: id.clone(),
            name: Path::new(relative)
                .file_name()
                .map_or(relative.clone(), |n| n.to_string_lossy().into_owned()),
            sha256: hex(&Sha256::digest(&bytes)),
            width: rgb.width(),
            height: rgb.height(),
            metadata: Default::default(),
            uri: Some(relative.clone()),
            status: LabelStatus::InProgress,
            stage: Default::default(),
        });
    }
    std::fs::write(&args.out, bundle.to_json_pretty())
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    ms.sort_by(f64::total_cmp);
    let p50 = ms.get(ms.len() / 2).copied().unwrap_or(0.0);
    Ok(Report {
        ok: true,
        json: json!({"ok": true, "model": model_id, "images": bundle.assets.len(),
                     "instances": bundle.instances.len(), "ms_per_image_p50": p50}),
        human: format!(
            "{model_id}: {} instances on {} images ({p50:.0} ms per image, p50); wrote {}",
            bundle.instances.len(),
            bundle.assets.len(),
            args.out.display()
        ),
    })
}
