#!/usr/bin/env node
// tract (our wasm worker, dist/) vs onnxruntime-web, side by side in headless Chromium, on the same ONNX
// files, the same tile and the same single-click prompts, one thread each. Prints figures; asserts nothing.
//
// Usage: node bench/browser_sam.mjs --model DIR [--runs N] [--decodes M] [--image PNG] [--json] [--profile K]
// --profile K: also time K tract decodes per graph node in the worker and list the slowest (the same
// table as `lamina bench sam --profile K` natively, so wasm and native costs compare op by op).
// Needs: dist/ from `bash scripts/build-web --dist`, and `cd tools && npm install` (playwright-core,
// onnxruntime-web). Uses Debian's /usr/bin/chromium; never downloads a browser.
import { createRequire } from 'node:module';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(root, 'tools', 'package.json'));
const { chromium } = require('playwright-core');
const ortDist = path.join(root, 'tools/node_modules/onnxruntime-web/dist'); // served as-is: no CDN

const argv = process.argv.slice(2);
const opt = (name, dflt) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : dflt);
const modelDir = path.resolve(opt('--model', ''));
const runs = Number(opt('--runs', 3));
const decodes = Number(opt('--decodes', 30));
const profile = Number(opt('--profile', 0));
const imagePath = path.resolve(root, opt('--image', '../shared/data/nuinsseg-dev/images/nuinsseg_human_bladder_01_x0y0.png'));
if (!fs.existsSync(path.join(modelDir, 'manifest.json'))) throw new Error('--model DIR with a manifest.json is required');
const workerWasm = path.join(root, 'dist/pkg/lamina_worker_bg.wasm');
if (!opt('--engines', 'tract').includes('tract')) { /* ort alone: dist/ is not needed */ } else if (!fs.readFileSync(path.join(root, 'dist/worker.js'), 'utf8').includes('load_model')) {
  throw new Error('dist/worker.js has no load_model: run bash scripts/build-web --dist');
}

