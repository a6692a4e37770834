//! A fragment: one labeler's labels for some images of one batch, written once and never changed.
//!
//! Each image's labels carry a **revision** (the sha256 of its status and instances, so equal content has
//! equal revisions on every device) and the **parents** it was edited from. Revisions and parents form a
//! small history per image from which every reader computes the same current versions ("heads").

use lamina_core::labels::{Instance, LabelStatus};
use lamina_core::model_manifest::sha256_hex;
use lamina_core::review::ReviewEvent;
use serde::{Deserialize, Serialize};

use crate::{layout, SyncError};

pub const FORMAT: &str = "lamina-labels-fragment";
/// Version 2 added `review` (review events). Version 1 fragments still read: they have none.
pub const VERSION: u32 = 2;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fragment {
    pub format: String,
    pub version: u32,
    pub batch: String,
    pub labeler: String,
    /// RFC 3339, from the writer's clock (used for ordering keys and for display only).
    pub created: String,
    pub assets: Vec<AssetLabels>,
    /// Review events made on the writer's device since its last push (submit, approve, reject, issues,
    /// replies), filed under the batch's image ids. Immutable like labels: readers merge them by id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub review: Vec<ReviewEvent>,
}

/// The whole label set of one image, as one labeler left it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AssetLabels {
    /// The batch's id for the image (the same on every device that pulled the batch).
    pub asset_id: String,
    pub revision: String,
    /// The revisions this one replaces: the one it was edited from, and any it resolves a conflict with.
    #[serde(default)]
    pub parents: Vec<String>,
    pub status: LabelStatus,
    pub instances: Vec<Instance>,
    /// The image the labels were drawn on, so a reader can check it has the same one (not part of the
    /// revision: it never changes for an image).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageInfo>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageInfo {
    pub sha256: String,
    pub width: u32,
    pub height: u32,
}

/// `instances` filed under `asset_id`: the batch's id in a fragment, a device's own id locally.
pub fn refile<'a>(
    instances: impl IntoIterator<Item = &'a Instance>,
    asset_id: &str,
) -> Vec<Instance> {
    instances
        .into_iter()
        .map(|i| Instance {
            asset_id: asset_id.to_owned(),
            ..i.clone()
        })
        .collect()
}

/// The revision of an image's labels: independent of instance order and of who computes it.
pub fn revision_of(status: LabelStatus, instances: &[Instance]) -> String {
    let mut sorted: Vec<&Instance> = instances.iter().collect();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    // serde_json writes struct fields in declaration order, so the bytes are canonical for our types.
    let bytes = serde_json::to_vec(&(status, sorted)).unwrap_or_default();
    sha256_hex(&bytes)
}

impl AssetLabels {
    pub fn new(
        asset_id: String,
        parents: Vec<String>,
        status: LabelStatus,
        instances: Vec<Instance>,
    ) -> Self {
        let revision = revision_of(status, &instances);
        let mut parents = parents;
        parents.sort();
        parents.dedup();
        parents.retain(|p| *p != revision);
        AssetLabels {
            asset_id,
            revision,
            parents,
            status,
            instances,
            image: None,
        }
    }

    pub fn with_image(mut self, image: ImageInfo) -> Self {
        self.image = Some(image);
        self
    }
}

impl Fragment {
    pub fn new(
        batch: &str,
        labeler: &str,
        created: &str,
        assets: Vec<AssetLabels>,
    ) -> Result<Self, SyncError> {
        layout::check_id(batch, "batch id")?;
        layout::check_id(labeler, "labeler id")?;
        Ok(Fragment {
            format: FORMAT.into(),
            version: VERSION,
            batch: batch.into(),
            labeler: labeler.into(),
            created: created.into(),
            assets,
            review: Vec::new(),
        })
    }

