// The catalog: a project from a CSV manifest with an organ column, seen as a grid of thumbnails made in
// the worker; organ filters whose counts match the manifest; charts that equal the counts; a saved
// selection that takes in a matching image imported later; find similar on a prepared case (a mirrored
// copy of the anchor); a selection opened as the labeling queue; the grid's keys. Real worker, real
// wasm, real IndexedDB.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { suite, byId, text, count, until, waitCount, waitImage, newProject, noPanics, readJson, FIXTURES, OUT } from './harness.mjs';

const env = suite();
before(env.setup);
after(env.teardown);

const { catalog: C } = readJson(path.join(FIXTURES, 'summary.json'));

async function importManifest(page, name, total) {
  await byId(page, 'manifest-url').fill(`${env.server.url}e2e-fixtures/catalog/${name}`);
  await byId(page, 'fetch-manifest').click();
  await waitCount(page, 'image-count', total, 60_000);
}

const listed = async (page) => Number(await text(page, 'catalog-count'));
const waitListed = (page, n) => until(() => listed(page), (v) => v === n, `${n} images listed`);

/** The bars of a chart: label → count. */
const bars = (page, chart) =>
  byId(page, chart).locator('[data-testid=bar]').evaluateAll((gs) =>
    Object.fromEntries(gs.map((g) => [g.dataset.label, Number(g.dataset.count)])));

const pickOrgan = (page, organ, on = true) =>
  page.locator(`[data-testid=filter-value][data-field=organ][data-value="${organ}"]`).setChecked(on);

/** The names of the cells in grid order (those in the page: the grid is virtualised). */
const cellNames = (page) => byId(page, 'catalog-cell').evaluateAll((cs) =>
  cs.map((c) => ({ name: c.dataset.name, y: c.getBoundingClientRect().top, x: c.getBoundingClientRect().left }))
    .sort((a, b) => a.y - b.y || a.x - b.x).map((c) => c.name));

const slice = (page, name) => byId(page, 'slice').filter({ hasText: name });

