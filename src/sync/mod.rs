//! Team sync in the app: pull a batch from an S3 or WebDAV-style endpoint, queue every change in the
//! IndexedDB outbox (in the same transaction as the change), push it as immutable fragments with retries
//! and backoff, pull others' labels, and surface conflicts for the user. The rules are in `lamina-sync`;
//! this is the glue to signals, storage and `fetch`.

pub mod fetch;
pub mod store;

use std::collections::HashMap;

use lamina_core::model::{Asset, LabelStatus, Ontology, Project};
use lamina_sync::batch::ImageLocation;
use lamina_sync::driver::{self, backoff_ms};
use lamina_sync::fragment::{refile, revision_of, AssetLabels, ImageInfo};
use lamina_sync::{layout, Decision, Endpoint, Fragment, LocalAsset, SyncError};
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::state::{new_id, now, store, AppState};
use crate::store::{AssetRecord, OutboxEntry, StoreError};
use fetch::Fetch;
use store::Pushed;
pub use store::{BatchLink, Conflict};

/// What the sync line shows.
#[derive(Clone, Debug, PartialEq)]
pub enum SyncStatus {
    /// The project is not a synced batch.
    Off,
    Synced,
    Pending,
    Syncing(String),
    Error(String),
}

impl SyncStatus {
    pub fn key(&self) -> &'static str {
        match self {
            SyncStatus::Off => "off",
            SyncStatus::Synced => "synced",
            SyncStatus::Pending => "pending",
            SyncStatus::Syncing(_) => "syncing",
            SyncStatus::Error(_) => "error",
        }
    }
}

/// A conflict as the panel lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct ConflictView {
    pub asset_id: String,
    pub sync_id: String,
    pub name: String,
    pub conflict: Conflict,
}

#[derive(Clone, Copy)]
pub struct SyncState {
    /// The current project's batch, with its credentials in memory.
    pub link: RwSignal<Option<BatchLink>>,
    pub status: RwSignal<SyncStatus>,
    pub pending: RwSignal<usize>,
    pub conflicts: RwSignal<Vec<ConflictView>>,
    busy: StoredValue<bool>,
    /// Bumped by every scheduled push, so only the last one of a burst runs.
    scheduled: StoredValue<u64>,
    attempt: StoredValue<u32>,
    /// The last fragment built, by the outbox generations it carries: a retry sends the same bytes.
    last_fragment: StoredValue<Option<(Vec<String>, Fragment)>>,
}

impl SyncState {
    pub fn new() -> Self {
        SyncState {
            link: RwSignal::new(None),
            status: RwSignal::new(SyncStatus::Off),
            pending: RwSignal::new(0),
            conflicts: RwSignal::new(Vec::new()),
            busy: StoredValue::new(false),
            scheduled: StoredValue::new(0),
            attempt: StoredValue::new(0),
            last_fragment: StoredValue::new(None),
        }
    }

    /// The outbox entry a change of an image of this project gets, or None when it is not a synced batch.
    pub fn outbox_entry(&self, record: &AssetRecord) -> Option<OutboxEntry> {
        self.link
            .with_untracked(|l| {
                l.as_ref()
                    .is_some_and(|l| l.project_id == record.project_id)
            })
            .then(|| OutboxEntry {
                asset_id: record.asset.id.clone(),
                project_id: record.project_id.clone(),
                generation: new_id(),
            })
    }
}

impl Default for SyncState {
    fn default() -> Self {
        Self::new()
    }
}

/// What the connect form gives.
pub struct ConnectForm {
    pub endpoint: Endpoint,
    pub batch: String,
    pub labeler: String,
    pub remember: bool,
}

fn project_id_of(batch: &str) -> String {
    format!("batch-{batch}")
}

/// Pulls a batch (creating or updating its project), then its labels; opens the project.
pub async fn connect(state: AppState, form: ConnectForm) {
    if let Err(e) = connect_inner(state, form).await {
        state.sync.status.set(SyncStatus::Error(e.clone()));
        state.error(format!("Batch not pulled: {e}"));
    }
}

