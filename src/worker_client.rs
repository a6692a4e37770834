//! The UI thread's side of the worker (`public/worker.js` + the `lamina-worker` wasm): requests go out
//! with an id and the file's bytes transferred (not copied); replies resolve the matching future. Replies
//! are read into the types of `lamina_core::worker_protocol`, which the worker builds them from: a field
//! missing from a reply is an error naming it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use futures_channel::oneshot;
use js_sys::{Object, Reflect, Uint8Array};
use lamina_core::worker_protocol::{
    Encoded, Failure, Inspected, MetricsComputed, ModelLoaded, PredictionsRead, PrelabelSettings,
    Progress, Request, Restored, SegmentRequest, Segmented, SegmentedAll, Thumbnailed, YoloLoaded,
    BYTES_FIELD, DISPLAY_FIELD, F16_FIELD, THUMB_FIELD,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{MessageEvent, Worker, WorkerOptions, WorkerType};

use crate::error::AppError;

/// What the worker learnt about an image, with the converted PNG when the original cannot be shown.
#[derive(Clone, Debug)]
pub struct DecodedImage {
    pub info: Inspected,
    pub display: Option<Uint8Array>,
}

impl DecodedImage {
    /// The blob to display and store: the worker's PNG when it converted the image (TIFF), else the
    /// original bytes.
    pub fn blob(&self, original: &Uint8Array) -> Result<web_sys::Blob, AppError> {
        let parts = js_sys::Array::of1(self.display.as_ref().unwrap_or(original));
        let options = web_sys::BlobPropertyBag::new();
        options.set_type(&self.info.mime);
        web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &options)
            .map_err(|e| AppError::browser("keep the image", crate::browser::js_text(e)))
    }
}

type Reply = Result<JsValue, AppError>;

/// Receives the worker's progress events.
type ProgressFn = Box<dyn Fn(Progress)>;
struct WorkerHandle {
    worker: Worker,
    next_id: u32,
    pending: HashMap<u32, oneshot::Sender<Reply>>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_error: Closure<dyn FnMut(web_sys::Event)>,
}

/// One worker's slot: empty until its first request, and again after it died or was stopped.
type Slot = Rc<RefCell<Option<WorkerHandle>>>;

thread_local! {
    /// The app's own worker: imports, suggestions, model runs.
    static MAIN: Slot = Rc::new(RefCell::new(None));
    static PROGRESS: RefCell<Option<ProgressFn>> = const { RefCell::new(None) };
}

fn main_slot() -> Slot {
    MAIN.with(Rc::clone)
}

/// Where the worker's progress events go (the status bar).
pub fn on_progress(f: impl Fn(Progress) + 'static) {
    PROGRESS.with_borrow_mut(|p| *p = Some(Box::new(f)));
}

