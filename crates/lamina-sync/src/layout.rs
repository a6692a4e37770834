//! Object keys under an endpoint's root (an S3 bucket and prefix, or a WebDAV base URL):
//!
//! ```text
//! batches/{batch}/manifest.json                         the batch: its images (and optionally its ontology)
//! batches/{batch}/labels/{labeler}/{time}-{hash}.json   immutable label fragments, one per push
//! batches/{batch}/index.json                            every fragment key: a cache readers can rebuild
//! ```
//!
//! A fragment's key holds its labeler and the hash of its bytes, so two devices never write the same key
//! with different content: a retried or repeated push rewrites identical bytes at most.

use crate::SyncError;

/// Batch and labeler ids become path segments: keep them to a safe alphabet.
pub fn check_id(id: &str, what: &'static str) -> Result<(), SyncError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(SyncError::BadId(id.to_owned(), what))
    }
}

pub fn batch_prefix(batch: &str) -> String {
    format!("batches/{batch}/")
}

pub fn manifest_key(batch: &str) -> String {
    format!("batches/{batch}/manifest.json")
}

pub fn index_key(batch: &str) -> String {
    format!("batches/{batch}/index.json")
}

pub fn labels_prefix(batch: &str) -> String {
    format!("batches/{batch}/labels/")
}

/// `created` is RFC 3339 (as in the fragment); its digits sort fragments by time within a labeler.
pub fn fragment_key(batch: &str, labeler: &str, created: &str, content_sha256: &str) -> String {
    let time: String = created
        .chars()
        .filter(char::is_ascii_digit)
        .take(17)
        .collect();
    let hash = &content_sha256[..content_sha256.len().min(16)];
    format!("batches/{batch}/labels/{labeler}/{time}-{hash}.json")
}

/// Whether `key` names a fragment of `batch` (listings also return manifests, indexes, stray files).
pub fn is_fragment_key(batch: &str, key: &str) -> bool {
    key.strip_prefix(&labels_prefix(batch))
        .and_then(|rest| rest.split_once('/'))
        .is_some_and(|(labeler, file)| {
            check_id(labeler, "labeler").is_ok() && file.ends_with(".json") && !file.contains('/')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_path_safe() {
        assert!(check_id("batch-01_a.b", "batch").is_ok());
        for bad in ["", "a/b", "..", "a b", "é", &"x".repeat(65)] {
            assert!(check_id(bad, "batch").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn fragment_keys_sort_by_time_and_are_recognised() {
        let a = fragment_key("b1", "alice", "2026-11-27T18:30:00.120Z", &"ab".repeat(32));
        let b = fragment_key("b1", "alice", "2026-11-27T18:31:00.000Z", &"00".repeat(32));
        assert_eq!(
            a,
            "batches/b1/labels/alice/20261127183000120-abababababababab.json"
        );
        assert!(a < b);
        assert!(is_fragment_key("b1", &a));
        assert!(!is_fragment_key("b1", "batches/b1/index.json"));
        assert!(!is_fragment_key("b2", &a));
        assert!(!is_fragment_key("b1", "batches/b1/labels/alice/x/y.json"));
    }
}

/// On a device, a batch's image `id` is stored as `{batch}~{id}` so two batches with the same image ids
/// never collide in one browser; fragments carry the bare id.
pub fn local_asset_id(batch: &str, sync_id: &str) -> String {
    format!("{batch}~{sync_id}")
}

/// The batch's id for a local image id (ids without the batch's prefix are taken as they are).
pub fn sync_asset_id<'a>(batch: &str, local_id: &'a str) -> &'a str {
    local_id
        .strip_prefix(batch)
        .and_then(|rest| rest.strip_prefix('~'))
        .unwrap_or(local_id)
}

#[cfg(test)]
mod id_tests {
    #[test]
    fn local_ids_round_trip() {
        let local = super::local_asset_id("b1", "tile-7");
        assert_eq!(local, "b1~tile-7");
        assert_eq!(super::sync_asset_id("b1", &local), "tile-7");
        assert_eq!(super::sync_asset_id("b1", "tile-7"), "tile-7");
        assert_eq!(super::sync_asset_id("b2", &local), "b1~tile-7");
    }
}