async fn connect_inner(state: AppState, form: ConnectForm) -> Result<(), String> {
    layout::check_id(&form.batch, "batch id").map_err(|e| e.to_string())?;
    layout::check_id(&form.labeler, "labeler name").map_err(|e| e.to_string())?;
    form.endpoint.check().map_err(|e| e.to_string())?;
    state
        .progress
        .set(Some(format!("Pulling batch {}…", form.batch)));
    let manifest = driver::pull_manifest(&Fetch, &form.endpoint, &form.batch).await;
    state.progress.set(None);
    let manifest = manifest.map_err(|e| e.to_string())?;
    let db = store().map_err(|e| e.to_string())?;
    let project_id = project_id_of(&form.batch);
    let existing = db
        .projects()
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|p| p.id == project_id);
    let project = Project {
        id: project_id.clone(),
        name: manifest
            .name
            .clone()
            .unwrap_or_else(|| format!("Batch {}", form.batch)),
        created: existing
            .as_ref()
            .map(|p| p.created.clone())
            .unwrap_or_else(now),
        ontology: manifest
            .ontology
            .clone()
            .or_else(|| existing.as_ref().map(|p| p.ontology.clone()))
            .unwrap_or_else(Ontology::pannuke),
    };
    db.put_project(&project).await.map_err(|e| e.to_string())?;
    let records = db.assets(&project_id).await.map_err(|e| e.to_string())?;
    let mut position = records.iter().map(|r| r.position + 1).max().unwrap_or(0);
    let new_records: Vec<AssetRecord> = manifest
        .assets
        .iter()
        .filter(|a| {
            let id = layout::local_asset_id(&form.batch, &a.id);
            !records.iter().any(|r| r.asset.id == id)
        })
        .map(|a| {
            position += 1;
            AssetRecord {
                project_id: project_id.clone(),
                position: position - 1,
                asset: Asset {
                    id: layout::local_asset_id(&form.batch, &a.id),
                    name: a.name.clone(),
                    sha256: a.sha256.clone().unwrap_or_default(),
                    width: 0,
                    height: 0,
                    metadata: a.metadata.clone(),
                    uri: match &a.location {
                        ImageLocation::Url(u) => Some(u.clone()),
                        ImageLocation::Key(_) => None,
                    },
                    status: LabelStatus::Unlabeled,
                },
                remote: Some(a.location.clone()),
            }
        })
        .collect();
    db.put_assets(&new_records)
        .await
        .map_err(|e| e.to_string())?;
    let ledger = db
        .sync_batch(&project_id)
        .await
        .map_err(|e| e.to_string())?
        .map(|l| l.ledger)
        .unwrap_or_default();
    let link = BatchLink {
        project_id: project_id.clone(),
        batch: form.batch.clone(),
        labeler: form.labeler.clone(),
        endpoint: form.endpoint,
        remember: form.remember,
        needs_credentials: false,
        ledger,
    };
    db.put_sync_batch(&link).await.map_err(|e| e.to_string())?;
    state.reload_projects().await.map_err(|e| e.to_string())?;
    // Opening the project loads the link (with the credentials just given) and pulls.
    state.sync.link.set(Some(link));
    state.open_project(project_id).await;
    let mut info = format!(
        "Batch {}: {} images ({} new)",
        form.batch,
        manifest.assets.len(),
        new_records.len()
    );
    if !manifest.problems.is_empty() {
        info.push_str(&format!(
            "; skipped {} row(s): {}",
            manifest.problems.len(),
            manifest.problems.join("; ")
        ));
    }
    state.info(info);
    Ok(())
}

