//! `lamina sync publish|push|pull`: the app's sync protocol (crate `lamina-sync`) for scripted pipelines,
//! over a blocking HTTP client. Transient failures (no answer, 5xx, 429) are retried with the protocol's
//! backoff; every request is safe to repeat (fragments are create-only and content-addressed).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use lamina_core::bundle::{Bundle, BundleProject};
use lamina_core::model::{Asset, ClassDef, LabelStatus, Ontology};
use lamina_core::model_manifest::sha256_hex;
use lamina_sync::batch::ImageLocation;
use lamina_sync::driver::{self, backoff_ms, Transport};
use lamina_sync::endpoint::{HttpResponse, S3Credentials, S3Location};
use lamina_sync::fragment::{revision_of, AssetLabels, ImageInfo};
use lamina_sync::{layout, Endpoint, Fragment, HttpRequest, Ledger, SyncError};

use crate::{read_valid_bundle, Report};

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
        SyncCommand::Publish(a) => publish(a),
        SyncCommand::Push(a) => push(a),
        SyncCommand::Pull(a) => pull(a),
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

/// The CLI's transport: ureq, retrying transient failures.
struct Ureq {
    agent: ureq::Agent,
    attempts: u32,
    /// Requests sent and bytes moved, for the throughput figures.
    stats: std::cell::Cell<(u64, u64)>,
}

impl Ureq {
    fn new(attempts: u32) -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build();
        Ureq {
            agent: config.into(),
            attempts: attempts.max(1),
            stats: Default::default(),
        }
    }

    /// A protocol result in the CLI's words. A transient failure that outlasted every attempt is not
    /// queued anywhere (the app's wording says it is), so say what to do instead.
    fn finish<T>(&self, result: Result<T, SyncError>) -> Result<T> {
        result.map_err(|e| {
            let cause = match &e {
                SyncError::Offline(what) => format!("the server could not be reached ({what})"),
                SyncError::ServerError { status, what } => {
                    format!("the server failed (HTTP {status} on {what})")
                }
                _ => return anyhow::Error::new(e),
            };
            anyhow!(
                "{cause}, on all {} attempt(s), retried with backoff; nothing is queued: run the same \
                 command again once the server is back (repeating it is safe: no label is written twice)",
                self.attempts
            )
        })
    }

    fn once(&self, request: &HttpRequest) -> Result<HttpResponse, SyncError> {
        let mut builder = ureq::http::Request::builder()
            .method(request.method)
            .uri(&request.url);
        for (k, v) in &request.headers {
            builder = builder.header(k, v);
        }
        let body = request.body.clone().unwrap_or_default();
        let sent = body.len() as u64;
        let http = builder
            .body(body)
            .map_err(|e| SyncError::BadEndpoint(e.to_string()))?;
        let mut response = self
            .agent
            .run(http)
            .map_err(|e| SyncError::Offline(format!("{}: {e}", request.what)))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_vec()
            .map_err(|e| SyncError::Offline(format!("{}: {e}", request.what)))?;
        let (n, bytes) = self.stats.get();
        self.stats.set((n + 1, bytes + sent + body.len() as u64));
        Ok(HttpResponse { status, body })
    }
}

impl Transport for Ureq {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, SyncError> {
        let mut attempt = 0;
        loop {
            let outcome = self.once(&request);
            let transient = match &outcome {
                Err(e) => e.is_transient(),
                Ok(r) => matches!(r.status, 429 | 500..=599),
            };
            attempt += 1;
            if !transient || attempt >= self.attempts {
                return outcome;
            }
            std::thread::sleep(Duration::from_millis(backoff_ms(attempt - 1)));
        }
    }

    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}

/// Runs one of the protocol's futures to completion. The transport blocks inside `send`, so every
/// future is ready when first polled; there is nothing to wait for.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = TaskContext::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::yield_now();
    }
}

fn rfc3339_now(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms.rem_euclid(1000)
    )
}

struct SourceImage {
    id: String,
    path: PathBuf,
    metadata: BTreeMap<String, Value>,
}

