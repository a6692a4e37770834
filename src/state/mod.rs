//! The app's state as Leptos signals, with read accessors and the notices shown to the user. Nothing here
//! reads or writes storage: the layers above change the state, each after its storage write committed,
//! so the screen never shows what a reload would lose.

pub mod catalog;
pub mod interop;
pub mod model;
pub mod prelabel;
pub mod review;
pub mod runs;
pub mod suggest;
pub mod sync;

use std::collections::HashMap;

use lamina_core::edit::History;
use lamina_core::labels::{Instance, Ontology, Project};
pub use lamina_core::shortcuts::ToolKind;
pub use lamina_core::view::ScreenFromImage;
use leptos::prelude::*;

use crate::error::AppError;
use crate::store::AssetRecord;
use catalog::CatalogState;
use interop::InteropState;
use model::{EmbeddingStatus, ModelStatus};
use prelabel::PrelabelState;
use review::ReviewState;
use runs::RunsState;
use suggest::SuggestState;
use sync::SyncState;

#[derive(Clone, Debug, PartialEq)]
pub enum Notice {
    Info(String),
    Error(String),
}

#[derive(Clone, Copy)]
pub struct AppState {
    pub projects: RwSignal<Vec<Project>>,
    pub project_id: RwSignal<Option<String>>,
    pub assets: RwSignal<Vec<AssetRecord>>,
    pub current: RwSignal<usize>,
    pub instances: RwSignal<Vec<Instance>>,
    pub selected: RwSignal<Option<String>>,
    pub tool: RwSignal<ToolKind>,
    pub class_id: RwSignal<String>,
    pub brush_radius: RwSignal<f64>,
    pub view: RwSignal<ScreenFromImage>,
    pub image_url: RwSignal<Option<String>>,
    pub notice: RwSignal<Option<Notice>>,
    pub progress: RwSignal<Option<String>>,
    pub author: RwSignal<String>,
    /// Vertices of the polygon being drawn, in image pixels.
    pub polygon_image: RwSignal<Vec<[f64; 2]>>,
    pub(crate) histories: StoredValue<HashMap<String, History>>,
    /// Bumped whenever the undo stacks change, so buttons can react.
    pub history_rev: RwSignal<u64>,
    pub model: RwSignal<ModelStatus>,
    /// The current image's embedding.
    pub embedding: RwSignal<EmbeddingStatus>,
    /// Worker handles by `model key/image sha256`.
    pub handles: StoredValue<HashMap<String, u32>>,
    /// Embedding keys being encoded or restored right now.
    pub in_flight: StoredValue<std::collections::HashSet<String>>,
    pub suggest: SuggestState,
    pub sync: SyncState,
    pub runs: RunsState,
    pub review: ReviewState,
    pub interop: InteropState,
    pub prelabel: PrelabelState,
    pub catalog: CatalogState,
}

impl AppState {
    pub fn new() -> Self {
        AppState {
            projects: RwSignal::new(Vec::new()),
            project_id: RwSignal::new(None),
            assets: RwSignal::new(Vec::new()),
            current: RwSignal::new(0),
            instances: RwSignal::new(Vec::new()),
            selected: RwSignal::new(None),
            tool: RwSignal::new(ToolKind::Suggest),
            class_id: RwSignal::new(String::new()),
            brush_radius: RwSignal::new(4.0),
            view: RwSignal::new(ScreenFromImage::IDENTITY),
            image_url: RwSignal::new(None),
            notice: RwSignal::new(None),
            progress: RwSignal::new(None),
            author: RwSignal::new(String::new()),
            polygon_image: RwSignal::new(Vec::new()),
            histories: StoredValue::new(HashMap::new()),
            history_rev: RwSignal::new(0),
            model: RwSignal::new(ModelStatus::None),
            embedding: RwSignal::new(EmbeddingStatus::None),
            handles: StoredValue::new(HashMap::new()),
            in_flight: StoredValue::new(Default::default()),
            suggest: SuggestState::new(),
            sync: SyncState::new(),
            runs: RunsState::new(),
            review: ReviewState::new(),
            interop: InteropState::new(),
            prelabel: PrelabelState::new(),
            catalog: CatalogState::new(),
        }
    }