// A tiny static server: URL prefix -> folder. The server logs the wasm files fetched, so the report
// names the onnxruntime-web build actually used.
const mounts = { '/dist/': path.join(root, 'dist'), '/model/': modelDir, '/ort/': ortDist, '/bench/': path.join(root, 'bench') };
const types = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json', '.html': 'text/html' };
const fetchedWasm = new Set();
const server = http.createServer((req, res) => {
  const url = decodeURIComponent(new URL(req.url, 'http://x').pathname);
  if (url === '/') return res.writeHead(200, { 'Content-Type': 'text/html' }).end('<!doctype html><title>bench</title>');
  if (url === '/tile.png') return res.writeHead(200, { 'Content-Type': 'image/png' }).end(fs.readFileSync(imagePath));
  const prefix = Object.keys(mounts).find((p) => url.startsWith(p));
  const file = prefix && path.join(mounts[prefix], url.slice(prefix.length));
  if (!file || !file.startsWith(mounts[prefix]) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
    return res.writeHead(404).end();
  }
  if (file.endsWith('.wasm')) fetchedWasm.add(file);
  res.writeHead(200, { 'Content-Type': types[path.extname(file)] || 'application/octet-stream', 'Cache-Control': 'no-store' });
  fs.createReadStream(file).pipe(res);
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const origin = `http://127.0.0.1:${server.address().port}`;

// Peak resident memory (VmHWM) of Chromium's renderer processes under this node process: the worker
// runs in the page's renderer, so this covers wasm memory, JS heap and the model bytes. One browser per
// engine, so each peak is that engine's alone.
function rendererPeakMb() {
  const parent = new Map();
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      parent.set(pid, stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    } catch { /* gone */ }
  }
  const mine = (pid) => { for (let p = pid; p && p !== '0'; p = parent.get(p)) if (p === String(process.pid)) return true; return false; };
  let peak = 0;
  for (const pid of parent.keys()) {
    try {
      if (!mine(pid) || !fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('--type=renderer')) continue;
      const hwm = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
      peak = Math.max(peak, Number(hwm[1]) / 1024);
    } catch { /* gone */ }
  }
  return peak;
}

// Runs in the page: starts the engine's worker, loads, encodes `runs` times, then `decodes` single clicks
// over a 6x6 grid of the tile (as `lamina bench sam`), one at a time. Times every postMessage round trip
// and collects the worker's own figures.
async function pageBench({ engine, runs, decodes, profile }) {
  const get = async (url) => (await fetch(url)).arrayBuffer();
  const manifestText = await (await fetch('/model/manifest.json')).text();
  const manifest = JSON.parse(manifestText);
  const decoderFile = manifest.decoders.find((d) => d.variant === 'low_res' && !d.prompts).file;
  const boxFile = manifest.decoders.find((d) => d.prompts === 'box')?.file; // the clicks timed here never use it
  const [encoder, decoder, png] = await Promise.all([get(`/model/${manifest.encoder.file}`), get(`/model/${decoderFile}`), get('/tile.png')]);
  const box_decoder = boxFile ? await get(`/model/${boxFile}`) : undefined;
  const bitmap = await createImageBitmap(new Blob([png]));
  const [iw, ih] = [bitmap.width, bitmap.height];

  const t0 = performance.now();
  const worker = engine === 'tract' ? new Worker('/dist/worker.js', { type: 'module' }) : new Worker('/bench/ort_worker.js', { type: 'module' });
  let nextId = 0;
  const pending = new Map();
  let onReady;
  const ready = new Promise((r) => (onReady = r));
  worker.onmessage = ({ data }) => {
    if (data.ready) return onReady();
    if (data.event) return; // tract's progress events
    pending.get(data.id)?.(data);
  };
  let failed = null; // a worker that fails to start answers nothing: fail the waiting call instead
  const call = (msg) => new Promise((resolve, reject) => {
    const id = ++nextId;
    failed = reject;
    pending.set(id, (r) => (r.ok || msg.kind === 'ping' ? resolve(r.result) : reject(new Error(r.error))));
    worker.postMessage({ id, ...msg });
  });
  worker.onerror = (e) => failed?.(new Error(`worker error: ${e.message}`));
  const timed = async (msg) => { const t = performance.now(); const result = await call(msg); return { rt: performance.now() - t, result }; };

  // Startup: until the worker's module (and for tract its wasm) is ready. tract's worker answers an
  // unknown request only after its wasm is instantiated; ort's worker says ready after importing ort
  // (its wasm is instantiated by the first InferenceSession.create, so it counts in ort's load).
  if (engine === 'tract') await call({ kind: 'ping' }); else await ready;
  const startup_ms = performance.now() - t0;
  const load = engine === 'tract'
    ? await timed({ kind: 'load_model', manifest: manifestText, encoder, decoder, box_decoder })
    : await timed({ kind: 'load', manifest: manifestText, encoder, decoder });

  const encodes = [];
  let handle;
  for (let i = 0; i < runs; i++) {
    const { rt, result } = await timed({ kind: 'encode', ...(engine === 'tract' ? { bytes: png } : { png }) });
    encodes.push({ rt, encode_ms: result.encode_ms, pre_ms: result.pre_ms, checksum: result.checksum });
    handle = result.handle;
  }
  const clicks = [];
  for (let i = 0; i < decodes; i++) {
    const [x, y] = [((i % 6) + 0.5) * iw / 6, ((Math.floor(i / 6) % 6) + 0.5) * ih / 6];
    const msg = engine === 'tract' ? { kind: 'segment', handle, prompts: { points: [[x, y, true]] } } : { kind: 'segment', x, y };
    const { rt, result } = await timed(msg);
    clicks.push({ rt, decode_ms: result.decode_ms, mask_ms: result.mask_ms });
  }
  const profiled = engine === 'tract' && profile > 0
    ? await call({ kind: 'profile', handle, prompts: { points: [[iw / 2, ih / 2, true]] }, runs: profile })
    : null;
  worker.terminate();
  const mem = performance.memory ? performance.memory.usedJSHeapSize / 2 ** 20 : null; // main thread only
  return { startup_ms, load_rt: load.rt, load_ms: load.result.load_ms, warm_up_ms: load.result.warm_up_ms, encodes, clicks, main_heap_mb: mem, image: [iw, ih], profiled };
}

async function bench(engine) {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--enable-precise-memory-info'],
  });
  chromiumVersion = browser.version();
  try {
    const page = await browser.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(origin + '/');
    const r = await page.evaluate(pageBench, { engine, runs, decodes, profile });
    return { ...r, renderer_peak_mb: rendererPeakMb(), errors };
  } finally {
    await browser.close();
  }
}

