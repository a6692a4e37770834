// Crash-and-fault soak: real headless Chromium labels, submits and syncs a batch on a real Garage (S3)
// behind the fault proxy, and every trial is cut by one random fault: the renderer crashed through CDP
// in the middle of a write, a reload in the middle of a write, a full disk (a real QuotaExceededError),
// the server answering 500, hanging, or gone, or a second tab editing the same project.
//
// After each trial the labels are read back twice, from the browser's IndexedDB and from the bucket with
// `lamina sync pull`, and compared with what the app had shown as saved: not one label lost, none
// duplicated, none where the user deleted one, every review event (submit, approve, reject, issue) kept
// exactly once. A label whose stroke the
// fault cut before the app confirmed it may be there or not (the user never saw it saved), but at most
// once and in both places alike.
//
// Usage: node tests/soak/soak.mjs [--trials 200] [--seed 1] [--report target/soak/report.json]
// Needs what scripts/test sets up (the web build in dist/, target/debug/lamina, Garage).
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  suite, byId, text, until, waitCount, waitImage, dismissNotice, selectTool, brushStroke, clickImage, noPanics, probeWrite, tempDir, OUT,
} from '../e2e/harness.mjs';
import { startGarage, startFaultProxy } from '../sync/servers.mjs';
import { DEV, IMAGES, flags, lamina, syncStatus, connect, openImage, deselect, reload } from '../e2e/sync_app.mjs';

const { values: args } = parseArgs({
  options: {
    trials: { type: 'string', default: '200' },
    seed: { type: 'string', default: '1' },
    report: { type: 'string', default: path.join(OUT, '../soak/report.json') },
  },
});
const TRIALS = Number(args.trials);
const SEED = Number(args.seed);
// The site's storage quota outside full-disk trials, and the write that makes IndexedDB check it again.
const QUOTA = 50e6;
const PROBE = 60e6;
const FAULTS = ['crash', 'reload', 'quota', 'error500', 'hang', 'offline', 'tabs'];

// A 5 x 5 grid of cells on each 256 px tile: one label per cell, drawn as a short stroke through its
// centre, so a label is told apart by where it is (ids are the app's).
const GRID = 5;
const CELL = 44;
const ORIGIN = 18;
const centre = (cell) => [ORIGIN + CELL * (cell % GRID) + CELL / 2, ORIGIN + CELL * Math.floor(cell / GRID) + CELL / 2];
const cellOf = ([x, y, w, h]) => {
  const [cx, cy] = [x + w / 2, y + h / 2];
  const [col, row] = [Math.floor((cx - ORIGIN) / CELL), Math.floor((cy - ORIGIN) / CELL)];
  return col >= 0 && col < GRID && row >= 0 && row < GRID ? row * GRID + col : -1;
};

/** mulberry32: a small seeded generator, so a failing trial replays with the same seed. */
function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n) => Math.floor(next() * n), pick: (list) => list[Math.floor(next() * list.length)] };
}

const env = suite();
const TMP = tempDir('lamina-soak-');
const random = rng(SEED);
const log = (...m) => console.log(`[soak ${new Date().toISOString().slice(11, 19)}]`, ...m);

// ---- what the user was shown ---------------------------------------------------------------------

/** Per image (by name): cells holding a label the app showed as saved, cells whose label's write a fault
 * cut (there or not), and the review events (by kind) the app confirmed. */
const KINDS = ['submit', 'approve', 'reject', 'issue'];
const NO_EVENTS = Object.fromEntries(KINDS.map((k) => [k, 0]));
const shown = new Map();
const stateOf = (name) => {
  if (!shown.has(name)) shown.set(name, { cells: new Set(), unsure: new Set(), events: { ...NO_EVENTS } });
  return shown.get(name);
};

// ---- the browser side ----------------------------------------------------------------------------

let garage, proxy, batch, context, page, cdp, names;
const direct = () => ({ kind: 's3', endpoint: garage.endpoint, bucket: garage.bucket, region: garage.region, accessKey: garage.accessKey, secretKey: garage.secretKey });
const viaProxy = () => ({ ...direct(), endpoint: proxy.url });

