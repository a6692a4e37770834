//! Ledger convergence: random histories of label fragments (several labelers, several images, each new
//! version built on some of the versions its author had seen), read in random orders, give every device
//! the same current versions of every image; and no version is lost unless another one replaced it on
//! purpose (named it as a parent).
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its location

use std::collections::{BTreeMap, BTreeSet};

use lamina_core::labels::{Instance, LabelStatus, Provenance, Tool};
use lamina_core::rle::CompressedRle;
use lamina_sync::{AssetLabels, Fragment, Ledger};
use proptest::prelude::*;

const LABELERS: [&str; 3] = ["alice", "bob", "carol"];
const IMAGES: [&str; 3] = ["img-0", "img-1", "img-2"];
const CLASSES: [&str; 4] = ["neoplastic", "dead", "connective", "epithelial"];

/// One push: who, which image, which earlier versions of it they build on (indices, taken modulo what
/// exists), and what the labels are (a small content code, so equal content happens too).
#[derive(Clone, Debug)]
struct Step {
    labeler: usize,
    image: usize,
    parents: Vec<usize>,
    content: u8,
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        (
            0..LABELERS.len(),
            0..IMAGES.len(),
            prop::collection::vec(0usize..8, 0..3),
            0u8..6,
        )
            .prop_map(|(labeler, image, parents, content)| Step {
                labeler,
                image,
                parents,
                content,
            }),
        1..24,
    )
}

fn labels(image: &str, content: u8) -> Vec<Instance> {
    (0..=usize::from(content % 3))
        .map(|k| Instance {
            id: format!("i{k}"),
            asset_id: image.into(),
            class_id: CLASSES[(usize::from(content) + k) % CLASSES.len()].into(),
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
                author: None,
                created: "t".into(),
                updated: "t".into(),
                score: None,
            },
            status: Default::default(),
        })
        .collect()
}

/// Fragments by key, in the order they were written.
type Fragments = Vec<(String, Fragment)>;
/// Every revision of each image.
type Revisions = BTreeMap<String, BTreeSet<String>>;

/// The fragments of a history and every revision of each image.
fn history(steps: &[Step]) -> (Fragments, Revisions) {
    let mut revisions: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut fragments = Vec::new();
    for (n, s) in steps.iter().enumerate() {
        let image = IMAGES[s.image];
        let known = revisions.entry(image.to_owned()).or_default();
        let parents: Vec<String> = if known.is_empty() {
            vec![]
        } else {
            s.parents
                .iter()
                .map(|p| known[p % known.len()].clone())
                .collect()
        };
        let asset = AssetLabels::new(
            image.into(),
            parents,
            LabelStatus::InProgress,
            labels(image, s.content),
        );
        known.push(asset.revision.clone());
        let created = format!("2026-12-02T10:{:02}:{:02}Z", n / 60, n % 60);
        let f = Fragment::new("b", LABELERS[s.labeler], &created, vec![asset]).unwrap();
        let key = f.key_for(&f.to_bytes());
        fragments.push((key, f));
    }
    let all = revisions
        .into_iter()
        .map(|(image, revs)| (image, revs.into_iter().collect()))
        .collect();
    (fragments, all)
}

fn heads_of(ledger: &Ledger) -> BTreeMap<String, Vec<String>> {
    IMAGES
        .iter()
        .map(|i| {
            (
                i.to_string(),
                ledger.heads(i).into_iter().map(|h| h.revision).collect(),
            )
        })
        .collect()
}

proptest! {
    #[test]
    fn every_order_of_reading_gives_the_same_heads_and_loses_nothing(
        steps in steps(),
        order in Just((0..24usize).collect::<Vec<_>>()).prop_shuffle(),
        split in 0usize..24,
    ) {
        let (fragments, all) = history(&steps);
        let mut in_order = Ledger::default();
        for (key, f) in &fragments {
            in_order.record(key, f);
        }
        // Another device reads them in another order, in two pulls, one fragment read twice.
        let mut shuffled = Ledger::default();
        let picked: Vec<usize> = order.into_iter().filter(|&i| i < fragments.len()).collect();
        let (first, second) = picked.split_at(split.min(picked.len()));
        for &i in first.iter().chain(second).chain(first.iter().take(1)) {
            shuffled.record(&fragments[i].0, &fragments[i].1);
        }
        prop_assert_eq!(heads_of(&in_order), heads_of(&shuffled));

        // Every revision is a current version, or one that someone replaced by naming it.
        let named: BTreeSet<String> = fragments
            .iter()
            .flat_map(|(_, f)| f.assets.iter().flat_map(|a| a.parents.clone()))
            .collect();
        for (image, revisions) in &all {
            let heads: BTreeSet<String> = in_order.heads(image).into_iter().map(|h| h.revision).collect();
            prop_assert!(!heads.is_empty(), "image {} has versions but no head", image);
            for r in revisions {
                prop_assert!(heads.contains(r) || named.contains(r), "revision {} of {} was lost", r, image);
            }
        }
    }
}
