// Segment suggestions in the labeling view: hover preview, clicks (positive, negative), a box, accept,
// cancel and undo, with provenance that survives a reload and reaches the exports. Real worker, real
// model (the one the app serves by default), real IndexedDB, in headless Chromium.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import {
  suite, byId, count, text, until, waitCount, waitNotice, waitImage, newProject, selectTool, blur, toScreen,
  exportTo, readJson, fixture, python, noPanics, OUT,
} from './harness.mjs';

const env = suite();
before(env.setup);
after(env.teardown);

const TILE = 'tile_c.png';
// Two real nuclei of the tile (tests/e2e/make_fixtures.py): the first is clicked, the second boxed.
const { suggest_nuclei: GT } = readJson(fixture('summary.json'));
const [CLICKED, BOXED] = GT.nuclei;
const CLICK = CLICKED.inside_xy;
// A labeler's box: the nucleus' tight box grown by 2 px (x1, y1 exclusive).
const [bx0, by0, bx1, by1] = BOXED.bbox_xyxy;
const BOX = [[bx0 - 2, by0 - 2], [bx1 + 2, by1 + 2]];
// Both IoU figures a user would call "the outline is there"; the default model's card gives its typical IoU.
const MIN_IOU = 0.6;

/** A new project with one unlabeled tile, encoded and ready for suggestions, the suggestion tool on. */
async function readyTile(t, name, options = {}) {
  const { page, context } = await env.open(t, options);
  await newProject(page, name);
  await byId(page, 'add-images').setInputFiles([fixture(TILE)]);
  await waitNotice(page, 'info', /^Import: 1 imported$/);
  await waitImage(page);
  await until(() => text(page, 'embedding-status'), (s) => /^image: ready/.test(s || ''), 'the tile encoded', 60_000);
  await selectTool(page, 'suggest');
  await blur(page);
  return { page, context };
}

/** Suggestions drawn so far (-1 when the suggestion tool is not on). */
const seq = (page) =>
  page.evaluate(() => Number(document.querySelector('[data-testid=suggest-status]')?.dataset.seq ?? -1));

/** Waits for the next suggestion drawn after `before` answers. */
const nextSuggestion = (page, before, what) => until(() => seq(page), (n) => n > before, what, 30_000);

/** RGBA of the suggestion layer at image pixel (x, y). */
const layerPixel = (page, [x, y]) =>
  page.evaluate(([x, y]) => Array.from(document.querySelector('[data-testid=suggest-layer]').getContext('2d').getImageData(x, y, 1, 1).data), [x, y]);

/** Non-transparent pixels of the suggestion layer. */
const layerArea = (page) =>
  page.evaluate(() => {
    const c = document.querySelector('[data-testid=suggest-layer]');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
    return n;
  });

async function moveTo(page, p, steps = 1) {
  const [x, y] = await toScreen(page, p);
  await page.mouse.move(x, y, { steps });
}

// Both return the suggestion count just before the pointer is released: a hover preview of the approach
// may still be drawn before that, while one answered later is stale and dropped by the app.
async function clickAt(page, p, { negative = false } = {}) {
  await moveTo(page, p);
  if (negative) await page.keyboard.down('Alt');
  await page.mouse.down();
  const before = await seq(page);
  await page.mouse.up();
  if (negative) await page.keyboard.up('Alt');
  return before;
}

async function dragBox(page, a, b) {
  await moveTo(page, a);
  await page.mouse.down();
  await moveTo(page, b, 6);
  const before = await seq(page);
  await page.mouse.up();
  return before;
}

const isGreen = ([r, g, b, a]) => a > 200 && g > 150 && r < 100;
const isRed = ([r, g, b, a]) => a > 200 && r > 180 && g < 100;

