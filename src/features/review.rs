//! Review mode: work through a stage's queue (review: the images waiting for it), approve or reject and
//! go on to the next image; the reviewer list of the project.

use lamina_core::labels::LabelStatus;
use lamina_core::review::Stage;
use leptos::prelude::*;

use crate::editing;
use crate::editing::review as actions;
use crate::error::AppError;
use crate::features::navigate;
use crate::state::catalog::in_label_queue;
use crate::state::AppState;
use crate::store;
use crate::store::AssetRecord;

/// Images stored before review existed (schema 4) carry no stage, so a submitted one would show as "To
/// label"; images labeled before the catalog kept label counts have none. Both are derived once, when
/// their project opens, and stored.
pub async fn restage_unstaged(records: &mut [AssetRecord]) -> Result<(), AppError> {
    let db = store::shared()?;
    for r in records.iter_mut().filter(|r| {
        (r.asset.status == LabelStatus::Submitted && r.asset.stage == Stage::ToLabel)
            || (r.label_counts.is_none() && r.asset.status != LabelStatus::Unlabeled)
    }) {
        let instances = db.instances(&r.asset.id).await?;
        let events = db.review_events(&r.asset.id).await?;
        actions::restage(r, &instances, &events);
        db.put_asset(r).await?;
    }
    Ok(())
}

/// Shows only the images at `stage` (every image with `None`) and opens the first of them, unless the
/// open image is already in it.
pub async fn open_queue(state: AppState, stage: Option<Stage>) {
    state.review.queue.set(stage);
    let Some(stage) = stage else { return };
    if state
        .current_record_now()
        .is_some_and(|r| r.asset.stage == stage)
    {
        return;
    }
    let first = state
        .assets
        .with_untracked(|all| all.iter().position(|r| r.asset.stage == stage));
    match first {
        Some(i) => navigate::open_asset(state, i).await,
        None => state.info(format!("No image is at stage {}", stage.label())),
    }
}

/// `Start review`: the queue of images waiting for review, from its first image.
pub async fn start_review(state: AppState) {
    open_queue(state, Some(Stage::InReview)).await;
}

/// Approve (`approve` true) or reject the open image, then bring up the next image of the queue.
pub async fn decide(state: AppState, approve: bool) {
    let result = if approve {
        actions::approve(state).await
    } else {
        actions::reject(state).await
    };
    let verb = if approve { "approved" } else { "rejected" };
    if let Err(e) = result {
        return state.fail(&format!("The image was not {verb}"), &e);
    }
    let name = state
        .current_record_now()
        .map(|r| r.asset.name)
        .unwrap_or_default();
    next_after_decision(state).await;
    state.info(format!("{name} {verb}"));
}

/// In a queue, the next image of it (the decided one has left it); the one after, otherwise.
async fn next_after_decision(state: AppState) {
    let queue = state.review.queue.get_untracked();
    let slice = state.catalog.queue.get_untracked();
    let current = state.current.get_untracked();
    let next = state.assets.with_untracked(|all| {
        let fits = |r: &crate::store::AssetRecord| in_label_queue(r, queue, slice.as_ref());
        all.iter()
            .enumerate()
            .skip(current + 1)
            .chain(all.iter().enumerate().take(current))
            .find(|(_, r)| fits(r))
            .map(|(i, _)| i)
    });
    match next {
        Some(i) if i != current => navigate::open_asset(state, i).await,
        _ => {
            if let Some(stage) = queue {
                state.info(format!("No more images at stage {}", stage.label()));
            }
        }
    }
}

/// Runs one review action and shows its failure, once.
pub async fn act(
    state: AppState,
    doing: &str,
    action: impl std::future::Future<Output = Result<(), AppError>>,
) {
    if let Err(e) = action.await {
        state.fail(doing, &e);
    }
}

/// Sets the project's reviewers from a comma-separated list of names.
pub async fn set_reviewers(state: AppState, list: String) {
    let Some(mut project) = state.project_now() else {
        return state.fail("Reviewers not saved", &AppError::NoProject);
    };
    project.reviewers = list
        .split(',')
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .collect();
    let result = async {
        store::shared()?.put_project(&project).await?;
        editing::reload_projects(state).await
    }
    .await;
    if let Err(e) = result {
        state.fail("Reviewers not saved", &e);
    }
}