/// Called when a project opens: loads its batch link (keeping credentials given in this session), then
/// pulls and pushes what waits.
pub async fn on_project_opened(state: AppState, project_id: String) {
    let Ok(db) = store() else { return };
    let stored = db.sync_batch(&project_id).await.ok().flatten();
    let Some(mut link) = stored else {
        state.sync.link.set(None);
        state.sync.status.set(SyncStatus::Off);
        state.sync.conflicts.set(vec![]);
        return;
    };
    if let Some(current) = state.sync.link.get_untracked() {
        if current.project_id == project_id {
            link.endpoint = current.endpoint;
            link.needs_credentials = false;
        }
    }
    state.sync.link.set(Some(link.clone()));
    refresh(state).await;
    if link.needs_credentials {
        state.sync.status.set(SyncStatus::Error(
            "enter the credentials to sync (they were not remembered); changes wait in the outbox"
                .into(),
        ));
        return;
    }
    pull(state).await;
    push(state).await;
}

/// Recounts the outbox and the conflicts of the current batch.
pub async fn refresh(state: AppState) {
    recount_pending(state).await;
    let Some(link) = state.sync.link.get_untracked() else {
        return;
    };
    let Ok(db) = store() else { return };
    let records = db.sync_records().await.unwrap_or_default();
    let names: HashMap<String, String> = state.assets.with_untracked(|a| {
        a.iter()
            .map(|r| (r.asset.id.clone(), r.asset.name.clone()))
            .collect()
    });
    let mut conflicts: Vec<ConflictView> = records
        .into_iter()
        .filter_map(|(asset_id, r)| {
            let name = names.get(&asset_id)?.clone();
            r.conflict.map(|conflict| ConflictView {
                sync_id: layout::sync_asset_id(&link.batch, &asset_id).to_owned(),
                asset_id,
                name,
                conflict,
            })
        })
        .collect();
    conflicts.sort_by(|a, b| a.name.cmp(&b.name));
    state.sync.conflicts.set(conflicts);
}

/// Recounts the outbox; the status follows (pending or synced) unless a sync is running or failed.
async fn recount_pending(state: AppState) {
    let Some(link) = state.sync.link.get_untracked() else {
        return;
    };
    let Ok(db) = store() else { return };
    let pending = db
        .outbox(&link.project_id)
        .await
        .map(|o| o.len())
        .unwrap_or(0);
    state.sync.pending.set(pending);
    state.sync.status.update(|s| {
        if !matches!(s, SyncStatus::Syncing(_) | SyncStatus::Error(_)) {
            *s = if pending > 0 {
                SyncStatus::Pending
            } else {
                SyncStatus::Synced
            };
        }
    });
}

/// After a push or pull went through: recounts first, then shows `synced` (or `N pending`), so the panel
/// never says "synced" next to stale counts or conflicts.
async fn settle(state: AppState) {
    refresh(state).await;
    let pending = state.sync.pending.get_untracked();
    state.sync.status.set(if pending > 0 {
        SyncStatus::Pending
    } else {
        SyncStatus::Synced
    });
}

/// Queues a push shortly after a change (a burst of edits makes one fragment).
pub fn schedule_push(state: AppState, delay_ms: u32) {
    if state.sync.link.with_untracked(Option::is_none) {
        return;
    }
    let ticket = state.sync.scheduled.with_value(|n| n + 1);
    state.sync.scheduled.set_value(ticket);
    spawn_local(async move {
        // Only the outbox changed: recount it (conflicts are re-read after the push or pull).
        recount_pending(state).await;
        gloo_timers::future::TimeoutFuture::new(delay_ms).await;
        if state.sync.scheduled.get_value() == ticket {
            push(state).await;
        }
    });
}

/// Pushes every queued image of the current batch as one fragment. Transient failures retry with
/// backoff; a refused credential waits for the user.
pub async fn push(state: AppState) {
    let Some(link) = state.sync.link.get_untracked() else {
        return;
    };
    if link.needs_credentials {
        return;
    }
    if state.sync.busy.get_value() {
        // A pull is running: try again once it is done, so a change made meanwhile is not left behind.
        schedule_push(state, 1000);
        return;
    }
    if !link.endpoint.can_write() {
        refresh(state).await;
        return;
    }
    state.sync.busy.set_value(true);
    let result = push_inner(state, link).await;
    state.sync.busy.set_value(false);
    match result {
        // Nothing was queued, nothing was sent: the status keeps what it said (a failed pull stays an
        // error rather than turning into "synced").
        Ok(0) => refresh(state).await,
        Ok(n) => {
            state.sync.attempt.set_value(0);
            settle(state).await;
            // Changes made while this push was on the wire.
            if n > 0 && state.sync.pending.get_untracked() > 0 {
                schedule_push(state, 200);
            }
        }
        Err(e) => fail(state, e).await,
    }
}

