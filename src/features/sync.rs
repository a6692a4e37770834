//! The pull half of team sync, and the batch as a project: connect to an endpoint and pull a batch
//! (creating or updating its project), adopt others' labels, record and resolve conflicts. The rules are in
//! `lamina-sync`; the push half is `editing::push`.

use lamina_core::labels::{Asset, LabelStatus, Ontology, Project};
use lamina_sync::batch::ImageLocation;
use lamina_sync::driver;
use lamina_sync::fragment::{refile, revision_of, ImageInfo};
use lamina_sync::{layout, Decision, Endpoint, Fragment, LocalAsset};
use leptos::prelude::*;
use std::collections::HashMap;

use crate::browser::transport::Fetch;
use crate::browser::{new_id, now, tabs};
use crate::editing;
use crate::editing::push::{keep_link, push, refresh, schedule_push, settle, sync_error_text};
use crate::editing::review;
use crate::error::AppError;
use crate::features::{navigate, review_pull};
use crate::state::sync::{ConflictView, SyncStatus};
use crate::state::AppState;
use crate::store;
use crate::store::sync::{BatchLink, Conflict, Pushed};
use crate::store::{AssetRecord, OutboxEntry};

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
        state.sync.status.set(SyncStatus::Error(e.to_string()));
        state.fail("Batch not pulled", &e);
    }
}

async fn connect_inner(state: AppState, form: ConnectForm) -> Result<(), AppError> {
    layout::check_id(&form.batch, "batch id")?;
    layout::check_id(&form.labeler, "labeler name")?;
    form.endpoint.check()?;
    state
        .progress
        .set(Some(format!("Pulling batch {}…", form.batch)));
    let manifest = driver::pull_manifest(&Fetch, &form.endpoint, &form.batch).await;
    state.progress.set(None);
    let manifest = manifest?;
    let db = store::shared()?;
    let project_id = project_id_of(&form.batch);
    let existing = db
        .projects()
        .await?
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
        reviewers: existing
            .as_ref()
            .map(|p| p.reviewers.clone())
            .unwrap_or_default(),
    };
    db.put_project(&project).await?;
    let records = db.assets(&project_id).await?;
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
                    stage: Default::default(),
                },
                remote: Some(a.location.clone()),
                review_note: None,
                label_counts: None,
                imported: Some(crate::browser::now()),
            }
        })
        .collect();
    db.put_assets(&new_records).await?;
    let ledger = db
        .sync_batch(&project_id)
        .await?
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
    db.put_sync_batch(&link).await?;
    editing::reload_projects(state).await?;
    // Opening the project loads the link (with the credentials just given) and pulls.
    state.sync.link.set(Some(link));
    navigate::open_project(state, project_id).await;
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
    let stored = async { store::shared()?.sync_batch(&project_id).await }.await;
    let stored = match stored {
        Ok(stored) => stored,
        Err(e) => {
            state.sync.status.set(SyncStatus::Error(format!(
                "this project's sync settings cannot be read on this device: {e}"
            )));
            return;
        }
    };
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

async fn fail_pull(state: AppState, e: AppError) {
    refresh(state).await;
    state.sync.status.set(SyncStatus::Error(format!(
        "pull failed: {}",
        sync_error_text(&e)
    )));
}

