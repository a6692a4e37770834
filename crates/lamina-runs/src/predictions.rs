//! Reading a model's predictions into a run: COCO results JSON, YOLO-seg prediction text files, or a
//! Lamina bundle (`docs/model-runs.md`, "Importing predictions"). Nothing is trusted: every problem is
//! collected and reported at once, and a file with any problem yields no predictions at all.

use std::collections::{BTreeMap, HashMap};

use lamina_core::bundle::{parse_bundle, Bundle};
use lamina_core::mask::Mask;
use lamina_core::polygon::rasterize_polygon;
use lamina_core::rle::{CompressedRle, Rle};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::run::Prediction;
use crate::yolo::{stem as file_stem, yolo_file_names};
use crate::RunError;

/// Problems listed before "and N more".
const MAX_LISTED: usize = 20;

/// What an import found, shown to the user before and after.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ImportSummary {
    pub predictions: usize,
    pub images: usize,
    /// Predictions left out because their class is not in the ontology, by the class as the file names it.
    pub dropped_unmapped: BTreeMap<String, usize>,
}

/// How classes that are not in the ontology are treated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Unmapped {
    /// Stop the import, naming them.
    #[default]
    Refuse,
    /// Leave their predictions out and count them in the summary.
    Drop,
}

/// The run (or ground-truth bundle) predictions are read against.
struct Target<'a> {
    bundle: &'a Bundle,
    /// Lowercased class name → class id.
    class_by_name: HashMap<String, &'a str>,
}

impl<'a> Target<'a> {
    fn new(bundle: &'a Bundle) -> Self {
        let class_by_name = bundle
            .ontology
            .classes
            .iter()
            .map(|c| (c.name.to_lowercase(), c.id.as_str()))
            .collect();
        Target {
            bundle,
            class_by_name,
        }
    }
}

/// Collects problems and the result; `finish` decides.
struct Reader {
    problems: Vec<String>,
    unmapped: BTreeMap<String, usize>,
    out: Vec<Prediction>,
}

impl Reader {
    fn new() -> Self {
        Reader {
            problems: Vec::new(),
            unmapped: BTreeMap::new(),
            out: Vec::new(),
        }
    }

    fn problem(&mut self, p: String) {
        self.problems.push(p);
    }

    fn finish(
        self,
        unmapped: Unmapped,
        known: &[String],
    ) -> Result<(Vec<Prediction>, ImportSummary), RunError> {
        let mut problems = self.problems;
        if unmapped == Unmapped::Refuse && !self.unmapped.is_empty() {
            let names: Vec<String> = self
                .unmapped
                .iter()
                .map(|(n, c)| format!("{n:?} ({c} predictions)"))
                .collect();
            problems.push(format!(
                "classes not in the ontology: {}; the ontology has {}. Rename them, add them to the ontology, or leave them out on purpose",
                names.join(", "),
                known.join(", ")
            ));
        }
        if !problems.is_empty() {
            let total = problems.len();
            problems.truncate(MAX_LISTED);
            if total > MAX_LISTED {
                problems.push(format!("and {} more", total - MAX_LISTED));
            }
            return Err(RunError::Predictions(problems));
        }
        let images = self
            .out
            .iter()
            .map(|p| p.asset_id.as_str())
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        let summary = ImportSummary {
            predictions: self.out.len(),
            images,
            dropped_unmapped: self.unmapped,
        };
        Ok((self.out, summary))
    }
}

fn class_names(bundle: &Bundle) -> Vec<String> {
    bundle
        .ontology
        .classes
        .iter()
        .map(|c| c.name.clone())
        .collect()
}

fn check_score(score: Option<f64>, at: &str, reader: &mut Reader) -> Option<f64> {
    match score {
        Some(s) if s.is_finite() && (0.0..=1.0).contains(&s) => Some(s),
        Some(s) => {
            reader.problem(format!("{at}: score {s} is outside 0..1"));
            None
        }
        None => {
            reader.problem(format!("{at}: no score (a number from 0 to 1)"));
            None
        }
    }
}

