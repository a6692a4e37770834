//! Label Studio's JSON export in and out.
//!
//! In: an array of tasks (or one task), each `{data: {image}, annotations: [{result, was_cancelled}],
//! predictions: [{result, score}]}`. A task's first annotation not cancelled is read, else (when it has
//! no annotation at all) its first prediction. Brush regions (whole-image RGBA run-length code, see
//! [`crate::ls_rle`]), polygons and unrotated boxes become instances; polygon and box coordinates are
//! percent of `original_width` / `original_height` and are converted to pixels. Other results
//! (keypoints, choices, text, relations) are listed as skipped.
//!
//! Out: one task per asset, every instance an exact brush region, with `from_name: "label"` and
//! `to_name: "image"`, the names of Label Studio's default brush labeling config.

use lamina_core::image_header::MAX_PIXELS;
use std::collections::HashMap;

use lamina_core::bundle::Bundle;
use lamina_core::labels::{Instance, LabelStatus};
use lamina_core::rle::Rle;
use serde::de::value::MapAccessDeserializer;
use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::error::Category;
use serde_json::Value;

use crate::foreign::{ForeignImage, ForeignInstance, ForeignLabels, Shape};
use crate::ls_rle;
use crate::InteropError;

/// Written into each task's data by [`write`] and read back, so a re-import matches by content.
const SHA256_KEY: &str = "lamina_sha256";

/// Reads a Label Studio JSON export.
pub fn read(json: &str) -> Result<ForeignLabels, InteropError> {
    // Tasks are read straight from the text (not through a `Value`, whose map sorts keys) so `data`
    // keeps its order. `position` says which task a structural error is in.
    let mut position = 0;
    let mut input = serde_json::Deserializer::from_str(json);
    let tasks = TasksSeed(&mut position)
        .deserialize(&mut input)
        .and_then(|tasks| input.end().map(|()| tasks))
        .map_err(|e| match e.classify() {
            Category::Data if position > 0 => {
                InteropError::new(format!("task #{position}"), e.to_string())
            }
            Category::Data => InteropError::new("the file", e.to_string()),
            _ => InteropError::new("the file", format!("not JSON: {e}")),
        })?;
    let mut out = ForeignLabels::default();
    let mut tally = Tally::default();
    for (index, task) in tasks.into_iter().enumerate() {
        let at = match &task.id {
            Some(Value::String(id)) => format!("task '{id}'"),
            Some(id @ Value::Number(_)) => format!("task {id}"),
            _ => format!("task #{} (no id)", index + 1),
        };
        read_task(task, &at, &mut out, &mut tally)?;
    }
    tally.report(&mut out.skipped);
    Ok(out)
}

/// The file's tasks: an array of them, or one task object. Counts the tasks begun in its `usize`.
struct TasksSeed<'a>(&'a mut usize);

impl<'de> DeserializeSeed<'de> for TasksSeed<'_> {
    type Value = Vec<Task>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Vec<Task>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TasksSeed<'_> {
    type Value = Vec<Task>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of Label Studio tasks, or one task")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Task>, A::Error> {
        let mut tasks = Vec::new();
        loop {
            *self.0 += 1;
            match seq.next_element::<Task>()? {
                Some(task) => tasks.push(task),
                None => return Ok(tasks),
            }
        }
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Vec<Task>, A::Error> {
        *self.0 = 1;
        Task::deserialize(MapAccessDeserializer::new(map)).map(|task| vec![task])
    }
}

#[derive(Deserialize)]
struct Task {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    data: DataEntries,
    /// Label Studio before 1.0 called annotations completions.
    #[serde(default, alias = "completions")]
    annotations: Vec<Annotation>,
    #[serde(default)]
    predictions: Vec<Prediction>,
}

#[derive(Deserialize)]
struct Annotation {
    #[serde(default)]
    result: Vec<Value>,
    #[serde(default)]
    was_cancelled: Option<bool>,
}

#[derive(Deserialize)]
struct Prediction {
    #[serde(default)]
    result: Vec<Value>,
    #[serde(default)]
    score: Option<f64>,
}

/// A result as far as every type shares it; `value` is read by type.
#[derive(Deserialize)]
struct Region {
    #[serde(rename = "type", default)]
    kind: String,
    original_width: Option<u32>,
    original_height: Option<u32>,
    #[serde(default)]
    image_rotation: Option<f64>,
    #[serde(default)]
    score: Option<f64>,
    #[serde(default)]
    value: Value,
}

