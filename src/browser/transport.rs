//! The browser's transport for the sync protocol: `fetch`, with a timeout so a server that stops
//! answering surfaces as an error (and a retry) rather than a push that never ends.

use js_sys::{Date, Uint8Array};
use lamina_sync::driver::Transport;
use lamina_sync::endpoint::HttpResponse;
use lamina_sync::{HttpRequest, SyncError};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, Headers, RequestInit, Response};

use super::js_text;

/// Long enough for a large fragment on a slow link; short enough that a hung server is noticed.
const TIMEOUT_MS: u32 = 60_000;

pub struct Fetch;

/// The answer's body, refused as soon as it passes the request's limit: by its declared length before
/// reading, else while streaming it, so a hostile server cannot fill the tab's memory.
async fn read_limited(response: &Response, request: &HttpRequest) -> Result<Vec<u8>, SyncError> {
    let offline = |why: String| SyncError::Offline(format!("{}: {why}", request.what));
    let limit = request.max_response_bytes;
    let too_large = || SyncError::TooLarge {
        what: request.what.clone(),
        limit,
    };
    let declared = response
        .headers()
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let Some(stream) = response.body() else {
        return Ok(Vec::new());
    };
    let reader: web_sys::ReadableStreamDefaultReader = stream
        .get_reader()
        .dyn_into()
        .map_err(|_| offline("the answer cannot be read".into()))?;
    let mut body = Vec::new();
    loop {
        let chunk = JsFuture::from(reader.read())
            .await
            .map_err(|e| offline(js_text(e)))?;
        let done = js_sys::Reflect::get(&chunk, &"done".into())
            .map(|d| d.is_truthy())
            .unwrap_or(true);
        if done {
            return Ok(body);
        }
        let value =
            js_sys::Reflect::get(&chunk, &"value".into()).map_err(|e| offline(js_text(e)))?;
        let bytes = Uint8Array::new(&value);
        if body.len() as u64 + u64::from(bytes.length()) > limit {
            let _ = reader.cancel();
            return Err(too_large());
        }
        body.extend(bytes.to_vec());
    }
}

impl Transport for Fetch {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, SyncError> {
        let offline = |why: String| SyncError::Offline(format!("{}: {why}", request.what));
        let window = web_sys::window().ok_or_else(|| offline("no window".into()))?;
        let init = RequestInit::new();
        init.set_method(request.method);
        let headers = Headers::new().map_err(|e| offline(js_text(e)))?;
        for (k, v) in &request.headers {
            headers.append(k, v).map_err(|e| offline(js_text(e)))?;
        }
        init.set_headers(&headers);
        if let Some(body) = &request.body {
            init.set_body(&Uint8Array::from(body.as_slice()));
        }
        // Presigned URLs and fragments must never come from the HTTP cache.
        init.set_cache(web_sys::RequestCache::NoStore);
        let abort = AbortController::new().ok();
        if let Some(a) = &abort {
            init.set_signal(Some(&a.signal()));
        }
        let timer = abort
            .clone()
            .map(|a| gloo_timers::callback::Timeout::new(TIMEOUT_MS, move || a.abort()));
        let answer = JsFuture::from(window.fetch_with_str_and_init(&request.url, &init)).await;
        let response: Response = answer
            .map_err(|e| offline(js_text(e)))?
            .dyn_into()
            .map_err(|_| offline("not a response".into()))?;
        let status = response.status();
        let body = read_limited(&response, &request).await?;
        drop(timer);
        Ok(HttpResponse { status, body })
    }

    fn now_ms(&self) -> i64 {
        Date::now() as i64
    }
}
