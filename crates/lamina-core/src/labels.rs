//! The data model every layer shares: project, ontology, asset, instance, statuses, provenance.
//!
//! Geometry is stored once per instance, as a COCO compressed RLE in image pixels; every other shape
//! (polygons, boxes for export) is derived from it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::rle::CompressedRle;

/// Timestamps are RFC 3339 strings made by the caller (the browser's `Date.toISOString()`), so the core
/// needs no clock and stays deterministic in tests.
pub type Timestamp = String;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Project {
    pub id: String,
    pub name: String,
    pub created: Timestamp,
    pub ontology: Ontology,
    /// Who may approve and reject (names as labels carry them); empty: anyone. A setting of this app
    /// only: it cannot stop a teammate with write access to a shared bucket from acting as a reviewer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reviewers: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassDef {
    /// Stable id referenced by instances; renaming a class keeps its id.
    pub id: String,
    pub name: String,
    /// `#rrggbb`.
    pub color: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ontology {
    pub classes: Vec<ClassDef>,
}

impl Ontology {
    /// PanNuke's five nucleus classes, with the colours PanNuke's figures use.
    pub fn pannuke() -> Self {
        let class = |id: &str, name: &str, color: &str| ClassDef {
            id: id.to_owned(),
            name: name.to_owned(),
            color: color.to_owned(),
        };
        Ontology {
            classes: vec![
                class("neoplastic", "Neoplastic", "#ff0000"),
                class("inflammatory", "Inflammatory", "#00ff00"),
                class("connective", "Connective", "#0000ff"),
                class("dead", "Dead", "#ffff00"),
                class("epithelial", "Epithelial", "#ff8000"),
            ],
        }
    }

    pub fn class(&self, id: &str) -> Option<&ClassDef> {
        self.classes.iter().find(|c| c.id == id)
    }

    /// Ids must be unique and non-empty and colours `#rrggbb`: instances refer to classes by id, and the
    /// canvas parses the colour.
    pub fn validate(&self) -> Result<(), String> {
        let mut seen = std::collections::BTreeSet::new();
        for c in &self.classes {
            if c.id.trim().is_empty() {
                return Err(format!("class {:?} has an empty id", c.name));
            }
            if !seen.insert(c.id.as_str()) {
                return Err(format!("class id {:?} is used twice", c.id));
            }
            if parse_hex_color(&c.color).is_none() {
                return Err(format!(
                    "class {:?} has colour {:?}, expected #rrggbb",
                    c.id, c.color
                ));
            }
        }
        Ok(())
    }
}

/// `#rrggbb` → (r, g, b).
pub fn parse_hex_color(s: &str) -> Option<(u8, u8, u8)> {
    let hex = s.strip_prefix('#')?;
    if hex.len() != 6 || !hex.is_ascii() {
        return None;
    }
    let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
    Some((byte(0)?, byte(2)?, byte(4)?))
}

/// Where an image stands in labeling.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelStatus {
    #[default]
    Unlabeled,
    InProgress,
    Submitted,
    /// Left out on purpose (unusable image, out of scope); its own stage in review.
    Skipped,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Asset {
    pub id: String,
    pub name: String,
    /// Hex sha256 of the file bytes as imported.
    pub sha256: String,
    pub width: u32,
    pub height: u32,
    #[serde(default)]
    pub metadata: BTreeMap<String, serde_json::Value>,
    /// Where the image can be fetched from, when it came from a URL manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    #[serde(default)]
    pub status: LabelStatus,
    /// Derived from `status`, the labels and the review events ([`crate::review::stage_of`]); kept here
    /// so lists and exports need not derive it again.
    #[serde(default)]
    pub stage: crate::review::Stage,
}

/// The tool that produced (or last reshaped) an instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tool {
    Brush,
    Eraser,
    Polygon,
    Box,
    SamClick,
    SamBox,
    /// Imported from a mask set or another tool's export.
    Import,
    /// Predicted by a model run over a batch, and not yet looked at: drawn apart, and replaced by the
    /// next pre-label run of the image ([`crate::prelabel`]).
    PreLabel,
    /// A pre-label a person accepted, reshaped or re-classed: a label like any other from then on,
    /// keeping the model id and score it came with.
    PreLabelAccepted,
}

/// A prompt in image pixels, kept so a suggestion can be reproduced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Prompt {
    Point { x: f64, y: f64, positive: bool },
    Box { x0: f64, y0: f64, x1: f64, y1: f64 },
    Polygon { points: Vec<[f64; 2]> },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    pub tool: Tool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prompts: Vec<Prompt>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    pub created: Timestamp,
    pub updated: Timestamp,
    /// The model's confidence (its predicted IoU for SAM-family models), for pre-labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f32>,
}

/// Review state of one instance (the review workflow fills in the last two).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstanceStatus {
    #[default]
    Draft,
    Submitted,
    Approved,
    Rejected,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    pub id: String,
    pub asset_id: String,
    pub class_id: String,
    /// The canonical geometry, in image pixels.
    pub mask: CompressedRle,
    /// `[x, y, w, h]` in image pixels, derived from `mask`.
    pub bbox: [u32; 4],
    /// Foreground pixels, derived from `mask`.
    pub area: u64,
    pub provenance: Provenance,
    #[serde(default)]
    pub status: InstanceStatus,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pannuke_preset_is_valid_and_has_the_five_classes() {
        let o = Ontology::pannuke();
        assert_eq!(o.validate(), Ok(()));
        let names: Vec<_> = o.classes.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "Neoplastic",
                "Inflammatory",
                "Connective",
                "Dead",
                "Epithelial"
            ]
        );
    }

    #[test]
    fn ontology_rejects_duplicate_ids_and_bad_colours() {
        let mut o = Ontology::pannuke();
        o.classes[1].id = "neoplastic".into();
        assert!(o.validate().unwrap_err().contains("twice"));
        let mut o = Ontology::pannuke();
        o.classes[0].color = "red".into();
        assert!(o.validate().unwrap_err().contains("#rrggbb"));
    }

    #[test]
    fn statuses_serialize_as_snake_case() {
        assert_eq!(
            serde_json::to_string(&LabelStatus::InProgress).unwrap(),
            "\"in_progress\""
        );
        assert_eq!(
            serde_json::to_string(&Tool::SamClick).unwrap(),
            "\"sam_click\""
        );
    }
}
