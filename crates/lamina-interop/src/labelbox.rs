//! Labelbox NDJSON, in and out.
//!
//! Out: Labelbox's import format (one annotation per line, `dataRow.globalKey` = the image's file
//! name, `name` = the class), with masks as one composite PNG per image in which every instance has its
//! own colour (`mask: {instanceURI, colorRGB}`), or with `polygon` outlines instead. Offline we cannot
//! mint Labelbox URLs, so `instanceURI` is the PNG's path relative to the NDJSON file; upload the PNGs
//! and rewrite it before importing there.
//!
//! In: the same import lines (mask, polygon, bbox), and the rows of Labelbox's export (v2: one data row
//! per line with `projects.<id>.labels[].annotations.objects[]`). Masks are read from PNGs the caller
//! decodes ([`mask_uris`] names them; a URL is looked up by its last path part).

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use lamina_core::bundle::Bundle;
use lamina_core::labels::Asset;
use lamina_core::polygon::mask_to_polygons;
use lamina_core::rle::Rle;

use crate::foreign::{ForeignInstance, ForeignLabels, Shape};
use crate::plan::file_name;
use crate::InteropError;

/// A decoded 8-bit RGB picture, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct RgbImage {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

/// What an export writes: the NDJSON text, and the composite mask PNGs (as pixels) by relative path.
pub struct LabelboxExport {
    pub ndjson: String,
    pub composites: Vec<(String, RgbImage)>,
}

/// Folder of the composite masks, beside the NDJSON file.
pub const MASK_DIR: &str = "masks";

/// The bundle's labels as Labelbox import lines; `polygons` writes outlines (simplified with
/// `tolerance` image pixels; holes are filled) instead of composite masks.
pub fn write(
    bundle: &Bundle,
    polygons: bool,
    tolerance: f64,
) -> Result<LabelboxExport, InteropError> {
    let mut lines = Vec::new();
    let mut composites = Vec::new();
    for asset in &bundle.assets {
        let instances: Vec<_> = bundle
            .instances
            .iter()
            .filter(|i| i.asset_id == asset.id)
            .collect();
        if instances.is_empty() {
            continue;
        }
        let uri = composite_path(asset);
        let mut composite = RgbImage {
            width: asset.width,
            height: asset.height,
            rgb: vec![0; asset.width as usize * asset.height as usize * 3],
        };
        for (k, instance) in instances.iter().enumerate() {
            let rle = Rle::decompress(&instance.mask)
                .map_err(|e| InteropError::new(format!("label {}", instance.id), e.to_string()))?;
            let class = bundle
                .ontology
                .class(&instance.class_id)
                .map_or(instance.class_id.as_str(), |c| c.name.as_str());
            let mut line = json!({
                "uuid": uuid_for(&instance.id),
                "dataRow": {"globalKey": asset.name},
                "name": class,
            });
            if polygons {
                // Labelbox polygons are single rings: one line per part.
                for (part, ring) in mask_to_polygons(&rle.to_mask(), tolerance)
                    .into_iter()
                    .enumerate()
                {
                    let mut line = line.clone();
                    line["uuid"] = json!(uuid_for(&format!("{}#{part}", instance.id)));
                    line["polygon"] = json!(ring
                        .iter()
                        .map(|p| json!({"x": p[0], "y": p[1]}))
                        .collect::<Vec<_>>());
                    lines.push(line.to_string());
                }
                continue;
            }
            let color = instance_color(k);
            paint(&mut composite, &rle, color);
            line["mask"] = json!({"instanceURI": uri, "colorRGB": color});
            lines.push(line.to_string());
        }
        if !polygons {
            composites.push((uri, composite));
        }
    }
    let mut ndjson = lines.join("\n");
    ndjson.push('\n');
    Ok(LabelboxExport { ndjson, composites })
}

fn stem(name: &str) -> &str {
    name.rsplit_once('.').map_or(name, |(s, _)| s)
}

/// Distinct, never black: multiplying by an odd number is a bijection modulo 2^24, so instance k gets a
/// colour no other instance of the image has, spread over the cube so neighbours differ visibly.
fn instance_color(k: usize) -> [u8; 3] {
    let v = ((k as u64 + 1).wrapping_mul(2_654_435_761) & 0xff_ffff) as u32;
    [(v >> 16) as u8, (v >> 8) as u8, v as u8]
}

fn paint(image: &mut RgbImage, rle: &Rle, color: [u8; 3]) {
    let mask = rle.to_mask();
    for (i, _) in mask.data.iter().enumerate().filter(|(_, &v)| v != 0) {
        image.rgb[i * 3..i * 3 + 3].copy_from_slice(&color);
    }
}

/// A UUID-shaped id derived from the label's id, so exporting twice gives the same lines.
fn uuid_for(id: &str) -> String {
    let h = Sha256::digest(id.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The image a line is about, as Labelbox names it.
fn data_row_name(row: &Value) -> Option<String> {
    ["globalKey", "global_key", "external_id", "externalId"]
        .iter()
        .find_map(|k| row.get(k).and_then(Value::as_str))
        .or_else(|| row.get("row_data").and_then(Value::as_str).map(file_name))
        .map(str::to_owned)
}

/// Mask PNGs the file refers to (the caller decodes them for [`read`]).
pub fn mask_uris(text: &str) -> Vec<String> {
    let mut uris = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(value) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        collect_uris(&value, &mut uris);
    }
    uris.sort();
    uris.dedup();
    uris
}

fn collect_uris(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v.as_str()) {
                    ("instanceURI" | "url", Some(uri)) => out.push(uri.to_owned()),
                    _ => collect_uris(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_uris(v, out)),
        _ => {}
    }
}

