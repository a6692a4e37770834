#!/usr/bin/env node
// Suggestion latency as the user sees it — pointer event to mask drawn — in the real app (dist/), in
// headless Chromium, with long tasks on the main thread. A scripted session (hover, 3 clicks, a box,
// accept) runs `--rounds` times on a tile with no labels (the baseline) and on the same tile with
// `--instances` labels already on it, side by side. Prints figures; asserts nothing.
//
// Usage: node bench/browser_suggest.mjs [--model DIR] [--image PNG] [--rounds 20] [--instances 300] [--json]
// (--image: the image labeled, default a 256 px dev tile; a 1000 px one shows what costs grow with the image.)
// Needs: dist/ from `bash scripts/build-web --dist` (release: the test build is not what users run), tools/ npm
// packages, pycocotools (bench/crowd_bundle.py). --model serves DIR as the app's default model.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startServer, launchBrowser, ROOT } from '../tests/e2e/harness.mjs';

const argv = process.argv.slice(2);
const opt = (name, dflt) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : dflt);
const rounds = Number(opt('--rounds', 20));
const crowd = Number(opt('--instances', 300));
const modelDir = opt('--model', null) && path.resolve(opt('--model'));
const tile = path.resolve(ROOT, opt('--image', '../shared/data/nuinsseg-dev/images/nuinsseg_human_bladder_01_x0y0.png'));
const json = argv.includes('--json');

const bundles = {};
for (const n of [0, crowd]) {
  const dir = path.join(ROOT, `target/bench/crowd${n}`);
  execFileSync('python3', [path.join(ROOT, 'bench/crowd_bundle.py'), tile, dir, String(n)]);
  bundles[n] = dir;
}