/// Images to publish: a tile set's items (with organ and other metadata), else a folder's image files.
fn source_images(source: &Path) -> Result<Vec<SourceImage>> {
    let manifest = source.join("manifest.json");
    if manifest.is_file() {
        let text = std::fs::read_to_string(&manifest)
            .with_context(|| format!("cannot read {}", manifest.display()))?;
        let value: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", manifest.display()))?;
        let items = value["items"]
            .as_array()
            .ok_or_else(|| anyhow!("{} has no `items` list", manifest.display()))?;
        return items
            .iter()
            .map(|item| {
                let id = item["id"]
                    .as_str()
                    .ok_or_else(|| anyhow!("an item has no id"))?;
                let image = item["image"]
                    .as_str()
                    .ok_or_else(|| anyhow!("item {id} has no image"))?;
                let metadata = ["organ", "species", "magnification", "pannuke_tissue"]
                    .iter()
                    .filter_map(|k| {
                        item.get(*k)
                            .filter(|v| !v.is_null())
                            .map(|v| ((*k).to_owned(), v.clone()))
                    })
                    .collect();
                Ok(SourceImage {
                    id: id.to_owned(),
                    path: source.join(image),
                    metadata,
                })
            })
            .collect();
    }
    let mut images = Vec::new();
    for entry in
        std::fs::read_dir(source).with_context(|| format!("cannot list {}", source.display()))?
    {
        let path = entry?.path();
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        if matches!(ext.as_str(), "png" | "jpg" | "jpeg" | "tif" | "tiff") {
            let id = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_owned();
            images.push(SourceImage {
                id,
                path,
                metadata: BTreeMap::new(),
            });
        }
    }
    images.sort_by(|a, b| a.id.cmp(&b.id));
    if images.is_empty() {
        bail!(
            "{} has no manifest.json and no PNG, JPEG or TIFF image",
            source.display()
        );
    }
    Ok(images)
}

fn content_type_of(path: &Path) -> &'static str {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("tif" | "tiff") => "image/tiff",
        _ => "application/octet-stream",
    }
}

fn publish(a: &PublishArgs) -> Result<Report> {
    let endpoint = endpoint_of(&a.endpoint)?;
    let batch = &a.endpoint.batch;
    require_write(&endpoint)?;
    let t = Ureq::new(a.endpoint.attempts);
    let ontology = a.ontology.as_deref().map(read_ontology).transpose()?;
    let mut images = source_images(&a.source)?;
    if let Some(limit) = a.limit {
        images.truncate(limit);
    }
    let started = Instant::now();
    let mut assets = Vec::new();
    for image in &images {
        let bytes = std::fs::read(&image.path)
            .with_context(|| format!("cannot read {}", image.path.display()))?;
        let file = image
            .path
            .file_name()
            .and_then(|s| s.to_str())
            .unwrap_or("image");
        let key = format!("{}images/{file}", layout::batch_prefix(batch));
        let mut asset = json!({
            "id": image.id,
            "name": file,
            "url": format!("images/{file}"),
            "sha256": sha256_hex(&bytes),
        });
        for (k, v) in &image.metadata {
            asset[k] = v.clone();
        }
        let request = endpoint.put(&key, bytes, content_type_of(&image.path), false, t.now_ms())?;
        t.finish(block_on(send_ok(&t, request)))?;
        assets.push(asset);
    }
    let mut manifest = json!({
        "format": "lamina-batch",
        "batch": batch,
        "name": a.name.clone().unwrap_or_else(|| batch.clone()),
        "assets": assets,
    });
    if let Some(ontology) = ontology {
        manifest["ontology"] = serde_json::to_value(ontology)?;
    }
    let body = serde_json::to_vec_pretty(&manifest)?;
    let request = endpoint.put(
        &layout::manifest_key(batch),
        body,
        "application/json",
        false,
        t.now_ms(),
    )?;
    t.finish(block_on(send_ok(&t, request)))?;
    let seconds = started.elapsed().as_secs_f64();
    let (requests, bytes) = t.stats.get();
    Ok(Report {
        ok: true,
        json: json!({ "ok": true, "batch": batch, "images": images.len(), "requests": requests,
                      "bytes": bytes, "seconds": seconds }),
        human: format!(
            "Published batch {batch}: {} images ({:.1} MB) to {} in {seconds:.2} s",
            images.len(),
            bytes as f64 / 1e6,
            endpoint.describe()
        ),
    })
}

