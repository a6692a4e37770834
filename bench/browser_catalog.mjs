#!/usr/bin/env node
// The catalog at scale in the real app (dist/), headless Chromium: a project of 10,000 images made from
// real tiles (crops and flips of nuinsseg-dev, JPEG, each with organ / slide / n_nuclei metadata and label
// counts) written into IndexedDB, then: open the catalog, filter by an organ, sort by a number column,
// scroll the grid end to end. For each step: the time until the page shows the result, and the long
// tasks (Long Tasks API: main-thread tasks over 50 ms) seen meanwhile, with the longest. Prints figures;
// asserts nothing.
//
// Usage: node bench/browser_catalog.mjs [--images 10000] [--json]
// Needs: dist/ from `bash scripts/build-web`, tools/ npm packages, Pillow.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startServer, launchBrowser, until as poll, ROOT } from '../tests/e2e/harness.mjs';

const argv = process.argv.slice(2);
const opt = (name, dflt) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : dflt);
const images = Number(opt('--images', 10_000));
const json = argv.includes('--json');
// --profile: a CPU profile of each step (CDP), its ten heaviest functions by self time printed after it.
const profile = argv.includes('--profile');
const until = (read, ok, what, ms = 600_000) => poll(read, ok, what, ms);

// 24 real tiles (four of each of six organs), served beside the app.
const served = path.join(ROOT, 'dist/bench-catalog');
fs.rmSync(served, { recursive: true, force: true });
fs.mkdirSync(served, { recursive: true });
const tiles = JSON.parse(execFileSync('python3', ['-c', `
import json, shutil
dev = '${path.join(ROOT, '../shared/data/nuinsseg-dev')}'
items = [it for it in json.load(open(dev + '/manifest.json'))['items']
         if it['organ'] in ('liver', 'kidney', 'brain', 'spleen', 'lung', 'tongue')]
out = []
for it in items:
    shutil.copyfile(dev + '/' + it['image'], '${served}/' + it['id'] + '.png')
    out.append({'file': it['id'] + '.png', 'organ': it['organ'], 'n_nuclei': it['n_nuclei']})
print(json.dumps(out))
`]).toString());

const server = await startServer();
const browser = await launchBrowser();
const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
const page = await context.newPage();
const text = (id) => page.evaluate((id) => document.querySelector(`[data-testid="${id}"]`)?.textContent.trim() ?? null, id);
await page.goto(server.url);
await until(() => text('image-count'), (v) => v === '12', 'the demo');

// Writes the project straight into the app's IndexedDB (as the app stores it), in batches.
const madeMs = await page.evaluate(async ({ tiles, images }) => {
  const started = performance.now();
  const bitmaps = await Promise.all(tiles.map(async (t) => createImageBitmap(await (await fetch(`bench-catalog/${t.file}`)).blob())));
  const db = await new Promise((res, rej) => { const r = indexedDB.open('lamina'); r.onsuccess = () => res(r.result); r.onerror = () => rej(r.error); });
  const done = (tx) => new Promise((res, rej) => { tx.oncomplete = res; tx.onerror = () => rej(tx.error); tx.onabort = () => rej(tx.error); });
  const demo = await new Promise((res) => { const r = db.transaction('projects').objectStore('projects').getAll(); r.onsuccess = () => res(r.result[0]); });
  const projectId = 'bench-catalog-10k';
  const tx0 = db.transaction(['projects'], 'readwrite');
  tx0.objectStore('projects').put({ ...demo, id: projectId, name: `Catalog ${images}` });
  await done(tx0);
  const canvas = new OffscreenCanvas(192, 192);
  const ctx = canvas.getContext('2d');
  const classes = demo.ontology.classes.map((c) => c.id);
  const BATCH = 250;
  for (let from = 0; from < images; from += BATCH) {
    const records = [];
    for (let i = from; i < Math.min(images, from + BATCH); i++) {
      const k = i % tiles.length;
      const variant = Math.floor(i / tiles.length);
      const [dx, dy] = [(variant * 4) % 64, (Math.floor(variant / 16) * 4) % 64];
      const flip = variant % 4;
      ctx.save();
      ctx.translate(flip & 1 ? 192 : 0, flip & 2 ? 192 : 0);
      ctx.scale(flip & 1 ? -1 : 1, flip & 2 ? -1 : 1);
      ctx.drawImage(bitmaps[k], dx, dy, 192, 192, 0, 0, 192, 192);
      ctx.restore();
      const blob = await canvas.convertToBlob({ type: 'image/jpeg', quality: 0.85 });
      const counts = {};
      if (i % 3 === 0) counts[classes[i % classes.length]] = (i % 17) + 1;
      records.push([{
        project_id: projectId,
        position: i,
        asset: {
          id: `img-${i}`, name: `${tiles[k].organ}_${String(i).padStart(5, '0')}.jpg`, sha256: '',
          width: 192, height: 192,
          metadata: { organ: tiles[k].organ, slide: `slide-${i % 40}`, n_nuclei: String(tiles[k].n_nuclei + (i % 7)) },
          status: i % 3 === 0 ? 'in_progress' : 'unlabeled', stage: 'to_label',
        },
        label_counts: { classes: counts, prelabels: 0 },
      }, blob]);
    }
    const tx = db.transaction(['assets', 'blobs'], 'readwrite');
    for (const [r, blob] of records) {
      tx.objectStore('assets').put(r, r.asset.id);
      tx.objectStore('blobs').put(blob, r.asset.id);
    }
    await done(tx);
  }
  // Last, so the app's own write of it (the demo it opened at start) cannot come after.
  const tx1 = db.transaction(['settings'], 'readwrite');
  tx1.objectStore('settings').put(projectId, 'last_project');
  await done(tx1);
  db.close();
  return performance.now() - started;
}, { tiles, images });

