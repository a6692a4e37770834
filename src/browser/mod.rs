//! The bottom layer: small helpers over browser APIs, with errors turned into [`AppError`]. Nothing here
//! knows about the app's state, storage or features.

pub mod download;
pub mod fetch;
pub mod files;
pub mod resize;
pub mod tabs;
pub mod transport;

use js_sys::Promise;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use crate::error::AppError;

/// The text of a JS error value: its `message`, or the value itself.
pub fn js_text(e: JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| format!("{e:?}"))
}

/// Awaits a promise and checks what it resolves to; `what` says what the app was doing, for the error.
pub async fn promise<T: JsCast>(p: Promise, what: &str) -> Result<T, AppError> {
    JsFuture::from(p)
        .await
        .map_err(|e| AppError::browser(what, js_text(e)))?
        .dyn_into::<T>()
        .map_err(|_| AppError::browser(what, "unexpected value from the browser"))
}

/// The current time as an ISO 8601 string (UTC), for provenance and fragments.
pub fn now() -> String {
    String::from(js_sys::Date::new_0().to_iso_string())
}

/// Milliseconds on the page's high-resolution clock (the clock of event time stamps).
pub fn now_ms() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map(|p| p.now())
        .unwrap_or(0.0)
}

/// A new random id (a UUID where the browser has `crypto.randomUUID`).
pub fn new_id() -> String {
    web_sys::window()
        .and_then(|w| w.crypto().ok())
        .map(|c| c.random_uuid())
        .unwrap_or_else(|| format!("{:x}", (js_sys::Math::random() * 1e16) as u64))
}

/// The page's own URL, the base of relative URLs the user gives.
pub fn page_url() -> String {
    web_sys::window()
        .and_then(|w| w.location().href().ok())
        .unwrap_or_default()
}

/// `relative` resolved against `base` (a page or manifest URL); as given when it cannot be.
pub fn resolve_url(relative: &str, base: &str) -> String {
    web_sys::Url::new_with_base(relative, base)
        .map(|u| u.href())
        .unwrap_or_else(|_| relative.to_owned())
}