    pub fn info(&self, text: impl Into<String>) {
        self.notice.set(Some(Notice::Info(text.into())));
    }

    pub fn error(&self, text: impl Into<String>) {
        self.notice.set(Some(Notice::Error(text.into())));
    }

    /// Shows why an action failed, once, after what was being done ("Export failed: …"). A request a
    /// newer one superseded is not a failure and shows nothing.
    pub fn fail(&self, doing: &str, e: &AppError) {
        if !matches!(e, AppError::Cancelled) {
            self.error(format!("{doing}: {e}"));
        }
    }

    pub fn project(&self) -> Option<Project> {
        let id = self.project_id.get()?;
        self.projects
            .with(|ps| ps.iter().find(|p| p.id == id).cloned())
    }

    pub fn ontology(&self) -> Ontology {
        self.project().map(|p| p.ontology).unwrap_or_default()
    }

    /// For actions and event handlers: the same as [`AppState::project`], without subscribing.
    pub fn project_now(&self) -> Option<Project> {
        let id = self.project_id.get_untracked()?;
        self.projects
            .with_untracked(|ps| ps.iter().find(|p| p.id == id).cloned())
    }

    pub fn ontology_now(&self) -> Ontology {
        self.project_now().map(|p| p.ontology).unwrap_or_default()
    }

    pub fn current_record(&self) -> Option<AssetRecord> {
        let i = self.current.get();
        self.assets.with(|a| a.get(i).cloned())
    }

    pub fn current_record_now(&self) -> Option<AssetRecord> {
        let i = self.current.get_untracked();
        self.assets.with_untracked(|a| a.get(i).cloned())
    }

    pub fn set_image_url(&self, url: Option<String>) {
        if let Some(old) = self.image_url.get_untracked() {
            let _ = web_sys::Url::revoke_object_url(&old);
        }
        self.image_url.set(url);
    }

    /// Replaces images' records in the list (after sync changed them in storage), in one update: the
    /// image list re-renders once, not once per image.
    pub fn replace_records(&self, records: Vec<AssetRecord>) {
        if records.is_empty() {
            return;
        }
        let mut by_id: HashMap<String, AssetRecord> = records
            .into_iter()
            .map(|r| (r.asset.id.clone(), r))
            .collect();
        self.assets.update(|list| {
            for r in list.iter_mut() {
                if let Some(new) = by_id.remove(&r.asset.id) {
                    *r = new;
                }
            }
        });
    }

    /// Takes only the stage and its note from `records` (a pull moved them; the rest of each record on
    /// screen stays as it is).
    pub fn set_stages(&self, records: &[AssetRecord]) {
        if records.is_empty() {
            return;
        }
        self.assets.update(|list| {
            for r in list.iter_mut() {
                if let Some(staged) = records.iter().find(|s| s.asset.id == r.asset.id) {
                    r.asset.stage = staged.asset.stage;
                    r.review_note = staged.review_note.clone();
                }
            }
        });
    }

    pub fn replace_record(&self, record: AssetRecord) {
        self.assets.update(|list| {
            if let Some(r) = list.iter_mut().find(|r| r.asset.id == record.asset.id) {
                *r = record;
            }
        });
    }

    pub fn asset_key(&self) -> Option<String> {
        self.current_record_now().map(|r| r.asset.id)
    }

    pub fn can_undo(&self) -> bool {
        self.history_rev.track();
        let key = self.current_record().map(|r| r.asset.id);
        key.is_some_and(|k| {
            self.histories
                .with_value(|h| h.get(&k).is_some_and(History::can_undo))
        })
    }

    pub fn can_redo(&self) -> bool {
        self.history_rev.track();
        let key = self.current_record().map(|r| r.asset.id);
        key.is_some_and(|k| {
            self.histories
                .with_value(|h| h.get(&k).is_some_and(History::can_redo))
        })
    }
}

impl Default for AppState {
    fn default() -> Self {
        Self::new()
    }
}
