//! Moving around: opening a project, an image (fetched first when it is a synced batch's image not yet on
//! this device), the next and previous image.

use lamina_core::labels::{Ontology, Project};
use leptos::prelude::*;

use crate::browser::{new_id, now};
use crate::editing;
use crate::error::AppError;
use crate::features::{batch_images, model, review, sync};
use crate::state::catalog::in_label_queue;
use crate::state::AppState;
use crate::store;

pub async fn open_project(state: AppState, id: String) {
    let result = async {
        let store = store::shared()?;
        let mut records = store.assets(&id).await?;
        review::restage_unstaged(&mut records).await?;
        // Remembering the last project is a convenience: failing to write it (a full disk) must not
        // keep the user's project closed.
        if let Err(e) = store.put_setting("last_project", &id).await {
            web_sys::console::warn_1(&format!("last project not remembered: {e}").into());
        }
        Ok::<_, AppError>(records)
    }
    .await;
    match result {
        Ok(records) => {
            state.project_id.set(Some(id.clone()));
            let first_class = state
                .ontology_now()
                .classes
                .first()
                .map(|c| c.id.clone())
                .unwrap_or_default();
            state.class_id.set(first_class);
            state.assets.set(records);
            state.prelabel.checked.set(Default::default());
            super::catalog::on_project_opened(state, &id).await;
            open_asset(state, 0).await;
            super::prelabel::run::load_interrupted(state, &id).await;
            leptos::task::spawn_local(sync::on_project_opened(state, id));
        }
        Err(e) => state.fail("The project could not be opened", &e),
    }
}

pub async fn create_project(state: AppState, name: String) -> Option<String> {
    let project = Project {
        id: new_id(),
        name,
        created: now(),
        ontology: Ontology::pannuke(),
        reviewers: Vec::new(),
    };
    let result = async {
        store::shared()?.put_project(&project).await?;
        editing::reload_projects(state).await
    }
    .await;
    match result {
        Ok(()) => {
            open_project(state, project.id.clone()).await;
            Some(project.id)
        }
        Err(e) => {
            state.fail("The project was not created", &e);
            None
        }
    }
}

/// Shows image `index` of the current project with its labels.
pub async fn open_asset(state: AppState, index: usize) {
    let Some(record) = state.assets.with_untracked(|a| a.get(index).cloned()) else {
        state.instances.set(Vec::new());
        state.set_image_url(None);
        return;
    };
    let result = async {
        let store = store::shared()?;
        let events = store.review_events(&record.asset.id).await?;
        Ok::<_, AppError>((
            store.blob(&record.asset.id).await?,
            store.instances(&record.asset.id).await?,
            events,
        ))
    }
    .await;
    let result = result.map(|(blob, instances, events)| {
        state.review.events.set(events);
        state.review.drafts.set(Vec::new());
        (blob, instances)
    });
    // An image of a synced batch is fetched the first time it is opened.
    let result = match result {
        Ok((None, instances)) if record.remote.is_some() => {
            state
                .progress
                .set(Some(format!("Fetching {}…", record.asset.name)));
            let fetched = batch_images::fetch_image(state, &record).await;
            state.progress.set(None);
            match fetched {
                Ok(updated) => {
                    state.replace_record(updated.clone());
                    match store::shared() {
                        Ok(s) => s.blob(&updated.asset.id).await.map(|b| (b, instances)),
                        Err(e) => Err(e),
                    }
                }
                Err(e) => {
                    state.current.set(index);
                    state.instances.set(instances);
                    state.set_image_url(None);
                    return state.fail(&record.asset.name, &e);
                }
            }
        }
        other => other,
    };
    match result {
        Ok((blob, instances)) => {
            let url = blob.and_then(|b| web_sys::Url::create_object_url_with_blob(&b).ok());
            if url.is_none() {
                state.error(format!(
                    "the image of {} is missing from storage",
                    record.asset.name
                ));
            }
            state.current.set(index);
            state.selected.set(None);
            state.instances.set(instances);
            state.set_image_url(url);
            state.history_rev.update(|r| *r += 1);
            leptos::task::spawn_local(model::ensure_embeddings(state));
        }
        Err(e) => state.fail(&format!("{} could not be opened", record.asset.name), &e),
    }
}

/// Shows the open project again from storage after another tab changed it: the image list, and the open
/// image's labels (its undo history goes only if they changed) and review events.
pub async fn refresh_from_storage(state: AppState) {
    let Some(project_id) = state.project_id.get_untracked() else {
        return;
    };
    let result = async {
        let db = store::shared()?;
        editing::reload_projects(state).await?;
        let records = db.assets(&project_id).await?;
        let current_id = state.current_record_now().map(|r| r.asset.id);
        if let Some(i) = current_id
            .as_ref()
            .and_then(|id| records.iter().position(|r| &r.asset.id == id))
        {
            state.current.set(i);
        }
        state.assets.set(records);
        if let Some(id) = current_id {
            let by_id = |mut list: Vec<lamina_core::labels::Instance>| {
                list.sort_by(|a, b| a.id.cmp(&b.id));
                list
            };
            let stored = by_id(db.instances(&id).await?);
            if stored != by_id(state.instances.get_untracked()) {
                editing::reload_current(state).await;
            }
            state.review.events.set(db.review_events(&id).await?);
        }
        Ok::<_, AppError>(())
    }
    .await;
    if let Err(e) = result {
        state.fail("Another tab's changes could not be shown", &e);
    }
    editing::push::refresh(state).await;
    // The tab that made the change may be closed before its push: this one pushes the shared outbox too,
    // a little later. One tab at a time pushes (a Web Lock), and whichever comes second finds it empty.
    if state.sync.pending.get_untracked() > 0 {
        editing::push::schedule_push(state, OTHER_TAB_PUSH_MS);
    }
}

/// How long a tab leaves another tab's change to that tab's own push before pushing it itself.
const OTHER_TAB_PUSH_MS: u32 = 3 * editing::PUSH_AFTER_EDIT_MS;

/// The next (`delta` 1) or previous (-1) image of the queue being worked through (every image when no
/// stage is picked); stays put at either end.
pub async fn go(state: AppState, delta: i64) {
    if let Some(next) = queue_neighbour(state, delta) {
        open_asset(state, next).await;
    }
}

/// The index of the image `delta` steps away from the current one within the queue, if there is one.
pub fn queue_neighbour(state: AppState, delta: i64) -> Option<usize> {
    let queue = state.review.queue.get_untracked();
    let slice = state.catalog.queue.get_untracked();
    let current = state.current.get_untracked() as i64;
    let in_queue: Vec<i64> = state.assets.with_untracked(|all| {
        all.iter()
            .enumerate()
            .filter(|(_, r)| in_label_queue(r, queue, slice.as_ref()))
            .map(|(i, _)| i as i64)
            .collect()
    });
    let next = if delta > 0 {
        in_queue.iter().find(|&&i| i > current)
    } else {
        in_queue.iter().rev().find(|&&i| i < current)
    };
    next.map(|&i| i as usize)
}
