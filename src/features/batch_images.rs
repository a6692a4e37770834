//! The images of a synced batch, fetched from the team's endpoint (or their URL) when first opened and
//! checked against the batch manifest's sha256.

use lamina_sync::batch::ImageLocation;
use lamina_sync::{driver, SyncError};
use leptos::prelude::*;

use crate::browser::transport::Fetch;
use crate::error::AppError;
use crate::state::AppState;
use crate::store;
use crate::store::AssetRecord;
use crate::worker_client;

/// Fetches the image of a batch asset that has none yet, checks its sha256 against the manifest's, and
/// stores it with its real size. Returns the updated record.
pub async fn fetch_image(state: AppState, record: &AssetRecord) -> Result<AssetRecord, AppError> {
    let location = record
        .remote
        .clone()
        .ok_or_else(|| AppError::invalid("the image has no source in the batch manifest"))?;
    let link = state
        .sync
        .link
        .get_untracked()
        .filter(|l| l.project_id == record.project_id);
    let request = match (&location, &link) {
        (ImageLocation::Key(key), Some(link)) => {
            link.endpoint.get(key, js_sys::Date::now() as i64)?
        }
        (ImageLocation::Key(key), None) => {
            return Err(AppError::invalid(format!(
                "{key} is on the batch's endpoint; connect to it first"
            )))
        }
        (ImageLocation::Url(url), _) => lamina_sync::HttpRequest {
            method: "GET",
            url: url.clone(),
            headers: vec![],
            body: None,
            what: format!("GET {url}"),
            max_response_bytes: lamina_sync::endpoint::MAX_IMAGE_BYTES,
        },
    };
    let body = driver::send_checked(&Fetch, request)
        .await
        .map_err(|e| match e {
            SyncError::NotFound { what } => AppError::invalid(format!(
                "the image is not on the server (HTTP 404 on {what}): the batch manifest lists it, but it was not uploaded or was removed"
            )),
            other => AppError::Sync(other),
        })?
        .body;
    // The worker takes (detaches) the buffer it is given: hand it a copy and keep the body for the blob.
    let for_worker = js_sys::Uint8Array::from(body.as_slice());
    let decoded = worker_client::decode_image(for_worker.buffer()).await?;
    let bytes = js_sys::Uint8Array::from(body.as_slice());
    if !record.asset.sha256.is_empty() && record.asset.sha256 != decoded.info.sha256 {
        return Err(AppError::invalid(format!(
            "its sha256 is {}…, not the {}… the batch manifest gives; the image was not used",
            &decoded.info.sha256[..12],
            &record.asset.sha256[..12.min(record.asset.sha256.len())]
        )));
    }
    let blob = decoded.blob(&bytes)?;
    let mut updated = record.clone();
    updated.asset.sha256 = decoded.info.sha256.clone();
    updated.asset.width = decoded.info.width;
    updated.asset.height = decoded.info.height;
    store::shared()?.add_asset(&updated, &blob).await?;
    Ok(updated)
}