/** Listens to a page as the e2e harness does: its errors (a panic fails the trial) and its dialogs. */
function watch(p) {
  p.errors = [];
  p.on('pageerror', (e) => p.errors.push(`pageerror: ${e.message}`));
  p.on('console', (m) => m.type() === 'error' && p.errors.push(`console: ${m.text()}`));
  p.on('dialog', (d) => d.accept().catch(() => {}));
  return p;
}

async function attach(p) {
  page = watch(p);
  cdp = await context.newCDPSession(page);
}

/** The app open on the batch (after a crash or reload it reopens by itself): 4 images, one shown. */
async function ready(p = page) {
  await until(() => text(p, 'image-count'), (n) => n === String(IMAGES), 'the batch in the app', 30_000);
  await waitImage(p);
}

const currentImage = async (p = page) => {
  const position = await text(p, 'position');
  return Number(position.split(' / ')[0]) - 1;
};

/** Opens image i of the list and checks it is the image the soak means (names are what it checks by). */
async function goTo(i, p = page) {
  if ((await currentImage(p)) !== i) await openImage(p, i);
  const open = await p.locator('[data-testid=image-row].current .name').textContent();
  if (open !== names[i]) {
    const rows = await byId(p, 'image-row').locator('.name').allTextContents();
    const tabs = await p.locator('[data-testid^=stage-]').evaluateAll((els) => els.map((e) => `${e.dataset.testid}:${e.className}`));
    throw new Error(`row ${i} is ${open}, not ${names[i]} (position ${await text(p, 'position')}, rows ${rows}, tabs ${tabs})`);
  }
}

/** A new label in a free cell of image i; resolves to its cell once the app shows it (stored first, then
 * shown), to null when the app refused it, or, with `confirm` false, as soon as the stroke is drawn. */
async function addLabel(i, { confirm = true, p = page } = {}) {
  await goTo(i, p);
  const s = stateOf(names[i]);
  const free = [...Array(GRID * GRID).keys()].filter((c) => !s.cells.has(c) && !s.unsure.has(c));
  if (free.length === 0) return 'no free cell';
  const cell = random.pick(free);
  const [x, y] = centre(cell);
  const before = Number(await text(p, 'instance-count'));
  await deselect(p);
  await selectTool(p, 'brush');
  await brushStroke(p, [[x - 10, y], [x + 10, y]]);
  if (!confirm) {
    s.unsure.add(cell);
    return cell;
  }
  // The label shows once stored; a refused write (a full disk) shows an error instead, and no label.
  const [after] = await until(
    () => Promise.all([text(p, 'instance-count').then(Number), text(p, 'error')]),
    ([n, error]) => n !== before || /storage for this site is full/.test(error || ''),
    'the label shown, or the full-disk error',
  );
  if (after === before + 1) s.cells.add(cell);
  else if (after !== before) throw new Error(`one stroke changed the label count from ${before} to ${after}`);
  return after === before + 1 ? cell : null;
}

/** Deletes a label the app showed as saved on image i (select it, press Delete). */
async function deleteLabel(i) {
  const s = stateOf(names[i]);
  if (s.cells.size === 0) return addLabel(i);
  await goTo(i);
  const cell = random.pick([...s.cells]);
  const before = Number(await text(page, 'instance-count'));
  await deselect(page);
  await selectTool(page, 'select');
  await clickImage(page, centre(cell));
  await until(() => text(page, 'selection'), (t) => Boolean(t), 'the label selected');
  await page.keyboard.press('Delete');
  await waitCount(page, 'instance-count', before - 1);
  s.cells.delete(cell);
  return cell;
}

/** Submits image i for review when it is to label or in rework (the app refuses a submit of an image in
 * review or done, with a notice); counts the submit once the stage shows it. */
async function submit(i) {
  await goTo(i);
  if (!['To label', 'Rework'].includes(await text(page, 'stage'))) return false;
  await byId(page, 'submit').click();
  await until(() => text(page, 'stage'), (s) => /review/i.test(s || ''), 'the image in review');
  stateOf(names[i]).events.submit += 1;
  return true;
}

