//! The engine: loads an encoder and a decoder with tract, checks them against the I/O contract, and runs
//! them. One `encode` per image; any number of cheap `decode`s per embedding.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use lamina_core::mask::Mask;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::plan::{eval, SimpleState};

use crate::manifest::{DecoderVariant, ManifestError, ModelManifest};
use crate::postprocess::{image_logits_from_low_res, mask_from_logits, stability_score};
use crate::preprocess::model_input_from_window;
use crate::transform::{window_layout, ModelFromImage};

type Plan = Arc<TypedRunnableModel>;

const ENCODER_INPUTS: [&str; 1] = ["image"];
const ENCODER_OUTPUTS: [&str; 1] = ["image_embeddings"];
const DECODER_INPUTS: [&str; 5] = [
    "image_embeddings",
    "point_coords",
    "point_labels",
    "mask_input",
    "has_mask_input",
];
const DECODER_OUTPUTS: [&str; 2] = ["iou_predictions", "low_res_masks"];
/// Clicks [`SamEngine::warm_up`] decodes. In the worker, with one the first 30 real clicks after a load
/// took 14–19 ms p50; with 15 they took 9–14 ms, as later clicks do, for 0.2–0.4 s more load
/// (2026-11-30, nuclei-v3, `bench/browser_sam.mjs`).
const WARM_UP_CLICKS: usize = 15;

/// SAM's offset for the stability score (`calculate_stability_score`).
const STABILITY_OFFSET: f32 = 1.0;

#[derive(Debug, thiserror::Error)]
pub enum SamError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("{file} is not a model tract can load: {reason}")]
    Load { file: String, reason: String },
    #[error("{file} does not have the inputs and outputs of a {role}: {detail}")]
    Contract {
        file: String,
        role: &'static str,
        detail: String,
    },
    #[error("the manifest lists no {0:?} decoder")]
    NoDecoder(DecoderVariant),
    #[error("inference failed: {0}")]
    Run(String),
    #[error("bad prompt: {0}")]
    Prompt(String),
}

fn run_err(e: impl std::fmt::Display) -> SamError {
    SamError::Run(format!("{e:#}"))
}

/// An image's embedding: one per window the model sees it through (one for SAM-family models).
#[derive(Clone, Debug)]
pub struct Embedding {
    /// Of each window's embedding: `[1, C, E, E]`.
    pub shape: [usize; 4],
    pub windows: Vec<WindowEmbedding>,
}

/// One window's embedding with the transform it was computed under.
#[derive(Clone, Debug)]
pub struct WindowEmbedding {
    /// `[1, C, E, E]` row-major.
    pub values: Vec<f32>,
    pub transform: ModelFromImage,
}

/// What the user said, in image pixels.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Prompts {
    /// `(point, positive)`.
    pub points_image: Vec<([f64; 2], bool)>,
    /// `[x0, y0, x1, y1]`.
    pub box_image: Option<[f64; 4]>,
    /// The previous decode's low-res logits of the chosen mask, to refine it.
    pub mask_input_low_res: Option<Vec<f32>>,
}

#[derive(Clone, Debug)]
pub struct Candidate {
    pub iou_prediction: f32,
    /// Stability of the low-res logits (thresholds ± 1).
    pub stability: f32,
    pub low_res_logits: Vec<f32>,
    /// Present for the `orig_size` decoder, which upsamples itself.
    pub image_logits: Option<Vec<f32>>,
}

/// One graph node's share of a decode, from [`SamEngine::profile_decode`].
#[derive(Clone, Debug, serde::Serialize)]
pub struct NodeTime {
    pub name: String,
    pub op: String,
    /// The node's first output shape, as tract knows it in the optimised plan.
    pub shape: String,
    /// Mean milliseconds per decode.
    pub ms: f64,
}

