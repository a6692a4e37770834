// Team sync in the app, end to end: real headless Chromium, a real Garage (S3) and a real nginx
// (WebDAV-style, with a bearer token), a fault proxy in front of Garage. Batches are put on the servers
// with `lamina sync publish`; what lands on the server is checked with boto3 (tests/sync/s3check.py),
// the served folder on disk, and `lamina sync pull` (which lists conflicts).
// Run: node --test --test-concurrency=1 tests/e2e/sync.test.mjs
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  suite, byId, count, text, until, waitCount, waitNotice, waitImage, dismissNotice, selectTool, brushStroke,
  polygon, overlayPixel, blur, noPanics, tempDir, clickImage, python, exportTo, ROOT, OUT,
} from './harness.mjs';
import { startGarage, startDav, startFaultProxy, s3check } from '../sync/servers.mjs';
import {
  CLI, DEV, IMAGES, flags, lamina, syncStatus, waitSync, waitSynced, recordStates, pullNow, openConnectForm, connect,
  device as openDevice, openImage, brush, deselect, painted, reload,
} from './sync_app.mjs';

const TMP = tempDir('lamina-e2e-sync-');
const TOKEN = 'e2e-dav-token';

// Image-pixel geometry (upper half of the 256 px tiles, clear of the notice toast).
const STROKE = [[40, 40], [100, 64]];
const STROKE_AT = [70, 52];
const POLYGON = [[140, 30], [214, 42], [200, 112], [150, 100]];
const POLYGON_AT = [180, 70];
const STROKE2 = [[40, 110], [100, 120]];
const STROKE2_AT = [70, 115];
const STROKE3 = [[150, 150], [210, 160]];
const STROKE3_AT = [180, 155];

const env = suite();
let garage, dav, proxy;

before(async () => {
  const [g, d] = await Promise.all([
    startGarage({ dir: path.join(TMP, 'garage') }),
    startDav({ dir: path.join(TMP, 'dav'), token: TOKEN }),
    env.setup(),
  ]);
  garage = g;
  dav = d;
  proxy = await startFaultProxy({ target: garage.endpoint });
});

after(async () => {
  await env.teardown();
  await proxy?.stop();
  await garage?.stop();
  await dav?.stop();
});

// ---- endpoints, batches, the CLI -------------------------------------------------------------

/** How the app and the CLI reach Garage (directly, or through the fault proxy with { via: proxy }). */
const s3 = ({ via, secretKey } = {}) => ({
  kind: 's3',
  endpoint: via ? via.url : garage.endpoint,
  bucket: garage.bucket,
  region: garage.region,
  accessKey: garage.accessKey,
  secretKey: secretKey ?? garage.secretKey,
});
const webdav = ({ token = TOKEN } = {}) => ({ kind: 'webdav', endpoint: dav.url, token });

let seq = 0;
const batchId = (what) => `e2e-${what}-${process.pid}-${++seq}`;

/** Publishes the first IMAGES dev tiles as a new batch; resolves to its id. */
async function publish(conn, what) {
  const batch = batchId(what);
  const report = await lamina(['sync', 'publish', ...flags(conn), '--batch', batch, DEV, '--limit', String(IMAGES)]);
  assert.equal(report.images, IMAGES);
  return batch;
}

/** `lamina sync pull`: the report (with its conflicts) and the bundle of the current labels. */
async function cliPull(conn, batch) {
  const out = path.join(TMP, `pull-${batch}-${++seq}.json`);
  const report = await lamina(['sync', 'pull', ...flags(conn), '--batch', batch, '--out', out]);
  return { report, bundle: JSON.parse(fs.readFileSync(out, 'utf8')) };
}

/** The manifest the CLI published (read with boto3), as an object. */
async function manifestOf(batch) {
  return JSON.parse(await s3check(garage, ['get', `batches/${batch}/manifest.json`]));
}

const putObject = (key, body) => s3check(garage, ['put', key, '-'], { input: body });

/** Every fragment under batches/{batch}/labels/{labeler}/ on Garage, read with boto3: [{ key, json }]. */
async function fragmentsOn(batch, labeler = '') {
  const list = JSON.parse(await s3check(garage, ['list', `batches/${batch}/labels/${labeler ? labeler + '/' : ''}`]));
  return Promise.all(list.map(async ({ key }) => ({ key, json: JSON.parse(await s3check(garage, ['get', key])) })));
}

const instancesOf = (bundle, imageId) => bundle.instances.filter((i) => i.asset_id === imageId);

const device = (t, ...args) => openDevice(env, t, ...args);

// ---- the app ---------------------------------------------------------------------------------

// ---- tests -------------------------------------------------------------------------------------