const stageCount = async (key) => Number(await byId(page, `stage-${key}`).locator('.count').textContent());

/** As a reviewer (the project names none, so anyone may): approves image i, or rejects it with one issue
 * pinned, when it waits for review; counts the decision once the stage tabs show it. */
async function decide(i) {
  await goTo(i);
  if ((await text(page, 'stage')) !== 'In review') return false;
  const approve = random.next() < 0.6;
  const tab = approve ? 'done' : 'rework';
  const before = await stageCount(tab);
  if (!approve) {
    const pins = await byId(page, 'draft-pin').count();
    await byId(page, 'pin-issue').click();
    await clickImage(page, centre(random.int(GRID * GRID)));
    await until(() => byId(page, 'draft-pin').count(), (n) => n === pins + 1, 'the issue pinned');
  }
  await byId(page, approve ? 'approve' : 'reject').click();
  await until(() => stageCount(tab), (n) => n === before + 1, `the image counted at ${tab}`);
  // The app then brings up the next image and says so: wait for that, or the next step would race it.
  const verb = approve ? 'approved' : 'rejected';
  await until(() => text(page, 'info'), (t) => (t || '').endsWith(`${names[i]} ${verb}`), 'the next image up');
  await dismissNotice(page);
  const events = stateOf(names[i]).events;
  if (approve) events.approve += 1;
  else {
    events.reject += 1;
    events.issue += 1;
  }
  if (/active/.test((await byId(page, 'pin-issue').getAttribute('class')) || '')) await byId(page, 'pin-issue').click();
  return true;
}

async function operation() {
  const i = random.int(IMAGES);
  const r = random.next();
  // Labels are added until about two thirds of the cells hold one, then deleted as often as added.
  const held = [...shown.values()].reduce((n, x) => n + x.cells.size, 0);
  if (r < 0.55 && (held < 65 || r < 0.2)) return ['add', await addLabel(i)];
  if (r < 0.75) return ['delete', await deleteLabel(i)];
  if (r < 0.88) return ['submit', await submit(i)];
  return ['review', await decide(i)];
}

// ---- faults --------------------------------------------------------------------------------------

const tally = { trials: 0, operations: 0, faults: Object.fromEntries(FAULTS.map((f) => [f, 0])), cut: 0, cutKept: 0, quotaRefused: 0, lost: 0, duplicated: 0, resurrected: 0, reviewEventsWrong: 0 };

async function fault(kind) {
  tally.faults[kind] += 1;
  const i = random.int(IMAGES);
  switch (kind) {
    case 'crash': {
      // The stroke is drawn; the renderer dies before or while its transaction commits.
      await addLabel(i, { confirm: false });
      tally.cut += 1;
      cdp.send('Page.crash').catch(() => {});
      await until(() => page.isClosed() || page.evaluate(() => false).catch(() => true), Boolean, 'the crash', 5_000).catch(() => {});
      await page.close().catch(() => {});
      await attach(await context.newPage());
      // The quota override went with the crashed page's DevTools session: set again before the app opens
      // its database, so a later full-disk trial still takes.
      await cdp.send('Storage.overrideQuotaForOrigin', { origin: env.server.origin, quotaSize: QUOTA });
      await page.goto(env.server.url);
      await ready();
      return;
    }
    case 'reload': {
      await addLabel(i, { confirm: false });
      tally.cut += 1;
      await reload(page);
      await ready();
      return;
    }
    case 'quota': {
      await cdp.send('Storage.overrideQuotaForOrigin', { origin: env.server.origin, quotaSize: 1024 });
      if ((await probeWrite(page, PROBE)) !== 'QuotaExceededError') throw new Error('the quota override did not take');
      if ((await addLabel(i)) === null) tally.quotaRefused += 1;
      await cdp.send('Storage.overrideQuotaForOrigin', { origin: env.server.origin, quotaSize: QUOTA });
      await dismissNotice(page);
      return;
    }
    case 'error500':
    case 'hang':
    case 'offline': {
      proxy.setMode({ error500: 'error500', hang: 'hang', offline: 'down' }[kind]);
      await addLabel(i);
      await page.click('#sync-push').catch(() => {});
      await operation();
      // A hung request is let go the way a restarted server lets it go: its connection drops.
      if (kind === 'hang') proxy.setMode('down');
      proxy.setMode('pass');
      return;
    }
    case 'tabs': {
      const other = watch(await context.newPage());
      await other.goto(env.server.url);
      await ready(other);
      await addLabel(i, { p: other });
      await other.close();
      return;
    }
    default:
      throw new Error(`unknown fault ${kind}`);
  }
}

