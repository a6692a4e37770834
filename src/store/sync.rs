//! The sync stores of IndexedDB (schema v3): outbox, per-image sync records, per-project batch links.
//! Every change that must stay consistent with the labels is one transaction with them.

use idb::{Query, TransactionMode};
use lamina_core::labels::Instance;
use lamina_sync::{Endpoint, Ledger, RemoteEntry};
use serde::{Deserialize, Serialize};
use wasm_bindgen::JsValue;

use crate::error::AppError;
use crate::store::{
    from_js, to_js, AssetRecord, OutboxEntry, Store, OUTBOX, SYNC_ASSETS, SYNC_BATCHES,
};

const INSTANCES: &str = "instances";
const ASSETS: &str = "assets";

/// A project that is a synced batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchLink {
    pub project_id: String,
    pub batch: String,
    pub labeler: String,
    /// With credentials only in memory, unless `remember`.
    pub endpoint: Endpoint,
    pub remember: bool,
    /// The endpoint needs credentials the user has not given since the last reload.
    #[serde(default)]
    pub needs_credentials: bool,
    pub ledger: Ledger,
}

impl BatchLink {
    /// What goes to IndexedDB: secrets dropped unless the user asked to keep them.
    fn for_storage(&self) -> BatchLink {
        let mut stored = self.clone();
        if !self.remember {
            match &mut stored.endpoint {
                Endpoint::S3 { credentials, .. } => {
                    stored.needs_credentials = credentials.is_some();
                    *credentials = None;
                }
                Endpoint::Http { token, .. } => {
                    stored.needs_credentials = token.is_some();
                    *token = None;
                }
            }
        }
        stored
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncRecord {
    /// The server revision the local labels were last equal to.
    pub base: Option<String>,
    /// Parents of the next push, when they are more than `base` (after a conflict was resolved).
    #[serde(default)]
    pub parents: Vec<String>,
    #[serde(default)]
    pub conflict: Option<Conflict>,
    /// Revisions uploaded whose upload is not recorded yet (written before the upload, cleared with
    /// the record of it): a later push names them as parents, so an upload whose record was lost to a
    /// full disk or a crash never turns into a conflict with this device's own next push.
    #[serde(default)]
    pub sent: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Conflict {
    pub mine: Option<String>,
    pub theirs: Vec<RemoteEntry>,
}

/// One image pushed: its outbox generation when read, and the revision sent.
pub struct Pushed {
    pub asset_id: String,
    pub generation: String,
    pub revision: String,
}

impl Store {
    pub async fn sync_batch(&self, project_id: &str) -> Result<Option<BatchLink>, AppError> {
        self.get_value(SYNC_BATCHES, project_id)
            .await?
            .map(from_js)
            .transpose()
    }

    pub async fn put_sync_batch(&self, link: &BatchLink) -> Result<(), AppError> {
        let value = to_js(&link.for_storage())?;
        let key = JsValue::from_str(&link.project_id);
        self.write(&[SYNC_BATCHES], |tx| {
            tx.object_store(SYNC_BATCHES)?.put(&value, Some(&key))?;
            Ok(())
        })
        .await
    }

    pub async fn outbox(&self, project_id: &str) -> Result<Vec<OutboxEntry>, AppError> {
        self.get_all(OUTBOX, Some(("project", project_id))).await
    }

    pub async fn sync_records(
        &self,
    ) -> Result<std::collections::HashMap<String, SyncRecord>, AppError> {
        let tx = self
            .db
            .transaction(&[SYNC_ASSETS], TransactionMode::ReadOnly)?;
        let store = tx.object_store(SYNC_ASSETS)?;
        let keys = store.get_all_keys(None, None)?.await?;
        let values = store.get_all(None, None)?.await?;
        keys.into_iter()
            .zip(values)
            .map(|(k, v)| Ok((k.as_string().unwrap_or_default(), from_js(v)?)))
            .collect()
    }

    /// Writes several asset records at once (a pulled batch's new images).
    pub async fn put_assets(&self, records: &[AssetRecord]) -> Result<(), AppError> {
        let values = records
            .iter()
            .map(|r| Ok((JsValue::from_str(&r.asset.id), to_js(r)?)))
            .collect::<Result<Vec<_>, AppError>>()?;
        self.write(&[ASSETS], |tx| {
            let assets = tx.object_store(ASSETS)?;
            for (k, v) in &values {
                assets.put(v, Some(k))?;
            }
            Ok(())
        })
        .await
    }

    /// After a push landed: drops each image's outbox entry unless it changed meanwhile, records the
    /// pushed revision as its base, and saves what the device now knows of the server. One transaction.
    /// Notes the revisions about to be uploaded, before the upload (see [`SyncRecord::sent`]). Fails,
    /// and nothing is uploaded, when storage cannot take it.
    pub async fn begin_push(&self, pushed: &[Pushed]) -> Result<(), AppError> {
        let tx = self.rw(&[SYNC_ASSETS])?;
        let result = async {
            let records = tx.object_store(SYNC_ASSETS)?;
            for p in pushed {
                let key = JsValue::from_str(&p.asset_id);
                let mut record: SyncRecord = match records.get(key.clone())?.await? {
                    Some(v) => from_js(v)?,
                    None => SyncRecord::default(),
                };
                if !record.sent.contains(&p.revision) {
                    record.sent.push(p.revision.clone());
                    records.put(&to_js(&record)?, Some(&key))?.await?;
                }
            }
            Ok(())
        }
        .await;
        Store::finish(tx, result).await
    }

    pub async fn finish_push(&self, link: &BatchLink, pushed: &[Pushed]) -> Result<(), AppError> {
        let link_value = to_js(&link.for_storage())?;
        let tx = self.rw(&[OUTBOX, SYNC_ASSETS, SYNC_BATCHES])?;
        let result = async {
            let outbox = tx.object_store(OUTBOX)?;
            let records = tx.object_store(SYNC_ASSETS)?;
            for p in pushed {
                let key = JsValue::from_str(&p.asset_id);
                if let Some(v) = outbox.get(key.clone())?.await? {
                    let entry: OutboxEntry = from_js(v)?;
                    if entry.generation == p.generation {
                        outbox.delete(Query::Key(key.clone()))?.await?;
                    }
                }
                let mut record: SyncRecord = match records.get(key.clone())?.await? {
                    Some(v) => from_js(v)?,
                    None => SyncRecord::default(),
                };
                record.base = Some(p.revision.clone());
                record.parents.clear();
                record.sent.clear();
                records.put(&to_js(&record)?, Some(&key))?.await?;
            }
            tx.object_store(SYNC_BATCHES)?
                .put(&link_value, Some(&JsValue::from_str(&link.project_id)))?
                .await?;
            Ok(())
        }
        .await;
        Store::finish(tx, result).await
    }

    /// Takes another labeler's labels for an image: replaces its instances and status, unless the image
    /// changed locally since the decision (then nothing is written and `false` comes back).
    pub async fn adopt(
        &self,
        record: &AssetRecord,
        instances: &[Instance],
        revision: &str,
    ) -> Result<bool, AppError> {
        let key = JsValue::from_str(&record.asset.id);
        let tx = self.rw(&[INSTANCES, ASSETS, OUTBOX, SYNC_ASSETS])?;
        let result = async {
            if tx.object_store(OUTBOX)?.get(key.clone())?.await?.is_some() {
                return Ok(false);
            }
            replace_instances(&tx, &record.asset.id, instances).await?;
            tx.object_store(ASSETS)?
                .put(&to_js(record)?, Some(&key))?
                .await?;
            let sync = SyncRecord {
                base: Some(revision.to_owned()),
                parents: vec![],
                conflict: None,
                sent: vec![],
            };
            tx.object_store(SYNC_ASSETS)?
                .put(&to_js(&sync)?, Some(&key))?
                .await?;
            Ok(true)
        }
        .await;
        match result {
            // Changed locally since the decision: nothing is written.
            Ok(false) => {
                let _ = tx.abort();
                Ok(false)
            }
            other => Store::finish(tx, other).await,
        }
    }

    pub async fn set_conflict(
        &self,
        asset_id: &str,
        conflict: Option<Conflict>,
    ) -> Result<(), AppError> {
        let key = JsValue::from_str(asset_id);
        let tx = self.rw(&[SYNC_ASSETS])?;
        let result = async {
            let records = tx.object_store(SYNC_ASSETS)?;
            let mut record: SyncRecord = match records.get(key.clone())?.await? {
                Some(v) => from_js(v)?,
                None => SyncRecord::default(),
            };
            record.conflict = conflict;
            records.put(&to_js(&record)?, Some(&key))?.await?;
            Ok(())
        }
        .await;
        Store::finish(tx, result).await
    }

    /// Resolves a conflict: optionally replaces the labels (taking another version), then queues a push
    /// of a revision whose parents name every version it replaces.
    pub async fn resolve(
        &self,
        record: &AssetRecord,
        replacement: Option<&[Instance]>,
        parents: Vec<String>,
        outbox: &OutboxEntry,
    ) -> Result<(), AppError> {
        let key = JsValue::from_str(&record.asset.id);
        let tx = self.rw(&[INSTANCES, ASSETS, OUTBOX, SYNC_ASSETS])?;
        let result = async {
            if let Some(instances) = replacement {
                replace_instances(&tx, &record.asset.id, instances).await?;
            }
            tx.object_store(ASSETS)?
                .put(&to_js(record)?, Some(&key))?
                .await?;
            let records = tx.object_store(SYNC_ASSETS)?;
            let mut sync: SyncRecord = match records.get(key.clone())?.await? {
                Some(v) => from_js(v)?,
                None => SyncRecord::default(),
            };
            sync.parents = parents;
            sync.conflict = None;
            records.put(&to_js(&sync)?, Some(&key))?.await?;
            tx.object_store(OUTBOX)?
                .put(&to_js(outbox)?, Some(&key))?
                .await?;
            Ok(())
        }
        .await;
        Store::finish(tx, result).await
    }
}

async fn replace_instances(
    tx: &idb::Transaction,
    asset_id: &str,
    instances: &[Instance],
) -> Result<(), AppError> {
    let store = tx.object_store(INSTANCES)?;
    let old = store
        .index("asset")?
        .get_all_keys(Some(Query::Key(JsValue::from_str(asset_id))), None)?
        .await?;
    for k in old {
        store.delete(Query::Key(k))?.await?;
    }
    for i in instances {
        store.put(&to_js(i)?, None)?.await?;
    }
    Ok(())
}
