//! The app's state as Leptos signals, and the actions that change it. Every action that changes labels goes
//! through the store first and touches the signals only once the transaction committed, so the screen never
//! shows what a reload would lose.

use std::cell::OnceCell;
use std::collections::HashMap;
use std::rc::Rc;

use lamina_core::edit::{Edit, History};
use lamina_core::model::{Instance, LabelStatus, Ontology, Project};
use leptos::prelude::*;

use crate::store::{AssetRecord, Store, StoreError, DB_NAME};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToolKind {
    /// Segment suggestions from the model: hover, click, box.
    Suggest,
    Select,
    Brush,
    Eraser,
    Polygon,
    Box,
    Pan,
}

impl ToolKind {
    pub const ALL: [ToolKind; 7] = [
        ToolKind::Suggest,
        ToolKind::Select,
        ToolKind::Brush,
        ToolKind::Eraser,
        ToolKind::Polygon,
        ToolKind::Box,
        ToolKind::Pan,
    ];

    pub fn key(self) -> &'static str {
        match self {
            ToolKind::Suggest => "s",
            ToolKind::Select => "v",
            ToolKind::Brush => "b",
            ToolKind::Eraser => "e",
            ToolKind::Polygon => "p",
            ToolKind::Box => "r",
            ToolKind::Pan => "h",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            ToolKind::Suggest => "Suggest",
            ToolKind::Select => "Select",
            ToolKind::Brush => "Brush",
            ToolKind::Eraser => "Eraser",
            ToolKind::Polygon => "Polygon",
            ToolKind::Box => "Box",
            ToolKind::Pan => "Pan",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Notice {
    Info(String),
    Error(String),
}

/// screen = image * scale + (tx, ty), in CSS pixels relative to the viewport's top-left corner.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScreenFromImage {
    pub scale: f64,
    pub tx: f64,
    pub ty: f64,
}

impl ScreenFromImage {
    pub fn image_from_screen(&self, x_screen: f64, y_screen: f64) -> [f64; 2] {
        [
            (x_screen - self.tx) / self.scale,
            (y_screen - self.ty) / self.scale,
        ]
    }
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
    histories: StoredValue<HashMap<String, History>>,
    /// Bumped whenever the undo stacks change, so buttons can react.
    pub history_rev: RwSignal<u64>,
    pub model: RwSignal<crate::model::ModelStatus>,
    /// The current image's embedding.
    pub embedding: RwSignal<crate::model::EmbeddingStatus>,
    /// Worker handles by `model key/image sha256`.
    pub handles: StoredValue<HashMap<String, u32>>,
    /// Embedding keys being encoded or restored right now.
    pub in_flight: StoredValue<std::collections::HashSet<String>>,
    pub suggest: crate::suggest::SuggestState,
    pub sync: crate::sync::SyncState,
}

thread_local! {
    static STORE: OnceCell<Rc<Store>> = const { OnceCell::new() };
}

pub fn store() -> Result<Rc<Store>, StoreError> {
    STORE
        .with(|s| s.get().cloned())
        .ok_or_else(|| StoreError::Idb("storage is not open yet".into()))
}

pub fn now() -> String {
    String::from(js_sys::Date::new_0().to_iso_string())
}

pub fn new_id() -> String {
    web_sys::window()
        .and_then(|w| w.crypto().ok())
        .map(|c| c.random_uuid())
        .unwrap_or_else(|| format!("{:x}", (js_sys::Math::random() * 1e16) as u64))
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
            view: RwSignal::new(ScreenFromImage {
                scale: 1.0,
                tx: 0.0,
                ty: 0.0,
            }),
            image_url: RwSignal::new(None),
            notice: RwSignal::new(None),
            progress: RwSignal::new(None),
            author: RwSignal::new(String::new()),
            polygon_image: RwSignal::new(Vec::new()),
            histories: StoredValue::new(HashMap::new()),
            history_rev: RwSignal::new(0),
            model: RwSignal::new(crate::model::ModelStatus::None),
            embedding: RwSignal::new(crate::model::EmbeddingStatus::None),
            handles: StoredValue::new(HashMap::new()),
            in_flight: StoredValue::new(Default::default()),
            suggest: crate::suggest::SuggestState::new(),
            sync: crate::sync::SyncState::new(),
        }
    }

    pub fn info(&self, text: impl Into<String>) {
        self.notice.set(Some(Notice::Info(text.into())));
    }

    pub fn error(&self, text: impl Into<String>) {
        self.notice.set(Some(Notice::Error(text.into())));
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

    /// A new instance of the current class on the current image, made by `tool` from `mask_image`, with its
    /// provenance (prompts in image pixels, the model if one made it). `None`, with the reason shown, when
    /// no image is open or no class is picked.
    pub fn new_instance(
        &self,
        mask_image: &lamina_core::mask::Mask,
        tool: lamina_core::model::Tool,
        prompts: Vec<lamina_core::model::Prompt>,
        model_id: Option<String>,
    ) -> Option<Instance> {
        let record = self.current_record_now()?;
        let class_id = self.class_id.get_untracked();
        if self.ontology_now().class(&class_id).is_none() {
            self.error("pick a class first (keys 1-9 or the list on the right)");
            return None;
        }
        let author = self.author.get_untracked();
        let t = now();
        let provenance = lamina_core::model::Provenance {
            tool,
            prompts,
            model_id,
            author: (!author.is_empty()).then_some(author),
            created: t.clone(),
            updated: t,
        };
        Some(lamina_core::edit::instance_from_mask(
            new_id(),
            record.asset.id,
            class_id,
            mask_image,
            provenance,
        ))
    }

    pub fn current_record_now(&self) -> Option<AssetRecord> {
        let i = self.current.get_untracked();
        self.assets.with_untracked(|a| a.get(i).cloned())
    }

    /// Opens the store, asks for persistent storage, and shows the last project (the demo on first open).
    pub async fn boot(self) {
        let store = match Store::open(DB_NAME).await {
            Ok(s) => Rc::new(s),
            Err(e) => return self.error(format!("Lamina cannot open its storage: {e}")),
        };
        STORE.with(|s| {
            let _ = s.set(store.clone());
        });
        if !Store::request_persistence().await {
            web_sys::console::info_1(
                &"persistent storage not granted; the browser may evict data under pressure".into(),
            );
        }
        if let Ok(Some(author)) = store.setting("author").await {
            self.author.set(author);
        }
        crate::worker_client::on_progress(move |stage, done| {
            self.progress
                .set((!done).then(|| format!("Model: {stage}…")));
        });
        leptos::task::spawn_local(crate::model::load_initial(self));
        crate::sync::install_page_hooks(self);
        let projects = match store.projects().await {
            Ok(p) => p,
            Err(e) => return self.error(e.to_string()),
        };
        if projects.is_empty() {
            crate::import::import_demo(self).await;
            return;
        }
        let last = store.setting("last_project").await.ok().flatten();
        let pick = last
            .filter(|id| projects.iter().any(|p| &p.id == id))
            .or_else(|| projects.last().map(|p| p.id.clone()));
        self.projects.set(projects);
        if let Some(id) = pick {
            self.open_project(id).await;
        }
    }

    pub async fn reload_projects(self) -> Result<(), StoreError> {
        let projects = store()?.projects().await?;
        self.projects.set(projects);
        Ok(())
    }

    pub async fn open_project(self, id: String) {
        let result = async {
            let store = store()?;
            let records = store.assets(&id).await?;
            // Remembering the last project is a convenience: failing to write it (a full disk) must not
            // keep the user's project closed.
            if let Err(e) = store.put_setting("last_project", &id).await {
                web_sys::console::warn_1(&format!("last project not remembered: {e}").into());
            }
            Ok::<_, StoreError>(records)
        }
        .await;
        match result {
            Ok(records) => {
                self.project_id.set(Some(id.clone()));
                let first_class = self
                    .ontology_now()
                    .classes
                    .first()
                    .map(|c| c.id.clone())
                    .unwrap_or_default();
                self.class_id.set(first_class);
                self.assets.set(records);
                self.open_asset(0).await;
                leptos::task::spawn_local(crate::sync::on_project_opened(self, id));
            }
            Err(e) => self.error(e.to_string()),
        }
    }

    pub async fn create_project(self, name: String) -> Option<String> {
        let project = Project {
            id: new_id(),
            name,
            created: now(),
            ontology: Ontology::pannuke(),
        };
        let result = async {
            store()?.put_project(&project).await?;
            self.reload_projects().await
        }
        .await;
        match result {
            Ok(()) => {
                self.open_project(project.id.clone()).await;
                Some(project.id)
            }
            Err(e) => {
                self.error(e.to_string());
                None
            }
        }
    }

    /// Shows image `index` of the current project with its labels.
    pub async fn open_asset(self, index: usize) {
        let Some(record) = self.assets.with_untracked(|a| a.get(index).cloned()) else {
            self.instances.set(Vec::new());
            self.set_image_url(None);
            return;
        };
        let result = async {
            let store = store()?;
            Ok::<_, StoreError>((
                store.blob(&record.asset.id).await?,
                store.instances(&record.asset.id).await?,
            ))
        }
        .await;
        // An image of a synced batch is fetched the first time it is opened.
        let result = match result {
            Ok((None, instances)) if record.remote.is_some() => {
                self.progress
                    .set(Some(format!("Fetching {}…", record.asset.name)));
                let fetched = crate::sync::fetch_image(self, &record).await;
                self.progress.set(None);
                match fetched {
                    Ok(updated) => {
                        self.replace_record(updated.clone());
                        match store() {
                            Ok(s) => s.blob(&updated.asset.id).await.map(|b| (b, instances)),
                            Err(e) => Err(e),
                        }
                    }
                    Err(e) => {
                        self.current.set(index);
                        self.instances.set(instances);
                        self.set_image_url(None);
                        return self.error(format!("{}: {e}", record.asset.name));
                    }
                }
            }
            other => other,
        };
        match result {
            Ok((blob, instances)) => {
                let url = blob.and_then(|b| web_sys::Url::create_object_url_with_blob(&b).ok());
                if url.is_none() {
                    self.error(format!(
                        "the image of {} is missing from storage",
                        record.asset.name
                    ));
                }
                self.current.set(index);
                self.selected.set(None);
                self.instances.set(instances);
                self.set_image_url(url);
                self.history_rev.update(|r| *r += 1);
                leptos::task::spawn_local(crate::model::ensure_embeddings(self));
            }
            Err(e) => self.error(e.to_string()),
        }
    }

    fn set_image_url(&self, url: Option<String>) {
        if let Some(old) = self.image_url.get_untracked() {
            let _ = web_sys::Url::revoke_object_url(&old);
        }
        self.image_url.set(url);
    }

    /// Stores `edit` (with the image's status moved on) and only then shows it. Returns whether it landed.
    async fn store_edit(self, edit: &Edit) -> bool {
        let Some(mut record) = self.current_record_now() else {
            return false;
        };
        let mut after = self.instances.get_untracked();
        edit.apply(&mut after);
        if record.asset.status == LabelStatus::Unlabeled && !after.is_empty() {
            record.asset.status = LabelStatus::InProgress;
        }
        let outbox = self.sync.outbox_entry(&record);
        let stored = match store() {
            Ok(s) => s.apply_edit(&record, edit, outbox.as_ref()).await,
            Err(e) => Err(e),
        };
        match stored {
            Ok(()) => {
                if self
                    .selected
                    .get_untracked()
                    .is_some_and(|id| !after.iter().any(|i| i.id == id))
                {
                    self.selected.set(None);
                }
                self.instances.set(after);
                self.replace_record(record);
                if outbox.is_some() {
                    crate::sync::schedule_push(self, 800);
                }
                true
            }
            Err(e) => {
                self.error(e.to_string());
                false
            }
        }
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

    /// Shows the current image's labels again from storage (sync replaced them); its undo history goes,
    /// since it described labels that are no longer there.
    pub async fn reload_current(self) {
        let Some(record) = self.current_record_now() else {
            return;
        };
        match store() {
            Ok(s) => match s.instances(&record.asset.id).await {
                Ok(list) => {
                    self.histories.update_value(|h| {
                        h.remove(&record.asset.id);
                    });
                    self.history_rev.update(|r| *r += 1);
                    self.selected.set(None);
                    self.instances.set(list);
                }
                Err(e) => self.error(e.to_string()),
            },
            Err(e) => self.error(e.to_string()),
        }
    }

    fn replace_record(&self, record: AssetRecord) {
        self.assets.update(|list| {
            if let Some(r) = list.iter_mut().find(|r| r.asset.id == record.asset.id) {
                *r = record;
            }
        });
    }

    fn asset_key(&self) -> Option<String> {
        self.current_record_now().map(|r| r.asset.id)
    }

    /// A user action: store it, show it, make it undoable.
    pub async fn commit(self, edit: Edit) {
        if edit.is_empty() {
            return;
        }
        let Some(key) = self.asset_key() else { return };
        if self.store_edit(&edit).await {
            self.histories
                .update_value(|h| h.entry(key).or_default().record(edit));
            self.history_rev.update(|r| *r += 1);
        }
    }

    pub async fn undo(self) {
        self.step_history(History::peek_undo, History::undone).await
    }

    pub async fn redo(self) {
        self.step_history(History::peek_redo, History::redone).await
    }

    /// Stores the edit `peek` offers and, once it landed, moves the history with `moved`: a failed write
    /// leaves the history as it was.
    async fn step_history(self, peek: fn(&History) -> Option<Edit>, moved: fn(&mut History)) {
        let Some(key) = self.asset_key() else { return };
        let Some(edit) = self.histories.with_value(|h| h.get(&key).and_then(peek)) else {
            return;
        };
        if self.store_edit(&edit).await {
            self.histories
                .update_value(|h| moved(h.entry(key).or_default()));
            self.history_rev.update(|r| *r += 1);
        }
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

    pub async fn set_status(self, status: LabelStatus) {
        let Some(mut record) = self.current_record_now() else {
            return;
        };
        record.asset.status = status;
        let outbox = self.sync.outbox_entry(&record);
        let stored = match store() {
            Ok(s) => {
                s.apply_edit(&record, &Edit::default(), outbox.as_ref())
                    .await
            }
            Err(e) => Err(e),
        };
        match stored {
            Ok(()) => {
                self.replace_record(record);
                if outbox.is_some() {
                    crate::sync::schedule_push(self, 800);
                }
            }
            Err(e) => self.error(e.to_string()),
        }
    }

    pub async fn go(self, delta: i64) {
        let n = self.assets.with_untracked(Vec::len) as i64;
        if n == 0 {
            return;
        }
        let next = (self.current.get_untracked() as i64 + delta).clamp(0, n - 1) as usize;
        if next != self.current.get_untracked() {
            self.open_asset(next).await;
        }
    }

    pub async fn save_ontology(self, ontology: Ontology) {
        if let Err(e) = ontology.validate() {
            return self.error(format!("ontology not saved: {e}"));
        }
        let Some(mut project) = self.project_now() else {
            return;
        };
        project.ontology = ontology;
        let result = async {
            store()?.put_project(&project).await?;
            self.reload_projects().await
        }
        .await;
        if let Err(e) = result {
            self.error(e.to_string());
        }
    }

    /// Adds to the current project's ontology every class id in `class_ids` it lacks (labels pulled from a
    /// teammate may use classes this device never had), so no label is drawn or exported classless.
    pub async fn ensure_classes(self, class_ids: impl IntoIterator<Item = String>) {
        let Some(mut project) = self.project_now() else {
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
            project.ontology.classes.push(lamina_core::model::ClassDef {
                id: id.clone(),
                name: id.clone(),
                color: "#9e9e9e".into(),
            });
        }
        let result = async {
            store()?.put_project(&project).await?;
            self.reload_projects().await
        }
        .await;
        match result {
            Ok(()) => self.info(format!(
                "Pulled labels use class(es) this project lacked; added: {}",
                added.join(", ")
            )),
            Err(e) => self.error(e.to_string()),
        }
    }

    pub async fn set_author(self, author: String) {
        match store() {
            Ok(s) => match s.put_setting("author", &author).await {
                Ok(()) => self.author.set(author),
                Err(e) => self.error(e.to_string()),
            },
            Err(e) => self.error(e.to_string()),
        }
    }
}

impl Default for AppState {
    fn default() -> Self {
        Self::new()
    }
}
