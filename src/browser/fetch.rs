//! HTTP GETs of images, manifests and model files.

use js_sys::{ArrayBuffer, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Blob, Response};

use super::{js_text, promise};
use crate::error::AppError;

async fn get(url: &str) -> Result<Response, AppError> {
    let window = web_sys::window().ok_or_else(|| AppError::browser("fetch", "no window"))?;
    let response: Response = JsFuture::from(window.fetch_with_str(url))
        .await
        .map_err(|e| AppError::Network {
            url: url.to_owned(),
            detail: js_text(e),
        })?
        .unchecked_into();
    if !response.ok() {
        return Err(AppError::Http {
            url: url.to_owned(),
            status: response.status(),
        });
    }
    Ok(response)
}

pub async fn fetch_blob(url: &str) -> Result<Blob, AppError> {
    let response = get(url).await?;
    let body = response
        .blob()
        .map_err(|e| AppError::browser(format!("read {url}"), js_text(e)))?;
    promise(body, &format!("read {url}")).await
}

pub async fn fetch_text(url: &str) -> Result<String, AppError> {
    let response = get(url).await?;
    let body = response
        .text()
        .map_err(|e| AppError::browser(format!("read {url}"), js_text(e)))?;
    JsFuture::from(body)
        .await
        .map_err(|e| AppError::browser(format!("read {url}"), js_text(e)))?
        .as_string()
        .ok_or_else(|| AppError::invalid(format!("{url} did not send text")))
}

/// Fetches a file, reporting progress as `(received, total)` bytes.
pub async fn fetch_with_progress(
    url: &str,
    progress: impl Fn(f64, Option<f64>),
) -> Result<ArrayBuffer, AppError> {
    let response = get(url).await?;
    let read_error = |e: wasm_bindgen::JsValue| AppError::Network {
        url: url.to_owned(),
        detail: js_text(e),
    };
    let total = response
        .headers()
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|v| v.parse::<f64>().ok());
    let Some(body) = response.body() else {
        return Err(AppError::invalid(format!("{url} sent no body")));
    };
    let reader: web_sys::ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let mut chunks: Vec<Uint8Array> = Vec::new();
    let mut received = 0.0;
    loop {
        let step = JsFuture::from(reader.read()).await.map_err(read_error)?;
        if js_sys::Reflect::get(&step, &"done".into())
            .map(|d| d.is_truthy())
            .unwrap_or(true)
        {
            break;
        }
        let chunk: Uint8Array = js_sys::Reflect::get(&step, &"value".into())
            .map_err(read_error)?
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