#[derive(Deserialize)]
struct BrushValue {
    #[serde(default)]
    format: Option<String>,
    rle: Vec<u8>,
    #[serde(default, alias = "brushlabels")]
    labels: Vec<String>,
}

#[derive(Deserialize)]
struct PolygonValue {
    points: Vec<[f64; 2]>,
    #[serde(default, alias = "polygonlabels")]
    labels: Vec<String>,
}

#[derive(Deserialize)]
struct RectangleValue {
    x: f64,
    y: f64,
    width: f64,
    height: f64,
    #[serde(default)]
    rotation: f64,
    #[serde(default, alias = "rectanglelabels")]
    labels: Vec<String>,
}

/// Tasks the summary mentions together rather than one line each.
#[derive(Default)]
struct Tally {
    unlabeled: Vec<String>,
    several_annotations: Vec<String>,
}

impl Tally {
    fn report(self, skipped: &mut Vec<String>) {
        let list = |tasks: &[String]| {
            let shown = tasks.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
            if tasks.len() > 5 {
                format!("{shown}, …")
            } else {
                shown
            }
        };
        let count = |n: usize| {
            if n == 1 {
                "1 task has".to_owned()
            } else {
                format!("{n} tasks have")
            }
        };
        if !self.unlabeled.is_empty() {
            skipped.push(format!(
                "{} no annotation or prediction ({})",
                count(self.unlabeled.len()),
                list(&self.unlabeled)
            ));
        }
        if !self.several_annotations.is_empty() {
            skipped.push(format!(
                "{} several annotations; only the first not cancelled is read ({})",
                count(self.several_annotations.len()),
                list(&self.several_annotations)
            ));
        }
    }
}

fn read_task(
    task: Task,
    at: &str,
    out: &mut ForeignLabels,
    tally: &mut Tally,
) -> Result<(), InteropError> {
    let mut usable = task
        .annotations
        .iter()
        .filter(|a| a.was_cancelled != Some(true));
    let (results, task_score) = match (usable.next(), task.predictions.first()) {
        (Some(annotation), _) => {
            if usable.next().is_some() {
                tally.several_annotations.push(at.to_owned());
            }
            (&annotation.result, None)
        }
        // A cancelled annotation is a person's "skip": a model's prediction does not overrule it.
        (None, _) if !task.annotations.is_empty() => {
            out.skipped.push(format!(
                "{at}: every annotation was cancelled (skipped in Label Studio)"
            ));
            return Ok(());
        }
        (None, Some(prediction)) => (&prediction.result, prediction.score),
        (None, None) => {
            tally.unlabeled.push(at.to_owned());
            return Ok(());
        }
    };
    let Some(name) = task.data.image() else {
        out.skipped.push(format!(
            "{at}: its data names no image ({} results)",
            results.len()
        ));
        return Ok(());
    };
    let mut image = ForeignImage::named(name);
    image.sha256 = task.data.string(SHA256_KEY).map(str::to_owned);
    for (index, region) in results.iter().enumerate() {
        let region_at = match region.get("id") {
            Some(Value::String(id)) => format!("{at}, region '{id}'"),
            Some(id @ Value::Number(_)) => format!("{at}, region '{id}'"),
            _ => format!("{at}, result {}", index + 1),
        };
        if let Some(instance) =
            read_region(region, region_at, task_score, &mut image, &mut out.skipped)?
        {
            image.instances.push(instance);
        }
    }
    out.images.push(image);
    Ok(())
}

