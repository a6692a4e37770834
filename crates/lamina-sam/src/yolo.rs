//! A user's instance-segmentation model in the ultralytics YOLOv8/YOLO11-seg ONNX export contract, run
//! with tract: one file, checked at load (a file that does not fit is refused naming the input or
//! output), class names from its metadata, and every object of an image as masks in image pixels.

pub mod decode;

use image::RgbImage;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::Factoid;

use crate::auto::{without_overlaps, AutoInstance, AutoOptions};
use decode::{detect, mask_image, Detections, Letterbox, Prototypes};

/// ultralytics' letterbox padding, grey 114.
const PAD_VALUE: f32 = 114.0 / 255.0;

#[derive(Debug, thiserror::Error)]
pub enum YoloError {
    #[error("{file} is not a model tract can load: {reason}")]
    Load { file: String, reason: String },
    #[error("{file} is not a YOLO-seg export: {detail}")]
    Contract { file: String, detail: String },
    #[error("inference failed: {0}")]
    Run(String),
}

fn run_err(e: impl std::fmt::Display) -> YoloError {
    YoloError::Run(format!("{e:#}"))
}

/// A loaded YOLO-seg model.
pub struct YoloSeg {
    pub file: String,
    /// Class names by index (the export's `names` metadata; `class 0`, ... without it).
    pub class_names: Vec<String>,
    /// The square input side, pixels.
    pub input: u32,
    coefficients: usize,
    plan: Arc<TypedRunnableModel>,
}

/// A metadata entry of the ONNX file, as text.
fn metadata(model: &InferenceModel, key: &str) -> Option<String> {
    model
        .properties
        .get(&format!("onnx.metadata_props.{key}"))
        .and_then(|t| scalar_text(t))
}

/// ultralytics writes `names` as a Python dict literal: `{0: 'person', 1: "it's"}`. Returns the names in
/// index order, or `None` if the text is not such a dict with indices 0..n.
pub fn parse_names(text: &str) -> Option<Vec<String>> {
    let body = text.trim().strip_prefix('{')?.strip_suffix('}')?;
    let mut out: Vec<(usize, String)> = Vec::new();
    let mut rest = body.trim();
    while !rest.is_empty() {
        let (index, after) = rest.split_once(':')?;
        let index: usize = index.trim().parse().ok()?;
        let after = after.trim_start();
        let quote = after.chars().next().filter(|c| *c == '\'' || *c == '"')?;
        let end = after[1..].find(quote)? + 1;
        out.push((index, after[1..end].to_owned()));
        rest = after[end + 1..].trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
    }
    out.sort_by_key(|(i, _)| *i);
    out.iter()
        .enumerate()
        .all(|(k, (i, _))| k == *i)
        .then(|| out.into_iter().map(|(_, n)| n).collect())
}

fn scalar_text(t: &Tensor) -> Option<String> {
    t.try_as_plain_ram()
        .ok()?
        .to_scalar::<String>()
        .ok()
        .cloned()
}

/// The input's dimensions as the file states them (`None`: symbolic or unknown); empty if unknown rank.
fn dims(fact: &InferenceFact) -> Vec<Option<usize>> {
    if fact.shape.is_open() {
        return Vec::new();
    }
    fact.shape
        .dims()
        .map(|d| d.concretize().and_then(|d| d.as_i64()).map(|d| d as usize))
        .collect()
}

fn show(d: &[Option<usize>]) -> String {
    let parts: Vec<String> = d
        .iter()
        .map(|v| v.map_or("?".into(), |v| v.to_string()))
        .collect();
    format!("[{}]", parts.join(", "))
}

