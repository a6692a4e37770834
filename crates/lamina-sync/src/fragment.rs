//! A fragment: one labeler's labels for some images of one batch, written once and never changed.
//!
//! Each image's labels carry a **revision** (the sha256 of its status and instances, so equal content has
//! equal revisions on every device) and the **parents** it was edited from. Revisions and parents form a
//! small history per image from which every reader computes the same current versions ("heads").

use lamina_core::bundle::instance_problems;
use lamina_core::image_header::check_size;
use lamina_core::labels::{Instance, LabelStatus};
use lamina_core::model_manifest::sha256_hex;
use lamina_core::review::ReviewEvent;
use serde::{Deserialize, Serialize};

use crate::{layout, SyncError};

pub const FORMAT: &str = "lamina-labels-fragment";
/// The most labels one image may carry in a fragment (a crowded 1000x1000 H&E tile has a few thousand).
pub const MAX_INSTANCES_PER_IMAGE: usize = 20_000;

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

/// The checks a bundle import makes, on one image's labels from a teammate: a sane image size, not too
/// many labels, and each mask the size of the image (checked before anything is decoded), decoding to the
/// bbox and area it states.
fn check_labels(asset: &AssetLabels) -> Result<(), String> {
    let n = asset.instances.len();
    if n > MAX_INSTANCES_PER_IMAGE {
        return Err(format!(
            "image `{}` has {n} labels, more than the {MAX_INSTANCES_PER_IMAGE} Lamina takes for one image",
            asset.asset_id
        ));
    }
    // Fragments name the image they were drawn on; without that, the first mask's size stands for it.
    let (width, height) = match (&asset.image, asset.instances.first()) {
        (Some(image), _) => (image.width, image.height),
        (None, Some(first)) => (first.mask.size[1], first.mask.size[0]),
        (None, None) => return Ok(()),
    };
    check_size(width, height).map_err(|e| format!("image `{}`: {e}", asset.asset_id))?;
    for i in &asset.instances {
        if let Some(problem) = instance_problems(i, width, height).first() {
            return Err(format!(
                "label `{}` of image `{}`: {problem}",
                i.id, asset.asset_id
            ));
        }
    }
    Ok(())
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
            check_labels(asset).map_err(bad)?;
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
                counts: "02>".into(),
            },
            bbox: [0, 0, 1, 2],
            area: 2,
            provenance: Provenance {
                tool: Tool::Brush,
                prompts: vec![],
                model_id: None,
                author: Some("alice".into()),
                created: "2026-11-27T00:00:00Z".into(),
                updated: "2026-11-27T00:00:00Z".into(),
                score: None,
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

    /// A fragment that is self-consistent (its revision matches) but whose labels no bundle import would
    /// accept: refused whole, with the reason, before anything is adopted or decoded.
    #[test]
    fn hostile_labels_are_refused_like_a_bundle_import_refuses_them() {
        let parse = |mut labels: AssetLabels| {
            labels.revision = revision_of(labels.status, &labels.instances);
            let f = Fragment::new("b1", "mallory", "2026-12-02T10:00:00Z", vec![labels]).unwrap();
            let bytes = f.to_bytes();
            Fragment::parse(&f.key_for(&bytes), "b1", &bytes)
        };
        let image = ImageInfo {
            sha256: "ab".repeat(32),
            width: 4,
            height: 4,
        };
        let good = AssetLabels::new(
            "img".into(),
            vec![],
            LabelStatus::InProgress,
            vec![instance("a", "img", "dead")],
        )
        .with_image(image.clone());
        parse(good.clone()).expect("a sound fragment reads");

        // A mask that claims 65535x65535 with a bbox over the image: decoding it would take ~4 GB.
        let mut huge = good.clone();
        huge.instances[0].mask.size = [65535, 65535];
        huge.instances[0].bbox = [0, 0, 65535, 65535];
        let err = parse(huge).unwrap_err().to_string();
        assert!(
            err.contains("mask size 65535x65535") && err.contains("4x4"),
            "{err}"
        );

        // The image itself claims to be huge, and so do its masks.
        let mut huge_image = good.clone();
        huge_image.image = Some(ImageInfo {
            width: 65535,
            height: 65535,
            ..image.clone()
        });
        for i in &mut huge_image.instances {
            i.mask.size = [65535, 65535];
        }
        let err = parse(huge_image).unwrap_err().to_string();
        assert!(err.contains("larger than Lamina opens"), "{err}");

        let mut lying = good.clone();
        lying.instances[0].area = 7;
        let err = parse(lying).unwrap_err().to_string();
        assert!(err.contains("area 7 but the mask has 2"), "{err}");

        let mut no_image = good.clone();
        no_image.image = None;
        no_image.instances[0].mask.size = [20_000, 20_000];
        let err = parse(no_image).unwrap_err().to_string();
        assert!(err.contains("larger than Lamina opens"), "{err}");

        let mut crowded = good;
        crowded.instances = (0..MAX_INSTANCES_PER_IMAGE + 1)
            .map(|k| instance(&format!("i{k}"), "img", "dead"))
            .collect();
        let err = parse(crowded).unwrap_err().to_string();
        assert!(err.contains("more than"), "{err}");
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
