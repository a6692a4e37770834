//! A model run: a frozen copy of a project's labels with each image's split, and the prediction sets
//! imported into it.

use std::collections::BTreeMap;

use lamina_core::bundle::Bundle;
use lamina_core::labels::Asset;
use lamina_core::rle::CompressedRle;
use serde::{Deserialize, Serialize};

use crate::split::{assign_splits, Split, SplitFractions, SplitItem};

/// The metadata key that carries an image's split in a run's bundle.
pub const SPLIT_KEY: &str = "split";

/// What the user chose when making the run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub seed: u64,
    pub fractions: SplitFractions,
    /// A metadata field (e.g. `organ`) whose values are split on their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stratify: Option<String>,
}

/// `run.json` of the run zip, and the run record the app keeps (with the bundle beside it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub format: String,
    pub version: u32,
    pub id: String,
    pub created: String,
    #[serde(flatten)]
    pub spec: RunSpec,
    /// Images per split: train, val, test.
    pub counts: BTreeMap<Split, usize>,
}

pub const RUN_FORMAT: &str = "lamina.run";
pub const RUN_VERSION: u32 = 1;

/// The split recorded in an asset's metadata, if any.
pub fn split_of(asset: &Asset) -> Option<Split> {
    asset
        .metadata
        .get(SPLIT_KEY)
        .and_then(|v| v.as_str())
        .and_then(Split::parse)
}

/// The stratum of an asset: the field's value as text (numbers and booleans too), `None` when absent.
fn stratum(asset: &Asset, field: Option<&str>) -> Option<String> {
    let value = asset.metadata.get(field?)?;
    match value {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Freeze `source` (already narrowed to the run's images) into a run: each asset gets its split in
/// its metadata. The bundle is a copy: later edits to the project do not change it.
pub fn make_run(source: &Bundle, spec: &RunSpec, id: &str, created: &str) -> (RunInfo, Bundle) {
    let items: Vec<SplitItem> = source
        .assets
        .iter()
        .map(|a| SplitItem {
            sha256: &a.sha256,
            stratum: stratum(a, spec.stratify.as_deref()),
        })
        .collect();
    let splits = assign_splits(&items, &spec.fractions, spec.seed);
    let mut bundle = source.clone();
    let mut counts: BTreeMap<Split, usize> = Split::ALL.iter().map(|s| (*s, 0)).collect();
    for (asset, split) in bundle.assets.iter_mut().zip(&splits) {
        asset.metadata.insert(
            SPLIT_KEY.to_owned(),
            serde_json::Value::from(split.as_str()),
        );
        *counts.entry(*split).or_default() += 1;
    }
    bundle.exported = Some(created.to_owned());
    let info = RunInfo {
        format: RUN_FORMAT.to_owned(),
        version: RUN_VERSION,
        id: id.to_owned(),
        created: created.to_owned(),
        spec: spec.clone(),
        counts,
    };
    (info, bundle)
}

/// The bundle restricted to the images of one split (instances follow their images).
pub fn bundle_of_split(bundle: &Bundle, split: Split) -> Bundle {
    let mut out = bundle.clone();
    out.assets.retain(|a| split_of(a) == Some(split));
    let kept: std::collections::BTreeSet<&str> = out.assets.iter().map(|a| a.id.as_str()).collect();
    out.instances = bundle
        .instances
        .iter()
        .filter(|i| kept.contains(i.asset_id.as_str()))
        .cloned()
        .collect();
    out.review.retain(|e| kept.contains(e.asset_id.as_str()));
    out
}

/// One predicted instance, in the run's terms (its asset id and ontology class id).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub asset_id: String,
    pub class_id: String,
    pub score: f64,
    pub mask: CompressedRle,
}

/// One model iteration's predictions over (some of) the run's images.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PredictionSet {
    pub id: String,
    pub name: String,
    pub imported: String,
    /// The file it came from, as the user named it.
    pub source: String,
    pub predictions: Vec<Prediction>,
}
