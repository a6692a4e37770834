//! The worker's side of a user's YOLO-seg model (pre-label runs only): load it, then find every object
//! of an image file. The logic is `lamina_sam::yolo`; this is the message glue.

use std::cell::RefCell;

use lamina_core::worker_protocol::{SegmentedAll, YoloLoaded};
use lamina_sam::auto::AutoOptions;
use lamina_sam::yolo::YoloSeg;
use wasm_bindgen::prelude::*;

use crate::{found_instances, to_reply};

thread_local! {
    static MODEL: RefCell<Option<YoloSeg>> = const { RefCell::new(None) };
}

fn err(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

/// Loads (and checks) a YOLO-seg export; replaces one loaded before.
#[wasm_bindgen]
pub fn load_yolo(file_name: &str, onnx: &[u8]) -> Result<JsValue, JsError> {
    let start = js_sys::Date::now();
    let model = YoloSeg::load(file_name, onnx).map_err(err)?;
    let reply = to_reply(&YoloLoaded {
        classes: model.class_names.clone(),
        input: model.input,
        load_ms: js_sys::Date::now() - start,
    })?;
    MODEL.with_borrow_mut(|m| *m = Some(model));
    Ok(reply.into())
}

/// Every object of an image file with the loaded YOLO-seg model: masks in image pixels, none sharing a
/// pixel, each with its class index and score.
#[wasm_bindgen]
pub fn prelabel_yolo(image_bytes: &[u8], settings_json: &str) -> Result<JsValue, JsError> {
    let settings = crate::prelabel_settings(settings_json)?;
    let rgb = image::load_from_memory(image_bytes).map_err(err)?.to_rgb8();
    MODEL.with_borrow(|m| {
        let model = m
            .as_ref()
            .ok_or_else(|| JsError::new("no YOLO-seg model is loaded in this worker"))?;
        let start = js_sys::Date::now();
        let options = AutoOptions::with_settings(lamina_core::prelabel::YOLO_FAMILY, &settings);
        let found = model.segment_all(&rgb, &options).map_err(err)?;
        let instances = found_instances(&found);
        let reply = to_reply(&SegmentedAll {
            instances,
            seeds: 0,
            ms: js_sys::Date::now() - start,
        })?;
        Ok(reply.into())
    })
}
