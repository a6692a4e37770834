//! The push half of team sync: every change to an image of a synced batch is queued in the outbox in the
//! same transaction as the change; this pushes the queue as one immutable fragment (retries with backoff,
//! a refused credential waits for the user) and keeps the sync line honest about what waits.

use std::collections::HashMap;

use lamina_core::review::ReviewEvent;
use lamina_sync::driver::{self, backoff_ms};
use lamina_sync::fragment::{refile, AssetLabels, ImageInfo};
use lamina_sync::{layout, Fragment};
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::browser::transport::Fetch;
use crate::browser::{now, tabs};
use crate::error::AppError;
use crate::state::sync::{ConflictView, SyncStatus};
use crate::state::AppState;
use crate::store;
use crate::store::review::ReviewRecord;
use crate::store::sync::{BatchLink, Pushed};

/// Shows a local failure of sync on the sync line (it is about this device, not the server).
fn sync_line_error(state: AppState, what: &str, e: &AppError) {
    state
        .sync
        .status
        .set(SyncStatus::Error(format!("{what} on this device: {e}")));
}

/// The sync line's wording of a failed push or pull: a failure of this device's storage says so, so the
/// user does not go looking for a fault on the server.
pub fn sync_error_text(e: &AppError) -> String {
    match e {
        AppError::StorageFull
        | AppError::Storage(_)
        | AppError::Corrupt(_)
        | AppError::StorageOpen(_) => format!("{e} (on this device; the server is not at fault)"),
        other => other.to_string(),
    }
}

/// Recounts the outbox and the conflicts of the current batch. False when either cannot be read (the
/// sync line then says so).
pub async fn refresh(state: AppState) -> bool {
    if !recount_pending(state).await {
        return false;
    }
    let Some(link) = state.sync.link.get_untracked() else {
        return true;
    };
    let records = match async { store::shared()?.sync_records().await }.await {
        Ok(r) => r,
        Err(e) => {
            sync_line_error(state, "the sync records cannot be read", &e);
            return false;
        }
    };
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
    true
}

/// Recounts the outbox; the status follows (pending or synced) unless a sync is running or failed.
/// False when the outbox cannot be read: the sync line then says so, never "synced", since changes may
/// be waiting in it.
async fn recount_pending(state: AppState) -> bool {
    let Some(link) = state.sync.link.get_untracked() else {
        return true;
    };
    let pending = async {
        let db = store::shared()?;
        let images = db.outbox(&link.project_id).await?.len();
        let review = unpushed_review(&db, &link.project_id).await?.len();
        Ok::<_, AppError>(images + review)
    };
    let pending = match pending.await {
        Ok(n) => n,
        Err(e) => {
            sync_line_error(state, "the queue of changes to push cannot be read", &e);
            return false;
        }
    };
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
    true
}

/// After a push or pull went through: recounts first, then shows `synced` (or `N pending`), so the panel
/// never says "synced" next to stale counts or conflicts.
pub async fn settle(state: AppState) {
    if !refresh(state).await {
        return;
    }
    let pending = state.sync.pending.get_untracked();
    state.sync.status.set(if pending > 0 {
        SyncStatus::Pending
    } else {
        SyncStatus::Synced
    });
}

