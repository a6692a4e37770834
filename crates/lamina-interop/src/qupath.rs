//! QuPath GeoJSON: one `FeatureCollection` per image, one feature per nucleus.
//!
//! QuPath's coordinates are full-resolution image pixels with the origin at the image's top-left
//! corner, the same as Lamina's, so the exported rings are the masks' exact pixel-edge boundaries and
//! read back to the same pixels. Holes are kept (a Polygon's later rings), a mask in several pieces is
//! a MultiPolygon, and rings are split where they would touch themselves (shapely and JTS, QuPath's
//! geometry library, call such rings invalid).
//!
//! Read: a `FeatureCollection`, a bare array of features (QuPath's default "Export as GeoJSON"), or one
//! feature. `cell` objects give their `nucleusGeometry` when they have one (the nucleus is what is
//! labeled here). Classes come from `classification.name` with `color: [r, g, b]` or the older packed
//! `colorRGB`; a feature without a classification has no class. QuPath's measurements are not kept.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use lamina_core::bundle::Bundle;
use lamina_core::labels::{parse_hex_color, Asset, Instance};
use lamina_core::rle::Rle;
use lamina_core::valid_polygons::{mask_to_valid_polygons, PolygonRings};

use crate::foreign::{ForeignInstance, ForeignLabels, Shape};
use crate::InteropError;

/// How QuPath should treat the exported objects: detections stay fast with thousands of nuclei;
/// annotations can be edited by hand there.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ObjectType {
    #[default]
    Detection,
    Annotation,
}

impl ObjectType {
    pub fn parse(s: &str) -> Result<ObjectType, String> {
        match s {
            "detection" => Ok(ObjectType::Detection),
            "annotation" => Ok(ObjectType::Annotation),
            other => Err(format!("'{other}' is not detection or annotation")),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            ObjectType::Detection => "detection",
            ObjectType::Annotation => "annotation",
        }
    }
}

/// The file name QuPath users expect for an image's objects: `<image name without extension>.geojson`.
pub fn file_name_for(asset: &Asset) -> String {
    let stem = asset
        .name
        .rsplit_once('.')
        .map_or(asset.name.as_str(), |(s, _)| s);
    format!("{stem}.geojson")
}

/// One image's instances as a QuPath `FeatureCollection`.
pub fn write_image(
    bundle: &Bundle,
    asset: &Asset,
    object_type: ObjectType,
) -> Result<String, InteropError> {
    let mut features = Vec::new();
    for instance in bundle.instances.iter().filter(|i| i.asset_id == asset.id) {
        features.push(feature(bundle, instance, object_type)?);
    }
    let collection = json!({"type": "FeatureCollection", "features": features});
    serde_json::to_string_pretty(&collection)
        .map_err(|e| InteropError::new(asset.name.clone(), e.to_string()))
}

fn feature(
    bundle: &Bundle,
    instance: &Instance,
    object_type: ObjectType,
) -> Result<Value, InteropError> {
    let rle = Rle::decompress(&instance.mask)
        .map_err(|e| InteropError::new(format!("label {}", instance.id), e.to_string()))?;
    let mut polygons = mask_to_valid_polygons(&rle.to_mask());
    for ring in polygons.iter_mut().flatten() {
        if let Some(&first) = ring.first() {
            ring.push(first); // GeoJSON rings are closed
        }
    }
    let geometry = match polygons.as_slice() {
        [one] => json!({"type": "Polygon", "coordinates": one}),
        many => json!({"type": "MultiPolygon", "coordinates": many}),
    };
    let mut properties = Map::new();
    properties.insert("objectType".into(), json!(object_type.as_str()));
    if let Some(class) = bundle.ontology.class(&instance.class_id) {
        let (r, g, b) = parse_hex_color(&class.color).unwrap_or((255, 0, 0));
        properties.insert(
            "classification".into(),
            json!({"name": class.name, "color": [r, g, b]}),
        );
    }
    properties.insert("isLocked".into(), json!(false));
    properties.insert("measurements".into(), json!({"Area px^2": instance.area}));
    Ok(json!({
        "type": "Feature",
        "id": instance.id,
        "geometry": geometry,
        "properties": properties,
    }))
}

#[derive(Deserialize)]
struct Feature {
    #[serde(rename = "type")]
    kind: Option<String>,
    geometry: Option<Value>,
    #[serde(default)]
    properties: Properties,
}

#[derive(Default, Deserialize)]
struct Properties {
    #[serde(rename = "objectType")]
    object_type: Option<String>,
    classification: Option<Classification>,
    #[serde(rename = "nucleusGeometry")]
    nucleus_geometry: Option<Value>,
}

#[derive(Deserialize)]
struct Classification {
    name: Option<String>,
    color: Option<[u8; 3]>,
    /// QuPath before 0.4: a packed, signed ARGB integer.
    #[serde(rename = "colorRGB")]
    color_rgb: Option<i64>,
}

