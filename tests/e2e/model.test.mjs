// Segment-suggestion models in the browser: the default model served with the app, the worker protocol
// (load, encode, decode, cancel), the embedding cache, and a wrong model. Real worker, real wasm, real
// IndexedDB, in headless Chromium.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { suite, byId, text, count, until, waitNotice, selectTool, brushStroke, noPanics, ROOT } from './harness.mjs';

const env = suite();
before(env.setup);
after(env.teardown);

const waitText = (page, id, re, what, timeout = 60_000) =>
  until(() => text(page, id), (t) => re.test(t), what, timeout);

// The model the app serves by default (scripts/build-web copies it to dist/models/default).
const DEFAULT = JSON.parse(readFileSync(path.join(ROOT, 'dist/models/default/manifest.json'), 'utf8'));
const READY = new RegExp(`^ready: ${DEFAULT.id}`);

test('the default model loads from the app itself, the image is encoded once, and revisits use the cache', async (t) => {
  const requests = [];
  const { page } = await env.open(t, {
    beforeGoto: async (_context, p) => p.on('request', (r) => requests.push(r.url())),
  });
  await waitText(page, 'model-status', READY, 'the default model');
  await waitText(page, 'embedding-status', /ready \(encoded in \d+ ms\)/, 'the first image encoded');
  const origin = new URL(env.server.url).origin;
  const elsewhere = requests.filter((u) => !u.startsWith(origin) && !u.startsWith('blob:') && !u.startsWith('data:'));
  assert.deepEqual(elsewhere, [], 'no request leaves the app origin');
  assert.ok(requests.some((u) => u.endsWith('/models/default/encoder.onnx')), 'the encoder came from the app');

  // The next image was pre-encoded in the background: opening it runs no encoder.
  await page.keyboard.press('ArrowRight');
  await until(() => text(page, 'position'), (p) => p.startsWith('2 /'), 'image 2');
  await waitText(page, 'embedding-status', /ready \(cached embedding\)/, 'image 2 from the pre-encode');

  // After a reload: model files from the IndexedDB cache (no download), embedding of image 1 cached.
  requests.length = 0;
  await page.keyboard.press('ArrowLeft');
  await page.reload();
  await waitText(page, 'model-status', READY, 'the model after reload');
  await waitText(page, 'embedding-status', /ready \(cached embedding\)/, 'image 1 from the cache');
  assert.ok(!requests.some((u) => u.endsWith('.onnx')), `no model download after reload: ${requests.filter((u) => u.endsWith('.onnx'))}`);

  // Cached embeddings cut short (a torn write): the image is encoded again, not left without suggestions,
  // and the new embedding replaces the bad one.
  const cut = await page.evaluate(() => new Promise((resolve, reject) => {
    const open = indexedDB.open('lamina');
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
      const db = open.result;
      const tx = db.transaction('embeddings', 'readwrite');
      let n = 0;
      tx.objectStore('embeddings').openCursor().onsuccess = ({ target }) => {
        const c = target.result;
        if (!c) return;
        c.update(c.value.slice(0, Math.floor(c.value.length / 2)));
        n++;
        c.continue();
      };
      tx.oncomplete = () => { db.close(); resolve(n); };
      tx.onerror = () => reject(tx.error);
    };
  }));
  assert.ok(cut >= 1, `cut ${cut} cached embeddings`);
  await page.reload();
  await waitText(page, 'model-status', READY, 'the model after the cache was cut');
  await waitText(page, 'embedding-status', /ready \(encoded in \d+ ms\)/, 'image 1 encoded again');
  await page.reload();
  await waitText(page, 'embedding-status', /ready \(cached embedding\)/, 'image 1 from the mended cache');
  await noPanics(page);
});

