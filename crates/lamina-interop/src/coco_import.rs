//! COCO instances JSON in: CVAT's "COCO 1.0" export, Lamina's own, and other tools'.
//!
//! `{images, categories, annotations}`: images by `file_name` (with their size), categories by id → name,
//! each annotation's `segmentation` as polygons (`[[x1, y1, x2, y2, …], …]`, several being the parts of
//! one instance), uncompressed RLE (`{size: [h, w], counts: [n, …]}`) or compressed RLE (`counts` a
//! string). CVAT writes masks as uncompressed RLE with `iscrowd: 1`; here that is an ordinary instance,
//! as a mask drawn around one nucleus is one nucleus, not a crowd.
//!
//! Each image, category and annotation is decoded on its own, so a malformed one is named ("annotation
//! 12: …") rather than reported at a line and column of a file that is often one line long.

use std::collections::{BTreeMap, HashMap};

use lamina_core::rle::{CompressedRle, Rle};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use crate::foreign::{ForeignImage, ForeignInstance, ForeignLabels, Shape};
use crate::InteropError;

#[derive(Deserialize)]
struct CocoFile {
    images: Vec<Value>,
    #[serde(default)]
    categories: Vec<Value>,
    #[serde(default)]
    annotations: Vec<Value>,
}

#[derive(Deserialize)]
struct CocoImage {
    id: u64,
    file_name: String,
    width: Option<u32>,
    height: Option<u32>,
}

#[derive(Deserialize)]
struct CocoCategory {
    id: u64,
    name: String,
}

#[derive(Deserialize)]
struct CocoAnnotation {
    // `id` is read beforehand, to name the annotation even when the rest of it cannot be decoded.
    image_id: u64,
    /// Absent (or null) when the tool gives the instance no class.
    category_id: Option<u64>,
    segmentation: Option<Value>,
    bbox: Option<Vec<f64>>,
    /// Present in results files (a model's predictions).
    score: Option<f64>,
}

