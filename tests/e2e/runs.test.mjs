// Model runs, as a team uses them: make a run from the labels, export it for training, import two
// model iterations' predictions, read the metrics (checked against `lamina metrics`, which
// tests/reference/check_metrics.py checks against pycocotools), look at the comparison view, send the
// worst image back to labeling; bad prediction files are refused whole; all of it survives a reload.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  suite, byId, text, count, until, waitNotice, dismissNotice, exportTo, python, noPanics, OUT, ROOT,
} from './harness.mjs';

const env = suite();
before(env.setup);
after(env.teardown);

const execFileP = promisify(execFile);
const CLI = [process.env.LAMINA_CLI, 'target/debug/lamina', 'target/demo-cli/debug/lamina']
  .filter(Boolean)
  .map((p) => path.resolve(ROOT, p))
  .find((p) => existsSync(p));

async function cliMetrics(bundle, pred, split) {
  const splitArgs = split ? ['--split', split] : [];
  const { stdout } = await execFileP(CLI, ['metrics', '--gt', bundle, '--pred', pred, ...splitArgs, '--json']);
  return JSON.parse(stdout);
}

/** The metrics table as {class: {metric: number}} from the cells' data-value attributes. */
function tableValues(page) {
  return page.evaluate(() => {
    const out = {};
    for (const td of document.querySelectorAll('[data-testid=metrics-table] td[data-metric]')) {
      const row = (out[td.dataset.class] ??= {});
      row[td.dataset.metric] = td.dataset.value === '' ? null : Number(td.dataset.value);
    }
    return out;
  });
}

function assertSameFigures(shown, expected, what) {
  const rows = { all: expected, ...expected.classes };
  for (const [cls, figures] of Object.entries(rows)) {
    assert.ok(shown[cls], `${what}: row ${cls} is shown`);
    for (const key of ['n_gt', 'n_pred', 'precision', 'recall', 'f1', 'mean_iou', 'dice', 'pq', 'dq', 'sq', 'aji', 'map', 'ap50']) {
      const a = shown[cls][key];
      const b = figures[key];
      if (b === null) assert.equal(a, null, `${what}: ${cls} ${key}`);
      else assert.ok(Math.abs(a - b) < 1e-12, `${what}: ${cls} ${key} shown ${a}, lamina metrics ${b}`);
    }
  }
}

async function importPredictions(page, file) {
  await byId(page, 'import-predictions').setInputFiles(file);
}

