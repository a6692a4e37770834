// Review end to end: a labeler and reviewers on separate browser contexts (separate devices), syncing
// through the real Garage (S3) server. Label → submit → reject with pinned issues → rework, reply, resolve,
// resubmit → approve → Done, exported "Done only" and checked with pycocotools; a stale approval and two
// reviewers deciding at once, each ending as the app promises, nothing lost.
// Run: node --test --test-concurrency=1 tests/e2e/review.test.mjs
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import {
  suite, byId, count, text, until, waitCount, clickImage, toScreen, exportTo, readJson, python, noPanics, tempDir,
  OUT,
} from './harness.mjs';
import { startGarage, s3check } from '../sync/servers.mjs';
import { DEV, IMAGES, flags, lamina, waitSynced, pullNow, device as openDevice, openImage, brush } from './sync_app.mjs';

const TMP = tempDir('lamina-e2e-review-');
const env = suite();
let garage;

before(async () => {
  [garage] = await Promise.all([startGarage({ dir: path.join(TMP, 'garage') }), env.setup()]);
});

after(async () => {
  await env.teardown();
  await garage?.stop();
});

// Image-pixel geometry on the 256 px tiles.
const STROKE = [[40, 40], [100, 64]];
const STROKE2 = [[40, 110], [100, 120]];
const STROKE3 = [[150, 150], [210, 160]];
const STROKE4 = [[150, 40], [200, 60]];
const PIN1 = [180, 155]; // where STROKE3 will go: a "missed nucleus"
const PIN2 = [70, 52]; // on STROKE's label: a "bad boundary"

const s3 = () => ({
  kind: 's3', endpoint: garage.endpoint, bucket: garage.bucket, region: garage.region,
  accessKey: garage.accessKey, secretKey: garage.secretKey,
});

let seq = 0;
async function publish(conn) {
  const batch = `e2e-review-${process.pid}-${++seq}`;
  await lamina(['sync', 'publish', ...flags(conn), '--batch', batch, DEV, '--limit', String(IMAGES)]);
  const manifest = JSON.parse(await s3check(garage, ['get', `batches/${batch}/manifest.json`]));
  return { batch, names: manifest.assets.map((a) => a.name) };
}

async function cliPull(conn, batch) {
  const out = path.join(TMP, `pull-${batch}-${++seq}.json`);
  const report = await lamina(['sync', 'pull', ...flags(conn), '--batch', batch, '--out', out]);
  return { report, bundle: readJson(out) };
}

/** A device with the person's name set (review events are signed with it). */
async function person(t, conn, batch, name) {
  const { page } = await openDevice(env, t, conn, batch, name);
  await page.fill('input.author', name);
  await page.locator('input.author').dispatchEvent('change');
  return page;
}

const stageCount = async (page, key) => Number(await byId(page, `stage-${key}`).locator('.count').textContent());
const waitStage = (page, stage) => until(() => text(page, 'stage'), (s) => s === stage, `stage "${stage}"`);
const waitStageCount = (page, key, n) => until(() => stageCount(page, key), (v) => v === n, `${n} image(s) at ${key}`);

/** Opens image `i` of the whole list (not a stage queue). */
async function openAt(page, i) {
  await byId(page, 'stage-all').click();
  await openImage(page, i);
}

async function submit(page) {
  await byId(page, 'submit').click();
  await waitStage(page, 'In review');
}

/** Pins an issue at each image point (pin mode, then clicks on the image). */
async function pin(page, points) {
  const before = await byId(page, 'draft-pin').count();
  if (!/active/.test((await byId(page, 'pin-issue').getAttribute('class')) || '')) await byId(page, 'pin-issue').click();
  for (const p of points) await clickImage(page, p);
  await until(() => byId(page, 'draft-pin').count(), (n) => n === before + points.length, 'the pins placed');
}

/** The labeler labels the first two images and submits both; synced. */
async function labelAndSubmitTwo(page) {
  await brush(page, STROKE, 1);
  await submit(page);
  await openImage(page, 1);
  await brush(page, STROKE2, 1);
  await submit(page);
  await waitSynced(page);
}

