//! Everything the app keeps lives in IndexedDB, through `idb`.
//!
//! Stores (schema version [`SCHEMA_VERSION`]):
//! - `projects`: [`Project`] by id (its ontology inside);
//! - `assets`: [`AssetRecord`] by asset id, index `project` on `project_id`;
//! - `blobs`: the displayable image `Blob` by asset id;
//! - `instances`: [`Instance`] by id, index `asset` on `asset_id`;
//! - `settings`: small values by name;
//! - `model_files` (v2): model files (ArrayBuffer) by their sha256, so a model downloads once;
//! - `embeddings` (v2): image embeddings (f16 bytes) by `model key/image sha256`.
//! - `outbox` (v3): images of synced batches with changes not pushed yet, by asset id (index `project`);
//!   written in the same transaction as the change, so a crash or reload never loses a pending push;
//! - `sync_assets` (v3): per image of a synced batch, the server revision it was last equal to, and any
//!   conflict waiting for the user; `sync_batches` (v3): per synced project, its batch, endpoint (no
//!   secret unless the user chose to remember it) and what it has read from the server (`Ledger`).
//! - `runs` (v4): model runs by id (index `project`), each with its frozen label bundle; `run_predictions`
//!   (v4): the prediction sets imported into a run, by id (index `run`). See `store/runs.rs`.
//! - `review_events` (v5): every review event (submit, approve, reject, issue, reply, ...) by id, index
//!   `asset` and `project`, each marked pushed or not. See `store/review.rs`.
//! - `thumbs` (v6): per image, the catalog's thumbnail and find-similar embedding, index `project`. See
//!   `store/catalog.rs`.
//!
//! Each user action is one read-write transaction: it lands whole or not at all (a full quota aborts it
//! and nothing is half-written).

use std::cell::RefCell;
use std::rc::Rc;

use idb::event::Event as _;
use idb::request::Request as _;
use idb::{
    Database, DatabaseEvent, Factory, IndexParams, KeyPath, ObjectStoreParams, Query,
    TransactionMode,
};
use lamina_core::edit::Edit;
use lamina_core::labels::{Asset, Instance, Project};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::Blob;

use crate::error::AppError;

pub mod catalog;
pub mod review;
pub mod runs;
pub mod sync;

pub const DB_NAME: &str = "lamina";
/// Bump with a new step in [`migrate`] whenever stores or indexes change.
pub const SCHEMA_VERSION: u32 = 6;

const PROJECTS: &str = "projects";
pub(crate) const ASSETS: &str = "assets";
const BLOBS: &str = "blobs";
const INSTANCES: &str = "instances";
const SETTINGS: &str = "settings";
const MODEL_FILES: &str = "model_files";
const EMBEDDINGS: &str = "embeddings";
pub(crate) const OUTBOX: &str = "outbox";
pub(crate) const SYNC_ASSETS: &str = "sync_assets";
pub(crate) const SYNC_BATCHES: &str = "sync_batches";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AssetRecord {
    pub project_id: String,
    /// Import order within the project.
    pub position: u32,
    pub asset: Asset,
    /// For an image of a synced batch whose file is fetched when first opened: where it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<lamina_sync::batch::ImageLocation>,
    /// Labels per class and pending pre-labels, recomputed with the stage (`editing::review::restage`);
    /// `None` on records from before counts were kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_counts: Option<lamina_core::catalog::LabelCounts>,
    /// When the image came into the project (RFC 3339); `None` on records from before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported: Option<String>,
    /// Why the image's stage needs attention (a stale approval, conflicting decisions), as
    /// `lamina_core::review::StageNote::text` words it; kept so the review panel can list them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_note: Option<String>,
}

/// An image with changes to push: `generation` changes with every change, so a push that read an older
/// generation leaves the entry (and the newer change) queued.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OutboxEntry {
    pub asset_id: String,
    pub project_id: String,
    pub generation: String,
}

impl From<idb::Error> for AppError {
    fn from(e: idb::Error) -> Self {
        match &e {
            idb::Error::DomException(d) if d.name() == "QuotaExceededError" => {
                AppError::StorageFull
            }
            _ => AppError::Storage(e.to_string()),
        }
    }
}

