//! Changing labels and projects: every change is written to storage in one transaction first (with its
//! outbox entry in a synced batch), and only then shown and made undoable. The edits themselves are built
//! from gestures in [`builders`]; a change in a synced batch schedules a push ([`push`]).

pub mod builders;
pub mod prelabel;
pub mod push;
pub mod review;

use lamina_core::edit::{Edit, History};
use lamina_core::labels::{ClassDef, Instance, LabelStatus, Ontology, Prompt, Provenance, Tool};
use lamina_core::mask::Mask;
use leptos::prelude::*;

use crate::browser::{new_id, now, tabs};
use crate::error::AppError;
use crate::state::AppState;
use crate::store;
use crate::store::AssetRecord;

/// Delay between a change and its push, so a burst of edits makes one fragment.
pub(crate) const PUSH_AFTER_EDIT_MS: u32 = 800;

/// A new instance of the current class on the current image, made by `tool` from `mask_image`, with its
/// provenance (prompts in image pixels, the model if one made it). `None`, with the reason shown, when
/// no image is open or no class is picked.
pub fn new_instance(
    state: AppState,
    mask_image: &Mask,
    tool: Tool,
    prompts: Vec<Prompt>,
    model_id: Option<String>,
) -> Option<Instance> {
    let record = state.current_record_now()?;
    let class_id = state.class_id.get_untracked();
    if state.ontology_now().class(&class_id).is_none() {
        state.error("pick a class first (keys 1-9 or the list on the right)");
        return None;
    }
    let author = state.author.get_untracked();
    let t = now();
    let provenance = Provenance {
        tool,
        prompts,
        model_id,
        author: (!author.is_empty()).then_some(author),
        created: t.clone(),
        updated: t,
        score: None,
    };
    Some(lamina_core::edit::instance_from_mask(
        new_id(),
        record.asset.id,
        class_id,
        mask_image,
        provenance,
    ))
}

/// Reads the project list again from storage.
pub async fn reload_projects(state: AppState) -> Result<(), AppError> {
    let projects = store::shared()?.projects().await?;
    state.projects.set(projects);
    Ok(())
}

/// Stores `edit` (with the image's status moved on) and only then shows it. Returns whether it landed;
/// when it did not, the user has been told why.
async fn store_edit(state: AppState, edit: &Edit) -> bool {
    let Some(mut record) = state.current_record_now() else {
        return false;
    };
    let mut after = state.instances.get_untracked();
    edit.apply(&mut after);
    if record.asset.status == LabelStatus::Unlabeled && !after.is_empty() {
        record.asset.status = LabelStatus::InProgress;
    }
    // An edit can change the stage: approved labels that change go back to review.
    state
        .review
        .events
        .with_untracked(|events| review::restage(&mut record, &after, events));
    let outbox = state.sync.outbox_entry(&record);
    let stored = async {
        store::shared()?
            .apply_edit(&record, edit, outbox.as_ref())
            .await
    }
    .await;
    match stored {
        Ok(()) => {
            if state
                .selected
                .get_untracked()
                .is_some_and(|id| !after.iter().any(|i| i.id == id))
            {
                state.selected.set(None);
            }
            state.instances.set(after);
            tabs::announce_change(&record.project_id);
            state.replace_record(record);
            if outbox.is_some() {
                push::change_queued(state);
            }
            true
        }
        Err(e) => {
            state.fail("The change was not saved", &e);
            false
        }
    }
}

/// Shows the current image's labels again from storage (sync replaced them); its undo history goes,
/// since it described labels that are no longer there.
pub async fn reload_current(state: AppState) {
    let Some(record) = state.current_record_now() else {
        return;
    };
    let read = async { store::shared()?.instances(&record.asset.id).await }.await;
    match read {
        Ok(list) => {
            state.histories.update_value(|h| {
                h.remove(&record.asset.id);
            });
            state.history_rev.update(|r| *r += 1);
            state.selected.set(None);
            state.instances.set(list);
        }
        Err(e) => state.fail("The image's labels could not be read", &e),
    }
}