fn get(obj: &JsValue, key: &str) -> JsValue {
    Reflect::get(obj, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

/// A reply's `what` read into its protocol type; a missing or mistyped field is an error naming it.
fn typed<T: DeserializeOwned>(value: JsValue, what: &str) -> Result<T, AppError> {
    serde_wasm_bindgen::from_value(value).map_err(|e| {
        AppError::Worker(format!(
            "the worker's answer to {what} is not understood: {e}"
        ))
    })
}

/// A byte field of a reply, which must be there.
fn bytes_field(reply: &JsValue, field: &str, what: &str) -> Result<Uint8Array, AppError> {
    get(reply, field).dyn_into::<Uint8Array>().map_err(|_| {
        AppError::Worker(format!(
            "the worker's answer to {what} has no `{field}` bytes"
        ))
    })
}

fn on_reply(slot: &Slot, event: MessageEvent) {
    let data = event.data();
    if get(&data, "event").as_string().as_deref() == Some("progress") {
        match typed::<Progress>(data, "progress") {
            Ok(progress) => PROGRESS.with_borrow(|p| {
                if let Some(f) = p {
                    f(progress)
                }
            }),
            Err(e) => web_sys::console::error_1(&e.to_string().into()),
        }
        return;
    }
    let Some(id) = get(&data, "id").as_f64() else {
        web_sys::console::error_1(&"a message from the worker without an id was dropped".into());
        return;
    };
    let reply = if get(&data, "ok").is_truthy() {
        Ok(get(&data, "result"))
    } else {
        match typed::<Failure>(data, "a request") {
            Ok(Failure {
                cancelled: true, ..
            }) => Err(AppError::Cancelled),
            Ok(Failure { error, .. }) => Err(AppError::Worker(error)),
            Err(e) => Err(e),
        }
    };
    let sender = slot
        .borrow_mut()
        .as_mut()
        .and_then(|w| w.pending.remove(&(id as u32)));
    if let Some(sender) = sender {
        let _ = sender.send(reply);
    }
}

/// A worker that dies (e.g. its wasm failed to load) fails every waiting request with the reason and is
/// started afresh on the next one.
fn on_worker_error(slot: &Slot, event: web_sys::Event) {
    let message = get(&event, "message")
        .as_string()
        .unwrap_or_else(|| "the decoding worker stopped".into());
    stop(slot, || AppError::Worker(message.clone()));
}

/// Terminates the slot's worker, failing what waits on it with `why`.
fn stop(slot: &Slot, why: impl Fn() -> AppError) {
    let taken = slot.borrow_mut().take();
    if let Some(handle) = taken {
        handle.worker.terminate();
        for (_, sender) in handle.pending {
            let _ = sender.send(Err(why()));
        }
        // The closures may be the ones running now: they are freed once this event is over.
        wasm_bindgen_futures::spawn_local(async move {
            drop(handle._on_message);
            drop(handle._on_error);
        });
    }
}

fn start(slot: &Slot) -> Result<WorkerHandle, AppError> {
    let options = WorkerOptions::new();
    options.set_type(WorkerType::Module);
    let worker = Worker::new_with_options("worker.js", &options)
        .map_err(|e| AppError::Worker(format!("the worker cannot start: {e:?}")))?;
    // Weak: the slot owns these closures, which must not keep it alive.
    let weak = Rc::downgrade(slot);
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e| {
        if let Some(slot) = weak.upgrade() {
            on_reply(&slot, e)
        }
    });
    let weak = Rc::downgrade(slot);
    let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |e| {
        if let Some(slot) = weak.upgrade() {
            on_worker_error(&slot, e)
        }
    });
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

/// Sends `{id, kind, ...fields}` (the request's own fields, then its byte buffers under their names) with
/// `transfer` moved, not copied, and waits for the reply.
async fn request(request: &Request, buffers: &[(&str, JsValue)], transfer: &[&JsValue]) -> Reply {
    request_on(&main_slot(), request, buffers, transfer).await
}

async fn request_on(
    slot: &Slot,
    request: &Request,
    buffers: &[(&str, JsValue)],
    transfer: &[&JsValue],
) -> Reply {
    let message: Object = request
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| AppError::Worker(format!("the request cannot be sent: {e}")))?
        .unchecked_into();
    for (k, v) in buffers {
        let _ = Reflect::set(&message, &JsValue::from_str(k), v);
    }
    let (tx, rx) = oneshot::channel();
    {
        let mut guard = slot.borrow_mut();
        if guard.is_none() {
            *guard = Some(start(slot)?);
        }
        let Some(handle) = guard.as_mut() else {
            return Err(AppError::Worker("the worker is not running".into()));
        };
        let id = handle.next_id;
        handle.next_id += 1;
        let _ = Reflect::set(&message, &"id".into(), &id.into());
        let transfer: js_sys::Array = transfer.iter().copied().collect();
        handle
            .worker
            .post_message_with_transfer(&message, &transfer)
            .map_err(|e| AppError::Worker(format!("the worker cannot be reached: {e:?}")))?;
        handle.pending.insert(id, tx);
    }
    rx.await.unwrap_or_else(|_| {
        Err(AppError::Worker(
            "the worker stopped before answering".into(),
        ))
    })
}