impl YoloSeg {
    /// Loads and checks a YOLO-seg export: one image input `[1, 3, S, S]` (S from the file, or its
    /// `imgsz` metadata when the size is dynamic), outputs `[1, 4 + classes + M, N]` and `[1, M, P, P]`.
    pub fn load(file: &str, onnx: &[u8]) -> Result<YoloSeg, YoloError> {
        let contract = |detail: String| YoloError::Contract {
            file: file.to_owned(),
            detail,
        };
        let model = tract_onnx::onnx()
            .model_for_read(&mut &onnx[..])
            .map_err(|e| YoloError::Load {
                file: file.to_owned(),
                reason: format!("{e:#}"),
            })?;
        let inputs = model.input_outlets().map_err(run_err)?.to_vec();
        if inputs.len() != 1 {
            return Err(contract(format!(
                "it has {} inputs; a YOLO-seg export has one, the image",
                inputs.len()
            )));
        }
        let input_fact = model.outlet_fact(inputs[0]).map_err(run_err)?;
        let input_dims = dims(input_fact);
        let imgsz = metadata(&model, "imgsz").and_then(|t| {
            t.trim_matches(|c| c == '[' || c == ']')
                .split(',')
                .next()
                .and_then(|v| v.trim().parse::<usize>().ok())
        });
        let side = match input_dims.as_slice() {
            [_, Some(3), Some(h), Some(w)] if h == w => *h,
            [_, Some(3), None, None] => imgsz.unwrap_or(640),
            [_, Some(3), Some(h), Some(w)] => {
                return Err(contract(format!(
                    "its input is {h}×{w}; Lamina runs square inputs (export with a square imgsz)"
                )))
            }
            _ if input_dims.is_empty() => imgsz.unwrap_or(640),
            other => {
                return Err(contract(format!(
                    "its input is {}, not an RGB image [1, 3, S, S]",
                    show(other)
                )))
            }
        };
        let outputs = model.output_outlets().map_err(run_err)?.to_vec();
        if outputs.len() != 2 {
            return Err(contract(format!(
                "it has {} output(s); a YOLO-seg export has two, detections [1, 4 + classes + 32, N] and prototypes [1, 32, S/4, S/4] (a detection-only model has one)",
                outputs.len()
            )));
        }
        let model = model
            .with_input_fact(0, f32::fact([1, 3, side, side]).into())
            .map_err(|e| contract(format!("its input cannot be {side}×{side}: {e:#}")))?;
        let typed = model
            .into_typed()
            .map_err(|e| contract(format!("tract cannot type it: {e:#}")))?;
        // Node ids change in typing: the outputs as the typed model numbers them.
        let outputs = typed.output_outlets().map_err(run_err)?.to_vec();
        let out_shape = |k: usize| -> Result<Vec<usize>, YoloError> {
            let fact = typed.outlet_fact(outputs[k]).map_err(run_err)?;
            fact.shape
                .as_concrete()
                .map(<[usize]>::to_vec)
                .ok_or_else(|| contract(format!("output {k} has no fixed shape")))
        };
        let (d, p) = (out_shape(0)?, out_shape(1)?);
        let (d, p) = if d.len() == 4 && p.len() == 3 {
            (p, d)
        } else {
            (d, p)
        };
        let (dets, protos) = match (d.as_slice(), p.as_slice()) {
            ([1, c, n], [1, m, ph, pw]) if ph == pw => ([*c, *n], [*m, *ph]),
            _ => {
                return Err(contract(format!(
                    "its outputs are {d:?} and {p:?}; expected detections [1, 4 + classes + M, N] and prototypes [1, M, P, P]"
                )))
            }
        };
        let [channels, _] = dets;
        let [m, _] = protos;
        if channels <= 4 + m {
            return Err(contract(format!(
                "its detections have {channels} rows per anchor, which leaves no class beside 4 box values and {m} mask coefficients"
            )));
        }
        let classes = channels - 4 - m;
        let names = metadata_names(&typed)
            .filter(|n| n.len() == classes)
            .unwrap_or_else(|| (0..classes).map(|k| format!("class {k}")).collect());
        // The detections first, whichever order the file lists them in.
        let order = if out_shape(0)?.len() == 3 {
            vec![outputs[0], outputs[1]]
        } else {
            vec![outputs[1], outputs[0]]
        };
        let plan = typed
            .with_output_outlets(&order)
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(|e| YoloError::Load {
                file: file.to_owned(),
                reason: format!("{e:#}"),
            })?;
        Ok(YoloSeg {
            file: file.to_owned(),
            class_names: names,
            input: side as u32,
            coefficients: m,
            plan,
        })
    }

