//! The suggestion tool's signals: the session of prompts, the masks shown, and what the user waited.

use lamina_core::mask::Mask;
use lamina_core::suggest::SuggestSession;
use leptos::prelude::*;

/// The mask shown for the current prompts (or under the cursor).
#[derive(Clone, Debug, PartialEq)]
pub struct Suggestion {
    pub mask_image: Mask,
    /// The model's predicted IoU.
    pub iou: f64,
}

/// Latency as the user sees it: pointer event to mask drawn. `seq` counts answers shown.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SuggestTiming {
    pub seq: u64,
    pub last_ms: f64,
    /// `performance.now()` when the last mask was drawn.
    pub drawn_at_ms: f64,
    pub decode_ms: f64,
    /// Where the last suggestion's time went, for the latency bench: pointer event → request posted to
    /// the worker, and request posted → reply read (the worker's decode and both messages).
    pub queued_ms: f64,
    pub round_trip_ms: f64,
}

#[derive(Clone, Copy)]
pub struct SuggestState {
    pub session: RwSignal<SuggestSession>,
    /// The working mask of the session.
    pub working: RwSignal<Option<Suggestion>>,
    /// The hover preview (only while the session is empty).
    pub preview: RwSignal<Option<Suggestion>>,
    /// A click accepts its mask at once.
    pub quick_commit: RwSignal<bool>,
    pub timing: RwSignal<SuggestTiming>,
    /// Set by the labeler once the mask is on the canvas, with the pointer event's time stamp.
    pub drawn_for: StoredValue<Option<f64>>,
    pub(crate) rev: StoredValue<u64>,
    pub(crate) hover_busy: StoredValue<bool>,
    pub(crate) hover_next: StoredValue<Option<([f64; 2], f64)>>,
    pub(crate) hover_last_pixel: StoredValue<Option<(i64, i64)>>,
}

impl SuggestState {
    pub fn new() -> Self {
        SuggestState {
            session: RwSignal::new(SuggestSession::default()),
            working: RwSignal::new(None),
            preview: RwSignal::new(None),
            quick_commit: RwSignal::new(false),
            timing: RwSignal::new(SuggestTiming::default()),
            drawn_for: StoredValue::new(None),
            rev: StoredValue::new(0),
            hover_busy: StoredValue::new(false),
            hover_next: StoredValue::new(None),
            hover_last_pixel: StoredValue::new(None),
        }
    }

    /// Marks every answer in flight as stale; returns the new revision.
    pub fn bump(&self) -> u64 {
        self.rev.update_value(|r| *r += 1);
        self.rev.get_value()
    }

    pub fn is_editing(&self) -> bool {
        !self.session.with_untracked(SuggestSession::is_empty)
    }
}

impl Default for SuggestState {
    fn default() -> Self {
        Self::new()
    }
}