#[derive(Clone, Debug)]
pub struct Decoded {
    /// The window the prompts were decoded in; [`SamEngine::mask`] needs it.
    pub transform: ModelFromImage,
    pub candidates: Vec<Candidate>,
    /// SAM's choice: for one click alone, the multimask output with the best predicted IoU; else output 0.
    pub best: usize,
}

struct Decoder {
    variant: DecoderVariant,
    file: String,
    bytes: Vec<u8>,
    /// Input index of each name in [`DECODER_INPUTS`] (+ `orig_im_size` last for `orig_size`).
    input_order: Vec<usize>,
    /// Output index of `iou_predictions`, `low_res_masks` (+ `masks`).
    output_order: Vec<usize>,
    /// The `low_res` plan, or one plan per pinned image size for `orig_size`, each with its run state:
    /// a fresh state per decode re-allocates every node's scratch space, which in wasm cost as much as
    /// the graph itself (17 of 37 ms for nuclei-v2).
    plans: Mutex<HashMap<(u32, u32), TypedSimpleState>>,
}

pub struct SamEngine {
    pub manifest: ModelManifest,
    encoder: Plan,
    decoder: Decoder,
    /// The model's decoder for prompts with a box, when it has one (see `DecoderPrompts`).
    box_decoder: Option<Decoder>,
}

fn parse(file: &str, bytes: &[u8]) -> Result<InferenceModel, SamError> {
    tract_onnx::onnx()
        .model_for_read(&mut &bytes[..])
        .map_err(|e| SamError::Load {
            file: file.to_owned(),
            reason: format!("{e:#}"),
        })
}

fn names<'a>(model: &'a InferenceModel, outlets: &[OutletId]) -> Vec<&'a str> {
    outlets
        .iter()
        .map(|o| model.outlet_label(*o).unwrap_or(&model.node(o.node).name))
        .collect()
}

/// Index of each wanted name among the model's names, or a message listing what the model has.
fn positions(have: &[&str], want: &[&str], what: &str) -> Result<Vec<usize>, String> {
    want.iter()
        .map(|w| {
            have.iter()
                .position(|h| h == w)
                .ok_or_else(|| format!("no {what} named `{w}` (it has {})", have.join(", ")))
        })
        .collect()
}

fn optimise(file: &str, model: InferenceModel) -> Result<Plan, SamError> {
    model
        .into_optimized()
        .and_then(|m| m.into_runnable())
        .map_err(|e| SamError::Load {
            file: file.to_owned(),
            reason: format!("{e:#}"),
        })
}

fn tensor(shape: &[usize], values: &[f32]) -> Result<TValue, SamError> {
    Ok(Tensor::from_shape(shape, values)
        .map_err(run_err)?
        .into_tvalue())
}

fn values(t: &TValue) -> Result<Vec<f32>, SamError> {
    Ok(t.to_plain_array_view::<f32>()
        .map_err(run_err)?
        .iter()
        .copied()
        .collect())
}