pub struct Store {
    pub(crate) db: Database,
    /// The same connection, for what `idb` does not offer (transaction durability).
    raw: web_sys::IdbDatabase,
    /// Another tab asked for a newer schema and this connection was closed for it.
    closed: Rc<std::cell::Cell<bool>>,
}

/// What other tabs do to this tab's storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreEvent {
    /// Opening waits: another tab holds the database at an older schema.
    Blocked,
    /// Another tab upgraded the schema; this connection was closed so the upgrade could go on.
    ClosedForUpgrade,
}

pub(crate) fn to_js<T: Serialize>(value: &T) -> Result<JsValue, AppError> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| AppError::Corrupt(e.to_string()))
}

pub(crate) fn from_js<T: DeserializeOwned>(value: JsValue) -> Result<T, AppError> {
    serde_wasm_bindgen::from_value(value).map_err(|e| AppError::Corrupt(e.to_string()))
}

/// Adds the index `name` over the records' `field` (e.g. `project` over `project_id`).
pub(crate) fn add_index(
    store: &idb::ObjectStore,
    name: &str,
    field: &str,
) -> Result<(), idb::Error> {
    store.create_index(name, KeyPath::new_single(field), Some(IndexParams::new()))?;
    Ok(())
}

/// Schema steps, run in order from the stored version up to [`SCHEMA_VERSION`].
fn migrate(db: &Database, from_version: u32) -> Result<(), idb::Error> {
    if from_version < 1 {
        let keyed_by_id = || {
            let mut p = ObjectStoreParams::new();
            p.key_path(Some(KeyPath::new_single("id")));
            p
        };
        db.create_object_store(PROJECTS, keyed_by_id())?;
        let assets = db.create_object_store(ASSETS, ObjectStoreParams::new())?;
        add_index(&assets, "project", "project_id")?;
        db.create_object_store(BLOBS, ObjectStoreParams::new())?;
        let instances = db.create_object_store(INSTANCES, keyed_by_id())?;
        add_index(&instances, "asset", "asset_id")?;
        db.create_object_store(SETTINGS, ObjectStoreParams::new())?;
    }
    if from_version < 2 {
        db.create_object_store(MODEL_FILES, ObjectStoreParams::new())?;
        db.create_object_store(EMBEDDINGS, ObjectStoreParams::new())?;
    }
    if from_version < 3 {
        let outbox = db.create_object_store(OUTBOX, ObjectStoreParams::new())?;
        add_index(&outbox, "project", "project_id")?;
        db.create_object_store(SYNC_ASSETS, ObjectStoreParams::new())?;
        db.create_object_store(SYNC_BATCHES, ObjectStoreParams::new())?;
    }
    if from_version < 4 {
        runs::migrate_to_v4(db)?;
    }
    if from_version < 5 {
        review::migrate_to_v5(db)?;
    }
    if from_version < 6 {
        catalog::migrate_to_v6(db)?;
    }
    Ok(())
}

impl Store {
    /// Opens the database, upgrading it step by step. A step that fails aborts the whole upgrade: the
    /// database stays at its old version with its data untouched, and the error says which step failed.
    pub async fn open(name: &str) -> Result<Store, AppError> {
        Self::open_watched(name, |_| {}).await
    }