test('worker protocol: load a model, encode, decode prompts, and cancel stale decodes', async (t) => {
  const { page } = await env.open(t, { waitForDemo: false });
  const result = await page.evaluate(async () => {
    const worker = new Worker('worker.js', { type: 'module' });
    const replies = new Map();
    const events = [];
    let next = 1;
    worker.onmessage = ({ data }) => {
      if (data.event) return events.push(data);
      if (replies.has(data.id)) replies.get(data.id).count++;
      else replies.set(data.id, { ...data, count: 1 });
      waiters.get(data.id)?.(data);
    };
    const waiters = new Map();
    const send = (kind, fields = {}, transfer = []) => {
      const id = next++;
      const done = new Promise((resolve) => waiters.set(id, resolve));
      worker.postMessage({ id, kind, ...fields }, transfer);
      return done;
    };
    const bytes = async (url) => (await fetch(url)).arrayBuffer();
    const manifest = await (await fetch('models/default/manifest.json')).text();
    const m = JSON.parse(manifest);
    const decoderFile = m.decoders.find((d) => d.variant === 'low_res' && !d.prompts).file;
    const boxFile = m.decoders.find((d) => d.prompts === 'box')?.file;

    // A wrong file: the decoder where the encoder belongs fails the manifest's integrity check.
    const wrong = await send('load_model', { manifest, encoder: await bytes(`models/default/${decoderFile}`), decoder: await bytes(`models/default/${decoderFile}`) });
    // A model with a box decoder refuses to load without it, rather than serve boxes with the click decoder.
    const noBox = boxFile && await send('load_model', { manifest, encoder: await bytes(`models/default/${m.encoder.file}`), decoder: await bytes(`models/default/${decoderFile}`) });
    const loaded = await send('load_model', {
      manifest, encoder: await bytes(`models/default/${m.encoder.file}`), decoder: await bytes(`models/default/${decoderFile}`),
      box_decoder: boxFile && await bytes(`models/default/${boxFile}`),
    });
    const bundle = await (await fetch('demo/bundle.json')).json();
    const image = await bytes(`demo/${bundle.assets[0].uri}`);
    const encoded = await send('encode', { bytes: image }, [image]);
    const handle = encoded.result.handle;
    const one = await send('segment', { handle, prompts: { points: [[100, 100, true]] } });
    const box = await send('segment', { handle, prompts: { box: [40, 40, 120, 120] } });
    const refine = await send('segment', { handle, prompts: { points: [[100, 100, true], [30, 30, false]], refine: true } });
    // Hover: five decodes posted at once; only the newest must run.
    const burst = await Promise.all([1, 2, 3, 4, 5].map((k) => send('segment', { handle, prompts: { points: [[20 * k, 20 * k, true]] } })));
    const missing = await send('segment', { handle: 9999, prompts: { points: [[1, 1, true]] } });
    worker.terminate();
    return {
      wrong, noBox, boxFile, loaded, encodedKeys: Object.keys(encoded.result), f16Bytes: encoded.result.f16.byteLength,
      one: one.result, box: box.result, refine: refine.result, burst, missing, events,
      duplicates: [...replies.values()].filter((r) => r.count !== 1).length,
    };
  });
  assert.equal(result.wrong.ok, false);
  assert.match(result.wrong.error, /does not match the manifest/);
  assert.equal(result.loaded.ok, true, JSON.stringify(result.loaded));
  assert.ok(result.boxFile, 'the default model has a decoder for box prompts');
  assert.equal(result.loaded.result.box_decoder, true);
  assert.equal(result.noBox.ok, false, 'without its box decoder the model does not load');
  assert.match(result.noBox.error, /box decoder/);
  assert.equal(result.loaded.result.id, DEFAULT.id);
  assert.equal(result.f16Bytes, DEFAULT.embedding_shape.reduce((a, b) => a * b) * 2, 'embedding as f16 for the cache');
  for (const r of [result.one, result.box, result.refine]) {
    // The mask comes back cut to its box on the image: the answer is the object's size, not the image's.
    assert.equal(r.bbox.length, 4);
    assert.deepEqual(r.rle.size, [r.bbox[3], r.bbox[2]], 'the mask is cut to its bbox');
    assert.ok(r.bbox[0] + r.bbox[2] <= 256 && r.bbox[1] + r.bbox[3] <= 256, 'the bbox lies on the image');
    assert.equal(r.ious.length, 4);
    assert.ok(r.area >= 0);
  }
  const bestOfMultimask = 1 + [1, 2, 3].map((k) => result.one.ious[k]).indexOf(Math.max(...[1, 2, 3].map((k) => result.one.ious[k])));
  assert.equal(result.one.best, bestOfMultimask, 'one click: the best multimask output');
  assert.equal(result.box.best, 0, 'a box: the single-mask output');
  const last = result.burst.at(-1);
  assert.equal(last.ok, true, 'the newest decode runs');
  const cancelled = result.burst.filter((r) => r.cancelled);
  assert.ok(cancelled.length >= 1, `stale decodes are cancelled: ${JSON.stringify(result.burst.map((r) => r.ok || r.error))}`);
  assert.ok(cancelled.every((r) => /superseded/.test(r.error)));
  assert.equal(result.missing.ok, false);
  assert.match(result.missing.error, /no longer in the worker/);
  assert.ok(result.events.some((e) => e.stage === 'encoding' && e.done), 'encoding progress events');
  assert.equal(result.duplicates, 0, 'every request gets exactly one reply');
});

