// Pre-labels on the device: the default model in automatic mode over checked images, its class mapped,
// a preview that saves nothing, a run on a pool of two workers, pre-labels drawn apart until a person
// accepts, edits or deletes them, labels a person made left alone; a run cancelled and resumed after a
// reload; a model whose files are gone from the cache. Real workers, real wasm, real IndexedDB.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  suite, byId, text, count, until, waitCount, waitNotice, waitImage, dismissNotice, newProject, fixture,
  selectTool, clickImage, brushStroke, polygon, exportTo, readJson, noPanics, blur, ROOT, OUT,
} from './harness.mjs';

const env = suite();
before(env.setup);
after(env.teardown);

const DEFAULT = JSON.parse(readFileSync(path.join(ROOT, 'dist/models/default/manifest.json'), 'utf8'));
const waitModel = (page) =>
  until(() => text(page, 'model-status'), (t) => t.startsWith(`ready: ${DEFAULT.id}`), 'the default model', 60_000);

/** The faint fill of a pending pre-label (PRELABEL_FILL_ALPHA in lamina-core's overlay). */
const PENDING_FILL_ALPHA = 28;

/** Image pixels whose overlay is a pending pre-label's interior, one per instance at most `n`, each with
 *  a margin so a click lands inside. */
async function pendingPixels(page, n) {
  return page.evaluate(([alpha, n]) => {
    const c = document.querySelector('[data-testid=overlay]');
    const { data, width, height } = c.getContext('2d').getImageData(0, 0, c.width, c.height);
    const inside = (x, y) => x >= 0 && y >= 0 && x < width && y < height && data[(y * width + x) * 4 + 3] === alpha;
    const out = [];
    for (let y = 2; y < height - 2 && out.length < n; y += 3) {
      for (let x = 2; x < width - 2 && out.length < n; x += 3) {
        const deep = [[0, 0], [2, 0], [-2, 0], [0, 2], [0, -2]].every(([dx, dy]) => inside(x + dx, y + dy));
        if (deep && out.every(([px, py]) => Math.hypot(px - x, py - y) > 14)) out.push([x + 0.5, y + 0.5]);
      }
    }
    return out;
  }, [PENDING_FILL_ALPHA, n]);
}

async function openRow(page, k) {
  await byId(page, 'image-row').nth(k).click();
  await until(() => text(page, 'position'), (p) => p === `${k + 1} / ${p.split(' / ')[1]}`, `image ${k + 1}`);
  await waitImage(page);
}

const pending = async (page) => ((await byId(page, 'prelabel-pending').count()) ? count(page, 'prelabel-pending') : 0);

async function projectOf(page, files) {
  await newProject(page, 'Pre-labels');
  await byId(page, 'add-images').setInputFiles(files);
  await waitCount(page, 'image-count', files.length, 30_000);
  await waitImage(page);
}

async function mapNucleus(page) {
  await byId(page, 'prelabel-open').click();
  assert.match(await text(page, 'prelabel-unmapped'), /Map every model class to start: nucleus has no class yet/);
  assert.ok(await byId(page, 'prelabel-run').isDisabled(), 'no run before the class is mapped');
  await byId(page, 'prelabel-map-nucleus').selectOption('neoplastic');
  await until(() => byId(page, 'prelabel-unmapped').count(), (n) => n === 0, 'the class mapped');
}