    /// [`Store::open`], telling `on_event` when another tab blocks the upgrade or takes the database
    /// for a newer schema (this connection then closes at once, so the other tab is not left hanging).
    pub async fn open_watched(
        name: &str,
        on_event: impl Fn(StoreEvent) + 'static,
    ) -> Result<Store, AppError> {
        let on_event = Rc::new(on_event);
        let factory = Factory::new()?;
        let mut request = factory.open(name, Some(SCHEMA_VERSION))?;
        let blocked = on_event.clone();
        request.on_blocked(move |_| (*blocked)(StoreEvent::Blocked));
        let failed: Rc<RefCell<Option<String>>> = Rc::default();
        let failed_in_upgrade = failed.clone();
        request.on_upgrade_needed(move |event| {
            let from = event.old_version().unwrap_or(0);
            let result = event.database().and_then(|db| migrate(&db, from));
            if let Err(e) = result {
                *failed_in_upgrade.borrow_mut() = Some(format!(
                    "upgrading its data from version {from} to {SCHEMA_VERSION} failed ({e}); \
                     nothing was changed. Reload to try again, or use the browser the data was made with"
                ));
                if let Some(tx) = event.target().ok().and_then(|r| r.transaction()) {
                    let _ = tx.abort();
                }
            }
        });
        let opened = request.await;
        if let Some(why) = failed.borrow_mut().take() {
            return Err(AppError::StorageOpen(why));
        }
        let raw: web_sys::IdbDatabase = opened
            .map_err(|e| AppError::StorageOpen(e.to_string()))?
            .into();
        let mut db = Database::from(raw.clone());
        let closed: Rc<std::cell::Cell<bool>> = Rc::default();
        let closed_now = closed.clone();
        let closing = raw.clone();
        db.on_version_change(move |_| {
            closing.close();
            closed_now.set(true);
            (*on_event)(StoreEvent::ClosedForUpgrade);
        });
        Ok(Store { db, raw, closed })
    }

    /// A read-write transaction with strict durability: the browser reports it complete only once it is
    /// on disk (Chromium's default, "relaxed", may lose a label shown as saved to a power cut).
    pub(crate) fn rw(&self, stores: &[&str]) -> Result<idb::Transaction, AppError> {
        if self.closed.get() {
            return Err(AppError::StorageOpen(
                "Lamina was updated in another tab: reload this tab to go on (what was saved is kept)"
                    .into(),
            ));
        }
        let names: js_sys::Array = stores.iter().map(|s| JsValue::from_str(s)).collect();
        let options = js_sys::Object::new();
        js_sys::Reflect::set(&options, &"durability".into(), &"strict".into())
            .map_err(|e| AppError::Storage(format!("{e:?}")))?;
        let open = js_sys::Reflect::get(&self.raw, &"transaction".into())
            .ok()
            .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
            .ok_or_else(|| AppError::Storage("IndexedDB has no transaction()".into()))?;
        let tx = open
            .call3(&self.raw, &names, &"readwrite".into(), &options)
            .map_err(|e| {
                let text = e
                    .dyn_ref::<web_sys::DomException>()
                    .map(|d| format!("{}: {}", d.name(), d.message()))
                    .unwrap_or_else(|| format!("{e:?}"));
                AppError::Storage(text)
            })?;
        Ok(tx.unchecked_into::<web_sys::IdbTransaction>().into())
    }

    /// Commits `tx` if `result` is Ok, aborts it otherwise: a step that failed half-way leaves nothing
    /// written (an early `?` must never commit what came before it).
    pub(crate) async fn finish<T>(
        tx: idb::Transaction,
        result: Result<T, AppError>,
    ) -> Result<T, AppError> {
        match result {
            Ok(value) => match tx.commit()?.await {
                Ok(r) if r.is_committed() => Ok(value),
                Ok(_) => Err(AppError::Storage("the transaction was aborted".into())),
                Err(e) => Err(e.into()),
            },
            Err(e) => {
                let _ = tx.abort();
                Err(e)
            }
        }
    }

    /// The schema version the database is at.
    pub fn version(&self) -> Result<u32, AppError> {
        Ok(self.db.version()?)
    }

    /// The names of the database's object stores, sorted.
    pub fn store_names(&self) -> Vec<String> {
        let mut names = self.db.store_names();
        names.sort();
        names
    }

    /// Asks the browser not to evict our data under storage pressure; the answer is the browser's.
    pub async fn request_persistence() -> bool {
        let Some(window) = web_sys::window() else {
            return false;
        };
        match window.navigator().storage().persist() {
            Ok(p) => wasm_bindgen_futures::JsFuture::from(p)
                .await
                .is_ok_and(|v| v.is_truthy()),
            Err(_) => false,
        }
    }

