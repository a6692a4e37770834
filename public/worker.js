// Lamina's Web Worker: image checks and model inference, off the UI thread. The logic is Rust
// (crates/lamina-worker, crates/lamina-sam); this file only routes messages.
//
// Protocol: the types of crates/lamina-core/src/worker_protocol.rs, which the wasm builds its replies from
// and the app reads them back into. Request: {id, kind, ...}. Reply: {id, ok: true, result} or {id, ok: false, error,
// cancelled?}. Events, not replies: {event: 'progress', id, stage, done?}.
//   inspect    {bytes}                      -> {width, height, mime, source_mime, sha256, display?}
//   load_model {manifest, encoder, decoder, box_decoder?} -> {key, id, family, variant, box_decoder, load_ms}
//   encode     {bytes}                      -> {handle, encode_ms, windows, f16, shape}
//              (progress events name the window being encoded when the model uses several)
//   restore    {f16, width, height}         -> {handle}
//   segment    {handle, prompts: {points: [[x, y, positive]], box?, refine?, remember?}}
//                                           -> {rle, area, bbox, iou, stability, best, ious, decode_ms}
//              (image pixels; `refine` feeds the low-res mask of the last decode that had `remember`, the
//              default; a hover preview sends remember: false so it never disturbs a refinement)
//   profile    {handle, prompts, runs}      -> [{name, op, shape, ms}] per graph node, slowest first
//              (a diagnosis aid for bench/browser_sam.mjs --profile)
//   segment_all {handle, settings: {min_score, nms_iou, min_area}}
//                                           -> {instances: [{rle, area, bbox, score}], seeds, ms}
//              (automatic mode: every object, no prompts; none share a pixel)
//   prelabel   {bytes, settings}            -> the same, for an image file encoded here and freed after
//              (the batch path of pre-labeling: no embedding is kept or sent back)
//   load_yolo  {file_name, bytes}           -> {classes, input, load_ms}   (a user's YOLO-seg export)
//   prelabel_yolo {bytes, settings}         -> as prelabel, each instance with its class index
//   drop       {handle}                     -> {}
//   read_predictions {truth, file_name, drop_unmapped, bytes} -> {predictions, summary, count, ms}
//   run_metrics {truth, predictions, split?, iou, score}      -> {report, ms}
//              (model runs, crates/lamina-runs: JSON text in and out)
//   thumbnail  {bytes}                      -> {embedding, width, height, thumb}   (the catalog's grid)
// `segment` is latest-wins: a newer segment request cancels one still waiting (hover preview sends many).
import init, * as wasm from './pkg/lamina_worker.js';

const ready = init();
let waitingSegment = null;

function reply(id, result, transfer = []) {
  self.postMessage({ id, ok: true, result }, transfer);
}

function fail(id, e, cancelled = false) {
  self.postMessage({ id, ok: false, cancelled, error: String((e && e.message) || e) });
}