test('hover previews; clicks and a box become labels with provenance that survive a reload and reach the exports', async (t) => {
  const { page } = await readyTile(t, 'E2E suggest');

  // Hover: a preview is decoded and drawn while the pointer moves, before any click.
  let before = await seq(page);
  await moveTo(page, [CLICK[0] - 20, CLICK[1] - 20]);
  await moveTo(page, CLICK, 4);
  await nextSuggestion(page, before, 'a hover preview');
  assert.equal(await count(page, 'instance-count'), 0, 'a preview is not a label');

  // Click: the working mask, with a green marker; Alt-click adds a red (negative) one; Ctrl+Z takes it back.
  before = await clickAt(page, CLICK);
  await nextSuggestion(page, before, 'the working mask of a click');
  assert.ok(isGreen(await layerPixel(page, CLICK)), 'a positive marker where the user clicked');
  before = await clickAt(page, [40, 200], { negative: true });
  await nextSuggestion(page, before, 'the mask refined by a negative click');
  assert.ok(isRed(await layerPixel(page, [40, 200])), 'a negative marker');
  assert.equal(await text(page, 'suggest-prompts'), '2 prompts: 1 include, 1 exclude');
  before = await seq(page);
  await page.keyboard.press('Control+z');
  await nextSuggestion(page, before, 'the mask without the negative click');
  assert.equal(await text(page, 'suggest-prompts'), '1 prompt: 1 include', 'Ctrl+Z removed the last prompt');
  assert.ok(isGreen(await layerPixel(page, CLICK)), 'and kept the first');
  const workingArea = await layerArea(page);
  assert.ok(workingArea > 0, 'the working mask is drawn');
  await page.screenshot({ path: path.join(OUT, 'suggest-working.png') });

  await page.keyboard.press('Enter');
  await waitCount(page, 'instance-count', 1);
  await until(() => text(page, 'selection'), (s) => /sam_click|click/i.test(s || ''), 'the new label selected, made by a click');
  await until(() => layerArea(page), (n) => n === 0, 'the suggestion layer cleared after accepting');

  // A box: dragged, decoded, accepted.
  before = await dragBox(page, ...BOX);
  await nextSuggestion(page, before, 'the mask of a box');
  await page.screenshot({ path: path.join(OUT, 'suggest-box.png') });
  await page.keyboard.press('Enter');
  await waitCount(page, 'instance-count', 2).catch(async (e) => {
    throw new Error(`${e.message}; notice: ${await text(page, 'info')} ${await text(page, 'error')}`);
  });

  // The screenshot to look at: two accepted labels and a live hover preview (a CI artifact).
  before = await seq(page);
  await moveTo(page, [200, 200], 4);
  await nextSuggestion(page, before, 'a hover preview next to the labels');
  await page.screenshot({ path: path.join(OUT, 'suggest-view.png') });

  // Esc cancels a suggestion in progress; nothing is added.
  before = await clickAt(page, [200, 200]);
  await nextSuggestion(page, before, 'a third suggestion');
  await page.keyboard.press('Escape');
  await until(() => layerArea(page), (n) => n === 0, 'Esc cleared the suggestion');
  assert.equal(await count(page, 'instance-count'), 2);

  // With no suggestion in progress, Ctrl+Z undoes the last accepted label, and redo brings it back.
  await page.keyboard.press('Control+z');
  await waitCount(page, 'instance-count', 1);
  await page.keyboard.press('Control+Shift+Z');
  await waitCount(page, 'instance-count', 2);

  await page.reload();
  await waitImage(page);
  await waitCount(page, 'instance-count', 2);
  await until(() => text(page, 'model-status'), (v) => /^ready: /.test(v || ''), 'the model after reload', 60_000);
  const bundleFile = await exportTo(page, 'export-bundle', 'suggest');
  const cocoFile = await exportTo(page, 'export-coco', 'suggest');
  const bundle = readJson(bundleFile);
  const byTool = Object.fromEntries(bundle.instances.map((i) => [i.provenance.tool, i]));
  assert.deepEqual(Object.keys(byTool).sort(), ['sam_box', 'sam_click']);
  const model = await text(page, 'model-status');
  for (const inst of bundle.instances) {
    assert.equal(`ready: ${inst.provenance.model_id}`, model, 'the model that made it is recorded');
    assert.ok(inst.area > 0);
  }
  const click = byTool.sam_click.provenance.prompts;
  assert.equal(click.length, 1, 'the undone negative click is not recorded');
  assert.equal(click[0].kind, 'point');
  assert.equal(click[0].positive, true);
  assert.ok(Math.abs(click[0].x - CLICK[0]) < 1 && Math.abs(click[0].y - CLICK[1]) < 1, `prompt in image pixels: ${JSON.stringify(click[0])}`);
  const box = byTool.sam_box.provenance.prompts.find((p) => p.kind === 'box');
  assert.ok(box && Math.abs(box.x0 - BOX[0][0]) < 1 && Math.abs(box.y1 - BOX[1][1]) < 1, `box in image pixels: ${JSON.stringify(box)}`);
  // The labels outline the nuclei they were made on (scored by pycocotools against the ground truth).
  const scores = JSON.parse(await python('tests/e2e/check_suggestions.py', [
    '--bundle', bundleFile, '--mask', GT.mask, '--click-id', String(CLICKED.id), '--box-id', String(BOXED.id),
  ]));
  t.diagnostic(`IoU with the ground truth: ${JSON.stringify(scores)}`);
  assert.ok(scores.click_iou >= MIN_IOU, `one click outlines the nucleus: IoU ${scores.click_iou}`);
  assert.ok(scores.box_iou >= MIN_IOU, `a box outlines the nucleus: IoU ${scores.box_iou}`);
  const coco = readJson(cocoFile);
  assert.equal(coco.annotations.length, 2);
  assert.deepEqual(coco.annotations.map((a) => a.area).sort(), bundle.instances.map((i) => i.area).sort());
  await noPanics(page);
});

