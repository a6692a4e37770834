// onnxruntime-web in a Web Worker, on the workload Lamina's worker runs (see public/worker.js), for
// bench/browser_sam.mjs. Messages: {kind: 'load', manifest, encoder, decoder} | {kind: 'encode', png} |
// {kind: 'segment', x, y}. One thread, wasm backend: the conditions tract runs under.
import * as ort from '/ort/ort.wasm.min.mjs';

ort.env.wasm.numThreads = 1; // tract is single-threaded; and the app is not cross-origin isolated
ort.env.wasm.simd = true; // ignored by recent releases (every build is SIMD), kept for older ones
ort.env.wasm.proxy = false; // we are already off the main thread
ort.env.wasm.wasmPaths = '/ort/'; // served locally, no CDN

let manifest, encoder, decoder, embedding, image;

// SAM's preprocessing, as crates/lamina-sam/src/preprocess.rs: resize so the longest side is input_size
// (bilinear, half-pixel centres), normalise, pad bottom/right with zeros. Resized as PIL does it
// (horizontal pass, round to 8 bits, vertical pass, round), so the tensor equals bench/ort_native.py's
// exactly; the engine's `image` crate differs from both by at most one grey level on some pixels.
function modelInput(rgba, iw, ih) {
  const s = manifest.input_size;
  const scale = s / Math.max(iw, ih);
  const rw = Math.max(1, Math.floor(iw * scale + 0.5)), rh = Math.max(1, Math.floor(ih * scale + 0.5));
  const out = new Float32Array(3 * s * s);
  for (let c = 0; c < 3; c++) {
    const plane = new Float32Array(iw * ih);
    for (let i = 0; i < plane.length; i++) plane[i] = rgba[4 * i + c];
    const rows = resize(plane, iw, ih, rw, ih).map(Math.round);
    const resized = resize(rows, rw, ih, rw, rh);
    const [mean, std] = [manifest.pixel_mean[c], manifest.pixel_std[c]];
    for (let y = 0; y < rh; y++) {
      for (let x = 0; x < rw; x++) out[c * s * s + y * s + x] = (Math.round(resized[y * rw + x]) - mean) / std;
    }
  }
  return { data: out, rw, rh };
}

// Half-pixel-centre bilinear of one plane (torch's interpolate, align_corners=False), as
// crates/lamina-sam/src/postprocess.rs.
function resize(src, sw, sh, dw, dh) {
  const axis = (d, n) => {
    const i0 = new Int32Array(d), i1 = new Int32Array(d), f = new Float32Array(d);
    for (let i = 0; i < d; i++) {
      const s = Math.max(0, (i + 0.5) * (n / d) - 0.5);
      i0[i] = Math.min(Math.floor(s), n - 1);
      i1[i] = Math.min(i0[i] + 1, n - 1);
      f[i] = s - i0[i];
    }
    return { i0, i1, f };
  };
  const xs = axis(dw, sw), ys = axis(dh, sh), out = new Float32Array(dw * dh);
  for (let y = 0, k = 0; y < dh; y++) {
    const r0 = ys.i0[y] * sw, r1 = ys.i1[y] * sw, fy = ys.f[y];
    for (let x = 0; x < dw; x++, k++) {
      const a = xs.i0[x], b = xs.i1[x], fx = xs.f[x];
      const top = src[r0 + a] + (src[r0 + b] - src[r0 + a]) * fx;
      const bottom = src[r1 + a] + (src[r1 + b] - src[r1 + a]) * fx;
      out[k] = top + (bottom - top) * fy;
    }
  }
  return out;
}

// The engine's mask(): low-res logits -> input size -> crop to the resized image -> image size ->
// threshold. Timed apart from the decoder, since tract's decode_ms includes it.
function mask(lowRes, low) {
  const s = manifest.input_size;
  const full = resize(lowRes, low, low, s, s);
  const cropped = new Float32Array(image.rw * image.rh);
  for (let y = 0; y < image.rh; y++) cropped.set(full.subarray(y * s, y * s + image.rw), y * image.rw);
  const logits = resize(cropped, image.rw, image.rh, image.iw, image.ih);
  const m = new Uint8Array(logits.length);
  for (let i = 0; i < logits.length; i++) m[i] = logits[i] > manifest.mask_threshold ? 1 : 0;
  return m;
}

const options = { executionProviders: ['wasm'], graphOptimizationLevel: 'all' };

async function handle(msg) {
  switch (msg.kind) {
    case 'load': {
      manifest = JSON.parse(msg.manifest);
      const t = performance.now();
      encoder = await ort.InferenceSession.create(new Uint8Array(msg.encoder), options);
      decoder = await ort.InferenceSession.create(new Uint8Array(msg.decoder), options);
      return { load_ms: performance.now() - t };
    }
    case 'encode': {
      // Decoding the PNG and preprocessing are timed apart: tract's encode_ms includes both.
      const t0 = performance.now();
      const bitmap = await createImageBitmap(new Blob([msg.png]), { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
      const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
      const ctx = canvas.getContext('2d');
      ctx.drawImage(bitmap, 0, 0);
      const rgba = ctx.getImageData(0, 0, bitmap.width, bitmap.height).data;
      const input = modelInput(rgba, bitmap.width, bitmap.height);
      image = { iw: bitmap.width, ih: bitmap.height, rw: input.rw, rh: input.rh };
      const s = manifest.input_size;
      const t1 = performance.now();
      const out = await encoder.run({ image: new ort.Tensor('float32', input.data, [1, 3, s, s]) });
      const encode_ms = performance.now() - t1;
      embedding = out.image_embeddings;
      return { pre_ms: t1 - t0, encode_ms, checksum: input.data.reduce((a, b) => a + b, 0) };
    }
    case 'segment': {
      const low = manifest.low_res_mask_size;
      // Image -> model pixels, then SAM's padding point (0, 0) with label -1 since there is no box.
      const coords = [msg.x * image.rw / image.iw, msg.y * image.rh / image.ih, 0, 0];
      const feeds = {
        image_embeddings: embedding,
        point_coords: new ort.Tensor('float32', Float32Array.from(coords), [1, 2, 2]),
        point_labels: new ort.Tensor('float32', Float32Array.from([1, -1]), [1, 2]),
        mask_input: new ort.Tensor('float32', new Float32Array(low * low), [1, 1, low, low]),
        has_mask_input: new ort.Tensor('float32', Float32Array.from([0]), [1]),
      };
      const t0 = performance.now();
      const out = await decoder.run(feeds);
      const t1 = performance.now();
      const ious = out.iou_predictions.data;
      let best = 1; // one click: the multimask output with the best predicted IoU, as the engine
      for (let k = 2; k < ious.length; k++) if (ious[k] > ious[best]) best = k;
      mask(out.low_res_masks.data.subarray(best * low * low, (best + 1) * low * low), low);
      return { decode_ms: t1 - t0, mask_ms: performance.now() - t1 };
    }
    default:
      throw new Error(`unknown request ${msg.kind}`);
  }
}

self.onmessage = async ({ data }) => {
  try {
    self.postMessage({ id: data.id, ok: true, result: await handle(data) });
  } catch (e) {
    self.postMessage({ id: data.id, ok: false, error: String((e && e.message) || e) });
  }
};
self.postMessage({ ready: true });