test('S3: pull a batch, fetch an image, label it; one fragment with those labels lands on Garage', async (t) => {
  const conn = s3();
  const batch = await publish(conn, 'basic');
  const manifest = await manifestOf(batch);
  const { page } = await device(t, conn, batch, 'alice');

  // The list shows the batch's images with their organ, the first one fetched and displayed.
  const rows = byId(page, 'image-row');
  assert.deepEqual(await rows.locator('.name').allTextContents(), manifest.assets.map((a) => a.name));
  assert.deepEqual(await rows.locator('.meta').allTextContents(), manifest.assets.map((a) => a.organ));
  assert.equal(await page.locator('[data-testid=project] option:checked').textContent(), batch);
  assert.equal(await page.evaluate(() => document.querySelector('[data-testid=image]').naturalWidth), 256);
  // Another image is fetched on first open.
  await openImage(page, 2);
  await openImage(page, 0);

  const states = await recordStates(page);
  // A polygon in the second class (Inflammatory), then a brush stroke in the first (Neoplastic). Both
  // within the push delay (800 ms after the last change), so they travel in one fragment: the second is
  // drawn with the keyboard's class and tool keys, which is quick.
  await deselect(page);
  await page.keyboard.press('2');
  await selectTool(page, 'polygon');
  await polygon(page, POLYGON);
  await waitCount(page, 'instance-count', 1);
  await deselect(page);
  await page.keyboard.press('1');
  await page.keyboard.press('b');
  await brushStroke(page, STROKE);
  await waitCount(page, 'instance-count', 2);
  await waitSync(page, (s) => s.pending === 1, 'one image pending');
  await waitSynced(page);
  assert.deepEqual((await states()).filter((s) => s !== 'syncing'), ['synced', 'pending', 'synced'], 'pending, then synced');
  assert.ok(await painted(page, STROKE_AT), 'brush label painted');
  assert.ok(await painted(page, POLYGON_AT), 'polygon label painted');

  const frags = await fragmentsOn(batch, 'alice');
  assert.equal(frags.length, 1, `one fragment: ${frags.map((f) => f.key)}`);
  const [{ key, json }] = frags;
  assert.match(key, new RegExp(`^batches/${batch}/labels/alice/\\d+-[0-9a-f]{16}\\.json$`));
  assert.equal(json.labeler, 'alice');
  assert.equal(json.assets.length, 1);
  const [labels] = json.assets;
  assert.equal(labels.asset_id, manifest.assets[0].id);
  assert.equal(labels.instances.length, 2);
  assert.deepEqual(labels.instances.map((i) => i.class_id).sort(), ['inflammatory', 'neoplastic']);
  assert.deepEqual(labels.image, { sha256: manifest.assets[0].sha256, width: 256, height: 256 });
  await noPanics(page);
});

/** What a screen paints on the open image, nothing selected: painted pixels and a checksum of the layer. */
async function paintedLayer(page) {
  await deselect(page);
  await until(() => byId(page, 'selection').count(), (n) => n === 0, 'nothing selected');
  return page.evaluate(() => {
    const d = document.querySelector('[data-testid=overlay]').getContext('2d').getImageData(0, 0, 256, 256).data;
    let painted = 0;
    let sum = 0;
    for (let i = 0; i < d.length; i += 4) {
      if (d[i + 3]) painted++;
      sum = (sum * 31 + d[i] + 7 * d[i + 1] + 13 * d[i + 2] + 17 * d[i + 3]) % 1000000007;
    }
    return { painted, sum };
  });
}

/** The conflict row of an image; waits for it. */
async function conflictRow(page, imageId) {
  const row = page.locator(`li.sync-conflict[data-asset="${imageId}"]`);
  await row.waitFor();
  return row;
}

const byCreated = (x, y) => x.created.localeCompare(y.created);

