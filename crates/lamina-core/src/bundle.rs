//! The JSON label bundle: the one file labels leave the device in (documented in `docs/bundle.md`).
//!
//! Parsing never trusts the file: every reference and every mask is checked, and all problems are
//! reported at once with where they are, so a user can fix a bundle in one pass.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::labels::{Asset, Instance, Ontology};
use crate::rle::Rle;

pub const BUNDLE_FORMAT: &str = "lamina.bundle";
/// Bumped on any change a version-1 reader would misread; readers refuse newer versions.
pub const BUNDLE_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BundleProject {
    pub id: String,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bundle {
    pub format: String,
    pub version: u32,
    pub project: BundleProject,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exported: Option<String>,
    pub ontology: Ontology,
    pub assets: Vec<Asset>,
    pub instances: Vec<Instance>,
}

impl Bundle {
    pub fn new(project: BundleProject, ontology: Ontology) -> Self {
        Bundle {
            format: BUNDLE_FORMAT.to_owned(),
            version: BUNDLE_VERSION,
            project,
            exported: None,
            ontology,
            assets: Vec::new(),
            instances: Vec::new(),
        }
    }

    pub fn to_json_pretty(&self) -> String {
        // Serializing plain structs with string keys cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BundleError {
    #[error("not valid JSON for a label bundle: {0}")]
    Json(String),
    #[error("not a Lamina label bundle: format is {0:?}, expected \"lamina.bundle\"")]
    WrongFormat(String),
    #[error("bundle version {0} is newer than this Lamina understands (up to {BUNDLE_VERSION})")]
    TooNew(u32),
    #[error("the bundle has {} problem(s):\n  {}", .0.len(), .0.join("\n  "))]
    Invalid(Vec<String>),
}

/// Parse and fully validate a bundle.
pub fn parse_bundle(json: &str) -> Result<Bundle, BundleError> {
    // Check the header first so a wrong file says "not a bundle" rather than "missing field".
    let header: serde_json::Value =
        serde_json::from_str(json).map_err(|e| BundleError::Json(e.to_string()))?;
    let format = header.get("format").and_then(|f| f.as_str()).unwrap_or("");
    if format != BUNDLE_FORMAT {
        return Err(BundleError::WrongFormat(format.to_owned()));
    }
    if let Some(v) = header.get("version").and_then(|v| v.as_u64()) {
        if v > u64::from(BUNDLE_VERSION) {
            return Err(BundleError::TooNew(v as u32));
        }
    }
    let bundle: Bundle =
        serde_json::from_value(header).map_err(|e| BundleError::Json(e.to_string()))?;
    let problems = validate(&bundle);
    if problems.is_empty() {
        Ok(bundle)
    } else {
        Err(BundleError::Invalid(problems))
    }
}

/// Every problem in a bundle, each naming where it is. Empty means valid.
pub fn validate(bundle: &Bundle) -> Vec<String> {
    let mut problems = Vec::new();
    if let Err(e) = bundle.ontology.validate() {
        problems.push(format!("ontology: {e}"));
    }
    let mut assets: BTreeMap<&str, &Asset> = BTreeMap::new();
    for (i, a) in bundle.assets.iter().enumerate() {
        if assets.insert(a.id.as_str(), a).is_some() {
            problems.push(format!("assets[{i}]: id {:?} is used twice", a.id));
        }
        if a.width == 0 || a.height == 0 {
            problems.push(format!(
                "assets[{i}] ({}): size {}x{} is empty",
                a.id, a.width, a.height
            ));
        }
        if a.sha256.len() != 64 || !a.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            problems.push(format!(
                "assets[{i}] ({}): sha256 is not 64 hex digits",
                a.id
            ));
        }
    }
    let mut ids = BTreeSet::new();
    for (i, inst) in bundle.instances.iter().enumerate() {
        let at = format!("instances[{i}] ({})", inst.id);
        if !ids.insert(inst.id.as_str()) {
            problems.push(format!("{at}: id is used twice"));
        }
        if bundle.ontology.class(&inst.class_id).is_none() {
            problems.push(format!(
                "{at}: class {:?} is not in the ontology",
                inst.class_id
            ));
        }
        let Some(asset) = assets.get(inst.asset_id.as_str()) else {
            problems.push(format!(
                "{at}: asset {:?} is not in the bundle",
                inst.asset_id
            ));
            continue;
        };
        let [h, w] = inst.mask.size;
        if (h, w) != (asset.height, asset.width) {
            problems.push(format!(
                "{at}: mask size {h}x{w} (h x w) does not match its image, {}x{}",
                asset.height, asset.width
            ));
            continue;
        }
        match Rle::decompress(&inst.mask) {
            Err(e) => problems.push(format!("{at}: mask: {e}")),
            Ok(rle) => {
                if rle.area() != inst.area {
                    problems.push(format!(
                        "{at}: area {} but the mask has {}",
                        inst.area,
                        rle.area()
                    ));
                }
                if rle.bbox() != inst.bbox {
                    problems.push(format!(
                        "{at}: bbox {:?} but the mask's is {:?}",
                        inst.bbox,
                        rle.bbox()
                    ));
                }
                if rle.area() == 0 {
                    problems.push(format!("{at}: mask is empty"));
                }
            }
        }
    }
    problems
}