/// Checks, decodes and hashes an image in the worker.
pub async fn decode_image(bytes: js_sys::ArrayBuffer) -> Result<DecodedImage, AppError> {
    let r = request(
        &Request::Inspect,
        &[(BYTES_FIELD, bytes.clone().into())],
        &[&bytes],
    )
    .await?;
    let display = get(&r, DISPLAY_FIELD).dyn_into::<Uint8Array>().ok();
    Ok(DecodedImage {
        info: typed(r, "inspect")?,
        display,
    })
}

/// An image's catalog thumbnail (a JPEG Blob) and find-similar embedding, made in the worker.
pub async fn thumbnail(
    bytes: js_sys::ArrayBuffer,
) -> Result<(web_sys::Blob, Thumbnailed), AppError> {
    let r = request(
        &Request::Thumbnail,
        &[(BYTES_FIELD, bytes.clone().into())],
        &[&bytes],
    )
    .await?;
    let jpeg = get(&r, THUMB_FIELD)
        .dyn_into::<Uint8Array>()
        .map_err(|_| AppError::Worker("the thumbnail reply has no picture".into()))?;
    let options = web_sys::BlobPropertyBag::new();
    options.set_type("image/jpeg");
    let blob =
        web_sys::Blob::new_with_u8_array_sequence_and_options(&js_sys::Array::of1(&jpeg), &options)
            .map_err(|e| AppError::browser("keep the thumbnail", crate::browser::js_text(e)))?;
    Ok((blob, typed(r, "thumbnail")?))
}

pub async fn load_model(manifest_json: &str, files: &ModelFiles) -> Result<ModelLoaded, AppError> {
    load_model_on(&main_slot(), manifest_json, files).await
}

async fn load_model_on(
    slot: &Slot,
    manifest_json: &str,
    files: &ModelFiles,
) -> Result<ModelLoaded, AppError> {
    let mut fields = vec![
        ("encoder", files.encoder.clone().into()),
        ("decoder", files.decoder.clone().into()),
    ];
    let mut transfer: Vec<&JsValue> = vec![&files.encoder, &files.decoder];
    if let Some(b) = &files.box_decoder {
        fields.push(("box_decoder", b.clone().into()));
        transfer.push(b);
    }
    let load = Request::LoadModel {
        manifest: manifest_json.to_owned(),
    };
    typed(
        request_on(slot, &load, &fields, &transfer).await?,
        "load_model",
    )
}

/// A model's files, integrity-checked: the encoder, the decoder, and the decoder for prompts with a box
/// when the manifest lists one.
pub struct ModelFiles {
    pub encoder: js_sys::ArrayBuffer,
    pub decoder: js_sys::ArrayBuffer,
    pub box_decoder: Option<js_sys::ArrayBuffer>,
}

/// An image encoded in the worker, with its embedding as f16 bytes for the cache.
pub struct EncodedImage {
    pub encoded: Encoded,
    pub f16: Uint8Array,
}

pub async fn encode(image_bytes: js_sys::ArrayBuffer) -> Result<EncodedImage, AppError> {
    let r = request(
        &Request::Encode,
        &[(BYTES_FIELD, image_bytes.clone().into())],
        &[&image_bytes],
    )
    .await?;
    Ok(EncodedImage {
        f16: bytes_field(&r, F16_FIELD, "encode")?,
        encoded: typed(r, "encode")?,
    })
}

pub async fn restore(f16: &Uint8Array, width: u32, height: u32) -> Result<u32, AppError> {
    let restore = Request::Restore { width, height };
    let r: Restored = typed(
        request(&restore, &[(F16_FIELD, f16.clone().into())], &[]).await?,
        "restore",
    )?;
    Ok(r.handle)
}

/// Decodes prompts on an embedding; `Err(AppError::Cancelled)` when a newer request superseded this one.
pub async fn segment(handle: u32, prompts: &SegmentRequest) -> Result<Segmented, AppError> {
    let segment = Request::Segment {
        handle,
        prompts: prompts.clone(),
    };
    typed(request(&segment, &[], &[]).await?, "segment")
}