    /// Every object of `rgb`: masks in image pixels with class index and score, none sharing a pixel
    /// (best first; a mask overlapping a better one by more than `options.nms_iou` is dropped, the rest
    /// lose the pixels already taken), at least `options.min_area` pixels.
    pub fn segment_all(
        &self,
        rgb: &RgbImage,
        options: &AutoOptions,
    ) -> Result<Vec<AutoInstance>, YoloError> {
        let letterbox = Letterbox::for_image(rgb.width(), rgb.height(), self.input);
        let input = self.input_tensor(rgb, &letterbox)?;
        let outputs = self.plan.run(tvec!(input.into_tvalue())).map_err(run_err)?;
        let dets = outputs[0].to_plain_array_view::<f32>().map_err(run_err)?;
        let protos = outputs[1].to_plain_array_view::<f32>().map_err(run_err)?;
        let (dshape, pshape) = (dets.shape().to_vec(), protos.shape().to_vec());
        let dets = dets
            .as_slice()
            .ok_or_else(|| run_err("detections not contiguous"))?;
        let protos = protos
            .as_slice()
            .ok_or_else(|| run_err("prototypes not contiguous"))?;
        let detections = Detections {
            values: dets,
            classes: self.class_names.len(),
            coefficients: self.coefficients,
            anchors: dshape[2],
        };
        let prototypes = Prototypes {
            values: protos,
            channels: pshape[1],
            height: pshape[2],
            width: pshape[3],
        };
        let found: Vec<AutoInstance> =
            detect(&detections, options.min_score, options.nms_iou as f32)
                .into_iter()
                .map(|d| AutoInstance {
                    mask_image: mask_image(&d, &prototypes, &letterbox),
                    score: d.score,
                    class: d.class,
                })
                .filter(|i| !i.mask_image.is_empty())
                .collect();
        Ok(without_overlaps(found, options))
    }

    /// `[1, 3, S, S]` RGB in 0..1: the image resized into the letterbox (bilinear) on grey padding.
    fn input_tensor(&self, rgb: &RgbImage, letterbox: &Letterbox) -> Result<Tensor, YoloError> {
        let s = self.input as usize;
        let resized;
        let source = if letterbox.scaled == [rgb.width(), rgb.height()] {
            rgb
        } else {
            resized = image::imageops::resize(
                rgb,
                letterbox.scaled[0],
                letterbox.scaled[1],
                image::imageops::FilterType::Triangle,
            );
            &resized
        };
        let mut values = vec![PAD_VALUE; 3 * s * s];
        let [px, py] = letterbox.pad.map(|v| v as usize);
        for (x, y, p) in source.enumerate_pixels() {
            let (x, y) = (x as usize + px, y as usize + py);
            if x < s && y < s {
                for c in 0..3 {
                    values[(c * s + y) * s + x] = f32::from(p[c]) / 255.0;
                }
            }
        }
        Tensor::from_shape(&[1, 3, s, s], &values).map_err(run_err)
    }
}

fn metadata_names(model: &TypedModel) -> Option<Vec<String>> {
    model
        .properties
        .get("onnx.metadata_props.names")
        .and_then(|t| scalar_text(t))
        .and_then(|t| parse_names(&t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_names_come_from_ultralytics_dict_text() {
        assert_eq!(
            parse_names("{0: 'nucleus', 1: \"it's debris\", 2: 'a: b'}"),
            Some(vec!["nucleus".into(), "it's debris".into(), "a: b".into()])
        );
        assert_eq!(parse_names("{}"), Some(vec![]));
        assert_eq!(parse_names("{1: 'gap'}"), None);
        assert_eq!(parse_names("['a', 'b']"), None);
    }
}
