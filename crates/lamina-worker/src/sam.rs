//! The worker's segment-suggestion side: one loaded model, a few embeddings kept by handle, and the last
//! low-res mask of each handle for refinement. The logic is `lamina-sam`; this is the message glue.

use std::cell::RefCell;
use std::collections::HashMap;

use js_sys::{Object, Reflect, Uint8Array};
use lamina_core::rle::Rle;
use lamina_core::worker_protocol::{
    EncodeStarted, Encoded, ModelLoaded, SegmentRequest, Segmented, SegmentedAll, F16_FIELD,
};
use lamina_sam::auto::{self, AutoOptions};
use lamina_sam::{
    DecoderVariant, Embedding, ModelFromImage, ModelManifest, Prompts, SamEngine, WindowEmbedding,
};
use wasm_bindgen::prelude::*;

use crate::{found_instances, to_reply};

/// Embeddings kept in memory (the current image and the pre-encoded next ones); older ones are dropped
/// and come back from the IndexedDB cache.
const KEEP_EMBEDDINGS: usize = 4;

struct Held {
    handle: u32,
    embedding: Embedding,
    last_low_res: Option<Vec<f32>>,
}

#[derive(Default)]
struct Worker {
    engine: Option<SamEngine>,
    held: Vec<Held>,
    /// Images being encoded, by session (from the same counter as handles).
    encoding: HashMap<u32, Encoding>,
    next_handle: u32,
}

thread_local! {
    static WORKER: RefCell<Worker> = RefCell::new(Worker::default());
}

fn set(obj: &Object, key: &str, value: impl Into<JsValue>) {
    let _ = Reflect::set(obj, &JsValue::from_str(key), &value.into());
}

fn now_ms() -> f64 {
    js_sys::Date::now()
}

