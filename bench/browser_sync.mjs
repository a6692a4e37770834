#!/usr/bin/env node
// Team sync throughput in the real app (dist/, headless Chromium) against a real Garage on 127.0.0.1,
// for an N-image batch (default 500 NuInsSeg train tiles):
//   connect  - "Connect and pull batch" until the N images are listed (manifest only: images are lazy);
//   pull     - labels another labeler pushed for all N images (CLI push) until every image has them;
//   push     - the same labels imported as a bundle in a second batch, until the outbox is empty.
// The CLI figures of the same operations are in bench/sync_throughput.mjs. Prints figures; asserts nothing.
//
// Usage: node bench/browser_sync.mjs [--images 500] [--json]
// Needs: dist/ (bash scripts/build-web --dist), target/debug/lamina (or LAMINA_CLI), garage, boto3.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer, launchBrowser, ROOT } from '../tests/e2e/harness.mjs';
import { startGarage } from '../tests/sync/servers.mjs';

const argv = process.argv.slice(2);
const opt = (name, dflt) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : dflt);
const N = Number(opt('--images', 500));
const json = argv.includes('--json');
const CLI = process.env.LAMINA_CLI || path.join(ROOT, 'target/debug/lamina');
const TRAIN = path.resolve(ROOT, '../shared/data/nuinsseg-train');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lamina-bench-sync-'));

const garage = await startGarage({ dir: path.join(tmp, 'garage') });
const s3 = ['--endpoint', garage.endpoint, '--bucket', garage.bucket, '--region', garage.region,
  '--access-key', garage.accessKey, '--secret-key', garage.secretKey];
const cli = (...args) => JSON.parse(execFileSync(CLI, ['--json', ...args], { maxBuffer: 1 << 28 }).toString());

const bundle = path.join(tmp, 'labels.json');
cli('import-masks', TRAIN, '--limit', String(N), '--out', bundle);
for (const batch of ['pull', 'push']) cli('sync', 'publish', ...s3, '--batch', batch, TRAIN, '--limit', String(N));
const cliPush = cli('sync', 'push', ...s3, '--batch', 'pull', '--labeler', 'pipeline', bundle);

const server = await startServer();
const browser = await launchBrowser();
const page = await (await browser.newContext({ viewport: { width: 1400, height: 900 } })).newPage();
await page.goto(server.url);
const testid = (id) => page.locator(`[data-testid="${id}"]`);
await testid('image-count').filter({ hasText: /^[1-9]/ }).waitFor({ timeout: 60_000 }); // the demo
const until = async (read, ok, what, timeout = 600_000) => {
  const end = Date.now() + timeout;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(v)})`);
    await new Promise((r) => setTimeout(r, 50));
  }
};
const status = () => page.locator('#sync-status').evaluate((e) => ({ state: e.dataset.state, pending: Number(e.dataset.pending), text: e.textContent }));

async function connect(batch) {
  await page.locator('details.sync-connect').evaluate((d) => (d.open = true));
  await page.locator('#sync-kind').selectOption('s3');
  for (const [id, v] of [['sync-endpoint', garage.endpoint], ['sync-bucket', garage.bucket], ['sync-region', garage.region],
    ['sync-access-key', garage.accessKey], ['sync-secret-key', garage.secretKey], ['sync-batch', batch], ['sync-labeler', 'bench']]) {
    await page.locator(`#${id}`).fill(v);
  }
  const t0 = Date.now();
  await page.locator('#sync-connect').click();
  await until(() => testid('image-count').textContent(), (v) => Number(v) === N, `${N} images listed`);
  const listed = (Date.now() - t0) / 1000;
  await until(status, (s) => s.state === 'synced' || s.state === 'error', 'the first pull');
  return { listed, total: (Date.now() - t0) / 1000, status: await status() };
}

// Pull: every image gets the pipeline's labels (all N adopted).
const pulled = await connect('pull');
const labeled = await page.evaluate(async () => {
  const db = await new Promise((res, rej) => { const r = indexedDB.open('lamina'); r.onsuccess = () => res(r.result); r.onerror = rej; });
  const tx = db.transaction('sync_assets');
  const all = await new Promise((res) => { const r = tx.objectStore('sync_assets').getAll(); r.onsuccess = () => res(r.result); });
  return all.filter((r) => r.base).length;
});

// Push: the same labels imported into the second batch, pushed from the outbox.
const pushConnect = await connect('push');
const t0 = Date.now();
await testid('import-bundle').setInputFiles(bundle);
const notice = await until(() => page.evaluate(() => document.querySelector('[data-testid=info],[data-testid=error]')?.textContent ?? ''),
  (v) => /^Bundle: \d+ labels/.test(v), 'the bundle imported', 300_000);
const queued = (Date.now() - t0) / 1000;
if (!json) console.log(`import: ${notice.slice(0, 200)}`);
await until(status, (s) => s.state === 'synced' && s.pending === 0, 'the outbox emptied');
const pushed = (Date.now() - t0) / 1000;
const fragments = JSON.parse(execFileSync('python3', [path.join(ROOT, 'tests/sync/s3check.py'), '--endpoint', garage.endpoint,
  '--bucket', garage.bucket, '--region', garage.region, '--access-key', garage.accessKey, '--secret-key', garage.secretKey,
  'list', 'batches/push/labels/']).toString());

await browser.close();
await server.stop();
await garage.stop();
fs.rmSync(tmp, { recursive: true, force: true });

const mb = fragments.reduce((s, f) => s + f.size, 0) / 1e6;
const rows = [
  ['connect (manifest, N images listed)', pulled.listed, N / pulled.listed],
  ['connect + pull labels of N images', pulled.total, N / pulled.total],
  ['import bundle into the outbox', queued, N / queued],
  ['import + push N images (outbox empty)', pushed, N / pushed],
];
const result = { images: N, adopted: labeled, pull_status: pulled.status.state, push_connect_s: pushConnect.total,
  fragments: fragments.length, fragment_mb: mb, cli_push_s: cliPush.seconds,
  rows: rows.map(([what, s, rate]) => ({ what, seconds: s, images_per_s: rate })) };
if (json) {
  console.log(JSON.stringify(result));
} else {
  console.log(`Team sync in the app, ${N}-image batch, Garage 2.5 on 127.0.0.1, release build, headless Chromium`);
  console.log(`| step | s | images/s |\n| --- | --- | --- |`);
  for (const [what, s, rate] of rows) console.log(`| ${what} | ${s.toFixed(2)} | ${rate.toFixed(0)} |`);
  console.log(`adopted ${labeled}/${N} images' labels; pushed ${fragments.length} fragment(s), ${mb.toFixed(1)} MB` +
    ` (CLI push of the same labels: ${cliPush.seconds.toFixed(2)} s)`);
}