test('a run goes from labels to a zip, predictions, metrics, the worst image and back to labeling', async (t) => {
  assert.ok(CLI, 'the lamina CLI is built (LAMINA_CLI, target/debug or target/demo-cli)');
  const { page } = await env.open(t);
  await byId(page, 'page-runs').click();
  await until(() => count(page, 'run-count'), (n) => n === 0, 'no runs yet');

  // Make a run: all labeled demo images, 50/25/25, seed 3.
  await byId(page, 'run-name').fill('baseline');
  await byId(page, 'run-source').selectOption('labeled');
  await byId(page, 'run-split').fill('50,25,25');
  await byId(page, 'run-seed').fill('3');
  await byId(page, 'run-create').click();
  await waitNotice(page, 'info', /Run "baseline" made: train 6, val 3, test 3/);
  assert.equal(await count(page, 'run-count'), 1);
  await dismissNotice(page);

  // Export: the zip has the run's bundle, COCO per split and a YOLO-seg dataset with the images.
  const zip = await exportTo(page, 'run-export', 'runs');
  assert.match(path.basename(zip), /^baseline\.run\.zip$/);
  await waitNotice(page, 'info', /Exported baseline\.run\.zip: 12 images/);
  await dismissNotice(page);
  const listing = JSON.parse(await python('tests/e2e/zip_listing.py', [zip]));
  for (const name of ['run.json', 'bundle.json', 'coco/train.json', 'coco/val.json', 'coco/test.json', 'yolo/data.yaml']) {
    assert.ok(listing.includes(name), `the zip has ${name}`);
  }
  assert.equal(listing.filter((n) => /^yolo\/images\/train\/.+\.png$/.test(n)).length, 6);
  assert.equal(listing.filter((n) => /^yolo\/labels\/test\/.+\.txt$/.test(n)).length, 3);

  // Two model iterations' predictions, made from the exported labels.
  const files = JSON.parse(await python('tests/e2e/run_predictions.py', [zip, path.join(OUT, 'runs')]));
  await importPredictions(page, files['results-1']);
  await waitNotice(page, 'info', /Imported \d+ predictions on 12 images from results-1\.json/);
  await dismissNotice(page);
  await until(() => page.locator('[data-testid=metrics-table] td').count(), (n) => n > 0, 'the metrics table');
  const expected1 = await cliMetrics(files.bundle, files['results-1'], 'test');
  assertSameFigures(await tableValues(page), expected1, 'set 1 on test');
  assert.ok(expected1.f1 > 0.3 && expected1.f1 < 0.99, `predictions are not trivial (F1 ${expected1.f1})`);

  // The second iteration is compared with the first: its figures and the deltas.
  await importPredictions(page, files['results-2']);
  await waitNotice(page, 'info', /Imported \d+ predictions on 12 images from results-2\.json/);
  await dismissNotice(page);
  const expected2 = await cliMetrics(files.bundle, files['results-2'], 'test');
  await until(async () => (await tableValues(page)).all?.f1, (v) => Math.abs(v - expected2.f1) < 1e-12, 'set 2 measured');
  assertSameFigures(await tableValues(page), expected2, 'set 2 on test');
  const f1Delta = await page.locator('td[data-class=all][data-metric=f1] [data-testid=delta]').textContent();
  assert.equal(Number(f1Delta), Number((expected2.f1 - expected1.f1).toFixed(4)), 'F1 delta against set 1');

  // Every image of the run, worst first; open the worst one in the comparison view.
  await byId(page, 'split').selectOption('');
  await until(() => byId(page, 'run-image').count(), (n) => n === 12, '12 images listed');
  const worst = page.locator('[data-testid=run-image]').first();
  const worstName = (await worst.locator('td.name').textContent()).trim();
  await worst.locator('td.name').click();
  await until(() => text(page, 'legend-matched'), (v) => v && /matched \d+/.test(v), 'the comparison legend');
  const legend = {};
  for (const k of ['matched', 'missed', 'false-positive']) legend[k] = Number((await text(page, `legend-${k}`)).match(/(\d+)$/)[1]);
  const all2 = await cliMetrics(files.bundle, files['results-2'], null);
  const worstF1 = Math.min(...all2.images.map((im) => im.f1));
  const row = all2.images.find((im) => im.name === worstName);
  assert.equal(row.f1, worstF1, 'the first image listed has the lowest F1');
  assert.deepEqual(legend, { matched: row.tp, missed: row.fn, 'false-positive': row.fp }, 'the view colours what the metrics count');
  const painted = await page.evaluate(() => {
    const c = document.querySelector('[data-testid=prediction-layer]');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
    return n;
  });
  assert.ok(painted > 50, `the prediction layer is painted (${painted} px)`);
  await byId(page, 'show-truth').uncheck();
  assert.match(await byId(page, 'truth-layer').getAttribute('style'), /opacity:\s*0/);
  await byId(page, 'show-truth').check();
  await byId(page, 'comparison').scrollIntoViewIfNeeded();
  await page.screenshot({ path: path.join(OUT, 'run-comparison.png') });

  // Send it back to labeling: the project shows it in progress again.
  await worst.locator('[data-testid=pick-image]').check();
  await byId(page, 'send-to-labeling').click();
  await waitNotice(page, 'info', /^1 images sent back to labeling/);
  await byId(page, 'page-label').click();
  const status = await page.locator('[data-testid=image-row]', { hasText: worstName }).locator('.badge').textContent();
  assert.equal(status, 'To label');

  // A reload keeps the run and both prediction sets.
  await page.reload();
  await until(() => count(page, 'image-count'), (n) => n === 12, 'the project after reload');
  await byId(page, 'page-runs').click();
  await until(() => count(page, 'run-count'), (n) => n === 1, 'the run after reload');
  await byId(page, 'run-row').first().click();
  await until(() => page.locator('[data-testid=set-a] option').count(), (n) => n === 3, 'both sets after reload');
  await noPanics(page);
});

test('bad prediction files are refused whole, with the reason', async (t) => {
  const { page } = await env.open(t);
  await byId(page, 'page-runs').click();
  await byId(page, 'run-name').fill('guarded');
  await byId(page, 'run-source').selectOption('labeled');
  await byId(page, 'run-create').click();
  await waitNotice(page, 'info', /Run "guarded" made/);
  await dismissNotice(page);
  const zip = await exportTo(page, 'run-export', 'runs-bad');
  await waitNotice(page, 'info', /Exported/);
  await dismissNotice(page);
  const files = JSON.parse(await python('tests/e2e/run_predictions.py', [zip, path.join(OUT, 'runs-bad')]));

  await importPredictions(page, files.bad);
  const e1 = await waitNotice(page, 'error', /No predictions were imported/);
  assert.match(e1, /image_id 999/);
  assert.match(e1, /nothing was imported/);
  await dismissNotice(page);

  await importPredictions(page, files.escape);
  const e2 = await waitNotice(page, 'error', /No predictions were imported/);
  assert.match(e2, /outside the folder/);
  await dismissNotice(page);

  // Nothing was stored: no prediction set to choose.
  assert.equal(await page.locator('[data-testid=set-a] option').count(), 1);
  await noPanics(page);
});
