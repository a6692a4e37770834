//! Segment suggestions in the labeling view: hover preview, clicks and a box turned into a working mask by
//! the worker, then accepted as an instance. The prompt bookkeeping is `lamina_core::suggest`; this is the
//! glue that sends requests, drops stale answers and measures what the user waits for.
//!
//! Staleness: every change to the session bumps `rev`; an answer computed for an older `rev` (or another
//! image) is dropped. Hover keeps at most one request in flight and remembers only the newest pointer
//! position meanwhile, so a fast mouse costs one decode per answer, never a queue.

use lamina_core::edit::add_suggestion;
use lamina_core::mask::Mask;
use lamina_core::rle::Rle;
use lamina_core::suggest::{SegmentRequest, SuggestSession};
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::browser::now_ms;
use crate::editing::{commit, new_instance};
use crate::error::AppError;
use crate::state::model::{EmbeddingStatus, ModelStatus};
use crate::state::suggest::Suggestion;
use crate::state::AppState;
use crate::worker_client;

/// The embedding handle of the current image, or why suggestions are not available yet.
/// (Not an error: the tool shows it as information, since it passes once the model or image is ready.)
fn ready_handle(state: &AppState) -> Result<u32, AppError> {
    let asset = state.current_record_now().map(|r| r.asset.id);
    match state.model.get_untracked() {
        ModelStatus::Ready(_) => {}
        ModelStatus::Failed(e) => {
            return Err(AppError::invalid(format!(
                "no segment model ({e}); the manual tools keep working"
            )))
        }
        ModelStatus::None | ModelStatus::Loading(_) => {
            return Err(AppError::invalid("the segment model is still loading"))
        }
    }
    match state.embedding.get_untracked() {
        EmbeddingStatus::Ready {
            asset_id, handle, ..
        } if Some(&asset_id) == asset.as_ref() => Ok(handle),
        EmbeddingStatus::Failed(e) => Err(AppError::invalid(format!(
            "this image could not be encoded: {e}"
        ))),
        _ => Err(AppError::invalid(
            "the image is still being encoded for suggestions",
        )),
    }
}

/// Forgets the session and the preview (Esc, another image, another tool).
pub fn cancel(state: AppState) {
    let s = state.suggest;
    s.bump();
    s.session.set(SuggestSession::default());
    s.working.set(None);
    s.preview.set(None);
    s.hover_last_pixel.set_value(None);
}

/// Decodes `request` and hands the mask to `show` if nothing changed meanwhile.
async fn decode(
    state: AppState,
    handle: u32,
    request: SegmentRequest,
    rev: u64,
    event_ms: f64,
    show: impl FnOnce(Suggestion),
) {
    let asset = state.current_record_now().map(|r| r.asset.id);
    let sent_ms = now_ms();
    let result = worker_client::segment(handle, &request).await;
    let received_ms = now_ms();
    let stale = state.suggest.rev.get_value() != rev
        || state.current_record_now().map(|r| r.asset.id) != asset;
    match result {
        Err(e) => {
            if !stale {
                state.fail("Suggestion failed", &e);
            }
        }
        Ok(_) if stale => {}
        Ok(seg) => match Rle::decompress(&seg.rle) {
            Ok(object) => {
                let Some(size) = state
                    .current_record_now()
                    .map(|r| (r.asset.width, r.asset.height))
                else {
                    return;
                };
                let [x, y, ..] = seg.bbox;
                state.suggest.drawn_for.set_value(Some(event_ms));
                state.suggest.timing.update(|t| {
                    t.decode_ms = seg.decode_ms;
                    t.queued_ms = sent_ms - event_ms;
                    t.round_trip_ms = received_ms - sent_ms;
                });
                show(Suggestion {
                    mask_image: Mask::placed(size.0, size.1, &object.to_mask(), x, y),
                    iou: f64::from(seg.iou),
                });
            }
            Err(e) => state.error(format!("the worker sent a damaged mask: {e}")),
        },
    }
}