impl SamEngine {
    /// Loads a model from its manifest and file bytes, checking integrity and the I/O contract.
    pub fn load(
        manifest: ModelManifest,
        encoder_onnx: &[u8],
        variant: DecoderVariant,
        decoder_onnx: &[u8],
    ) -> Result<SamEngine, SamError> {
        if manifest.windows.is_some() && variant != DecoderVariant::LowRes {
            // Each window's low-res logits are upsampled and pasted into the image; an orig_size decoder
            // would upsample one window to the whole image.
            return Err(SamError::Manifest(ManifestError::Inconsistent(
                "this model sees images through windows, which needs its low_res decoder".into(),
            )));
        }
        ModelManifest::verify(
            &manifest.encoder.file,
            &manifest.encoder.sha256,
            encoder_onnx,
        )?;
        let entry = manifest
            .decoder(variant)
            .ok_or(SamError::NoDecoder(variant))?
            .clone();
        ModelManifest::verify(&entry.file, &entry.sha256, decoder_onnx)?;

        let file = manifest.encoder.file.clone();
        let model = parse(&file, encoder_onnx)?;
        let contract = |detail: String| SamError::Contract {
            file: file.clone(),
            role: "SAM image encoder",
            detail,
        };
        let ins = names(&model, model.input_outlets().map_err(run_err)?);
        let out_outlets = model.output_outlets().map_err(run_err)?.to_vec();
        let outs = names(&model, &out_outlets);
        positions(&ins, &ENCODER_INPUTS, "input").map_err(contract)?;
        let out = positions(&outs, &ENCODER_OUTPUTS, "output").map_err(contract)?;
        if ins.len() != 1 {
            return Err(contract(format!("expected one input, found {}", ins.len())));
        }
        let s = manifest.input_size as usize;
        let model = model
            .with_input_fact(0, f32::fact([1, 3, s, s]).into())
            .and_then(|m| m.with_output_outlets(&[out_outlets[out[0]]]))
            .map_err(|e| contract(format!("{e:#}")))?;
        let encoder = optimise(&file, model)?;

        let decoder = Decoder::new(&entry.file, variant, decoder_onnx.to_vec())?;
        let engine = SamEngine {
            manifest,
            encoder,
            decoder,
            box_decoder: None,
        };
        if variant == DecoderVariant::LowRes {
            // Optimise now, so a wrong file fails at load and the first click is not slower.
            engine
                .decoder
                .with_state(&engine.manifest, (0, 0), |_| Ok(()))?;
        }
        Ok(engine)
    }

    /// Adds the manifest's decoder for prompts with a box (checked like the main one); from then on
    /// prompts with a box go to it. Without it, the main decoder serves every prompt.
    pub fn with_box_decoder(mut self, decoder_onnx: &[u8]) -> Result<SamEngine, SamError> {
        let entry = self
            .manifest
            .box_decoder()
            .ok_or_else(|| SamError::Run("the manifest lists no box decoder".into()))?
            .clone();
        if self.decoder.variant != DecoderVariant::LowRes {
            return Err(SamError::NoDecoder(DecoderVariant::LowRes));
        }
        ModelManifest::verify(&entry.file, &entry.sha256, decoder_onnx)?;
        let decoder = Decoder::new(&entry.file, DecoderVariant::LowRes, decoder_onnx.to_vec())?;
        decoder.with_state(&self.manifest, (0, 0), |_| Ok(()))?;
        self.box_decoder = Some(decoder);
        Ok(self)
    }

    /// Decodes [`WARM_UP_CLICKS`] clicks (and one box, for a box decoder) on a zero embedding and makes
    /// their masks, so the browser's worker pays for the decoders' first runs while the model loads rather
    /// than on the user's first hovers. There, a plan's first run took 67–81 ms; the clicks after it ran
    /// on code from Chromium's baseline wasm compiler (14–19 ms p50 over the first 30) until the hot
    /// functions were optimised (8–12 ms). `orig_size` plans are made per image size, so warming one up for
    /// a size no image has would only cost time.
    pub fn warm_up(&self) -> Result<(), SamError> {
        if self.decoder.variant != DecoderVariant::LowRes {
            return Ok(());
        }
        let s = self.manifest.input_size;
        let shape = self.manifest.embedding_shape;
        let zeros = vec![0.0; shape.iter().product()];
        let embedding = Embedding::single(zeros, shape, ModelFromImage::new(s, s, s));
        let centre = f64::from(s) / 2.0;
        let click = Prompts {
            points_image: vec![([centre, centre], true)],
            box_image: None,
            mask_input_low_res: None,
        };
        let boxed = Prompts {
            points_image: Vec::new(),
            box_image: Some([centre / 2.0, centre / 2.0, centre * 1.5, centre * 1.5]),
            mask_input_low_res: None,
        };
        let boxes = if self.box_decoder.is_some() { 1 } else { 0 };
        let prompts =
            std::iter::repeat_n(&click, WARM_UP_CLICKS).chain(std::iter::repeat_n(&boxed, boxes));
        for p in prompts {
            let decoded = self.decode(&embedding, p)?;
            if let Some(best) = decoded.candidates.get(decoded.best) {
                let _ = self.mask(best, &decoded.transform);
            }
        }
        Ok(())
    }