/// A user action: store it, show it, make it undoable.
pub async fn commit(state: AppState, edit: Edit) {
    if edit.is_empty() {
        return;
    }
    let Some(key) = state.asset_key() else { return };
    if store_edit(state, &edit).await {
        state
            .histories
            .update_value(|h| h.entry(key).or_default().record(edit));
        state.history_rev.update(|r| *r += 1);
    }
}

pub async fn undo(state: AppState) {
    step_history(state, History::peek_undo, History::undone).await
}

pub async fn redo(state: AppState) {
    step_history(state, History::peek_redo, History::redone).await
}

/// Stores the edit `peek` offers and, once it landed, moves the history with `moved`: a failed write
/// leaves the history as it was.
async fn step_history(
    state: AppState,
    peek: fn(&History) -> Option<Edit>,
    moved: fn(&mut History),
) {
    let Some(key) = state.asset_key() else { return };
    let Some(edit) = state.histories.with_value(|h| h.get(&key).and_then(peek)) else {
        return;
    };
    if store_edit(state, &edit).await {
        state
            .histories
            .update_value(|h| moved(h.entry(key).or_default()));
        state.history_rev.update(|r| *r += 1);
    }
}

/// Moves these images of the open project to `status`, each in its own transaction (with its sync outbox
/// entry), and shows each once it is stored. Returns how many changed; stops at the first failure,
/// which is returned (the images before it have changed and are shown so).
pub async fn set_statuses(
    state: AppState,
    asset_ids: &[String],
    status: LabelStatus,
) -> Result<usize, AppError> {
    let records: Vec<AssetRecord> = state.assets.with_untracked(|all| {
        all.iter()
            .filter(|r| asset_ids.contains(&r.asset.id) && r.asset.status != status)
            .cloned()
            .collect()
    });
    let mut changed = 0;
    let mut queued = false;
    for mut record in records {
        record.asset.status = status;
        let db = store::shared()?;
        let instances = db.instances(&record.asset.id).await?;
        let events = db.review_events(&record.asset.id).await?;
        review::restage(&mut record, &instances, &events);
        let outbox = state.sync.outbox_entry(&record);
        store::shared()?
            .apply_edit(&record, &Edit::default(), outbox.as_ref())
            .await?;
        queued |= outbox.is_some();
        tabs::announce_change(&record.project_id);
        state.replace_record(record);
        changed += 1;
    }
    if queued {
        push::change_queued(state);
    }
    Ok(changed)
}

pub async fn save_ontology(state: AppState, ontology: Ontology) {
    if let Err(e) = ontology.validate() {
        return state.error(format!("Ontology not saved: {e}"));
    }
    let Some(mut project) = state.project_now() else {
        return state.fail("Ontology not saved", &AppError::NoProject);
    };
    project.ontology = ontology;
    let result = async {
        store::shared()?.put_project(&project).await?;
        reload_projects(state).await
    }
    .await;
    if let Err(e) = result {
        state.fail("Ontology not saved", &e);
    }
}

/// Adds to the current project's ontology every class id in `class_ids` it lacks (labels pulled from a
/// teammate may use classes this device never had), so no label is drawn or exported classless.
pub async fn ensure_classes(state: AppState, class_ids: impl IntoIterator<Item = String>) {
    let Some(mut project) = state.project_now() else {
        return;
    };
    let mut added = Vec::new();
    for id in class_ids {
        if project.ontology.class(&id).is_none() && !added.contains(&id) {
            added.push(id);
        }
    }
    if added.is_empty() {
        return;
    }
    for id in &added {
        project.ontology.classes.push(ClassDef {
            id: id.clone(),
            name: id.clone(),
            color: "#9e9e9e".into(),
        });
    }
    let result = async {
        store::shared()?.put_project(&project).await?;
        reload_projects(state).await
    }
    .await;
    match result {
        Ok(()) => state.info(format!(
            "Pulled labels use class(es) this project lacked; added: {}",
            added.join(", ")
        )),
        Err(e) => state.fail("The pulled labels' classes were not added", &e),
    }
}

pub async fn set_author(state: AppState, author: String) {
    let stored = async { store::shared()?.put_setting("author", &author).await }.await;
    match stored {
        Ok(()) => state.author.set(author),
        Err(e) => state.fail("Your name was not saved", &e),
    }
}