async fn fail(state: AppState, e: SyncError) {
    refresh(state).await;
    if e.is_transient() {
        let attempt = state.sync.attempt.get_value();
        state.sync.attempt.set_value(attempt + 1);
        let wait = backoff_ms(attempt);
        state.sync.status.set(SyncStatus::Error(format!(
            "{e}; changes stay queued, retrying in {} s",
            wait.div_ceil(1000)
        )));
        let ticket = state.sync.scheduled.with_value(|n| n + 1);
        state.sync.scheduled.set_value(ticket);
        spawn_local(async move {
            gloo_timers::future::TimeoutFuture::new(wait as u32).await;
            if state.sync.scheduled.get_value() == ticket {
                push(state).await;
            }
        });
    } else {
        state.sync.status.set(SyncStatus::Error(e.to_string()));
    }
}

/// At most this many images per fragment, so one push stays a reasonable upload.
const MAX_IMAGES_PER_FRAGMENT: usize = 200;

async fn push_inner(state: AppState, mut link: BatchLink) -> Result<usize, SyncError> {
    let idb = |e: StoreError| SyncError::BadEndpoint(format!("local storage: {e}"));
    let db = store().map_err(idb)?;
    let mut queued = db.outbox(&link.project_id).await.map_err(idb)?;
    if queued.is_empty() {
        return Ok(0);
    }
    queued.truncate(MAX_IMAGES_PER_FRAGMENT);
    state.sync.status.set(SyncStatus::Syncing(format!(
        "pushing {} image(s)",
        queued.len()
    )));
    let records = db.sync_records().await.map_err(idb)?;
    let assets = db.assets(&link.project_id).await.map_err(idb)?;
    let mut labels = Vec::new();
    let mut pushed = Vec::new();
    for entry in &queued {
        let Some(record) = assets.iter().find(|r| r.asset.id == entry.asset_id) else {
            continue;
        };
        let sync_id = layout::sync_asset_id(&link.batch, &record.asset.id);
        let instances = db.instances(&record.asset.id).await.map_err(idb)?;
        let sync = records.get(&record.asset.id).cloned().unwrap_or_default();
        let parents = if sync.parents.is_empty() {
            sync.base.into_iter().collect()
        } else {
            sync.parents
        };
        let asset_labels = AssetLabels::new(
            sync_id.to_owned(),
            parents,
            record.asset.status,
            refile(&instances, sync_id),
        )
        .with_image(ImageInfo {
            sha256: record.asset.sha256.clone(),
            width: record.asset.width,
            height: record.asset.height,
        });
        pushed.push(Pushed {
            asset_id: record.asset.id.clone(),
            generation: entry.generation.clone(),
            revision: asset_labels.revision.clone(),
        });
        labels.push(asset_labels);
    }
    // A retry of the very same images and changes reuses the fragment it built (same time, same bytes,
    // same key), so an upload whose answer was lost is not written a second time under a new key.
    let generations: Vec<String> = pushed.iter().map(|p| p.generation.clone()).collect();
    let fragment = match state.sync.last_fragment.get_value() {
        Some((g, f)) if g == generations && f.batch == link.batch => f,
        _ => Fragment::new(&link.batch, &link.labeler, &now(), labels)?,
    };
    state
        .sync
        .last_fragment
        .set_value(Some((generations, fragment.clone())));
    let outcome =
        driver::push_fragment(&Fetch, &link.endpoint, &fragment, &link.ledger.fragments).await?;
    link.ledger.record(&outcome.key, &fragment);
    db.finish_push(&link, &pushed).await.map_err(idb)?;
    keep_link(state, link);
    Ok(pushed.len())
}