test('pre-label three checked images: preview saves nothing, two workers run, accept, edit, delete, reload, export', async (t) => {
  const { page } = await env.open(t);
  await waitModel(page);
  await projectOf(page, [fixture('tile_a.jpg'), fixture('tile_b.tif'), fixture('tile_c.png')]);

  // A person's label on image 1 first: the run must leave it exactly as it is.
  await selectTool(page, 'polygon');
  await polygon(page, [[100, 100], [150, 100], [150, 150], [100, 150]]);
  await waitCount(page, 'instance-count', 1);
  const mine = await page.evaluate(() => new Promise((resolve, reject) => {
    const open = indexedDB.open('lamina');
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
      const all = open.result.transaction('instances').objectStore('instances').getAll();
      all.onsuccess = () => resolve(all.result.filter((i) => i.provenance.tool === 'polygon'));
    };
  }));
  assert.equal(mine.length, 1);

  for (const box of await byId(page, 'image-check').all()) await box.check();
  await mapNucleus(page);
  await byId(page, 'prelabel-scope').selectOption('checked');
  assert.equal(await text(page, 'prelabel-count'), '3 images');

  // Preview: shown on every checked image (at most five), nothing stored.
  await byId(page, 'prelabel-preview').click();
  await until(() => byId(page, 'prelabel-preview-image').count(), (n) => n === 3, 'three previews', 60_000);
  const found = (await byId(page, 'prelabel-preview-caption').allTextContents()).map((c) => Number(/: (\d+) found/.exec(c)[1]));
  assert.ok(found.every((n) => n >= 5), `nuclei found on every tile: ${found}`);
  assert.equal(await count(page, 'instance-count'), 1, 'the preview stored nothing');
  await byId(page, 'prelabel-panel').screenshot({ path: path.join(OUT, 'prelabel-preview.png') });

  await byId(page, 'prelabel-workers').fill('2');
  await blur(page);
  await byId(page, 'prelabel-run').click();
  const done = await waitNotice(page, 'info', /^Pre-labeled 3 images: \d+ pre-labels, sent to To label \([\d.]+ images\/s on 2 worker\(s\), p50 \d+ ms per image in a worker\)$/, 120_000);
  const stored = Number(/: (\d+) pre-labels/.exec(done)[1]);
  assert.ok(stored >= 15, done);
  await dismissNotice(page);

  // Image 1 (open): its pre-labels are shown at once, beside the person's label, which kept its pixels.
  const p1 = await until(() => pending(page), (n) => n > 3, 'pre-labels on image 1');
  assert.equal(await count(page, 'instance-count'), p1 + 1);
  const after = await page.evaluate((id) => new Promise((resolve) => {
    const open = indexedDB.open('lamina');
    open.onsuccess = () => {
      const r = open.result.transaction('instances').objectStore('instances').get(id);
      r.onsuccess = () => resolve(r.result);
    };
  }), mine[0].id);
  assert.deepEqual(after.mask, mine[0].mask, "the person's label is untouched");

  // Drawn apart: the faint fill only pending pre-labels have.
  const spots = await pendingPixels(page, 2);
  assert.equal(spots.length, 2, 'pre-labels to work on');
  await page.screenshot({ path: path.join(OUT, 'prelabel-labeler.png') });

  // Accept one.
  await selectTool(page, 'select');
  await clickImage(page, spots[0]);
  await until(() => byId(page, 'prelabel-accept-selected').isDisabled(), (d) => d === false, 'a pre-label selected');
  await byId(page, 'prelabel-accept-selected').click();
  await until(() => pending(page), (n) => n === p1 - 1, 'one accepted');
  // Edit one: the brush on a selected pre-label makes it the labeler's.
  await clickImage(page, spots[1]);
  await until(() => text(page, 'selection'), (s) => /pre_label|prelabel/.test(s || ''), 'the second selected');
  await selectTool(page, 'brush');
  await brushStroke(page, [spots[1], [spots[1][0] + 6, spots[1][1]]]);
  await until(() => pending(page), (n) => n === p1 - 2, 'one edited');
  // Delete one (found again: the brush may have grown the edited one over the spot picked before).
  await selectTool(page, 'select');
  const [spot] = await pendingPixels(page, 1);
  await clickImage(page, spot);
  await until(() => byId(page, 'prelabel-accept-selected').isDisabled(), (d) => d === false, 'the third selected');
  await byId(page, 'delete-selected').click();
  await until(() => pending(page), (n) => n === p1 - 3, 'one deleted');
  assert.equal(await count(page, 'instance-count'), p1 - 1 + 1);

  // Image 2: accept all; image 3: delete all (nothing of a person's there).
  await openRow(page, 1);
  const p2 = await until(() => pending(page), (n) => n > 0, 'pre-labels on image 2');
  await byId(page, 'prelabel-accept-all').click();
  await until(() => pending(page), (n) => n === 0, 'all accepted');
  assert.equal(await count(page, 'instance-count'), p2);
  await openRow(page, 2);
  await until(() => pending(page), (n) => n > 0, 'pre-labels on image 3');
  await byId(page, 'prelabel-delete-all').click();
  await waitCount(page, 'instance-count', 0);

  // After a reload every decision is still there.
  await page.reload();
  await waitImage(page);
  await openRow(page, 0);
  assert.equal(await until(() => pending(page), (n) => n === p1 - 3, 'image 1 after reload'), p1 - 3);
  await openRow(page, 1);
  await waitCount(page, 'instance-count', p2);
  assert.equal(await pending(page), 0);

  // The bundle keeps each instance's provenance: model, score, pending or accepted.
  const bundle = readJson(await exportTo(page, 'export-bundle', 'prelabel'));
  const tools = bundle.instances.map((i) => i.provenance.tool);
  assert.equal(tools.filter((x) => x === 'pre_label').length, p1 - 3);
  assert.equal(tools.filter((x) => x === 'pre_label_accepted').length, p2 + 2);
  for (const i of bundle.instances.filter((i) => i.provenance.tool.startsWith('pre_label'))) {
    assert.equal(i.provenance.model_id, DEFAULT.id);
    assert.ok(i.provenance.score >= 0.4 && i.provenance.score <= 1.5, `score ${i.provenance.score}`);
  }
  await noPanics(page);
});