/// Reads a model's predictions file against a run's labels in the worker; the file's bytes are
/// transferred. A file with any problem is refused whole, with every problem listed.
pub async fn read_predictions(
    truth_json: &str,
    file_name: &str,
    bytes: js_sys::ArrayBuffer,
    drop_unmapped: bool,
) -> Result<PredictionsRead, AppError> {
    let r = Request::ReadPredictions {
        truth: truth_json.to_owned(),
        file_name: file_name.to_owned(),
        drop_unmapped,
    };
    typed(
        request(&r, &[(BYTES_FIELD, bytes.clone().into())], &[&bytes]).await?,
        "read_predictions",
    )
}

/// Computes a prediction set's metrics in the worker.
pub async fn run_metrics(
    truth_json: &str,
    predictions_json: &str,
    split: Option<&str>,
    iou: f64,
    score: f64,
) -> Result<MetricsComputed, AppError> {
    let r = Request::RunMetrics {
        truth: truth_json.to_owned(),
        predictions: predictions_json.to_owned(),
        split: split.map(str::to_owned),
        iou,
        score,
    };
    typed(request(&r, &[], &[]).await?, "run_metrics")
}

/// Every object of an embedded image (automatic mode), in the app's own worker.
pub async fn segment_all(
    handle: u32,
    settings: &PrelabelSettings,
) -> Result<SegmentedAll, AppError> {
    let r = Request::SegmentAll {
        handle,
        settings: *settings,
    };
    typed(request(&r, &[], &[]).await?, "segment_all")
}

/// A worker of its own for batch work (pre-labeling), beside the app's worker so that suggestions on
/// the open image stay quick; stopped when dropped.
pub struct PoolWorker {
    slot: Slot,
}

impl PoolWorker {
    pub fn start() -> Result<PoolWorker, AppError> {
        let slot: Slot = Rc::new(RefCell::new(None));
        let handle = start(&slot)?;
        *slot.borrow_mut() = Some(handle);
        Ok(PoolWorker { slot })
    }

    /// Loads a model into this worker; `files` are transferred, so each worker needs its own copy.
    pub async fn load_model(
        &self,
        manifest_json: &str,
        files: &ModelFiles,
    ) -> Result<ModelLoaded, AppError> {
        load_model_on(&self.slot, manifest_json, files).await
    }

    /// Encodes an image file and finds every object in it; nothing is kept in the worker after.
    pub async fn prelabel(
        &self,
        image_bytes: js_sys::ArrayBuffer,
        settings: &PrelabelSettings,
    ) -> Result<SegmentedAll, AppError> {
        let r = Request::Prelabel {
            settings: *settings,
        };
        self.with_bytes(&r, image_bytes, "prelabel").await
    }

    /// Loads a user's YOLO-seg export (its bytes are transferred); refused with what does not fit.
    pub async fn load_yolo(
        &self,
        file_name: &str,
        onnx: js_sys::ArrayBuffer,
    ) -> Result<YoloLoaded, AppError> {
        let r = Request::LoadYolo {
            file_name: file_name.to_owned(),
        };
        self.with_bytes(&r, onnx, "load_yolo").await
    }

    /// An image file through the loaded YOLO-seg model.
    pub async fn prelabel_yolo(
        &self,
        image_bytes: js_sys::ArrayBuffer,
        settings: &PrelabelSettings,
    ) -> Result<SegmentedAll, AppError> {
        let r = Request::PrelabelYolo {
            settings: *settings,
        };
        self.with_bytes(&r, image_bytes, "prelabel_yolo").await
    }

    /// Sends `r` with `bytes` (transferred) under [`BYTES_FIELD`]; the reply read as `what`'s result.
    async fn with_bytes<T: DeserializeOwned>(
        &self,
        r: &Request,
        bytes: js_sys::ArrayBuffer,
        what: &str,
    ) -> Result<T, AppError> {
        let field = [(BYTES_FIELD, JsValue::from(bytes.clone()))];
        typed(request_on(&self.slot, r, &field, &[&bytes]).await?, what)
    }

    /// Stops the worker now (a cancelled run): what it was doing fails as cancelled.
    pub fn stop(&self) {
        stop(&self.slot, || AppError::Cancelled);
    }
}

impl Drop for PoolWorker {
    fn drop(&mut self) {
        self.stop();
    }
}
