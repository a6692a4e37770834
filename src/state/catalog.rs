//! The catalog page's signals: the filters, the saved selections, the grid's cursor and scroll, the
//! thumbnails shown, find-similar's ranking, and the selection opened as a labeling queue.

use std::collections::{HashMap, HashSet};

use lamina_core::catalog::{LabelCounts, Query, Row, Slice};
use lamina_core::review::Stage;
use leptos::prelude::*;

use crate::store::AssetRecord;

/// A saved selection opened as the labeling queue: the image list and next/previous keep to it.
#[derive(Clone, Debug, PartialEq)]
pub struct SliceQueue {
    pub name: String,
    pub ids: HashSet<String>,
}

/// Find-similar's answer: every other image's similarity to the anchors; the grid is sorted by it.
#[derive(Clone, Debug, PartialEq)]
pub struct Similar {
    pub anchors: Vec<String>,
    pub scores: HashMap<String, f32>,
}

/// A thumbnail as the grid shows it.
#[derive(Clone, Debug, PartialEq)]
pub enum Thumb {
    /// An object URL of the JPEG made in the worker.
    Ready(String),
    /// The image is not on this device yet (a URL manifest or a synced batch, fetched when opened).
    NotFetched,
    /// The worker could not make one (the reason, as a tooltip).
    Failed(String),
}

#[derive(Clone, Copy)]
pub struct CatalogState {
    pub query: RwSignal<Query>,
    /// The field the grid is sorted by (`None`: import order) and whether it goes high to low.
    pub sort: RwSignal<(Option<String>, bool)>,
    pub slices: RwSignal<Vec<Slice>>,
    /// The slice whose filters are shown, if the filters came from one and were not changed since.
    pub active_slice: RwSignal<Option<String>>,
    /// The metadata field the first chart counts (the first text column when `None`).
    pub chart_field: RwSignal<Option<String>>,
    /// Index of the focused cell among the listed images.
    pub cursor: RwSignal<usize>,
    /// The grid box's scroll position and size, in screen px.
    pub scroll_top: RwSignal<f64>,
    pub viewport: RwSignal<(f64, f64)>,
    pub thumbs: RwSignal<HashMap<String, Thumb>>,
    /// Thumbnails asked for and not made yet, newest request first.
    pub wanted: StoredValue<Vec<String>>,
    pub thumbs_running: StoredValue<bool>,
    pub similar: RwSignal<Option<Similar>>,
    /// How many of the most similar images a saved selection keeps.
    pub similar_keep: RwSignal<usize>,
    pub queue: RwSignal<Option<SliceQueue>>,
}

impl CatalogState {
    pub fn new() -> Self {
        CatalogState {
            query: RwSignal::new(Query::default()),
            sort: RwSignal::new((None, false)),
            slices: RwSignal::new(Vec::new()),
            active_slice: RwSignal::new(None),
            chart_field: RwSignal::new(None),
            cursor: RwSignal::new(0),
            scroll_top: RwSignal::new(0.0),
            viewport: RwSignal::new((800.0, 600.0)),
            thumbs: RwSignal::new(HashMap::new()),
            wanted: StoredValue::new(Vec::new()),
            thumbs_running: StoredValue::new(false),
            similar: RwSignal::new(None),
            similar_keep: RwSignal::new(12),
            queue: RwSignal::new(None),
        }
    }
}

impl Default for CatalogState {
    fn default() -> Self {
        Self::new()
    }
}

/// What the catalog page's parts read, derived from the state while the page is open: every image's
/// row, the rows listed (filtered, in order) and the fields with whether each holds numbers.
#[derive(Clone, Copy)]
pub struct CatalogData {
    pub rows: Memo<Vec<Row>>,
    pub listed: Memo<Vec<usize>>,
    pub all_fields: Memo<Vec<(String, bool)>>,
}

/// The catalog's row of an image, from its record (label counts kept on it; none yet means none).
pub fn row_of_record(record: &AssetRecord) -> Row {
    let none = LabelCounts::default();
    lamina_core::catalog::row_of_record(
        &record.asset,
        record.label_counts.as_ref().unwrap_or(&none),
        record.imported.as_deref(),
    )
}

/// Whether the labeling list shows an image: in the stage queue picked (if any) and in the selection
/// opened as a queue (if any).
pub fn in_label_queue(
    record: &AssetRecord,
    stage: Option<Stage>,
    slice: Option<&SliceQueue>,
) -> bool {
    stage.is_none_or(|s| record.asset.stage == s)
        && slice.is_none_or(|q| q.ids.contains(&record.asset.id))
}
