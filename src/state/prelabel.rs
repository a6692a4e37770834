//! Pre-labeling as the UI shows it: the run form (settings, class mapping, target stage), the images
//! checked in the list, the preview, and the run in progress.

use std::collections::BTreeSet;

use lamina_core::prelabel::{ClassMapping, PrelabelJob, PrelabelSettings};
use lamina_core::review::Stage;
use lamina_core::worker_protocol::FoundInstance;
use leptos::prelude::*;

/// Which images a run covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The images the list shows (every image, or the stage queue picked above it).
    Listed,
    /// The images checked in the list.
    Checked,
}

/// One image of a preview: what the model found, shown and not saved.
#[derive(Clone, Debug, PartialEq)]
pub struct PreviewImage {
    pub asset_id: String,
    pub name: String,
    /// An object URL of the image's blob (revoked when the preview closes).
    pub url: String,
    pub width: u32,
    pub height: u32,
    pub found: Vec<FoundInstance>,
    pub ms: f64,
}

/// A user's YOLO-seg file chosen for pre-labeling (instead of the loaded segment model). Its bytes are
/// in the model cache under `sha256`, so a resumed run finds them.
#[derive(Clone, Debug, PartialEq)]
pub struct YoloChoice {
    pub file_name: String,
    pub sha256: String,
    pub classes: Vec<String>,
    pub input: u32,
}

/// A run going on in this tab.
#[derive(Clone, Debug, PartialEq)]
pub struct RunView {
    pub job: PrelabelJob,
    pub workers: usize,
    /// Images per second since the run (or its resumption) started.
    pub rate: Option<f64>,
}

#[derive(Clone, Copy)]
pub struct PrelabelState {
    pub open: RwSignal<bool>,
    /// `None`: the loaded segment model in automatic mode.
    pub yolo: RwSignal<Option<YoloChoice>>,
    pub settings: RwSignal<Option<PrelabelSettings>>,
    pub mapping: RwSignal<ClassMapping>,
    pub scope: RwSignal<Scope>,
    pub to_stage: RwSignal<Stage>,
    /// Worker count the user asked for; `None`: sized from the machine.
    pub workers: RwSignal<Option<usize>>,
    /// Image ids checked in the list.
    pub checked: RwSignal<BTreeSet<String>>,
    pub preview: RwSignal<Vec<PreviewImage>>,
    pub previewing: RwSignal<bool>,
    pub running: RwSignal<Option<RunView>>,
    /// A run of this project stopped before its end (reload, crash, cancel): it can be resumed.
    pub interrupted: RwSignal<Option<PrelabelJob>>,
    /// Set by Cancel; the run stops its workers at once.
    pub cancel: StoredValue<bool>,
}

impl PrelabelState {
    pub fn new() -> Self {
        PrelabelState {
            open: RwSignal::new(false),
            yolo: RwSignal::new(None),
            settings: RwSignal::new(None),
            mapping: RwSignal::new(ClassMapping::new()),
            scope: RwSignal::new(Scope::Listed),
            to_stage: RwSignal::new(Stage::ToLabel),
            workers: RwSignal::new(None),
            checked: RwSignal::new(BTreeSet::new()),
            preview: RwSignal::new(Vec::new()),
            previewing: RwSignal::new(false),
            running: RwSignal::new(None),
            interrupted: RwSignal::new(None),
            cancel: StoredValue::new(false),
        }
    }
}

impl Default for PrelabelState {
    fn default() -> Self {
        Self::new()
    }
}
