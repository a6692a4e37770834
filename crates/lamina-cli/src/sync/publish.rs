//! `lamina sync publish`: upload a folder of images or a tile set as a batch, with its manifest and ontology.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};

use lamina_core::labels::Ontology;
use lamina_core::model_manifest::sha256_hex;
use lamina_sync::driver::Transport;
use lamina_sync::{layout, HttpRequest, SyncError};

use super::transport::{block_on, Ureq};
use super::{endpoint_of, require_write, PublishArgs};
use crate::Report;

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

pub(super) fn publish(a: &PublishArgs) -> Result<Report> {
    let endpoint = endpoint_of(&a.endpoint)?;
    let batch = &a.endpoint.batch;
    require_write(&endpoint)?;
    let t = Ureq::new(a.endpoint.attempts, a.endpoint.timeout);
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

async fn send_ok(t: &Ureq, request: HttpRequest) -> Result<(), SyncError> {
    let probe = HttpRequest {
        body: None,
        ..request.clone()
    };
    let response = t.send(request).await?;
    lamina_sync::endpoint::check_status(&probe, &response)
}
