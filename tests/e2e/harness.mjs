// Shared helpers for Lamina's end-to-end tests: a private static server over dist/, Debian's Chromium
// driven by playwright-core (never a downloaded browser), and small "what the user sees" helpers.
import { spawn, execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chromium } from '../../tools/node_modules/playwright-core/index.mjs';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const FIXTURES = path.join(ROOT, 'target/e2e/fixtures');
export const OUT = path.join(ROOT, 'target/e2e');
export const fixture = (name) => path.join(FIXTURES, name);
export const IMAGE_SIZE = 256;
const execFileP = promisify(execFile);

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Starts `scripts/serve.py` on a free port over dist/; resolves once it answers. */
export async function startServer() {
  const port = await freePort();
  const proc = spawn('python3', ['scripts/serve.py', '--port', String(port), '--dir', 'dist'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  proc.stderr.on('data', (d) => (stderr += d));
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${stderr}`)), 10_000);
    proc.stdout.on('data', (d) => {
      if (String(d).includes('Lamina is at')) {
        clearTimeout(timer);
        resolve();
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}: ${stderr}`));
    });
  });
  const url = `http://127.0.0.1:${port}/`;
  return {
    url,
    origin: `http://127.0.0.1:${port}`,
    async stop() {
      if (proc.exitCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        await exited;
      }
    },
  };
}

export function launchBrowser() {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
}

/**
 * One server and one browser per test file; `setup()` in `before`, `teardown()` in `after`.
 * Each test gets a fresh context (fresh IndexedDB) from `open()`.
 */