test('accept on click: one click is one label', async (t) => {
  const { page } = await readyTile(t, 'E2E quick');
  await byId(page, 'quick-commit').check();
  await blur(page);
  await clickAt(page, CLICK);
  await waitCount(page, 'instance-count', 1);
  await noPanics(page);
});

test('the image shows that it is being encoded, and suggestions start once it is ready', async (t) => {
  const { page } = await env.open(t, {
    beforeGoto: (context) =>
      context.addInitScript(() => {
        window.__encodingSeen = false;
        window.__statuses = [];
        new MutationObserver(() => {
          if (document.querySelector('[data-testid=encoding-overlay]')) window.__encodingSeen = true;
          // What the status bar said along the way, for the failure message.
          const s = document.querySelector('[data-testid=embedding-status]')?.textContent;
          if (s && s !== window.__statuses.at(-1)) window.__statuses.push(s);
        }).observe(document, { childList: true, subtree: true, characterData: true });
      }),
  });
  await until(() => text(page, 'embedding-status'), (s) => /^image: ready/.test(s || ''), 'the demo tile encoded', 60_000);
  const seen = await page.evaluate(() => ({ overlay: window.__encodingSeen, statuses: window.__statuses }));
  assert.equal(seen.overlay, true, `the encoding overlay was shown (statuses: ${JSON.stringify(seen.statuses)})`);
  assert.equal(await byId(page, 'encoding-overlay').count(), 0, 'and is gone once ready');
  await noPanics(page);
});

test('without a model the suggestion tool says why, and the manual tools keep working', async (t) => {
  const { page } = await env.open(t, {
    beforeGoto: (context) => context.route('**/models/default/encoder.onnx', (route) => route.fulfill({ status: 503, body: 'down' })),
  });
  await until(() => text(page, 'model-status'), (s) => /^not loaded: .*503/.test(s || ''), 'the model failure shown');
  await selectTool(page, 'suggest');
  await blur(page);
  await clickAt(page, [128, 128]);
  await waitNotice(page, 'info', /no segment model .*manual tools keep working/);
  const n = await count(page, 'instance-count');
  await selectTool(page, 'polygon');
  for (const p of [[10, 10], [40, 10], [40, 40]]) await clickAt(page, p);
  await page.keyboard.press('Enter');
  await waitCount(page, 'instance-count', n + 1);
  await noPanics(page);
});
