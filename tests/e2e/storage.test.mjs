// A full disk: the site's storage quota is made tiny through DevTools (a real QuotaExceededError from
// IndexedDB, nothing mocked).
//
// How, and why not just one override call: in this Chromium (156), an override made after the site has
// written to IndexedDB is ignored by later small commits (observed: 200 commits over 20 s still succeed,
// also after a reload), while a commit larger than what was left under the old quota is checked against
// the new one; IndexedDB evidently caches the space remaining. So `Storage.overrideQuotaForOrigin` made
// after the demo import alone changes nothing. The test therefore (1) sets a 50 MB quota before the page loads (the cache then holds
// < 50 MB), (2) lowers it to 1 KB once the demo is in, and (3) makes the browser look again with one
// 60 MB write into a separate probe database, which IndexedDB refuses. From then on every write of the
// site fails with QuotaExceededError, like on a full disk.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  suite, byId, count, waitCount, waitNotice, waitImage, dismissNotice, selectTool, fixture, noPanics, probeWrite,
} from './harness.mjs';

const env = suite();
before(env.setup);
after(env.teardown);

test('storage full: importing an image fails with a clear error and nothing is half-written', async (t) => {
  let cdp;
  const { page } = await env.open(t, {
    beforeGoto: async (context, page) => {
      cdp = await context.newCDPSession(page);
      await cdp.send('Storage.overrideQuotaForOrigin', { origin: env.server.origin, quotaSize: 50e6 });
    },
  });
  const labels = await count(page, 'instance-count');
  await dismissNotice(page);
  await cdp.send('Storage.overrideQuotaForOrigin', { origin: env.server.origin, quotaSize: 1024 });
  assert.equal(await probeWrite(page, 60e6), 'QuotaExceededError');

  await byId(page, 'add-images').setInputFiles(fixture('tile_c.png'));
  const error = await waitNotice(page, 'error', /storage for this site is full/);
  t.diagnostic(`error shown: ${JSON.stringify(error)}`);
  assert.match(error, /^Import stopped at tile_c\.png: /);
  assert.match(error, /nothing was saved/);
  assert.equal(await count(page, 'image-count'), 12);

  // A label drawn while full is refused too, and not shown as if it were saved.
  await dismissNotice(page);
  await selectTool(page, 'brush');
  const box = await byId(page, 'image').boundingBox();
  await page.mouse.move(box.x + 20, box.y + 20);
  await page.mouse.down();
  await page.mouse.move(box.x + 60, box.y + 30, { steps: 5 });
  await page.mouse.up();
  await waitNotice(page, 'error', /storage for this site is full/);
  assert.equal(await count(page, 'instance-count'), labels);

  // After a reload (still full) the project opens as it was: 12 images, no partial image or label.
  await page.reload();
  await waitCount(page, 'image-count', 12);
  await waitImage(page);
  await waitCount(page, 'instance-count', labels);

  // Space again: the same import now succeeds.
  await cdp.send('Storage.overrideQuotaForOrigin', { origin: env.server.origin });
  await dismissNotice(page);
  await byId(page, 'add-images').setInputFiles(fixture('tile_c.png'));
  await waitNotice(page, 'info', /^Import: 1 imported$/);
  await waitCount(page, 'image-count', 13);
  await noPanics(page);
});