    /// Runs `fill` in one read-write transaction over `stores` and waits until it is committed.
    pub(crate) async fn write(
        &self,
        stores: &[&str],
        fill: impl FnOnce(&idb::Transaction) -> Result<(), AppError>,
    ) -> Result<(), AppError> {
        let tx = self.rw(stores)?;
        // A second handle on the same transaction, to read why it aborted after the future consumed it.
        let probe = tx.object_store(stores[0])?.transaction();
        if let Err(e) = fill(&tx) {
            let _ = tx.abort();
            return Err(e);
        }
        match tx.await {
            Ok(r) if r.is_committed() => Ok(()),
            Ok(_) => Err(match probe.error() {
                Some(d) if d.name() == "QuotaExceededError" => AppError::StorageFull,
                Some(d) => AppError::Storage(format!("{}: {}", d.name(), d.message())),
                None => AppError::Storage("the transaction was aborted".into()),
            }),
            Err(e) => Err(e.into()),
        }
    }

    pub(crate) async fn get_all<T: DeserializeOwned>(
        &self,
        store: &str,
        index: Option<(&str, &str)>,
    ) -> Result<Vec<T>, AppError> {
        let tx = self.db.transaction(&[store], TransactionMode::ReadOnly)?;
        let os = tx.object_store(store)?;
        let values = match index {
            None => os.get_all(None, None)?.await?,
            Some((name, key)) => {
                os.index(name)?
                    .get_all(Some(Query::Key(JsValue::from_str(key))), None)?
                    .await?
            }
        };
        values.into_iter().map(from_js).collect()
    }

    pub async fn projects(&self) -> Result<Vec<Project>, AppError> {
        let mut projects: Vec<Project> = self.get_all(PROJECTS, None).await?;
        projects.sort_by(|a, b| a.created.cmp(&b.created));
        Ok(projects)
    }

    pub async fn put_project(&self, project: &Project) -> Result<(), AppError> {
        let value = to_js(project)?;
        self.write(&[PROJECTS], |tx| {
            tx.object_store(PROJECTS)?.put(&value, None)?;
            Ok(())
        })
        .await
    }

    pub async fn assets(&self, project_id: &str) -> Result<Vec<AssetRecord>, AppError> {
        let mut records: Vec<AssetRecord> =
            self.get_all(ASSETS, Some(("project", project_id))).await?;
        records.sort_by_key(|r| r.position);
        Ok(records)
    }

    /// Stores an asset with its image in one transaction: an image is either fully imported or absent.
    pub async fn add_asset(&self, record: &AssetRecord, blob: &Blob) -> Result<(), AppError> {
        let value = to_js(record)?;
        let key = JsValue::from_str(&record.asset.id);
        self.write(&[ASSETS, BLOBS], |tx| {
            tx.object_store(ASSETS)?.put(&value, Some(&key))?;
            tx.object_store(BLOBS)?.put(blob, Some(&key))?;
            Ok(())
        })
        .await
    }

    pub async fn put_asset(&self, record: &AssetRecord) -> Result<(), AppError> {
        let value = to_js(record)?;
        let key = JsValue::from_str(&record.asset.id);
        self.write(&[ASSETS], |tx| {
            tx.object_store(ASSETS)?.put(&value, Some(&key))?;
            Ok(())
        })
        .await
    }

    pub async fn blob(&self, asset_id: &str) -> Result<Option<Blob>, AppError> {
        let tx = self.db.transaction(&[BLOBS], TransactionMode::ReadOnly)?;
        let value = tx
            .object_store(BLOBS)?
            .get(JsValue::from_str(asset_id))?
            .await?;
        Ok(value.and_then(|v| wasm_bindgen::JsCast::dyn_into::<Blob>(v).ok()))
    }

    pub async fn instances(&self, asset_id: &str) -> Result<Vec<Instance>, AppError> {
        let mut list: Vec<Instance> = self.get_all(INSTANCES, Some(("asset", asset_id))).await?;
        // Drawing order: oldest at the bottom, as the user made them.
        list.sort_by(|a, b| {
            a.provenance
                .updated
                .cmp(&b.provenance.updated)
                .then(a.id.cmp(&b.id))
        });
        Ok(list)
    }

