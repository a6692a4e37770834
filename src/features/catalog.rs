//! The catalog page's actions: loading a project's saved selections, thumbnails made in the worker as
//! cells scroll into view (kept in IndexedDB), find-similar over colour embeddings computed in the
//! background with progress, and handing a selection on (a labeling queue, pre-labeling, review).

use std::collections::{BTreeSet, HashMap, HashSet};

use lamina_core::catalog::{Query, Row, Slice};
use lamina_core::labels::LabelStatus;
use lamina_core::similar::rank;
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::browser::new_id;
use crate::editing;
use crate::error::AppError;
use crate::features::navigate;
use crate::state::catalog::{row_of_record, Similar, SliceQueue, Thumb};
use crate::state::runs::Page;
use crate::state::AppState;
use crate::store;
use crate::store::catalog::ThumbRecord;
use crate::worker_client;

/// Every image of the project as a catalog row, in import order (tracked).
pub fn rows(state: AppState) -> Vec<Row> {
    state
        .assets
        .with(|all| all.iter().map(row_of_record).collect())
}

/// How the grid orders what it lists: a field (`None`: import order), high to low or not.
pub type SortOrder = (Option<String>, bool);

/// The indices (into `rows`) the grid lists: the rows the filters keep, in the order picked; most
/// similar first while a find-similar ranking is shown (its anchors ahead of everything).
pub fn listed(
    rows: &[Row],
    query: &Query,
    sort: &SortOrder,
    similar: Option<&Similar>,
) -> Vec<usize> {
    let mut picked = query.select(rows);
    if let (Some(field), descending) = sort {
        let field = (field != SORT_BY_NAME).then_some(field.as_str());
        lamina_core::catalog::sort_rows(rows, &mut picked, field, *descending);
    }
    if let Some(s) = similar {
        let score = |i: &usize| {
            let id = &rows[*i].asset_id;
            if s.anchors.contains(id) {
                f32::INFINITY
            } else {
                s.scores.get(id).copied().unwrap_or(f32::NEG_INFINITY)
            }
        };
        picked.sort_by(|a, b| score(b).total_cmp(&score(a)).then(a.cmp(b)));
    }
    picked
}

/// The sort field that means the image's name.
pub const SORT_BY_NAME: &str = "(name)";

/// A project was opened: its saved selections, and a clean page (thumbnails of the last project freed).
pub async fn on_project_opened(state: AppState, project_id: &str) {
    let ui = state.catalog;
    ui.thumbs.update(|thumbs| {
        for thumb in thumbs.values() {
            if let Thumb::Ready(url) = thumb {
                let _ = web_sys::Url::revoke_object_url(url);
            }
        }
        thumbs.clear();
    });
    ui.wanted.set_value(Vec::new());
    ui.query.set(Query::default());
    ui.active_slice.set(None);
    ui.similar.set(None);
    ui.queue.set(None);
    ui.cursor.set(0);
    let slices = async { store::shared()?.slices(project_id).await }.await;
    match slices {
        Ok(slices) => ui.slices.set(slices),
        Err(e) => {
            ui.slices.set(Vec::new());
            state.fail("The saved selections were not loaded", &e);
        }
    }
}

/// Asks for the thumbnails of these images (the cells in view); they are made one at a time in the
/// worker, the latest asked first, and shown as each is ready.
pub fn want_thumbs(state: AppState, ids: Vec<String>) {
    let ui = state.catalog;
    let missing: Vec<String> = ui
        .thumbs
        .with_untracked(|t| ids.into_iter().filter(|id| !t.contains_key(id)).collect());
    if missing.is_empty() {
        return;
    }
    // The cells in view now replace whatever was asked for before (scrolled past).
    ui.wanted.set_value(missing);
    if ui.thumbs_running.get_value() {
        return;
    }
    ui.thumbs_running.set_value(true);
    spawn_local(async move {
        loop {
            let next = ui.wanted.try_update_value(|w| w.pop()).flatten();
            let Some(id) = next else { break };
            if ui.thumbs.with_untracked(|t| t.contains_key(&id)) {
                continue;
            }
            let thumb = match thumb_of(state, &id).await {
                Ok(t) => t,
                Err(e) => Thumb::Failed(e.to_string()),
            };
            ui.thumbs.update(|t| {
                t.insert(id, thumb);
            });
        }
        ui.thumbs_running.set_value(false);
    });
}

