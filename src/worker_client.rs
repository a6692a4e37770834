//! The UI thread's side of the worker (`public/worker.js` + the `lamina-worker` wasm): requests go out
//! with an id and the file's bytes transferred (not copied); replies resolve the matching future.

use std::cell::RefCell;
use std::collections::HashMap;

use futures_channel::oneshot;
use js_sys::{Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{MessageEvent, Worker, WorkerOptions, WorkerType};

/// What the worker learnt about an image.
#[derive(Clone, Debug)]
pub struct DecodedImage {
    pub width: u32,
    pub height: u32,
    /// Type of the blob to store and show (PNG for converted TIFFs).
    pub mime: String,
    pub sha256: String,
    /// Present when the original cannot be shown by the browser and was converted.
    pub display: Option<Uint8Array>,
}

type Reply = Result<JsValue, String>;

/// Receives the worker's progress events: `(stage, done)`.
type ProgressFn = Box<dyn Fn(String, bool)>;

struct WorkerHandle {
    worker: Worker,
    next_id: u32,
    pending: HashMap<u32, oneshot::Sender<Reply>>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_error: Closure<dyn FnMut(web_sys::Event)>,
}

thread_local! {
    static WORKER: RefCell<Option<WorkerHandle>> = const { RefCell::new(None) };
    static PROGRESS: RefCell<Option<ProgressFn>> = const { RefCell::new(None) };
}

/// Where the worker's progress events go (the status bar).
pub fn on_progress(f: impl Fn(String, bool) + 'static) {
    PROGRESS.with_borrow_mut(|p| *p = Some(Box::new(f)));
}

fn get(obj: &JsValue, key: &str) -> JsValue {
    Reflect::get(obj, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

fn on_reply(event: MessageEvent) {
    let data = event.data();
    if get(&data, "event").as_string().as_deref() == Some("progress") {
        let stage = get(&data, "stage").as_string().unwrap_or_default();
        let done = get(&data, "done").is_truthy();
        PROGRESS.with_borrow(|p| {
            if let Some(f) = p {
                f(stage, done)
            }
        });
        return;
    }
    let Some(id) = get(&data, "id").as_f64() else {
        return;
    };
    let reply = if get(&data, "ok").is_truthy() {
        Ok(get(&data, "result"))
    } else if get(&data, "cancelled").is_truthy() {
        Err(CANCELLED.to_owned())
    } else {
        Err(get(&data, "error")
            .as_string()
            .unwrap_or_else(|| "the worker failed".into()))
    };
    let sender =
        WORKER.with_borrow_mut(|w| w.as_mut().and_then(|w| w.pending.remove(&(id as u32))));
    if let Some(sender) = sender {
        let _ = sender.send(reply);
    }
}

/// A worker that dies (e.g. its wasm failed to load) fails every waiting request with the reason and is
/// started afresh on the next one.
fn on_worker_error(event: web_sys::Event) {
    let message = get(&event, "message")
        .as_string()
        .unwrap_or_else(|| "the decoding worker stopped".into());
    if let Some(handle) = WORKER.with_borrow_mut(Option::take) {
        handle.worker.terminate();
        for (_, sender) in handle.pending {
            let _ = sender.send(Err(message.clone()));
        }
    }
}

fn start() -> Result<WorkerHandle, String> {
    let options = WorkerOptions::new();
    options.set_type(WorkerType::Module);
    let worker = Worker::new_with_options("worker.js", &options)
        .map_err(|e| format!("cannot start the worker: {e:?}"))?;
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(on_reply);
    let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(on_worker_error);
    worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    Ok(WorkerHandle {
        worker,
        next_id: 1,
        pending: HashMap::new(),
        _on_message: on_message,
        _on_error: on_error,
    })
}

/// The error text of a request a newer one superseded (latest-wins segment requests).
pub const CANCELLED: &str = "cancelled";

/// Sends `{id, kind, ...fields}` with `transfer` moved, not copied, and waits for the reply.
async fn request(kind: &str, fields: &[(&str, JsValue)], transfer: &[&JsValue]) -> Reply {
    let (tx, rx) = oneshot::channel();
    WORKER.with_borrow_mut(|slot| -> Result<(), String> {
        if slot.is_none() {
            *slot = Some(start()?);
        }
        let Some(handle) = slot.as_mut() else {
            return Err("no worker".into());
        };
        let id = handle.next_id;
        handle.next_id += 1;
        let message = Object::new();
        let _ = Reflect::set(&message, &"id".into(), &id.into());
        let _ = Reflect::set(&message, &"kind".into(), &kind.into());
        for (k, v) in fields {
            let _ = Reflect::set(&message, &JsValue::from_str(k), v);
        }
        let transfer: js_sys::Array = transfer.iter().copied().collect();
        handle
            .worker
            .post_message_with_transfer(&message, &transfer)
            .map_err(|e| format!("cannot reach the worker: {e:?}"))?;
        handle.pending.insert(id, tx);
        Ok(())
    })?;
    rx.await
        .unwrap_or_else(|_| Err("the worker stopped before answering".into()))
}

/// Checks, decodes and hashes an image in the worker.
pub async fn decode_image(bytes: js_sys::ArrayBuffer) -> Result<DecodedImage, String> {
    let r = request("inspect", &[("bytes", bytes.clone().into())], &[&bytes]).await?;
    let num = |k: &str| get(&r, k).as_f64().unwrap_or(0.0) as u32;
    let text = |k: &str| get(&r, k).as_string().unwrap_or_default();
    Ok(DecodedImage {
        width: num("width"),
        height: num("height"),
        mime: text("mime"),
        sha256: text("sha256"),
        display: get(&r, "display").dyn_into::<Uint8Array>().ok(),
    })
}

/// A model the worker loaded.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadedModel {
    /// Cache key: model id + encoder hash.
    pub key: String,
    pub id: String,
    pub load_ms: f64,
}

pub async fn load_model(manifest_json: &str, files: &ModelFiles) -> Result<LoadedModel, String> {
    let mut fields = vec![
        ("manifest", JsValue::from_str(manifest_json)),
        ("encoder", files.encoder.clone().into()),
        ("decoder", files.decoder.clone().into()),
    ];
    let mut transfer: Vec<&JsValue> = vec![&files.encoder, &files.decoder];
    if let Some(b) = &files.box_decoder {
        fields.push(("box_decoder", b.clone().into()));
        transfer.push(b);
    }
    let r = request("load_model", &fields, &transfer).await?;
    Ok(LoadedModel {
        key: get(&r, "key").as_string().unwrap_or_default(),
        id: get(&r, "id").as_string().unwrap_or_default(),
        load_ms: get(&r, "load_ms").as_f64().unwrap_or(0.0),
    })
}

/// A model's files, integrity-checked: the encoder, the decoder, and the decoder for prompts with a box
/// when the manifest lists one.
pub struct ModelFiles {
    pub encoder: js_sys::ArrayBuffer,
    pub decoder: js_sys::ArrayBuffer,
    pub box_decoder: Option<js_sys::ArrayBuffer>,
}

pub struct Encoded {
    pub handle: u32,
    pub encode_ms: f64,
    /// The embedding in half precision, for the cache.
    pub f16: Uint8Array,
}

pub async fn encode(image_bytes: js_sys::ArrayBuffer) -> Result<Encoded, String> {
    let r = request(
        "encode",
        &[("bytes", image_bytes.clone().into())],
        &[&image_bytes],
    )
    .await?;
    Ok(Encoded {
        handle: get(&r, "handle").as_f64().unwrap_or(0.0) as u32,
        encode_ms: get(&r, "encode_ms").as_f64().unwrap_or(0.0),
        f16: get(&r, "f16")
            .dyn_into::<Uint8Array>()
            .map_err(|_| "the worker sent no embedding".to_string())?,
    })
}

pub async fn restore(f16: &Uint8Array, width: u32, height: u32) -> Result<u32, String> {
    let fields = [
        ("f16", f16.clone().into()),
        ("width", width.into()),
        ("height", height.into()),
    ];
    let r = request("restore", &fields, &[]).await?;
    Ok(get(&r, "handle").as_f64().unwrap_or(0.0) as u32)
}

/// A mask the worker decoded from prompts.
pub struct Segmented {
    /// In image pixels.
    pub mask: lamina_core::rle::CompressedRle,
    pub decode_ms: f64,
    /// The model's predicted IoU of the mask.
    pub iou: f64,
}

/// Decodes prompts on an embedding; `Err(CANCELLED)` when a newer request superseded this one.
pub async fn segment(
    handle: u32,
    prompts_request: &lamina_core::suggest::SegmentRequest,
) -> Result<Segmented, String> {
    let prompts = serde_wasm_bindgen::to_value(prompts_request).map_err(|e| e.to_string())?;
    let fields = [("handle", JsValue::from(handle)), ("prompts", prompts)];
    let r = request("segment", &fields, &[]).await?;
    Ok(Segmented {
        mask: serde_wasm_bindgen::from_value(get(&r, "rle"))
            .map_err(|e| format!("the worker sent a bad mask: {e}"))?,
        decode_ms: get(&r, "decode_ms").as_f64().unwrap_or(0.0),
        iou: get(&r, "iou").as_f64().unwrap_or(0.0),
    })
}
