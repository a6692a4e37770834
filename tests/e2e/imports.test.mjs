// Getting images in: a folder, a URL manifest, and bad inputs of every kind.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  suite, byId, count, text, until, waitCount, waitNotice, waitImage, newProject, dismissNotice, fixture,
  noPanics,
} from './harness.mjs';

const env = suite();
before(env.setup);
after(env.teardown);

test('folder import: images in the folder and its subfolder, the non-image reported', async (t) => {
  const { page } = await env.open(t);
  await newProject(page, 'E2E folder');
  // Playwright uploads a directory into a webkitdirectory input (files carry webkitRelativePath).
  await byId(page, 'add-folder').setInputFiles(fixture('folder'));
  const notice = await waitNotice(page, 'error', /^Import: 2 imported, 1 skipped/);
  assert.match(notice, /1 file\(s\) in the folder are not PNG, JPEG or TIFF/);
  await waitCount(page, 'image-count', 2);
  await waitImage(page);
  const names = await byId(page, 'image-row').locator('.name').allTextContents();
  assert.deepEqual([...names].sort(), ['folder/first.png', 'folder/sub/second.jpg']);
  await noPanics(page);
});

test('manifest URL: two images imported with their organ, the missing one named', async (t) => {
  const { page } = await env.open(t);
  await newProject(page, 'E2E manifest');
  const { manifest_ok: urls, manifest_organs: organs } = JSON.parse(
    await import('node:fs').then((fs) => fs.readFileSync(fixture('summary.json'), 'utf8')),
  );
  await byId(page, 'manifest-url').fill(`${env.server.url}e2e-fixtures/manifest.csv`);
  await byId(page, 'fetch-manifest').click();
  const notice = await waitNotice(page, 'error', /^Manifest: 2 imported, 1 skipped/);
  assert.match(notice, /missing_tile\.png: .*HTTP 404/);
  await waitCount(page, 'image-count', 2);
  await waitImage(page);
  const rows = byId(page, 'image-row');
  const names = await rows.locator('.name').allTextContents();
  assert.deepEqual(names, urls.map((u) => u.split('/').pop()));
  assert.deepEqual(await rows.locator('.meta').allTextContents(), organs);
  await noPanics(page);
});

// Each bad input on the demo project (12 images, labels on the first): a clear error, nothing changed,
// and a valid import right after still works.
const BAD = [
  { name: 'corrupt PNG', input: 'add-images', file: 'corrupt.png', error: /corrupt\.png: the image data is damaged or truncated/ },
  { name: 'non-image', input: 'add-images', file: 'notes.png', error: /notes\.png: not a PNG, JPEG or TIFF image/ },
  { name: '30000x30000 decompression bomb', input: 'add-images', file: 'bomb.png', error: /bomb\.png: the image is 30000x30000 pixels, larger than Lamina opens/ },
  { name: 'malformed manifest', input: 'add-manifest', file: 'bad_manifest.csv', error: /^Manifest not imported: the CSV manifest has no `url` column/ },
  { name: 'malformed bundle', input: 'import-bundle', file: 'bad_bundle.json', error: /^Bundle not imported: not valid JSON for a label bundle/ },
];

for (const bad of BAD) {
  test(`bad input, ${bad.name}: clear error, nothing changed, the app keeps working`, async (t) => {
    const { page } = await env.open(t);
    const labels = await count(page, 'instance-count');
    assert.ok(labels > 0);
    await dismissNotice(page);
    await byId(page, bad.input).setInputFiles(fixture(bad.file));
    const error = await waitNotice(page, 'error', bad.error);
    t.diagnostic(`error shown: ${JSON.stringify(error)}`);
    assert.equal(await count(page, 'image-count'), 12);
    assert.equal(await count(page, 'instance-count'), labels);
    assert.equal(await text(page, 'position'), '1 / 12');
    // Still working: a valid image imports.
    await dismissNotice(page);
    await byId(page, 'add-images').setInputFiles(fixture('tile_c.png'));
    await waitNotice(page, 'info', /^Import: 1 imported$/);
    await waitCount(page, 'image-count', 13);
    // Nothing half-written either: after a reload the project holds the 12 + 1 images, labels intact.
    await page.reload();
    await waitCount(page, 'image-count', 13);
    await waitImage(page);
    await waitCount(page, 'instance-count', labels);
    await noPanics(page);
  });
}

// A picked manifest or bundle that cannot be read any more (deleted or changed on disk after it was
// picked): the error names it, and nothing is imported. The file is handed to the input the way the
// browser's own file chooser does, by path (CDP), then removed before the app reads it.
for (const input of ['add-manifest', 'import-bundle']) {
  test(`a picked file that cannot be read (${input}): a clear error naming it, nothing imported`, async (t) => {
    const { page } = await env.open(t);
    const labels = await count(page, 'instance-count');
    await dismissNotice(page);
    const fs = await import('node:fs');
    const os = await import('node:os');
    const path = await import('node:path');
    const gone = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'lamina-gone-')), 'gone.json');
    const cdp = await page.context().newCDPSession(page);
    const { root } = await cdp.send('DOM.getDocument');
    const { nodeId } = await cdp.send('DOM.querySelector', { nodeId: root.nodeId, selector: `[data-testid=${input}]` });
    await cdp.send('DOM.setFileInputFiles', { nodeId, files: [gone] });
    const error = await waitNotice(page, 'error', /^Nothing was imported: the browser could not read gone\.json/);
    t.diagnostic(`error shown: ${JSON.stringify(error)}`);
    assert.equal(await count(page, 'image-count'), 12);
    assert.equal(await count(page, 'instance-count'), labels);
    await noPanics(page);
  });
}