function run(data) {
  const { id, kind } = data;
  try {
    switch (kind) {
      case 'thumbnail': {
        const r = wasm.thumbnail_image(new Uint8Array(data.bytes));
        return reply(id, r, [r.thumb.buffer]);
      }
      case 'inspect': {
        const r = wasm.decode_image(new Uint8Array(data.bytes));
        return reply(id, r, r.display ? [r.display.buffer] : []);
      }
      case 'load_model': {
        self.postMessage({ event: 'progress', id, stage: 'loading model' });
        const boxDecoder = data.box_decoder ? new Uint8Array(data.box_decoder) : undefined;
        return reply(id, wasm.load_model(data.manifest, new Uint8Array(data.encoder), new Uint8Array(data.decoder),
          boxDecoder));
      }
      case 'encode':
        return encode(data);
      case 'restore':
        return reply(id, { handle: wasm.restore_embedding(new Uint8Array(data.f16), data.width, data.height) });
      case 'segment':
        return reply(id, wasm.decode_prompts(data.handle, JSON.stringify(data.prompts)));
      case 'segment_all':
        return reply(id, wasm.segment_all(data.handle, JSON.stringify(data.settings)));
      case 'prelabel':
        return prelabel(data);
      case 'load_yolo':
        self.postMessage({ event: 'progress', id, stage: 'loading model' });
        return reply(id, wasm.load_yolo(data.file_name, new Uint8Array(data.bytes)));
      case 'prelabel_yolo':
        return reply(id, wasm.prelabel_yolo(new Uint8Array(data.bytes), JSON.stringify(data.settings)));
      case 'profile':
        return reply(id, wasm.profile_decode(data.handle, JSON.stringify(data.prompts), data.runs));
      case 'read_predictions':
        self.postMessage({ event: 'progress', id, stage: 'reading predictions' });
        try {
          return reply(id, wasm.read_predictions(data.truth, data.file_name, new Uint8Array(data.bytes), data.drop_unmapped));
        } finally {
          self.postMessage({ event: 'progress', id, stage: 'reading predictions', done: true });
        }
      case 'run_metrics':
        self.postMessage({ event: 'progress', id, stage: 'computing metrics' });
        try {
          return reply(id, wasm.run_metrics(data.truth, data.predictions, data.split ?? undefined, data.iou, data.score));
        } finally {
          self.postMessage({ event: 'progress', id, stage: 'computing metrics', done: true });
        }
      case 'drop':
        wasm.drop_embedding(data.handle);
        return reply(id, {});
      default:
        throw new Error(`unknown request ${kind}`);
    }
  } catch (e) {
    fail(id, e);
  }
}

// A model with windows encodes a big image window by window: say how far it is, and yield between windows
// so that requests waiting meanwhile (a click on the image already open, while the next one pre-encodes)
// run in between instead of after the whole image.
async function encode(data) {
  const { id } = data;
  try {
    self.postMessage({ event: 'progress', id, stage: 'encoding' });
    const { session, windows } = wasm.encode_begin(new Uint8Array(data.bytes));
    for (let k = 1; !wasm.encode_step(session); k++) {
      self.postMessage({ event: 'progress', id, stage: `encoding window ${k + 1} of ${windows}` });
      await new Promise((resolve) => setTimeout(resolve));
    }
    const r = wasm.encode_end(session, true);
    self.postMessage({ event: 'progress', id, stage: 'encoding', done: true });
    reply(id, r, [r.f16.buffer]);
  } catch (e) {
    self.postMessage({ event: 'progress', id, stage: 'encoding', done: true });
    fail(id, e);
  }
}

// Encode (window by window, yielding between them) and find every object; the embedding is freed after.
async function prelabel(data) {
  const { id } = data;
  let handle = null;
  try {
    const started = performance.now();
    const { session } = wasm.encode_begin(new Uint8Array(data.bytes));
    while (!wasm.encode_step(session)) await new Promise((resolve) => setTimeout(resolve));
    handle = wasm.encode_end(session, false).handle;
    const r = wasm.segment_all(handle, JSON.stringify(data.settings));
    r.ms = performance.now() - started;
    reply(id, r);
  } catch (e) {
    fail(id, e);
  } finally {
    if (handle !== null) wasm.drop_embedding(handle);
  }
}

self.onmessage = async ({ data }) => {
  try {
    await ready;
  } catch (e) {
    return fail(data.id, `the worker's wasm did not load: ${e}`);
  }
  if (data.kind !== 'segment') return run(data);
  // Messages that arrived while inference ran are all delivered before this timeout fires, so only the
  // newest segment request runs.
  // A hover preview never displaces a waiting click or box: the hover is the one dropped.
  const isHover = (d) => d.prompts && d.prompts.remember === false;
  if (waitingSegment && isHover(data) && !isHover(waitingSegment)) {
    return fail(data.id, 'superseded by a waiting prompt', true);
  }
  if (waitingSegment) fail(waitingSegment.id, 'superseded by a newer request', true);
  waitingSegment = data;
  setTimeout(() => {
    if (waitingSegment === data) {
      waitingSegment = null;
      run(data);
    }
  });
};
