#!/usr/bin/env node
// Metrics of a run in the app's worker (dist/worker.js, the `run_metrics` request the Model runs page
// sends), p50 over runs, on the data of bench/metrics_data.py. Prints figures; asserts nothing.
//
// Usage: node bench/browser_metrics.mjs [--runs 5] [--data target/bench-metrics]
// Needs dist/ (bash scripts/build-web, or --dist for the deployed build) and tools/node_modules.
import { createRequire } from 'node:module';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(root, 'tools', 'package.json'));
const { chromium } = require('playwright-core');
const argv = process.argv.slice(2);
const opt = (name, dflt) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : dflt);
const runs = Number(opt('--runs', 5));
const data = path.resolve(root, opt('--data', 'target/bench-metrics'));

const mounts = { '/dist/': path.join(root, 'dist'), '/data/': data };
const types = { '.js': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json' };
const server = http.createServer((req, res) => {
  const url = decodeURIComponent(new URL(req.url, 'http://x').pathname);
  if (url === '/') return res.writeHead(200, { 'Content-Type': 'text/html' }).end('<!doctype html><title>bench</title>');
  const prefix = Object.keys(mounts).find((p) => url.startsWith(p));
  const file = prefix && path.join(mounts[prefix], url.slice(prefix.length));
  if (!file || !fs.existsSync(file) || !fs.statSync(file).isFile()) return res.writeHead(404).end();
  res.writeHead(200, { 'Content-Type': types[path.extname(file)] || 'application/octet-stream' });
  fs.createReadStream(file).pipe(res);
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const origin = `http://127.0.0.1:${server.address().port}`;
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] });
try {
  const page = await browser.newPage();
  await page.goto(`${origin}/`);
  const result = await page.evaluate(async (runs) => {
    const [truth, predictions] = await Promise.all(['/data/bundle.json', '/data/predictions.json'].map((u) => fetch(u).then((r) => r.text())));
    const worker = new Worker('/dist/worker.js', { type: 'module' });
    let next = 1;
    const ask = (msg) => new Promise((resolve, reject) => {
      const id = next++;
      const onMessage = ({ data }) => {
        if (data.id !== id || data.event) return;
        worker.removeEventListener('message', onMessage);
        data.ok ? resolve(data.result) : reject(new Error(data.error));
      };
      worker.addEventListener('message', onMessage);
      worker.postMessage({ id, ...msg });
    });
    const out = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      const r = await ask({ kind: 'run_metrics', truth, predictions, split: null, iou: 0.5, score: 0 });
      const roundTrip = performance.now() - t0;
      const report = JSON.parse(r.report);
      out.push({ ms: r.ms, roundTrip, map: report.map, nGt: report.n_gt, nPred: report.n_pred, images: report.images.length });
    }
    worker.terminate();
    return out;
  }, runs);
  const p50 = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const r = result[0];
  console.log(`${r.nGt} truth, ${r.nPred} predictions on ${r.images} images, ${runs} runs in the worker (dist/), p50:`);
  console.log(`  run_metrics in the worker: ${p50(result.map((x) => x.ms)).toFixed(0)} ms computing (with parsing the JSON), ${p50(result.map((x) => x.roundTrip)).toFixed(0)} ms round trip from the page`);
  console.log(`  mAP ${r.map.toFixed(6)}`);
} finally {
  await browser.close();
  server.close();
}
