// The main labeling path: a new project, three images in three formats, brush and polygon labels that
// survive a reload, exports checked with pycocotools; undo/redo; select, re-class and delete.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import {
  suite, byId, count, text, until, waitCount, waitNotice, waitImage, newProject, selectTool, brushStroke,
  polygon, clickImage, blur, exportTo, python, readJson, fixture, overlayPixel, noPanics, OUT,
} from './harness.mjs';

const env = suite();
before(env.setup);
after(env.teardown);

const IMAGES = ['tile_a.jpg', 'tile_b.tif', 'tile_c.png'];
// Image-pixel geometry drawn by the tests (upper half of the image, clear of the notice toast).
const STROKE = [[40, 40], [100, 64]];
const POLYGON = [[140, 30], [214, 42], [200, 112], [150, 100]];
const pts = (list) => list.map((p) => p.join(',')).join(';');

/** A new project with the three fixture images, the first one open. */
async function projectWithImages(t, name) {
  const { page, context } = await env.open(t);
  await newProject(page, name);
  await byId(page, 'add-images').setInputFiles(IMAGES.map(fixture));
  await waitNotice(page, 'info', /^Import: 3 imported$/);
  await waitCount(page, 'image-count', 3);
  await waitImage(page);
  const names = await byId(page, 'image-row').locator('.name').allTextContents();
  assert.deepEqual(names, IMAGES, 'the image list shows the three files in order');
  assert.equal(await text(page, 'position'), '1 / 3');
  return { page, context };
}

async function drawBoth(page) {
  await selectTool(page, 'brush');
  await brushStroke(page, STROKE);
  await waitCount(page, 'instance-count', 1);
  await selectTool(page, 'polygon');
  await polygon(page, POLYGON);
  await waitCount(page, 'instance-count', 2);
}

test('main path: new project, import, brush + polygon, reload, export checked by pycocotools', async (t) => {
  const { page } = await projectWithImages(t, 'E2E main');
  await drawBoth(page);
  assert.equal(await text(page, 'status'), 'in progress');
  // Both labels are painted where they were drawn (Neoplastic = red).
  assert.ok((await overlayPixel(page, [70, 52]))[3] > 0, 'brush label painted');
  assert.ok((await overlayPixel(page, [180, 70]))[3] > 0, 'polygon label painted');
  assert.equal((await overlayPixel(page, [120, 200]))[3], 0, 'nothing painted elsewhere');

  await page.reload();
  await waitCount(page, 'image-count', 3);
  await waitImage(page);
  await waitCount(page, 'instance-count', 2);
  assert.equal(await text(page, 'position'), '1 / 3');
  assert.equal(await page.locator('[data-testid=project] option:checked').textContent(), 'E2E main');
  await page.screenshot({ path: path.join(OUT, 'labeling-drawn.png') });

  const coco = await exportTo(page, 'export-coco', 'main');
  await waitNotice(page, 'info', /^Exported 2 labels on 3 images$/);
  const bundle = await exportTo(page, 'export-bundle', 'main');
  const cocoPolygons = await exportTo(page, 'export-coco-polygons', 'main');
  assert.match(path.basename(coco), /\.coco\.json$/);
  assert.match(path.basename(bundle), /\.bundle\.json$/);
  assert.match(path.basename(cocoPolygons), /\.coco-polygons\.json$/);

  const sums = readJson(fixture('summary.json')).sha256;
  const out = await python('tests/e2e/check_export.py', [
    '--coco', coco, '--coco-polygons', cocoPolygons, '--bundle', bundle, '--image', IMAGES[0],
    '--brush', pts(STROKE), '--radius', '4', '--polygon', pts(POLYGON),
    ...Object.entries(sums).flatMap(([n, s]) => ['--sha256', `${n}=${s}`]),
  ]);
  const report = JSON.parse(out.trim().split('\n').pop());
  t.diagnostic(`check_export: ${JSON.stringify(report)}`);
  assert.deepEqual(report.problems, []);
  const b = readJson(bundle);
  assert.equal(b.assets.length, 3);
  assert.equal(b.instances.length, 2);
  await noPanics(page);
});

test('undo and redo with the keyboard; the state survives a reload', async (t) => {
  const { page } = await projectWithImages(t, 'E2E undo');
  await drawBoth(page);
  await blur(page);
  await page.keyboard.press('Control+z');
  await waitCount(page, 'instance-count', 1);
  assert.equal((await overlayPixel(page, [180, 70]))[3], 0, 'the polygon is gone from the view');
  assert.ok((await overlayPixel(page, [70, 52]))[3] > 0, 'the brush label stays');
  assert.equal(await byId(page, 'redo').isEnabled(), true);
  await page.keyboard.press('Control+Shift+Z');
  await waitCount(page, 'instance-count', 2);
  await until(() => overlayPixel(page, [180, 70]), (px) => px[3] > 0, 'the polygon painted again');
  await page.reload();
  await waitImage(page);
  await waitCount(page, 'instance-count', 2);
  // And an undo that is stored survives too.
  await selectTool(page, 'brush');
  await brushStroke(page, [[30, 150], [60, 150]]);
  await waitCount(page, 'instance-count', 3);
  await blur(page);
  await page.keyboard.press('Control+z');
  await waitCount(page, 'instance-count', 2);
  await page.reload();
  await waitImage(page);
  await waitCount(page, 'instance-count', 2);
  await noPanics(page);
});

test('select a label, re-class it with "2", delete it', async (t) => {
  const { page } = await projectWithImages(t, 'E2E select');
  await drawBoth(page);
  await selectTool(page, 'select');
  await blur(page);
  await page.keyboard.press('Escape');
  await until(() => byId(page, 'selection').count(), (n) => n === 0, 'no selection');
  await clickImage(page, [180, 70]);
  await until(() => text(page, 'selection'), (s) => /^Neoplastic .* polygon$/.test(s || ''), 'polygon selected');
  await page.keyboard.press('2');
  await until(() => text(page, 'selection'), (s) => /^Inflammatory /.test(s || ''), 'class is Inflammatory');
  // The class list counts it under Inflammatory, and the overlay is green now.
  const inflammatory = byId(page, 'class-row').nth(1).locator('button.pick');
  await until(() => inflammatory.textContent(), (v) => v === '1', 'Inflammatory count 1');
  await until(() => overlayPixel(page, [180, 70]), ([r, g]) => g > r, 'the label drawn in green');
  await page.keyboard.press('Delete');
  await waitCount(page, 'instance-count', 1);
  await until(() => byId(page, 'selection').count(), (n) => n === 0, 'selection cleared');
  // The deletion is stored.
  await page.reload();
  await waitImage(page);
  await waitCount(page, 'instance-count', 1);
  await noPanics(page);
});