    pub fn with_review(mut self, review: Vec<ReviewEvent>) -> Self {
        self.review = review;
        self
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Where these exact bytes go: the key holds the labeler and the hash of the content.
    pub fn key_for(&self, bytes: &[u8]) -> String {
        layout::fragment_key(
            &self.batch,
            &self.labeler,
            &self.created,
            &sha256_hex(bytes),
        )
    }

    /// Reads a fragment fetched from `key`, checking that it is what the key and batch promise and that
    /// every revision matches its content (a truncated or hand-edited object is refused, not merged).
    pub fn parse(key: &str, batch: &str, bytes: &[u8]) -> Result<Fragment, SyncError> {
        let bad = |reason: String| SyncError::BadFragment {
            key: key.to_owned(),
            reason,
        };
        let fragment: Fragment =
            serde_json::from_slice(bytes).map_err(|e| bad(format!("not readable JSON ({e})")))?;
        if fragment.format != FORMAT {
            return Err(bad(format!("format is `{}`", fragment.format)));
        }
        if !(1..=VERSION).contains(&fragment.version) {
            return Err(bad(format!(
                "version {} (this Lamina reads {VERSION})",
                fragment.version
            )));
        }
        if fragment.batch != batch {
            return Err(bad(format!("it belongs to batch `{}`", fragment.batch)));
        }
        let own_prefix = format!("{}{}/", layout::labels_prefix(batch), fragment.labeler);
        if !key.starts_with(&own_prefix) {
            return Err(bad(format!(
                "labeler `{}` does not own this key",
                fragment.labeler
            )));
        }
        for asset in &fragment.assets {
            if asset.revision != revision_of(asset.status, &asset.instances) {
                return Err(bad(format!(
                    "the labels of image `{}` do not match their revision",
                    asset.asset_id
                )));
            }
            if let Some(i) = asset
                .instances
                .iter()
                .find(|i| i.asset_id != asset.asset_id)
            {
                return Err(bad(format!(
                    "instance `{}` is filed under image `{}` but names `{}`",
                    i.id, asset.asset_id, i.asset_id
                )));
            }
        }
        if let Some(e) = fragment
            .review
            .iter()
            .find(|e| e.id.trim().is_empty() || e.author.trim().is_empty())
        {
            return Err(bad(format!(
                "a review event on image `{}` has no id or no author",
                e.asset_id
            )));
        }
        // Servers that ignore If-None-Match let anyone replace an object; the key's hash catches it.
        let hash = sha256_hex(bytes);
        let named = key
            .rsplit('/')
            .next()
            .and_then(|file| file.strip_suffix(".json"))
            .and_then(|stem| stem.rsplit('-').next())
            .unwrap_or_default();
        if named.is_empty() || !hash.starts_with(named) {
            return Err(bad(
                "its content is not what its key's hash names (it was replaced after it was written)".into(),
            ));
        }
        Ok(fragment)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use lamina_core::labels::{Provenance, Tool};
    use lamina_core::rle::CompressedRle;

    pub fn instance(id: &str, asset: &str, class: &str) -> Instance {
        Instance {
            id: id.into(),
            asset_id: asset.into(),
            class_id: class.into(),
            mask: CompressedRle {
                size: [4, 4],
                counts: "02000".into(),
            },
            bbox: [0, 0, 1, 1],
            area: 2,
            provenance: Provenance {
                tool: Tool::Brush,
                prompts: vec![],
                model_id: None,
                author: Some("alice".into()),
                created: "2026-11-27T00:00:00Z".into(),
                updated: "2026-11-27T00:00:00Z".into(),
            },
            status: Default::default(),
        }
    }

    #[test]
    fn revision_ignores_order_but_not_content() {
        let a = instance("a", "img", "neoplastic");
        let b = instance("b", "img", "dead");
        let s = LabelStatus::InProgress;
        assert_eq!(
            revision_of(s, &[a.clone(), b.clone()]),
            revision_of(s, &[b.clone(), a.clone()])
        );
        let mut b2 = b.clone();
        b2.class_id = "connective".into();
        assert_ne!(
            revision_of(s, &[a.clone(), b]),
            revision_of(s, &[a.clone(), b2])
        );
        assert_ne!(
            revision_of(s, std::slice::from_ref(&a)),
            revision_of(LabelStatus::Submitted, &[a])
        );
    }

    #[test]
    fn a_fragment_round_trips_and_a_tampered_one_is_refused() {
        let labels = AssetLabels::new(
            "img".into(),
            vec![],
            LabelStatus::InProgress,
            vec![instance("a", "img", "dead")],
        );
        let f = Fragment::new("b1", "alice", "2026-11-27T18:30:00Z", vec![labels]).unwrap();
        let bytes = f.to_bytes();
        let key = f.key_for(&bytes);
        assert_eq!(Fragment::parse(&key, "b1", &bytes).unwrap(), f);

        let tampered = String::from_utf8(bytes.clone())
            .unwrap()
            .replace("\"dead\"", "\"neoplastic\"");
        let err = Fragment::parse(&key, "b1", tampered.as_bytes()).unwrap_err();
        assert!(
            err.to_string().contains("do not match their revision"),
            "{err}"
        );

        let err = Fragment::parse(&key, "b2", &bytes).unwrap_err();
        assert!(err.to_string().contains("batch `b1`"), "{err}");
        let err = Fragment::parse("batches/b1/labels/bob/x.json", "b1", &bytes).unwrap_err();
        assert!(err.to_string().contains("does not own"), "{err}");
        let err = Fragment::parse(&key, "b1", &bytes[..bytes.len() / 2]).unwrap_err();
        assert!(err.to_string().contains("not readable JSON"), "{err}");

        // A different, self-consistent fragment put where this one was.
        let other = Fragment::new("b1", "alice", "2026-11-27T18:30:00Z", vec![]).unwrap();
        let err = Fragment::parse(&key, "b1", &other.to_bytes()).unwrap_err();
        assert!(
            err.to_string().contains("replaced after it was written"),
            "{err}"
        );
    }
}
