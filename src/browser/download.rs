//! Files leave the app as downloads the browser saves.

use wasm_bindgen::JsCast;
use web_sys::{Blob, BlobPropertyBag, HtmlAnchorElement};

use super::js_text;
use crate::error::AppError;

/// Hands `text` to the browser as a download named `file_name`.
pub fn download(file_name: &str, text: &str) -> Result<(), AppError> {
    let failed = |e| AppError::browser(format!("save {file_name}"), js_text(e));
    let parts = js_sys::Array::of1(&text.into());
    let options = BlobPropertyBag::new();
    options.set_type("application/json");
    let blob = Blob::new_with_str_sequence_and_options(&parts, &options).map_err(failed)?;
    download_blob(file_name, &blob)
}

/// Hands `bytes` (a zip) to the browser as a download named `file_name`.
pub fn download_bytes(file_name: &str, bytes: &[u8], mime: &str) -> Result<(), AppError> {
    let failed = |e| AppError::browser(format!("save {file_name}"), js_text(e));
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(bytes));
    let options = BlobPropertyBag::new();
    options.set_type(mime);
    let blob = Blob::new_with_u8_array_sequence_and_options(&parts, &options).map_err(failed)?;
    download_blob(file_name, &blob)
}

fn download_blob(file_name: &str, blob: &Blob) -> Result<(), AppError> {
    let failed = |e| AppError::browser(format!("save {file_name}"), js_text(e));
    let url = web_sys::Url::create_object_url_with_blob(blob).map_err(failed)?;
    let document = web_sys::window()
        .and_then(|w| w.document())
        .ok_or_else(|| AppError::browser(format!("save {file_name}"), "no document"))?;
    let a: HtmlAnchorElement = document
        .create_element("a")
        .map_err(failed)?
        .unchecked_into();
    a.set_href(&url);
    a.set_download(file_name);
    a.click();
    // The click has queued the download; the URL can go once this task ends.
    let _ = web_sys::Url::revoke_object_url(&url);
    Ok(())
}
