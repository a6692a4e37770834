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