#[derive(Deserialize)]
struct Point {
    x: f64,
    y: f64,
}

#[derive(Deserialize)]
struct BoundingBox {
    top: f64,
    left: f64,
    height: f64,
    width: f64,
}

#[derive(Deserialize)]
struct MaskRef {
    #[serde(alias = "instanceURI", alias = "url")]
    uri: String,
    #[serde(alias = "colorRGB", alias = "color_rgb")]
    color: Option<[u8; 3]>,
}

/// One annotation, in either the import or the export spelling.
#[derive(Deserialize)]
struct Object {
    name: Option<String>,
    #[serde(default)]
    polygon: Option<Vec<Point>>,
    #[serde(alias = "bounding_box")]
    bbox: Option<BoundingBox>,
    #[serde(alias = "composite_mask")]
    mask: Option<MaskRef>,
    /// Predictions may carry a confidence.
    confidence: Option<f64>,
}

/// Labelbox NDJSON (import lines or export rows). `masks` holds the decoded mask PNGs by their last
/// path part; a mask not there is skipped with the reason.
pub fn read(text: &str, masks: &HashMap<String, RgbImage>) -> Result<ForeignLabels, InteropError> {
    let mut out = ForeignLabels::default();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = format!("line {}", n + 1);
        let value: Value = serde_json::from_str(line)
            .map_err(|e| InteropError::new(at.clone(), format!("not JSON: {e}")))?;
        if let Some(row) = value.get("data_row") {
            read_export_row(&value, row, &at, masks, &mut out)?;
            continue;
        }
        let row = value.get("dataRow").ok_or_else(|| {
            InteropError::new(at.clone(), "no dataRow (or data_row): which image is this?")
        })?;
        let Some(name) = data_row_name(row) else {
            out.skipped.push(format!(
                "{at}: the data row is named by Labelbox id only; export with global keys (the image file names)"
            ));
            continue;
        };
        let object: Object = serde_json::from_value(value).map_err(|e| {
            InteropError::new(at.clone(), format!("not a Labelbox annotation: {e}"))
        })?;
        add_object(object, &name, at, masks, &mut out);
    }
    Ok(out)
}

fn read_export_row(
    value: &Value,
    row: &Value,
    at: &str,
    masks: &HashMap<String, RgbImage>,
    out: &mut ForeignLabels,
) -> Result<(), InteropError> {
    let name = data_row_name(row).ok_or_else(|| {
        InteropError::new(
            at,
            "the data row has no global_key, external_id or row_data",
        )
    })?;
    let image = out.image_mut(&name);
    image.width = value
        .pointer("/media_attributes/width")
        .and_then(Value::as_u64)
        .map(|v| v as u32);
    image.height = value
        .pointer("/media_attributes/height")
        .and_then(Value::as_u64)
        .map(|v| v as u32);
    let Some(projects) = value.get("projects").and_then(Value::as_object) else {
        return Ok(());
    };
    for project in projects.values() {
        // The first label of each project: Labelbox keeps one per labeler; a project's review picks one.
        let objects = project
            .pointer("/labels/0/annotations/objects")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for (k, raw) in objects.into_iter().enumerate() {
            let at = format!("{at}, object {}", k + 1);
            let object: Object = serde_json::from_value(raw).map_err(|e| {
                InteropError::new(at.clone(), format!("not a Labelbox object: {e}"))
            })?;
            add_object(object, &name, at, masks, out);
        }
    }
    Ok(())
}

fn add_object(
    object: Object,
    image: &str,
    at: String,
    masks: &HashMap<String, RgbImage>,
    out: &mut ForeignLabels,
) {
    let shape = if let Some(points) = object.polygon {
        Some(Shape::Polygons(vec![vec![points
            .iter()
            .map(|p| [p.x, p.y])
            .collect()]]))
    } else if let Some(mask) = object.mask {
        match masks.get(file_name(&mask.uri)) {
            Some(png) => {
                // A single-instance mask (no colour) is white on black.
                let color = mask.color.unwrap_or([255, 255, 255]);
                let inside = png.rgb.chunks_exact(3).map(|px| px == color).collect();
                Some(Shape::Patch {
                    left: 0,
                    top: 0,
                    width: png.width,
                    height: png.height,
                    inside,
                })
            }
            None => {
                out.skipped.push(format!(
                    "{image}, {at}: its mask {} was not given",
                    mask.uri
                ));
                None
            }
        }
    } else if let Some(b) = object.bbox {
        Some(Shape::rectangle(
            b.left,
            b.top,
            b.left + b.width,
            b.top + b.height,
        ))
    } else {
        out.skipped.push(format!(
            "{image}, {at}: no polygon, mask or box (a classification or a point?)"
        ));
        None
    };
    if let Some(shape) = shape {
        out.image_mut(image).instances.push(ForeignInstance {
            class_name: object.name,
            shape,
            at,
            score: object.confidence,
        });
    }
}

/// An asset's composite mask path, as [`write`] names it.
pub fn composite_path(asset: &Asset) -> String {
    format!("{MASK_DIR}/{}.png", stem(&asset.name))
}
