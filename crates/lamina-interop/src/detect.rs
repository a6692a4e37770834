//! Which tool a labels file comes from, and reading it whichever it is.

use std::collections::HashMap;

use serde_json::Value;

use crate::foreign::ForeignLabels;
use crate::labelbox::RgbImage;
use crate::{coco_import, cvat, labelbox, labelstudio, qupath, InteropError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    QuPath,
    Labelbox,
    Cvat,
    Coco,
    LabelStudio,
}

impl Format {
    pub const ALL: [Format; 5] = [
        Format::QuPath,
        Format::Labelbox,
        Format::Cvat,
        Format::Coco,
        Format::LabelStudio,
    ];

    /// The name used on the command line and in the app.
    pub fn key(self) -> &'static str {
        match self {
            Format::QuPath => "qupath",
            Format::Labelbox => "labelbox",
            Format::Cvat => "cvat",
            Format::Coco => "coco",
            Format::LabelStudio => "labelstudio",
        }
    }

    /// The tool's name, for messages and the labels' provenance.
    pub fn tool(self) -> &'static str {
        match self {
            Format::QuPath => "QuPath",
            Format::Labelbox => "Labelbox",
            Format::Cvat => "CVAT",
            Format::Coco => "COCO",
            Format::LabelStudio => "Label Studio",
        }
    }

    pub fn parse(s: &str) -> Result<Format, String> {
        Format::ALL
            .into_iter()
            .find(|f| f.key() == s)
            .ok_or_else(|| {
                let keys: Vec<_> = Format::ALL.iter().map(|f| f.key()).collect();
                format!("'{s}' is not one of {}", keys.join(", "))
            })
    }
}

/// The format of a file from its name and its first bytes; `None` when it looks like none of them.
pub fn detect(file_name: &str, text: &str) -> Option<Format> {
    let lower = file_name.to_lowercase();
    if lower.ends_with(".geojson") {
        return Some(Format::QuPath);
    }
    if lower.ends_with(".xml")
        || text
            .trim_start_matches('\u{feff}')
            .trim_start()
            .starts_with('<')
    {
        return Some(Format::Cvat);
    }
    if lower.ends_with(".ndjson") {
        return Some(Format::Labelbox);
    }
    let whole: Option<Value> = serde_json::from_str(text).ok();
    let first_line: Option<Value> = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .and_then(|l| serde_json::from_str(l).ok());
    match whole {
        Some(Value::Object(o))
            if o.get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.starts_with("Feature")) =>
        {
            Some(Format::QuPath)
        }
        Some(Value::Object(o)) if o.contains_key("images") && o.contains_key("annotations") => {
            Some(Format::Coco)
        }
        Some(Value::Object(o)) if o.contains_key("data") => Some(Format::LabelStudio),
        Some(Value::Array(items)) => match items.first() {
            Some(f) if f.get("type").and_then(Value::as_str) == Some("Feature") => {
                Some(Format::QuPath)
            }
            Some(t) if t.get("data").is_some() => Some(Format::LabelStudio),
            _ => None,
        },
        _ => match first_line {
            Some(l) if l.get("dataRow").is_some() || l.get("data_row").is_some() => {
                Some(Format::Labelbox)
            }
            _ => None,
        },
    }
}

/// Reads one file of `format`. `file_name` names the image for QuPath's per-image files; `masks` are
/// the decoded PNGs a Labelbox file refers to (empty for other formats).
pub fn read(
    format: Format,
    file_name: &str,
    text: &str,
    masks: &HashMap<String, RgbImage>,
) -> Result<ForeignLabels, InteropError> {
    match format {
        Format::QuPath => qupath::read(file_name, text),
        Format::Labelbox => labelbox::read(text, masks),
        Format::Cvat => cvat::read(text),
        Format::Coco => coco_import::read(text),
        Format::LabelStudio => labelstudio::read(text),
    }
}

/// Several files read as one (QuPath writes a file per image).
pub fn merge(parts: Vec<ForeignLabels>) -> ForeignLabels {
    let mut out = ForeignLabels::default();
    for part in parts {
        for image in part.images {
            let into = out.image_mut(&image.name);
            into.instances.extend(image.instances);
            into.sha256 = into.sha256.take().or(image.sha256);
            into.width = into.width.or(image.width);
            into.height = into.height.or(image.height);
        }
        for (name, color) in part.class_colors {
            out.class_colors.entry(name).or_insert(color);
        }
        out.skipped.extend(part.skipped);
    }
    out
}