/// Keeps the in-memory link in step with what was stored (same project only).
fn keep_link(state: AppState, link: BatchLink) {
    state.sync.link.update(|l| {
        if let Some(current) = l {
            if current.project_id == link.project_id {
                current.ledger = link.ledger;
            }
        }
    });
}

/// Reads new fragments and applies them: adopts others' newer labels, records conflicts.
pub async fn pull(state: AppState) {
    let Some(link) = state.sync.link.get_untracked() else {
        return;
    };
    if link.needs_credentials || state.sync.busy.get_value() {
        return;
    }
    state.sync.busy.set_value(true);
    state
        .sync
        .status
        .set(SyncStatus::Syncing("pulling labels".into()));
    let result = pull_inner(state, link).await;
    state.sync.busy.set_value(false);
    match result {
        Ok(problems) => {
            settle(state).await;
            if !problems.is_empty() {
                state.error(format!(
                    "Some objects on the server were skipped: {}",
                    problems.join("; ")
                ));
            }
        }
        Err(e) => fail_pull(state, e).await,
    }
}

async fn fail_pull(state: AppState, e: SyncError) {
    refresh(state).await;
    state
        .sync
        .status
        .set(SyncStatus::Error(format!("pull failed: {e}")));
}

async fn pull_inner(state: AppState, mut link: BatchLink) -> Result<Vec<String>, SyncError> {
    let idb = |e: StoreError| SyncError::BadEndpoint(format!("local storage: {e}"));
    let db = store().map_err(idb)?;
    let outcome =
        driver::pull_fragments(&Fetch, &link.endpoint, &link.batch, &mut link.ledger).await?;
    let mut problems = outcome.problems;
    let mut fetched: HashMap<String, Fragment> = outcome.fragments.into_iter().collect();
    let outbox = db.outbox(&link.project_id).await.map_err(idb)?;
    let records = db.sync_records().await.map_err(idb)?;
    let assets = db.assets(&link.project_id).await.map_err(idb)?;
    let current_id = state.current_record_now().map(|r| r.asset.id);
    let mut current_changed = false;
    let mut classes = std::collections::BTreeSet::new();
    let mut updated_records = Vec::new();
    // Images whose queued labels are already the server's only version (a push whose answer was lost,
    // e.g. to a reload): recorded as pushed instead of being sent again.
    let mut already_pushed = Vec::new();
    let sync_ids: Vec<String> = link.ledger.asset_ids().map(str::to_owned).collect();
    let total = sync_ids.len();
    for (done, sync_id) in sync_ids.into_iter().enumerate() {
        if done % 25 == 0 && total > 25 {
            state.sync.status.set(SyncStatus::Syncing(format!(
                "applying labels, image {done} of {total}"
            )));
        }
        let local_id = layout::local_asset_id(&link.batch, &sync_id);
        let Some(record) = assets.iter().find(|r| r.asset.id == local_id) else {
            problems.push(format!(
                "labels for image `{sync_id}`, which is not in the batch"
            ));
            continue;
        };
        let instances = db.instances(&local_id).await.map_err(idb)?;
        let sync = records.get(&local_id).cloned().unwrap_or_default();
        let local = LocalAsset {
            base: sync.base.clone(),
            revision: revision_of(record.asset.status, &refile(&instances, &sync_id)),
            dirty: outbox.iter().any(|o| o.asset_id == local_id),
        };
        match link.ledger.decide(&sync_id, &local) {
            Decision::Adopt(entry) => {
                let fragment = match fetched.get(&entry.fragment_key) {
                    Some(f) => f.clone(),
                    None => {
                        let f = driver::fetch_fragment(
                            &Fetch,
                            &link.endpoint,
                            &link.batch,
                            &entry.fragment_key,
                        )
                        .await?;
                        fetched.insert(entry.fragment_key.clone(), f.clone());
                        f
                    }
                };
                let Some(labels) = fragment.assets.iter().find(|a| a.asset_id == sync_id) else {
                    continue;
                };
                let theirs = refile(&labels.instances, &local_id);
                classes.extend(theirs.iter().map(|i| i.class_id.clone()));
                let mut updated = record.clone();
                updated.asset.status = labels.status;
                if db
                    .adopt(&updated, &theirs, &labels.revision)
                    .await
                    .map_err(idb)?
                {
                    updated_records.push(updated);
                    if current_id.as_deref() == Some(local_id.as_str()) {
                        current_changed = true;
                    }
                }
            }
            Decision::Conflict { mine, theirs } => {
                db.set_conflict(&local_id, Some(Conflict { mine, theirs }))
                    .await
                    .map_err(idb)?;
            }
            decision @ (Decision::UpToDate | Decision::Push) => {
                if sync.conflict.is_some() {
                    db.set_conflict(&local_id, None).await.map_err(idb)?;
                }
                let heads = link.ledger.heads(&sync_id);
                let queued = outbox.iter().find(|o| o.asset_id == local_id);
                if let (Decision::Push, Some(entry), [head]) = (decision, queued, heads.as_slice())
                {
                    // Not for a conflict's answer: its parents still have to reach the server.
                    if head.revision == local.revision && sync.parents.is_empty() {
                        already_pushed.push(Pushed {
                            asset_id: local_id.clone(),
                            generation: entry.generation.clone(),
                            revision: local.revision.clone(),
                        });
                    }
                }
            }
        }
    }
    if already_pushed.is_empty() {
        db.put_sync_batch(&link).await.map_err(idb)?;
    } else {
        // Drops their outbox entries (unless changed meanwhile) and saves the link, in one transaction.
        db.finish_push(&link, &already_pushed).await.map_err(idb)?;
    }
    keep_link(state, link);
    state.replace_records(updated_records);
    state.ensure_classes(classes).await;
    if current_changed {
        state.reload_current().await;
    }
    Ok(problems)
}