await page.reload();
await until(() => text('image-count'), (v) => v === String(images), `the ${images} images`).catch(async (e) => {
  console.error(await text('error'), await page.evaluate(() => [...document.querySelectorAll('[data-testid=project] option')].map((o) => o.textContent)));
  throw e;
});

/** Runs `act` in the page with long tasks observed; resolves when `ready` holds: {ms, long, longest}. */
async function step(name, act, ready) {
  const cdp = profile ? await context.newCDPSession(page) : null;
  if (cdp) {
    await cdp.send('Profiler.enable');
    await cdp.send('Profiler.setSamplingInterval', { interval: 200 });
    await cdp.send('Profiler.start');
  }
  await page.evaluate(() => {
    window.__long = [];
    window.__obs?.disconnect();
    window.__obs = new PerformanceObserver((list) => window.__long.push(...list.getEntries().map((e) => e.duration)));
    window.__obs.observe({ type: 'longtask' });
    window.__t0 = performance.now();
  });
  await act();
  await until(ready, (v) => v, name);
  // One more frame, so a task finishing the render is counted.
  const r = await page.evaluate(() => new Promise((res) => requestAnimationFrame(() => setTimeout(() => {
    res({ ms: performance.now() - window.__t0, long: window.__long.length, longest: Math.max(0, ...window.__long) });
  }, 0))));
  if (cdp) {
    const { profile: p } = await cdp.send('Profiler.stop');
    const self = new Map();
    const byId = new Map(p.nodes.map((n) => [n.id, n]));
    const dt = new Map();
    p.samples.forEach((id, i) => dt.set(id, (dt.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)));
    for (const [id, us] of dt) {
      const f = byId.get(id).callFrame;
      const key = `${f.functionName || '(anonymous)'} ${f.url.split('/').pop()}`;
      self.set(key, (self.get(key) ?? 0) + us / 1000);
    }
    console.log(`-- ${name}: heaviest self time`);
    for (const [k, ms] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 12)) console.log(`   ${ms.toFixed(1).padStart(7)} ms  ${k}`);
    await cdp.detach();
  }
  return { step: name, ...r };
}

const results = [];
results.push(await step('open the catalog', () => page.click('[data-testid=page-catalog]'),
  async () => (await text('catalog-total')) === String(images) && (await page.locator('[data-testid=catalog-cell]').count()) > 0));
const organ = 'liver';
const expected = String(Math.round(images / 6));
results.push(await step(`filter: organ = ${organ}`, () => page.locator(`[data-testid=filter-value][data-field=organ][data-value=${organ}]`).check(),
  async () => Math.abs(Number(await text('catalog-count')) - Number(expected)) <= 2));
results.push(await step('filter: n_nuclei ≥ 20 on top', async () => {
  await page.locator('[data-testid=filter-min][data-field=n_nuclei]').fill('20');
  await page.locator('[data-testid=filter-min][data-field=n_nuclei]').dispatchEvent('change');
}, async () => Number(await text('catalog-count')) < Number(expected)));
results.push(await step('clear filters', () => page.click('[data-testid=filter-clear]'),
  async () => (await text('catalog-count')) === String(images)));
results.push(await step('sort by n_nuclei, high to low', async () => {
  await page.selectOption('[data-testid=sort-field]', 'n_nuclei');
  await page.locator('[data-testid=sort-descending]').check();
}, async () => page.evaluate(() => {
  const first = document.querySelector('[data-testid=catalog-cell]');
  return first !== null && first.dataset.name !== undefined;
})));
results.push(await step('scroll the grid top to bottom (60 steps)', () => page.evaluate(async () => {
  const grid = document.querySelector('[data-testid=catalog-grid]');
  const steps = 60;
  for (let s = 1; s <= steps; s++) {
    grid.scrollTop = (grid.scrollHeight - grid.clientHeight) * (s / steps);
    await new Promise((r) => requestAnimationFrame(() => r()));
  }
}), async () => page.evaluate(() => {
  const grid = document.querySelector('[data-testid=catalog-grid]');
  return grid.scrollTop + grid.clientHeight >= grid.scrollHeight - 2;
})));

await browser.close();
await server.stop();
fs.rmSync(served, { recursive: true, force: true });

if (json) {
  console.log(JSON.stringify({ images, made_ms: madeMs, results }, null, 1));
} else {
  console.log(`catalog of ${images} images (made in ${(madeMs / 1000).toFixed(1)} s)`);
  for (const r of results) {
    console.log(`${r.step.padEnd(42)} ${r.ms.toFixed(0).padStart(6)} ms  long tasks: ${r.long} (longest ${r.longest.toFixed(0)} ms)`);
  }
}
