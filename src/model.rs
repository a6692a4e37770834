//! Segment-suggestion models in the app: loading (served default, a URL, or picked files), the download
//! cache with integrity checks, and image embeddings (cached in IndexedDB, next image pre-encoded).
//! Inference itself runs in the worker.

use std::collections::HashMap;

use js_sys::{ArrayBuffer, Uint8Array};
use lamina_core::model_manifest::ModelManifest;
use leptos::prelude::*;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{File, Response};

use crate::import::{js_text, resolve_url};
use crate::state::{store, AppState};
use crate::store::AssetRecord;
use crate::worker_client::{self, LoadedModel, ModelFiles};

/// The model served with the app (see scripts/build-web).
pub const DEFAULT_MODEL_URL: &str = "models/default/manifest.json";

#[derive(Clone, Debug, PartialEq)]
pub enum ModelStatus {
    None,
    Loading(String),
    Ready(LoadedModelInfo),
    Failed(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct LoadedModelInfo {
    pub key: String,
    pub id: String,
    pub source: String,
}

#[derive(Clone, Debug, PartialEq)]
pub enum EmbeddingStatus {
    None,
    /// The asset being encoded.
    Encoding(String),
    /// `cached`: restored without running the encoder.
    Ready {
        asset_id: String,
        handle: u32,
        cached: bool,
        encode_ms: f64,
    },
    Failed(String),
}

/// Fetches a file, reporting progress as `(received, total)` bytes.
async fn fetch_with_progress(
    url: &str,
    progress: impl Fn(f64, Option<f64>),
) -> Result<ArrayBuffer, String> {
    let window = web_sys::window().ok_or("no window")?;
    let response: Response = JsFuture::from(window.fetch_with_str(url))
        .await
        .map_err(|e| format!("could not fetch {url}: {}", js_text(e)))?
        .unchecked_into();
    if !response.ok() {
        return Err(format!("{url} answered HTTP {}", response.status()));
    }
    let total = response
        .headers()
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|v| v.parse::<f64>().ok());
    let Some(body) = response.body() else {
        return Err(format!("{url} sent no body"));
    };
    let reader: web_sys::ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let mut chunks: Vec<Uint8Array> = Vec::new();
    let mut received = 0.0;
    loop {
        let step = JsFuture::from(reader.read()).await.map_err(js_text)?;
        if js_sys::Reflect::get(&step, &"done".into())
            .map(|d| d.is_truthy())
            .unwrap_or(true)
        {
            break;
        }
        let chunk: Uint8Array = js_sys::Reflect::get(&step, &"value".into())
            .map_err(js_text)?
            .unchecked_into();
        received += f64::from(chunk.length());
        progress(received, total);
        chunks.push(chunk);
    }
    let out = Uint8Array::new_with_length(received as u32);
    let mut offset = 0;
    for c in chunks {
        out.set(&c, offset);
        offset += c.length();
    }
    Ok(out.buffer())
}

fn mb(bytes: f64) -> String {
    format!("{:.1} MB", bytes / 1e6)
}

/// A model file from the cache, else from `fetch`, checked against the manifest's sha256 either way.
async fn model_file<F, Fut>(name: &str, sha256: &str, fetch: F) -> Result<ArrayBuffer, String>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<ArrayBuffer, String>>,
{
    let store = store().map_err(|e| e.to_string())?;
    if let Ok(Some(cached)) = store.model_file(sha256).await {
        if ModelManifest::verify(name, sha256, &Uint8Array::new(&cached).to_vec()).is_ok() {
            return Ok(cached);
        }
    }
    let bytes = fetch().await?;
    ModelManifest::verify(name, sha256, &Uint8Array::new(&bytes).to_vec())
        .map_err(|e| e.to_string())?;
    if let Err(e) = store.put_model_file(sha256, &bytes).await {
        web_sys::console::warn_1(&format!("model file not cached: {e}").into());
    }
    Ok(bytes)
}

/// The files a manifest names, in load order: the encoder, the decoder, and the box decoder if any.
fn files_of(manifest: &ModelManifest) -> Vec<(String, String)> {
    let mut files = vec![
        (
            manifest.encoder.file.clone(),
            manifest.encoder.sha256.clone(),
        ),
        (
            manifest.preferred_decoder().file.clone(),
            manifest.preferred_decoder().sha256.clone(),
        ),
    ];
    if let Some(b) = manifest.box_decoder() {
        files.push((b.file.clone(), b.sha256.clone()));
    }
    files
}

async fn load_into_worker(
    state: AppState,
    manifest_text: String,
    buffers: Vec<ArrayBuffer>,
    source: String,
) {
    let mut buffers = buffers.into_iter();
    let (Some(encoder), Some(decoder)) = (buffers.next(), buffers.next()) else {
        return fail(state, "the model's files were not all read".into());
    };
    let files = ModelFiles {
        encoder,
        decoder,
        box_decoder: buffers.next(),
    };
    state
        .model
        .set(ModelStatus::Loading("preparing the model".into()));
    match worker_client::load_model(&manifest_text, &files).await {
        Ok(LoadedModel { key, id, .. }) => {
            state
                .model
                .set(ModelStatus::Ready(LoadedModelInfo { key, id, source }));
            state.handles.update_value(HashMap::clear);
            // Embeddings of the previous model no longer apply.
            state.embedding.set(EmbeddingStatus::None);
            ensure_embeddings(state).await;
        }
        Err(e) => fail(state, e),
    }
}

fn fail(state: AppState, e: String) {
    state.model.set(ModelStatus::Failed(e.clone()));
    state.error(format!(
        "Model not loaded: {e}. The manual tools keep working."
    ));
}

/// Loads a model from the URL of its manifest (or of the folder holding `manifest.json`).
pub async fn load_from_url(state: AppState, url: String) {
    let page = web_sys::window()
        .and_then(|w| w.location().href().ok())
        .unwrap_or_default();
    let url = if url.ends_with(".json") {
        url
    } else {
        format!("{}/manifest.json", url.trim_end_matches('/'))
    };
    let manifest_url = resolve_url(&url, &page);
    state
        .model
        .set(ModelStatus::Loading("fetching the manifest".into()));
    let manifest_text = match crate::import::fetch_text(&manifest_url).await {
        Ok(t) => t,
        Err(e) => return fail(state, e),
    };
    let manifest = match ModelManifest::parse(&manifest_text) {
        Ok(m) => m,
        Err(e) => return fail(state, e.to_string()),
    };
    let mut files = Vec::new();
    for (name, sha) in files_of(&manifest) {
        let file_url = resolve_url(&name, &manifest_url);
        let label = name.clone();
        let fetched = model_file(&name, &sha, || async move {
            fetch_with_progress(&file_url, |got, total| {
                let of = total.map(|t| format!(" of {}", mb(t))).unwrap_or_default();
                state.model.set(ModelStatus::Loading(format!(
                    "downloading {label}: {}{of}",
                    mb(got)
                )));
            })
            .await
        })
        .await;
        match fetched {
            Ok(bytes) => files.push(bytes),
            Err(e) => return fail(state, e),
        }
    }
    if let Ok(s) = store() {
        let _ = s.put_setting("model_url", &url).await;
    }
    load_into_worker(state, manifest_text, files, manifest_url).await;
}

/// Loads a model from files the user picked: `manifest.json` and the ONNX files it names.
pub async fn load_from_files(state: AppState, files: Vec<File>) {
    let by_name: HashMap<String, File> = files.into_iter().map(|f| (f.name(), f)).collect();
    let read = |name: &str| by_name.get(name).cloned();
    let Some(manifest_file) = read("manifest.json") else {
        return fail(
            state,
            "pick the model's manifest.json together with its .onnx files".into(),
        );
    };
    let manifest_text = match JsFuture::from(manifest_file.text()).await {
        Ok(t) => t.as_string().unwrap_or_default(),
        Err(e) => return fail(state, js_text(e)),
    };
    let manifest = match ModelManifest::parse(&manifest_text) {
        Ok(m) => m,
        Err(e) => return fail(state, e.to_string()),
    };
    let mut buffers = Vec::new();
    for (name, sha) in files_of(&manifest) {
        let Some(file) = read(&name) else {
            return fail(state, format!("{name} was not among the picked files"));
        };
        let result = model_file(&name, &sha, || async move {
            JsFuture::from(file.array_buffer())
                .await
                .map(|b| b.unchecked_into())
                .map_err(js_text)
        })
        .await;
        match result {
            Ok(b) => buffers.push(b),
            Err(e) => return fail(state, e),
        }
    }
    load_into_worker(state, manifest_text, buffers, "picked files".into()).await;
}

/// At start: the model last used, else the default served with the app.
pub async fn load_initial(state: AppState) {
    let last = match store() {
        Ok(s) => s.setting("model_url").await.ok().flatten(),
        Err(_) => None,
    };
    load_from_url(state, last.unwrap_or_else(|| DEFAULT_MODEL_URL.into())).await;
}

fn cache_key(model_key: &str, record: &AssetRecord) -> String {
    format!("{model_key}/{}", record.asset.sha256)
}

/// An embedding handle for `record`: in the worker already, from the IndexedDB cache, or encoded now.
async fn embed(
    state: AppState,
    record: &AssetRecord,
    model_key: &str,
) -> Result<(u32, bool, f64), String> {
    let key = cache_key(model_key, record);
    // The background pre-encode of this image may still be running: wait for it rather than encode twice.
    while state.in_flight.with_value(|f| f.contains(&key)) {
        gloo_timers::future::TimeoutFuture::new(30).await;
    }
    if let Some(handle) = state.handles.with_value(|h| h.get(&key).copied()) {
        return Ok((handle, true, 0.0));
    }
    state.in_flight.update_value(|f| {
        f.insert(key.clone());
    });
    let result = embed_uncached(state, record, &key).await;
    state.in_flight.update_value(|f| {
        f.remove(&key);
    });
    result
}

async fn embed_uncached(
    state: AppState,
    record: &AssetRecord,
    key: &str,
) -> Result<(u32, bool, f64), String> {
    let key = key.to_owned();
    let store = store().map_err(|e| e.to_string())?;
    let restored = match store.embedding(&key).await.map_err(|e| e.to_string())? {
        Some(f16) => {
            match worker_client::restore(&f16, record.asset.width, record.asset.height).await {
                Ok(handle) => Some(handle),
                // Bytes the worker refuses (cut short, or from another window layout) cost an encode,
                // whose result replaces them, not the image's suggestions.
                Err(e) => {
                    web_sys::console::warn_1(&format!("cached embedding refused: {e}").into());
                    None
                }
            }
        }
        None => None,
    };
    let (handle, cached, ms) = match restored {
        Some(handle) => (handle, true, 0.0),
        None => {
            let blob = store
                .blob(&record.asset.id)
                .await
                .map_err(|e| e.to_string())?
                .ok_or("the image is missing")?;
            let bytes: ArrayBuffer = JsFuture::from(blob.array_buffer())
                .await
                .map_err(js_text)?
                .unchecked_into();
            let encoded = worker_client::encode(bytes).await?;
            // A full disk only costs a re-encode next time.
            if let Err(e) = store.put_embedding(&key, &encoded.f16).await {
                web_sys::console::warn_1(&format!("embedding not cached: {e}").into());
            }
            (encoded.handle, false, encoded.encode_ms)
        }
    };
    state.handles.update_value(|h| {
        h.insert(key, handle);
    });
    Ok((handle, cached, ms))
}

/// Makes the current image ready for suggestions, then pre-encodes the next one in the background.
pub async fn ensure_embeddings(state: AppState) {
    let ModelStatus::Ready(model) = state.model.get_untracked() else {
        return;
    };
    let Some(record) = state.current_record_now() else {
        return;
    };
    let asset_id = record.asset.id.clone();
    // Opening a project or loading a model can ask again for the same image: the first request owns its
    // status, so a later one (which only waits for it) does not relabel the encode as "cached".
    let owned = state.embedding.with_untracked(|e| match e {
        EmbeddingStatus::Encoding(id) | EmbeddingStatus::Ready { asset_id: id, .. } => {
            id == &asset_id
        }
        _ => false,
    });
    if !owned {
        state
            .embedding
            .set(EmbeddingStatus::Encoding(asset_id.clone()));
        let result = embed(state, &record, &model.key).await;
        // The user may have moved on while this ran; only the current image's status is shown.
        if state
            .current_record_now()
            .is_some_and(|r| r.asset.id == asset_id)
        {
            state.embedding.set(match result {
                Ok((handle, cached, encode_ms)) => EmbeddingStatus::Ready {
                    asset_id,
                    handle,
                    cached,
                    encode_ms,
                },
                Err(e) => EmbeddingStatus::Failed(e),
            });
        }
    }
    let next = state
        .assets
        .with_untracked(|a| a.get(state.current.get_untracked() + 1).cloned());
    if let Some(next) = next {
        if let Err(e) = embed(state, &next, &model.key).await {
            web_sys::console::warn_1(&JsValue::from_str(&format!(
                "pre-encoding {} failed: {e}",
                next.asset.name
            )));
        }
    }
}
