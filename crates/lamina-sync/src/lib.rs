//! Lamina's sync protocol, sans-IO. Labels travel between devices as immutable **fragments** on an endpoint
//! the team owns (an S3-compatible bucket or a WebDAV-style static server); no server of ours.
//!
//! - [`layout`]: where each object lives under the endpoint's root.
//! - [`fragment`]: the fragment format (one labeler's labels for some images of one batch) and revisions.
//! - [`ledger`]: what a device knows of the server (every fragment it has read) and, per image, the decision
//!   a pull leads to: up to date, push, adopt another labeler's version, or a conflict for the user.
//! - [`endpoint`]: the HTTP requests for S3 (SigV4-presigned by `rusty-s3`) and WebDAV, and how to read
//!   their answers.
//! - [`driver`]: push and pull over any [`driver::Transport`] (the browser's `fetch`, the CLI's `ureq`).
//!
//! Nothing here reads a clock or opens a socket: time and transport are passed in, so every rule is
//! tested natively and the same code runs in the browser.

pub mod batch;
pub mod driver;
pub mod endpoint;
pub mod fragment;
pub mod layout;
pub mod ledger;

pub use endpoint::{Endpoint, HttpRequest, S3Credentials, S3Location};
pub use fragment::{AssetLabels, Fragment};
pub use ledger::{Decision, Ledger, LocalAsset, RemoteEntry};

/// Everything that can go wrong in a sync, named so the user can act on it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SyncError {
    #[error("`{0}` is not a valid {1}: use 1-64 letters, digits, `.`, `_` or `-`")]
    BadId(String, &'static str),
    #[error("the endpoint is not usable: {0}")]
    BadEndpoint(String),
    #[error("{key} is not a Lamina label fragment: {reason}")]
    BadFragment { key: String, reason: String },
    #[error("the server could not be reached ({0})")]
    Offline(String),
    #[error("the server refused the credentials (HTTP {status} on {what}): check the access key, secret or token; they may have expired")]
    Unauthorized { status: u16, what: String },
    #[error("the server failed (HTTP {status} on {what})")]
    ServerError { status: u16, what: String },
    /// The object is not there (HTTP 404); the server's own page says nothing more.
    #[error("nothing on the server for {what} (HTTP 404)")]
    NotFound { what: String },
    #[error("the server answered HTTP {status} on {what}: {body}")]
    Rejected {
        status: u16,
        what: String,
        body: String,
    },
    /// The batch manifest is on the server but unusable (the message names the batch and why).
    #[error("{0}")]
    BadManifest(String),
    #[error("the listing of {0} cannot be read: {1}")]
    BadListing(String, String),
    #[error(
        "this endpoint is read-only (GET only): pull works, push needs a server that accepts PUT"
    )]
    ReadOnly,
    /// An answer bigger than Lamina takes for what was asked (a hostile or broken server).
    #[error("the server's answer to {what} is over {} MB, more than Lamina takes for it; refused", limit >> 20)]
    TooLarge { what: String, limit: u64 },
}

impl SyncError {
    /// Worth retrying later with the same data (the server or network is at fault, not the request).
    pub fn is_transient(&self) -> bool {
        matches!(self, SyncError::Offline(_) | SyncError::ServerError { .. })
    }
}