/// One result as an instance, `None` (with the reason in `skipped`) when it is not an area Lamina reads.
fn read_region(
    region: &Value,
    at: String,
    task_score: Option<f64>,
    image: &mut ForeignImage,
    skipped: &mut Vec<String>,
) -> Result<Option<ForeignInstance>, InteropError> {
    let region: Region =
        Region::deserialize(region).map_err(|e| InteropError::new(&at, e.to_string()))?;
    let kind = region.kind.to_ascii_lowercase();
    if !matches!(
        kind.as_str(),
        "brushlabels" | "brush" | "polygonlabels" | "polygon" | "rectanglelabels" | "rectangle"
    ) {
        let kind = if kind.is_empty() {
            "untyped"
        } else {
            kind.as_str()
        };
        skipped.push(format!("{at}: a {kind} result, not an area"));
        return Ok(None);
    }
    let (Some(width), Some(height)) = (region.original_width, region.original_height) else {
        return Err(InteropError::new(
            at,
            "no original_width / original_height: its coordinates cannot be placed on the image",
        ));
    };
    // The same cap as images Lamina opens: a wrong or hostile size must not make a brush mask of
    // gigabytes before the plan compares it with the project's image.
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(InteropError::new(
            at,
            format!("original size {width}×{height} is larger than the images Lamina opens"),
        ));
    }
    if let Some(rotation) = region.image_rotation.filter(|r| *r != 0.0) {
        skipped.push(format!(
            "{at}: drawn on the image rotated by {rotation}°, not read"
        ));
        return Ok(None);
    }
    match (image.width, image.height) {
        (Some(w), Some(h)) if (w, h) != (width, height) => {
            skipped.push(format!(
                "{at}: its image is {width}×{height} but the task's other regions say {w}×{h}"
            ));
            return Ok(None);
        }
        _ => {
            image.width = Some(width);
            image.height = Some(height);
        }
    }
    let value_error = |e: serde_json::Error| InteropError::new(&at, format!("value: {e}"));
    // Percent of the image's size → image pixels.
    let pixel = |[x, y]: [f64; 2]| [x * f64::from(width) / 100.0, y * f64::from(height) / 100.0];
    let (labels, shape) = if kind.starts_with("brush") {
        let value = BrushValue::deserialize(&region.value).map_err(value_error)?;
        if let Some(format) = value.format.filter(|f| f != "rle") {
            skipped.push(format!("{at}: a brush mask in format '{format}', not rle"));
            return Ok(None);
        }
        let mask = ls_rle::rle_to_mask(&value.rle, width, height).map_err(|e| {
            // The codec says where in the stream; the region says where in the file.
            let message = if e.at == "rle" {
                e.message
            } else {
                format!("{}: {}", e.at, e.message)
            };
            InteropError::new(&at, message)
        })?;
        (value.labels, Shape::Rle(Rle::from_mask(&mask)))
    } else if kind.starts_with("polygon") {
        let value = PolygonValue::deserialize(&region.value).map_err(value_error)?;
        if value.points.len() < 3 {
            skipped.push(format!("{at}: a polygon of {} points", value.points.len()));
            return Ok(None);
        }
        let ring = value.points.into_iter().map(pixel).collect();
        (value.labels, Shape::Polygons(vec![vec![ring]]))
    } else {
        let value = RectangleValue::deserialize(&region.value).map_err(value_error)?;
        if value.rotation != 0.0 {
            skipped.push(format!(
                "{at}: a box rotated by {}°; rotated boxes are not read",
                value.rotation
            ));
            return Ok(None);
        }
        let [x0, y0] = pixel([value.x, value.y]);
        let [x1, y1] = pixel([value.x + value.width, value.y + value.height]);
        (value.labels, Shape::rectangle(x0, y0, x1, y1))
    };
    Ok(Some(ForeignInstance {
        class_name: labels.into_iter().next(),
        shape,
        at,
        score: region.score.or(task_score),
    }))
}

/// A task's `data` in file order (serde_json's own map sorts its keys), for "the first string value"
/// when there is no `image` key (a labeling config may name its image `$img` or `$url`).
#[derive(Default)]
struct DataEntries(Vec<(String, Value)>);

impl DataEntries {
    fn string(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.as_str())
    }

    fn image(&self) -> Option<&str> {
        self.string("image").or_else(|| {
            self.0
                .iter()
                .find_map(|(k, v)| v.as_str().filter(|_| k != SHA256_KEY))
        })
    }
}

impl<'de> Deserialize<'de> for DataEntries {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor;
        impl<'de> Visitor<'de> for EntriesVisitor {
            type Value = DataEntries;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<DataEntries, M::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(DataEntries(entries))
            }
        }
        deserializer.deserialize_map(EntriesVisitor)
    }
}

#[derive(Serialize)]
struct OutTask {
    data: OutData,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    annotations: Vec<OutAnnotation>,
}

#[derive(Serialize)]
struct OutData {
    image: String,
    lamina_sha256: String,
}

#[derive(Serialize)]
struct OutAnnotation {
    result: Vec<OutRegion>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    was_cancelled: bool,
}

#[derive(Serialize)]
struct OutRegion {
    id: String,
    from_name: &'static str,
    to_name: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    original_width: u32,
    original_height: u32,
    image_rotation: u32,
    value: OutBrush,
}

#[derive(Serialize)]
struct OutBrush {
    format: &'static str,
    rle: Vec<u8>,
    brushlabels: Vec<String>,
}