/// An ontology from a bundle (its `ontology`) or an ontology file.
fn read_ontology(path: &Path) -> Result<Ontology> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let value: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let value = value.get("ontology").cloned().unwrap_or(value);
    let ontology: Ontology = serde_json::from_value(value).with_context(|| {
        format!(
            "{} has no ontology (a bundle, or {{\"classes\": [...]}})",
            path.display()
        )
    })?;
    ontology
        .validate()
        .map_err(|e| anyhow!("the ontology in {}: {e}", path.display()))?;
    Ok(ontology)
}

/// The class ids `instances` use that `ontology` lacks, each with how many labels use it.
fn unknown_classes<'a>(
    ontology: &Ontology,
    instances: impl IntoIterator<Item = &'a lamina_core::model::Instance>,
) -> BTreeMap<String, usize> {
    let mut unknown = BTreeMap::new();
    for inst in instances {
        if ontology.class(&inst.class_id).is_none() {
            *unknown.entry(inst.class_id.clone()).or_default() += 1;
        }
    }
    unknown
}

async fn send_ok(t: &Ureq, request: HttpRequest) -> Result<(), SyncError> {
    let probe = HttpRequest {
        body: None,
        ..request.clone()
    };
    let response = t.send(request).await?;
    lamina_sync::endpoint::check_status(&probe, &response)
}