/// A COCO results file (`[{image_id, category_id, segmentation, score}]`), ids as in Lamina's COCO
/// export of `bundle` (images and categories numbered from 1 in bundle order).
pub fn read_coco_results(
    json: &str,
    bundle: &Bundle,
    unmapped: Unmapped,
) -> Result<(Vec<Prediction>, ImportSummary), RunError> {
    let value: Value = serde_json::from_str(json)
        .map_err(|e| RunError::Predictions(vec![format!("not valid JSON: {e}")]))?;
    let Value::Array(items) = value else {
        return Err(RunError::Predictions(vec![
            "a COCO results file is a JSON list of {image_id, category_id, segmentation, score}"
                .into(),
        ]));
    };
    let mut reader = Reader::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("result {i}");
        let image_id = item.get("image_id").and_then(Value::as_u64);
        let Some(asset) = image_id
            .and_then(|id| usize::try_from(id).ok())
            .and_then(|id| id.checked_sub(1))
            .and_then(|i| bundle.assets.get(i))
        else {
            reader.problem(format!(
                "{at}: image_id {} is not an image of this run (1 to {})",
                item.get("image_id")
                    .map(Value::to_string)
                    .unwrap_or_else(|| "(missing)".into()),
                bundle.assets.len()
            ));
            continue;
        };
        let category = item.get("category_id").and_then(Value::as_u64);
        let class = category
            .and_then(|id| usize::try_from(id).ok())
            .and_then(|id| id.checked_sub(1))
            .and_then(|i| bundle.ontology.classes.get(i));
        let score = check_score(item.get("score").and_then(Value::as_f64), &at, &mut reader);
        let mask = match item.get("segmentation") {
            Some(seg) => coco_segmentation(seg, asset.height, asset.width)
                .map_err(|e| reader.problem(format!("{at} (image {:?}): {e}", asset.name)))
                .ok(),
            None => {
                reader.problem(format!("{at}: no segmentation"));
                None
            }
        };
        let Some(class) = class else {
            let name = format!(
                "category_id {}",
                item.get("category_id")
                    .map(Value::to_string)
                    .unwrap_or_else(|| "(missing)".into())
            );
            *reader.unmapped.entry(name).or_default() += 1;
            continue;
        };
        if let (Some(score), Some(mask)) = (score, mask) {
            reader.out.push(Prediction {
                asset_id: asset.id.clone(),
                class_id: class.id.clone(),
                score,
                mask,
            });
        }
    }
    reader.finish(unmapped, &class_names(bundle))
}

/// A COCO segmentation: compressed RLE, uncompressed RLE (`counts` a list) or polygons.
fn coco_segmentation(seg: &Value, height: u32, width: u32) -> Result<CompressedRle, String> {
    match seg {
        Value::Object(o) => {
            let size: Option<[u32; 2]> = o
                .get("size")
                .and_then(|s| serde_json::from_value(s.clone()).ok());
            let Some([h, w]) = size else {
                return Err("RLE has no size [height, width]".into());
            };
            if [h, w] != [height, width] {
                return Err(format!(
                    "mask is {h}x{w} (h x w) but the image is {height}x{width}"
                ));
            }
            let rle = match o.get("counts") {
                Some(Value::String(s)) => Rle::decompress(&CompressedRle {
                    size: [h, w],
                    counts: s.clone(),
                })
                .map_err(|e| format!("mask: {e}"))?,
                Some(Value::Array(a)) => {
                    let counts: Option<Vec<u32>> = a
                        .iter()
                        .map(|v| v.as_u64().and_then(|c| u32::try_from(c).ok()))
                        .collect();
                    let counts = counts.ok_or("RLE counts are not whole numbers")?;
                    Rle::from_counts(h, w, counts).map_err(|e| format!("mask: {e}"))?
                }
                _ => return Err("RLE has no counts".into()),
            };
            Ok(rle.compress())
        }
        Value::Array(polygons) => {
            let mut mask = Mask::new(width, height);
            for poly in polygons {
                let coords: Option<Vec<f64>> = poly
                    .as_array()
                    .and_then(|a| a.iter().map(Value::as_f64).collect());
                let coords = coords.ok_or("a polygon is not a list of numbers")?;
                if coords.len() < 6 || coords.len() % 2 != 0 {
                    return Err("a polygon needs at least 3 x, y pairs".into());
                }
                let points: Vec<[f64; 2]> = coords.chunks(2).map(|c| [c[0], c[1]]).collect();
                let piece = rasterize_polygon(&points, width, height);
                mask.union_with(&piece).map_err(|e| e.to_string())?;
            }
            Ok(Rle::from_mask(&mask).compress())
        }
        _ => Err("segmentation is neither RLE nor polygons".into()),
    }
}

