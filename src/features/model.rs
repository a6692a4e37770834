//! Segment-suggestion models in the app: loading (served default, a URL, or picked files), the download
//! cache with integrity checks, and image embeddings (cached in IndexedDB, next image pre-encoded).
//! Inference itself runs in the worker.

use std::collections::HashMap;

use js_sys::{ArrayBuffer, Uint8Array};
use lamina_core::model_manifest::ModelManifest;
use lamina_core::worker_protocol::ModelLoaded;
use leptos::prelude::*;
use wasm_bindgen::JsValue;
use web_sys::File;

use crate::browser::fetch::{fetch_text, fetch_with_progress};
use crate::browser::files::{array_buffer, read_text};
use crate::browser::{page_url, resolve_url};
use crate::error::AppError;
use crate::state::model::{EmbeddingStatus, LoadedModelInfo, ModelStatus};
use crate::state::AppState;
use crate::store;
use crate::store::AssetRecord;
use crate::worker_client::{self, ModelFiles};

/// The model served with the app (see scripts/build-web).
pub const DEFAULT_MODEL_URL: &str = "models/default/manifest.json";

fn mb(bytes: f64) -> String {
    format!("{:.1} MB", bytes / 1e6)
}

/// A model file from the cache, else from `fetch`, checked against the manifest's sha256 either way.
async fn model_file<F, Fut>(name: &str, sha256: &str, fetch: F) -> Result<ArrayBuffer, AppError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<ArrayBuffer, AppError>>,
{
    let store = store::shared()?;
    // A cache that cannot be read or holds other bytes costs a download, nothing more.
    if let Ok(Some(cached)) = store.model_file(sha256).await {
        if ModelManifest::verify(name, sha256, &Uint8Array::new(&cached).to_vec()).is_ok() {
            return Ok(cached);
        }
    }
    let bytes = fetch().await?;
    ModelManifest::verify(name, sha256, &Uint8Array::new(&bytes).to_vec())
        .map_err(|e| AppError::invalid(e.to_string()))?;
    if let Err(e) = store.put_model_file(sha256, &bytes).await {
        // Not caching only costs a download next time; the model loads all the same.
        web_sys::console::warn_1(&format!("model file not cached: {e}").into());
    }
    Ok(bytes)
}

/// The files a manifest names, in load order: the encoder, the decoder, and the box decoder if any.
pub(crate) fn files_of(manifest: &ModelManifest) -> Vec<(String, String)> {
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
        return fail(
            state,
            AppError::invalid("the model's files were not all read"),
        );
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
        Ok(ModelLoaded {
            key, id, family, ..
        }) => {
            state.model.set(ModelStatus::Ready(LoadedModelInfo {
                key,
                id,
                family,
                source,
                manifest: manifest_text,
            }));
            state.handles.update_value(HashMap::clear);
            // Embeddings of the previous model no longer apply.
            state.embedding.set(EmbeddingStatus::None);
            ensure_embeddings(state).await;
        }
        Err(e) => fail(state, e),
    }
}

fn fail(state: AppState, e: AppError) {
    state.model.set(ModelStatus::Failed(e.to_string()));
    state.error(format!(
        "Model not loaded: {e}. The manual tools keep working."
    ));
}