/** Back to normal: the server answers, the app has pushed everything it holds. */
async function settle() {
  proxy.setMode('pass');
  await dismissNotice(page).catch(() => {});
  await until(
    async () => {
      const s = await syncStatus(page);
      if (s && s.state === 'error') await page.click('#sync-push').catch(() => {});
      return s;
    },
    (s) => s && s.state === 'synced' && s.pending === 0,
    'everything pushed',
    60_000,
  );
}

// ---- reading the labels back ---------------------------------------------------------------------

/** What IndexedDB holds for the batch: per image name, its labels' bboxes and its review events' kinds. */
const stored = () =>
  page.evaluate(async (batch) => {
    const db = await new Promise((resolve, reject) => {
      const r = indexedDB.open('lamina');
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
    const all = (store) => new Promise((resolve, reject) => {
      const r = db.transaction(store).objectStore(store).getAll();
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
    const projects = await all('projects');
    const project = projects.find((p) => p.name === batch);
    const assets = (await all('assets')).filter((a) => a.project_id === project.id);
    const byAsset = new Map(assets.map((a) => [a.asset.id, a.asset.name]));
    const out = {};
    for (const name of byAsset.values()) out[name] = { bboxes: [], events: [] };
    for (const i of await all('instances')) if (byAsset.has(i.asset_id)) out[byAsset.get(i.asset_id)].bboxes.push(i.bbox);
    for (const e of await all('review_events')) if (byAsset.has(e.asset_id)) out[byAsset.get(e.asset_id)].events.push(e.event.kind);
    db.close();
    return out;
  }, batch);

/** What the bucket holds, through `lamina sync pull` (straight to Garage, not through the proxy). */
async function pulled(trial) {
  const out = path.join(TMP, `pull-${trial}.json`);
  const report = await lamina(['sync', 'pull', ...flags(direct()), '--batch', batch, '--out', out]);
  const bundle = JSON.parse(fs.readFileSync(out, 'utf8'));
  const names = new Map(bundle.assets.map((a) => [a.id, a.name]));
  const result = {};
  for (const name of names.values()) result[name] = { bboxes: [], events: [] };
  for (const i of bundle.instances) result[names.get(i.asset_id)].bboxes.push(i.bbox);
  for (const e of bundle.review ?? []) result[names.get(e.asset_id)].events.push(e.kind);
  return { report, result };
}

/** Compares one copy of the labels with what was shown; settles cut writes from the first copy read. */
function compare(where, copy, problems, settleUnsure) {
  for (const [name, s] of shown) {
    const held = copy[name] ?? { bboxes: [], events: [] };
    const counts = new Map();
    for (const b of held.bboxes) counts.set(cellOf(b), (counts.get(cellOf(b)) ?? 0) + 1);
    for (const cell of s.cells) {
      const n = counts.get(cell) ?? 0;
      if (n === 0) { problems.push(`${where}: ${name} lost the label in cell ${cell}`); tally.lost += 1; }
      if (n > 1) { problems.push(`${where}: ${name} has ${n} labels in cell ${cell}`); tally.duplicated += 1; }
    }
    for (const [cell, n] of counts) {
      if (s.cells.has(cell)) continue;
      if (s.unsure.has(cell) && n === 1) continue;
      problems.push(`${where}: ${name} has ${n} label(s) in cell ${cell}, which holds none`);
      tally.resurrected += 1;
    }
    for (const kind of KINDS) {
      const n = held.events.filter((k) => k === kind).length;
      if (n !== s.events[kind]) {
        problems.push(`${where}: ${name} has ${n} review event(s) "${kind}", ${s.events[kind]} were confirmed`);
        tally.reviewEventsWrong += 1;
      }
    }
    if (settleUnsure) {
      for (const cell of s.unsure) {
        if ((counts.get(cell) ?? 0) === 1) {
          s.cells.add(cell);
          tally.cutKept += 1;
        }
      }
      s.unsure.clear();
    }
  }
}

// ---- the run -------------------------------------------------------------------------------------

async function main() {
  const started = Date.now();
  [garage] = await Promise.all([startGarage({ dir: path.join(TMP, 'garage') }), env.setup()]);
  proxy = await startFaultProxy({ target: garage.endpoint });
  batch = `soak-${SEED}-${process.pid}`;
  await lamina(['sync', 'publish', ...flags(direct()), '--batch', batch, DEV, '--limit', String(IMAGES)]);

  // The quota is set before the first page load, below the probe's size, so a later override takes (see
  // tests/e2e/storage.test.mjs); a full-disk trial gives the same quota back, not the default.
  const opened = await env.open(null, {
    beforeGoto: async (c, p) => {
      const session = await c.newCDPSession(p);
      await session.send('Storage.overrideQuotaForOrigin', { origin: env.server.origin, quotaSize: QUOTA });
    },
  });
  context = opened.context;
  await attach(opened.page);
  await dismissNotice(page);
  await connect(page, viaProxy(), batch, 'soak', { remember: true });
  await ready();
  names = await byId(page, 'image-row').locator('.name').allTextContents();
  // Every image fetched once, so a server fault hits sync, not the first view of an image.
  for (let i = IMAGES - 1; i >= 0; i--) await goTo(i);
  await settle();

  const failures = [];
  for (let trial = 1; trial <= TRIALS; trial++) {
    const kind = random.pick(FAULTS);
    const ops = 2 + random.int(3);
    const cutAt = random.int(ops + 1);
    const done = [];
    try {
      for (let k = 0; k <= ops; k++) {
        if (k === cutAt) {
          await fault(kind);
          done.push(kind);
        } else {
          done.push((await operation())[0]);
          tally.operations += 1;
        }
      }
      await settle();
      const problems = [];
      compare('IndexedDB', await stored(), problems, true);
      const { report, result } = await pulled(trial);
      compare('bucket', result, problems, false);
      if (report.conflicts?.length) problems.push(`bucket: ${report.conflicts.length} conflict(s) from one labeler`);
      await noPanics(page).catch((e) => problems.push(e.message));
      tally.trials += 1;
      if (problems.length) {
        failures.push({ trial, kind, steps: done, problems });
        log(`trial ${trial} (${kind}): ${problems.join('; ')}`);
      } else if (trial % 10 === 0 || TRIALS <= 20) {
        log(`trial ${trial}/${TRIALS} ok (${done.join(', ')})`);
      }
    } catch (e) {
      failures.push({ trial, kind, steps: done, problems: [`the trial could not finish: ${e.message}`] });
      log(`trial ${trial} (${kind}) could not finish: ${e.stack}`);
      break;
    }
  }
  const report = {
    command: `node tests/soak/soak.mjs --trials ${TRIALS} --seed ${SEED}`,
    seed: SEED,
    minutes: Number(((Date.now() - started) / 60000).toFixed(1)),
    ...tally,
    labels_now: [...shown.values()].reduce((n, s) => n + s.cells.size, 0),
    failures,
  };
  fs.mkdirSync(path.dirname(args.report), { recursive: true });
  fs.writeFileSync(args.report, JSON.stringify(report, null, 2));
  log(JSON.stringify({ ...report, failures: failures.length }));
  return failures.length === 0 && tally.trials === TRIALS;
}

let ok = false;
try {
  ok = await main();
} finally {
  await env.teardown().catch(() => {});
  await proxy?.stop().catch(() => {});
  await garage?.stop().catch(() => {});
}
process.exit(ok ? 0 : 1);
