//! The review signals: the current image's review events, the stage queue being worked through, and
//! the issues a reviewer is pinning before rejecting.

use lamina_core::review::{IssueCategory, ReviewEvent, Stage};
use leptos::prelude::*;

/// An issue pinned on the image but not sent yet (it goes with "Reject", or "Add issues").
#[derive(Clone, Debug, PartialEq)]
pub struct DraftIssue {
    pub id: String,
    /// When it was pinned: issues are numbered in pinning order.
    pub pinned_at: String,
    pub point_image: [f64; 2],
    pub instance_id: Option<String>,
    pub category: IssueCategory,
    pub comment: String,
}

#[derive(Clone, Copy)]
pub struct ReviewState {
    /// Every review event of the open image, oldest first.
    pub events: RwSignal<Vec<ReviewEvent>>,
    /// The stage whose images the list shows and next/previous walk through; `None`: every image.
    pub queue: RwSignal<Option<Stage>>,
    /// A click on the image pins an issue instead of using the tool.
    pub pin_mode: RwSignal<bool>,
    pub drafts: RwSignal<Vec<DraftIssue>>,
    /// Exports hold only the images at this stage ("Done only"); `None`: every image.
    pub export_stage: RwSignal<Option<Stage>>,
}

impl ReviewState {
    pub fn new() -> Self {
        ReviewState {
            events: RwSignal::new(Vec::new()),
            queue: RwSignal::new(None),
            pin_mode: RwSignal::new(false),
            drafts: RwSignal::new(Vec::new()),
            export_stage: RwSignal::new(None),
        }
    }
}

impl Default for ReviewState {
    fn default() -> Self {
        Self::new()
    }
}
