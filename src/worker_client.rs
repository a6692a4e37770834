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

struct WorkerHandle {
    worker: Worker,
    next_id: u32,
    pending: HashMap<u32, oneshot::Sender<Reply>>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_error: Closure<dyn FnMut(web_sys::Event)>,
}

thread_local! {
    static WORKER: RefCell<Option<WorkerHandle>> = const { RefCell::new(None) };
}

fn get(obj: &JsValue, key: &str) -> JsValue {
    Reflect::get(obj, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

fn on_reply(event: MessageEvent) {
    let data = event.data();
    let Some(id) = get(&data, "id").as_f64() else {
        return;
    };
    let reply = if get(&data, "ok").is_truthy() {
        Ok(get(&data, "result"))
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

async fn request(kind: &str, bytes: js_sys::ArrayBuffer) -> Reply {
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
        let _ = Reflect::set(&message, &"bytes".into(), &bytes);
        let transfer = js_sys::Array::of1(&bytes);
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
    let r = request("decode", bytes).await?;
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
