//! An import from another tool (QuPath, Labelbox, CVAT, COCO, Label Studio) waiting for the user's yes:
//! what the files hold, the user's choices, and the plan those choices give.

use lamina_interop::detect::Format;
use lamina_interop::foreign::ForeignLabels;
use lamina_interop::plan::{Existing, ImportPlan};
use leptos::prelude::*;

#[derive(Clone, Debug)]
pub struct PendingImport {
    pub format: Format,
    /// The files it was read from, for the summary's first line.
    pub files: Vec<String>,
    pub labels: ForeignLabels,
}

#[derive(Clone, Copy)]
pub struct InteropState {
    pub pending: RwSignal<Option<PendingImport>>,
    /// The plan for `pending` under the choices below, made again when a choice changes.
    pub plan: RwSignal<Option<ImportPlan>>,
    pub existing: RwSignal<Existing>,
    pub add_classes: RwSignal<bool>,
    /// The class for labels the file leaves without one; `None` skips them.
    pub unclassified: RwSignal<Option<String>>,
}

impl InteropState {
    pub fn new() -> Self {
        InteropState {
            pending: RwSignal::new(None),
            plan: RwSignal::new(None),
            existing: RwSignal::new(Existing::Skip),
            add_classes: RwSignal::new(false),
            unclassified: RwSignal::new(None),
        }
    }
}

impl Default for InteropState {
    fn default() -> Self {
        Self::new()
    }
}
