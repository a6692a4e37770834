//! A batch manifest on an endpoint: `batches/{batch}/manifest.json` (or `.csv`), the manifest format of
//! `lamina_core::image_list` plus, for JSON, optional `name` and `ontology` beside the `assets` list.
//!
//! Each asset needs a stable id, the same on every device: its `id` field, else its name. Its image is
//! found by `url`/`key`: an absolute `http(s)://` URL is fetched as it is; anything else is an object key,
//! relative to the manifest's folder, or to the endpoint root when it starts with `/` (so S3 images are
//! fetched with signed requests and never need to be public).

use std::collections::{BTreeMap, BTreeSet};

use lamina_core::image_list::{parse_manifest, ManifestError};
use lamina_core::labels::Ontology;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::layout;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "at", rename_all = "snake_case")]
pub enum ImageLocation {
    /// An object key under the endpoint root.
    Key(String),
    /// A full URL, fetched as it is.
    Url(String),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchAsset {
    pub id: String,
    pub name: String,
    pub location: ImageLocation,
    pub sha256: Option<String>,
    pub metadata: BTreeMap<String, Value>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct BatchManifest {
    pub batch: String,
    pub name: Option<String>,
    pub ontology: Option<Ontology>,
    pub assets: Vec<BatchAsset>,
    /// Rows skipped, each with where and why; the rest of the batch imports.
    pub problems: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BatchError {
    #[error("the manifest of batch `{0}` cannot be read: {1}")]
    Manifest(String, ManifestError),
    #[error("the ontology in the manifest of batch `{0}` is not valid: {1}")]
    Ontology(String, String),
}

pub fn parse_batch_manifest(batch: &str, text: &str) -> Result<BatchManifest, BatchError> {
    let manifest = parse_manifest(text).map_err(|e| BatchError::Manifest(batch.to_owned(), e))?;
    let (name, ontology) = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(obj)) => {
            let name = obj.get("name").and_then(Value::as_str).map(str::to_owned);
            let ontology = match obj.get("ontology") {
                Some(v) => {
                    let o: Ontology = serde_json::from_value(v.clone())
                        .map_err(|e| BatchError::Ontology(batch.to_owned(), e.to_string()))?;
                    o.validate()
                        .map_err(|e| BatchError::Ontology(batch.to_owned(), e))?;
                    Some(o)
                }
                None => None,
            };
            (name, ontology)
        }
        _ => (None, None),
    };
    let folder = layout::batch_prefix(batch);
    let mut problems = manifest.problems;
    let mut ids = BTreeSet::new();
    let mut assets = Vec::new();
    for mut entry in manifest.entries {
        let id = match entry.metadata.remove("id") {
            Some(Value::String(s)) if !s.is_empty() => s,
            Some(Value::Number(n)) => n.to_string(),
            _ => entry.name.clone(),
        };
        if !ids.insert(id.clone()) {
            problems.push(format!(
                "{}: the id `{id}` is used twice; the later row is skipped",
                entry.name
            ));
            continue;
        }
        let url = entry.url.trim();
        let location = if url.starts_with("http://") || url.starts_with("https://") {
            ImageLocation::Url(url.to_owned())
        } else if let Some(rooted) = url.strip_prefix('/') {
            ImageLocation::Key(rooted.to_owned())
        } else {
            ImageLocation::Key(format!("{folder}{}", url.trim_start_matches("./")))
        };
        assets.push(BatchAsset {
            id,
            name: entry.name,
            location,
            sha256: entry.sha256,
            metadata: entry.metadata,
        });
    }
    Ok(BatchManifest {
        batch: batch.to_owned(),
        name,
        ontology,
        assets,
        problems,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_batch_gives_ids_locations_ontology_and_skips_bad_rows() {
        let text = r##"{"name": "Colon batch", "ontology": {"classes": [{"id": "nucleus", "name": "Nucleus", "color": "#ff0000"}]},
          "assets": [
            {"id": "t1", "url": "images/t1.png", "organ": "colon", "sha256": "AB"},
            {"id": "t2", "key": "/shared/t2.png"},
            {"id": "t3", "url": "https://cdn.example.org/t3.png"},
            {"id": "t1", "url": "images/dup.png"},
            {"url": ""}
          ]}"##;
        let m = parse_batch_manifest("b1", text).unwrap();
        assert_eq!(m.name.as_deref(), Some("Colon batch"));
        assert_eq!(m.ontology.unwrap().classes[0].id, "nucleus");
        let ids: Vec<_> = m.assets.iter().map(|a| a.id.as_str()).collect();
        // t1 has a bad sha256, so it is reported and skipped; the duplicate t1 is then the first t1.
        assert_eq!(ids, ["t2", "t3", "t1"]);
        assert_eq!(
            m.assets[0].location,
            ImageLocation::Key("shared/t2.png".into())
        );
        assert_eq!(
            m.assets[1].location,
            ImageLocation::Url("https://cdn.example.org/t3.png".into())
        );
        assert_eq!(
            m.assets[2].location,
            ImageLocation::Key("batches/b1/images/dup.png".into())
        );
        assert_eq!(m.problems.len(), 2, "{:?}", m.problems);
        assert!(m.problems.iter().any(|p| p.contains("sha256")));
    }

    #[test]
    fn a_csv_batch_works_and_garbage_is_a_clear_error() {
        let m = parse_batch_manifest("b1", "id,url,organ\na,images/a.png,liver\n").unwrap();
        assert_eq!(m.assets[0].metadata["organ"], "liver");
        let err = parse_batch_manifest("b1", "{ not json").unwrap_err();
        assert!(err.to_string().contains("batch `b1`"), "{err}");
    }
}
