//! Review events in IndexedDB (schema v5): `review_events` holds every event of every image, by event id
//! (index `asset`, index `project`). An event is written in the same transaction as the image's record
//! (its stage moved on) and, in a synced batch, marked unpushed until a push carries it.

use idb::{Database, KeyPath, ObjectStoreParams};
use lamina_core::review::ReviewEvent;
use serde::{Deserialize, Serialize};
use wasm_bindgen::JsValue;

use super::{add_index, from_js, to_js, AssetRecord, OutboxEntry, Store, ASSETS, OUTBOX};
use crate::error::AppError;

pub(crate) const REVIEW_EVENTS: &str = "review_events";

pub(super) fn migrate_to_v5(db: &Database) -> Result<(), idb::Error> {
    let mut params = ObjectStoreParams::new();
    params.key_path(Some(KeyPath::new_single("id")));
    let events = db.create_object_store(REVIEW_EVENTS, params)?;
    add_index(&events, "asset", "asset_id")?;
    add_index(&events, "project", "project_id")?;
    Ok(())
}

/// One event as stored: filed under the device's own image id, with whether a push has carried it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReviewRecord {
    pub id: String,
    pub project_id: String,
    pub asset_id: String,
    pub pushed: bool,
    pub event: ReviewEvent,
}

impl ReviewRecord {
    pub fn new(project_id: &str, event: ReviewEvent, pushed: bool) -> Self {
        ReviewRecord {
            id: event.id.clone(),
            project_id: project_id.to_owned(),
            asset_id: event.asset_id.clone(),
            pushed,
            event,
        }
    }
}

impl Store {
    /// Every review event of one image, oldest first.
    pub async fn review_events(&self, asset_id: &str) -> Result<Vec<ReviewEvent>, AppError> {
        let records: Vec<ReviewRecord> = self
            .get_all(REVIEW_EVENTS, Some(("asset", asset_id)))
            .await?;
        let mut events: Vec<ReviewEvent> = records.into_iter().map(|r| r.event).collect();
        events.sort_by(|a, b| a.at.cmp(&b.at).then(a.id.cmp(&b.id)));
        Ok(events)
    }

    /// Every review event of a project, as stored.
    pub async fn project_review(&self, project_id: &str) -> Result<Vec<ReviewRecord>, AppError> {
        self.get_all(REVIEW_EVENTS, Some(("project", project_id)))
            .await
    }

    /// New events of one image with its record (stage and status moved on) in one transaction; in a
    /// synced batch, with the image's outbox entry when its labels' status changed.
    pub async fn record_review(
        &self,
        record: &AssetRecord,
        events: &[ReviewRecord],
        outbox: Option<&OutboxEntry>,
    ) -> Result<(), AppError> {
        let values = events.iter().map(to_js).collect::<Result<Vec<_>, _>>()?;
        let asset_value = to_js(record)?;
        let key = JsValue::from_str(&record.asset.id);
        let outbox_value = outbox.map(to_js).transpose()?;
        self.write(&[REVIEW_EVENTS, ASSETS, OUTBOX], |tx| {
            let store = tx.object_store(REVIEW_EVENTS)?;
            for v in &values {
                store.put(v, None)?;
            }
            tx.object_store(ASSETS)?.put(&asset_value, Some(&key))?;
            if let Some(v) = &outbox_value {
                tx.object_store(OUTBOX)?.put(v, Some(&key))?;
            }
            Ok(())
        })
        .await
    }

    /// Events pulled from teammates (already on the server), and the stages they moved, in one
    /// transaction. Only each record's stage and note are written, onto the record as stored then (the user
    /// may have changed it during the pull). An event already stored is written again unchanged.
    pub async fn adopt_review(
        &self,
        events: &[ReviewRecord],
        stages: &[AssetRecord],
    ) -> Result<(), AppError> {
        let values = events.iter().map(to_js).collect::<Result<Vec<_>, _>>()?;
        let tx = self.rw(&[REVIEW_EVENTS, ASSETS])?;
        let result = async {
            let store = tx.object_store(REVIEW_EVENTS)?;
            for v in &values {
                store.put(v, None)?.await?;
            }
            let assets = tx.object_store(ASSETS)?;
            for staged in stages {
                let key = JsValue::from_str(&staged.asset.id);
                let Some(value) = assets.get(key.clone())?.await? else {
                    continue;
                };
                let mut record: AssetRecord = from_js(value)?;
                record.asset.stage = staged.asset.stage;
                record.review_note = staged.review_note.clone();
                assets.put(&to_js(&record)?, Some(&key))?.await?;
            }
            Ok(())
        }
        .await;
        Store::finish(tx, result).await
    }

    /// Marks events as carried by a push that the server acknowledged.
    pub async fn mark_review_pushed(&self, pushed: &[ReviewRecord]) -> Result<(), AppError> {
        let values = pushed
            .iter()
            .map(|r| {
                to_js(&ReviewRecord {
                    pushed: true,
                    ..r.clone()
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.write(&[REVIEW_EVENTS], |tx| {
            let store = tx.object_store(REVIEW_EVENTS)?;
            for v in &values {
                store.put(v, None)?;
            }
            Ok(())
        })
        .await
    }
}