/// The bundle as a Label Studio export, one task per asset (in the bundle's order), one line per task.
///
/// An asset gets an annotation when it has instances or was submitted or skipped (an empty submitted
/// annotation says "nothing here"); a skipped asset's is `was_cancelled`, Label Studio's skip. Assets
/// still to label get none, so Label Studio does not count them as done. Fails only on an instance
/// whose mask does not decode or is not its image's size (a bundle from `parse_bundle` has none).
pub fn write(bundle: &Bundle) -> Result<String, InteropError> {
    let mut by_asset: HashMap<&str, Vec<&Instance>> = HashMap::new();
    for instance in &bundle.instances {
        by_asset
            .entry(instance.asset_id.as_str())
            .or_default()
            .push(instance);
    }
    let mut lines = Vec::with_capacity(bundle.assets.len());
    for asset in &bundle.assets {
        let instances = by_asset
            .get(asset.id.as_str())
            .map_or(&[][..], Vec::as_slice);
        let mut result = Vec::with_capacity(instances.len());
        for instance in instances {
            let at = || format!("instance '{}'", instance.id);
            let rle = Rle::decompress(&instance.mask)
                .map_err(|e| InteropError::new(at(), e.to_string()))?;
            if (rle.width, rle.height) != (asset.width, asset.height) {
                return Err(InteropError::new(
                    at(),
                    format!(
                        "its mask is {}×{} but image '{}' is {}×{}",
                        rle.width, rle.height, asset.name, asset.width, asset.height
                    ),
                ));
            }
            let class = bundle
                .ontology
                .class(&instance.class_id)
                .map_or_else(|| instance.class_id.clone(), |c| c.name.clone());
            result.push(OutRegion {
                id: instance.id.clone(),
                from_name: "label",
                to_name: "image",
                kind: "brushlabels",
                original_width: asset.width,
                original_height: asset.height,
                image_rotation: 0,
                value: OutBrush {
                    format: "rle",
                    rle: ls_rle::mask_to_rle(&rle.to_mask()),
                    brushlabels: vec![class],
                },
            });
        }
        let annotated = !result.is_empty()
            || matches!(asset.status, LabelStatus::Submitted | LabelStatus::Skipped);
        let task = OutTask {
            data: OutData {
                image: asset.uri.clone().unwrap_or_else(|| asset.name.clone()),
                lamina_sha256: asset.sha256.clone(),
            },
            annotations: if annotated {
                vec![OutAnnotation {
                    result,
                    was_cancelled: asset.status == LabelStatus::Skipped,
                }]
            } else {
                Vec::new()
            },
        };
        lines.push(
            serde_json::to_string(&task)
                .map_err(|e| InteropError::new(&asset.name, e.to_string()))?,
        );
    }
    Ok(format!("[\n{}\n]\n", lines.join(",\n")))
}

#[cfg(test)]
mod tests {
    use lamina_core::bundle::BundleProject;
    use lamina_core::labels::{Asset, Ontology, Provenance, Tool};
    use lamina_core::mask::Mask;
    use serde_json::json;

    use super::*;

    fn one_task(result: Value) -> String {
        json!([{"id": 7, "data": {"image": "/data/upload/1/1a2b3c4d-a.png"}, "annotations": [{"result": result}]}])
            .to_string()
    }

    fn region(id: &str, kind: &str, value: Value) -> Value {
        json!({"id": id, "type": kind, "from_name": "label", "to_name": "image",
               "original_width": 200, "original_height": 100, "value": value})
    }

    #[test]
    fn polygon_and_box_percentages_become_pixels() {
        let json = one_task(json!([
            region(
                "p",
                "polygonlabels",
                json!({"points": [[10, 20], [50, 20], [50, 60]], "polygonlabels": ["Tumor"]})
            ),
            region(
                "r",
                "rectanglelabels",
                json!({"x": 10, "y": 20, "width": 40, "height": 40, "rotation": 0,
                                                   "rectanglelabels": ["Stroma"]})
            ),
        ]));
        let labels = read(&json).unwrap();
        let image = &labels.images[0];
        assert_eq!(image.name, "/data/upload/1/1a2b3c4d-a.png");
        assert_eq!((image.width, image.height), (Some(200), Some(100)));
        let polygon = &image.instances[0];
        assert_eq!(polygon.class_name.as_deref(), Some("Tumor"));
        assert_eq!(polygon.at, "task 7, region 'p'");
        assert_eq!(
            polygon.shape,
            Shape::Polygons(vec![vec![vec![[20.0, 20.0], [100.0, 20.0], [100.0, 60.0]]]])
        );
        assert_eq!(
            image.instances[1].shape,
            Shape::rectangle(20.0, 20.0, 100.0, 60.0)
        );
        assert_eq!(image.instances[1].class_name.as_deref(), Some("Stroma"));
    }