/// The image's thumbnail: from storage, else made in the worker from the stored image and kept. An
/// image of a synced batch not fetched yet is fetched now (it scrolled into view), as opening it would.
async fn thumb_of(state: AppState, asset_id: &str) -> Result<Thumb, AppError> {
    let db = store::shared()?;
    // The image's own project: another may be open by the time the worker answers.
    let Some(project_id) = state.assets.with_untracked(|all| {
        all.iter()
            .find(|r| r.asset.id == asset_id)
            .map(|r| r.project_id.clone())
    }) else {
        return Ok(Thumb::NotFetched);
    };
    let blob = match db.thumb(asset_id).await? {
        Some(blob) => blob,
        None => match make_thumb(asset_id, &project_id).await? {
            Some((blob, _)) => blob,
            None => {
                let remote = state.assets.with_untracked(|all| {
                    all.iter()
                        .find(|r| r.asset.id == asset_id && r.remote.is_some())
                        .cloned()
                });
                let Some(record) = remote else {
                    return Ok(Thumb::NotFetched);
                };
                let fetched = super::batch_images::fetch_image(state, &record).await?;
                state.replace_record(fetched);
                match make_thumb(asset_id, &project_id).await? {
                    Some((blob, _)) => blob,
                    None => return Ok(Thumb::NotFetched),
                }
            }
        },
    };
    let url = web_sys::Url::create_object_url_with_blob(&blob)
        .map_err(|e| AppError::browser("show the thumbnail", crate::browser::js_text(e)))?;
    Ok(Thumb::Ready(url))
}

/// Makes and stores an image's thumbnail and embedding; `None` when the image is not on this device.
async fn make_thumb(
    asset_id: &str,
    project_id: &str,
) -> Result<Option<(web_sys::Blob, Vec<f32>)>, AppError> {
    let db = store::shared()?;
    let Some(image) = db.blob(asset_id).await? else {
        return Ok(None);
    };
    let bytes = crate::browser::files::array_buffer(&image, "the image").await?;
    let (thumb, made) = worker_client::thumbnail(bytes).await?;
    let record = ThumbRecord {
        asset_id: asset_id.to_owned(),
        project_id: project_id.to_owned(),
        embedding: made.embedding,
    };
    db.put_thumb(&record, &thumb).await?;
    Ok(Some((thumb, record.embedding)))
}

/// Ranks every image by similarity to the anchors (the checked images, else the one under the cursor).
/// Embeddings not made yet are made first, with progress in the status bar; images not on this device
/// are left out and counted.
pub async fn find_similar(state: AppState, anchors: Vec<String>) {
    if anchors.is_empty() {
        state.info("Check one or more images (Space) to find images like them");
        return;
    }
    match similar_to(state, &anchors).await {
        Ok((similar, skipped)) => {
            state.catalog.similar.set(Some(similar));
            state.catalog.cursor.set(0);
            state.catalog.scroll_top.set(0.0);
            if skipped > 0 {
                state.info(format!(
                    "{skipped} image(s) are not on this device yet and were not ranked"
                ));
            }
        }
        Err(e) => state.fail("Find similar failed", &e),
    }
    state.progress.set(None);
}

async fn similar_to(state: AppState, anchors: &[String]) -> Result<(Similar, usize), AppError> {
    let project_id = state
        .project_id
        .get_untracked()
        .ok_or(AppError::NoProject)?;
    let db = store::shared()?;
    let mut embeddings: HashMap<String, Vec<f32>> = db
        .embeddings(&project_id)
        .await?
        .into_iter()
        .map(|r| (r.asset_id, r.embedding))
        .collect();
    let ids: Vec<String> = state
        .assets
        .with_untracked(|all| all.iter().map(|r| r.asset.id.clone()).collect());
    let missing: Vec<&String> = ids
        .iter()
        .filter(|id| !embeddings.contains_key(*id))
        .collect();
    let mut skipped = 0;
    for (n, id) in missing.iter().enumerate() {
        state.progress.set(Some(format!(
            "Image embeddings for find similar: {}/{}",
            n + 1,
            missing.len()
        )));
        match make_thumb(id, &project_id).await? {
            Some((_, embedding)) => {
                embeddings.insert((*id).clone(), embedding);
            }
            None => skipped += 1,
        }
    }
    let (ids, vectors): (Vec<String>, Vec<Vec<f32>>) = embeddings.into_iter().unzip();
    let anchor_vectors: Vec<&[f32]> = anchors
        .iter()
        .filter_map(|a| ids.iter().position(|id| id == a))
        .map(|i| vectors[i].as_slice())
        .collect();
    if anchor_vectors.is_empty() {
        return Err(AppError::invalid(
            "the images picked are not on this device yet: open them once, then try again",
        ));
    }
    let scores = rank(&anchor_vectors, &vectors)
        .into_iter()
        .map(|(i, score)| (ids[i].clone(), score))
        .collect();
    Ok((
        Similar {
            anchors: anchors.to_vec(),
            scores,
        },
        skipped,
    ))
}