async fn pull_inner(state: AppState, mut link: BatchLink) -> Result<Vec<String>, AppError> {
    let db = store::shared()?;
    let outcome =
        driver::pull_fragments(&Fetch, &link.endpoint, &link.batch, &mut link.ledger).await?;
    let mut problems = outcome.problems;
    let outbox = db.outbox(&link.project_id).await?;
    let records = db.sync_records().await?;
    let assets = db.assets(&link.project_id).await?;
    let pulled_review =
        review_pull::merge_pulled(&db, &link.batch, &outcome.fragments, &assets, &mut problems)
            .await?;
    let mut fetched: HashMap<String, Fragment> = outcome.fragments.into_iter().collect();
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
        let instances = db.instances(&local_id).await?;
        let sync = records.get(&local_id).cloned().unwrap_or_default();
        let local = LocalAsset {
            base: sync.base.clone(),
            revision: revision_of(record.asset.status, &refile(&instances, &sync_id)),
            dirty: outbox.iter().any(|o| o.asset_id == local_id),
            sent: sync.sent.clone(),
        };
        match link.ledger.decide(&sync_id, &local) {
            Decision::Adopt(entry) => {
                let fragment = match fetched.get(&entry.fragment_key) {
                    Some(f) => f.clone(),
                    None => {
                        // Read in an earlier pull; it may have been deleted or replaced since. That
                        // skips this image's update, not the whole pull.
                        match driver::fetch_fragment(
                            &Fetch,
                            &link.endpoint,
                            &link.batch,
                            &entry.fragment_key,
                        )
                        .await
                        {
                            Ok(f) => {
                                fetched.insert(entry.fragment_key.clone(), f.clone());
                                f
                            }
                            Err(e) if !e.is_transient() => {
                                problems.push(format!(
                                    "{}'s labels for {} were not taken: {e}",
                                    entry.labeler, record.asset.name
                                ));
                                continue;
                            }
                            Err(e) => return Err(e.into()),
                        }
                    }
                };
                let Some(labels) = fragment.assets.iter().find(|a| a.asset_id == sync_id) else {
                    continue;
                };
                if let Some(wrong) = image_mismatch(record, labels.image.as_ref()) {
                    problems.push(format!(
                        "{}'s labels for {} were not taken: {wrong}",
                        entry.labeler, record.asset.name
                    ));
                    continue;
                }
                let theirs = refile(&labels.instances, &local_id);
                classes.extend(theirs.iter().map(|i| i.class_id.clone()));
                let mut updated = record.clone();
                updated.asset.status = labels.status;
                let events = match pulled_review.events.get(&local_id) {
                    Some(events) => events.clone(),
                    None => db.review_events(&local_id).await?,
                };
                review::restage(&mut updated, &theirs, &events);
                if db.adopt(&updated, &theirs, &labels.revision).await? {
                    updated_records.push(updated);
                    if current_id.as_deref() == Some(local_id.as_str()) {
                        current_changed = true;
                    }
                }
            }
            Decision::Conflict { mine, theirs } => {
                db.set_conflict(&local_id, Some(Conflict { mine, theirs }))
                    .await?;
            }
            decision @ (Decision::UpToDate | Decision::Push) => {
                if sync.conflict.is_some() {
                    db.set_conflict(&local_id, None).await?;
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
    // The review events of the fragments just read are stored before the ledger records those fragments
    // as read: a crash in between reads them again, never loses them.
    let mut restaged = Vec::new();
    for (local_id, events) in &pulled_review.events {
        let adopted = updated_records.iter().any(|r| &r.asset.id == local_id);
        let Some(record) = assets.iter().find(|r| &r.asset.id == local_id) else {
            continue;
        };
        if !adopted {
            // Review moved on without new labels: the stage follows the events.
            let mut record = record.clone();
            let instances = db.instances(local_id).await?;
            review::restage(&mut record, &instances, events);
            restaged.push(record);
        }
    }
    db.adopt_review(&pulled_review.new, &restaged).await?;
    if already_pushed.is_empty() {
        db.put_sync_batch(&link).await?;
    } else {
        // Drops their outbox entries (unless changed meanwhile) and saves the link, in one transaction.
        db.finish_push(&link, &already_pushed).await?;
    }
    let project_id = link.project_id.clone();
    keep_link(state, link);
    if !updated_records.is_empty() || !restaged.is_empty() {
        tabs::announce_change(&project_id);
    }
    state.replace_records(updated_records);
    state.set_stages(&restaged);
    editing::ensure_classes(state, classes).await;
    if let Some(events) = current_id.and_then(|id| pulled_review.events.get(&id)) {
        state.review.events.set(events.clone());
    }
    if current_changed {
        editing::reload_current(state).await;
    }
    Ok(problems)
}

/// Why labels drawn on `drawn_on` cannot go on this device's image: another file (sha256 from the batch
/// manifest or the fetched image) or another size. `None` when they fit (or nothing is known to compare).
fn image_mismatch(record: &AssetRecord, drawn_on: Option<&ImageInfo>) -> Option<String> {
    let image = drawn_on?;
    let ours = &record.asset;
    if !ours.sha256.is_empty() && !ours.sha256.eq_ignore_ascii_case(&image.sha256) {
        return Some(format!(
            "they were drawn on another image (sha256 {}…, this one is {}…)",
            image.sha256.get(..12).unwrap_or(&image.sha256),
            ours.sha256.get(..12).unwrap_or(&ours.sha256)
        ));
    }
    if ours.width > 0 && (ours.width, ours.height) != (image.width, image.height) {
        return Some(format!(
            "they were drawn on a {}x{} image, this one is {}x{}",
            image.width, image.height, ours.width, ours.height
        ));
    }
    None
}

/// The user's answer to a conflict: keep the local labels, or take one of the others' versions.
pub async fn resolve(state: AppState, view: ConflictView, take: Option<String>) {
    if let Err(e) = resolve_inner(state, &view, take).await {
        state.fail(&format!("Conflict on {} not resolved", view.name), &e);
    }
    refresh(state).await;
    schedule_push(state, 0);
}

async fn resolve_inner(
    state: AppState,
    view: &ConflictView,
    take: Option<String>,
) -> Result<(), AppError> {
    let link = state
        .sync
        .link
        .get_untracked()
        .ok_or_else(|| AppError::invalid("this project is not a synced batch"))?;
    let db = store::shared()?;
    let mut record = db
        .assets(&link.project_id)
        .await?
        .into_iter()
        .find(|r| r.asset.id == view.asset_id)
        .ok_or_else(|| AppError::invalid("the image is no longer in the project"))?;
    let instances = db.instances(&record.asset.id).await?;
    let sync = db
        .sync_records()
        .await?
        .remove(&record.asset.id)
        .unwrap_or_default();
    let local = LocalAsset {
        base: sync.base.clone(),
        revision: revision_of(record.asset.status, &refile(&instances, &view.sync_id)),
        dirty: true,
        sent: sync.sent.clone(),
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
                .ok_or_else(|| AppError::invalid("that version is no longer listed"))?;
            let fragment =
                driver::fetch_fragment(&Fetch, &link.endpoint, &link.batch, &entry.fragment_key)
                    .await?;
            let labels = fragment
                .assets
                .into_iter()
                .find(|a| a.asset_id == view.sync_id)
                .ok_or_else(|| AppError::invalid("that version has no labels for this image"))?;
            record.asset.status = labels.status;
            Some(refile(&labels.instances, &record.asset.id))
        }
    };
    let events = db.review_events(&record.asset.id).await?;
    review::restage(
        &mut record,
        replacement.as_deref().unwrap_or(&instances),
        &events,
    );
    let outbox = OutboxEntry {
        asset_id: record.asset.id.clone(),
        project_id: link.project_id.clone(),
        generation: new_id(),
    };
    db.resolve(&record, replacement.as_deref(), parents, &outbox)
        .await?;
    state.replace_records(vec![record.clone()]);
    if state
        .current_record_now()
        .is_some_and(|r| r.asset.id == record.asset.id)
    {
        editing::reload_current(state).await;
    }
    Ok(())
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
