//! What a device knows of the server, and what a pull means for each image.
//!
//! The [`Ledger`] of a batch remembers every fragment read so far (so a pull fetches only new ones) and,
//! per image, each revision seen with its parents. A revision no other revision names as a parent is a
//! **head**: a current version of that image on the server. With one labeler per image there is one head;
//! two labelers who edited the same image from the same starting point leave two, which is a conflict that
//! only a person resolves, by pushing a revision whose parents name both. Nothing is ever overwritten:
//! every revision stays on the server.

use std::collections::{BTreeMap, BTreeSet};

use lamina_core::labels::LabelStatus;
use serde::{Deserialize, Serialize};

use crate::fragment::Fragment;

/// One image's revision as found in one fragment (its labels stay in the fragment).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteEntry {
    pub asset_id: String,
    pub revision: String,
    pub parents: Vec<String>,
    pub labeler: String,
    pub created: String,
    pub fragment_key: String,
    pub status: LabelStatus,
    pub instance_count: usize,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Ledger {
    /// Keys of every fragment already read.
    pub fragments: BTreeSet<String>,
    /// Per image, every revision seen on the server.
    pub entries: BTreeMap<String, Vec<RemoteEntry>>,
}

/// A device's own state for one image.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalAsset {
    /// The server revision the local labels were last equal to (pushed or adopted), if any.
    pub base: Option<String>,
    /// The revision of the local labels now.
    pub revision: String,
    /// Local changes not pushed yet.
    pub dirty: bool,
    /// Revisions this device uploaded without recording the upload (storage full or a crash between
    /// the two): its own, so finding them on the server is no news and no conflict.
    #[serde(default)]
    pub sent: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Nothing new on the server for this image, nothing to send.
    UpToDate,
    /// Only local changes: push them.
    Push,
    /// Someone else's newer version, and no local change: take it.
    Adopt(RemoteEntry),
    /// Versions that must not silently replace each other: `mine` (the local labels' revision, when they
    /// are not already one of `theirs`' ancestors) and the server's heads the device has not seen.
    Conflict {
        mine: Option<String>,
        theirs: Vec<RemoteEntry>,
    },
}

impl Ledger {
    pub fn knows(&self, fragment_key: &str) -> bool {
        self.fragments.contains(fragment_key)
    }

    /// Adds a fragment read from `key`. Reading the same key again changes nothing.
    pub fn record(&mut self, key: &str, fragment: &Fragment) {
        if !self.fragments.insert(key.to_owned()) {
            return;
        }
        for asset in &fragment.assets {
            self.entries
                .entry(asset.asset_id.clone())
                .or_default()
                .push(RemoteEntry {
                    asset_id: asset.asset_id.clone(),
                    revision: asset.revision.clone(),
                    parents: asset.parents.clone(),
                    labeler: fragment.labeler.clone(),
                    created: fragment.created.clone(),
                    fragment_key: key.to_owned(),
                    status: asset.status,
                    instance_count: asset.instances.len(),
                });
        }
    }