/// The user's answer to a conflict: keep the local labels, or take one of the others' versions.
pub async fn resolve(state: AppState, view: ConflictView, take: Option<String>) {
    if let Err(e) = resolve_inner(state, &view, take).await {
        state.error(format!("Conflict on {} not resolved: {e}", view.name));
    }
    refresh(state).await;
    schedule_push(state, 0);
}

async fn resolve_inner(
    state: AppState,
    view: &ConflictView,
    take: Option<String>,
) -> Result<(), String> {
    let link = state
        .sync
        .link
        .get_untracked()
        .ok_or("not a synced batch")?;
    let db = store().map_err(|e| e.to_string())?;
    let mut record = db
        .assets(&link.project_id)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|r| r.asset.id == view.asset_id)
        .ok_or("the image is gone")?;
    let instances = db
        .instances(&record.asset.id)
        .await
        .map_err(|e| e.to_string())?;
    let sync = db
        .sync_records()
        .await
        .map_err(|e| e.to_string())?
        .remove(&record.asset.id)
        .unwrap_or_default();
    let local = LocalAsset {
        base: sync.base.clone(),
        revision: revision_of(record.asset.status, &refile(&instances, &view.sync_id)),
        dirty: true,
    };
    let mut parents = link.ledger.resolution_parents(&view.sync_id, &local);
    parents.extend(view.conflict.theirs.iter().map(|t| t.revision.clone()));
    parents.sort();
    parents.dedup();
    let replacement = match take {
        None => None,
        Some(revision) => {
            let entry = view
                .conflict
                .theirs
                .iter()
                .find(|t| t.revision == revision)
                .ok_or("that version is gone")?;
            let fragment =
                driver::fetch_fragment(&Fetch, &link.endpoint, &link.batch, &entry.fragment_key)
                    .await
                    .map_err(|e| e.to_string())?;
            let labels = fragment
                .assets
                .into_iter()
                .find(|a| a.asset_id == view.sync_id)
                .ok_or("that version has no labels for this image")?;
            record.asset.status = labels.status;
            Some(refile(&labels.instances, &record.asset.id))
        }
    };
    let outbox = OutboxEntry {
        asset_id: record.asset.id.clone(),
        project_id: link.project_id.clone(),
        generation: new_id(),
    };
    db.resolve(&record, replacement.as_deref(), parents, &outbox)
        .await
        .map_err(|e| e.to_string())?;
    state.replace_records(vec![record.clone()]);
    if state
        .current_record_now()
        .is_some_and(|r| r.asset.id == record.asset.id)
    {
        state.reload_current().await;
    }
    Ok(())
}