    /// Whether prompts with a box have a decoder of their own.
    pub fn has_box_decoder(&self) -> bool {
        self.box_decoder.is_some()
    }

    fn decoder_for(&self, prompts: &Prompts) -> &Decoder {
        match (&self.box_decoder, prompts.box_image) {
            (Some(box_decoder), Some(_)) => box_decoder,
            _ => &self.decoder,
        }
    }

    /// Runs the encoder on an RGB image.
    pub fn encode(&self, image: &image::RgbImage) -> Result<Embedding, SamError> {
        let windows = self
            .layout(image.width(), image.height())
            .iter()
            .map(|window| self.encode_window(image, window))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Embedding {
            shape: self.manifest.embedding_shape,
            windows,
        })
    }

    /// The windows this model sees an image of this size through (see `transform::window_layout`).
    pub fn layout(&self, image_width: u32, image_height: u32) -> Vec<ModelFromImage> {
        window_layout(
            image_width,
            image_height,
            self.manifest.input_size,
            self.manifest.windows.as_ref(),
        )
    }

    /// One window of [`SamEngine::layout`]: one encoder run. The worker encodes a big image window by
    /// window so that other requests can run in between.
    pub fn encode_window(
        &self,
        image: &image::RgbImage,
        window: &ModelFromImage,
    ) -> Result<WindowEmbedding, SamError> {
        let input = model_input_from_window(image, window, &self.manifest);
        self.run_encoder(&input, *window)
    }

    /// Runs the encoder on an already preprocessed `[1, 3, S, S]` input.
    pub fn encode_model_input(
        &self,
        input: &[f32],
        transform: ModelFromImage,
    ) -> Result<Embedding, SamError> {
        let window = self.run_encoder(input, transform)?;
        Ok(Embedding {
            shape: self.manifest.embedding_shape,
            windows: vec![window],
        })
    }

    /// The encoder on one `[1, 3, S, S]` input, its output checked against the manifest's shape.
    fn run_encoder(
        &self,
        input: &[f32],
        transform: ModelFromImage,
    ) -> Result<WindowEmbedding, SamError> {
        let s = self.manifest.input_size as usize;
        let out = self
            .encoder
            .run(tvec!(tensor(&[1, 3, s, s], input)?))
            .map_err(run_err)?;
        let shape: [usize; 4] = out[0].shape().try_into().map_err(|_| {
            SamError::Run(format!("embedding shape {:?} is not 4-D", out[0].shape()))
        })?;
        if shape != self.manifest.embedding_shape {
            return Err(SamError::Run(format!(
                "the encoder gave an embedding of shape {shape:?}, the manifest says {:?}",
                self.manifest.embedding_shape
            )));
        }
        Ok(WindowEmbedding {
            values: values(&out[0])?,
            transform,
        })
    }

    /// The window to decode these prompts in: the one where the box, or else the first point, lies
    /// deepest inside (sides on the image border count as deep). Every later prompt of a session shares
    /// that first prompt, so corrections and the previous low-res mask stay in one window.
    fn window_for<'e>(
        &self,
        embedding: &'e Embedding,
        prompts: &Prompts,
    ) -> Result<&'e WindowEmbedding, SamError> {
        let anchor = match (prompts.box_image, prompts.points_image.first()) {
            (Some([x0, y0, x1, y1]), _) => [x0.min(x1), y0.min(y1), x0.max(x1), y0.max(y1)],
            (None, Some(([x, y], _))) => [*x, *y, *x, *y],
            (None, None) => [0.0; 4],
        };
        // The first of equally deep windows, so the choice is deterministic.
        let mut best: Option<(&WindowEmbedding, f64)> = None;
        for w in &embedding.windows {
            let margin = w.transform.margin_image(anchor);
            if best.is_none_or(|(_, m)| margin > m) {
                best = Some((w, margin));
            }
        }
        best.map(|(w, _)| w)
            .ok_or_else(|| SamError::Run("the embedding has no windows".into()))
    }

    /// Runs the decoder on an embedding with the user's prompts.
    pub fn decode(&self, embedding: &Embedding, prompts: &Prompts) -> Result<Decoded, SamError> {
        let decoder = self.decoder_for(prompts);
        let window = self.window_for(embedding, prompts)?;
        let (size, inputs) = self.decoder_inputs(decoder, embedding.shape, window, prompts)?;
        let out = decoder.with_state(&self.manifest, size, |state| {
            state.run(inputs).map_err(run_err)
        })?;
        self.decoded(decoder, &out, prompts, window)
    }

    /// Where a decode spends its time: `runs` decodes of `prompts`, timed per graph node with `now_ms`
    /// (the caller's clock, since `std::time` does not exist in the browser), slowest first, plus the
    /// post-processing of the chosen mask as one last row. A diagnosis aid for `bench`.
    pub fn profile_decode(
        &self,
        embedding: &Embedding,
        prompts: &Prompts,
        runs: usize,
        now_ms: &dyn Fn() -> f64,
    ) -> Result<Vec<NodeTime>, SamError> {
        let decoder = self.decoder_for(prompts);
        let window = self.window_for(embedding, prompts)?;
        let (size, inputs) = self.decoder_inputs(decoder, embedding.shape, window, prompts)?;
        let mut ms: HashMap<usize, f64> = HashMap::new();
        let mut post_ms = 0.0;
        let plan = decoder.with_state(&self.manifest, size, |state| {
            for _ in 0..runs.max(1) {
                let out = state
                    .run_plan_with_eval(inputs.clone(), |session, op_state, node, input| {
                        let start = now_ms();
                        let result = eval(session, op_state, node, input);
                        *ms.entry(node.id).or_default() += now_ms() - start;
                        result
                    })
                    .map_err(run_err)?;
                let start = now_ms();
                let decoded = self.decoded(decoder, &out, prompts, window)?;
                let _ = self.mask(&decoded.candidates[decoded.best], &decoded.transform);
                post_ms += now_ms() - start;
            }
            Ok(state.plan().clone())
        })?;
        let model = plan.model();
        let per_run = 1.0 / runs.max(1) as f64;
        let mut rows: Vec<NodeTime> = ms
            .into_iter()
            .map(|(id, total)| {
                let node = model.node(id);
                NodeTime {
                    name: node.name.clone(),
                    op: node.op.name().to_string(),
                    shape: model
                        .outlet_fact(OutletId::new(id, 0))
                        .map(|f| format!("{:?}", f.shape))
                        .unwrap_or_default(),
                    ms: total * per_run,
                }
            })
            .collect();
        rows.sort_by(|a, b| b.ms.total_cmp(&a.ms));
        rows.push(NodeTime {
            name: "post-processing".into(),
            op: "stability + mask to image size".into(),
            shape: String::new(),
            ms: post_ms * per_run,
        });
        Ok(rows)
    }

    /// The decoder's inputs for these prompts, and the image size (`orig_size` plans are per size).
    fn decoder_inputs(
        &self,
        decoder: &Decoder,
        shape: [usize; 4],
        window: &WindowEmbedding,
        prompts: &Prompts,
    ) -> Result<((u32, u32), TVec<TValue>), SamError> {
        let t = &window.transform;
        if prompts.points_image.is_empty() && prompts.box_image.is_none() {
            return Err(SamError::Prompt("give at least one point or a box".into()));
        }
        let mut coords = Vec::new();
        let mut labels = Vec::new();
        for (p, positive) in &prompts.points_image {
            coords.extend(t.model_from_image(p[0], p[1]).map(|v| v as f32));
            labels.push(if *positive { 1.0 } else { 0.0 });
        }
        if let Some([x0, y0, x1, y1]) = prompts.box_image {
            coords.extend(t.model_from_image(x0.min(x1), y0.min(y1)).map(|v| v as f32));
            coords.extend(t.model_from_image(x0.max(x1), y0.max(y1)).map(|v| v as f32));
            labels.extend([2.0, 3.0]);
        } else {
            // SAM's ONNX decoder expects a padding point when no box is given.
            coords.extend([0.0, 0.0]);
            labels.push(-1.0);
        }
        let low = self.manifest.low_res_mask_size as usize;
        let (mask_input, has_mask) = match &prompts.mask_input_low_res {
            Some(m) if m.len() == low * low => (m.clone(), 1.0),
            Some(m) => {
                return Err(SamError::Prompt(format!(
                    "mask input has {} values, expected {}",
                    m.len(),
                    low * low
                )))
            }
            None => (vec![0.0; low * low], 0.0),
        };
        let n = labels.len();
        let mut named = vec![
            tensor(&shape, &window.values)?,
            tensor(&[1, n, 2], &coords)?,
            tensor(&[1, n], &labels)?,
            tensor(&[1, 1, low, low], &mask_input)?,
            tensor(&[1], &[has_mask])?,
        ];
        let size = (t.image_height, t.image_width);
        if decoder.variant == DecoderVariant::OrigSize {
            named.push(tensor(&[2], &[size.0 as f32, size.1 as f32])?);
        }
        let mut inputs: Vec<Option<TValue>> = vec![None; named.len()];
        for (value, &index) in named.into_iter().zip(&decoder.input_order) {
            inputs[index] = Some(value);
        }
        let inputs: TVec<TValue> = inputs.into_iter().flatten().collect();
        Ok((size, inputs))
    }

    fn decoded(
        &self,
        decoder: &Decoder,
        out: &[TValue],
        prompts: &Prompts,
        window: &WindowEmbedding,
    ) -> Result<Decoded, SamError> {
        let order = &decoder.output_order;
        let ious = values(&out[order[0]])?;
        let low_res = values(&out[order[1]])?;
        let image = order.get(2).map(|&i| values(&out[i])).transpose()?;
        let m = ious.len();
        let low = self.manifest.low_res_mask_size as usize;
        if m == 0 || low_res.len() != m * low * low {
            return Err(SamError::Run(format!(
                "the decoder returned {} masks of {} values",
                m,
                low_res.len()
            )));
        }
        let t = &window.transform;
        let image_len = (t.image_width * t.image_height) as usize;
        let threshold = self.manifest.mask_threshold;
        let candidates = (0..m)
            .map(|k| {
                let low_res_logits = low_res[k * low * low..][..low * low].to_vec();
                Candidate {
                    iou_prediction: ious[k],
                    stability: stability_score(&low_res_logits, threshold, STABILITY_OFFSET),
                    low_res_logits,
                    image_logits: image
                        .as_ref()
                        .map(|all| all[k * image_len..][..image_len].to_vec()),
                }
            })
            .collect::<Vec<_>>();
        let one_click = prompts.points_image.len() == 1
            && prompts.box_image.is_none()
            && prompts.mask_input_low_res.is_none();
        let best = if one_click && m > 1 {
            (1..m)
                .max_by(|&a, &b| {
                    candidates[a]
                        .iou_prediction
                        .total_cmp(&candidates[b].iou_prediction)
                })
                .unwrap_or(0)
        } else {
            0
        };
        Ok(Decoded {
            transform: window.transform,
            candidates,
            best,
        })
    }

    /// A candidate as a mask in image pixels; `transform` is the window it was decoded in
    /// (`Decoded::transform`), and the mask is empty outside that window.
    pub fn mask(&self, candidate: &Candidate, transform: &ModelFromImage) -> Mask {
        let window = self.mask_in_window(candidate, transform);
        let [x0, y0, ..] = transform.window_image;
        if (window.width, window.height) == (transform.image_width, transform.image_height) {
            return window;
        }
        Mask::placed(
            transform.image_width,
            transform.image_height,
            &window,
            x0,
            y0,
        )
    }

    /// A candidate as a mask over its window only (`transform.window_image`, the whole image for SAM),
    /// for answers that should cost the window's size, not the image's.
    pub fn mask_in_window(&self, candidate: &Candidate, transform: &ModelFromImage) -> Mask {
        let [_, _, w, h] = transform.window_image;
        let threshold = self.manifest.mask_threshold;
        match &candidate.image_logits {
            Some(l) => mask_from_logits(l, w, h, threshold),
            None => {
                let low_res = self.manifest.low_res_mask_size as usize;
                let logits =
                    image_logits_from_low_res(&candidate.low_res_logits, low_res, transform);
                mask_from_logits(&logits, w, h, threshold)
            }
        }
    }
}

