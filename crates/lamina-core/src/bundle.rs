//! The JSON label bundle: the one file labels leave the device in (documented in `docs/bundle.md`).
//!
//! Parsing never trusts the file: every reference and every mask is checked, and all problems are
//! reported at once with where they are, so a user can fix a bundle in one pass.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::image_header::check_size;
use crate::labels::{Asset, Instance, Ontology};
use crate::review::{self, ReviewEvent, Stage};
use crate::rle::Rle;

pub const BUNDLE_FORMAT: &str = "lamina.bundle";
/// Bumped on any change an older reader would misread; readers refuse newer versions. Version 2 added
/// review: each asset's `stage` and the `review` event log. Version 1 bundles still read (their stages
/// are derived from the statuses).
pub const BUNDLE_VERSION: u32 = 2;

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
    /// Every review event (submit, approve, reject, issues, replies), oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub review: Vec<ReviewEvent>,
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
            review: Vec::new(),
        }
    }

    /// Each asset's stage as its status, labels and review events give it.
    pub fn derived_stages(&self) -> Vec<Stage> {
        let mut instances: BTreeMap<&str, Vec<Instance>> = BTreeMap::new();
        for i in &self.instances {
            instances
                .entry(i.asset_id.as_str())
                .or_default()
                .push(i.clone());
        }
        let mut events: BTreeMap<&str, Vec<&ReviewEvent>> = BTreeMap::new();
        for e in &self.review {
            events.entry(e.asset_id.as_str()).or_default().push(e);
        }
        self.assets
            .iter()
            .map(|a| {
                let labels = instances.get(a.id.as_str()).map_or(&[][..], Vec::as_slice);
                let events = events.get(a.id.as_str()).map_or(&[][..], Vec::as_slice);
                review::stage_of(a.status, &review::labels_digest(labels), events).stage
            })
            .collect()
    }

    /// Sets every asset's stage from its status, labels and review events.
    pub fn derive_stages(&mut self) {
        let stages = self.derived_stages();
        for (asset, stage) in self.assets.iter_mut().zip(stages) {
            asset.stage = stage;
        }
    }

    /// The images at `stage` only, with their labels and review events (e.g. "Done only" for training).
    pub fn only_stage(&self, stage: Stage) -> Bundle {
        let keep: BTreeSet<&str> = self
            .assets
            .iter()
            .filter(|a| a.stage == stage)
            .map(|a| a.id.as_str())
            .collect();
        Bundle {
            assets: self
                .assets
                .iter()
                .filter(|a| keep.contains(a.id.as_str()))
                .cloned()
                .collect(),
            instances: self
                .instances
                .iter()
                .filter(|i| keep.contains(i.asset_id.as_str()))
                .cloned()
                .collect(),
            review: self
                .review
                .iter()
                .filter(|e| keep.contains(e.asset_id.as_str()))
                .cloned()
                .collect(),
            ..self.clone()
        }
    }

    /// The bundle as a file, with every asset's stage derived afresh (a stage is never written that its
    /// history does not give, whoever built the bundle). Write bundles with this or [`Bundle::to_json`],
    /// never with serde directly: readers check the stages.
    pub fn to_json_pretty(&self) -> String {
        let mut out = self.clone();
        out.derive_stages();
        // Serializing plain structs with string keys cannot fail.
        serde_json::to_string_pretty(&out).unwrap_or_default()
    }

    /// The same, compact (for storage and the worker rather than people).
    pub fn to_json(&self) -> String {
        let mut out = self.clone();
        out.derive_stages();
        serde_json::to_string(&out).unwrap_or_default()
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
    let version = header.get("version").and_then(|v| v.as_u64()).unwrap_or(1);
    let mut bundle: Bundle =
        serde_json::from_value(header).map_err(|e| BundleError::Json(e.to_string()))?;
    let mut problems = validate(&bundle);
    if version < 2 {
        // Version 1 had no stages: each is what the image's status gives.
        bundle.derive_stages();
    } else {
        problems.extend(stage_problems(&bundle));
    }
    if problems.is_empty() {
        Ok(bundle)
    } else {
        Err(BundleError::Invalid(problems))
    }
}

/// A stage that its review history does not give (a hand-edited bundle): named, never silently changed.
fn stage_problems(bundle: &Bundle) -> Vec<String> {
    bundle
        .assets
        .iter()
        .zip(bundle.derived_stages())
        .enumerate()
        .filter(|(_, (a, derived))| a.stage != *derived)
        .map(|(i, (a, derived))| {
            format!(
                "assets[{i}] ({}): stage `{}` but its status and review history give `{}`",
                a.id,
                a.stage.key(),
                derived.key()
            )
        })
        .collect()
}

/// What is wrong with one instance's geometry on a `width` x `height` image: a mask of another size (not
/// decoded then, so a hostile size allocates nothing), an RLE that does not decode, a bbox or area that
/// disagrees with the mask, an empty mask. Shared by bundle imports and pulled sync fragments.
pub fn instance_problems(inst: &Instance, width: u32, height: u32) -> Vec<String> {
    let [h, w] = inst.mask.size;
    if (h, w) != (height, width) {
        return vec![format!(
            "mask size {h}x{w} (h x w) does not match its image, {height}x{width}"
        )];
    }
    let rle = match Rle::decompress(&inst.mask) {
        Err(e) => return vec![format!("mask: {e}")],
        Ok(rle) => rle,
    };
    let mut problems = Vec::new();
    if rle.area() != inst.area {
        problems.push(format!(
            "area {} but the mask has {}",
            inst.area,
            rle.area()
        ));
    }
    if rle.bbox() != inst.bbox {
        problems.push(format!(
            "bbox {:?} but the mask's is {:?}",
            inst.bbox,
            rle.bbox()
        ));
    }
    if rle.area() == 0 {
        problems.push("mask is empty".into());
    }
    problems
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
        } else if let Err(e) = check_size(a.width, a.height) {
            problems.push(format!("assets[{i}] ({}): {e}", a.id));
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
        if check_size(asset.width, asset.height).is_err() {
            continue; // said once, for the asset; its masks are not decoded
        }
        for p in instance_problems(inst, asset.width, asset.height) {
            problems.push(format!("{at}: {p}"));
        }
    }
    let mut events: BTreeMap<&str, &ReviewEvent> = BTreeMap::new();
    for (i, e) in bundle.review.iter().enumerate() {
        if events.insert(e.id.as_str(), e).is_some() {
            problems.push(format!("review[{i}] ({}): id is used twice", e.id));
        }
    }
    for (i, e) in bundle.review.iter().enumerate() {
        let image = assets
            .get(e.asset_id.as_str())
            .map_or(review::EventImage::Missing, |a| {
                review::EventImage::Size(a.width, a.height)
            });
        for p in review::event_problems(e, image, &events) {
            problems.push(format!("review[{i}] ({}): {p}", e.id));
        }
    }
    problems
}
