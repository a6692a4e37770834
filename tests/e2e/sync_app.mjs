// The app's side of team sync, shared by the sync and review end-to-end tests: the sync line, the
// connect form, a device that pulled a batch, pulls, and the CLI as the tests call it.
import path from 'node:path';
import {
  byId, count, text, until, waitCount, waitNotice, waitImage, dismissNotice, selectTool, brushStroke, blur, overlayPixel,
  ROOT,
} from './harness.mjs';
import { runJson } from '../sync/servers.mjs';

export const CLI = path.join(ROOT, 'target/debug/lamina');
export const DEV = path.resolve(ROOT, '../shared/data/nuinsseg-dev');
export const IMAGES = 4; // images per published batch

export const flags = (c) =>
  c.kind === 's3'
    ? ['--endpoint', c.endpoint, '--bucket', c.bucket, '--region', c.region, '--access-key', c.accessKey, '--secret-key', c.secretKey]
    : ['--endpoint', c.endpoint, '--token', c.token];

// No credentials from the environment reach the CLI: every call says what it sends.
const CLI_ENV = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !/^(AWS_|LAMINA_SYNC_TOKEN)/.test(k)),
);

/** `lamina --json ...args`, asynchronous (the fault proxy runs in this process); resolves to its report. */
export async function lamina(args) {
  const { code, stdout, stderr } = await runJson(CLI, args, { env: CLI_ENV });
  if (code !== 0) throw new Error(`lamina ${args.join(' ')} exited ${code}:\n${stdout}\n${stderr}`);
  return JSON.parse(stdout);
}

/** The sync line: state, pending count, conflict count and the text the user reads. */
export const syncStatus = (page) =>
  page.evaluate(() => {
    const el = document.querySelector('#sync-status');
    return el && { state: el.dataset.state, pending: Number(el.dataset.pending), conflicts: Number(el.dataset.conflicts), text: el.textContent.trim() };
  });

export const waitSync = (page, ok, what, timeout = 20_000) => until(() => syncStatus(page), (s) => s && ok(s), what, timeout);
export const waitSynced = (page, timeout) => waitSync(page, (s) => s.state === 'synced' && s.pending === 0, 'sync status "synced"', timeout);

/** Records every sync state the status line shows from now on; resolves to a reader of that list. */
export async function recordStates(page) {
  await page.evaluate(() => {
    const el = document.querySelector('#sync-status');
    window.__syncObserver?.disconnect();
    const states = (window.__syncStates = [el.dataset.state]);
    window.__syncObserver = new MutationObserver(() => {
      if (states.at(-1) !== el.dataset.state) states.push(el.dataset.state);
    });
    window.__syncObserver.observe(el, { attributes: true, attributeFilter: ['data-state'] });
  });
  return () => page.evaluate(() => window.__syncStates);
}

/** Presses "Pull labels" and waits until that pull is over; resolves to the sync line then. */
export async function pullNow(page) {
  const states = await recordStates(page);
  await page.click('#sync-pull');
  await until(states, (s) => s.includes('syncing') && s.at(-1) !== 'syncing', 'the pull to finish');
  return syncStatus(page);
}

/** Opens the "Endpoint and batch" form if it is folded (it is once a project is linked). */
export async function openConnectForm(page) {
  const open = await page.evaluate(() => document.querySelector('details.sync-connect').open);
  if (!open) await page.locator('details.sync-connect summary').click();
}

/** Fills the connect form as a user would and presses "Connect and pull batch". */
export async function connect(page, conn, batch, labeler, { remember = false } = {}) {
  await openConnectForm(page);
  await page.selectOption('#sync-kind', conn.kind);
  await page.fill('#sync-endpoint', conn.endpoint);
  if (conn.kind === 's3') {
    await page.fill('#sync-bucket', conn.bucket);
    await page.fill('#sync-region', conn.region);
    await page.fill('#sync-access-key', conn.accessKey);
    await page.fill('#sync-secret-key', conn.secretKey);
  } else {
    await page.fill('#sync-token', conn.token);
  }
  await page.setChecked('#sync-remember', remember);
  await page.fill('#sync-batch', batch);
  await page.fill('#sync-labeler', labeler);
  await page.click('#sync-connect');
}

/** A fresh device that pulled `batch`: its images listed, the first one fetched and shown, synced. */
export async function device(env, t, conn, batch, labeler, { images = IMAGES, ...options } = {}) {
  const { page, context } = await env.open(t);
  await dismissNotice(page);
  await connect(page, conn, batch, labeler, options);
  await waitNotice(page, 'info', new RegExp(`^Batch ${batch}: ${images} images`), 30_000);
  await waitCount(page, 'image-count', images);
  await waitImage(page);
  await waitSynced(page);
  return { page, context };
}

/** Opens image `i` of the list (a click on its row) and waits until it shows. */
export async function openImage(page, i) {
  const n = await count(page, 'image-count');
  await byId(page, 'image-row').nth(i).click();
  await until(() => text(page, 'position'), (p) => p === `${i + 1} / ${n}`, `image ${i + 1} open`);
  await waitImage(page);
}

/** A brush stroke as a new label (nothing selected, else the stroke would paint into the selection). */
export async function brush(page, stroke, n) {
  await deselect(page);
  await selectTool(page, 'brush');
  await brushStroke(page, stroke);
  await waitCount(page, 'instance-count', n);
}

export async function deselect(page) {
  await blur(page);
  await page.keyboard.press('Escape');
}

export const painted = async (page, p) => (await overlayPixel(page, p))[3] > 0;

/** Reloads with the "leave site?" question accepted (it is asked while changes are pending). */
export async function reload(page) {
  const accept = (d) => d.accept().catch(() => {});
  page.on('dialog', accept);
  await page.reload();
  page.off('dialog', accept);
}

