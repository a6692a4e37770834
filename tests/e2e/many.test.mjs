// A bundle with 500 instances on one tile: imported, shown, and selectable.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  suite, byId, count, text, until, waitCount, waitNotice, waitImage, newProject, selectTool, clickImage,
  overlayPixel, readJson, fixture, noPanics,
} from './harness.mjs';

const env = suite();
before(env.setup);
after(env.teardown);

test('500 instances: imported from a bundle, all shown, one selected by a click', async (t) => {
  const { page } = await env.open(t);
  await newProject(page, 'E2E 500');
  await byId(page, 'import-bundle').setInputFiles(fixture('bundle500.json'));
  await waitNotice(page, 'info', /^Bundle: 500 labels on 1 images/);
  await waitCount(page, 'image-count', 1);
  await waitImage(page);
  await waitCount(page, 'instance-count', 500);
  // The tile's organ came with the bundle's asset metadata.
  const bundle = readJson(fixture('bundle500.json'));
  assert.equal(await byId(page, 'image-row').locator('.meta').textContent(), bundle.assets[0].metadata.organ);
  // Every instance is painted: sample the centre of each.
  const centres = bundle.instances.map((i) => [i.bbox[0] + Math.floor(i.bbox[2] / 2), i.bbox[1] + Math.floor(i.bbox[3] / 2)]);
  const painted = await page.evaluate((centres) => {
    const c = document.querySelector('[data-testid=overlay]');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    return centres.filter(([x, y]) => d[(y * c.width + x) * 4 + 3] > 0).length;
  }, centres);
  assert.equal(painted, 500);

  await selectTool(page, 'select');
  // Instance 263 (odd: Connective), clicked at its centre.
  const k = 263;
  const inst = bundle.instances[k];
  await clickImage(page, [centres[k][0] + 0.5, centres[k][1] + 0.5]);
  const [x, y, w, h] = inst.bbox;
  const sel = await until(() => text(page, 'selection'), (s) => s !== null, 'a selection');
  assert.equal(sel, `Connective · ${inst.area} px · box ${x},${y} ${w}×${h} · import`);
  // The selected one is drawn differently from its neighbour.
  const [selPx, otherPx] = [await overlayPixel(page, centres[k]), await overlayPixel(page, centres[k + 2])];
  assert.notDeepEqual(selPx, otherPx, 'the selection is highlighted');
  await noPanics(page);
});
