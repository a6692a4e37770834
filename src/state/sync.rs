//! The team-sync signals: the current project's batch link, the sync line, pending changes, conflicts.

use lamina_sync::Fragment;
use leptos::prelude::*;

use crate::browser::new_id;
use crate::store::sync::{BatchLink, Conflict};
use crate::store::{AssetRecord, OutboxEntry};

/// What the sync line shows.
#[derive(Clone, Debug, PartialEq)]
pub enum SyncStatus {
    /// The project is not a synced batch.
    Off,
    Synced,
    Pending,
    Syncing(String),
    Error(String),
}

impl SyncStatus {
    pub fn key(&self) -> &'static str {
        match self {
            SyncStatus::Off => "off",
            SyncStatus::Synced => "synced",
            SyncStatus::Pending => "pending",
            SyncStatus::Syncing(_) => "syncing",
            SyncStatus::Error(_) => "error",
        }
    }
}

/// A conflict as the panel lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct ConflictView {
    pub asset_id: String,
    pub sync_id: String,
    pub name: String,
    pub conflict: Conflict,
}

#[derive(Clone, Copy)]
pub struct SyncState {
    /// The current project's batch, with its credentials in memory.
    pub link: RwSignal<Option<BatchLink>>,
    pub status: RwSignal<SyncStatus>,
    pub pending: RwSignal<usize>,
    pub conflicts: RwSignal<Vec<ConflictView>>,
    pub(crate) busy: StoredValue<bool>,
    /// Bumped by every scheduled push, so only the last one of a burst runs.
    pub(crate) scheduled: StoredValue<u64>,
    pub(crate) attempt: StoredValue<u32>,
    /// The last fragment built, by the outbox generations it carries: a retry sends the same bytes.
    pub(crate) last_fragment: StoredValue<Option<(Vec<String>, Fragment)>>,
}

impl SyncState {
    pub fn new() -> Self {
        SyncState {
            link: RwSignal::new(None),
            status: RwSignal::new(SyncStatus::Off),
            pending: RwSignal::new(0),
            conflicts: RwSignal::new(Vec::new()),
            busy: StoredValue::new(false),
            scheduled: StoredValue::new(0),
            attempt: StoredValue::new(0),
            last_fragment: StoredValue::new(None),
        }
    }

    /// The outbox entry a change of an image of this project gets, or None when it is not a synced batch.
    pub fn outbox_entry(&self, record: &AssetRecord) -> Option<OutboxEntry> {
        self.link
            .with_untracked(|l| {
                l.as_ref()
                    .is_some_and(|l| l.project_id == record.project_id)
            })
            .then(|| OutboxEntry {
                asset_id: record.asset.id.clone(),
                project_id: record.project_id.clone(),
                generation: new_id(),
            })
    }
}

impl Default for SyncState {
    fn default() -> Self {
        Self::new()
    }
}