    /// Writes one edit of one image, together with the image's new status (and position), atomically;
    /// for a synced batch, also its outbox entry, so the change is queued for push in the same commit.
    pub async fn apply_edit(
        &self,
        record: &AssetRecord,
        edit: &Edit,
        outbox: Option<&OutboxEntry>,
    ) -> Result<(), AppError> {
        let outbox_value = outbox.map(to_js).transpose()?;
        let asset_value = to_js(record)?;
        let asset_key = JsValue::from_str(&record.asset.id);
        let added = edit
            .added
            .iter()
            .map(to_js)
            .collect::<Result<Vec<_>, _>>()?;
        let deleted: Vec<JsValue> = edit.deleted_ids().map(JsValue::from_str).collect();
        self.write(&[INSTANCES, ASSETS, OUTBOX], |tx| {
            let instances = tx.object_store(INSTANCES)?;
            for id in deleted {
                instances.delete(Query::Key(id))?;
            }
            for value in &added {
                instances.put(value, None)?;
            }
            tx.object_store(ASSETS)?
                .put(&asset_value, Some(&asset_key))?;
            if let Some(v) = &outbox_value {
                tx.object_store(OUTBOX)?.put(v, Some(&asset_key))?;
            }
            Ok(())
        })
        .await
    }

    pub async fn setting(&self, name: &str) -> Result<Option<String>, AppError> {
        let tx = self
            .db
            .transaction(&[SETTINGS], TransactionMode::ReadOnly)?;
        let value = tx
            .object_store(SETTINGS)?
            .get(JsValue::from_str(name))?
            .await?;
        Ok(value.and_then(|v| v.as_string()))
    }

    pub async fn put_setting(&self, name: &str, value: &str) -> Result<(), AppError> {
        let (k, v) = (JsValue::from_str(name), JsValue::from_str(value));
        self.write(&[SETTINGS], |tx| {
            tx.object_store(SETTINGS)?.put(&v, Some(&k))?;
            Ok(())
        })
        .await
    }

    /// A value stored out of line under a string key (model files, embeddings).
    pub(crate) async fn get_value(
        &self,
        store: &str,
        key: &str,
    ) -> Result<Option<JsValue>, AppError> {
        let tx = self.db.transaction(&[store], TransactionMode::ReadOnly)?;
        Ok(tx.object_store(store)?.get(JsValue::from_str(key))?.await?)
    }

    async fn put_value(&self, store: &str, key: &str, value: &JsValue) -> Result<(), AppError> {
        let k = JsValue::from_str(key);
        self.write(&[store], |tx| {
            tx.object_store(store)?.put(value, Some(&k))?;
            Ok(())
        })
        .await
    }

    pub async fn model_file(&self, sha256: &str) -> Result<Option<js_sys::ArrayBuffer>, AppError> {
        Ok(self
            .get_value(MODEL_FILES, sha256)
            .await?
            .and_then(|v| wasm_bindgen::JsCast::dyn_into(v).ok()))
    }

    pub async fn put_model_file(
        &self,
        sha256: &str,
        bytes: &js_sys::ArrayBuffer,
    ) -> Result<(), AppError> {
        self.put_value(MODEL_FILES, sha256, bytes).await
    }

    pub async fn embedding(&self, key: &str) -> Result<Option<js_sys::Uint8Array>, AppError> {
        Ok(self
            .get_value(EMBEDDINGS, key)
            .await?
            .and_then(|v| wasm_bindgen::JsCast::dyn_into(v).ok()))
    }

    pub async fn put_embedding(&self, key: &str, f16: &js_sys::Uint8Array) -> Result<(), AppError> {
        self.put_value(EMBEDDINGS, key, f16).await
    }

    pub fn close(&self) {
        self.db.close();
    }
}

pub async fn delete_database(name: &str) -> Result<(), AppError> {
    Factory::new()?.delete(name)?.await?;
    Ok(())
}

thread_local! {
    static SHARED: std::cell::OnceCell<Rc<Store>> = const { std::cell::OnceCell::new() };
}

/// The store the app opened at boot ([`set_shared`]).
pub fn shared() -> Result<Rc<Store>, AppError> {
    SHARED
        .with(|s| s.get().cloned())
        .ok_or_else(|| AppError::StorageOpen("the storage is not open yet".into()))
}

/// Makes `store` the one [`shared`] returns (once, at boot).
pub fn set_shared(store: Rc<Store>) {
    SHARED.with(|s| {
        let _ = s.set(store);
    });
}
