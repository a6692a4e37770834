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
        let body = match response.array_buffer() {
            Ok(p) => JsFuture::from(p)
                .await
                .map(|b| Uint8Array::new(&b).to_vec())
                .map_err(|e| offline(js_text(e)))?,
            Err(e) => return Err(offline(js_text(e))),
        };
        drop(timer);
        Ok(HttpResponse { status, body })
    }

    fn now_ms(&self) -> i64 {
        Date::now() as i64
    }
}
