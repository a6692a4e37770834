#!/usr/bin/env node
// Pre-labeling throughput in the real app (dist/), headless Chromium: the default model's automatic mode
// over 256 px tiles with a pool of 1 and of 2 workers side by side (images/s from Run to the summary,
// model loads included, and the p50 time per image inside a worker), then 1000 px images (mosaics of
// real tiles) on one worker. Prints figures; asserts nothing.
//
// Usage: node bench/browser_prelabel.mjs [--tiles 12] [--big 3] [--workers 1,2] [--json]
// Needs: dist/ from `bash scripts/build-web` (or `--dist`), tools/ npm packages, Pillow.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startServer, launchBrowser, until as poll, ROOT } from '../tests/e2e/harness.mjs';

const argv = process.argv.slice(2);
const opt = (name, dflt) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : dflt);
const tiles = Number(opt('--tiles', 12));
const big = Number(opt('--big', 3));
const workerCounts = opt('--workers', '1,2').split(',').map(Number);
const json = argv.includes('--json');

const dir = path.join(ROOT, 'target/bench/prelabel');
fs.rmSync(dir, { recursive: true, force: true });
fs.mkdirSync(dir, { recursive: true });
// Tiles of nuinsseg-dev; and 1000 px mosaics of 4×4 other tiles (cropped), each a different set.
execFileSync('python3', ['-c', `
import json, sys
from PIL import Image
dev = '${path.join(ROOT, '../shared/data/nuinsseg-dev')}'
items = json.load(open(dev + '/manifest.json'))['items']
out = '${dir}'
for it in items[:${tiles}]:
    Image.open(dev + '/' + it['image']).convert('RGB').save(out + '/' + it['id'] + '.png')
rest = items[${tiles}:]
for m in range(${big}):
    canvas = Image.new('RGB', (1024, 1024))
    for k in range(16):
        tile = Image.open(dev + '/' + rest[(m * 16 + k) % len(rest)]['image']).convert('RGB')
        canvas.paste(tile, ((k % 4) * 256, (k // 4) * 256))
    canvas.crop((0, 0, 1000, 1000)).save(out + f'/mosaic_{m}.png')
`]);
const tileFiles = fs.readdirSync(dir).filter((f) => !f.startsWith('mosaic')).map((f) => path.join(dir, f));
const bigFiles = fs.readdirSync(dir).filter((f) => f.startsWith('mosaic')).map((f) => path.join(dir, f));

const until = (read, ok, what) => poll(read, ok, what, 600_000);

async function run(browser, url, files, workers) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  const text = (id) => page.evaluate((id) => document.querySelector(`[data-testid="${id}"]`)?.textContent.trim() ?? null, id);
  await page.goto(url);
  await until(() => text('model-status'), (t) => /^ready: /.test(t || ''), 'the default model');
  await until(() => text('image-count'), (v) => v === '12', 'the demo');
  page.once('dialog', (d) => d.accept('bench'));
  await page.getByRole('button', { name: 'New project' }).click();
  await until(() => text('image-count'), (v) => v === '0', 'the new project');
  await page.locator('[data-testid=add-images]').setInputFiles(files);
  await until(() => text('image-count'), (v) => v === String(files.length), 'the images imported');
  await page.locator('[data-testid=prelabel-open]').click();
  await page.locator('[data-testid=prelabel-map-nucleus]').selectOption('neoplastic');
  await page.locator('[data-testid=prelabel-workers]').fill(String(workers));
  await page.locator('[data-testid=prelabel-workers]').blur();
  // Clear the import notice so the summary is the one read.
  await page.evaluate(() => document.querySelector('[data-testid=info]')?.click());
  const t0 = Date.now();
  await page.locator('[data-testid=prelabel-run]').click();
  const notice = await until(() => text('info'), (t) => /^Pre-labeled/.test(t || ''), 'the run');
  const seconds = (Date.now() - t0) / 1000;
  await context.close();
  const m = /: (\d+) pre-labels.*\(([\d.]+) images\/s on (\d+) worker\(s\), p50 (\d+) ms per image/.exec(notice);
  return {
    images: files.length, workers, seconds, imagesPerSecond: files.length / seconds,
    instances: Number(m[1]), workerRate: Number(m[2]), p50WorkerMs: Number(m[4]),
  };
}

const server = await startServer();
const browser = await launchBrowser();
const results = [];
try {
  for (const w of workerCounts) results.push({ set: `${tileFiles.length} × 256 px tiles`, ...(await run(browser, server.url, tileFiles, w)) });
  if (bigFiles.length) results.push({ set: `${bigFiles.length} × 1000 px images`, ...(await run(browser, server.url, bigFiles, 1)) });
} finally {
  await browser.close();
  await server.stop();
}
if (json) {
  console.log(JSON.stringify(results, null, 1));
} else {
  console.log('| images | workers | Run → summary, s | images/s | pre-labels | p50 per image in a worker, ms |');
  console.log('|---|---|---|---|---|---|');
  for (const r of results) {
    console.log(`| ${r.set} | ${r.workers} | ${r.seconds.toFixed(1)} | ${r.imagesPerSecond.toFixed(2)} | ${r.instances} | ${r.p50WorkerMs} |`);
  }
  const one = results.find((r) => r.workers === 1 && r.set.includes('256'));
  const two = results.find((r) => r.workers === 2 && r.set.includes('256'));
  if (one && two) console.log(`\n2 workers / 1 worker: ${(two.imagesPerSecond / one.imagesPerSecond).toFixed(2)}× images/s`);
}