/// The objects of one image's GeoJSON file; `image_name` is the image it belongs to (for QuPath's
/// per-image files, the file name: matching ignores the extension).
pub fn read(image_name: &str, text: &str) -> Result<ForeignLabels, InteropError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| InteropError::new(format!("line {}", e.line()), format!("not JSON: {e}")))?;
    let features: Vec<Value> =
        match value.get("type").and_then(Value::as_str) {
            Some("FeatureCollection") => match value.get("features") {
                Some(Value::Array(f)) => f.clone(),
                _ => {
                    return Err(InteropError::new(
                        "FeatureCollection",
                        "it has no features list",
                    ))
                }
            },
            Some("Feature") => vec![value],
            _ => match value {
                Value::Array(f) => f,
                _ => return Err(InteropError::new(
                    "top level",
                    "not GeoJSON: expected a FeatureCollection, a Feature or a list of features",
                )),
            },
        };
    let mut out = ForeignLabels::default();
    out.image_mut(image_name);
    for (n, raw) in features.into_iter().enumerate() {
        let at = format!("feature {}", n + 1);
        let feature: Feature = serde_json::from_value(raw)
            .map_err(|e| InteropError::new(at.clone(), format!("not a GeoJSON feature: {e}")))?;
        if feature.kind.as_deref() != Some("Feature") {
            return Err(InteropError::new(at, "its type is not \"Feature\""));
        }
        let props = feature.properties;
        let geometry = match (props.object_type.as_deref(), props.nucleus_geometry) {
            (Some("cell"), Some(nucleus)) => Some(nucleus),
            _ => feature.geometry,
        };
        let Some(geometry) = geometry else {
            out.skipped
                .push(format!("{image_name}, {at}: it has no geometry"));
            continue;
        };
        let polygons = match polygons(&geometry).map_err(|m| InteropError::new(at.clone(), m))? {
            Some(p) if !p.is_empty() => p,
            _ => {
                let kind = geometry.get("type").and_then(Value::as_str).unwrap_or("?");
                out.skipped
                    .push(format!("{image_name}, {at}: a {kind}, not an area"));
                continue;
            }
        };
        let class_name = props.classification.as_ref().and_then(|c| c.name.clone());
        if let (Some(name), Some(c)) = (&class_name, &props.classification) {
            let color = c.color.or_else(|| c.color_rgb.map(unpack_rgb));
            if let Some(color) = color {
                out.class_colors.entry(name.clone()).or_insert(color);
            }
        }
        out.image_mut(image_name).instances.push(ForeignInstance {
            class_name,
            shape: Shape::Polygons(polygons),
            at,
            score: None,
        });
    }
    Ok(out)
}

/// A packed ARGB integer (QuPath writes it signed) to RGB.
fn unpack_rgb(packed: i64) -> [u8; 3] {
    let v = packed as u32;
    [(v >> 16) as u8, (v >> 8) as u8, v as u8]
}

/// The polygons of a polygonal geometry; `None` for points and lines.
fn polygons(geometry: &Value) -> Result<Option<Vec<PolygonRings>>, String> {
    let coordinates = geometry.get("coordinates");
    match geometry.get("type").and_then(Value::as_str) {
        Some("Polygon") => Ok(Some(vec![rings(coordinates)?])),
        Some("MultiPolygon") => {
            let parts = coordinates
                .and_then(Value::as_array)
                .ok_or("a MultiPolygon's coordinates are not a list")?;
            Ok(Some(
                parts
                    .iter()
                    .map(|p| rings(Some(p)))
                    .collect::<Result<_, _>>()?,
            ))
        }
        Some("GeometryCollection") => {
            let mut all = Vec::new();
            for g in geometry
                .get("geometries")
                .and_then(Value::as_array)
                .ok_or("a GeometryCollection without geometries")?
            {
                all.extend(polygons(g)?.unwrap_or_default());
            }
            Ok(Some(all))
        }
        Some(_) => Ok(None),
        None => Err("its geometry has no type".into()),
    }
}

fn rings(coordinates: Option<&Value>) -> Result<Vec<Vec<[f64; 2]>>, String> {
    let rings: Vec<Vec<Vec<f64>>> = coordinates
        .cloned()
        .map(serde_json::from_value)
        .transpose()
        .map_err(|_| "a polygon's coordinates are not lists of [x, y] numbers".to_owned())?
        .ok_or("a polygon without coordinates")?;
    rings
        .into_iter()
        .map(|ring| {
            ring.into_iter()
                .map(|p| match p.as_slice() {
                    [x, y, ..] if x.is_finite() && y.is_finite() => Ok([*x, *y]),
                    _ => Err(format!("point {p:?} is not [x, y]")),
                })
                .collect()
        })
        .collect()
}