impl Decoder {
    fn new(file: &str, variant: DecoderVariant, bytes: Vec<u8>) -> Result<Decoder, SamError> {
        let model = parse(file, &bytes)?;
        let contract = |detail: String| SamError::Contract {
            file: file.to_owned(),
            role: "SAM mask decoder",
            detail,
        };
        let ins = names(&model, model.input_outlets().map_err(run_err)?);
        let outs = names(&model, model.output_outlets().map_err(run_err)?);
        let mut want_in = DECODER_INPUTS.to_vec();
        let mut want_out = DECODER_OUTPUTS.to_vec();
        if variant == DecoderVariant::OrigSize {
            want_in.push("orig_im_size");
            want_out.push("masks");
        }
        let input_order = positions(&ins, &want_in, "input").map_err(contract)?;
        let output_order = positions(&outs, &want_out, "output").map_err(contract)?;
        if ins.len() != want_in.len() {
            return Err(contract(format!(
                "expected inputs {}, found {}",
                want_in.join(", "),
                ins.join(", ")
            )));
        }
        Ok(Decoder {
            variant,
            file: file.to_owned(),
            bytes,
            input_order,
            output_order,
            plans: Mutex::new(HashMap::new()),
        })
    }

    /// Runs `f` on the optimised plan's state (made on first use); for `orig_size`, one per image size
    /// with `orig_im_size` pinned as a constant, since tract must know the Resize's output size when it
    /// optimises. A state whose run failed is dropped, so the next decode starts clean.
    fn with_state<R>(
        &self,
        manifest: &ModelManifest,
        size_hw: (u32, u32),
        f: impl FnOnce(&mut TypedSimpleState) -> Result<R, SamError>,
    ) -> Result<R, SamError> {
        let key = if self.variant == DecoderVariant::LowRes {
            (0, 0)
        } else {
            size_hw
        };
        let mut plans = self
            .plans
            .lock()
            .map_err(|_| SamError::Run("decoder lock poisoned".into()))?;
        let state = match plans.entry(key) {
            Entry::Occupied(cached) => cached.into_mut(),
            Entry::Vacant(slot) => slot.insert(self.optimised(manifest, size_hw)?),
        };
        let result = f(state);
        if result.is_err() {
            plans.remove(&key);
        }
        result
    }