const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : NaN;
};
const until = async (read, ok, what, timeout = 30_000) => {
  const end = Date.now() + timeout;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(v)})`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

async function session(browser, serverUrl, n) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  await context.addInitScript(() => {
    window.__longtasks = [];
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) window.__longtasks.push({ start: e.startTime, duration: e.duration });
    }).observe({ type: 'longtask', buffered: true });
  });
  await context.route('**/demo/bundle.json', (r) => r.fulfill({ path: path.join(bundles[n], 'bundle.json') }));
  await context.route('**/demo/tile.png', (r) => r.fulfill({ path: path.join(bundles[n], 'tile.png') }));
  if (modelDir) {
    await context.route('**/models/default/*', (r) => r.fulfill({ path: path.join(modelDir, path.basename(new URL(r.request().url()).pathname)) }));
  }
  const page = await context.newPage();
  await page.goto(serverUrl);
  const text = (id) => page.evaluate((id) => document.querySelector(`[data-testid="${id}"]`)?.textContent.trim() ?? null, id);
  await until(() => text('image-count'), (v) => v === '1', 'the bench tile imported');
  await until(() => text('instance-count'), (v) => Number(v) === n, `${n} labels on the tile`);
  const encoded = await until(() => text('embedding-status'), (v) => /^image: ready/.test(v || ''), 'the tile encoded', 120_000);
  const model = (await text('model-status')).replace(/^ready: /, '');
  await page.locator('[data-testid=tool-suggest]').click();
  await page.evaluate(() => document.activeElement?.blur?.());
  const img = await page.locator('[data-testid=image]').boundingBox();
  const at = ([x, y]) => [img.x + (x * img.width) / 256, img.y + (y * img.height) / 256];
  const seq = async () => Number(await page.locator('[data-testid=suggest-status]').getAttribute('data-seq'));
  const samples = { hover: [], click: [], box: [] };
  const parts = { queued: [], decode: [], messages: [], drawing: [] };
  const t0 = await page.evaluate(() => performance.now());
  const windows = []; // [pointer event, mask drawn] of every sample, in page time
  const record = async (kind, before) => {
    await until(seq, (s) => s > before, `a ${kind} suggestion drawn`);
    const status = page.locator('[data-testid=suggest-status]');
    const ms = Number(await status.getAttribute('data-ms'));
    const drawnAt = Number(await status.getAttribute('data-drawn-at'));
    samples[kind].push(ms);
    windows.push([drawnAt - ms, drawnAt]);
    // Where the time went (the app's own marks): event -> request posted, the worker's decode (mask and
    // its RLE included), the rest of the round trip (messages, serialisation), reply -> mask drawn.
    const part = async (name) => Number(await status.getAttribute(`data-${name}`));
    const [queued, roundTrip, decode] = [await part('queued'), await part('round-trip'), await part('decode')];
    parts.queued.push(queued);
    parts.decode.push(decode);
    parts.messages.push(roundTrip - decode);
    parts.drawing.push(ms - queued - roundTrip);
  };
  for (let r = 0; r < rounds; r++) {
    const p = [40 + ((r * 37) % 176), 40 + ((r * 61) % 176)];
    let before = await seq();
    await page.mouse.move(...at([p[0] - 6, p[1] - 6]));
    await page.mouse.move(...at(p), { steps: 3 });
    await record('hover', before);
    for (const [dx, dy, negative] of [[0, 0, false], [3, 1, false], [12, 12, true]]) {
      await page.mouse.move(...at([p[0] + dx, p[1] + dy]));
      if (negative) await page.keyboard.down('Alt');
      await page.mouse.down();
      // A hover preview of the approach may land before the release; one answered after it is dropped.
      before = await seq();
      await page.mouse.up();
      if (negative) await page.keyboard.up('Alt');
      await record('click', before);
    }
    await page.keyboard.press('Escape');
    await page.mouse.move(...at([p[0] - 10, p[1] - 10]));
    await page.mouse.down();
    await page.mouse.move(...at([p[0] + 10, p[1] + 10]), { steps: 4 });
    before = await seq();
    await page.mouse.up();
    await record('box', before);
    await page.keyboard.press('Enter');
    // An empty mask (possible with a random-weight model) is not accepted: the session stays open.
    if ((await text('suggest-prompts')) !== 'no prompts') await page.keyboard.press('Escape');
    await until(() => text('suggest-prompts'), (v) => v === 'no prompts', 'the suggestion accepted');
  }
  const long = await page.evaluate((t0) => window.__longtasks.filter((e) => e.start >= t0), t0);
  // A long task overlapping a sample's window delayed a suggestion (inference or mask handling on the UI
  // thread); the others ran between suggestions (accepting: storage, redrawing the labels).
  const inSuggestion = long.filter((e) => windows.some(([a, b]) => e.start < b && e.start + e.duration > a));
  await context.close();
  const fig = (xs) => ({ n: xs.length, p50_ms: quantile(xs, 0.5), p95_ms: quantile(xs, 0.95) });
  return {
    instances: n,
    model,
    encode: encoded,
    hover: fig(samples.hover),
    click: fig(samples.click),
    box: fig(samples.box),
    all: fig([...samples.hover, ...samples.click, ...samples.box]),
    parts_p50_ms: Object.fromEntries(Object.entries(parts).map(([k, xs]) => [k, quantile(xs, 0.5)])),
    long_tasks: long.length,
    long_tasks_max_ms: long.reduce((m, e) => Math.max(m, e.duration), 0),
    long_tasks_in_suggestions: inSuggestion.length,
    long_tasks_in_suggestions_max_ms: inSuggestion.reduce((m, e) => Math.max(m, e.duration), 0),
  };
}

const server = await startServer();
const browser = await launchBrowser();
try {
  const results = [];
  for (const n of [0, crowd]) results.push(await session(browser, server.url, n));
  const [base, busy] = results;
  if (json) {
    console.log(JSON.stringify({ rounds, results, ratio_p50: busy.all.p50_ms / base.all.p50_ms }, null, 1));
  } else {
    const f = (x) => x.toFixed(1).padStart(7);
    console.log(`model ${base.model}; ${rounds} rounds of hover + 3 clicks + box + accept; pointer event -> mask drawn`);
    console.log(`${base.encode} / ${busy.encode}`);
    console.log('labels on image | kind  |  n  |  p50 ms |  p95 ms');
    for (const r of results) {
      for (const k of ['hover', 'click', 'box', 'all']) console.log(`${String(r.instances).padStart(15)} | ${k.padEnd(5)} | ${String(r[k].n).padStart(3)} | ${f(r[k].p50_ms)} | ${f(r[k].p95_ms)}`);
      const parts = Object.entries(r.parts_p50_ms).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ');
      console.log(`${String(r.instances).padStart(15)} | p50 of each part, all kinds (ms): ${parts}`);
      console.log(`${String(r.instances).padStart(15)} | long tasks on the main thread: ${r.long_tasks} (longest ${r.long_tasks_max_ms.toFixed(0)} ms); during a suggestion: ${r.long_tasks_in_suggestions} (longest ${r.long_tasks_in_suggestions_max_ms.toFixed(0)} ms)`);
    }
    console.log(`ratio p50 (${crowd} labels / none): ${(busy.all.p50_ms / base.all.p50_ms).toFixed(2)}`);
  }
} finally {
  await browser.close();
  await server.stop();
}
