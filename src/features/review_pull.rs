//! Review events arriving with a pull: mapped from the batch's image ids to this device's, checked like
//! a bundle's (a pin outside its image, an answer to an issue nobody raised: skipped and reported, never
//! stored), and merged by id with the events already here.

use std::collections::{BTreeMap, HashMap};

use lamina_core::review::{event_problems, EventImage, ReviewEvent};
use lamina_sync::{layout, Fragment};

use crate::error::AppError;
use crate::store::review::ReviewRecord;
use crate::store::{AssetRecord, Store};

/// What a pull brought for review.
#[derive(Default)]
pub struct PulledReview {
    /// Per local image with new events: all its events (stored and new).
    pub events: HashMap<String, Vec<ReviewEvent>>,
    /// The new events to store, already on the server.
    pub new: Vec<ReviewRecord>,
}

pub async fn merge_pulled(
    db: &Store,
    batch: &str,
    fragments: &[(String, Fragment)],
    assets: &[AssetRecord],
    problems: &mut Vec<String>,
) -> Result<PulledReview, AppError> {
    let mut incoming: BTreeMap<String, Vec<ReviewEvent>> = BTreeMap::new();
    for (key, fragment) in fragments {
        for e in &fragment.review {
            let local_id = layout::local_asset_id(batch, &e.asset_id);
            if !assets.iter().any(|r| r.asset.id == local_id) {
                problems.push(format!(
                    "{key}: a review event for image `{}`, which is not in the batch",
                    e.asset_id
                ));
                continue;
            }
            incoming
                .entry(local_id.clone())
                .or_default()
                .push(ReviewEvent {
                    asset_id: local_id,
                    ..e.clone()
                });
        }
    }
    let mut out = PulledReview::default();
    for (local_id, arrived) in incoming {
        let Some(record) = assets.iter().find(|r| r.asset.id == local_id) else {
            continue;
        };
        let mut all = db.review_events(&local_id).await?;
        let fresh: Vec<ReviewEvent> = arrived
            .into_iter()
            .filter(|e| !all.iter().any(|s| s.id == e.id))
            .collect();
        if fresh.is_empty() {
            continue;
        }
        let known: BTreeMap<&str, &ReviewEvent> = all
            .iter()
            .chain(fresh.iter())
            .map(|e| (e.id.as_str(), e))
            .collect();
        // A batch image not fetched yet has no size on this device, so its pins cannot be checked (a pin
        // outside the image is only drawn off it).
        let image = if record.asset.width > 0 {
            EventImage::Size(record.asset.width, record.asset.height)
        } else {
            EventImage::SizeUnknown
        };
        let mut accepted = Vec::new();
        for e in &fresh {
            let wrong: Vec<String> = event_problems(e, image, &known);
            if wrong.is_empty() {
                accepted.push(e.clone());
            } else {
                problems.push(format!(
                    "a review event by {} on {} was skipped: {}",
                    e.author,
                    record.asset.name,
                    wrong.join("; ")
                ));
            }
        }
        if accepted.is_empty() {
            continue;
        }
        out.new.extend(
            accepted
                .iter()
                .map(|e| ReviewRecord::new(&record.project_id, e.clone(), true)),
        );
        all.extend(accepted);
        all.sort_by(|a, b| a.at.cmp(&b.at).then(a.id.cmp(&b.id)));
        out.events.insert(local_id, all);
    }
    Ok(out)
}