const p = (xs, q) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(Math.floor((q / 100) * (s.length - 1) + 0.5), s.length - 1)]; };
function summary(r) {
  const clicks = r.clicks.slice(1); // the first click is reported apart, as lamina bench sam does
  return {
    startup_ms: r.startup_ms, load_ms: r.load_ms, load_rt_ms: r.load_rt,
    // tract warms its plans up at load (decodes, so the first clicks are fast); ort-web does not.
    load_cold_ms: r.warm_up_ms === undefined ? r.load_ms : r.load_ms - r.warm_up_ms,
    encode_p50_ms: p(r.encodes.map((e) => e.encode_ms), 50), encode_rt_p50_ms: p(r.encodes.map((e) => e.rt), 50),
    pre_p50_ms: r.encodes[0].pre_ms === undefined ? null : p(r.encodes.map((e) => e.pre_ms), 50),
    first_decode_ms: r.clicks[0].decode_ms,
    decode_p50_ms: p(clicks.map((c) => c.decode_ms), 50), decode_p95_ms: p(clicks.map((c) => c.decode_ms), 95),
    decode_rt_p50_ms: p(clicks.map((c) => c.rt), 50),
    mask_p50_ms: clicks[0]?.mask_ms === undefined ? null : p(clicks.map((c) => c.mask_ms), 50),
    decodes: clicks.length, encodes: r.encodes.length, renderer_peak_mb: r.renderer_peak_mb,
    main_heap_mb: r.main_heap_mb, checksum: r.encodes[0].checksum, errors: r.errors, profile: r.profiled ?? null,
  };
}

// --engines tract,ort (default both): one alone is handy when debugging.
const engines = opt('--engines', 'tract,ort').split(',');
let chromiumVersion;
const empty = { clicks: [{}], encodes: [{}], errors: [] };
const tract = summary(engines.includes('tract') ? await bench('tract') : empty);
const ort = summary(engines.includes('ort') ? await bench('ort') : empty);
const gz = (f) => zlib.gzipSync(fs.readFileSync(f), { level: 9 }).length;
// Brotli too: what a static host with precompressed assets would serve.
const br = (f) => zlib.brotliCompressSync(fs.readFileSync(f), { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11 } }).length;
const ortWasm = [...fetchedWasm].find((f) => f.startsWith(ortDist));
const sizes = {
  tract: { file: path.relative(root, workerWasm), raw: fs.statSync(workerWasm).size, gzip: gz(workerWasm), brotli: br(workerWasm) },
  ort: ortWasm && { file: path.relative(root, ortWasm), raw: fs.statSync(ortWasm).size, gzip: gz(ortWasm), brotli: br(ortWasm) },
};
server.close();