/// A change was just stored with its outbox entry: the sync line says so at once, before the outbox is
/// recounted, so it never shows "synced" next to a change that has not gone up; then the push is queued.
pub fn change_queued(state: AppState) {
    if state.sync.link.with_untracked(Option::is_none) {
        return;
    }
    state.sync.pending.update(|n| *n = (*n).max(1));
    state.sync.status.update(|s| {
        if matches!(s, SyncStatus::Synced) {
            *s = SyncStatus::Pending;
        }
    });
    schedule_push(state, super::PUSH_AFTER_EDIT_MS);
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
    // One tab at a time pushes a project's outbox (it is shared by every tab of this browser).
    let lock = format!("lamina-push-{}", link.project_id);
    let result = tabs::exclusively(&lock, push_inner(state, link)).await;
    state.sync.busy.set_value(false);
    let Some(result) = result else {
        // Another tab is pushing this outbox; look again once it is likely done.
        schedule_push(state, 2000);
        return;
    };
    match result {
        // Nothing was queued, nothing was sent: the status keeps what it said (a failed pull stays an
        // error rather than turning into "synced").
        Ok(0) => {
            refresh(state).await;
        }
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

async fn fail(state: AppState, e: AppError) {
    refresh(state).await;
    if e.is_transient() {
        let attempt = state.sync.attempt.get_value();
        state.sync.attempt.set_value(attempt + 1);
        let wait = backoff_ms(attempt);
        state.sync.status.set(SyncStatus::Error(format!(
            "{}; changes stay queued, retrying in {} s",
            sync_error_text(&e),
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
        state
            .sync
            .status
            .set(SyncStatus::Error(sync_error_text(&e)));
    }
}

/// At most this many images per fragment, so one push stays a reasonable upload.
const MAX_IMAGES_PER_FRAGMENT: usize = 200;
/// And at most this many review events.
const MAX_REVIEW_EVENTS_PER_FRAGMENT: usize = 2000;

/// Review events of the project no push has carried yet, oldest first.
async fn unpushed_review(
    db: &store::Store,
    project_id: &str,
) -> Result<Vec<ReviewRecord>, AppError> {
    let mut list: Vec<ReviewRecord> = db
        .project_review(project_id)
        .await?
        .into_iter()
        .filter(|r| !r.pushed)
        .collect();
    list.sort_by(|a, b| a.event.at.cmp(&b.event.at).then(a.id.cmp(&b.id)));
    Ok(list)
}

async fn push_inner(state: AppState, mut link: BatchLink) -> Result<usize, AppError> {
    let db = store::shared()?;
    let mut queued = db.outbox(&link.project_id).await?;
    let mut review = unpushed_review(&db, &link.project_id).await?;
    if queued.is_empty() && review.is_empty() {
        return Ok(0);
    }
    queued.truncate(MAX_IMAGES_PER_FRAGMENT);
    review.truncate(MAX_REVIEW_EVENTS_PER_FRAGMENT);
    state.sync.status.set(SyncStatus::Syncing(format!(
        "pushing {} image(s), {} review event(s)",
        queued.len(),
        review.len()
    )));
    let records = db.sync_records().await?;
    let assets = db.assets(&link.project_id).await?;
    let mut labels = Vec::new();
    let mut pushed = Vec::new();
    for entry in &queued {
        let Some(record) = assets.iter().find(|r| r.asset.id == entry.asset_id) else {
            continue;
        };
        let sync_id = layout::sync_asset_id(&link.batch, &record.asset.id);
        let instances = db.instances(&record.asset.id).await?;
        let sync = records.get(&record.asset.id).cloned().unwrap_or_default();
        let mut parents = if sync.parents.is_empty() {
            sync.base.into_iter().collect()
        } else {
            sync.parents
        };
        // Uploads of this device whose record was lost: this push replaces them too.
        parents.extend(sync.sent);
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
    // Events travel under the batch's image ids, like labels.
    let events: Vec<ReviewEvent> = review
        .iter()
        .map(|r| ReviewEvent {
            asset_id: layout::sync_asset_id(&link.batch, &r.asset_id).to_owned(),
            ..r.event.clone()
        })
        .collect();
    // A retry of the very same images, changes and events reuses the fragment it built (same time, same
    // bytes, same key), so an upload whose answer was lost is not written a second time under a new key.
    let generations: Vec<String> = pushed
        .iter()
        .map(|p| p.generation.clone())
        .chain(review.iter().map(|r| r.id.clone()))
        .collect();
    let fragment = match state.sync.last_fragment.get_value() {
        Some((g, f)) if g == generations && f.batch == link.batch => f,
        _ => Fragment::new(&link.batch, &link.labeler, &now(), labels)?.with_review(events),
    };
    state
        .sync
        .last_fragment
        .set_value(Some((generations, fragment.clone())));
    db.begin_push(&pushed).await?;
    let outcome =
        driver::push_fragment(&Fetch, &link.endpoint, &fragment, &link.ledger.fragments).await?;
    link.ledger.record(&outcome.key, &fragment);
    db.finish_push(&link, &pushed).await?;
    // Were this lost to a crash, the events would go again in the next fragment: readers merge by id.
    db.mark_review_pushed(&review).await?;
    tabs::announce_change(&link.project_id);
    keep_link(state, link);
    Ok(pushed.len() + review.len())
}

/// Keeps the in-memory link in step with what was stored (same project only).
pub fn keep_link(state: AppState, link: BatchLink) {
    state.sync.link.update(|l| {
        if let Some(current) = l {
            if current.project_id == link.project_id {
                current.ledger = link.ledger;
            }
        }
    });
}
