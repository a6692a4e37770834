//! `lamina sync pull`: every fragment of a batch, written as a bundle of the current labels.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{Context, Result};
use serde_json::json;

use lamina_core::bundle::{Bundle, BundleProject};
use lamina_core::labels::{Asset, ClassDef, Ontology};
use lamina_sync::batch::ImageLocation;
use lamina_sync::driver;
use lamina_sync::{Fragment, Ledger};

use super::transport::{block_on, Ureq};
use super::{endpoint_of, unknown_classes, PullArgs};
use crate::Report;

pub(super) fn pull(a: &PullArgs) -> Result<Report> {
    let endpoint = endpoint_of(&a.endpoint)?;
    let batch = &a.endpoint.batch;
    let t = Ureq::new(a.endpoint.attempts, a.endpoint.timeout);
    let started = Instant::now();
    let manifest = t.finish(block_on(driver::pull_manifest(&t, &endpoint, batch)))?;
    let mut ledger = Ledger::default();
    let outcome = t.finish(block_on(driver::pull_fragments(
        &t,
        &endpoint,
        batch,
        &mut ledger,
    )))?;
    let fragments: BTreeMap<&str, &Fragment> = outcome
        .fragments
        .iter()
        .map(|(k, f)| (k.as_str(), f))
        .collect();
    let ontology = manifest.ontology.clone().unwrap_or_else(Ontology::pannuke);
    let mut bundle = Bundle::new(
        BundleProject {
            id: format!("batch-{batch}"),
            name: manifest.name.clone().unwrap_or_else(|| batch.clone()),
        },
        ontology,
    );
    let mut conflicts = Vec::new();
    let mut problems = outcome.problems.clone();
    for asset in &manifest.assets {
        let heads = ledger.heads(&asset.id);
        // With several heads the newest is written and the image is listed as a conflict to resolve in
        // the app; every version stays on the server.
        let Some(head) = heads.last() else { continue };
        if heads.len() > 1 {
            conflicts.push(json!({
                "image": asset.id,
                "versions": heads.iter().map(|h| json!({"labeler": h.labeler, "revision": h.revision,
                    "created": h.created, "instances": h.instance_count})).collect::<Vec<_>>(),
            }));
        }
        let Some(labels) = fragments
            .get(head.fragment_key.as_str())
            .and_then(|f| f.assets.iter().find(|l| l.asset_id == asset.id))
        else {
            continue;
        };
        let Some(image) = &labels.image else {
            problems.push(format!(
                "{}: its labels do not say which image they were drawn on",
                asset.id
            ));
            continue;
        };
        if asset.sha256.as_ref().is_some_and(|s| *s != image.sha256) {
            problems.push(format!(
                "{}: labels were drawn on an image with another sha256 than the batch lists",
                asset.id
            ));
        }
        bundle.assets.push(Asset {
            id: asset.id.clone(),
            name: asset.name.clone(),
            sha256: image.sha256.clone(),
            width: image.width,
            height: image.height,
            metadata: asset.metadata.clone(),
            uri: match &asset.location {
                ImageLocation::Url(u) => Some(u.clone()),
                ImageLocation::Key(_) => None,
            },
            status: labels.status,
            stage: Default::default(),
        });
        bundle.instances.extend(labels.instances.iter().cloned());
    }
    // Review events of every fragment, once each, on the images written; one that does not fit (a pin
    // outside its image, an answer to an unknown issue) is listed and left out.
    let mut review: BTreeMap<&str, &lamina_core::review::ReviewEvent> = BTreeMap::new();
    for f in fragments.values() {
        for e in &f.review {
            review.entry(e.id.as_str()).or_insert(e);
        }
    }
    let sizes: BTreeMap<&str, (u32, u32)> = bundle
        .assets
        .iter()
        .map(|a| (a.id.as_str(), (a.width, a.height)))
        .collect();
    let mut events = Vec::new();
    for e in review.values() {
        let Some(size) = sizes.get(e.asset_id.as_str()) else {
            continue;
        };
        let image = lamina_core::review::EventImage::Size(size.0, size.1);
        let wrong = lamina_core::review::event_problems(e, image, &review);
        if wrong.is_empty() {
            events.push((*e).clone());
        } else {
            problems.push(format!("review event {}: {}", e.id, wrong.join("; ")));
        }
    }
    events.sort_by(|a, b| a.at.cmp(&b.at).then(a.id.cmp(&b.id)));
    bundle.review = events;
    // Labels may use classes the batch does not list (pushed from a bundle with other classes): they
    // join the ontology under their id, so the bundle stays valid and nothing is dropped.
    let mut warnings = Vec::new();
    let unknown = unknown_classes(&bundle.ontology, &bundle.instances);
    for (added, (class, n)) in unknown.iter().enumerate() {
        const COLORS: [&str; 6] = [
            "#00e5ff", "#ff00ff", "#8000ff", "#00ff80", "#808080", "#ff0080",
        ];
        let color = COLORS[added % COLORS.len()];
        bundle.ontology.classes.push(ClassDef {
            id: class.clone(),
            name: class.clone(),
            color: color.into(),
        });
        warnings.push(format!(
            "class `{class}` ({n} labels) is not in the batch's ontology; added to the bundle's"
        ));
    }
    let labeled = bundle.assets.len();
    let unlabeled = manifest.assets.len() - labeled;
    std::fs::write(&a.out, bundle.to_json_pretty())
        .with_context(|| format!("cannot write {}", a.out.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    let (requests, bytes) = t.stats.get();
    let human = format!(
        "Pulled batch {batch}: {} images ({labeled} labeled, {unlabeled} not yet), {} instances from {} fragments \
         in {seconds:.2} s ({requests} requests, {:.1} kB); wrote {}{}{}{}",
        manifest.assets.len(),
        bundle.instances.len(),
        outcome.fragments.len(),
        bytes as f64 / 1e3,
        a.out.display(),
        if conflicts.is_empty() { String::new() } else { format!("\n{} image(s) in conflict (newest version written): {}", conflicts.len(), conflicts.iter().map(|c| c["image"].as_str().unwrap_or("").to_owned()).collect::<Vec<_>>().join(", ")) },
        if problems.is_empty() { String::new() } else { format!("\nskipped:\n  {}", problems.join("\n  ")) },
        warnings.iter().map(|w| format!("\nwarning: {w}")).collect::<String>(),
    );
    Ok(Report {
        ok: true,
        json: json!({ "ok": true, "batch": batch, "images": manifest.assets.len(), "labeled": labeled,
                      "instances": bundle.instances.len(), "fragments": outcome.fragments.len(),
                      "conflicts": conflicts, "problems": problems, "manifest_problems": manifest.problems,
                      "warnings": warnings,
                      "requests": requests, "bytes": bytes, "seconds": seconds, "out": a.out.display().to_string() }),
        human,
    })
}