test('catalog: filter by organ, chart, save a selection that grows, find similar, label the selection', async (t) => {
  const { page } = await env.open(t);
  await newProject(page, 'Catalog');
  await importManifest(page, 'catalog.csv', C.first);
  await byId(page, 'page-catalog').click();
  assert.equal(Number(await text(page, 'catalog-total')), C.first);
  // Thumbnails are made in the worker and shown as the cells come into view.
  await until(() => page.locator('[data-testid=catalog-cell] img').count(), (n) => n === C.first, 'every thumbnail', 60_000);
  const natural = await page.locator('[data-testid=catalog-cell] img').first().evaluate((img) => [img.naturalWidth, img.naturalHeight]);
  assert.deepEqual(natural, [144, 144], 'a thumbnail, not the whole image');

  // Charts before any filter: images per organ equal the manifest's counts; every image is to label.
  assert.deepEqual(await bars(page, 'chart-field'), C.organ_counts);
  assert.equal((await bars(page, 'chart-stages'))['To label'], C.first);

  // Filters layer: two organs, then a nuclei range on top.
  await pickOrgan(page, 'liver');
  await waitListed(page, C.organ_counts.liver);
  await pickOrgan(page, 'kidney');
  const both = C.organ_counts.liver + C.organ_counts.kidney;
  await waitListed(page, both);
  assert.deepEqual(await bars(page, 'chart-field'), { liver: C.organ_counts.liver, kidney: C.organ_counts.kidney }, 'the chart follows the filters');
  const dense = Object.entries(C.n_nuclei).filter(([u, n]) => n >= 20 && !u.startsWith('mirrored')).map(([u]) => u);
  const names = await cellNames(page);
  await page.locator('[data-testid=filter-min][data-field=n_nuclei]').fill('20');
  await page.locator('[data-testid=filter-min][data-field=n_nuclei]').dispatchEvent('change');
  const expectDense = names.filter((n) => dense.includes(n)).length;
  await waitListed(page, expectDense);
  await page.locator('[data-testid=filter-min][data-field=n_nuclei]').fill('');
  await page.locator('[data-testid=filter-min][data-field=n_nuclei]').dispatchEvent('change');
  await waitListed(page, both);

  // Saved: the selection is the filter, evaluated again when images come in.
  await byId(page, 'slice-name').fill('liver and kidney');
  await byId(page, 'slice-save').click();
  await until(() => slice(page, 'liver and kidney').locator('[data-testid=slice-count]').textContent(), (n) => Number(n) === both, 'the selection saved');
  await importManifest(page, 'catalog_more.csv', C.first + C.later);
  // One liver tile and its mirrored copy match; the brain tile does not.
  await until(() => slice(page, 'liver and kidney').locator('[data-testid=slice-count]').textContent(), (n) => Number(n) === both + 2, 'the new liver tiles in the selection');

  // The value pickers count the images of the project, the new ones too.
  const pickerCount = (organ) => page.locator(`[data-testid=filter-value][data-value="${organ}"]`).locator('xpath=..').locator('small').textContent();
  await noPanics(page);
  assert.equal(Number(await pickerCount('liver')), C.organ_counts.liver + 2, page.errors.join('\n'));

  // Find similar from the anchor (checked with Space): its mirrored copy comes first, same organ.
  await byId(page, 'filter-clear').click();
  await waitListed(page, C.first + C.later);
  const order = await cellNames(page);
  const at = order.indexOf(C.anchor);
  assert.ok(at >= 0);
  await byId(page, 'catalog-grid').focus();
  for (let k = 0; k < at; k++) await page.keyboard.press('ArrowRight');
  await until(() => page.locator('[data-testid=catalog-cell].cursor').getAttribute('data-name'), (n) => n === C.anchor, 'the cursor on the anchor');
  await page.keyboard.press('Space');
  await until(() => text(page, 'catalog-checked'), (n) => n === '1', 'the anchor checked');
  await byId(page, 'find-similar').click();
  await until(async () => (await cellNames(page)).slice(0, 2), (n) => n[0] === C.anchor && n[1] === C.mirrored, 'the anchor, then its mirrored copy');
  const score = await page.locator(`[data-testid=catalog-cell][data-name="${C.mirrored}"] [data-testid=cell-score]`).textContent();
  assert.ok(Number(score) > 0.99, `the copy's colours are the anchor's: ${score}`);
  await byId(page, 'similar-keep').fill('3');
  await byId(page, 'similar-keep').dispatchEvent('change');
  await byId(page, 'slice-name').fill('like the anchor');
  await byId(page, 'slice-save').click();
  await until(() => slice(page, 'like the anchor').locator('[data-testid=slice-count]').textContent(), (n) => Number(n) === 4, 'the anchor and its 3 nearest saved');

  // A screenshot of the grid with a filter and the charts, for a person to look at.
  await byId(page, 'similar-clear').click();
  await pickOrgan(page, 'liver');
  await page.screenshot({ path: path.join(OUT, 'catalog.png') });
  await pickOrgan(page, 'liver', false);

  // The selections outlive a reload.
  await page.reload();
  await byId(page, 'page-catalog').click();
  await until(() => byId(page, 'slice').count(), (n) => n === 2, 'both selections after a reload');

  // A selection opened as the labeling queue: the list and next/previous keep to it.
  await slice(page, 'liver and kidney').locator('[data-testid=slice-queue]').click();
  await until(() => byId(page, 'image-row').count(), (n) => n === both + 2, 'the queue in the list');
  assert.match(await text(page, 'slice-queue-chip'), /liver and kidney/);
  await waitImage(page);
  const rows = await byId(page, 'image-row').locator('.name').allTextContents();
  assert.ok(rows.every((n) => !n.includes('brain')), `no brain tile in the queue: ${rows}`);
  await byId(page, 'slice-queue-leave').click();
  await until(() => byId(page, 'image-row').count(), (n) => n === C.first + C.later, 'every image listed again');

  // Enter on a cell opens that image for labeling.
  await byId(page, 'page-catalog').click();
  await byId(page, 'catalog-grid').focus();
  await page.keyboard.press('ArrowRight');
  await page.keyboard.press('Enter');
  await until(() => text(page, 'position'), (p) => p.startsWith('2 /'), 'the second image open');
  await noPanics(page);
});