    /// Image ids with any revision on the server.
    pub fn asset_ids(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// The current versions of an image on the server, oldest first; one entry per revision (the first
    /// fragment that carried it).
    ///
    /// A revision is replaced once another fragment names it as a parent. Revisions are content hashes,
    /// so labels undone back to an earlier pushed version make that version again, naming the one it
    /// undid: a cycle (A, then B from A, then A from B). Inside a cycle a parent can only name what was
    /// pushed before it, so there a fragment replaces only earlier ones, and the undo is the head.
    pub fn heads(&self, asset_id: &str) -> Vec<RemoteEntry> {
        self.heads_given(asset_id, &self.cyclic_revisions(asset_id))
    }

    /// [`Ledger::heads`], with the image's cyclic revisions already worked out.
    fn heads_given(&self, asset_id: &str, cyclic: &BTreeSet<String>) -> Vec<RemoteEntry> {
        let Some(entries) = self.entries.get(asset_id) else {
            return vec![];
        };
        let replaced = |e: &RemoteEntry| {
            entries.iter().any(|f| {
                f.parents.contains(&e.revision)
                    && (!cyclic.contains(&e.revision) || entry_order(f, e).is_gt())
            })
        };
        // A revision several fragments carry (equal labels made twice) stands for the earliest of them,
        // whatever order this device read them in, so every device lists the same heads the same way.
        let mut earliest: BTreeMap<&str, &RemoteEntry> = BTreeMap::new();
        for e in entries.iter().filter(|e| !replaced(e)) {
            let slot = earliest.entry(e.revision.as_str()).or_insert(e);
            if entry_order(e, slot).is_lt() {
                *slot = e;
            }
        }
        let mut heads: Vec<RemoteEntry> = earliest.into_values().cloned().collect();
        if heads.is_empty() {
            // Every fragment is replaced by a later one: clocks of several devices disagree about a
            // cycle. The latest stands (nothing is deleted: every revision stays on the server).
            heads.extend(entries.iter().max_by(|a, b| entry_order(a, b)).cloned());
        }
        heads.sort_by(entry_order);
        heads
    }

    /// Revisions that are their own ancestor (labels undone back to an earlier pushed version).
    fn cyclic_revisions(&self, asset_id: &str) -> BTreeSet<String> {
        let entries = self.entries.get(asset_id).map(Vec::as_slice).unwrap_or(&[]);
        let revisions: BTreeSet<&str> = entries.iter().map(|e| e.revision.as_str()).collect();
        revisions
            .into_iter()
            .filter(|r| {
                entries
                    .iter()
                    .filter(|e| e.revision == *r)
                    .flat_map(|e| e.parents.iter())
                    .any(|p| self.with_ancestors(asset_id, p).contains(*r))
            })
            .map(str::to_owned)
            .collect()
    }

    /// `revision` and every revision it replaces, transitively.
    fn with_ancestors(&self, asset_id: &str, revision: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut todo = vec![revision.to_owned()];
        let entries = self.entries.get(asset_id).map(Vec::as_slice).unwrap_or(&[]);
        while let Some(r) = todo.pop() {
            if !out.insert(r.clone()) {
                continue;
            }
            for e in entries.iter().filter(|e| e.revision == r) {
                todo.extend(e.parents.iter().cloned());
            }
        }
        out
    }

    /// What a pull means for one image, given the device's own state for it.
    pub fn decide(&self, asset_id: &str, local: &LocalAsset) -> Decision {
        let cyclic = self.cyclic_revisions(asset_id);
        let heads = self.heads_given(asset_id, &cyclic);
        let mut known = match &local.base {
            Some(base) => self.with_ancestors(asset_id, base),
            None => BTreeSet::new(),
        };
        for sent in &local.sent {
            known.extend(self.with_ancestors(asset_id, sent));
        }
        // A head in a cycle is an ancestor of everything in that cycle by revision; it is known only when
        // it is the device's own base (else it is labels someone undid back to, after the base).
        let is_known = |h: &RemoteEntry| {
            local.base.as_deref() == Some(h.revision.as_str())
                || local.sent.contains(&h.revision)
                || (known.contains(&h.revision) && !cyclic.contains(&h.revision))
        };
        let new: Vec<RemoteEntry> = heads
            .iter()
            .filter(|h| !is_known(h) && h.revision != local.revision)
            .cloned()
            .collect();
        if new.is_empty() {
            return if local.dirty {
                Decision::Push
            } else {
                Decision::UpToDate
            };
        }
        // Our last synced version is still a head beside the new ones: they were made without it.
        let mine_is_a_head = local
            .base
            .as_ref()
            .is_some_and(|b| heads.iter().any(|h| &h.revision == b));
        // Labels made on this device before any sync, or nothing at all: an empty image adopts freely.
        let local_is_new_work = local.base.is_none() && local.dirty;
        if let (false, false, [only]) = (local.dirty, mine_is_a_head, new.as_slice()) {
            return Decision::Adopt(only.clone());
        }
        let mine = if local.dirty || mine_is_a_head || local_is_new_work {
            Some(local.revision.clone())
        } else {
            None
        };
        Decision::Conflict { mine, theirs: new }
    }

    /// Parents for a revision that resolves a conflict: everything it replaces, so every device sees one
    /// head afterwards.
    pub fn resolution_parents(&self, asset_id: &str, local: &LocalAsset) -> Vec<String> {
        let mut parents: Vec<String> = self
            .heads(asset_id)
            .into_iter()
            .map(|h| h.revision)
            .collect();
        parents.push(local.revision.clone());
        parents.extend(local.base.iter().cloned());
        parents.sort();
        parents.dedup();
        parents
    }
}

/// Oldest first; equal times by labeler, then by fragment key: a total order every device agrees on.
fn entry_order(a: &RemoteEntry, b: &RemoteEntry) -> std::cmp::Ordering {
    a.created
        .cmp(&b.created)
        .then(a.labeler.cmp(&b.labeler))
        .then(a.fragment_key.cmp(&b.fragment_key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fragment::tests::instance;
    use crate::fragment::{revision_of, AssetLabels};

    fn push(
        ledger: &mut Ledger,
        labeler: &str,
        time: &str,
        asset: &str,
        parents: Vec<String>,
        classes: &[&str],
    ) -> String {
        let instances = classes
            .iter()
            .enumerate()
            .map(|(i, c)| instance(&format!("{labeler}{i}"), asset, c))
            .collect();
        let labels = AssetLabels::new(asset.into(), parents, LabelStatus::InProgress, instances);
        let rev = labels.revision.clone();
        let f = Fragment::new("b", labeler, time, vec![labels]).unwrap();
        let bytes = f.to_bytes();
        ledger.record(&f.key_for(&bytes), &f);
        rev
    }

    /// Found by the soak: an upload whose record was lost (storage full) is this device's own, not a
    /// conflict, and the next push names it as a parent.
    #[test]
    fn an_upload_this_device_did_not_record_is_no_conflict() {
        let mut l = Ledger::default();
        let a = push(
            &mut l,
            "alice",
            "2026-01-01T00:00:01Z",
            "img",
            vec![],
            &["dead"],
        );
        let lost = push(
            &mut l,
            "alice",
            "2026-01-01T00:00:02Z",
            "img",
            vec![a.clone()],
            &[],
        );
        let now = revision_of(
            LabelStatus::InProgress,
            &[instance("alice0", "img", "epithelial")],
        );
        let mut device = local(Some(&a), &now, true);
        assert!(matches!(
            l.decide("img", &device),
            Decision::Conflict { .. }
        ));
        device.sent = vec![lost.clone()];
        assert_eq!(l.decide("img", &device), Decision::Push);
        let next = push(
            &mut l,
            "alice",
            "2026-01-01T00:00:03Z",
            "img",
            vec![a, lost],
            &["epithelial"],
        );
        assert_eq!(next, now);
        assert_eq!(l.heads("img").len(), 1);
    }

    /// Found by the `ledger` fuzz target: undoing back to labels that were pushed before makes a revision
    /// equal to an ancestor (revisions are content hashes), so revision A names B, which names A.
    #[test]
    fn labels_undone_back_to_an_earlier_version_are_the_head_and_other_devices_adopt_them() {
        let mut l = Ledger::default();
        let a = push(
            &mut l,
            "alice",
            "2026-01-01T00:00:01Z",
            "img",
            vec![],
            &["dead"],
        );
        let b = push(
            &mut l,
            "alice",
            "2026-01-01T00:00:02Z",
            "img",
            vec![a.clone()],
            &[],
        );
        let again = push(
            &mut l,
            "alice",
            "2026-01-01T00:00:03Z",
            "img",
            vec![b.clone()],
            &["dead"],
        );
        assert_eq!(again, a, "equal labels, equal revision");
        let heads = l.heads("img");
        assert_eq!(heads.len(), 1);
        assert_eq!(heads[0].revision, a);
        assert_eq!(
            heads[0].created, "2026-01-01T00:00:03Z",
            "the undo, not the first push"
        );
        // A device that last saw B (the label deleted) takes the label back.
        match l.decide("img", &local(Some(&b), &b, false)) {
            Decision::Adopt(entry) => assert_eq!(entry.revision, a),
            other => panic!("expected to adopt the undone labels, got {other:?}"),
        }
        // The device that pushed it is up to date, and one that last saw A before it too.
        assert_eq!(
            l.decide("img", &local(Some(&a), &a, false)),
            Decision::UpToDate
        );
        // An edit made on top of B meanwhile is a conflict with the undo, not silently kept.
        let mine = revision_of(
            LabelStatus::InProgress,
            &[instance("bob0", "img", "neoplastic")],
        );
        assert!(matches!(
            l.decide("img", &local(Some(&b), &mine, true)),
            Decision::Conflict { .. }
        ));
    }

    fn local(base: Option<&str>, revision: &str, dirty: bool) -> LocalAsset {
        LocalAsset {
            base: base.map(str::to_owned),
            revision: revision.into(),
            dirty,
            sent: vec![],
        }
    }

    fn empty_rev() -> String {
        revision_of(LabelStatus::Unlabeled, &[])
    }

    #[test]
    fn a_fresh_device_adopts_and_a_synced_one_is_up_to_date() {
        let mut l = Ledger::default();
        let r1 = push(
            &mut l,
            "alice",
            "2026-01-01T00:00:01Z",
            "img",
            vec![],
            &["dead"],
        );
        match l.decide("img", &local(None, &empty_rev(), false)) {
            Decision::Adopt(e) => assert_eq!(
                (e.revision.as_str(), e.labeler.as_str()),
                (r1.as_str(), "alice")
            ),
            d => panic!("{d:?}"),
        }
        assert_eq!(
            l.decide("img", &local(Some(&r1), &r1, false)),
            Decision::UpToDate
        );
        assert_eq!(
            l.decide("img", &local(Some(&r1), "x", true)),
            Decision::Push
        );
        assert_eq!(l.decide("other", &local(None, "x", true)), Decision::Push);
    }

    #[test]
    fn a_newer_version_built_on_ours_is_adopted() {
        let mut l = Ledger::default();
        let r1 = push(
            &mut l,
            "alice",
            "2026-01-01T00:00:01Z",
            "img",
            vec![],
            &["dead"],
        );
        let r2 = push(
            &mut l,
            "bob",
            "2026-01-01T00:00:02Z",
            "img",
            vec![r1.clone()],
            &["dead", "neoplastic"],
        );
        assert_eq!(l.heads("img").len(), 1);
        match l.decide("img", &local(Some(&r1), &r1, false)) {
            Decision::Adopt(e) => assert_eq!(e.revision, r2),
            d => panic!("{d:?}"),
        }
        // Reading the same fragment again (a repeated pull) changes nothing.
        let labels = AssetLabels::new("img".into(), vec![], LabelStatus::InProgress, vec![]);
        let f = Fragment::new("b", "carol", "2026-01-01T00:00:03Z", vec![labels]).unwrap();
        let key = f.key_for(&f.to_bytes());
        l.record(&key, &f);
        let before = l.clone();
        l.record(&key, &f);
        assert_eq!(l, before);
    }

    #[test]
    fn the_same_image_edited_on_two_devices_is_a_conflict_until_resolved() {
        let mut l = Ledger::default();
        let r0 = push(
            &mut l,
            "alice",
            "2026-01-01T00:00:01Z",
            "img",
            vec![],
            &["dead"],
        );
        let theirs = push(
            &mut l,
            "bob",
            "2026-01-01T00:00:02Z",
            "img",
            vec![r0.clone()],
            &["epithelial"],
        );
        // Alice edited from r0 too, locally, not pushed yet.
        let mine = local(Some(&r0), "alice-local", true);
        match l.decide("img", &mine) {
            Decision::Conflict {
                mine: Some(m),
                theirs: t,
            } => {
                assert_eq!(m, "alice-local");
                assert_eq!(t.len(), 1);
                assert_eq!(t[0].revision, theirs);
            }
            d => panic!("{d:?}"),
        }
        // Both pushed: two heads; a clean device that had r0 sees a conflict between them, not a winner.
        let alice = push(
            &mut l,
            "alice",
            "2026-01-01T00:00:03Z",
            "img",
            vec![r0.clone()],
            &["neoplastic"],
        );
        assert_eq!(l.heads("img").len(), 2);
        match l.decide("img", &local(Some(&r0), &r0, false)) {
            Decision::Conflict { mine: None, theirs } => assert_eq!(theirs.len(), 2),
            d => panic!("{d:?}"),
        }
        // Alice (base = her pushed revision) sees Bob's head as a conflict with hers.
        match l.decide("img", &local(Some(&alice), &alice, false)) {
            Decision::Conflict {
                mine: Some(m),
                theirs,
            } => {
                assert_eq!(m, alice);
                assert_eq!(theirs[0].revision, theirs_rev(&l, "bob"));
            }
            d => panic!("{d:?}"),
        }
        // Alice resolves by keeping Bob's version: a revision whose parents name both heads.
        let parents = l.resolution_parents("img", &local(Some(&alice), &alice, false));
        assert!(parents.contains(&alice) && parents.contains(&theirs));
        let resolved = push(
            &mut l,
            "alice",
            "2026-01-01T00:00:04Z",
            "img",
            parents,
            &["epithelial"],
        );
        let heads = l.heads("img");
        assert_eq!(heads.len(), 1, "{heads:?}");
        assert_eq!(heads[0].revision, resolved);
        // Bob, still at his own version, simply adopts the resolution.
        match l.decide("img", &local(Some(&theirs), &theirs, false)) {
            Decision::Adopt(e) => assert_eq!(e.revision, resolved),
            d => panic!("{d:?}"),
        }
    }

    fn theirs_rev(l: &Ledger, labeler: &str) -> String {
        l.heads("img")
            .into_iter()
            .find(|h| h.labeler == labeler)
            .map(|h| h.revision)
            .unwrap()
    }

    #[test]
    fn opposite_resolutions_at_once_leave_the_latest_as_the_one_head() {
        let mut l = Ledger::default();
        let record = |l: &mut Ledger, labeler: &str, time: &str, labels: &AssetLabels| {
            let f = Fragment::new("b", labeler, time, vec![labels.clone()]).unwrap();
            l.record(&f.key_for(&f.to_bytes()), &f);
        };
        let status = LabelStatus::InProgress;
        let a = AssetLabels::new(
            "img".into(),
            vec![],
            status,
            vec![instance("a0", "img", "dead")],
        );
        let b = AssetLabels::new(
            "img".into(),
            vec![],
            status,
            vec![instance("b0", "img", "epithelial")],
        );
        record(&mut l, "alice", "2026-01-01T00:00:01Z", &a);
        record(&mut l, "bob", "2026-01-01T00:00:02Z", &b);
        assert_eq!(l.heads("img").len(), 2);
        // Alice takes Bob's labels while Bob takes Alice's: each names the other as replaced.
        let alice_takes_b = AssetLabels::new(
            "img".into(),
            vec![a.revision.clone()],
            status,
            b.instances.clone(),
        );
        let bob_takes_a = AssetLabels::new(
            "img".into(),
            vec![b.revision.clone()],
            status,
            a.instances.clone(),
        );
        record(&mut l, "alice", "2026-01-01T00:00:03Z", &alice_takes_b);
        record(&mut l, "bob", "2026-01-01T00:00:04Z", &bob_takes_a);
        let heads = l.heads("img");
        assert_eq!(heads.len(), 1, "{heads:?}");
        assert_eq!(
            (heads[0].labeler.as_str(), heads[0].revision.as_str()),
            ("bob", a.revision.as_str())
        );
    }

    #[test]
    fn identical_work_on_two_devices_is_not_a_conflict() {
        let mut l = Ledger::default();
        let r = push(
            &mut l,
            "bob",
            "2026-01-01T00:00:01Z",
            "img",
            vec![],
            &["dead"],
        );
        // Alice has the very same labels locally (same revision): nothing to resolve.
        assert_eq!(l.decide("img", &local(None, &r, true)), Decision::Push);
        assert_eq!(l.decide("img", &local(None, &r, false)), Decision::UpToDate);
    }

    #[test]
    fn unsynced_local_work_meeting_remote_work_is_a_conflict() {
        let mut l = Ledger::default();
        push(
            &mut l,
            "bob",
            "2026-01-01T00:00:01Z",
            "img",
            vec![],
            &["dead"],
        );
        match l.decide("img", &local(None, "mine", true)) {
            Decision::Conflict { mine: Some(m), .. } => assert_eq!(m, "mine"),
            d => panic!("{d:?}"),
        }
    }
}
