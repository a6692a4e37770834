// Lamina in two tabs of one browser: a tab that holds the data at an older schema blocks another tab's
// upgrade (the waiting tab says so and starts once the other closes), and a tab whose data another tab
// upgrades closes its connection at once and says to reload, instead of hanging the other tab.
// The "other tab" opens IndexedDB itself, as an older or newer build of the app would.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { suite, byId, text, until, waitDemo, selectTool, brushStroke, noPanics } from './harness.mjs';

const env = suite();
before(env.setup);
after(env.teardown);

/** A page of the app's origin that is not the app (the server's 404 page), to act as another build. */
async function otherTab(context) {
  const page = await context.newPage();
  await page.goto(`${env.server.url}not-the-app`);
  return page;
}

test('a tab holding the data at an older schema: the new tab says why it waits, and starts when that tab closes it', async (t) => {
  const context = await env.browser.newContext({ viewport: { width: 1400, height: 900 } });
  t.after(() => context.close());
  const old = await otherTab(context);
  // Schema 4 as the previous build made it, held open without a versionchange handler (as that build did).
  await old.evaluate(() => new Promise((resolve, reject) => {
    const r = indexedDB.open('lamina', 4);
    r.onupgradeneeded = () => {
      const db = r.result;
      const byId = { keyPath: 'id' };
      db.createObjectStore('projects', byId);
      db.createObjectStore('assets').createIndex('project', 'project_id');
      db.createObjectStore('blobs');
      db.createObjectStore('instances', byId).createIndex('asset', 'asset_id');
      db.createObjectStore('settings');
      db.createObjectStore('model_files');
      db.createObjectStore('embeddings');
      db.createObjectStore('outbox').createIndex('project', 'project_id');
      db.createObjectStore('sync_assets');
      db.createObjectStore('sync_batches');
      db.createObjectStore('runs', byId).createIndex('project', 'project_id');
      db.createObjectStore('run_predictions', byId).createIndex('run', 'run_id');
    };
    r.onsuccess = () => { window.__db = r.result; resolve(); };
    r.onerror = () => reject(r.error);
  }));
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(`pageerror: ${e.message}`));
  await page.goto(env.server.url);
  await until(() => text(page, 'error'), (s) => /open in another tab with an older version/.test(s || ''), 'the blocked notice');
  await old.evaluate(() => window.__db.close());
  await waitDemo(page);
  assert.equal(await byId(page, 'error').count(), 0, 'the waiting notice is gone');
  await noPanics(page);
});

test('another tab upgrades the data: this tab lets it, says to reload, and refuses to save rather than lose silently', async (t) => {
  const { context, page } = await env.open(t);
  const newer = await otherTab(context);
  const outcome = await newer.evaluate(() => new Promise((resolve) => {
    const r = indexedDB.open('lamina', 99);
    r.onblocked = () => resolve('blocked');
    r.onsuccess = () => { r.result.close(); resolve('opened'); };
    r.onerror = () => resolve(`error: ${r.error}`);
  }));
  assert.equal(outcome, 'opened', 'the other tab was not kept waiting');
  await until(() => text(page, 'error'), (s) => /updated in another tab: reload this tab/.test(s || ''), 'the reload notice');
  await selectTool(page, 'brush');
  await brushStroke(page, [[40, 40], [90, 60]]);
  await until(() => text(page, 'error'), (s) => /^The change was not saved: .*reload this tab/.test(s || ''), 'the refused save');
  await noPanics(page);
});

test('a label drawn in one tab shows in the other without a reload', async (t) => {
  const { context, page: a } = await env.open(t);
  const b = await context.newPage();
  b.errors = [];
  await b.goto(env.server.url);
  await until(() => text(b, 'image-count'), (n) => n === '12', 'the demo project in the second tab');
  // The image's labels load after the project's image list: wait for them rather than read a count of 0.
  const before = Number(await until(() => text(b, 'instance-count'), (n) => Number(n) > 0, 'the first image\'s labels in the second tab'));
  await selectTool(a, 'brush');
  await a.keyboard.press('Escape');
  await brushStroke(a, [[20, 230], [60, 240]]);
  await until(() => text(a, 'instance-count'), (n) => Number(n) === before + 1, 'the label in the first tab');
  await until(() => text(b, 'instance-count'), (n) => Number(n) === before + 1, 'the label shown in the second tab');
  await noPanics(a);
});
