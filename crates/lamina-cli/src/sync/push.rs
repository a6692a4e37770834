//! `lamina sync push`: a bundle's labels for a batch's images, as one fragment of the labeler.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use anyhow::{bail, Result};
use serde_json::json;

use lamina_core::labels::{Asset, Ontology};
use lamina_sync::driver::{self, Transport};
use lamina_sync::fragment::{refile, revision_of, AssetLabels, ImageInfo};
use lamina_sync::{layout, Fragment, Ledger};

use super::transport::{block_on, rfc3339_now, Ureq};
use super::{endpoint_of, require_write, unknown_classes, PushArgs};
use crate::{read_valid_bundle, Report};

pub(super) fn push(a: &PushArgs) -> Result<Report> {
    let endpoint = endpoint_of(&a.endpoint)?;
    let batch = &a.endpoint.batch;
    let labeler = &a.labeler;
    layout::check_id(labeler, "labeler id")?;
    require_write(&endpoint)?;
    let bundle = read_valid_bundle(&a.bundle)?;
    let t = Ureq::new(a.endpoint.attempts, a.endpoint.timeout);
    let started = Instant::now();
    let created = rfc3339_now(t.now_ms());
    // The batch must exist (a mistyped --batch would file labels nobody ever sees), and only its images
    // can carry labels: the app and `pull` go by the manifest.
    let manifest = t.finish(block_on(driver::pull_manifest(&t, &endpoint, batch)))?;
    let in_batch: BTreeSet<&str> = manifest.assets.iter().map(|a| a.id.as_str()).collect();
    let (assets, outside): (Vec<&Asset>, Vec<&Asset>) = bundle
        .assets
        .iter()
        .partition(|a| in_batch.contains(layout::sync_asset_id(batch, &a.id)));
    if assets.is_empty() {
        bail!(
            "none of the {} images of {} is in batch `{batch}` ({} images, e.g. `{}`): check --batch",
            bundle.assets.len(),
            a.bundle.display(),
            manifest.assets.len(),
            manifest.assets.first().map(|a| a.id.as_str()).unwrap_or("")
        );
    }
    let mut warnings = Vec::new();
    if !outside.is_empty() {
        warnings.push(format!(
            "{} image(s) of the bundle are not in batch `{batch}` and were left out: {}",
            outside.len(),
            list_some(outside.iter().map(|a| a.id.as_str()))
        ));
    }
    let ontology = manifest.ontology.clone().unwrap_or_else(Ontology::pannuke);
    let pushed_ids: BTreeSet<&str> = assets.iter().map(|a| a.id.as_str()).collect();
    let unknown = unknown_classes(
        &ontology,
        bundle
            .instances
            .iter()
            .filter(|i| pushed_ids.contains(i.asset_id.as_str())),
    );
    if !unknown.is_empty() {
        warnings.push(format!(
            "labels use classes batch `{batch}` does not have: {} (publish it with --ontology to add them)",
            unknown
                .iter()
                .map(|(c, n)| format!("`{c}` ({n} labels)"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    // What the server holds already: every readable fragment and the revisions in it.
    let mut ledger = Ledger::default();
    t.finish(block_on(driver::pull_fragments(
        &t,
        &endpoint,
        batch,
        &mut ledger,
    )))?;
    let known = ledger.fragments.clone();
    let mut by_asset: BTreeMap<&str, Vec<_>> = BTreeMap::new();
    for inst in &bundle.instances {
        by_asset
            .entry(inst.asset_id.as_str())
            .or_default()
            .push(inst);
    }
    let mut labels = Vec::new();
    // Images whose labels the server already has (same revision), with the fragment holding them.
    let mut unchanged: Vec<(String, String)> = Vec::new();
    // Of those, images whose labels equal a version that was replaced since.
    let mut superseded = Vec::new();
    for asset in assets {
        let sync_id = layout::sync_asset_id(batch, &asset.id).to_owned();
        let instances: Vec<_> = by_asset
            .get(asset.id.as_str())
            .map(|list| refile(list.iter().copied(), &sync_id))
            .unwrap_or_default();
        let revision = revision_of(asset.status, &instances);
        let heads = ledger.heads(&sync_id);
        // Parents: this labeler's own current versions of the image, which her new labels replace. A
        // scripted push cannot know what it replaces of anyone else's, so where someone else has labels
        // for the image, the app shows both as a conflict rather than letting either win silently.
        let parents: Vec<String> = heads
            .iter()
            .filter(|h| h.labeler == *labeler && h.revision != revision)
            .map(|h| h.revision.clone())
            .collect();
        // Every label on the server exactly once: a revision already there (pushed before, by anyone) is
        // not written again unless it replaces some of this labeler's versions (she took someone else's
        // labels). Revisions are content hashes, so skipping changes no reader's view.
        let existing = ledger
            .entries
            .get(&sync_id)
            .into_iter()
            .flatten()
            .filter(|e| e.revision == revision)
            .max_by_key(|e| (e.labeler == *labeler, e.fragment_key.clone()));
        if let Some(e) = existing {
            let current = heads.iter().any(|h| h.revision == revision);
            if !current {
                // An earlier version cannot become current again by pushing it once more (it would
                // name the version that replaced it as replaced in turn): say so, write nothing.
                superseded.push(sync_id.clone());
            }
            if !current || parents.is_empty() {
                unchanged.push((sync_id, e.fragment_key.clone()));
                continue;
            }
        }
        labels.push(
            AssetLabels::new(sync_id, parents, asset.status, instances).with_image(ImageInfo {
                sha256: asset.sha256.clone(),
                width: asset.width,
                height: asset.height,
            }),
        );
    }
    if !superseded.is_empty() {
        warnings.push(format!(
            "{} image(s) have labels equal to an earlier version that was replaced since; the server keeps \
             the newer one (change the labels to push them as a new version): {}",
            superseded.len(),
            list_some(superseded.iter().map(String::as_str))
        ));
    }
    let instances = labels.iter().map(|l| l.instances.len()).sum::<usize>();
    let (key, bytes, wrote) = if labels.is_empty() {
        // Nothing new. The index still gets every key (a push whose index write failed is repaired).
        t.finish(block_on(driver::add_to_index(&t, &endpoint, batch, &known)))?;
        let mut keys: Vec<&String> = unchanged.iter().map(|(_, k)| k).collect();
        keys.sort();
        keys.dedup();
        ((keys.len() == 1).then(|| keys[0].clone()), 0, false)
    } else {
        let fragment = Fragment::new(batch, labeler, &created, labels)?;
        let outcome = t.finish(block_on(driver::push_fragment(
            &t, &endpoint, &fragment, &known,
        )))?;
        (Some(outcome.key), outcome.bytes, !outcome.already_there)
    };
    let pushed = pushed_ids.len() - unchanged.len();
    let seconds = started.elapsed().as_secs_f64();
    let (requests, moved) = t.stats.get();
    let mut human = if pushed == 0 {
        format!(
            "Nothing to push: the server already has these labels for all {} images{} ({seconds:.2} s)",
            unchanged.len(),
            key.as_ref().map(|k| format!(", in {k}")).unwrap_or_default()
        )
    } else {
        format!(
            "Pushed {pushed} image(s) ({instances} instances, {:.1} kB) as {} in {seconds:.2} s{}",
            bytes as f64 / 1e3,
            key.as_deref().unwrap_or(""),
            if unchanged.is_empty() {
                String::new()
            } else {
                format!(
                    "; {} image(s) not sent again, the server already has their labels",
                    unchanged.len()
                )
            }
        )
    };
    for w in &warnings {
        human.push_str(&format!("\nwarning: {w}"));
    }
    Ok(Report {
        ok: true,
        json: json!({ "ok": true, "batch": batch, "labeler": labeler, "key": key, "bytes": bytes,
                      "images": pushed, "instances": instances, "unchanged": unchanged.len(),
                      "not_in_batch": outside.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
                      "unknown_classes": unknown, "warnings": warnings,
                      "already_there": pushed == 0, "wrote": wrote,
                      "requests": requests, "transferred": moved, "seconds": seconds }),
        human,
    })
}

/// Up to five items, and how many more.
fn list_some<'a>(items: impl ExactSizeIterator<Item = &'a str>) -> String {
    let n = items.len();
    let mut out: Vec<String> = items.take(5).map(|s| format!("`{s}`")).collect();
    if n > 5 {
        out.push(format!("and {} more", n - 5));
    }
    out.join(", ")
}