/// YOLO-seg prediction text files (ultralytics `save_txt`, with or without `save_conf`), given as
/// (file name, text). Images are matched by stem; class indices are the ontology's order, as in the
/// run's `data.yaml`.
pub fn read_yolo_predictions(
    files: &[(String, String)],
    bundle: &Bundle,
    unmapped: Unmapped,
) -> Result<(Vec<Prediction>, ImportSummary), RunError> {
    let mut by_stem: HashMap<String, usize> = HashMap::new();
    for (i, (asset, zip_name)) in bundle
        .assets
        .iter()
        .zip(yolo_file_names(bundle))
        .enumerate()
    {
        by_stem.entry(file_stem(&zip_name)).or_insert(i);
        by_stem.entry(file_stem(&asset.name)).or_insert(i);
    }
    let mut reader = Reader::new();
    for (file, text) in files {
        let base = file.rsplit(['/', '\\']).next().unwrap_or(file);
        let Some(&index) = by_stem.get(&file_stem(base)) else {
            reader.problem(format!(
                "{file}: no image of this run is named {:?}",
                file_stem(base)
            ));
            continue;
        };
        let asset = &bundle.assets[index];
        for (n, line) in text.lines().enumerate() {
            let at = format!("{file} line {}", n + 1);
            let tokens: Vec<&str> = line.split_whitespace().collect();
            if tokens.is_empty() {
                continue;
            }
            let values: Result<Vec<f64>, _> =
                tokens[1..].iter().map(|t| t.parse::<f64>()).collect();
            let (Ok(class_index), Ok(values)) = (tokens[0].parse::<usize>(), values) else {
                reader.problem(format!("{at}: expected a class index and numbers"));
                continue;
            };
            // Polygon pairs, then the confidence when the count of numbers is odd.
            let (coords, score) = if values.len() % 2 == 1 {
                (&values[..values.len() - 1], values.last().copied())
            } else {
                (&values[..], Some(1.0))
            };
            if coords.len() < 6 {
                reader.problem(format!("{at}: a polygon needs at least 3 x, y pairs"));
                continue;
            }
            if coords
                .iter()
                .any(|v| !v.is_finite() || *v < -1e-3 || *v > 1.0 + 1e-3)
            {
                reader.problem(format!("{at}: coordinates must be normalised to 0..1"));
                continue;
            }
            let Some(score) = check_score(score, &at, &mut reader) else {
                continue;
            };
            let Some(class) = bundle.ontology.classes.get(class_index) else {
                *reader
                    .unmapped
                    .entry(format!("class index {class_index}"))
                    .or_default() += 1;
                continue;
            };
            let (w, h) = (f64::from(asset.width), f64::from(asset.height));
            let points: Vec<[f64; 2]> = coords.chunks(2).map(|c| [c[0] * w, c[1] * h]).collect();
            let mask = rasterize_polygon(&points, asset.width, asset.height);
            reader.out.push(Prediction {
                asset_id: asset.id.clone(),
                class_id: class.id.clone(),
                score,
                mask: Rle::from_mask(&mask).compress(),
            });
        }
    }
    reader.finish(unmapped, &class_names(bundle))
}

/// A Lamina bundle as predictions: images matched by sha256, then by name; classes by name; score 1.
pub fn read_bundle_predictions(
    json: &str,
    bundle: &Bundle,
    unmapped: Unmapped,
) -> Result<(Vec<Prediction>, ImportSummary), RunError> {
    let theirs = parse_bundle(json).map_err(|e| RunError::Predictions(vec![e.to_string()]))?;
    let target = Target::new(bundle);
    let by_sha: HashMap<&str, &str> = bundle
        .assets
        .iter()
        .map(|a| (a.sha256.as_str(), a.id.as_str()))
        .collect();
    let by_name: HashMap<&str, &str> = bundle
        .assets
        .iter()
        .map(|a| (a.name.as_str(), a.id.as_str()))
        .collect();
    let mut asset_map: HashMap<&str, &str> = HashMap::new();
    let mut reader = Reader::new();
    for a in &theirs.assets {
        match by_sha
            .get(a.sha256.as_str())
            .or_else(|| by_name.get(a.name.as_str()))
        {
            Some(ours) => {
                asset_map.insert(a.id.as_str(), ours);
            }
            None => reader.problem(format!(
                "image {:?} is not in this run (matched by sha256, then by name)",
                a.name
            )),
        }
    }
    for inst in &theirs.instances {
        let Some(&asset_id) = asset_map.get(inst.asset_id.as_str()) else {
            continue;
        };
        let name = theirs
            .ontology
            .class(&inst.class_id)
            .map(|c| c.name.clone())
            .unwrap_or_else(|| inst.class_id.clone());
        let Some(class_id) = target.class_by_name.get(&name.to_lowercase()) else {
            *reader.unmapped.entry(name).or_default() += 1;
            continue;
        };
        reader.out.push(Prediction {
            asset_id: asset_id.to_owned(),
            class_id: (*class_id).to_owned(),
            score: 1.0,
            mask: inst.mask.clone(),
        });
    }
    reader.finish(unmapped, &class_names(target.bundle))
}

/// A predictions file by its name: `.zip` (YOLO-seg text files in it), `.txt` (one YOLO-seg file), else
/// JSON: a COCO results list, or a bundle. The app's worker and `lamina metrics` both read files this way.
pub fn read_predictions_file(
    file_name: &str,
    bytes: &[u8],
    bundle: &Bundle,
    unmapped: Unmapped,
) -> Result<(Vec<Prediction>, ImportSummary), RunError> {
    let lower = file_name.to_ascii_lowercase();
    if lower.ends_with(".zip") {
        return read_yolo_predictions(&crate::export::read_zip_texts(bytes)?, bundle, unmapped);
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|_| RunError::Predictions(vec![format!("{file_name} is not UTF-8 text")]))?;
    if lower.ends_with(".txt") {
        read_yolo_predictions(&[(file_name.to_owned(), text.to_owned())], bundle, unmapped)
    } else if text.trim_start().starts_with('[') {
        read_coco_results(text, bundle, unmapped)
    } else {
        read_bundle_predictions(text, bundle, unmapped)
    }
}
