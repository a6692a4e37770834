//! `lamina eval noc`: the simulated-click benchmark (`../shared/docs/interactive-eval.md`) of a model
//! through the same engine path the browser's worker uses, or of the classical baseline.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use image::RgbImage;
use lamina_core::mask::Mask;
use lamina_eval::classical::{Classical, ClassicalParams};
use lamina_eval::{Click, DataSet, EvalReport, InteractiveSegmenter, LowRes, Prediction, Summary};
use lamina_sam::{load_dir, Embedding, ModelManifest, Prompts, SamEngine};

use crate::Report;

/// The model the app serves by default (scripts/build-web copies it to dist/models/default). One
/// place to change when a trained default ships.
pub const DEFAULT_MODEL_DIR: &str = "models/nuclei-v3";
/// `--model` value that selects the classical baseline instead of a model folder.
const CLASSICAL: &str = "classical";

#[derive(Args)]
pub struct EvalNocArgs {
    /// Tile set: a folder with manifest.json, images and 16-bit instance masks (shared/data/FORMAT.md).
    #[arg(long)]
    data: PathBuf,
    /// A Lamina model folder (manifest.json + ONNX files), or `classical` for the no-learning baseline
    /// (colour deconvolution, Otsu threshold, click-seeded geodesic watershed).
    #[arg(long, default_value = DEFAULT_MODEL_DIR)]
    model: String,
    /// Evaluate only the first N tiles of the manifest (in manifest order), every instance of each.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    limit: Option<u64>,
}

/// A model folder loaded with its preferred decoder, as the worker loads it.
pub fn load_engine(dir: &Path) -> Result<SamEngine> {
    let manifest_path = dir.join("manifest.json");
    let text = std::fs::read_to_string(&manifest_path)
        .with_context(|| format!("cannot read model manifest {}", manifest_path.display()))?;
    let variant = ModelManifest::parse(&text)
        .with_context(|| format!("{} is not a model manifest", manifest_path.display()))?
        .preferred_decoder()
        .variant;
    load_dir(dir, variant).with_context(|| format!("cannot load the model in {}", dir.display()))
}

/// A SAM-family model driven as `lamina-worker` drives it: its preferred decoder variant, clicks at
/// pixel centres in image pixels, the previous low-res logits fed back, `SamEngine::mask` for the mask.
struct SamSegmenter {
    engine: SamEngine,
    embedding: Option<Embedding>,
}

impl SamSegmenter {
    fn load(dir: &Path) -> Result<SamSegmenter> {
        Ok(SamSegmenter {
            engine: load_engine(dir)?,
            embedding: None,
        })
    }

    fn decode(&self, prompts: &Prompts, pick_best: bool) -> Result<(Mask, LowRes)> {
        let embedding = self
            .embedding
            .as_ref()
            .context("predict before set_image")?;
        let decoded = self.engine.decode(embedding, prompts)?;
        // `best` is SAM's multimask choice for a lone click (highest predicted IoU); otherwise the
        // single-mask output 0.
        let index = if pick_best { decoded.best } else { 0 };
        let chosen = decoded
            .candidates
            .get(index)
            .context("the decoder returned no mask")?;
        let mask = self.engine.mask(chosen, &decoded.transform);
        Ok((mask, LowRes(chosen.low_res_logits.clone())))
    }
}

impl InteractiveSegmenter for SamSegmenter {
    fn id(&self) -> String {
        self.engine.manifest.id.clone()
    }

    fn set_image(&mut self, rgb: &RgbImage) -> Result<()> {
        self.embedding = Some(self.engine.encode(rgb)?);
        Ok(())
    }

    fn predict(
        &mut self,
        clicks: &[Click],
        prev_low_res: Option<&LowRes>,
        multimask_allowed: bool,
    ) -> Result<Prediction> {
        let prompts = Prompts {
            points_image: clicks
                .iter()
                .map(|c| (c.centre_image(), c.positive))
                .collect(),
            box_image: None,
            mask_input_low_res: prev_low_res.map(|l| l.0.clone()),
        };
        let (mask_image, low_res) = self.decode(&prompts, multimask_allowed)?;
        Ok(Prediction {
            mask_image,
            low_res: Some(low_res),
        })
    }

    fn predict_box(&mut self, box_xyxy_image: [f64; 4]) -> Result<Mask> {
        let prompts = Prompts {
            box_image: Some(box_xyxy_image),
            ..Prompts::default()
        };
        Ok(self.decode(&prompts, false)?.0)
    }
}

fn figure(v: f64) -> String {
    if v.is_nan() {
        "-".into()
    } else {
        format!("{v:.3}")
    }
}

fn table(r: &EvalReport) -> String {
    let mut out = format!(
        "model {} on {} ({} tiles, {} instances)\n{:<14}{:>6}{:>8}{:>8}{:>7}{:>7}{:>8}{:>8}{:>8}{:>8}{:>8}\n",
        r.model, r.data, r.n_tiles, r.overall.n_instances,
        "group", "n", "NoC@85", "NoC@90", "NoF@85", "NoF@90", "mIoU@1", "mIoU@3", "mIoU@5", "box", "box+2"
    );
    let mut row = |name: &str, s: &Summary| {
        out.push_str(&format!(
            "{name:<14}{:>6}{:>8}{:>8}{:>7}{:>7}{:>8}{:>8}{:>8}{:>8}{:>8}\n",
            s.n_instances,
            figure(s.noc85),
            figure(s.noc90),
            s.nof85,
            s.nof90,
            figure(s.miou1),
            figure(s.miou3),
            figure(s.miou5),
            figure(s.box_iou),
            figure(s.box_iou_loose)
        ));
    };
    row("all", &r.overall);
    for (name, key) in [
        ("area < 200", "area_lt_200"),
        ("area 200-600", "area_200_600"),
        ("area > 600", "area_gt_600"),
    ] {
        if let Some(s) = r.by_size.get(key) {
            row(name, s);
        }
    }
    for (name, key) in [("on border", "touching"), ("off border", "not_touching")] {
        if let Some(s) = r.by_border.get(key) {
            row(name, s);
        }
    }
    out.push_str(&format!(
        "{:.2} ms per prediction ({} predictions), {:.1} ms per image to prepare (embedding)",
        r.ms_per_prediction, r.n_predictions, r.ms_per_image
    ));
    out
}

pub fn run(args: &EvalNocArgs, json: bool) -> Result<Report> {
    let data = DataSet::open(&args.data)?;
    let mut segmenter: Box<dyn InteractiveSegmenter> = if args.model == CLASSICAL {
        Box::new(Classical::new(ClassicalParams::default()))
    } else {
        Box::new(SamSegmenter::load(Path::new(&args.model))?)
    };
    let limit = args.limit.map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    let (report, _) = lamina_eval::evaluate(segmenter.as_mut(), &data, limit, |done, n, id| {
        if !json {
            eprintln!("[{done}/{n}] {id}");
        }
    })?;
    let mut value = serde_json::to_value(&report)?;
    if let Some(obj) = value.as_object_mut() {
        obj.insert("ok".into(), true.into());
    }
    Ok(Report {
        ok: true,
        json: value,
        human: table(&report),
    })
}