const waitElements = (page, id, n) => until(() => byId(page, id).count(), (v) => v === n, `${n} × ${id}`);
const historyText = async (page) => (await byId(page, 'history-line').allTextContents()).join('\n');

test('label → submit → reject with two pinned issues → rework, reply, resolve, resubmit → approve → Done, exported Done only', async (t) => {
  const conn = s3();
  const { batch, names } = await publish(conn);
  const alice = await person(t, conn, batch, 'alice');
  const rita = await person(t, conn, batch, 'rita');
  await byId(rita, 'reviewers').fill('rita');
  await byId(rita, 'reviewers').dispatchEvent('change');

  await labelAndSubmitTwo(alice);
  assert.equal(await stageCount(alice, 'in_review'), 2);

  // Rita pulls: two images wait; review mode opens the first.
  await pullNow(rita);
  await waitStageCount(rita, 'in_review', 2);
  await byId(rita, 'start-review').click();
  await until(() => text(rita, 'position'), (p) => p === `1 / ${IMAGES}`, 'the first image in review');
  await waitCount(rita, 'instance-count', 1);
  assert.match(await historyText(rita), /alice submitted for review/);
  assert.match(await historyText(rita), /alice labeled 1 of the current instance/);

  // She pins two issues and rejects; the next image in review comes up.
  await pin(rita, [PIN1, PIN2]);
  await byId(rita, 'draft-comment').nth(0).fill('this nucleus has no label');
  await byId(rita, 'draft-comment').nth(0).dispatchEvent('change');
  assert.equal(await byId(rita, 'draft-category').nth(1).inputValue(), 'bad_boundary', 'a pin on a label is about its boundary');
  await byId(rita, 'draft-comment').nth(1).fill('boundary too wide on the left');
  await byId(rita, 'draft-comment').nth(1).dispatchEvent('change');
  await byId(rita, 'draft-pin').first().scrollIntoViewIfNeeded();
  await rita.screenshot({ path: path.join(OUT, 'review-pinning.png') });
  await byId(rita, 'reject').click();
  await until(() => text(rita, 'position'), (p) => p === `2 / ${IMAGES}`, 'the next image in review');
  await waitStageCount(rita, 'rework', 1);
  assert.equal(await stageCount(rita, 'in_review'), 1);
  await waitSynced(rita);

  // Alice pulls: the image is in her Rework queue, its issues pinned where Rita put them.
  await pullNow(alice);
  await waitStageCount(alice, 'rework', 1);
  await byId(alice, 'stage-rework').click();
  await until(() => text(alice, 'position'), (p) => p === `1 / ${IMAGES}`, 'the image to rework');
  await waitStage(alice, 'Rework');
  await waitElements(alice, 'issue', 2);
  const pins = await byId(alice, 'pin').evaluateAll((els) => els.map((e) => [Number(e.dataset.x), Number(e.dataset.y)]));
  for (const [i, want] of [PIN1, PIN2].entries()) {
    assert.ok(Math.hypot(pins[i][0] - want[0], pins[i][1] - want[1]) < 1, `pin ${i + 1} at ${pins[i]} is where it was put (${want})`);
    const box = await byId(alice, 'pin').nth(i).boundingBox();
    const [sx, sy] = await toScreen(alice, want);
    assert.ok(Math.abs(box.x + box.width / 2 - sx) < 3 && Math.abs(box.y + box.height - sy) < 3, `pin ${i + 1} drawn at its point`);
  }
  assert.deepEqual(await byId(alice, 'issue-comment').allTextContents(), ['this nucleus has no label', 'boundary too wide on the left']);
  await alice.screenshot({ path: path.join(OUT, 'review-rework-pins.png') });

  // She adds the missed nucleus, replies, resolves both issues and resubmits.
  await brush(alice, STROKE3, 2);
  await byId(alice, 'issue-reply').nth(0).fill('added it');
  await byId(alice, 'issue-send-reply').nth(0).click();
  await until(() => text(alice, 'issue'), (s) => /added it/.test(s), 'the reply shown');
  await byId(alice, 'issue-resolve').first().click();
  await waitElements(alice, 'issue-reopen', 1);
  await byId(alice, 'issue-resolve').first().click();
  await waitElements(alice, 'issue-reopen', 2);
  await byId(alice, 'resubmit').click();
  await waitStage(alice, 'In review');
  await waitSynced(alice);

  // Rita pulls: back in review with Alice's fix and answers; she adds a label herself and approves.
  await pullNow(rita);
  await waitStageCount(rita, 'in_review', 2);
  await openAt(rita, 0);
  await waitCount(rita, 'instance-count', 2);
  await waitElements(rita, 'issue-reopen', 2);
  assert.match(await historyText(rita), /alice replied on issue #1: added it/);
  await brush(rita, STROKE4, 3);
  await byId(rita, 'approve').click();
  await waitStageCount(rita, 'done', 1);
  await waitSynced(rita);

  // Export "Done only": exactly the approved image with its three labels (pycocotools, JSON Schema).
  await byId(rita, 'export-stage').selectOption('done');
  const coco = await exportTo(rita, 'export-coco', 'review-done');
  const bundleFile = await exportTo(rita, 'export-bundle', 'review-done');
  // pycocotools prints its progress first; the summary is the last line.
  const out = await python('tests/e2e/check_done_export.py', ['--coco', coco, '--bundle', bundleFile, '--image', names[0], '--instances', '3']);
  const summary = JSON.parse(out.trim().split('\n').at(-1));
  assert.deepEqual(summary.review_kinds, ['approve', 'issue', 'reject', 'reply', 'resolve', 'submit']);
  const authors = readJson(bundleFile).instances.map((i) => i.provenance.author).sort();
  assert.deepEqual(authors, ['alice', 'alice', 'rita'], "the reviewer's edit is hers");

  // Alice sees it Done after a pull; the server's labels and history say the same.
  await pullNow(alice);
  await waitStageCount(alice, 'done', 1);
  const { bundle } = await cliPull(conn, batch);
  const stageOf = (name) => bundle.assets.find((a) => a.name === name).stage;
  assert.deepEqual([stageOf(names[0]), stageOf(names[1])], ['done', 'in_review']);
  await openAt(alice, 0);
  const history = await historyText(alice);
  for (const line of [/alice submitted/, /rita raised issue #1 \(missed nucleus\): this nucleus has no label/, /rita rejected/, /alice resolved issue #2/, /rita approved/, /rita labeled 1 of the current/]) {
    assert.match(history, line);
  }
  await noPanics(alice);
  await noPanics(rita);
});

test('two reviewers deciding at once end in a listed conflict; an approval of labels changed since goes back to review; nothing lost', async (t) => {
  const conn = s3();
  const { batch } = await publish(conn);
  const alice = await person(t, conn, batch, 'alice');
  const rita = await person(t, conn, batch, 'rita');
  const rob = await person(t, conn, batch, 'rob');
  await labelAndSubmitTwo(alice);
  await pullNow(rita);
  await pullNow(rob);

  // Image 1: Rita approves while Rob rejects; neither has seen the other's decision.
  await openAt(rita, 0);
  await waitStage(rita, 'In review');
  await byId(rita, 'approve').click();
  await waitStageCount(rita, 'done', 1);
  await openAt(rob, 0);
  await pin(rob, [PIN2]);
  await byId(rob, 'reject').click();
  await waitStageCount(rob, 'rework', 1);
  await waitSynced(rita);
  await waitSynced(rob);
  for (const page of [rita, rob, alice]) {
    await pullNow(page);
    await openAt(page, 0);
    await waitStage(page, 'In review');
    assert.match(await text(page, 'stage-note'), /Conflicting decisions made at the same time: .*(rita approved.*rob rejected|rob rejected.*rita approved)/);
    assert.equal(await byId(page, 'attention').count(), 1, 'the conflict is listed');
  }
  const during = await cliPull(conn, batch);
  assert.equal(during.bundle.assets[0].stage, 'in_review');
  assert.deepEqual(during.bundle.review.filter((e) => e.kind === 'approve' || e.kind === 'reject').map((e) => e.author).sort(), ['rita', 'rob']);
  // Rita decides again, having seen both: it settles on every device.
  await byId(rita, 'approve').click();
  await waitStageCount(rita, 'done', 1);
  await waitSynced(rita);
  await pullNow(rob);
  await waitStageCount(rob, 'done', 1);
  assert.equal(await byId(rob, 'attention').count(), 0);

  // Image 2: Alice changes the labels while Rita, not having pulled, approves the old ones.
  await openAt(alice, 1);
  await brush(alice, STROKE3, 2);
  await waitSynced(alice);
  await openAt(rita, 1);
  await waitCount(rita, 'instance-count', 1);
  await byId(rita, 'approve').click();
  await waitStageCount(rita, 'done', 2);
  await waitSynced(rita);
  await pullNow(rita);
  await openAt(rita, 1);
  await waitCount(rita, 'instance-count', 2);
  await waitStage(rita, 'In review');
  assert.match(await text(rita, 'stage-note'), /rita approved an earlier version of these labels/);
  await pullNow(alice);
  await openAt(alice, 1);
  await waitStage(alice, 'In review');
  assert.match(await text(alice, 'stage-note'), /rita approved an earlier version/);
  assert.match(await historyText(alice), /rita approved/);
  const after = await cliPull(conn, batch);
  assert.equal(after.bundle.instances.filter((i) => i.asset_id === after.bundle.assets[1].id).length, 2, "Alice's change kept");
  assert.deepEqual(after.bundle.assets.map((a) => a.stage).slice(0, 2), ['done', 'in_review']);
  await noPanics(alice);
  await noPanics(rita);
  await noPanics(rob);
});

test('review travels in the bundle: exported, re-imported unchanged; a bundle with a pin outside its image or a decision for a missing image is refused whole', async (t) => {
  const { page } = await env.open(t);
  await page.fill('input.author', 'rita');
  await page.locator('input.author').dispatchEvent('change');
  // The demo's tiles arrive submitted: all in review. Approve the first, reject the second with a pin.
  await waitStageCount(page, 'in_review', 12);
  await byId(page, 'start-review').click();
  await waitStage(page, 'In review');
  await byId(page, 'approve').click();
  await waitStageCount(page, 'done', 1);
  await pin(page, [PIN1]);
  await byId(page, 'reject').click();
  await waitStageCount(page, 'rework', 1);
  const file = await exportTo(page, 'export-bundle', 'review-bundle');
  const bundle = readJson(file);
  assert.equal(bundle.version, 2);
  assert.deepEqual(bundle.assets.map((a) => a.stage).filter((s) => s !== 'in_review').sort(), ['done', 'rework']);
  assert.deepEqual(bundle.review.map((e) => e.kind).sort(), ['approve', 'issue', 'reject']);

  // Importing it again changes nothing: the same events (by id), the same stages.
  await byId(page, 'import-bundle').setInputFiles(file);
  await until(() => text(page, 'info'), (s) => /^Bundle: \d+ labels on 12 images/.test(s || ''), 'the bundle imported');
  assert.deepEqual([await stageCount(page, 'done'), await stageCount(page, 'rework'), await stageCount(page, 'in_review')], [1, 1, 10]);

  const broken = structuredClone(bundle);
  broken.review.find((e) => e.kind === 'issue').point_image = [999, 5];
  broken.review.find((e) => e.kind === 'approve').asset_id = 'no-such-image';
  const brokenFile = path.join(TMP, 'broken-review.json');
  (await import('node:fs')).writeFileSync(brokenFile, JSON.stringify(broken));
  await byId(page, 'import-bundle').setInputFiles(brokenFile);
  const error = await until(() => text(page, 'error'), (s) => /^Bundle not imported/.test(s || ''), 'the refusal');
  assert.match(error, /outside the 256x256 image/);
  assert.match(error, /image "no-such-image" is not in the file/);
  assert.deepEqual([await stageCount(page, 'done'), await stageCount(page, 'rework')], [1, 1], 'nothing changed');
  await noPanics(page);
});