test('a 512 px image is encoded window by window at the model\'s scale, without holding up clicks, and suggests what its tiles do', async (t) => {
  // The default model was trained on 256 px tiles and lists `windows`: a bigger image is not shrunk.
  const { page } = await env.open(t, { waitForDemo: false });
  const result = await page.evaluate(async () => {
    const worker = new Worker('worker.js', { type: 'module' });
    const events = [];
    const waiters = new Map();
    let next = 1;
    worker.onmessage = ({ data }) => (data.event ? events.push(data) : waiters.get(data.id)?.(data));
    const send = (kind, fields = {}, transfer = []) => {
      const id = next++;
      const done = new Promise((resolve) => waiters.set(id, resolve));
      worker.postMessage({ id, kind, ...fields }, transfer);
      return done;
    };
    const bytes = async (url) => (await fetch(url)).arrayBuffer();
    const manifest = await (await fetch('models/default/manifest.json')).text();
    const m = JSON.parse(manifest);
    const file = (pred) => m.decoders.find(pred).file;
    const loaded = await send('load_model', {
      manifest, encoder: await bytes(`models/default/${m.encoder.file}`),
      decoder: await bytes(`models/default/${file((d) => !d.prompts)}`),
      box_decoder: await bytes(`models/default/${file((d) => d.prompts === 'box')}`),
    });
    const bundle = await (await fetch('demo/bundle.json')).json();
    const tileBlob = await (await fetch(`demo/${bundle.assets[0].uri}`)).blob();
    // The demo tile four times over, 2 x 2.
    const tile = await createImageBitmap(tileBlob);
    const canvas = new OffscreenCanvas(512, 512);
    const ctx = canvas.getContext('2d');
    for (const [x, y] of [[0, 0], [256, 0], [0, 256], [256, 256]]) ctx.drawImage(tile, x, y);
    const big = await (await canvas.convertToBlob({ type: 'image/png' })).arrayBuffer();
    const single = await tileBlob.arrayBuffer();

    const encodedTile = await send('encode', { bytes: single }, [single]);
    const click = (handle, x, y) => send('segment', { handle, prompts: { points: [[x, y, true]] } });
    // A click on the open tile while the big image encodes (as when the next image pre-encodes) is
    // answered between two windows, not after all nine.
    const order = [];
    const bigDone = send('encode', { bytes: big }, [big]).then((r) => (order.push('encode'), r));
    const clickDone = click(encodedTile.result.handle, 100, 100).then((r) => (order.push('click'), r));
    const [encodedBig, onTile] = await Promise.all([bigDone, clickDone]);
    const onBig = await click(encodedBig.result.handle, 356, 356);
    const restored = await send('restore', { f16: encodedBig.result.f16, width: 512, height: 512 });
    const onRestored = await click(restored.result.handle, 356, 356);
    const wrongSize = await send('restore', { f16: encodedTile.result.f16, width: 512, height: 512 });
    worker.terminate();
    return {
      loaded, tile: encodedTile.result.windows, windows: encodedBig.result.windows,
      f16Tile: encodedTile.result.f16.byteLength, f16Big: encodedBig.result.f16.byteLength,
      onTile: onTile.result, onBig: onBig.result, onRestored: onRestored.result, wrongSize,
      stages: events.map((e) => e.stage), order,
    };
  });
  assert.equal(result.loaded.ok, true, JSON.stringify(result.loaded));
  assert.equal(result.tile, 1, 'a 256 px tile is one window');
  assert.equal(result.windows, 9, '512 px: 3 x 3 windows of 256, overlapping by 64');
  assert.equal(result.f16Big, 9 * result.f16Tile, 'one embedding per window in the cache');
  assert.ok(result.stages.includes('encoding window 9 of 9'), `progress per window: ${result.stages}`);
  assert.deepEqual(result.order, ['click', 'encode'], 'a click is not held up by a big encode');
  assert.ok(result.onTile.area > 30, `a nucleus-sized mask on the tile: ${result.onTile.area}`);
  // The click at (356, 356) lies deepest in the lower-right window, which is the tile itself.
  assert.deepEqual(result.onBig.rle, result.onTile.rle, 'the same nucleus mask as on the tile, cut to its box');
  assert.equal(result.onBig.area, result.onTile.area);
  assert.deepEqual(result.onBig.bbox, [result.onTile.bbox[0] + 256, result.onTile.bbox[1] + 256, result.onTile.bbox[2], result.onTile.bbox[3]]);
  assert.equal(result.onRestored.area, result.onBig.area, 'the cached embedding restores every window');
  assert.equal(result.wrongSize.ok, false);
  assert.match(result.wrongSize.error, /cached embedding has \d+ bytes, expected \d+ \(9 windows\)/);
});

