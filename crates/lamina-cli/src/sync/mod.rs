//! `lamina sync publish|push|pull`: the app's sync protocol (crate `lamina-sync`) for scripted pipelines,
//! over a blocking HTTP client. Transient failures (no answer, 5xx, 429) are retried with the protocol's
//! backoff; every request is safe to repeat (fragments are create-only and content-addressed).

mod publish;
mod pull;
mod push;
mod transport;

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};

use lamina_core::labels::{Instance, Ontology};
use lamina_sync::endpoint::{S3Credentials, S3Location};
use lamina_sync::{layout, Endpoint, SyncError};

use crate::Report;

#[derive(Subcommand)]
pub enum SyncCommand {
    /// Upload a folder of images (or a tile set with manifest.json) as a batch: images under
    /// batches/BATCH/images/ and batches/BATCH/manifest.json with each image's sha256.
    Publish(PublishArgs),
    /// Push a bundle's labels for the batch's images as one immutable fragment of LABELER (never
    /// overwriting anyone's). Labels the server already has are not sent again. LABELER's new labels
    /// for an image replace LABELER's earlier ones; where someone else has other labels, pull lists
    /// a conflict.
    Push(PushArgs),
    /// Pull every fragment of a batch and write the current labels as a bundle; conflicts are listed.
    Pull(PullArgs),
}

#[derive(Args)]
pub struct EndpointArgs {
    /// An S3 service URL (with --bucket), or the base URL of a WebDAV-style folder (PUT + JSON listing).
    #[arg(long)]
    endpoint: String,
    /// S3 bucket; without it the endpoint is a WebDAV-style folder.
    #[arg(long)]
    bucket: Option<String>,
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Virtual-hosted addressing (bucket.host) instead of path-style (host/bucket).
    #[arg(long)]
    virtual_hosted: bool,
    /// Key prefix inside the bucket, ending with `/`.
    #[arg(long, default_value = "")]
    prefix: String,
    #[arg(long, env = "AWS_ACCESS_KEY_ID")]
    access_key: Option<String>,
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    secret_key: Option<String>,
    #[arg(long, env = "AWS_SESSION_TOKEN", hide_env_values = true)]
    session_token: Option<String>,
    /// Bearer token for a WebDAV-style endpoint.
    #[arg(long, env = "LAMINA_SYNC_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The WebDAV-style host serves GET only (pull from its index).
    #[arg(long)]
    read_only: bool,
    /// Attempts per request on transient failures.
    #[arg(long, default_value_t = 5)]
    attempts: u32,
    /// Seconds a request may take before it counts as failed (and is retried).
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    #[arg(long)]
    batch: String,
}

#[derive(Args)]
pub struct PublishArgs {
    #[command(flatten)]
    endpoint: EndpointArgs,
    /// A folder of PNG/JPEG/TIFF images, or a tile set (manifest.json with `items`, ../shared/data/FORMAT.md).
    source: PathBuf,
    /// Publish only the first N images.
    #[arg(long)]
    limit: Option<usize>,
    /// The batch's display name.
    #[arg(long)]
    name: Option<String>,
    /// The batch's classes: a bundle (its `ontology`) or an ontology file (`{"classes": [...]}`).
    /// Without it the app and `pull` use PanNuke's five classes.
    #[arg(long)]
    ontology: Option<PathBuf>,
}

#[derive(Args)]
pub struct PushArgs {
    #[command(flatten)]
    endpoint: EndpointArgs,
    /// Who is pushing (1-64 letters, digits, `.`, `_`, `-`): fragments are filed under this name.
    #[arg(long)]
    labeler: String,
    bundle: PathBuf,
}

#[derive(Args)]
pub struct PullArgs {
    #[command(flatten)]
    endpoint: EndpointArgs,
    #[arg(long)]
    out: PathBuf,
}

pub fn run(command: &SyncCommand) -> Result<Report> {
    match command {
        SyncCommand::Publish(a) => publish::publish(a),
        SyncCommand::Push(a) => push::push(a),
        SyncCommand::Pull(a) => pull::pull(a),
    }
}

fn endpoint_of(a: &EndpointArgs) -> Result<Endpoint> {
    layout::check_id(&a.batch, "batch id")?;
    let endpoint = match &a.bucket {
        Some(bucket) => Endpoint::S3 {
            location: S3Location {
                endpoint: a.endpoint.clone(),
                bucket: bucket.clone(),
                region: a.region.clone(),
                path_style: !a.virtual_hosted,
                prefix: a.prefix.clone(),
            },
            credentials: match (&a.access_key, &a.secret_key) {
                (Some(k), Some(s)) => Some(S3Credentials {
                    access_key: k.clone(),
                    secret_key: s.clone(),
                    session_token: a.session_token.clone(),
                }),
                (None, None) => None,
                _ => bail!(
                    "give both --access-key and --secret-key (or neither, for a public bucket)"
                ),
            },
        },
        None => Endpoint::Http {
            base_url: a.endpoint.clone(),
            token: a.token.clone(),
            writable: !a.read_only,
        },
    };
    endpoint.check()?;
    Ok(endpoint)
}

/// Fails before any request when the endpoint cannot take writes.
fn require_write(endpoint: &Endpoint) -> Result<()> {
    match endpoint {
        _ if endpoint.can_write() => Ok(()),
        Endpoint::S3 { .. } => bail!(
            "writing to a bucket needs credentials: give --access-key and --secret-key \
             (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
        ),
        Endpoint::Http { .. } => Err(SyncError::ReadOnly.into()),
    }
}

/// The class ids `instances` use that `ontology` lacks, each with how many labels use it.
fn unknown_classes<'a>(
    ontology: &Ontology,
    instances: impl IntoIterator<Item = &'a Instance>,
) -> BTreeMap<String, usize> {
    let mut unknown = BTreeMap::new();
    for inst in instances {
        if ontology.class(&inst.class_id).is_none() {
            *unknown.entry(inst.class_id.clone()).or_default() += 1;
        }
    }
    unknown
}