test('a run cancelled mid-way resumes after a reload; a model missing from the cache is named', async (t) => {
  const { page } = await env.open(t);
  await waitModel(page);
  const files = [fixture('tile_a.jpg'), fixture('tile_b.tif'), fixture('tile_c.png'),
    fixture('folder/first.png'), fixture('folder/sub/second.jpg')];
  await projectOf(page, files);
  await mapNucleus(page);
  await byId(page, 'prelabel-stage').selectOption('in_review');
  await byId(page, 'prelabel-workers').fill('1');
  await blur(page);
  // Straight to review needs a name to sign the submits with.
  await page.locator('input.author').fill('Ana');
  await blur(page);
  await byId(page, 'prelabel-run').click();
  await until(() => text(page, 'prelabel-progress'), (p) => /^[12] of 5 images/.test(p || ''), 'the run under way', 60_000);
  await byId(page, 'prelabel-cancel').click();
  const note = await waitNotice(page, 'info', /^Pre-labeling cancelled after [12] of 5 images/);
  const doneBefore = Number(/after (\d) of/.exec(note)[1]);
  assert.match(await text(page, 'prelabel-interrupted'), new RegExp(`stopped after ${doneBefore} of 5 images`));

  // A reload: the run is offered again where it stopped.
  await page.reload();
  await waitImage(page);
  await waitModel(page);
  await until(() => text(page, 'prelabel-interrupted'), (s) => new RegExp(`stopped after ${doneBefore} of 5`).test(s || ''), 'the interrupted run');

  // The pool loads the model from the cache; with the cache gone the run says so and loses nothing.
  const saved = await page.evaluate(() => new Promise((resolve) => {
    const open = indexedDB.open('lamina');
    open.onsuccess = () => {
      const tx = open.result.transaction('model_files', 'readwrite');
      const store = tx.objectStore('model_files');
      const rows = [];
      store.openCursor().onsuccess = ({ target }) => {
        const c = target.result;
        if (!c) return;
        rows.push([c.key, c.value]);
        c.delete();
        c.continue();
      };
      tx.oncomplete = () => { window.__modelFiles = rows; resolve(rows.length); };
    };
  }));
  assert.ok(saved >= 2);
  await byId(page, 'prelabel-resume').click();
  await waitNotice(page, 'error', /not in this browser's cache.*load the model again/);
  await dismissNotice(page);
  await byId(page, 'prelabel-interrupted').waitFor();
  await page.evaluate(() => new Promise((resolve) => {
    const open = indexedDB.open('lamina');
    open.onsuccess = () => {
      const tx = open.result.transaction('model_files', 'readwrite');
      for (const [k, v] of window.__modelFiles) tx.objectStore('model_files').put(v, k);
      tx.oncomplete = resolve;
    };
  }));

  await byId(page, 'prelabel-resume').click();
  await waitNotice(page, 'info', /^Pre-labeled 5 images: \d+ pre-labels, sent to In review \(/, 120_000);
  assert.equal(await byId(page, 'prelabel-interrupted').count(), 0);
  const stages = await byId(page, 'row-stage').allTextContents();
  assert.deepEqual(stages, Array(5).fill('In review'));
  await noPanics(page);
});

test("a user's YOLO-seg ONNX: a wrong file is named, classes mapped (one ignored), previewed, run", async (t) => {
  const { page } = await env.open(t);
  await waitModel(page);
  await projectOf(page, [fixture('tile_a.jpg'), fixture('tile_c.png')]);
  await byId(page, 'prelabel-open').click();
  assert.match(await text(page, 'prelabel-model'), new RegExp(`^${DEFAULT.id} \\(automatic mode\\)`));

  // A SAM encoder is not a YOLO-seg export: refused, naming what does not fit; the form is unchanged.
  await byId(page, 'prelabel-yolo-file').setInputFiles(path.join(ROOT, 'models/fixtures/sam-tiny/encoder.onnx'));
  await waitNotice(page, 'error', /^encoder\.onnx was not taken: encoder\.onnx is not a YOLO-seg export: it has 1 output\(s\)/, 30_000);
  await dismissNotice(page);
  assert.match(await text(page, 'prelabel-model'), /automatic mode/);

  await byId(page, 'prelabel-yolo-file').setInputFiles(path.join(ROOT, 'models/fixtures/yolo-seg-tiny/model.onnx'));
  await waitNotice(page, 'info', /^model\.onnx is a YOLO-seg model \(256×256 input, classes: nucleus, debris\)/, 30_000);
  await dismissNotice(page);
  assert.match(await text(page, 'prelabel-unmapped'), /nucleus, debris has no class yet/);
  await byId(page, 'prelabel-map-nucleus').selectOption('neoplastic');
  assert.match(await text(page, 'prelabel-unmapped'), /debris has no class yet/);
  await byId(page, 'prelabel-map-debris').selectOption('__ignore');
  await until(() => byId(page, 'prelabel-unmapped').count(), (n) => n === 0, 'both classes mapped');
  await byId(page, 'prelabel-min-score').fill('0.5');
  await blur(page);

  await byId(page, 'prelabel-preview').click();
  await until(() => byId(page, 'prelabel-preview-image').count(), (n) => n === 2, 'two previews', 60_000);
  await byId(page, 'prelabel-run').click();
  const done = await waitNotice(page, 'info', /^Pre-labeled 2 images: \d+ pre-labels, sent to To label/, 120_000);
  assert.ok(Number(/: (\d+) pre-labels/.exec(done)[1]) > 0, done);
  const stored = await page.evaluate(() => new Promise((resolve) => {
    const open = indexedDB.open('lamina');
    open.onsuccess = () => {
      const all = open.result.transaction('instances').objectStore('instances').getAll();
      all.onsuccess = () => resolve(all.result.filter((i) => i.provenance.model_id === 'model.onnx'));
    };
  }));
  assert.ok(stored.length > 0);
  // Only the mapped class arrives; the ignored one's instances are left out; scores at the threshold.
  assert.deepEqual([...new Set(stored.map((i) => i.class_id))], ['neoplastic']);
  assert.ok(stored.every((i) => i.provenance.tool === 'pre_label' && i.provenance.score >= 0.5));
  await noPanics(page);
});
