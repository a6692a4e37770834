// Labels from other tools into the app, with the summary shown before anything changes, and QuPath
// GeoJSON out of it, read back by shapely.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  suite, byId, count, text, until, waitCount, waitNotice, waitImage, dismissNotice, exportTo, python, tempDir,
  noPanics,
} from './harness.mjs';

const env = suite();
before(env.setup);
after(env.teardown);

const square = (x, y, side) => [[[x, y], [x + side, y], [x + side, y + side], [x, y + side], [x, y]]];
const feature = (coordinates, name) => ({
  type: 'Feature',
  geometry: { type: 'Polygon', coordinates },
  properties: { objectType: 'detection', ...(name ? { classification: { name, color: [200, 30, 30] } } : {}) },
});

/** Opens the image named `name` and waits until it is the one shown: the image open before it keeps its
 * labels on screen until the new one's are read, so a count taken earlier would be the old image's. */
async function openImage(page, name) {
  const row = byId(page, 'image-row').filter({ hasText: name });
  await row.click();
  await until(() => row.getAttribute('class'), (c) => /\bcurrent\b/.test(c ?? ''), `${name} open`);
  await waitImage(page);
}

const summary = (page) => text(page, 'import-summary');

test('QuPath GeoJSON: summary first, nothing labeled overwritten unless asked, classes added and chosen; exported back for shapely', async (t) => {
  const { page } = await env.open(t);
  const names = await byId(page, 'image-row').locator('.name').allTextContents();
  const target = names[1];
  await openImage(page, target);
  const before = await count(page, 'instance-count');
  assert.ok(before > 0, 'the demo image has labels');

  const dir = tempDir('lamina-qupath-');
  const file = path.join(dir, target.replace(/\.[^.]+$/, '') + '.geojson');
  writeFileSync(file, JSON.stringify({
    type: 'FeatureCollection',
    features: [
      feature(square(10, 10, 8), 'Neoplastic'),
      feature(square(40, 40, 6), 'neoplastic'),
      feature(square(80, 80, 5), null),
      feature(square(120, 120, 7), 'Mitosis'),
      { type: 'Feature', geometry: { type: 'Point', coordinates: [3, 3] }, properties: {} },
    ],
  }));
  await byId(page, 'import-labels').setInputFiles(file);
  let s = await until(() => summary(page), (v) => v !== null && v.length > 0, 'the import summary');
  assert.match(s, /^2 labels on 1 images \(0 matched by content, 1 by name\)/);
  assert.match(s, /class Mitosis → skipped, 1 labels/);
  assert.match(s, /class \(no class\) → skipped, 1 labels/);
  assert.match(s, /feature 5: a Point, not an area/);
  assert.match(s, /1 of these images already have labels/);
  // Left as it is by default.
  await byId(page, 'import-apply').click();
  const notice = await waitNotice(page, 'info', /^Imported 0 labels on 0 images from QuPath/);
  assert.ok(notice.includes(`left alone (they have labels): ${target}`), notice);
  await openImage(page, target);
  await waitCount(page, 'instance-count', before);
  await dismissNotice(page);

  // Again, now adding Mitosis, giving unclassified labels a class, and replacing the image's labels.
  await byId(page, 'import-labels').setInputFiles(file);
  await until(() => summary(page), (v) => v !== null && v.length > 0, 'the import summary');
  await byId(page, 'import-add-classes').check();
  await until(() => summary(page), (v) => /class Mitosis → mitosis \(new\), 1 labels/.test(v || ''), 'Mitosis added');
  await byId(page, 'import-unclassified').selectOption('dead');
  s = await until(() => summary(page), (v) => /^4 labels on 1 images/.test(v || ''), 'four labels planned');
  await byId(page, 'import-existing').selectOption('replace');
  // Nothing is written before "Import".
  assert.equal(await count(page, 'instance-count'), before);
  await byId(page, 'import-apply').click();
  await waitNotice(page, 'info', /^Imported 4 labels on 1 images from QuPath/);
  assert.equal(await byId(page, 'import-plan').count(), 0, 'the summary closes');
  await openImage(page, target);
  await waitCount(page, 'instance-count', 4);
  await dismissNotice(page);

  // Out to QuPath: one GeoJSON per labeled image, areas as shapely measures them.
  const zip = await exportTo(page, 'export-qupath', 'interop');
  const read = JSON.parse(await python('tests/e2e/interop_files.py', ['qupath-zip', zip]));
  const mine = read[target.replace(/\.[^.]+$/, '') + '.geojson'];
  assert.deepEqual(mine, [['Dead', 25], ['Mitosis', 49], ['Neoplastic', 36], ['Neoplastic', 64]]);
  assert.ok(Object.keys(read).length >= 2, 'the other labeled demo images are exported too');
  await noPanics(page);
});

test('Labelbox NDJSON with its composite mask PNG; a broken file is named and changes nothing', async (t) => {
  const { page } = await env.open(t);
  const names = await byId(page, 'image-row').locator('.name').allTextContents();
  const target = names[2];
  await openImage(page, target);
  const before = await count(page, 'instance-count');
  const dir = tempDir('lamina-labelbox-');
  await python('tests/e2e/interop_files.py', ['composite', path.join(dir, 'composite.png'), '256', '256']);
  const line = (name, color) => JSON.stringify({
    uuid: crypto.randomUUID(), dataRow: { globalKey: target }, name,
    mask: { instanceURI: 'https://storage.labelbox.com/x/composite.png', colorRGB: color },
  });
  const ndjson = path.join(dir, 'labels.ndjson');
  writeFileSync(ndjson, [line('Inflammatory', [255, 0, 0]), line('Epithelial', [0, 255, 0])].join('\n') + '\n');
  await byId(page, 'import-labels').setInputFiles([ndjson, path.join(dir, 'composite.png')]);
  const s = await until(() => summary(page), (v) => v !== null && v.length > 0, 'the import summary');
  assert.match(s, /^2 labels on 1 images/);
  assert.match(s, /class Inflammatory → inflammatory, 1 labels/);
  await byId(page, 'import-existing').selectOption('add');
  await byId(page, 'import-apply').click();
  await waitNotice(page, 'info', /^Imported 2 labels on 1 images from Labelbox/);
  await openImage(page, target);
  await waitCount(page, 'instance-count', before + 2);
  await dismissNotice(page);

  const broken = path.join(dir, 'broken.ndjson');
  writeFileSync(broken, line('Dead', [1, 2, 3]) + '\n{"dataRow": oops\n');
  await byId(page, 'import-labels').setInputFiles(broken);
  const error = await waitNotice(page, 'error', /^Labels not imported/);
  assert.match(error, /broken\.ndjson \(Labelbox\): line 2: not JSON/);
  assert.equal(await byId(page, 'import-plan').count(), 0);
  await waitCount(page, 'instance-count', before + 2);
  await noPanics(page);
});