#[derive(Deserialize)]
struct RleObject {
    size: [u32; 2],
    counts: Counts,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Counts {
    Uncompressed(Vec<u32>),
    Compressed(String),
}

/// Reads a COCO instances file. Fails on what is not JSON or not a COCO instances file, on an image or
/// category that cannot be read, and on an annotation whose image or category is not in the file or
/// whose geometry is malformed, naming it by its id.
pub fn read(json: &str) -> Result<ForeignLabels, InteropError> {
    let value: Value = serde_json::from_str(json).map_err(|e| {
        InteropError::new(
            format!("line {}, column {}", e.line(), e.column()),
            format!("not JSON: {e}"),
        )
    })?;
    if value.is_array() {
        return Err(InteropError::new(
            "file",
            "a list of annotations (a COCO results file) names no images; import the instances \
             file with its images and categories, with the predictions' scores in its annotations",
        ));
    }
    let file: CocoFile = serde_json::from_value(value)
        .map_err(|e| InteropError::new("file", format!("not a COCO instances file: {e}")))?;

    let mut out = ForeignLabels::default();
    // Image id → its index in `out.images`, which keeps the file's order.
    let mut images: HashMap<u64, usize> = HashMap::new();
    for (index, raw) in file.images.into_iter().enumerate() {
        let image: CocoImage = decode(raw, || format!("image {}", index + 1))?;
        let at = || format!("image {} ('{}')", image.id, image.file_name);
        if images.insert(image.id, out.images.len()).is_some() {
            return Err(InteropError::new(at(), "another image has the same id"));
        }
        out.images.push(ForeignImage {
            width: image.width,
            height: image.height,
            ..ForeignImage::named(image.file_name)
        });
    }
    let mut categories: BTreeMap<u64, String> = BTreeMap::new();
    for (index, raw) in file.categories.into_iter().enumerate() {
        let category: CocoCategory = decode(raw, || format!("category {}", index + 1))?;
        if categories.insert(category.id, category.name).is_some() {
            return Err(InteropError::new(
                format!("category {}", category.id),
                "another category has the same id",
            ));
        }
    }
    for (index, raw) in file.annotations.into_iter().enumerate() {
        // Named by id when it has one, else by its place in the list.
        let fallback = || format!("annotation #{} (no id)", index + 1);
        let raw_id = raw.get("id").and_then(Value::as_u64);
        let at = raw_id.map_or_else(fallback, |id| format!("annotation {id}"));
        let annotation: CocoAnnotation = decode(raw, || at.clone())?;
        read_annotation(annotation, &at, &images, &categories, &mut out)?;
    }
    Ok(out)
}

/// One element of a list, with its place named on failure.
fn decode<T: DeserializeOwned>(raw: Value, at: impl Fn() -> String) -> Result<T, InteropError> {
    serde_json::from_value(raw).map_err(|e| InteropError::new(at(), e.to_string()))
}

fn read_annotation(
    annotation: CocoAnnotation,
    at: &str,
    images: &HashMap<u64, usize>,
    categories: &BTreeMap<u64, String>,
    out: &mut ForeignLabels,
) -> Result<(), InteropError> {
    let &image_index = images.get(&annotation.image_id).ok_or_else(|| {
        InteropError::new(
            at,
            format!("image_id {} is not in the images", annotation.image_id),
        )
    })?;
    let class_name = match annotation.category_id {
        None => None,
        Some(id) => Some(categories.get(&id).cloned().ok_or_else(|| {
            InteropError::new(at, format!("category_id {id} is not in the categories"))
        })?),
    };
    let image = &out.images[image_index];
    let place = format!("{at} (image '{}')", image.name);
    let has_box = annotation.bbox.is_some();
    let read = match &annotation.segmentation {
        Some(object @ Value::Object(_)) => rle(object, image).map(Ok),
        Some(Value::Array(parts)) if !parts.is_empty() => polygons(parts),
        // Boxes locate nuclei but do not outline them: not a label Lamina can hold.
        Some(Value::Array(_)) | Some(Value::Null) | None if has_box => {
            Ok(Err("no segmentation, only a box"))
        }
        Some(Value::Array(_)) | Some(Value::Null) | None => Ok(Err("no segmentation")),
        Some(_) => Err("segmentation is neither polygons nor an RLE object".to_owned()),
    };
    match read.map_err(|m| InteropError::new(&place, m))? {
        Ok(shape) => out.images[image_index].instances.push(ForeignInstance {
            class_name,
            shape,
            at: at.to_owned(),
            score: annotation.score,
        }),
        Err(reason) => out.skipped.push(format!("{place}: {reason}")),
    }
    Ok(())
}

/// Flattened polygons, the parts of one instance, or why they are no area (`Ok(Err(reason))`).
fn polygons(parts: &[Value]) -> Result<Result<Shape, &'static str>, String> {
    let mut polygons = Vec::new();
    for (index, part) in parts.iter().enumerate() {
        let coords: Vec<f64> = serde_json::from_value(part.clone())
            .map_err(|_| format!("polygon {} is not a list of numbers", index + 1))?;
        if coords.len() % 2 != 0 {
            return Err(format!(
                "polygon {} has {} numbers, not x, y pairs",
                index + 1,
                coords.len()
            ));
        }
        let ring: Vec<[f64; 2]> = coords.chunks_exact(2).map(|xy| [xy[0], xy[1]]).collect();
        // Fewer than three points enclose nothing (pycocotools draws nothing for them either).
        if ring.len() >= 3 {
            polygons.push(vec![ring]);
        }
    }
    if polygons.is_empty() {
        return Ok(Err("no polygon of three points or more: no area"));
    }
    Ok(Ok(Shape::Polygons(polygons)))
}

/// `{size: [h, w], counts}`, compressed or not, which must be the size of its image.
fn rle(segmentation: &Value, image: &ForeignImage) -> Result<Shape, String> {
    let object: RleObject = serde_json::from_value(segmentation.clone())
        .map_err(|e| format!("segmentation is not an RLE {{size: [h, w], counts}}: {e}"))?;
    let [height, width] = object.size;
    if let (Some(w), Some(h)) = (image.width, image.height) {
        if (w, h) != (width, height) {
            return Err(format!(
                "its RLE is {width}×{height} (size [{height}, {width}]) but the image is {w}×{h}"
            ));
        }
    }
    let decoded = match object.counts {
        Counts::Uncompressed(counts) => Rle::from_counts(height, width, counts),
        Counts::Compressed(counts) => Rle::decompress(&CompressedRle {
            size: object.size,
            counts,
        }),
    };
    decoded.map(Shape::Rle).map_err(|e| e.to_string())
}