/// Hover preview at `p_image`; `event_ms` is the pointer event's time stamp.
pub fn hover(state: AppState, p_image: [f64; 2], event_ms: f64) {
    let s = state.suggest;
    if s.is_editing() {
        return;
    }
    let pixel = (p_image[0].floor() as i64, p_image[1].floor() as i64);
    if s.hover_last_pixel.get_value() == Some(pixel) {
        return;
    }
    let inside = state.current_record_now().is_some_and(|r| {
        pixel.0 >= 0
            && pixel.1 >= 0
            && pixel.0 < i64::from(r.asset.width)
            && pixel.1 < i64::from(r.asset.height)
    });
    if !inside {
        s.preview.set(None);
        return;
    }
    let Ok(handle) = ready_handle(&state) else {
        return;
    };
    s.hover_last_pixel.set_value(Some(pixel));
    if s.hover_busy.get_value() {
        s.hover_next.set_value(Some((p_image, event_ms)));
        return;
    }
    s.hover_busy.set_value(true);
    let rev = s.rev.get_value();
    spawn_local(async move {
        let request = SuggestSession::hover_request(p_image[0], p_image[1]);
        decode(state, handle, request, rev, event_ms, |m| {
            if !s.is_editing() {
                s.preview.set(Some(m));
            }
        })
        .await;
        s.hover_busy.set_value(false);
        if let Some((p, t)) = s.hover_next.try_update_value(Option::take).flatten() {
            s.hover_last_pixel.set_value(None);
            hover(state, p, t);
        }
    });
}

/// Clears the hover preview (the pointer left the image).
pub fn leave(state: AppState) {
    state.suggest.preview.set(None);
    state.suggest.hover_last_pixel.set_value(None);
    state.suggest.hover_next.set_value(None);
}

/// Decodes the session's prompts into the working mask.
fn run_session(state: AppState, handle: u32, event_ms: f64, accept_after: bool) {
    let s = state.suggest;
    let rev = s.bump();
    s.preview.set(None);
    let request = s.session.with_untracked(SuggestSession::request);
    spawn_local(async move {
        let mut got = false;
        decode(state, handle, request, rev, event_ms, |m| {
            s.working.set(Some(m));
            got = true;
        })
        .await;
        if got && accept_after {
            accept(state);
        }
    });
}

/// A click: positive, or negative with Alt or the right button.
pub fn click(state: AppState, p_image: [f64; 2], positive: bool, event_ms: f64) {
    let handle = match ready_handle(&state) {
        Ok(h) => h,
        Err(e) => return state.info(e.to_string()),
    };
    let first = !state.suggest.is_editing();
    state
        .suggest
        .session
        .update(|s| s.add_point(p_image[0], p_image[1], positive));
    let quick = first && positive && state.suggest.quick_commit.get_untracked();
    run_session(state, handle, event_ms, quick);
}

/// A box dragged from `a_image` to `b_image`.
pub fn drag_box(state: AppState, a_image: [f64; 2], b_image: [f64; 2], event_ms: f64) {
    let handle = match ready_handle(&state) {
        Ok(h) => h,
        Err(e) => return state.info(e.to_string()),
    };
    state
        .suggest
        .session
        .update(|s| s.set_box(a_image, b_image));
    run_session(state, handle, event_ms, false);
}

/// Undo (Ctrl+Z or the button): the last prompt while a suggestion is open, else the last label edit.
pub fn undo(state: AppState, event_ms: f64) {
    let s = state.suggest;
    if !s.is_editing() {
        return spawn_local(crate::editing::undo(state));
    }
    s.session.update(|session| {
        session.undo();
    });
    match ready_handle(&state) {
        Ok(handle) if s.is_editing() => run_session(state, handle, event_ms, false),
        _ => cancel(state),
    }
}

/// Enter: the working mask becomes an instance of the current class, with its prompts and model.
pub fn accept(state: AppState) {
    let s = state.suggest;
    let Some(working) = s.working.get_untracked() else {
        return;
    };
    if working.mask_image.is_empty() {
        return state
            .info("the suggestion is empty: click inside the object, or drag a box around it");
    }
    let session = s.session.get_untracked();
    let model_id = match state.model.get_untracked() {
        ModelStatus::Ready(m) => Some(m.id),
        _ => None,
    };
    let Some(inst) = new_instance(
        state,
        &working.mask_image,
        session.tool(),
        session.prompts(),
        model_id,
    ) else {
        return;
    };
    let id = inst.id.clone();
    cancel(state);
    match add_suggestion(&state.instances.get_untracked(), inst) {
        Ok(Some(edit)) => spawn_local(async move {
            commit(state, edit).await;
            state.selected.set(Some(id));
        }),
        Ok(None) => state.info("that suggestion lies entirely on existing labels; nothing added"),
        Err(e) => state.error(format!("a stored mask is damaged: {e}")),
    }
}