    #[test]
    fn a_brush_region_decodes_to_its_mask() {
        let mut mask = Mask::new(200, 100);
        mask.fill_rect(3.0, 4.0, 13.0, 9.0, true);
        let rle = ls_rle::mask_to_rle(&mask);
        let json = one_task(json!([region(
            "b",
            "brushlabels",
            json!({"format": "rle", "rle": rle, "brushlabels": ["Neoplastic"]})
        )]));
        let labels = read(&json).unwrap();
        let instance = &labels.images[0].instances[0];
        assert_eq!(instance.shape.to_mask(200, 100).unwrap(), mask);
        assert_eq!(instance.class_name.as_deref(), Some("Neoplastic"));
    }

    #[test]
    fn cancelled_annotations_are_passed_over() {
        let polygon = |id: &str| {
            region(
                id,
                "polygonlabels",
                json!({"points": [[0, 0], [50, 0], [50, 50]]}),
            )
        };
        let json = json!([
            {"id": 1, "data": {"image": "a.png"}, "annotations": [
                {"was_cancelled": true, "result": [polygon("cancelled")]},
                {"was_cancelled": false, "result": [polygon("kept")]}]},
            {"id": 2, "data": {"image": "b.png"},
             "annotations": [{"was_cancelled": true, "result": []}],
             "predictions": [{"result": [polygon("predicted")]}]},
        ])
        .to_string();
        let labels = read(&json).unwrap();
        assert_eq!(labels.images.len(), 1);
        assert_eq!(labels.images[0].instances[0].at, "task 1, region 'kept'");
        assert_eq!(labels.images[0].instances[0].class_name, None);
        assert_eq!(
            labels.skipped,
            ["task 2: every annotation was cancelled (skipped in Label Studio)"]
        );
    }

    #[test]
    fn predictions_are_read_when_there_is_no_annotation_with_their_scores() {
        let polygon = |id: &str, score: Option<f64>| {
            let mut r = region(
                id,
                "polygonlabels",
                json!({"points": [[0, 0], [50, 0], [50, 50]]}),
            );
            if let Some(s) = score {
                r["score"] = json!(s);
            }
            r
        };
        // One task object rather than an array; its image under another key than `image`, first in
        // the file but not in alphabetical order.
        let predictions =
            json!([{"score": 0.5, "result": [polygon("a", Some(0.9)), polygon("b", None)]}]);
        let json = format!(
            r#"{{"id": 3, "data": {{"zeta": "first.png", "alpha": "second.png"}}, "predictions": {predictions}}}"#
        );
        let labels = read(&json).unwrap();
        let image = &labels.images[0];
        assert_eq!(image.name, "first.png");
        let scores: Vec<_> = image.instances.iter().map(|i| i.score).collect();
        assert_eq!(scores, [Some(0.9), Some(0.5)]);
    }

    #[test]
    fn results_that_are_not_areas_are_listed_as_skipped() {
        let json = one_task(json!([
            region("k", "keypointlabels", json!({"x": 1, "y": 2, "keypointlabels": ["Mitosis"]})),
            {"type": "choices", "from_name": "quality", "to_name": "image", "value": {"choices": ["good"]}},
            region("r", "rectanglelabels", json!({"x": 1, "y": 1, "width": 5, "height": 5, "rotation": 30})),
        ]));
        let labels = read(&json).unwrap();
        assert_eq!(labels.instance_count(), 0);
        assert_eq!(
            labels.skipped,
            [
                "task 7, region 'k': a keypointlabels result, not an area",
                "task 7, result 2: a choices result, not an area",
                "task 7, region 'r': a box rotated by 30°; rotated boxes are not read",
            ]
        );
    }

