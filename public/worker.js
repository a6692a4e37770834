// Lamina's Web Worker: decoding (and later inference) off the UI thread. The logic is Rust
// (crates/lamina-worker); this file only routes messages. Each reply carries the request's id.
import init, { decode_image } from './pkg/lamina_worker.js';

const ready = init();

self.onmessage = async ({ data }) => {
  const { id, kind, bytes } = data;
  try {
    await ready;
    if (kind !== 'decode') throw new Error(`unknown request ${kind}`);
    const result = decode_image(new Uint8Array(bytes));
    self.postMessage({ id, ok: true, result }, result.display ? [result.display.buffer] : []);
  } catch (e) {
    self.postMessage({ id, ok: false, error: String((e && e.message) || e) });
  }
};
