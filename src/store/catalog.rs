//! The catalog's stores (schema v6): `thumbs` holds, per image, the grid's JPEG thumbnail and the colour
//! embedding find-similar ranks by (both made in the worker from the stored image), by asset id, index
//! `project`. Slices live in `settings` under `slices/<project id>`.

use idb::{Database, ObjectStoreParams};
use lamina_core::catalog::Slice;
use serde::{Deserialize, Serialize};
use wasm_bindgen::JsValue;
use web_sys::Blob;

use super::{add_index, to_js, Store};
use crate::error::AppError;

pub(crate) const THUMBS: &str = "thumbs";
/// The Blob beside a [`ThumbRecord`]'s fields (serde leaves it alone).
const THUMB_BLOB: &str = "thumb";

pub(super) fn migrate_to_v6(db: &Database) -> Result<(), idb::Error> {
    let thumbs = db.create_object_store(THUMBS, ObjectStoreParams::new())?;
    add_index(&thumbs, "project", "project_id")?;
    Ok(())
}

/// An image's catalog data as stored, without its thumbnail Blob.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ThumbRecord {
    pub asset_id: String,
    pub project_id: String,
    /// `lamina_core::similar::colour_histogram` of the image.
    pub embedding: Vec<f32>,
}

fn slices_key(project_id: &str) -> String {
    format!("slices/{project_id}")
}

impl Store {
    /// The image's thumbnail, if it was made.
    pub async fn thumb(&self, asset_id: &str) -> Result<Option<Blob>, AppError> {
        let Some(value) = self.get_value(THUMBS, asset_id).await? else {
            return Ok(None);
        };
        let blob = js_sys::Reflect::get(&value, &JsValue::from_str(THUMB_BLOB)).map_err(|_| {
            AppError::Corrupt(format!("the thumbnail of {asset_id} has no picture"))
        })?;
        Ok(wasm_bindgen::JsCast::dyn_into::<Blob>(blob).ok())
    }

    pub async fn put_thumb(&self, record: &ThumbRecord, blob: &Blob) -> Result<(), AppError> {
        let value = to_js(record)?;
        js_sys::Reflect::set(&value, &JsValue::from_str(THUMB_BLOB), blob)
            .map_err(|_| AppError::Storage("the thumbnail could not be stored".into()))?;
        let key = JsValue::from_str(&record.asset_id);
        self.write(&[THUMBS], |tx| {
            tx.object_store(THUMBS)?.put(&value, Some(&key))?;
            Ok(())
        })
        .await
    }

    /// The find-similar embedding of every image of the project that has one.
    pub async fn embeddings(&self, project_id: &str) -> Result<Vec<ThumbRecord>, AppError> {
        self.get_all(THUMBS, Some(("project", project_id))).await
    }

    pub async fn slices(&self, project_id: &str) -> Result<Vec<Slice>, AppError> {
        match self.setting(&slices_key(project_id)).await? {
            None => Ok(Vec::new()),
            Some(text) => serde_json::from_str(&text).map_err(|e| {
                AppError::Corrupt(format!("the saved selections cannot be read: {e}"))
            }),
        }
    }

    pub async fn put_slices(&self, project_id: &str, slices: &[Slice]) -> Result<(), AppError> {
        let text = serde_json::to_string(slices)
            .map_err(|e| AppError::Corrupt(format!("the selections cannot be saved: {e}")))?;
        self.put_setting(&slices_key(project_id), &text).await
    }
}
