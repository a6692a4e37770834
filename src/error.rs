//! The app's one error type. Every fallible function returns [`AppError`]; the action the user started
//! (a click, a key, an import) shows it once, as a notice, the sync line or the model panel, with the
//! context of what was being done. The wording is for the person at the screen: what went wrong, and what
//! they can do about it.

use lamina_sync::SyncError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The browser's storage quota is used up (IndexedDB aborted the transaction).
    #[error("the browser's storage for this site is full: free space (export and delete a project) and try again; nothing was saved")]
    StorageFull,
    /// IndexedDB refused a read or a write for another reason.
    #[error("the browser's storage refused the change ({0}); nothing was saved")]
    Storage(String),
    /// Something stored could not be read back (damaged or from an incompatible version).
    #[error("stored data could not be read: {0}")]
    Corrupt(String),
    /// The database could not be opened or upgraded.
    #[error("Lamina cannot open its storage: {0}")]
    StorageOpen(String),
    /// A browser API failed: reading a picked file, making a blob, a download.
    #[error("the browser could not {what}: {detail}")]
    Browser { what: String, detail: String },
    /// A URL could not be fetched at all (offline, CORS, no such host).
    #[error("could not fetch {url}: {detail}")]
    Network { url: String, detail: String },
    /// A URL answered with an HTTP error.
    #[error("{url} answered HTTP {status}")]
    Http { url: String, status: u16 },
    /// The worker failed a request (a bad image, a wrong model file), or stopped.
    #[error("{0}")]
    Worker(String),
    /// A newer request superseded this one (latest-wins suggestions). Never shown.
    #[error("superseded by a newer request")]
    Cancelled,
    /// Team sync: the endpoint, the server or a fragment.
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// Something the user gave is not usable (a manifest, a bundle, a model file, a form field).
    #[error("{0}")]
    Invalid(String),
    /// An action that needs an open project ran without one.
    #[error("no project is open: create or open one first")]
    NoProject,
}

impl AppError {
    pub fn invalid(text: impl Into<String>) -> Self {
        AppError::Invalid(text.into())
    }

    /// A failed browser call, with what the app was trying to do.
    pub fn browser(what: impl Into<String>, detail: impl Into<String>) -> Self {
        AppError::Browser {
            what: what.into(),
            detail: detail.into(),
        }
    }

    /// Whether trying again later may work (a server that is down, a flaky network).
    pub fn is_transient(&self) -> bool {
        matches!(self, AppError::Sync(e) if e.is_transient())
    }
}
