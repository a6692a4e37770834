//! Labels leave the device only as files the user saves: the JSON label bundle and COCO.

use lamina_core::bundle::{Bundle, BundleProject};
use lamina_core::coco::{bundle_to_coco, CocoOptions};
use wasm_bindgen::JsCast;
use web_sys::{Blob, BlobPropertyBag, HtmlAnchorElement};

use crate::import::js_text;
use crate::state::{now, store, AppState};
use crate::store::StoreError;

/// The whole current project as a bundle, read from storage (not from the screen).
pub async fn current_bundle(state: AppState) -> Result<Bundle, StoreError> {
    let project = state
        .project_now()
        .ok_or_else(|| StoreError::Idb("no project is open".into()))?;
    let store = store()?;
    let records = store.assets(&project.id).await?;
    let mut bundle = Bundle::new(
        BundleProject {
            id: project.id.clone(),
            name: project.name.clone(),
        },
        project.ontology,
    );
    bundle.exported = Some(now());
    for record in records {
        bundle
            .instances
            .extend(store.instances(&record.asset.id).await?);
        bundle.assets.push(record.asset);
    }
    Ok(bundle)
}

fn file_stem(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    s.trim_matches('_').to_owned()
}

/// Hands `text` to the browser as a download named `file_name`.
pub fn download(file_name: &str, text: &str) -> Result<(), String> {
    let parts = js_sys::Array::of1(&text.into());
    let options = BlobPropertyBag::new();
    options.set_type("application/json");
    let blob = Blob::new_with_str_sequence_and_options(&parts, &options).map_err(js_text)?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(js_text)?;
    let document = web_sys::window()
        .and_then(|w| w.document())
        .ok_or("no document")?;
    let a: HtmlAnchorElement = document
        .create_element("a")
        .map_err(js_text)?
        .unchecked_into();
    a.set_href(&url);
    a.set_download(file_name);
    a.click();
    // The click has queued the download; the URL can go once this task ends.
    let _ = web_sys::Url::revoke_object_url(&url);
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ExportKind {
    Bundle,
    CocoRle,
    CocoPolygons,
}

pub async fn export(state: AppState, kind: ExportKind) {
    let bundle = match current_bundle(state).await {
        Ok(b) => b,
        Err(e) => return state.error(format!("Export failed: {e}")),
    };
    let stem = file_stem(&bundle.project.name);
    let result = match kind {
        ExportKind::Bundle => download(&format!("{stem}.bundle.json"), &bundle.to_json_pretty()),
        ExportKind::CocoRle | ExportKind::CocoPolygons => {
            let options = CocoOptions {
                polygons: kind == ExportKind::CocoPolygons,
                ..CocoOptions::default()
            };
            match bundle_to_coco(&bundle, &options) {
                Ok(coco) => {
                    let suffix = if options.polygons {
                        "coco-polygons"
                    } else {
                        "coco"
                    };
                    download(&format!("{stem}.{suffix}.json"), &coco.to_json())
                }
                Err(e) => Err(e.to_string()),
            }
        }
    };
    match result {
        Ok(()) => state.info(format!(
            "Exported {} labels on {} images",
            bundle.instances.len(),
            bundle.assets.len()
        )),
        Err(e) => state.error(format!("Export failed: {e}")),
    }
}