const ortVersion = JSON.parse(fs.readFileSync(path.join(ortDist, '..', 'package.json'), 'utf8')).version;
const report = { model: JSON.parse(fs.readFileSync(path.join(modelDir, 'manifest.json'), 'utf8')).id, chromium: chromiumVersion, onnxruntime_web: ortVersion, tract, ort, sizes };
if (argv.includes('--json')) {
  console.log(JSON.stringify(report));
} else {
  const f = (v, d = 1) => (v == null || Number.isNaN(v) ? '-' : v.toFixed(d));
  const ratio = (a, b) => (a && b ? (a / b).toFixed(2) : '-');
  const MB = (b) => (b / 2 ** 20).toFixed(2) + ' MB';
  const rows = [
    ['worker startup (ms)', tract.startup_ms, ort.startup_ms],
    ['load, in worker (ms)', tract.load_ms, ort.load_ms],
    ['load without tract\'s warm-up decodes (ms)', tract.load_cold_ms, ort.load_cold_ms],
    ['load, round trip (ms)', tract.load_rt_ms, ort.load_rt_ms],
    [`encode p50, in worker (ms, ${runs} runs)`, tract.encode_p50_ms, ort.encode_p50_ms],
    ['encode p50, round trip (ms)', tract.encode_rt_p50_ms, ort.encode_rt_p50_ms],
    [`decode p50, in worker (ms, ${decodes - 1} clicks)`, tract.decode_p50_ms, ort.decode_p50_ms],
    ['decode p95, in worker (ms)', tract.decode_p95_ms, ort.decode_p95_ms],
    ['decode p50, round trip (ms)', tract.decode_rt_p50_ms, ort.decode_rt_p50_ms],
    ['first decode (ms)', tract.first_decode_ms, ort.first_decode_ms],
    ['renderer peak RSS (MB)', tract.renderer_peak_mb, ort.renderer_peak_mb],
  ];
  console.log(`model ${report.model}, tile ${path.basename(imagePath)}; tract wasm (dist/) vs onnxruntime-web ${ortVersion} (wasm EP, 1 thread); Chromium ${chromiumVersion}`);
  console.log(`${'figure'.padEnd(40)} ${'tract'.padStart(10)} ${'ort-web'.padStart(10)} ${'tract/ort'.padStart(10)}`);
  for (const [name, a, b] of rows) console.log(`${name.padEnd(40)} ${f(a).padStart(10)} ${f(b).padStart(10)} ${ratio(a, b).padStart(10)}`);
  console.log(`ort-web extras: preprocess (PNG decode + resize + normalise, JS) p50 ${f(ort.pre_p50_ms)} ms; JS mask port p50 ${f(ort.mask_p50_ms)} ms per click`);
  console.log('  (tract\'s encode_ms includes its own PNG decode + preprocessing; its decode_ms includes the mask to image size)');
  for (const [name, z] of [['tract', sizes.tract], ['ort', sizes.ort]]) {
    if (z) console.log(`wasm ${name.padEnd(5)} ${z.file}: ${MB(z.raw)} raw, ${MB(z.gzip)} gzip -9, ${MB(z.brotli)} brotli -q 11`);
  }
  console.log(`     tract/ort: raw ${ratio(sizes.tract.raw, sizes.ort?.raw)}, gzip ${ratio(sizes.tract.gzip, sizes.ort?.gzip)}, brotli ${ratio(sizes.tract.brotli, sizes.ort?.brotli)}`);
  console.log(`main-thread JS heap (performance.memory; workers have none): tract page ${f(tract.main_heap_mb)} MB, ort page ${f(ort.main_heap_mb)} MB`);
  if (tract.profile) {
    const total = tract.profile.reduce((a, r) => a + r.ms, 0);
    console.log(`tract decode profile in the worker: ${f(total, 2)} ms per decode (performance.now per node), slowest:`);
    for (const r of tract.profile.slice(0, 20)) {
      console.log(`  ${f(r.ms, 3).padStart(7)} ms ${f((100 * r.ms) / total).padStart(5)}%  ${r.op.slice(0, 28).padEnd(28)} ${r.name.slice(0, 36).padEnd(36)} ${r.shape}`);
    }
  }
  for (const [name, r] of [['tract', tract], ['ort', ort]]) if (r.errors.length) console.log(`${name} page errors: ${r.errors.join('; ')}`);
}