test('two labelers: each sees the other\'s labels after a pull; conflicts are shown, resolved both ways, and both devices end equal', async (t) => {
  const conn = s3();
  const batch = await publish(conn, 'two');
  const [img0, img1] = (await manifestOf(batch)).assets.map((a) => a.id);
  const alice = (await device(t, conn, batch, 'alice')).page;
  const bob = (await device(t, conn, batch, 'bob')).page;

  // Alice labels the first image, Bob the second.
  await brush(alice, STROKE, 1);
  await openImage(bob, 1);
  await brush(bob, STROKE2, 1);
  await waitSynced(alice);
  await waitSynced(bob);

  // After a pull each sees the other's label on the other's image.
  await pullNow(alice);
  await pullNow(bob);
  await openImage(alice, 1);
  await waitCount(alice, 'instance-count', 1);
  assert.ok(await painted(alice, STROKE2_AT), "Bob's label painted on Alice's screen");
  await openImage(bob, 0);
  await waitCount(bob, 'instance-count', 1);
  assert.ok(await painted(bob, STROKE_AT), "Alice's label painted on Bob's screen");
  assert.equal(await byId(bob, 'image-row').nth(0).locator('.badge').textContent(), 'To label');

  // Round 1, image 1: both add a label to the same version, so the server holds two.
  await openImage(alice, 0);
  await brush(alice, STROKE3, 2);
  await brush(bob, STROKE2, 2);
  await waitSynced(alice);
  await waitSynced(bob);
  const a = await pullNow(alice);
  const b = await pullNow(bob);
  assert.deepEqual([a.conflicts, b.conflicts], [1, 1], 'each device shows the conflict');
  const cli = await cliPull(conn, batch);
  assert.deepEqual(cli.report.conflicts.map((c) => c.image), [img0], 'two versions of image 1 on the server');

  // Alice takes Bob's version; Bob's next pull finds nothing left to decide.
  const row = await conflictRow(alice, img0);
  assert.equal(await row.locator('button.keep-mine').count(), 1);
  assert.match(await row.locator('button.take-theirs[data-labeler=bob]').textContent(), /bob's \(2\)/);
  await row.locator('button.take-theirs[data-labeler=bob]').click();
  await waitSync(alice, (s) => s.state === 'synced' && s.conflicts === 0 && s.pending === 0, 'Alice resolved and pushed');
  await waitCount(alice, 'instance-count', 2);
  assert.ok(await painted(alice, STROKE2_AT), "Bob's label on Alice's screen");
  assert.ok(!(await painted(alice, STROKE3_AT)), "Alice's replaced label is gone");
  assert.equal((await pullNow(bob)).conflicts, 0, 'Bob has no conflict left');
  assert.equal((await pullNow(alice)).conflicts, 0, 'nor has Alice');
  await waitCount(bob, 'instance-count', 2);
  const shown = await paintedLayer(alice);
  assert.ok(shown.painted > 0);
  assert.deepEqual(await paintedLayer(bob), shown, 'both devices paint the same labels on image 1');

  // Round 2, image 2: again both add a label; Bob keeps his, Alice's device takes it on its next pull.
  await openImage(alice, 1);
  await openImage(bob, 1);
  await brush(alice, STROKE3, 2);
  await brush(bob, STROKE, 2);
  await waitSynced(alice);
  await waitSynced(bob);
  assert.equal((await pullNow(alice)).conflicts, 1);
  assert.equal((await pullNow(bob)).conflicts, 1);
  await (await conflictRow(bob, img1)).locator('button.keep-mine').click();
  await waitSync(bob, (s) => s.state === 'synced' && s.conflicts === 0 && s.pending === 0, 'Bob resolved and pushed');
  assert.equal((await pullNow(alice)).conflicts, 0, "Alice's conflict is settled by Bob's answer");
  await until(() => painted(alice, STROKE_AT), (v) => v, "Bob's kept label on Alice's screen");
  assert.ok(!(await painted(alice, STROKE3_AT)), "Alice's label that Bob replaced is gone");
  assert.deepEqual(await paintedLayer(alice), await paintedLayer(bob), 'both devices paint the same labels on image 2');

  const final = await cliPull(conn, batch);
  assert.deepEqual(final.report.conflicts, [], 'no conflict left on the server');
  assert.equal(instancesOf(final.bundle, img0).length, 2);
  assert.equal(instancesOf(final.bundle, img1).length, 2);

  // Nothing lost: every label ever pushed is in the final labels, or in a version someone replaced by
  // answering a conflict (the parents of each answer).
  const versions = (await fragmentsOn(batch)).flatMap((f) => f.json.assets.map((v) => ({ ...v, labeler: f.json.labeler, created: f.json.created })));
  const latest = (labeler, image) => versions.filter((v) => v.labeler === labeler && v.asset_id === image).sort(byCreated).at(-1);
  const answers = [latest('alice', img0), latest('bob', img1)];
  assert.equal(answers[0].revision, latest('bob', img0).revision, "Alice's answer is Bob's version");
  const finalIds = new Set(final.bundle.instances.map((i) => i.id));
  const replaced = versions.filter((v) => answers.some((x) => x.asset_id === v.asset_id && x.parents.includes(v.revision)));
  const replacedIds = new Set(replaced.flatMap((v) => v.instances.map((i) => i.id)));
  assert.equal([...replacedIds].filter((id) => !finalIds.has(id)).length, 2, "exactly Alice's two replaced labels are gone");
  for (const v of versions) {
    for (const i of v.instances) {
      assert.ok(finalIds.has(i.id) || replacedIds.has(i.id), `label ${i.id} (${v.labeler}) is kept or was replaced by choice`);
    }
  }
  await noPanics(alice);
  await noPanics(bob);
});

test('WebDAV (nginx with a token): pull a batch, label, synced; the fragment is a file in the served folder', async (t) => {
  const conn = webdav();
  const batch = await publish(conn, 'dav');
  const { page } = await device(t, conn, batch, 'carol');
  await brush(page, STROKE, 1);
  await waitSync(page, (s) => s.pending === 1, 'one image pending');
  await waitSynced(page);

  const dir = path.join(dav.root, 'batches', batch, 'labels', 'carol');
  const files = fs.readdirSync(dir);
  assert.equal(files.length, 1, `one fragment file: ${files}`);
  const fragment = JSON.parse(fs.readFileSync(path.join(dir, files[0]), 'utf8'));
  assert.equal(fragment.labeler, 'carol');
  assert.equal(fragment.assets.length, 1);
  assert.equal(fragment.assets[0].instances.length, 1);
  const index = JSON.parse(fs.readFileSync(path.join(dav.root, 'batches', batch, 'index.json'), 'utf8'));
  assert.deepEqual(index.fragments, [`batches/${batch}/labels/carol/${files[0]}`]);
  const { report, bundle } = await cliPull(conn, batch);
  assert.deepEqual(report.conflicts, []);
  assert.deepEqual(bundle.instances.map((i) => i.id), fragment.assets[0].instances.map((i) => i.id));

  // The connect form keeps what the user is typing while pushes land (each one updates the link).
  await openConnectForm(page);
  await page.fill('#sync-labeler', 'carol-laptop');
  await brush(page, STROKE2, 2);
  await waitSynced(page);
  assert.equal(await page.inputValue('#sync-labeler'), 'carol-laptop');
  assert.equal(await page.inputValue('#sync-endpoint'), dav.url);
  await page.locator('section[data-testid=sync-panel]').screenshot({ path: path.join(OUT, 'sync-panel.png') });
  await noPanics(page);
});

test('server errors (503 twice, then a 500) show with their reason and recover to "synced" by themselves', async (t) => {
  t.after(() => proxy.setMode('pass'));
  const conn = s3({ via: proxy });
  const batch = await publish(s3(), 'errors');
  const { page } = await device(t, conn, batch, 'dave');

  proxy.resetCounts();
  proxy.failNext(2, 503, 'PUT');
  await brush(page, STROKE, 1);
  const error = await waitSync(page, (s) => s.state === 'error', 'an error shown');
  t.diagnostic(`shown: ${error.text}`);
  assert.match(error.text, /HTTP 503/);
  assert.match(error.text, /retrying in \d+ s/);
  assert.equal(error.pending, 1);
  await waitSynced(page, 15_000);
  const puts = proxy.requests.filter((r) => r.method === 'PUT' && r.url.includes('/labels/'));
  assert.deepEqual(puts.map((r) => r.status), [503, 503, 200], 'two refused uploads, then one that landed');

  proxy.failNext(1, 500, 'PUT');
  await brush(page, STROKE2, 2);
  const error500 = await waitSync(page, (s) => s.state === 'error', 'an error shown');
  assert.match(error500.text, /HTTP 500/);
  await waitSynced(page, 15_000);

  const { report, bundle } = await cliPull(s3(), batch);
  assert.deepEqual(report.conflicts, []);
  assert.equal(bundle.instances.length, 2, 'both labels on the server, once each');
  assert.equal((await fragmentsOn(batch, 'dave')).length, 2, 'one fragment per successful push');
  await noPanics(page);
});

test('server down: labels stay local and pending, survive a reload, and are pushed once when it is back', async (t) => {
  t.after(() => proxy.setMode('pass'));
  const conn = s3({ via: proxy });
  const batch = await publish(s3(), 'down');
  const { page } = await device(t, conn, batch, 'erin', { remember: true });
  await openImage(page, 1); // fetched while the server is up
  await openImage(page, 0);

  proxy.setMode('down');
  await brush(page, STROKE, 1);
  await openImage(page, 1);
  await brush(page, STROKE2, 1);
  const down = await waitSync(page, (s) => s.state === 'error' && s.pending === 2, 'an error with 2 pending');
  t.diagnostic(`shown: ${down.text}`);
  assert.match(down.text, /could not be reached/);
  assert.equal((await fragmentsOn(batch)).length, 0, 'nothing reached the server');

  await reload(page);
  await waitImage(page);
  await waitCount(page, 'instance-count', 1);
  await waitSync(page, (s) => s.state === 'error' && s.pending === 2, 'still 2 pending after the reload');
  proxy.setMode('pass');
  await waitSynced(page, 20_000);

  const { report, bundle } = await cliPull(s3(), batch);
  assert.deepEqual(report.conflicts, [], 'one version per image');
  const ids = bundle.instances.map((i) => i.id);
  assert.equal(ids.length, 2, 'each label on the server');
  assert.equal(new Set(ids).size, 2, 'no label twice');

  // Opened while the server is down with nothing pending: the failed pull stays shown, not "synced".
  proxy.setMode('down');
  await reload(page);
  await waitImage(page);
  const offline = await waitSync(page, (s) => s.state === 'error', 'the failed pull shown');
  assert.match(offline.text, /pull failed: the server could not be reached/);
  await new Promise((r) => setTimeout(r, 1000));
  assert.deepEqual(await syncStatus(page).then((s) => [s.state, s.pending]), ['error', 0], 'still the error after the (empty) push');
  await noPanics(page);
});

test('a reload while the upload is on the wire: after the reload it completes, nothing lost or doubled', async (t) => {
  t.after(() => proxy.setMode('pass'));
  const conn = s3({ via: proxy });
  const batch = await publish(s3(), 'slow');
  const { page } = await device(t, conn, batch, 'finn', { remember: true });

  proxy.resetCounts();
  proxy.setMode('slow', { delayMs: 5000 });
  await brush(page, STROKE, 1);
  // The fragment reached Garage, but its answer is held by the proxy when the page goes away.
  // Every answer through the proxy is held 5 s, so a pull still in flight delays the push by as much; each
  // poll is a boto3 process. 20 s, like the wait for "synced" below, keeps this from failing on a busy machine.
  await until(() => fragmentsOn(batch, 'finn'), (f) => f.length === 1, 'the fragment stored on Garage', 20_000);
  const upload = proxy.requests.find((r) => r.method === 'PUT' && r.url.includes('/labels/'));
  assert.equal(upload.status, null, 'its answer has not reached the browser');
  proxy.setMode('pass');
  await reload(page);
  await waitImage(page);
  await waitCount(page, 'instance-count', 1);
  await waitSynced(page, 20_000);

  const { report, bundle } = await cliPull(s3(), batch);
  assert.deepEqual(report.conflicts, []);
  assert.equal(bundle.instances.length, 1, 'the label once');
  const frags = await fragmentsOn(batch, 'finn');
  assert.equal(frags.length, 1, `the upload that landed is recognised, not sent again: ${frags.map((f) => f.key)}`);
  await noPanics(page);
});

test('refused credentials: a wrong secret is named as such, labels wait locally, the right one pushes them', async (t) => {
  const batch = await publish(s3(), 'creds');
  const wrong = s3({ secretKey: 'wrong' + garage.secretKey.slice(5) });
  const { page } = await env.open(t);
  await dismissNotice(page);

  // A new device with a wrong secret: nothing is created.
  await connect(page, wrong, batch, 'gina');
  const refused = await waitNotice(page, 'error', /refused the credentials/);
  assert.match(refused, new RegExp(`^Batch not pulled: .*${batch}`));
  await waitSync(page, (s) => s.state === 'error' && /refused the credentials/.test(s.text), 'status names the refusal');
  assert.equal(await count(page, 'image-count'), 12, 'the demo project is still open');
  assert.ok(!(await page.locator('[data-testid=project] option').allTextContents()).includes(batch), 'no project for the batch');

  // The right secret (not remembered): pulled and synced.
  await dismissNotice(page);
  await connect(page, s3(), batch, 'gina');
  await waitNotice(page, 'info', new RegExp(`^Batch ${batch}: ${IMAGES} images`));
  await waitImage(page);
  await waitSynced(page);
  await brush(page, STROKE, 1);
  await waitSynced(page);

  // After a reload the secret is gone: new labels wait in the outbox.
  await reload(page);
  await waitImage(page);
  await waitSync(page, (s) => s.state === 'error' && /enter the credentials/.test(s.text), 'asks for the credentials');
  await brush(page, STROKE2, 2);
  await waitSync(page, (s) => s.pending === 1, 'one image pending');

  // A wrong secret again: refused, the labels stay pending, the project is untouched.
  await connect(page, wrong, batch, 'gina');
  await waitNotice(page, 'error', /refused the credentials/);
  const status = await waitSync(page, (s) => s.state === 'error' && /refused the credentials/.test(s.text), 'refusal shown');
  assert.equal(status.pending, 1);
  await waitCount(page, 'instance-count', 2);
  assert.equal(await count(page, 'image-count'), IMAGES);
  assert.equal((await fragmentsOn(batch, 'gina')).length, 1, 'only the first push is on the server');

  // The right secret: synced.
  await dismissNotice(page);
  await connect(page, s3(), batch, 'gina');
  await waitSynced(page);
  const { bundle } = await cliPull(s3(), batch);
  assert.equal(bundle.instances.length, 2);
  await noPanics(page);
});

test('credentials refused mid-session (HTTP 403): no retry loop, the labels wait until the user reconnects', async (t) => {
  t.after(() => proxy.setMode('pass'));
  const conn = s3({ via: proxy });
  const batch = await publish(s3(), 'expired');
  const { page } = await device(t, conn, batch, 'hana');
  proxy.resetCounts();
  proxy.failNext(1, 403, 'PUT');
  await brush(page, STROKE, 1);
  const status = await waitSync(page, (s) => s.state === 'error', 'an error');
  assert.match(status.text, /refused the credentials/);
  // No automatic retry: after 3 s still one upload attempt and one pending image.
  await new Promise((r) => setTimeout(r, 3000));
  assert.equal(proxy.requests.filter((r) => r.method === 'PUT').length, 1);
  assert.deepEqual(await syncStatus(page).then((s) => [s.state, s.pending]), ['error', 1]);
  await connect(page, conn, batch, 'hana');
  await waitSynced(page);
  assert.equal((await cliPull(s3(), batch)).bundle.instances.length, 1);
  await noPanics(page);
});

test('a malformed manifest.json: a clear error naming the batch; no project created, an existing one untouched', async (t) => {
  const conn = s3();
  const fresh = await publish(conn, 'badjson');
  await putObject(`batches/${fresh}/manifest.json`, '{"assets": [ {"id": "a", ');
  const { page } = await env.open(t);
  await dismissNotice(page);
  await connect(page, conn, fresh, 'ivan');
  const error = await waitNotice(page, 'error', /^Batch not pulled/);
  t.diagnostic(`shown: ${error}`);
  assert.ok(error.includes(fresh), 'the error names the batch');
  assert.ok(!(await page.locator('[data-testid=project] option').allTextContents()).includes(fresh), 'no project');
  assert.equal(await count(page, 'image-count'), 12);

  // A batch already on the device, whose manifest is later broken on the server.
  const batch = await publish(conn, 'broken-later');
  await dismissNotice(page);
  await connect(page, conn, batch, 'ivan');
  await waitNotice(page, 'info', new RegExp(`^Batch ${batch}: ${IMAGES} images`));
  await waitImage(page);
  await brush(page, STROKE, 1);
  await waitSynced(page);
  await putObject(`batches/${batch}/manifest.json`, 'not json at all');
  await dismissNotice(page);
  await connect(page, conn, batch, 'ivan');
  const again = await waitNotice(page, 'error', /^Batch not pulled/);
  assert.ok(again.includes(batch), 'the error names the batch');
  assert.equal(await page.locator('[data-testid=project] option:checked').textContent(), batch);
  assert.equal(await count(page, 'image-count'), IMAGES);
  await waitCount(page, 'instance-count', 1);
  await noPanics(page);
});

test('a manifest with a missing image and one with a wrong sha256: clear errors on opening them, the rest works', async (t) => {
  const conn = s3();
  const batch = await publish(conn, 'holes');
  const manifest = await manifestOf(batch);
  const [first, second] = manifest.assets;
  manifest.assets.push(
    { ...first, id: 'gone', name: 'gone.png', url: 'images/gone.png' },
    { ...second, id: 'tampered', name: 'tampered.png', sha256: first.sha256 },
  );
  await putObject(`batches/${batch}/manifest.json`, JSON.stringify(manifest));
  const { page } = await device(t, conn, batch, 'jude', { images: IMAGES + 2 });

  await byId(page, 'image-row').nth(IMAGES).click();
  const missing = await waitNotice(page, 'error', /^gone\.png: /);
  t.diagnostic(`missing: ${missing}`);
  assert.match(missing, /not on the server \(HTTP 404 on GET batches\/.*\/images\/gone\.png\)/);
  assert.ok(!missing.includes('<?xml'), 'no raw server answer');
  await dismissNotice(page);
  await byId(page, 'image-row').nth(IMAGES + 1).click();
  const tampered = await waitNotice(page, 'error', /^tampered\.png: /);
  t.diagnostic(`tampered: ${tampered}`);
  assert.match(tampered, /sha256/);

  // The other images still open and take labels.
  await dismissNotice(page);
  await openImage(page, 2);
  await brush(page, STROKE, 1);
  await waitSynced(page);
  // A tampered image is not kept: opening it again fails again.
  await byId(page, 'image-row').nth(IMAGES + 1).click();
  await waitNotice(page, 'error', /^tampered\.png: .*sha256/);
  await noPanics(page);
});

test('closing the tab with pending changes asks first; with none pending it closes at once', async (t) => {
  t.after(() => proxy.setMode('pass'));
  const conn = s3({ via: proxy });
  const batch = await publish(s3(), 'unload');
  const { page } = await device(t, conn, batch, 'kim');
  const dialogs = [];
  page.on('dialog', (d) => {
    dialogs.push(d.type());
    d.dismiss().catch(() => {}); // "stay on the page"
  });

  proxy.setMode('down');
  await brush(page, STROKE, 1);
  await waitSync(page, (s) => s.state === 'error' && s.pending === 1, 'one image pending, server down');
  await page.close({ runBeforeUnload: true });
  await until(() => dialogs, (d) => d.length === 1, 'the leave-page question');
  assert.deepEqual(dialogs, ['beforeunload']);
  assert.equal(page.isClosed(), false, 'the user stayed');

  proxy.setMode('pass');
  await waitSynced(page, 20_000);
  const closed = new Promise((r) => page.once('close', r));
  await page.close({ runBeforeUnload: true });
  await closed;
  assert.deepEqual(dialogs, ['beforeunload'], 'no question once everything is on the server');
});

test('an outbox this device cannot read is said on the sync line, never shown as "synced"', async (t) => {
  const conn = s3();
  const batch = await publish(conn, 'badoutbox');
  const { page } = await device(t, conn, batch, 'gina', { remember: true });
  // A queued change whose record is damaged (an asset id that is not text), as a bug or another
  // version of the app could leave it.
  await page.evaluate(
    (project) =>
      new Promise((resolve, reject) => {
        const open = indexedDB.open('lamina');
        open.onsuccess = () => {
          const tx = open.result.transaction('outbox', 'readwrite');
          tx.objectStore('outbox').put({ project_id: project, asset_id: 7, generation: 'x' }, 'damaged');
          tx.oncomplete = () => (open.result.close(), resolve());
          tx.onerror = () => reject(tx.error);
        };
        open.onerror = () => reject(open.error);
      }),
    `batch-${batch}`,
  );
  await reload(page);
  const shown = await waitSync(page, (s) => s.state === 'error', 'an error on the sync line');
  t.diagnostic(`shown: ${shown.text}`);
  assert.match(shown.text, /(cannot|could not) be read.*on this device/);
  // A pull does not paper over it with "synced" either.
  const after = await pullNow(page);
  assert.equal(after.state, 'error', `after a pull: ${after.text}`);
  assert.match(after.text, /on this device/);
  await noPanics(page);
});

test('hostile fragments on the bucket: a 65535 px mask and labels for another image are skipped and reported, never adopted; markup stays text', async (t) => {
  const conn = s3();
  const batch = await publish(conn, 'hostile');
  const assets = (await manifestOf(batch)).assets;
  const put = async (kind, i) => {
    const a = assets[i];
    const out = JSON.parse(await python('tests/sync/hostile_fragment.py', [kind, batch, 'mallory', a.id, a.sha256, '256', '256']));
    await putObject(out.key, out.body);
    return out;
  };
  await put('huge-mask', 0);
  await put('wrong-image', 1);
  const payloads = await put('payloads', 2);
  // Markup in an image name and a metadata value of the manifest, too.
  const XSS_NAME = '<img src=x onerror="window.__xss=3">.png';
  const XSS_ORGAN = '<b onmouseover="window.__xss=4">liver</b>';
  const manifest = await manifestOf(batch);
  Object.assign(manifest.assets[3], { name: XSS_NAME, organ: XSS_ORGAN });
  await putObject(`batches/${batch}/manifest.json`, JSON.stringify(manifest));
  const { page } = await device(t, conn, batch, 'alice');
  const error = await until(() => text(page, 'error'), (s) => /Some objects on the server were skipped/.test(s || ''), 'the skipped fragments reported');
  assert.match(error, /mask size 65535x65535 \(h x w\) does not match its image, 256x256/);
  assert.match(error, /mallory's labels for .* were not taken: they were drawn on another image/);
  // Nothing of either was adopted; the app works on those images.
  for (const i of [0, 1]) {
    await openImage(page, i);
    await waitCount(page, 'instance-count', 0);
    await selectTool(page, 'select');
    await clickImage(page, [60, 60]);
  }
  // The sound one is adopted, and its markup is shown as text, never run.
  await openImage(page, 2);
  await waitCount(page, 'instance-count', 1);
  const classNames = await page.locator('[data-testid=class-row] input:not([type=color])').evaluateAll((els) => els.map((e) => e.value));
  assert.ok(classNames.includes(payloads.xss_class), `the class id shows as text: ${classNames}`);
  assert.deepEqual(await byId(page, 'issue-comment').allTextContents(), [payloads.xss_comment]);
  const row = byId(page, 'image-row').nth(3);
  assert.equal(await row.locator('.name').textContent(), XSS_NAME);
  assert.equal(await row.locator('.meta').textContent(), XSS_ORGAN);
  assert.equal(await page.evaluate(() => window.__xss), undefined, 'no payload ran');
  assert.equal(await page.locator('img[src="x"]').count(), 0);
  await noPanics(page);
});

test('a server that answers without end (declared or streamed): the pull stops at the limit and says so; labels stay', async (t) => {
  const conn = s3({ via: proxy });
  const batch = await publish(s3(), 'huge');
  const { page } = await device(t, conn, batch, 'alice');
  await brush(page, STROKE, 1);
  await waitSynced(page);
  try {
    for (const declareLength of [true, false]) {
      proxy.setMode('huge', { declareLength });
      const status = await pullNow(page);
      assert.equal(status.state, 'error');
      assert.match(status.text, /answer to (GET|list) batches\/.* is over \d+ MB, more than Lamina takes for it; refused/);
    }
    // A server's error page with markup in it is shown as text.
    proxy.setMode('pass');
    const markup = '<img src=x onerror="window.__xss=5">';
    proxy.failNext(1, 400, 'GET', markup);
    const refused = await pullNow(page);
    assert.ok(refused.text.includes(markup), `the body shown as text: ${refused.text}`);
    assert.equal(await page.evaluate(() => window.__xss), undefined);
  } finally {
    proxy.setMode('pass');
  }
  await waitCount(page, 'instance-count', 1);
  assert.equal((await pullNow(page)).state, 'synced', 'fine again once the server is');
  await noPanics(page);
});

test('two tabs of one browser on a batch: one pushes at a time, so a change goes up once', async (t) => {
  const conn = s3({ via: proxy });
  const batch = await publish(s3(), 'tabs');
  const { page: a, context } = await device(t, conn, batch, 'alice', { remember: true });
  const b = await context.newPage();
  b.errors = [];
  await b.goto(env.server.url);
  await waitSynced(b);
  try {
    // Answers held 800 ms: both tabs are pushing the same outbox at once unless one waits for the other.
    proxy.setMode('slow', { delayMs: 800 });
    await brush(a, STROKE, 1);
    await Promise.all([a, b].map((p) => p.evaluate(() => window.dispatchEvent(new Event('online')))));
    await waitSynced(a, 30_000);
    await waitSynced(b, 30_000);
  } finally {
    proxy.setMode('pass');
  }
  const pushed = await fragmentsOn(batch, 'alice');
  assert.equal(pushed.length, 1, `one fragment, not one per tab: ${pushed.map((f) => f.key)}`);
  await noPanics(a);
});

test('a change made in a tab closed before its push goes up from the other tab', async (t) => {
  const conn = s3();
  const batch = await publish(conn, 'tab-closed');
  const { page: a, context } = await device(t, conn, batch, 'alice', { remember: true });
  const b = await context.newPage();
  b.errors = [];
  await b.goto(env.server.url);
  await waitSynced(b);
  // Tab b draws and is closed at once, inside the delay before its push (found by tests/soak).
  await brush(b, STROKE, 1);
  await b.close();
  await waitCount(a, 'instance-count', 1);
  // Read from the server until the label is there: tab a may still show "synced" from before it picked
  // up tab b's queued change, so its status alone does not say the push happened (a CI run read the
  // server in that moment).
  const pulled = await until(
    async () => (await cliPull(conn, batch)).bundle.instances.length,
    (n) => n === 1,
    'the label on the server',
    20_000,
  );
  assert.equal(pulled, 1, 'the label is on the server');
  await waitSynced(a, 20_000);
  await noPanics(a);
});

test('the S3 secret, not remembered, is nowhere on the device: not in IndexedDB, the console or an export', async (t) => {
  const conn = s3();
  const batch = await publish(conn, 'secret');
  const { page } = await device(t, conn, batch, 'alice');
  const logged = [];
  page.on('console', (m) => logged.push(m.text()));
  await brush(page, STROKE, 1);
  await waitSynced(page);
  await pullNow(page);
  // Every value of every store of every database of the origin, as text.
  const stored = await page.evaluate(async () => {
    const out = [];
    for (const { name } of await indexedDB.databases()) {
      const db = await new Promise((res, rej) => { const r = indexedDB.open(name); r.onsuccess = () => res(r.result); r.onerror = () => rej(r.error); });
      for (const store of db.objectStoreNames) {
        const values = await new Promise((res) => { const r = db.transaction(store).objectStore(store).getAll(); r.onsuccess = () => res(r.result); });
        for (const v of values) out.push(typeof v === 'string' ? v : JSON.stringify(v) ?? '');
      }
      db.close();
    }
    return out.join('\n');
  });
  assert.ok(!stored.includes(conn.secretKey), 'the secret is not in IndexedDB');
  assert.ok(stored.includes(batch), 'the stores were read (the batch link is there)');
  const file = await exportTo(page, 'export-bundle', 'secret');
  assert.ok(!fs.readFileSync(file, 'utf8').includes(conn.secretKey), 'nor in an export');
  assert.ok(!logged.some((l) => l.includes(conn.secretKey)), 'nor in the console');
  await noPanics(page);
});
