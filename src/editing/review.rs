//! Review actions on the open image: submit, approve, reject with pinned issues, replies, resolving and
//! reopening issues, skipping. Each is one transaction (the events with the image's record, its stage
//! moved on), shown only once stored; in a synced batch the events wait, unpushed, for the next push.

use lamina_core::labels::{Instance, LabelStatus};
use lamina_core::review::{self, EventKind, ReviewEvent, Stage, StageView};
use leptos::prelude::*;

use super::push;
use crate::browser::{new_id, now, tabs};
use crate::error::AppError;
use crate::state::AppState;
use crate::store;
use crate::store::review::ReviewRecord;
use crate::store::AssetRecord;

/// Sets the record's stage (and the note on why it needs attention) from its status, labels and events,
/// and its label counts, which the catalog reads instead of every label.
pub fn restage(record: &mut AssetRecord, instances: &[Instance], events: &[ReviewEvent]) {
    record.label_counts = Some(lamina_core::catalog::LabelCounts::of(instances));
    let view = stage_view(record.asset.status, instances, events);
    record.asset.stage = view.stage;
    record.review_note = view.note.map(|n| n.text());
}

fn stage_view(status: LabelStatus, instances: &[Instance], events: &[ReviewEvent]) -> StageView {
    let refs: Vec<&ReviewEvent> = events.iter().collect();
    review::stage_of(status, &review::labels_digest(instances), &refs)
}

/// The open image's stage with its note and heads (tracked, for the panels).
pub fn current_view(state: AppState) -> Option<StageView> {
    let record = state.current_record()?;
    let events = state.review.events.get();
    Some(
        state
            .instances
            .with(|list| stage_view(record.asset.status, list, &events)),
    )
}

/// The name review events are signed with: the user's name, else their name in the synced batch.
pub(crate) fn signer(state: AppState) -> Result<String, AppError> {
    let name = state.author.get_untracked();
    if !name.trim().is_empty() {
        return Ok(name.trim().to_owned());
    }
    state
        .sync
        .link
        .with_untracked(|l| l.as_ref().map(|l| l.labeler.clone()))
        .ok_or_else(|| {
            AppError::invalid(
                "enter your name (top right) first: submissions, review decisions and comments are signed with it",
            )
        })
}

/// Approving and rejecting are for the project's reviewers (anyone, when it names none).
fn check_reviewer(state: AppState, name: &str) -> Result<(), AppError> {
    let reviewers = state.project_now().map(|p| p.reviewers).unwrap_or_default();
    if reviewers.is_empty() || reviewers.iter().any(|r| r == name) {
        Ok(())
    } else {
        Err(AppError::invalid(format!(
            "{name} is not a reviewer of this project (reviewers: {}); the Review panel lists them",
            reviewers.join(", ")
        )))
    }
}

fn open_record(state: AppState) -> Result<AssetRecord, AppError> {
    state
        .current_record_now()
        .ok_or_else(|| AppError::invalid("open an image first"))
}

fn event(record: &AssetRecord, author: &str, kind: EventKind) -> ReviewEvent {
    ReviewEvent {
        id: new_id(),
        asset_id: record.asset.id.clone(),
        author: author.to_owned(),
        at: now(),
        kind,
    }
}

/// Stores `new` events of the open image with its record at `status`, then shows them.
async fn store_review(
    state: AppState,
    mut record: AssetRecord,
    new: Vec<ReviewEvent>,
    status: LabelStatus,
) -> Result<(), AppError> {
    let status_changed = record.asset.status != status;
    record.asset.status = status;
    let mut events = state.review.events.get_untracked();
    events.extend(new.iter().cloned());
    state
        .instances
        .with_untracked(|list| restage(&mut record, list, &events));
    // The labels' status is part of what sync pushes; the events travel on their own.
    let outbox = status_changed
        .then(|| state.sync.outbox_entry(&record))
        .flatten();
    let records: Vec<ReviewRecord> = new
        .into_iter()
        .map(|e| ReviewRecord::new(&record.project_id, e, false))
        .collect();
    store::shared()?
        .record_review(&record, &records, outbox.as_ref())
        .await?;
    state.review.events.set(events);
    tabs::announce_change(&record.project_id);
    state.replace_record(record);
    push::change_queued(state);
    Ok(())
}

/// The labeler hands the open image in for review (first time, or after rework).
pub async fn submit(state: AppState) -> Result<(), AppError> {
    let record = open_record(state)?;
    let author = signer(state)?;
    let view = current_view_now(state, &record);
    match view.stage {
        Stage::InReview if record.asset.status == LabelStatus::Submitted => {
            return Err(AppError::invalid(
                "this image is already waiting for review",
            ))
        }
        Stage::Done => return Err(AppError::invalid("this image is already approved")),
        _ => {}
    }
    let labels = state.instances.with_untracked(|l| review::labels_digest(l));
    let submit = event(
        &record,
        &author,
        EventKind::Submit {
            labels,
            replaces: view.heads,
        },
    );
    store_review(state, record, vec![submit], LabelStatus::Submitted).await
}