test('a model picked as files needs every file its manifest names: a missing one is named, then all of them load', async (t) => {
  const { page } = await env.open(t);
  await waitText(page, 'model-status', READY, 'the default model');
  const dir = path.join(ROOT, 'dist/models/default');
  const named = [DEFAULT.encoder.file, ...DEFAULT.decoders.map((d) => d.file)];
  const boxFile = DEFAULT.decoders.find((d) => d.prompts === 'box').file;
  const withoutBox = ['manifest.json', ...named.filter((f) => f !== boxFile)].map((f) => path.join(dir, f));
  await byId(page, 'model-files').setInputFiles(withoutBox);
  await waitNotice(page, 'error', new RegExp(`Model not loaded: ${boxFile.replace('.', '\\.')} was not among the picked files`));
  assert.match(await text(page, 'model-status'), /not loaded/);
  await byId(page, 'model-files').setInputFiles(['manifest.json', ...named].map((f) => path.join(dir, f)));
  await waitText(page, 'model-status', READY, 'the model from picked files');
  await waitText(page, 'embedding-status', /ready/, 'the image with the picked model');
  await noPanics(page);
});

test('a wrong model URL is reported clearly and the manual tools keep working', async (t) => {
  const { page } = await env.open(t);
  await waitText(page, 'model-status', /^ready/, 'the default model');
  await byId(page, 'model-url').fill('models/none/');
  await byId(page, 'load-model').click();
  await waitNotice(page, 'error', /Model not loaded: .*HTTP 404.*manual tools keep working/);
  assert.match(await text(page, 'model-status'), /not loaded/);
  const before = await count(page, 'instance-count');
  await selectTool(page, 'brush');
  await brushStroke(page, [[200, 30], [220, 30]]);
  await until(() => count(page, 'instance-count'), (n) => n === before + 1, 'a brush label');
  await noPanics(page);
});