fn err(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

fn hold(w: &mut Worker, embedding: Embedding) -> u32 {
    w.next_handle += 1;
    let handle = w.next_handle;
    w.held.push(Held {
        handle,
        embedding,
        last_low_res: None,
    });
    if w.held.len() > KEEP_EMBEDDINGS {
        w.held.remove(0);
    }
    handle
}

/// The model's cache key: its id plus its encoder's hash, so re-exported weights never reuse old
/// embeddings, plus its window layout, since an embedding holds one window per layout entry.
fn model_key(m: &ModelManifest) -> String {
    let key = format!(
        "{}@{}",
        m.id,
        &m.encoder.sha256[..12.min(m.encoder.sha256.len())]
    );
    match m.windows {
        Some(w) => format!("{key}/w{}x{}", w.overlap, w.max),
        None => key,
    }
}

/// Loads a model (manifest JSON + file bytes, integrity-checked), with its box decoder when the manifest
/// lists one. Replaces any loaded model.
#[wasm_bindgen]
pub fn load_model(
    manifest_json: &str,
    encoder: &[u8],
    decoder: &[u8],
    box_decoder: Option<Vec<u8>>,
) -> Result<JsValue, JsError> {
    let manifest = ModelManifest::parse(manifest_json).map_err(err)?;
    let variant = manifest.preferred_decoder().variant;
    let wants_box = manifest.box_decoder().is_some(); // then `variant` is low_res (manifest check)
    let start = now_ms();
    let engine = SamEngine::load(manifest, encoder, variant, decoder).map_err(err)?;
    let engine = match (wants_box, box_decoder) {
        (true, Some(bytes)) => engine.with_box_decoder(&bytes).map_err(err)?,
        (true, None) => {
            return Err(JsError::new(
                "the manifest lists a box decoder, but its file was not given",
            ))
        }
        (false, _) => engine,
    };
    let warm_up_start = now_ms();
    engine.warm_up().map_err(err)?;
    let warm_up_ms = now_ms() - warm_up_start;
    let out = to_reply(&ModelLoaded {
        key: model_key(&engine.manifest),
        id: engine.manifest.id.clone(),
        family: engine.manifest.family.clone(),
        variant: if variant == DecoderVariant::LowRes {
            "low_res"
        } else {
            "orig_size"
        }
        .into(),
        box_decoder: engine.has_box_decoder(),
        load_ms: now_ms() - start,
        warm_up_ms,
    })?;
    WORKER.with_borrow_mut(|w| {
        w.engine = Some(engine);
        w.held.clear();
        w.encoding.clear();
    });
    Ok(out.into())
}

/// An image being encoded window by window (`encode_begin` / `encode_step` / `encode_end`).
struct Encoding {
    image: image::RgbImage,
    layout: Vec<ModelFromImage>,
    windows: Vec<WindowEmbedding>,
    encode_ms: f64,
}

/// Starts encoding an image file (PNG/JPEG bytes): returns `{session, windows}`. The caller runs
/// `encode_step(session)` until it returns true, yielding between calls so that other requests (a click
/// on the image already open) are not held up by a big image's pre-encode, then `encode_end`.
#[wasm_bindgen]
pub fn encode_begin(image_bytes: &[u8]) -> Result<JsValue, JsError> {
    let image = image::load_from_memory(image_bytes).map_err(err)?.to_rgb8();
    WORKER.with_borrow_mut(|w| {
        let engine = w
            .engine
            .as_ref()
            .ok_or_else(|| JsError::new("no model is loaded"))?;
        let layout = engine.layout(image.width(), image.height());
        w.next_handle += 1;
        let out = to_reply(&EncodeStarted {
            session: w.next_handle,
            windows: layout.len() as u32,
        })?;
        w.encoding.insert(
            w.next_handle,
            Encoding {
                image,
                layout,
                windows: Vec::new(),
                encode_ms: 0.0,
            },
        );
        Ok(out.into())
    })
}

/// Encodes the next window of a session; true once every window is done. A failed step ends the session.
#[wasm_bindgen]
pub fn encode_step(session: u32) -> Result<bool, JsError> {
    WORKER.with_borrow_mut(|w| {
        let Worker {
            engine, encoding, ..
        } = w;
        let gone = || JsError::new("the encode was cancelled: the model changed");
        let engine = engine.as_ref().ok_or_else(gone)?;
        let job = encoding.get_mut(&session).ok_or_else(gone)?;
        let Some(window) = job.layout.get(job.windows.len()).copied() else {
            return Ok(true);
        };
        let start = now_ms();
        match engine.encode_window(&job.image, &window) {
            Ok(done) => {
                job.windows.push(done);
                job.encode_ms += now_ms() - start;
                Ok(job.windows.len() == job.layout.len())
            }
            Err(e) => {
                encoding.remove(&session);
                Err(err(e))
            }
        }
    })
}

/// Finishes a session: a handle, the encoder time, the number of windows, and (`with_f16`) the embedding
/// as f16 bytes for the cache; a batch run that only segments the image once skips that copy.
#[wasm_bindgen]
pub fn encode_end(session: u32, with_f16: bool) -> Result<JsValue, JsError> {
    WORKER.with_borrow_mut(|w| {
        let job = w
            .encoding
            .remove(&session)
            .ok_or_else(|| JsError::new("the encode was cancelled: the model changed"))?;
        let shape = w
            .engine
            .as_ref()
            .ok_or_else(|| JsError::new("no model is loaded"))?
            .manifest
            .embedding_shape;
        if job.windows.len() != job.layout.len() {
            return Err(JsError::new("encode_end before every window was encoded"));
        }
        let embedding = Embedding {
            shape,
            windows: job.windows,
        };
        let f16 = with_f16.then(|| Uint8Array::from(embedding.to_f16_bytes().as_slice()));
        let windows = embedding.windows.len() as u32;
        let shape = embedding.shape;
        let handle = hold(w, embedding);
        let out = to_reply(&Encoded {
            handle,
            encode_ms: job.encode_ms,
            windows,
            shape,
        })?;
        if let Some(f16) = f16 {
            set(&out, F16_FIELD, f16);
        }
        Ok(out.into())
    })
}

/// Brings back a cached embedding; returns its handle.
#[wasm_bindgen]
pub fn restore_embedding(f16: &[u8], image_width: u32, image_height: u32) -> Result<u32, JsError> {
    WORKER.with_borrow_mut(|w| {
        let engine = w
            .engine
            .as_ref()
            .ok_or_else(|| JsError::new("no model is loaded"))?;
        let layout = engine.layout(image_width, image_height);
        let embedding = Embedding::from_f16_bytes(f16, engine.manifest.embedding_shape, &layout)
            .map_err(err)?;
        Ok(hold(w, embedding))
    })
}

/// The engine's prompts (image pixels) of a request, refining `mask_input_low_res` if given.
fn prompts_of(request: &SegmentRequest, mask_input_low_res: Option<Vec<f32>>) -> Prompts {
    Prompts {
        points_image: request
            .points
            .iter()
            .map(|&(x, y, positive)| ([x, y], positive))
            .collect(),
        box_image: request.box_image,
        mask_input_low_res,
    }
}

/// Decodes prompts on an embedding: the chosen mask as COCO compressed RLE in image pixels, with the
/// candidates' predicted IoU and stability.
#[wasm_bindgen]
pub fn decode_prompts(handle: u32, prompts_json: &str) -> Result<JsValue, JsError> {
    let msg: SegmentRequest = serde_json::from_str(prompts_json)
        .map_err(|e| JsError::new(&format!("bad prompts: {e}")))?;
    WORKER.with_borrow_mut(|w| {
        let Worker { engine, held, .. } = w;
        let engine = engine
            .as_ref()
            .ok_or_else(|| JsError::new("no model is loaded"))?;
        let held = held
            .iter_mut()
            .find(|h| h.handle == handle)
            .ok_or_else(|| {
                JsError::new(
                    "that embedding is no longer in the worker; encode or restore it again",
                )
            })?;
        let refined = if msg.refine {
            held.last_low_res.clone()
        } else {
            None
        };
        let prompts = prompts_of(&msg, refined);
        let start = now_ms();
        let decoded = engine.decode(&held.embedding, &prompts).map_err(err)?;
        let best = &decoded.candidates[decoded.best];
        // The mask over the decoded window, cut to the object: on a large image the answer costs the
        // object's size, not the image's.
        let window_mask = engine.mask_in_window(best, &decoded.transform);
        let [window_x, window_y, ..] = decoded.transform.window_image;
        let [x, y, w, h] = window_mask.bbox();
        let object = Rle::from_mask(&window_mask.crop([x, y, w, h]));
        let decode_ms = now_ms() - start;
        if msg.remember {
            held.last_low_res = Some(best.low_res_logits.clone());
        }
        let bbox = if w == 0 {
            [0, 0, 0, 0]
        } else {
            [window_x + x, window_y + y, w, h]
        };
        let reply = to_reply(&Segmented {
            area: object.area(),
            bbox,
            rle: object.compress(),
            iou: best.iou_prediction,
            stability: best.stability,
            best: decoded.best as u32,
            ious: decoded
                .candidates
                .iter()
                .map(|c| c.iou_prediction)
                .collect(),
            decode_ms,
        })?;
        Ok(reply.into())
    })
}

/// `performance.now()` where the scope has it (sub-millisecond, unlike `Date.now()`).
fn precise_now_ms() -> f64 {
    let global = js_sys::global();
    Reflect::get(&global, &JsValue::from_str("performance"))
        .ok()
        .and_then(|perf| {
            let now: js_sys::Function = Reflect::get(&perf, &JsValue::from_str("now"))
                .ok()?
                .dyn_into()
                .ok()?;
            now.call0(&perf).ok()?.as_f64()
        })
        .unwrap_or_else(now_ms)
}

/// The loaded model and a held embedding, or which of them is missing.
fn loaded(w: &Worker, handle: u32) -> Result<(&SamEngine, &Held), JsError> {
    let engine = w
        .engine
        .as_ref()
        .ok_or_else(|| JsError::new("no model is loaded"))?;
    let held = w
        .held
        .iter()
        .find(|h| h.handle == handle)
        .ok_or_else(|| JsError::new("that embedding is no longer in the worker"))?;
    Ok((engine, held))
}

/// Times `runs` decodes of these prompts per graph node (slowest first): where the worker's decode
/// time goes, for `bench/browser_sam.mjs --profile`.
#[wasm_bindgen]
pub fn profile_decode(handle: u32, prompts_json: &str, runs: u32) -> Result<JsValue, JsError> {
    let msg: SegmentRequest = serde_json::from_str(prompts_json)
        .map_err(|e| JsError::new(&format!("bad prompts: {e}")))?;
    WORKER.with_borrow(|w| {
        let (engine, held) = loaded(w, handle)?;
        let prompts = prompts_of(&msg, None);
        let rows = engine
            .profile_decode(&held.embedding, &prompts, runs as usize, &precise_now_ms)
            .map_err(err)?;
        serde_wasm_bindgen::to_value(&rows).map_err(err)
    })
}

/// Every object of an embedded image (automatic mode with the user's thresholds), none sharing a pixel.
#[wasm_bindgen]
pub fn segment_all(handle: u32, settings_json: &str) -> Result<JsValue, JsError> {
    let settings = crate::prelabel_settings(settings_json)?;
    WORKER.with_borrow(|w| {
        let (engine, held) = loaded(w, handle)?;
        let options = AutoOptions::with_settings(&engine.manifest.family, &settings);
        let start = now_ms();
        let mut seeds = 0;
        let found = auto::segment_all(engine, &held.embedding, &options, |_, total| seeds = total)
            .map_err(err)?;
        let instances = found_instances(&found);
        let reply = to_reply(&SegmentedAll {
            instances,
            seeds: seeds as u32,
            ms: now_ms() - start,
        })?;
        Ok(reply.into())
    })
}

/// Frees an embedding the UI no longer needs.
#[wasm_bindgen]
pub fn drop_embedding(handle: u32) {
    WORKER.with_borrow_mut(|w| w.held.retain(|h| h.handle != handle));
}
