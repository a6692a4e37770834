//! Pre-labels into storage: one image's found instances stored as pending pre-labels (in one
//! transaction with the image's status and outbox entry), and the labeler's accept and delete.

use lamina_core::labels::{Instance, InstanceStatus, LabelStatus, Provenance, Tool};
use lamina_core::prelabel::{self, PrelabelJob};
use lamina_core::review::Stage;
use lamina_core::worker_protocol::FoundInstance;
use leptos::prelude::*;

use super::{commit, push, review};
use crate::browser::{new_id, now, tabs};
use crate::error::AppError;
use crate::state::AppState;
use crate::store;

/// What became of one image of a run.
pub enum Stored {
    /// This many pre-labels are on the image now.
    Labels(usize),
    /// Left alone, and why (e.g. it is already in review).
    Skipped(String),
}

/// The stages a run may put pre-labels into: an image in review or done has a person's verdict on its
/// labels, which new ones would undo.
fn open_for_prelabels(stage: Stage) -> bool {
    matches!(stage, Stage::ToLabel | Stage::Rework)
}

/// Stores what the model found on one image as pending pre-labels, each of the project class its model
/// class maps to (`targets`, by model class index; ignored classes are left out), replacing the
/// image's earlier pending ones and leaving every label a person made as it is; then moves the image
/// to the job's stage. `signer` signs the submit when that stage is review.
pub async fn store_found(
    state: AppState,
    job: &PrelabelJob,
    targets: &[Option<String>],
    asset_id: &str,
    found: Vec<FoundInstance>,
    signer: Option<&str>,
) -> Result<Stored, AppError> {
    let Some(mut record) = state
        .assets
        .with_untracked(|all| all.iter().find(|r| r.asset.id == asset_id).cloned())
    else {
        return Ok(Stored::Skipped("no longer in the project".into()));
    };
    if !open_for_prelabels(record.asset.stage) {
        return Ok(Stored::Skipped(format!(
            "it is at stage {}",
            record.asset.stage.label()
        )));
    }
    let (width, height) = (record.asset.width, record.asset.height);
    let t = now();
    let mut instances = Vec::with_capacity(found.len());
    for f in found {
        let Some(Some(class_id)) = targets.get(f.class as usize) else {
            continue;
        };
        if f.rle.size != [height, width] {
            return Err(AppError::Worker(format!(
                "the model answered a {}x{} mask for a {width}x{height} image",
                f.rle.size[1], f.rle.size[0]
            )));
        }
        instances.push(Instance {
            id: new_id(),
            asset_id: asset_id.to_owned(),
            class_id: class_id.clone(),
            mask: f.rle,
            bbox: f.bbox,
            area: f.area,
            provenance: Provenance {
                tool: Tool::PreLabel,
                prompts: Vec::new(),
                model_id: Some(job.model_id.clone()),
                author: None,
                created: t.clone(),
                updated: t.clone(),
                score: Some(f.score),
            },
            status: InstanceStatus::Draft,
        });
    }
    let db = store::shared()?;
    let existing = db.instances(asset_id).await?;
    let edit = prelabel::prelabel_edit(&existing, instances, job.settings.min_area)
        .map_err(|e| AppError::Corrupt(format!("a label of {}: {e}", record.asset.name)))?;
    let mut after = existing;
    edit.apply(&mut after);
    if record.asset.status == LabelStatus::Unlabeled && !after.is_empty() {
        record.asset.status = LabelStatus::InProgress;
    }
    let events = db.review_events(asset_id).await?;
    review::restage(&mut record, &after, &events);
    let outbox = state.sync.outbox_entry(&record);
    db.apply_edit(&record, &edit, outbox.as_ref()).await?;
    let pending = prelabel::pending_count(&after);
    let is_open = state
        .current_record_now()
        .is_some_and(|r| r.asset.id == asset_id);
    if is_open {
        // The undo history described labels that are no longer all there.
        state.histories.update_value(|h| {
            h.remove(asset_id);
        });
        state.history_rev.update(|r| *r += 1);
        state.instances.set(after);
    }
    tabs::announce_change(&record.project_id);
    state.replace_record(record.clone());
    if outbox.is_some() {
        push::change_queued(state);
    }
    if job.to_stage == Stage::InReview && record.asset.stage == Stage::ToLabel {
        let signer = signer.ok_or_else(|| AppError::invalid("no name to sign the submit with"))?;
        review::submit_stored(state, record, signer).await?;
    }
    Ok(Stored::Labels(pending))
}

fn author(state: AppState) -> Option<String> {
    let a = state.author.get_untracked();
    (!a.trim().is_empty()).then(|| a.trim().to_owned())
}

/// Accepts every pending pre-label of the open image (one undoable edit).
pub async fn accept_all(state: AppState) {
    let edit = state
        .instances
        .with_untracked(|l| prelabel::accept_all(l, author(state).as_deref(), &now()));
    commit(state, edit).await;
}

/// Deletes every pending pre-label of the open image (one undoable edit); labels a person made stay.
pub async fn delete_all(state: AppState) {
    let edit = state.instances.with_untracked(|l| prelabel::delete_all(l));
    commit(state, edit).await;
}

/// Accepts the selected instance, if it is a pending pre-label.
pub async fn accept_selected(state: AppState) {
    let Some(id) = state.selected.get_untracked() else {
        return state.info("select a pre-label first (click it with the select tool)");
    };
    let Some(instance) = state
        .instances
        .with_untracked(|l| l.iter().find(|i| i.id == id).cloned())
    else {
        return;
    };
    if !prelabel::is_pending(&instance) {
        return state.info("the selected label is not a pending pre-label");
    }
    let accepted = prelabel::accepted(&instance, author(state).as_deref(), &now());
    commit(
        state,
        lamina_core::edit::Edit {
            removed: vec![instance],
            added: vec![accepted],
        },
    )
    .await;
}