fn push(a: &PushArgs) -> Result<Report> {
    let endpoint = endpoint_of(&a.endpoint)?;
    let batch = &a.endpoint.batch;
    let labeler = &a.labeler;
    layout::check_id(labeler, "labeler id")?;
    require_write(&endpoint)?;
    let bundle = read_valid_bundle(&a.bundle)?;
    let t = Ureq::new(a.endpoint.attempts);
    let started = Instant::now();
    let created = rfc3339_now(t.now_ms());
    // The batch must exist (a mistyped --batch would file labels nobody ever sees), and only its images
    // can carry labels: the app and `pull` go by the manifest.
    let manifest = t.finish(block_on(driver::pull_manifest(&t, &endpoint, batch)))?;
    let in_batch: BTreeSet<&str> = manifest.assets.iter().map(|a| a.id.as_str()).collect();
    let (assets, outside): (Vec<&Asset>, Vec<&Asset>) = bundle
        .assets
        .iter()
        .partition(|a| in_batch.contains(layout::sync_asset_id(batch, &a.id)));
    if assets.is_empty() {
        bail!(
            "none of the {} images of {} is in batch `{batch}` ({} images, e.g. `{}`): check --batch",
            bundle.assets.len(),
            a.bundle.display(),
            manifest.assets.len(),
            manifest.assets.first().map(|a| a.id.as_str()).unwrap_or("")
        );
    }
    let mut warnings = Vec::new();
    if !outside.is_empty() {
        warnings.push(format!(
            "{} image(s) of the bundle are not in batch `{batch}` and were left out: {}",
            outside.len(),
            list_some(outside.iter().map(|a| a.id.as_str()))
        ));
    }
    let ontology = manifest.ontology.clone().unwrap_or_else(Ontology::pannuke);
    let pushed_ids: BTreeSet<&str> = assets.iter().map(|a| a.id.as_str()).collect();
    let unknown = unknown_classes(
        &ontology,
        bundle
            .instances
            .iter()
            .filter(|i| pushed_ids.contains(i.asset_id.as_str())),
    );
    if !unknown.is_empty() {
        warnings.push(format!(
            "labels use classes batch `{batch}` does not have: {} (publish it with --ontology to add them)",
            unknown
                .iter()
                .map(|(c, n)| format!("`{c}` ({n} labels)"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    // What the server holds already: every readable fragment and the revisions in it.
    let mut ledger = Ledger::default();
    t.finish(block_on(driver::pull_fragments(
        &t,
        &endpoint,
        batch,
        &mut ledger,
    )))?;
    let known = ledger.fragments.clone();
    let mut by_asset: BTreeMap<&str, Vec<_>> = BTreeMap::new();
    for inst in &bundle.instances {
        by_asset
            .entry(inst.asset_id.as_str())
            .or_default()
            .push(inst);
    }
    let mut labels = Vec::new();
    // Images whose labels the server already has (same revision), with the fragment holding them.
    let mut unchanged: Vec<(String, String)> = Vec::new();
    // Of those, images whose labels equal a version that was replaced since.
    let mut superseded = Vec::new();
    for asset in assets {
        let sync_id = layout::sync_asset_id(batch, &asset.id).to_owned();
        let instances: Vec<_> = by_asset
            .get(asset.id.as_str())
            .map(|list| {
                list.iter()
                    .map(|i| {
                        let mut i = (*i).clone();
                        i.asset_id = sync_id.clone();
                        i
                    })
                    .collect()
            })
            .unwrap_or_default();
        let revision = revision_of(asset.status, &instances);
        let heads = ledger.heads(&sync_id);
        // Parents: this labeler's own current versions of the image, which her new labels replace. A
        // scripted push cannot know what it replaces of anyone else's, so where someone else has labels
        // for the image, the app shows both as a conflict rather than letting either win silently.
        let parents: Vec<String> = heads
            .iter()
            .filter(|h| h.labeler == *labeler && h.revision != revision)
            .map(|h| h.revision.clone())
            .collect();
        // Every label on the server exactly once: a revision already there (pushed before, by anyone) is
        // not written again unless it replaces some of this labeler's versions (she took someone else's
        // labels). Revisions are content hashes, so skipping changes no reader's view.
        let existing = ledger
            .entries
            .get(&sync_id)
            .into_iter()
            .flatten()
            .filter(|e| e.revision == revision)
            .max_by_key(|e| (e.labeler == *labeler, e.fragment_key.clone()));
        if let Some(e) = existing {
            let current = heads.iter().any(|h| h.revision == revision);
            if !current {
                // An earlier version cannot become current again by pushing it once more (it would
                // name the version that replaced it as replaced in turn): say so, write nothing.
                superseded.push(sync_id.clone());
            }
            if !current || parents.is_empty() {
                unchanged.push((sync_id, e.fragment_key.clone()));
                continue;
            }
        }
        labels.push(
            AssetLabels::new(sync_id, parents, asset.status, instances).with_image(ImageInfo {
                sha256: asset.sha256.clone(),
                width: asset.width,
                height: asset.height,
            }),
        );
    }
    if !superseded.is_empty() {
        warnings.push(format!(
            "{} image(s) have labels equal to an earlier version that was replaced since; the server keeps \
             the newer one (change the labels to push them as a new version): {}",
            superseded.len(),
            list_some(superseded.iter().map(String::as_str))
        ));
    }
    let instances = labels.iter().map(|l| l.instances.len()).sum::<usize>();
    let (key, bytes, wrote) = if labels.is_empty() {
        // Nothing new. The index still gets every key (a push whose index write failed is repaired).
        t.finish(block_on(ensure_index(&t, &endpoint, batch, &known)))?;
        let mut keys: Vec<&String> = unchanged.iter().map(|(_, k)| k).collect();
        keys.sort();
        keys.dedup();
        ((keys.len() == 1).then(|| keys[0].clone()), 0, false)
    } else {
        let fragment = Fragment::new(batch, labeler, &created, labels)?;
        let outcome = t.finish(block_on(driver::push_fragment(
            &t, &endpoint, &fragment, &known,
        )))?;
        (Some(outcome.key), outcome.bytes, !outcome.already_there)
    };
    let pushed = pushed_ids.len() - unchanged.len();
    let seconds = started.elapsed().as_secs_f64();
    let (requests, moved) = t.stats.get();
    let mut human = if pushed == 0 {
        format!(
            "Nothing to push: the server already has these labels for all {} images{} ({seconds:.2} s)",
            unchanged.len(),
            key.as_ref().map(|k| format!(", in {k}")).unwrap_or_default()
        )
    } else {
        format!(
            "Pushed {pushed} image(s) ({instances} instances, {:.1} kB) as {} in {seconds:.2} s{}",
            bytes as f64 / 1e3,
            key.as_deref().unwrap_or(""),
            if unchanged.is_empty() {
                String::new()
            } else {
                format!(
                    "; {} image(s) not sent again, the server already has their labels",
                    unchanged.len()
                )
            }
        )
    };
    for w in &warnings {
        human.push_str(&format!("\nwarning: {w}"));
    }
    Ok(Report {
        ok: true,
        json: json!({ "ok": true, "batch": batch, "labeler": labeler, "key": key, "bytes": bytes,
                      "images": pushed, "instances": instances, "unchanged": unchanged.len(),
                      "not_in_batch": outside.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
                      "unknown_classes": unknown, "warnings": warnings,
                      "already_there": pushed == 0, "wrote": wrote,
                      "requests": requests, "transferred": moved, "seconds": seconds }),
        human,
    })
}

/// Up to five items, and how many more.
fn list_some<'a>(items: impl ExactSizeIterator<Item = &'a str>) -> String {
    let n = items.len();
    let mut out: Vec<String> = items.take(5).map(|s| format!("`{s}`")).collect();
    if n > 5 {
        out.push(format!("and {} more", n - 5));
    }
    out.join(", ")
}

/// Writes the batch index with `keys` added when it lacks any of them.
async fn ensure_index(
    t: &Ureq,
    endpoint: &Endpoint,
    batch: &str,
    keys: &BTreeSet<String>,
) -> Result<(), SyncError> {
    let mut index = driver::read_index(t, endpoint, batch).await?;
    if keys.is_subset(&index) {
        return Ok(());
    }
    index.extend(keys.iter().cloned());
    let body = serde_json::to_vec(&driver::BatchIndex {
        format: "lamina-batch-index".into(),
        fragments: index,
    })
    .unwrap_or_default();
    let request = endpoint.put(
        &layout::index_key(batch),
        body,
        "application/json",
        false,
        t.now_ms(),
    )?;
    send_ok(t, request).await
}

fn pull(a: &PullArgs) -> Result<Report> {
    let endpoint = endpoint_of(&a.endpoint)?;
    let batch = &a.endpoint.batch;
    let t = Ureq::new(a.endpoint.attempts);
    let started = Instant::now();
    let manifest = t.finish(block_on(driver::pull_manifest(&t, &endpoint, batch)))?;
    let mut ledger = Ledger::default();
    let outcome = t.finish(block_on(driver::pull_fragments(
        &t,
        &endpoint,
        batch,
        &mut ledger,
    )))?;
    let fragments: BTreeMap<&str, &Fragment> = outcome
        .fragments
        .iter()
        .map(|(k, f)| (k.as_str(), f))
        .collect();
    let ontology = manifest.ontology.clone().unwrap_or_else(Ontology::pannuke);
    let mut bundle = Bundle::new(
        BundleProject {
            id: format!("batch-{batch}"),
            name: manifest.name.clone().unwrap_or_else(|| batch.clone()),
        },
        ontology,
    );
    let mut conflicts = Vec::new();
    let mut problems = outcome.problems.clone();
    for asset in &manifest.assets {
        let heads = ledger.heads(&asset.id);
        // With several heads the newest is written and the image is listed as a conflict to resolve in
        // the app; every version stays on the server.
        let Some(head) = heads.last() else { continue };
        if heads.len() > 1 {
            conflicts.push(json!({
                "image": asset.id,
                "versions": heads.iter().map(|h| json!({"labeler": h.labeler, "revision": h.revision,
                    "created": h.created, "instances": h.instance_count})).collect::<Vec<_>>(),
            }));
        }
        let Some(labels) = fragments
            .get(head.fragment_key.as_str())
            .and_then(|f| f.assets.iter().find(|l| l.asset_id == asset.id))
        else {
            continue;
        };
        let Some(image) = &labels.image else {
            problems.push(format!(
                "{}: its labels do not say which image they were drawn on",
                asset.id
            ));
            continue;
        };
        if asset.sha256.as_ref().is_some_and(|s| *s != image.sha256) {
            problems.push(format!(
                "{}: labels were drawn on an image with another sha256 than the batch lists",
                asset.id
            ));
        }
        bundle.assets.push(Asset {
            id: asset.id.clone(),
            name: asset.name.clone(),
            sha256: image.sha256.clone(),
            width: image.width,
            height: image.height,
            metadata: asset.metadata.clone(),
            uri: match &asset.location {
                ImageLocation::Url(u) => Some(u.clone()),
                ImageLocation::Key(_) => None,
            },
            status: labels.status,
        });
        bundle.instances.extend(labels.instances.iter().cloned());
    }
    // Labels may use classes the batch does not list (pushed from a bundle with other classes): they
    // join the ontology under their id, so the bundle stays valid and nothing is dropped.
    let mut warnings = Vec::new();
    let unknown = unknown_classes(&bundle.ontology, &bundle.instances);
    for (added, (class, n)) in unknown.iter().enumerate() {
        const COLORS: [&str; 6] = [
            "#00e5ff", "#ff00ff", "#8000ff", "#00ff80", "#808080", "#ff0080",
        ];
        let color = COLORS[added % COLORS.len()];
        bundle.ontology.classes.push(ClassDef {
            id: class.clone(),
            name: class.clone(),
            color: color.into(),
        });
        warnings.push(format!(
            "class `{class}` ({n} labels) is not in the batch's ontology; added to the bundle's"
        ));
    }
    let labeled = bundle.assets.len();
    let unlabeled = manifest.assets.len() - labeled;
    let _ = LabelStatus::Unlabeled;
    std::fs::write(&a.out, bundle.to_json_pretty())
        .with_context(|| format!("cannot write {}", a.out.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    let (requests, bytes) = t.stats.get();
    let human = format!(
        "Pulled batch {batch}: {} images ({labeled} labeled, {unlabeled} not yet), {} instances from {} fragments \
         in {seconds:.2} s ({requests} requests, {:.1} kB); wrote {}{}{}{}",
        manifest.assets.len(),
        bundle.instances.len(),
        outcome.fragments.len(),
        bytes as f64 / 1e3,
        a.out.display(),
        if conflicts.is_empty() { String::new() } else { format!("\n{} image(s) in conflict (newest version written): {}", conflicts.len(), conflicts.iter().map(|c| c["image"].as_str().unwrap_or("").to_owned()).collect::<Vec<_>>().join(", ")) },
        if problems.is_empty() { String::new() } else { format!("\nskipped:\n  {}", problems.join("\n  ")) },
        warnings.iter().map(|w| format!("\nwarning: {w}")).collect::<String>(),
    );
    Ok(Report {
        ok: true,
        json: json!({ "ok": true, "batch": batch, "images": manifest.assets.len(), "labeled": labeled,
                      "instances": bundle.instances.len(), "fragments": outcome.fragments.len(),
                      "conflicts": conflicts, "problems": problems, "manifest_problems": manifest.problems,
                      "warnings": warnings,
                      "requests": requests, "bytes": bytes, "seconds": seconds, "out": a.out.display().to_string() }),
        human,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_matches_known_instants() {
        assert_eq!(super::rfc3339_now(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            super::rfc3339_now(1_795_796_400_123),
            "2026-11-27T13:00:00.123Z"
        );
        assert_eq!(
            super::rfc3339_now(951_782_400_000),
            "2000-02-29T00:00:00.000Z"
        );
    }
}