/// Saves the filters shown as a named selection; while a find-similar ranking is shown, `ranked` holds
/// the grid's first images (its anchors and the most similar ones), which are pinned into it instead.
pub async fn save_slice(state: AppState, name: String, ranked: Vec<String>) {
    let ui = state.catalog;
    let Some(project_id) = state.project_id.get_untracked() else {
        return;
    };
    let pinned: BTreeSet<String> = ranked.into_iter().collect();
    let query = if pinned.is_empty() {
        ui.query.get_untracked()
    } else {
        // The ranking is what was saved; the filters only narrowed it.
        Query::default()
    };
    let slice = Slice {
        id: new_id(),
        project_id: project_id.clone(),
        name: name.trim().to_owned(),
        query,
        pinned,
    };
    let mut slices = ui.slices.get_untracked();
    slices.push(slice.clone());
    match store_slices(&project_id, &slices).await {
        Ok(()) => {
            ui.slices.set(slices);
            ui.active_slice.set(Some(slice.id));
            state.info(format!("Selection \"{}\" saved", slice.name));
        }
        Err(e) => state.fail("The selection was not saved", &e),
    }
}

async fn store_slices(project_id: &str, slices: &[Slice]) -> Result<(), AppError> {
    store::shared()?.put_slices(project_id, slices).await
}

pub async fn delete_slice(state: AppState, slice_id: String) {
    let ui = state.catalog;
    let Some(project_id) = state.project_id.get_untracked() else {
        return;
    };
    let mut slices = ui.slices.get_untracked();
    slices.retain(|s| s.id != slice_id);
    match store_slices(&project_id, &slices).await {
        Ok(()) => {
            ui.slices.set(slices);
            if ui.active_slice.get_untracked() == Some(slice_id) {
                ui.active_slice.set(None);
            }
        }
        Err(e) => state.fail("The selection was not deleted", &e),
    }
}

/// Shows a saved selection's filters (its pinned images, if it has them, as a ranking-free list).
pub fn show_slice(state: AppState, slice: &Slice) {
    let ui = state.catalog;
    ui.similar.set(None);
    ui.query.set(slice.query.clone());
    ui.active_slice.set(Some(slice.id.clone()));
    ui.cursor.set(0);
    ui.scroll_top.set(0.0);
}

/// The images of a selection now (it is evaluated again on every change of the project).
pub fn slice_ids(rows: &[Row], slice: &Slice) -> Vec<String> {
    slice
        .select(rows)
        .into_iter()
        .map(|i| rows[i].asset_id.clone())
        .collect()
}

/// Opens a selection as the labeling queue: the image list and next/previous keep to its images.
pub async fn open_as_queue(state: AppState, name: String, ids: Vec<String>) {
    if ids.is_empty() {
        state.info(format!("\"{name}\" holds no image now"));
        return;
    }
    let ids: HashSet<String> = ids.into_iter().collect();
    let first = state
        .assets
        .with_untracked(|all| all.iter().position(|r| ids.contains(&r.asset.id)));
    state.review.queue.set(None);
    state.catalog.queue.set(Some(SliceQueue { name, ids }));
    state.runs.page.set(Page::Label);
    if let Some(i) = first {
        navigate::open_asset(state, i).await;
    }
}

/// Hands images to the pre-label form: they become the checked images it runs over.
pub fn to_prelabel(state: AppState, ids: Vec<String>) {
    state.prelabel.checked.set(ids.into_iter().collect());
    state
        .prelabel
        .scope
        .set(crate::state::prelabel::Scope::Checked);
    crate::features::prelabel::open(state);
}

/// Sends the labeled images among these to review (a signed submit each); unlabeled ones stay and are
/// counted in the notice.
pub async fn to_review(state: AppState, ids: Vec<String>) {
    let author = match editing::review::signer(state) {
        Ok(a) => a,
        Err(e) => return state.fail("Nothing was sent to review", &e),
    };
    let records: Vec<_> = state.assets.with_untracked(|all| {
        all.iter()
            .filter(|r| ids.contains(&r.asset.id))
            .cloned()
            .collect()
    });
    let (mut sent, mut unlabeled) = (0, 0);
    for record in records {
        if record.asset.status == LabelStatus::Unlabeled {
            unlabeled += 1;
            continue;
        }
        if record.asset.status == LabelStatus::Submitted {
            continue;
        }
        if let Err(e) = editing::review::submit_stored(state, record, &author).await {
            return state.fail(
                &format!("Sending to review stopped after {sent} image(s)"),
                &e,
            );
        }
        sent += 1;
    }
    state.info(format!(
        "{sent} image(s) sent to review{}",
        if unlabeled > 0 {
            format!("; {unlabeled} unlabeled image(s) stay to label")
        } else {
            String::new()
        }
    ));
}