    #[test]
    fn bad_input_is_refused_naming_the_task_and_region() {
        let error = |json: &str| read(json).unwrap_err().to_string();
        assert!(error("{not json").starts_with("the file: not JSON"));
        assert!(error("42").starts_with(
            "the file: invalid type: integer `42`, expected an array of Label Studio tasks"
        ));

        let small = ls_rle::mask_to_rle(&Mask::new(10, 10));
        let brush = |rle: &[u8]| {
            region(
                "abc",
                "brushlabels",
                json!({"format": "rle", "rle": rle, "brushlabels": ["X"]}),
            )
        };
        assert_eq!(
            error(&one_task(json!([brush(&small)]))),
            "task 7, region 'abc': rle has 400 values, a 200×100 image needs 80000"
        );
        let full = ls_rle::mask_to_rle(&Mask::new(200, 100));
        let cut = error(&one_task(json!([brush(&full[..full.len() - 2])])));
        assert!(cut.starts_with("task 7, region 'abc': rle byte"), "{cut}");
        assert!(cut.contains("the stream ends at value"), "{cut}");

        let mut sizeless = region(
            "p",
            "polygonlabels",
            json!({"points": [[0, 0], [1, 0], [1, 1]]}),
        );
        sizeless.as_object_mut().unwrap().remove("original_width");
        assert!(error(&one_task(json!([sizeless])))
            .starts_with("task 7, region 'p': no original_width"));

        let pointless = region("q", "polygonlabels", json!({"polygonlabels": ["X"]}));
        assert!(error(&one_task(json!([pointless])))
            .contains("task 7, region 'q': value: missing field `points`"));
    }

    fn instance(id: &str, asset: &Asset, class_id: &str, mask: &Mask) -> Instance {
        let rle = Rle::from_mask(mask);
        Instance {
            id: id.into(),
            asset_id: asset.id.clone(),
            class_id: class_id.into(),
            mask: rle.compress(),
            bbox: rle.bbox(),
            area: rle.area(),
            provenance: Provenance {
                tool: Tool::Brush,
                prompts: Vec::new(),
                model_id: None,
                author: None,
                created: "2024-01-01T00:00:00Z".into(),
                updated: "2024-01-01T00:00:00Z".into(),
                score: None,
            },
            status: Default::default(),
        }
    }

    fn asset(id: &str, name: &str, status: LabelStatus) -> Asset {
        Asset {
            id: id.into(),
            name: name.into(),
            sha256: format!("{id:0>64}"),
            width: 6,
            height: 4,
            metadata: Default::default(),
            uri: None,
            status,
            stage: Default::default(),
        }
    }

    #[test]
    fn written_tasks_read_back_to_the_same_masks_and_classes() {
        let project = BundleProject {
            id: "p".into(),
            name: "P".into(),
        };
        let mut bundle = Bundle::new(project, Ontology::pannuke());
        let a = asset("a", "a.png", LabelStatus::InProgress);
        let mut b = asset("b", "b.png", LabelStatus::Unlabeled);
        b.uri = Some("https://example.org/b.png".into());
        let mut one = Mask::new(6, 4);
        one.fill_rect(0.0, 0.0, 2.0, 3.0, true);
        let mut two = Mask::new(6, 4);
        two.set(5, 3, true);
        bundle.instances = vec![
            instance("i1", &a, "neoplastic", &one),
            instance("i2", &a, "dead", &two),
        ];
        bundle.assets = vec![a, b];

        let text = write(&bundle).unwrap();
        let tasks: Value = serde_json::from_str(&text).unwrap();
        let region = &tasks[0]["annotations"][0]["result"][1];
        assert_eq!(region["id"], "i2");
        assert_eq!(region["type"], "brushlabels");
        assert_eq!(region["value"]["brushlabels"], json!(["Dead"]));
        assert_eq!(tasks[1]["data"]["image"], "https://example.org/b.png");
        assert!(
            tasks[1].get("annotations").is_none(),
            "an unlabeled image gets no annotation"
        );

        let back = read(&text).unwrap();
        assert_eq!(back.images.len(), 1);
        let image = &back.images[0];
        assert_eq!(image.name, "a.png");
        assert_eq!(image.sha256, Some(format!("{:0>64}", "a")));
        let masks: Vec<_> = image
            .instances
            .iter()
            .map(|i| i.shape.to_mask(6, 4).unwrap())
            .collect();
        assert_eq!(masks, [one, two]);
        let classes: Vec<_> = image
            .instances
            .iter()
            .map(|i| i.class_name.as_deref())
            .collect();
        assert_eq!(classes, [Some("Neoplastic"), Some("Dead")]);
        assert_eq!(
            back.skipped,
            ["1 task has no annotation or prediction (task #2 (no id))"]
        );
    }
}