    fn optimised(
        &self,
        manifest: &ModelManifest,
        size_hw: (u32, u32),
    ) -> Result<TypedSimpleState, SamError> {
        let mut model = parse(&self.file, &self.bytes)?;
        let [_, c, e, _] = manifest.embedding_shape;
        let low = manifest.low_res_mask_size as usize;
        let fact = |shape: &[usize]| -> InferenceFact { f32::fact(shape).into() };
        let mut facts = vec![
            fact(&[1, c, e, e]),
            InferenceFact::default(),
            InferenceFact::default(),
            fact(&[1, 1, low, low]),
            fact(&[1]),
        ];
        if self.variant == DecoderVariant::OrigSize {
            facts.push(tensor1(&[size_hw.0 as f32, size_hw.1 as f32]).into());
        }
        for (f, &index) in facts.into_iter().zip(&self.input_order) {
            if f != InferenceFact::default() {
                model.set_input_fact(index, f).map_err(run_err)?;
            }
        }
        let plan = optimise(&self.file, model)?;
        SimpleState::new(&plan).map_err(run_err)
    }
}

/// Loads `manifest.json` and the files it names from a folder (native tools and tests).
#[cfg(not(target_arch = "wasm32"))]
pub fn load_dir(dir: &std::path::Path, variant: DecoderVariant) -> Result<SamEngine, SamError> {
    let read = |name: &str| {
        std::fs::read(dir.join(name)).map_err(|e| SamError::Load {
            file: dir.join(name).display().to_string(),
            reason: e.to_string(),
        })
    };
    let manifest_text = String::from_utf8(read("manifest.json")?).map_err(|e| SamError::Load {
        file: "manifest.json".into(),
        reason: e.to_string(),
    })?;
    let manifest = ModelManifest::parse(&manifest_text)?;
    let encoder = read(&manifest.encoder.file)?;
    let decoder_file = manifest
        .decoder(variant)
        .ok_or(SamError::NoDecoder(variant))?
        .file
        .clone();
    let decoder = read(&decoder_file)?;
    let box_file = match (variant, manifest.box_decoder()) {
        (DecoderVariant::LowRes, Some(b)) => Some(b.file.clone()),
        _ => None,
    };
    let engine = SamEngine::load(manifest, &encoder, variant, &decoder)?;
    match box_file {
        Some(file) => engine.with_box_decoder(&read(&file)?),
        None => Ok(engine),
    }
}

