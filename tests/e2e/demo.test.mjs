// First open: the demo project, and a screenshot of the labeling view.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { suite, count, text, byId, overlayPixel, noPanics, OUT, until } from './harness.mjs';

const env = suite();
before(env.setup);
after(env.teardown);

test('first open shows the demo project with labels and its attribution', async (t) => {
  const { page } = await env.open(t);
  assert.equal(await count(page, 'image-count'), 12);
  assert.equal(await byId(page, 'image-row').count(), 12);
  assert.equal(await text(page, 'position'), '1 / 12');
  const labels = await count(page, 'instance-count');
  assert.ok(labels > 0, `the first demo image has labels (got ${labels})`);
  assert.match(await page.locator('[data-testid=project] option:checked').textContent(), /Demo: NuInsSeg/);
  const attribution = page.locator('footer').getByText(/NuInsSeg.*CC BY 4\.0/);
  assert.ok(await attribution.isVisible(), 'the CC BY 4.0 attribution is visible');
  // ... and inside the window, not scrolled or clipped away.
  const box = await attribution.boundingBox();
  const size = page.viewportSize();
  assert.ok(box.x >= 0 && box.y >= 0 && box.x + box.width <= size.width && box.y + box.height <= size.height);
  await noPanics(page);
});

test('screenshot of the labeling view with labels', async (t) => {
  const { page } = await env.open(t);
  // The overlay layer has been painted: some pixel of it is not transparent.
  await until(
    () =>
      page.evaluate(() => {
        const c = document.querySelector('[data-testid=overlay]');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
        return n;
      }),
    (n) => n > 100,
    'painted labels on the overlay',
  );
  const file = path.join(OUT, 'labeling.png');
  await page.screenshot({ path: file });
  await noPanics(page);
});