export function suite() {
  const env = { server: null, browser: null, contexts: [] };
  env.setup = async () => {
    mkdirSync(OUT, { recursive: true });
    env.server = await startServer();
    env.browser = await launchBrowser();
  };
  env.teardown = async () => {
    await env.browser?.close();
    await env.server?.stop();
  };
  /** A fresh context and page on the app, after the first-open demo import finished. */
  env.open = async (t, { waitForDemo = true, beforeGoto } = {}) => {
    const context = await env.browser.newContext({
      viewport: { width: 1400, height: 900 },
      acceptDownloads: true,
    });
    const page = await context.newPage();
    page.errors = [];
    page.on('pageerror', (e) => page.errors.push(`pageerror: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) {
        page.errors.push(`console: ${m.text()}`);
      }
    });
    // Every Content-Security-Policy violation the page reports (noPanics fails on any).
    await context.addInitScript(() => {
      window.__cspViolations = [];
      document.addEventListener('securitypolicyviolation', (e) =>
        window.__cspViolations.push(`${e.violatedDirective}: ${e.blockedURI}`));
    });
    t?.after(() => context.close());
    if (beforeGoto) await beforeGoto(context, page);
    await page.goto(env.server.url);
    if (waitForDemo) await waitDemo(page);
    return { context, page };
  };
  return env;
}

/** Polls `read()` until `ok(value)` holds; fails with the last value seen. No fixed sleeps. */
export async function until(read, ok, what, timeout = 15_000) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await read();
      if (ok(last)) return last;
    } catch (e) {
      last = `(${e.message})`;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; last value: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export const byId = (page, id) => page.locator(`[data-testid="${id}"]`);

/** Text of the first element with this data-testid, or null when absent. */
export async function text(page, id) {
  return page.evaluate((id) => {
    const el = document.querySelector(`[data-testid="${id}"]`);
    return el ? el.textContent.trim() : null;
  }, id);
}

export async function count(page, id) {
  return Number.parseInt(await text(page, id), 10);
}

export const waitCount = (page, id, n, timeout) =>
  until(() => count(page, id), (v) => v === n, `${id} = ${n}`, timeout);

/** Waits for the notice of `kind` ('error' or 'info') whose text matches `re`; returns its text. */
export const waitNotice = (page, kind, re, timeout) =>
  until(() => text(page, kind), (v) => v !== null && re.test(v), `${kind} notice matching ${re}`, timeout);

/** Dismisses the current notice (a click on it, as a user would), so the next one is unambiguous. */
export async function dismissNotice(page) {
  for (const kind of ['error', 'info']) {
    const loc = byId(page, kind);
    if (await loc.count()) await loc.click();
  }
  await until(() => page.locator('[data-testid=error], [data-testid=info]').count(), (n) => n === 0, 'no notice');
}

/** The first open imports the demo bundle; it is done when its final notice is shown and 12 images listed. */
export async function waitDemo(page) {
  await waitNotice(page, 'info', /^Bundle: \d+ labels on 12 images/, 30_000);
  await waitCount(page, 'image-count', 12);
  await waitImage(page);
}

/** Waits until the labeling view shows a loaded image. */
export async function waitImage(page) {
  await until(
    () =>
      page.evaluate(() => {
        const img = document.querySelector('[data-testid=image]');
        if (!img || !img.complete || img.naturalWidth === 0) return false;
        const r = img.getBoundingClientRect();
        return r.width > 0 && r.height > 0;
      }),
    (v) => v === true,
    'a loaded image in the labeling view',
  );
}

/** "New project" asks for a name with window.prompt. */
export async function newProject(page, name) {
  page.once('dialog', (d) => d.accept(name));
  await page.getByRole('button', { name: 'New project' }).click();
  await until(
    () => page.locator('[data-testid=project] option:checked').textContent(),
    (v) => v === name,
    `project "${name}" selected`,
  );
  await waitCount(page, 'image-count', 0);
}

/** Image pixel (x, y) → page (CSS) coordinates, via the displayed image's box. */
export async function toScreen(page, [x, y]) {
  const box = await byId(page, 'image').boundingBox();
  return [box.x + (x * box.width) / IMAGE_SIZE, box.y + (y * box.height) / IMAGE_SIZE];
}

/** Moves focus off any text field, so shortcut keys reach the app. */
export async function blur(page) {
  await page.evaluate(() => document.activeElement && document.activeElement.blur && document.activeElement.blur());
}

export async function selectTool(page, name) {
  await byId(page, `tool-${name}`).click();
  await until(() => byId(page, `tool-${name}`).getAttribute('class'), (c) => /active/.test(c || ''), `tool ${name} active`);
}

/** A brush stroke through image points (a drag with intermediate mouse moves). */
export async function brushStroke(page, points) {
  const [x0, y0] = await toScreen(page, points[0]);
  await page.mouse.move(x0, y0);
  await page.mouse.down();
  for (const p of points.slice(1)) {
    const [x, y] = await toScreen(page, p);
    await page.mouse.move(x, y, { steps: 8 });
  }
  await page.mouse.up();
}

/** Polygon tool clicks at image points, closed with Enter. */
export async function polygon(page, points) {
  for (const p of points) {
    const [x, y] = await toScreen(page, p);
    await page.mouse.click(x, y);
  }
  await blur(page);
  await page.keyboard.press('Enter');
}

/** Clicks at an image point (select tool). */
export async function clickImage(page, p) {
  const [x, y] = await toScreen(page, p);
  await page.mouse.click(x, y);
}

/** RGBA of the overlay canvas at image pixel (x, y). */
export async function overlayPixel(page, [x, y]) {
  return page.evaluate(
    ([x, y]) => {
      const c = document.querySelector('[data-testid=overlay]');
      return Array.from(c.getContext('2d').getImageData(x, y, 1, 1).data);
    },
    [x, y],
  );
}

/** Clicks an export button and saves the download under target/e2e/<dir>/. Returns the saved path. */
export async function exportTo(page, id, dir) {
  const [download] = await Promise.all([page.waitForEvent('download'), byId(page, id).click()]);
  const outDir = path.join(OUT, dir);
  mkdirSync(outDir, { recursive: true });
  const file = path.join(outDir, download.suggestedFilename());
  await download.saveAs(file);
  return file;
}

export const readJson = (file) => JSON.parse(readFileSync(file, 'utf8'));

export async function python(script, args) {
  const { stdout } = await execFileP('python3', [path.join(ROOT, script), ...args], { cwd: ROOT });
  return stdout;
}

export function tempDir(prefix) {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

/** Fails on wasm panics, uncaught page errors or Content-Security-Policy violations seen during the test. */
export async function noPanics(page) {
  const bad = page.errors.filter((e) => /panicked|pageerror|RuntimeError|unreachable|Content Security Policy/.test(e));
  if (bad.length) throw new Error(`the app failed:\n${bad.join('\n')}`);
  const csp = await page.evaluate(() => window.__cspViolations ?? []).catch(() => []);
  if (csp.length) throw new Error(`Content-Security-Policy violations:\n${csp.join('\n')}`);
}

/** One real IndexedDB write of `bytes` into a probe database of the site; returns how it ended. */
export const probeWrite = (page, bytes) =>
  page.evaluate(async (bytes) => {
    const db = await new Promise((resolve, reject) => {
      const r = indexedDB.open('quota-probe', 1);
      r.onupgradeneeded = () => r.result.createObjectStore('s');
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
    const outcome = await new Promise((resolve) => {
      const tx = db.transaction('s', 'readwrite');
      tx.objectStore('s').put(new Uint8Array(bytes), 'fill');
      tx.oncomplete = () => resolve('committed');
      tx.onabort = () => resolve(tx.error ? tx.error.name : 'aborted');
    });
    db.close();
    // A write that fit is not kept: it would only eat the space the next probe needs refused.
    if (outcome === 'committed') indexedDB.deleteDatabase('quota-probe');
    return outcome;
  }, bytes);
