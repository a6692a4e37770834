//! Files the user picks or drops: reading them, and walking dropped folders.

use js_sys::Promise;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Blob, FileSystemDirectoryEntry, FileSystemEntry, FileSystemFileEntry};

use super::{js_text, promise};
use crate::error::AppError;

/// The text of a picked file (a manifest, a bundle). A file that went away or changed on disk after it
/// was picked cannot be read: that is an error naming it.
pub async fn read_text(file: &web_sys::File) -> Result<String, AppError> {
    let what = || format!("read {}", file.name());
    JsFuture::from(file.text())
        .await
        .map_err(|e| AppError::browser(what(), js_text(e)))?
        .as_string()
        .ok_or_else(|| AppError::browser(what(), "it is not text"))
}

/// The bytes of a blob.
pub async fn array_buffer(blob: &Blob, name: &str) -> Result<js_sys::ArrayBuffer, AppError> {
    promise(blob.array_buffer(), &format!("read {name}")).await
}

/// The file behind a dropped entry.
pub async fn entry_file(entry: &FileSystemFileEntry) -> Result<web_sys::File, AppError> {
    let p = Promise::new(&mut |resolve, reject| {
        entry.file_with_callback_and_callback(&resolve, &reject)
    });
    promise(p, &format!("read {}", entry.full_path())).await
}

/// All children of a dropped folder (readEntries returns them in batches until an empty one).
pub async fn read_directory(
    dir: &FileSystemDirectoryEntry,
) -> Result<Vec<FileSystemEntry>, AppError> {
    let reader = dir.create_reader();
    let mut out = Vec::new();
    loop {
        let p = Promise::new(&mut |resolve, reject| {
            if let Err(e) = reader.read_entries_with_callback_and_callback(&resolve, &reject) {
                let _ = reject.call1(&JsValue::NULL, &e);
            }
        });
        let batch: js_sys::Array = promise(p, &format!("read folder {}", dir.full_path())).await?;
        if batch.length() == 0 {
            return Ok(out);
        }
        out.extend(
            batch
                .iter()
                .filter_map(|v| v.dyn_into::<FileSystemEntry>().ok()),
        );
    }
}

/// A picked picture's pixels as 8-bit RGB, decoded by the browser exactly as stored (no colour-space
/// conversion, no premultiplied alpha), so a mask's colours compare equal to the colours its file names.
pub async fn decode_rgb(file: &web_sys::File) -> Result<(u32, u32, Vec<u8>), AppError> {
    let what = format!("decode {}", file.name());
    let window = web_sys::window().ok_or_else(|| AppError::browser(what.clone(), "no window"))?;
    let options = web_sys::ImageBitmapOptions::new();
    options.set_color_space_conversion(web_sys::ColorSpaceConversion::None);
    options.set_premultiply_alpha(web_sys::PremultiplyAlpha::None);
    let started = window
        .create_image_bitmap_with_blob_and_image_bitmap_options(file, &options)
        .map_err(|e| AppError::browser(what.clone(), js_text(e)))?;
    let bitmap: web_sys::ImageBitmap = promise(started, &what).await?;
    let (width, height) = (bitmap.width(), bitmap.height());
    let canvas: web_sys::HtmlCanvasElement = window
        .document()
        .and_then(|d| d.create_element("canvas").ok())
        .and_then(|c| c.dyn_into().ok())
        .ok_or_else(|| AppError::browser(what.clone(), "no canvas"))?;
    canvas.set_width(width);
    canvas.set_height(height);
    let context: web_sys::CanvasRenderingContext2d = canvas
        .get_context("2d")
        .ok()
        .flatten()
        .and_then(|c| c.dyn_into().ok())
        .ok_or_else(|| AppError::browser(what.clone(), "no 2D canvas"))?;
    context
        .draw_image_with_image_bitmap(&bitmap, 0.0, 0.0)
        .map_err(|e| AppError::browser(what.clone(), js_text(e)))?;
    let rgba = context
        .get_image_data(0.0, 0.0, f64::from(width), f64::from(height))
        .map_err(|e| AppError::browser(what.clone(), js_text(e)))?
        .data();
    let rgb = rgba
        .chunks_exact(4)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect();
    Ok((width, height, rgb))
}

/// Hex SHA-256 of a buffer, by the browser's own digest (asynchronous, off the UI thread's wasm).
pub async fn sha256_hex(bytes: &js_sys::ArrayBuffer) -> Result<String, AppError> {
    let what = "hash the file";
    let subtle = web_sys::window()
        .ok_or_else(|| AppError::browser(what, "no window"))?
        .crypto()
        .map_err(|e| AppError::browser(what, js_text(e)))?
        .subtle();
    let digest = subtle
        .digest_with_str_and_buffer_source("SHA-256", bytes)
        .map_err(|e| AppError::browser(what, js_text(e)))?;
    let digest: js_sys::ArrayBuffer = promise(digest, what).await?;
    Ok(js_sys::Uint8Array::new(&digest)
        .to_vec()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}