impl Embedding {
    /// One window: the whole image for SAM-family models.
    pub fn single(values: Vec<f32>, shape: [usize; 4], transform: ModelFromImage) -> Embedding {
        Embedding {
            shape,
            windows: vec![WindowEmbedding { values, transform }],
        }
    }

    /// Half-precision bytes (little-endian), the windows one after another, for the browser's embedding
    /// cache: half the size, and the masks it gives differ from f32's only at the rounding of the logits.
    pub fn to_f16_bytes(&self) -> Vec<u8> {
        self.windows
            .iter()
            .flat_map(|w| &w.values)
            .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
            .collect()
    }

    /// Back from [`Embedding::to_f16_bytes`], given the layout the image was encoded with
    /// ([`SamEngine::layout`]).
    pub fn from_f16_bytes(
        bytes: &[u8],
        shape: [usize; 4],
        layout: &[ModelFromImage],
    ) -> Result<Embedding, SamError> {
        let n: usize = shape.iter().product();
        if layout.is_empty() || bytes.len() != 2 * n * layout.len() {
            return Err(SamError::Run(format!(
                "a cached embedding has {} bytes, expected {} ({} windows)",
                bytes.len(),
                2 * n * layout.len(),
                layout.len()
            )));
        }
        let windows = bytes
            .chunks_exact(2 * n)
            .zip(layout)
            .map(|(window, transform)| WindowEmbedding {
                values: window
                    .chunks_exact(2)
                    .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                    .collect(),
                transform: *transform,
            })
            .collect();
        Ok(Embedding { shape, windows })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_round_trip_keeps_values_within_half_precision() {
        let t = ModelFromImage::new(4, 4, 8);
        let e = Embedding::single(vec![0.0, 1.5, -2.25, 1e-3, 123.4, -0.333], [1, 6, 1, 1], t);
        let back = Embedding::from_f16_bytes(&e.to_f16_bytes(), e.shape, &[t]).unwrap();
        for (a, b) in e.windows[0].values.iter().zip(&back.windows[0].values) {
            assert!((a - b).abs() <= a.abs() * 1e-3 + 1e-6, "{a} vs {b}");
        }
        assert!(Embedding::from_f16_bytes(&[0; 3], e.shape, &[t]).is_err());
        // the layout must account for every window in the bytes
        assert!(Embedding::from_f16_bytes(&e.to_f16_bytes(), e.shape, &[t, t]).is_err());
    }
}