/// Fetches the image of a batch asset that has none yet, checks its sha256 against the manifest's, and
/// stores it with its real size. Returns the updated record.
pub async fn fetch_image(state: AppState, record: &AssetRecord) -> Result<AssetRecord, String> {
    let location = record.remote.clone().ok_or("the image has no source")?;
    let link = state
        .sync
        .link
        .get_untracked()
        .filter(|l| l.project_id == record.project_id);
    let request = match (&location, &link) {
        (ImageLocation::Key(key), Some(link)) => link
            .endpoint
            .get(key, js_sys::Date::now() as i64)
            .map_err(|e| e.to_string())?,
        (ImageLocation::Key(key), None) => {
            return Err(format!(
                "{key} is on the batch's endpoint; connect to it first"
            ))
        }
        (ImageLocation::Url(url), _) => lamina_sync::HttpRequest {
            method: "GET",
            url: url.clone(),
            headers: vec![],
            body: None,
            what: format!("GET {url}"),
        },
    };
    let body = driver::send_checked(&Fetch, request)
        .await
        .map_err(|e| match e {
            SyncError::NotFound { what } => format!(
                "the image is not on the server (HTTP 404 on {what}): the batch manifest lists it, but it was not uploaded or was removed"
            ),
            other => other.to_string(),
        })?
        .body;
    // The worker takes (detaches) the buffer it is given: hand it a copy and keep the body for the blob.
    let for_worker = js_sys::Uint8Array::from(body.as_slice());
    let decoded = crate::worker_client::decode_image(for_worker.buffer()).await?;
    let bytes = js_sys::Uint8Array::from(body.as_slice());
    if !record.asset.sha256.is_empty() && record.asset.sha256 != decoded.sha256 {
        return Err(format!(
            "its sha256 is {}…, not the {}… the batch manifest gives; the image was not used",
            &decoded.sha256[..12],
            &record.asset.sha256[..12.min(record.asset.sha256.len())]
        ));
    }
    let blob = crate::import::blob_of(&decoded, &bytes)?;
    let mut updated = record.clone();
    updated.asset.sha256 = decoded.sha256;
    updated.asset.width = decoded.width;
    updated.asset.height = decoded.height;
    store()
        .map_err(|e| e.to_string())?
        .add_asset(&updated, &blob)
        .await
        .map_err(|e| e.to_string())?;
    Ok(updated)
}

/// Warns before the tab closes with changes not on the server; pushes again when the network is back.
pub fn install_page_hooks(state: AppState) {
    use wasm_bindgen::closure::Closure;
    use wasm_bindgen::JsCast;
    let Some(window) = web_sys::window() else {
        return;
    };
    let before_unload = Closure::<dyn Fn(web_sys::BeforeUnloadEvent)>::new(
        move |ev: web_sys::BeforeUnloadEvent| {
            if state.sync.pending.get_untracked() > 0 {
                ev.prevent_default();
                ev.set_return_value("Some labels are not synced yet.");
            }
        },
    );
    let _ = window
        .add_event_listener_with_callback("beforeunload", before_unload.as_ref().unchecked_ref());
    before_unload.forget();
    let online = Closure::<dyn Fn()>::new(move || schedule_push(state, 0));
    let _ = window.add_event_listener_with_callback("online", online.as_ref().unchecked_ref());
    online.forget();
}