/// Loads a model from the URL of its manifest (or of the folder holding `manifest.json`).
pub async fn load_from_url(state: AppState, url: String) {
    let page = page_url();
    let url = if url.ends_with(".json") {
        url
    } else {
        format!("{}/manifest.json", url.trim_end_matches('/'))
    };
    let manifest_url = resolve_url(&url, &page);
    state
        .model
        .set(ModelStatus::Loading("fetching the manifest".into()));
    let manifest_text = match fetch_text(&manifest_url).await {
        Ok(t) => t,
        Err(e) => return fail(state, e),
    };
    let manifest = match ModelManifest::parse(&manifest_text) {
        Ok(m) => m,
        Err(e) => return fail(state, AppError::invalid(e.to_string())),
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
    // Remembering the model is a convenience: the next start loads the default if it was not written.
    if let Ok(s) = store::shared() {
        if let Err(e) = s.put_setting("model_url", &url).await {
            web_sys::console::warn_1(&format!("model URL not remembered: {e}").into());
        }
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
            AppError::invalid("pick the model's manifest.json together with its .onnx files"),
        );
    };
    let manifest_text = match read_text(&manifest_file).await {
        Ok(t) => t,
        Err(e) => return fail(state, e),
    };
    let manifest = match ModelManifest::parse(&manifest_text) {
        Ok(m) => m,
        Err(e) => return fail(state, AppError::invalid(e.to_string())),
    };
    let mut buffers = Vec::new();
    for (name, sha) in files_of(&manifest) {
        let Some(file) = read(&name) else {
            return fail(
                state,
                AppError::invalid(format!("{name} was not among the picked files")),
            );
        };
        let label = name.clone();
        let result = model_file(
            &name,
            &sha,
            || async move { array_buffer(&file, &label).await },
        )
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
    let last = match async { store::shared()?.setting("model_url").await }.await {
        Ok(last) => last,
        Err(e) => {
            state.fail(
                "The last model used could not be read; loading the default",
                &e,
            );
            None
        }
    };
    load_from_url(state, last.unwrap_or_else(|| DEFAULT_MODEL_URL.into())).await;
}

fn cache_key(model_key: &str, record: &AssetRecord) -> String {
    format!("{model_key}/{}", record.asset.sha256)
}

/// An embedding handle for `record`: in the worker already, from the IndexedDB cache, or encoded now.
pub(crate) async fn embed(
    state: AppState,
    record: &AssetRecord,
    model_key: &str,
) -> Result<(u32, bool, f64), AppError> {
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
) -> Result<(u32, bool, f64), AppError> {
    let key = key.to_owned();
    let store = store::shared()?;
    let restored = match store.embedding(&key).await? {
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
            let blob = store.blob(&record.asset.id).await?.ok_or_else(|| {
                AppError::Corrupt(format!("the image of {} is missing", record.asset.name))
            })?;
            let bytes = array_buffer(&blob, &record.asset.name).await?;
            let encoded = worker_client::encode(bytes).await?;
            // A full disk only costs a re-encode next time.
            if let Err(e) = store.put_embedding(&key, &encoded.f16).await {
                web_sys::console::warn_1(&format!("embedding not cached: {e}").into());
            }
            (encoded.encoded.handle, false, encoded.encoded.encode_ms)
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
                Err(e) => EmbeddingStatus::Failed(e.to_string()),
            });
        }
    }
    let next = state
        .assets
        .with_untracked(|a| a.get(state.current.get_untracked() + 1).cloned());
    if let Some(next) = next {
        // A failed pre-encode is tried again, and shown, when that image is opened.
        if let Err(e) = embed(state, &next, &model.key).await {
            web_sys::console::warn_1(&JsValue::from_str(&format!(
                "pre-encoding {} failed: {e}",
                next.asset.name
            )));
        }
    }
}

/// The loaded model's files again, from the IndexedDB cache, for another worker (a pre-label run's).
pub async fn cached_files(manifest_text: &str) -> Result<ModelFiles, AppError> {
    let manifest =
        ModelManifest::parse(manifest_text).map_err(|e| AppError::invalid(e.to_string()))?;
    let store = store::shared()?;
    let mut buffers = Vec::new();
    for (name, sha) in files_of(&manifest) {
        let bytes = store.model_file(&sha).await?.ok_or_else(|| {
            AppError::invalid(format!(
                "the model file {name} is not in this browser's cache (storage may be full); load the model again"
            ))
        })?;
        buffers.push(bytes);
    }
    let mut buffers = buffers.into_iter();
    match (buffers.next(), buffers.next()) {
        (Some(encoder), Some(decoder)) => Ok(ModelFiles {
            encoder,
            decoder,
            box_decoder: buffers.next(),
        }),
        _ => Err(AppError::invalid("the model's files were not all read")),
    }
}