/// Hands in an image that may not be open (a pre-label run sending its images straight to review),
/// from what storage holds; the open image's panels follow if it is the one.
pub(crate) async fn submit_stored(
    state: AppState,
    mut record: AssetRecord,
    author: &str,
) -> Result<AssetRecord, AppError> {
    let db = store::shared()?;
    let instances = db.instances(&record.asset.id).await?;
    let mut events = db.review_events(&record.asset.id).await?;
    let view = stage_view(record.asset.status, &instances, &events);
    let submit = event(
        &record,
        author,
        EventKind::Submit {
            labels: review::labels_digest(&instances),
            replaces: view.heads,
        },
    );
    let status_changed = record.asset.status != LabelStatus::Submitted;
    record.asset.status = LabelStatus::Submitted;
    events.push(submit.clone());
    restage(&mut record, &instances, &events);
    let outbox = status_changed
        .then(|| state.sync.outbox_entry(&record))
        .flatten();
    let records = vec![ReviewRecord::new(&record.project_id, submit, false)];
    db.record_review(&record, &records, outbox.as_ref()).await?;
    if state
        .current_record_now()
        .is_some_and(|r| r.asset.id == record.asset.id)
    {
        state.review.events.set(events);
    }
    tabs::announce_change(&record.project_id);
    state.replace_record(record.clone());
    push::change_queued(state);
    Ok(record)
}

fn current_view_now(state: AppState, record: &AssetRecord) -> StageView {
    let events = state.review.events.get_untracked();
    state
        .instances
        .with_untracked(|list| stage_view(record.asset.status, list, &events))
}

/// Approves the labels on screen (edits a reviewer made count: they are what is approved).
pub async fn approve(state: AppState) -> Result<(), AppError> {
    decide(state, true).await
}

/// Sends the image to rework with the issues pinned on it (at least one, new or still open).
pub async fn reject(state: AppState) -> Result<(), AppError> {
    decide(state, false).await
}

async fn decide(state: AppState, approve: bool) -> Result<(), AppError> {
    let record = open_record(state)?;
    let author = signer(state)?;
    check_reviewer(state, &author)?;
    let view = current_view_now(state, &record);
    match view.stage {
        Stage::InReview | Stage::Rework => {}
        Stage::Done if !approve => {}
        Stage::Done => return Err(AppError::invalid("this image is already approved")),
        Stage::ToLabel => {
            return Err(AppError::invalid(
                "this image is not submitted yet: there is nothing to review",
            ))
        }
        Stage::Skipped => return Err(AppError::invalid("this image was skipped")),
    }
    let mut new = draft_events(state, &record, &author);
    let open_issues = state.review.events.with_untracked(|events| {
        let refs: Vec<&ReviewEvent> = events.iter().collect();
        review::issues(&refs).iter().filter(|i| i.open).count()
    });
    if !approve && new.is_empty() && open_issues == 0 {
        return Err(AppError::invalid(
            "pin at least one issue first (press I, then click where it is) so the labeler knows what to fix",
        ));
    }
    let labels = state.instances.with_untracked(|l| review::labels_digest(l));
    let replaces = view.heads;
    new.push(event(
        &record,
        &author,
        if approve {
            EventKind::Approve { labels, replaces }
        } else {
            EventKind::Reject { labels, replaces }
        },
    ));
    store_review(state, record, new, LabelStatus::Submitted).await?;
    state.review.drafts.set(Vec::new());
    state.review.pin_mode.set(false);
    Ok(())
}

/// The pinned drafts as issue events (empty comments are allowed; the category says what is wrong).
fn draft_events(state: AppState, record: &AssetRecord, author: &str) -> Vec<ReviewEvent> {
    state
        .review
        .drafts
        .get_untracked()
        .into_iter()
        .map(|d| ReviewEvent {
            id: d.id,
            at: d.pinned_at,
            ..event(
                record,
                author,
                EventKind::Issue {
                    point_image: d.point_image,
                    instance_id: d.instance_id,
                    category: d.category,
                    comment: d.comment,
                },
            )
        })
        .collect()
}

/// Sends the pinned drafts as issues without deciding (anyone may comment).
pub async fn add_issues(state: AppState) -> Result<(), AppError> {
    let record = open_record(state)?;
    let author = signer(state)?;
    let new = draft_events(state, &record, &author);
    if new.is_empty() {
        return Err(AppError::invalid("no issue is pinned"));
    }
    let status = record.asset.status;
    store_review(state, record, new, status).await?;
    state.review.drafts.set(Vec::new());
    state.review.pin_mode.set(false);
    Ok(())
}

pub async fn reply(state: AppState, issue: String, text: String) -> Result<(), AppError> {
    let text = text.trim().to_owned();
    if text.is_empty() {
        return Err(AppError::invalid("the reply is empty"));
    }
    if text.chars().count() > review::MAX_TEXT_CHARS {
        return Err(AppError::invalid(format!(
            "a reply is at most {} characters",
            review::MAX_TEXT_CHARS
        )));
    }
    answer(state, EventKind::Reply { issue, text }).await
}

/// Marks an issue resolved (`open` false) or reopens it.
pub async fn set_issue_open(state: AppState, issue: String, open: bool) -> Result<(), AppError> {
    answer(
        state,
        if open {
            EventKind::Reopen { issue }
        } else {
            EventKind::Resolve { issue }
        },
    )
    .await
}

async fn answer(state: AppState, kind: EventKind) -> Result<(), AppError> {
    let record = open_record(state)?;
    let author = signer(state)?;
    let status = record.asset.status;
    let e = event(&record, &author, kind);
    store_review(state, record, vec![e], status).await
}

/// Skips the open image (its own stage), or takes it back to labeling.
pub async fn toggle_skip(state: AppState) -> Result<(), AppError> {
    let record = open_record(state)?;
    let status = if record.asset.status == LabelStatus::Skipped {
        LabelStatus::InProgress
    } else {
        LabelStatus::Skipped
    };
    store_review(state, record, Vec::new(), status).await
}
