// `lamina sync publish|push|pull` against real servers: Garage (S3) and nginx (WebDAV-style), each
// also behind the fault proxy. What is on the server is checked with independent clients (boto3
// through s3check.py for S3; plain HTTP and the served folder on disk for nginx), never with our own
// sync code. Run: node --test tests/sync/cli.test.mjs (LAMINA_CLI picks another binary).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startGarage, startDav, startFaultProxy, s3check, runJson } from './servers.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CLI = process.env.LAMINA_CLI || path.join(ROOT, 'target/debug/lamina');
const DEV = path.resolve(ROOT, '../shared/data/nuinsseg-dev');
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'lamina-sync-cli-'));
const TOKEN = 'cli-test-token';
const TILES = 12;

const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');
const md5 = (buf) => createHash('md5').update(buf).digest('hex');
const readJson = (file) => JSON.parse(fs.readFileSync(file, 'utf8'));
const clone = (x) => structuredClone(x);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(cond, { timeoutMs = 20000, what = String(cond) } = {}) {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

// ---- the CLI ---------------------------------------------------------------------------------

// No credentials from the environment reach the CLI: every test says what it sends.
const CLI_ENV = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !/^(AWS_(ACCESS_KEY_ID|SECRET_ACCESS_KEY|SESSION_TOKEN)|LAMINA_SYNC_TOKEN)$/.test(k)),
);

/**
 * Runs `lamina --json ...args`; resolves to { code, json, stderr }. Asynchronous, so the fault proxy
 * (which runs in this process) keeps answering while the CLI waits for it.
 */
async function lamina(args) {
  const { code, stdout, stderr } = await runJson(CLI, args, { env: CLI_ENV });
  let json;
  try {
    json = JSON.parse(stdout);
  } catch {
    throw new Error(`lamina ${args.join(' ')}: stdout is not one JSON object (exit ${code}):\n${stdout}\n${stderr}`);
  }
  return { code, json, stderr };
}

/** Runs the CLI and expects success; resolves to its JSON report. */
async function ok(args) {
  const r = await lamina(args);
  assert.equal(r.code, 0, `lamina ${args.join(' ')} failed:\n${r.stderr}`);
  assert.equal(r.json.ok, true);
  return r.json;
}

/** Runs the CLI and expects exit code 1; resolves to the error message (checked to be on stderr too). */
async function fails(args) {
  const r = await lamina(args);
  assert.equal(r.code, 1, `lamina ${args.join(' ')} should fail: ${JSON.stringify(r.json)}`);
  assert.equal(r.json.ok, false);
  assert.ok(r.stderr.includes(r.json.error), `stderr repeats the error:\n${r.stderr}`);
  return r.json.error;
}

// ---- bundles ---------------------------------------------------------------------------------

let base; // import-masks of the first TILES dev tiles (asset ids = tile ids = batch ids)
const tileIds = () => base.assets.map((a) => a.id);

/** A bundle file with the base's labels for the given tiles; edit(instance) may change them. */
function bundleFile(name, ids, edit = {}) {
  const b = clone(base);
  b.assets = b.assets.filter((a) => ids.includes(a.id));
  b.instances = b.instances.filter((i) => ids.includes(i.asset_id));
  for (const inst of b.instances) edit[inst.asset_id]?.(inst);
  const file = path.join(TMP, `${name}.json`);
  fs.writeFileSync(file, JSON.stringify(b));
  return file;
}

const reclass = (cls) => (inst) => {
  inst.class_id = cls;
};

/** The parts of a label that must survive the round trip, in a stable order. */
const labelsOf = (b) =>
  b.instances
    .map(({ id, asset_id, class_id, mask, bbox, area }) => ({ id, asset_id, class_id, mask, bbox, area }))
    .sort((x, y) => x.id.localeCompare(y.id));

// ---- servers and the two kinds of endpoint ---------------------------------------------------

let garage, dav;
const proxies = [];
const E = {}; // 's3' and 'dav': how the CLI reaches each, and an independent way to look inside

let seq = 0;
const batchId = (kind, what) => `${kind}-${what}-${++seq}`;

function walk(dir, rel = '') {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? walk(path.join(dir, d.name), `${rel}${d.name}/`) : [`${rel}${d.name}`],
  );
}

before(async () => {
  const [g, d] = await Promise.all([
    startGarage({ dir: path.join(TMP, 'garage') }),
    startDav({ dir: path.join(TMP, 'dav'), token: TOKEN }),
  ]);
  garage = g;
  dav = d;
  const [gp, dp] = await Promise.all([startFaultProxy({ target: garage.endpoint }), startFaultProxy({ target: dav.url })]);
  proxies.push(gp, dp);

  E.s3 = {
    server: garage,
    proxy: gp,
    /** Endpoint flags; url: garage itself or the proxy in front of it. */
    flags: ({ url = garage.endpoint, secretKey = garage.secretKey } = {}) => [
      '--endpoint', url, '--bucket', garage.bucket, '--region', garage.region,
      '--access-key', garage.accessKey, '--secret-key', secretKey,
    ],
    /** Every key under prefix, with its size and ETag (boto3). */
    list: async (prefix) => JSON.parse(await s3check(garage, ['list', prefix])),
    get: async (key) => {
      try {
        return await s3check(garage, ['get', key]);
      } catch (e) {
        if (e.status === 2) return null; // no such key
        throw e;
      }
    },
    put: (key, body) => s3check(garage, ['put', key, '-'], { input: body }),
  };
  E.dav = {
    server: dav,
    proxy: dp,
    flags: ({ url = dav.url, token = TOKEN, readOnly = false } = {}) => [
      '--endpoint', url, ...(token ? ['--token', token] : []), ...(readOnly ? ['--read-only'] : []),
    ],
    /** The files under prefix in nginx's served folder, as keys. */
    list: async (prefix) =>
      walk(path.join(dav.root, prefix)).map((rel) => {
        const key = prefix + rel;
        return { key, size: fs.statSync(path.join(dav.root, key)).size };
      }),
    get: async (key) => {
      const r = await fetch(dav.url + key);
      if (r.status === 404) return null;
      assert.equal(r.status, 200, `GET ${key}`);
      return Buffer.from(await r.arrayBuffer());
    },
    put: async (key, body) => {
      const r = await fetch(dav.url + key, { method: 'PUT', body, headers: { Authorization: `Bearer ${TOKEN}` } });
      assert.ok(r.status === 201 || r.status === 204, `PUT ${key}: ${r.status}`);
    },
  };

  const out = path.join(TMP, 'base.json');
  await ok(['import-masks', DEV, '--limit', String(TILES), '--out', out]);
  base = readJson(out);
  assert.equal(base.assets.length, TILES);
});

after(async () => {
  for (const p of proxies) await p.stop();
  await garage?.stop();
  await dav?.stop();
});

/**
 * Publishes the dev tiles as a fresh batch on kind's endpoint, with the classes of the imported bundle
 * (PanNuke's five plus `nucleus`) unless ontology is false; resolves to the batch id.
 */
async function published(kind, what, { n = TILES, ontology = true } = {}) {
  const batch = batchId(kind, what);
  const extra = ontology ? ['--ontology', path.join(TMP, 'base.json')] : [];
  const r = await ok(['sync', 'publish', ...E[kind].flags(), '--batch', batch, DEV, '--limit', String(n), ...extra]);
  assert.equal(r.images, n);
  return batch;
}

const fragmentKeys = async (kind, batch) =>
  (await E[kind].list(`batches/${batch}/labels/`)).map((o) => o.key).sort();
const indexOf = async (kind, batch) => {
  const bytes = await E[kind].get(`batches/${batch}/index.json`);
  return bytes && JSON.parse(bytes).fragments;
};
const FRAGMENT_KEY = (batch, labeler) => new RegExp(`^batches/${batch}/labels/${labeler}/\\d{17}-[0-9a-f]{16}\\.json$`);

// ---- the same tests for both kinds of endpoint -----------------------------------------------

for (const kind of ['s3', 'dav']) {
  test(`${kind}: publish uploads the images and a manifest whose sha256 match the files`, async () => {
    const batch = batchId(kind, 'publish');
    const report = await ok(['sync', 'publish', ...E[kind].flags(), '--batch', batch, DEV, '--limit', String(TILES), '--name', 'Dev tiles']);
    const source = readJson(path.join(DEV, 'manifest.json')).items.slice(0, TILES);
    assert.equal(report.images, TILES);
    assert.equal(report.requests, TILES + 1, 'one PUT per image and one for the manifest');

    const manifest = JSON.parse(await E[kind].get(`batches/${batch}/manifest.json`));
    assert.equal(manifest.name, 'Dev tiles');
    assert.equal(manifest.ontology, undefined, 'no --ontology: the app and pull use PanNuke\'s classes');
    assert.deepEqual(manifest.assets.map((a) => a.id), source.map((i) => i.id));
    const objects = new Map((await E[kind].list(`batches/${batch}/images/`)).map((o) => [o.key, o]));
    assert.equal(objects.size, TILES);
    for (const [i, asset] of manifest.assets.entries()) {
      const file = fs.readFileSync(path.join(DEV, source[i].image));
      assert.equal(asset.url, `images/${path.basename(source[i].image)}`);
      assert.equal(asset.name, path.basename(source[i].image));
      assert.equal(asset.sha256, sha256(file), asset.id);
      assert.equal(asset.organ, source[i].organ);
      const stored = objects.get(`batches/${batch}/${asset.url}`);
      assert.equal(stored.size, file.length, asset.id);
      if (kind === 's3') assert.equal(stored.etag, `"${md5(file)}"`, `${asset.id}: Garage holds the same bytes`);
    }
    // One image read back in full through the independent client.
    const first = await E[kind].get(`batches/${batch}/${manifest.assets[0].url}`);
    assert.equal(sha256(first), manifest.assets[0].sha256);
  });

  test(`${kind}: push then pull gives back the same labels; the server holds one fragment, listed in the index`, async () => {
    const batch = await published(kind, 'roundtrip');
    const ids = tileIds().slice(0, 8); // 4 published tiles stay unlabeled
    const file = bundleFile(`${batch}-alice`, ids);
    const pushed = await ok(['sync', 'push', ...E[kind].flags(), '--batch', batch, '--labeler', 'alice', file]);
    assert.match(pushed.key, FRAGMENT_KEY(batch, 'alice'));
    assert.equal(pushed.images, 8);
    assert.equal(pushed.wrote, true);

    assert.deepEqual(await fragmentKeys(kind, batch), [pushed.key], 'exactly one fragment, alice\'s');
    assert.deepEqual(await indexOf(kind, batch), [pushed.key]);
    const fragment = JSON.parse(await E[kind].get(pushed.key));
    assert.equal(fragment.labeler, 'alice');
    assert.equal(fragment.batch, batch);
    assert.deepEqual(fragment.assets.map((a) => a.asset_id).sort(), [...ids].sort());

    const out = path.join(TMP, `${batch}-pulled.json`);
    const pulled = await ok(['sync', 'pull', ...E[kind].flags(), '--batch', batch, '--out', out]);
    assert.equal(pulled.images, TILES);
    assert.equal(pulled.labeled, 8);
    assert.equal(pulled.fragments, 1);
    assert.deepEqual(pulled.conflicts, []);
    assert.deepEqual(pulled.problems, []);
    assert.deepEqual(pulled.warnings, []);
    const got = readJson(out);
    const sent = readJson(file);
    assert.deepEqual(got.ontology, sent.ontology, 'the batch\'s classes, as published with --ontology');
    assert.deepEqual(got.assets.map((a) => a.id).sort(), [...ids].sort());
    for (const a of got.assets) {
      const s = sent.assets.find((x) => x.id === a.id);
      assert.deepEqual([a.sha256, a.width, a.height, a.status], [s.sha256, s.width, s.height, s.status], a.id);
    }
    assert.deepEqual(labelsOf(got), labelsOf(sent));
    assert.equal((await ok(['bundle', 'validate', out])).instances, sent.instances.length);
  });

  test(`${kind}: pushing the same bundle again writes nothing; a labeler's edit replaces her own version`, async () => {
    const batch = await published(kind, 'again');
    const file = bundleFile(`${batch}-alice`, tileIds());
    const first = await ok(['sync', 'push', ...E[kind].flags(), '--batch', batch, '--labeler', 'alice', file]);
    const fragment = await E[kind].get(first.key);
    const second = await ok(['sync', 'push', ...E[kind].flags(), '--batch', batch, '--labeler', 'alice', file]);
    assert.equal(second.key, first.key, 'the same content is at the same key');
    assert.equal(second.already_there, true);
    assert.equal(second.wrote, false);
    assert.equal(second.unchanged, TILES);
    assert.deepEqual(await fragmentKeys(kind, batch), [first.key], 'every label on the server exactly once');
    assert.ok((await E[kind].get(first.key)).equals(fragment), 'and that object is unchanged');

    // Alice fixes one tile and pushes the whole bundle again: only that tile travels, and her new
    // version replaces her old one (no conflict with herself).
    const [fixed] = tileIds();
    const edited = bundleFile(`${batch}-alice-fixed`, tileIds(), { [fixed]: reclass('dead') });
    const third = await ok(['sync', 'push', ...E[kind].flags(), '--batch', batch, '--labeler', 'alice', edited]);
    assert.equal(third.images, 1);
    assert.equal(third.unchanged, TILES - 1);
    assert.deepEqual(await fragmentKeys(kind, batch), [first.key, third.key].sort());
    assert.deepEqual(await indexOf(kind, batch), [first.key, third.key].sort());
    const out = path.join(TMP, `${batch}-pulled.json`);
    const pulled = await ok(['sync', 'pull', ...E[kind].flags(), '--batch', batch, '--out', out]);
    assert.deepEqual(pulled.conflicts, []);
    assert.deepEqual(labelsOf(readJson(out)), labelsOf(readJson(edited)));

    // Going back to the first version by pushing it again is not possible (revisions are the
    // content, and that one is replaced): nothing is written, and the push says why.
    const back = await ok(['sync', 'push', ...E[kind].flags(), '--batch', batch, '--labeler', 'alice', file]);
    assert.deepEqual([back.wrote, back.unchanged], [false, TILES]);
    assert.match(back.warnings.join('\n'), new RegExp(`1 image\\(s\\) have labels equal to an earlier version that was replaced since.*\`${fixed}\``));
    assert.equal((await fragmentKeys(kind, batch)).length, 2);
  });

  test(`${kind}: two labelers with different labels for an image: pull lists it as a conflict with both`, async () => {
    const batch = await published(kind, 'conflict');
    const ids = tileIds();
    const [, , disputed] = ids;
    // Alice labels tiles 0-5; Bob labels 2-9, with other classes on tile 2 and the same labels elsewhere.
    const alice = bundleFile(`${batch}-alice`, ids.slice(0, 6));
    const bob = bundleFile(`${batch}-bob`, ids.slice(2, 10), { [disputed]: reclass('neoplastic') });
    await ok(['sync', 'push', ...E[kind].flags(), '--batch', batch, '--labeler', 'alice', alice]);
    const b = await ok(['sync', 'push', ...E[kind].flags(), '--batch', batch, '--labeler', 'bob', bob]);
    assert.equal(b.unchanged, 3, 'tiles 3-5: the server already had these very labels');
    assert.equal(b.images, 5);
    const keys = await fragmentKeys(kind, batch);
    assert.equal(keys.length, 2);
    assert.match(keys[0], FRAGMENT_KEY(batch, 'alice'));
    assert.match(keys[1], FRAGMENT_KEY(batch, 'bob'));

    const out = path.join(TMP, `${batch}-pulled.json`);
    const pulled = await ok(['sync', 'pull', ...E[kind].flags(), '--batch', batch, '--out', out]);
    assert.equal(pulled.labeled, 10);
    assert.deepEqual(pulled.conflicts.map((c) => c.image), [disputed], 'only the image both labeled differently');
    const versions = pulled.conflicts[0].versions;
    assert.deepEqual(versions.map((v) => v.labeler).sort(), ['alice', 'bob']);
    const n = base.instances.filter((i) => i.asset_id === disputed).length;
    assert.deepEqual(versions.map((v) => v.instances), [n, n]);
    assert.notEqual(versions[0].revision, versions[1].revision);
    assert.equal(readJson(out).assets.length, 10);

    // Alice takes Bob's labels for the disputed tile: her version is replaced, one version is left.
    const agreed = bundleFile(`${batch}-alice-agrees`, ids.slice(0, 6), { [disputed]: reclass('neoplastic') });
    const a2 = await ok(['sync', 'push', ...E[kind].flags(), '--batch', batch, '--labeler', 'alice', agreed]);
    assert.deepEqual([a2.images, a2.unchanged], [1, 5]);
    const resolved = await ok(['sync', 'pull', ...E[kind].flags(), '--batch', batch, '--out', out]);
    assert.deepEqual(resolved.conflicts, []);
    const classes = readJson(out).instances.filter((i) => i.asset_id === disputed).map((i) => i.class_id);
    assert.ok(classes.length && classes.every((c) => c === 'neoplastic'), classes.join());
  });

  test(`${kind}: push checks the batch: unpublished is refused, other images are left out, unknown classes warned`, async () => {
    const file = bundleFile(`${kind}-check-alice`, tileIds());
    const typo = batchId(kind, 'never-published');
    const msg = await fails(['sync', 'push', ...E[kind].flags(), '--batch', typo, '--labeler', 'alice', file]);
    assert.match(msg, new RegExp(`batch \`${typo}\` has no manifest`));
    assert.deepEqual(await fragmentKeys(kind, typo), []);

    // A batch of the first 4 tiles, published without an ontology (so PanNuke's classes, no `nucleus`).
    const batch = await published(kind, 'check', { n: 4, ontology: false });
    const pushed = await ok(['sync', 'push', ...E[kind].flags(), '--batch', batch, '--labeler', 'alice', file]);
    assert.equal(pushed.images, 4);
    assert.deepEqual(pushed.not_in_batch, tileIds().slice(4));
    const nuclei = base.instances.filter((i) => tileIds().slice(0, 4).includes(i.asset_id)).length;
    assert.deepEqual(pushed.unknown_classes, { nucleus: nuclei });
    assert.equal(pushed.warnings.length, 2);
    assert.deepEqual(JSON.parse(await E[kind].get(pushed.key)).assets.map((a) => a.asset_id).sort(), tileIds().slice(0, 4).sort());

    // Pull still writes a valid bundle: the class joins the ontology, with a warning.
    const out = path.join(TMP, `${batch}-pulled.json`);
    const pulled = await ok(['sync', 'pull', ...E[kind].flags(), '--batch', batch, '--out', out]);
    assert.equal(pulled.labeled, 4);
    assert.match(pulled.warnings.join('\n'), /class `nucleus` \(\d+ labels\) is not in the batch's ontology/);
    assert.deepEqual(readJson(out).ontology.classes.map((c) => c.id), ['neoplastic', 'inflammatory', 'connective', 'dead', 'epithelial', 'nucleus']);
    assert.equal((await ok(['bundle', 'validate', out])).instances, nuclei);
    assert.match(await fails(['sync', 'push', ...E[kind].flags(), '--batch', batch, '--labeler', 'alice', bundleFile(`${kind}-check-other`, tileIds().slice(6))]),
      new RegExp(`none of the 6 images of .* is in batch \`${batch}\``));
  });

  test(`${kind}: two 503s on PUT are retried; the push succeeds and the server holds one fragment`, async () => {
    const batch = await published(kind, 'retry');
    const { proxy } = E[kind];
    proxy.resetCounts();
    proxy.failNext(2, 503, 'PUT');
    const file = bundleFile(`${batch}-alice`, tileIds());
    const r = await ok(['sync', 'push', ...E[kind].flags({ url: proxy.url }), '--batch', batch, '--labeler', 'alice', file]);
    const puts = proxy.requests.filter((q) => q.method === 'PUT');
    assert.deepEqual(puts.map((q) => q.status), [503, 503, kind === 's3' ? 200 : 201, puts.at(-1).status]);
    assert.ok(puts.slice(0, 3).every((q) => q.url.split('?')[0].endsWith(r.key)), 'the fragment PUT was repeated');
    assert.deepEqual(await fragmentKeys(kind, batch), [r.key]);
    assert.deepEqual(await indexOf(kind, batch), [r.key]);
  });

  test(`${kind}: a server that keeps failing: exit 1, the message names HTTP 500 and what to do; nothing half-written`, async () => {
    const batch = await published(kind, 'error500');
    const { proxy } = E[kind];
    const file = bundleFile(`${batch}-alice`, tileIds());
    const via = ['sync', 'push', ...E[kind].flags({ url: proxy.url }), '--batch', batch, '--labeler', 'alice', '--attempts', '2', file];
    try {
      proxy.setMode('error500');
      const msg = await fails(via);
      assert.match(msg, /the server failed \(HTTP 500 on GET batches\/.*\/manifest\.json\)/);
      assert.match(msg, /on all 2 attempt\(s\), retried with backoff/);
      assert.match(msg, /run the same command again/);

      // Reads work but every write fails: the fragment PUT is refused twice.
      proxy.setMode('pass');
      proxy.failNext(2, 500, 'PUT');
      assert.match(await fails(via), /HTTP 500 on PUT batches\/.*\/labels\/alice\//);
    } finally {
      proxy.setMode('pass');
    }
    assert.deepEqual(await fragmentKeys(kind, batch), []);
    assert.equal(await indexOf(kind, batch), null);
    const pulled = await ok(['sync', 'pull', ...E[kind].flags(), '--batch', batch, '--out', path.join(TMP, `${batch}-pulled.json`)]);
    assert.deepEqual([pulled.labeled, pulled.fragments, pulled.problems], [0, 0, []]);
    // Once the server is fine, the same command works.
    const r = await ok(via);
    assert.deepEqual(await fragmentKeys(kind, batch), [r.key]);
  });

  test(`${kind}: a server that cannot be reached is a clear error`, async () => {
    const batch = await published(kind, 'down');
    const { proxy } = E[kind];
    const file = bundleFile(`${batch}-alice`, tileIds());
    try {
      proxy.setMode('down');
      const msg = await fails(['sync', 'push', ...E[kind].flags({ url: proxy.url }), '--batch', batch, '--labeler', 'alice', '--attempts', '1', file]);
      assert.match(msg, /the server could not be reached/);
      assert.match(msg, /run the same command again/);
      const pullMsg = await fails(['sync', 'pull', ...E[kind].flags({ url: proxy.url }), '--batch', batch, '--attempts', '1', '--out', path.join(TMP, 'never.json')]);
      assert.match(pullMsg, /the server could not be reached \(GET batches\/.*\/manifest\.json/);
    } finally {
      proxy.setMode('pass');
    }
    assert.ok(!fs.existsSync(path.join(TMP, 'never.json')));
    // Nothing listens on the port at all (connection refused).
    const closed = kind === 's3' ? { url: 'http://127.0.0.1:9' } : { url: 'http://127.0.0.1:9/' };
    assert.match(await fails(['sync', 'push', ...E[kind].flags(closed), '--batch', batch, '--labeler', 'alice', '--attempts', '1', file]), /could not be reached/);
  });

  test(`${kind}: a server that hangs times out and is retried; one that answers without end is refused, not read`, async () => {
    const batch = await published(kind, 'hang');
    const { proxy } = E[kind];
    const out = path.join(TMP, `hang-${kind}.json`);
    const pull = ['sync', 'pull', ...E[kind].flags({ url: proxy.url }), '--batch', batch, '--out', out];
    try {
      proxy.setMode('hang');
      proxy.resetCounts();
      const started = Date.now();
      const msg = await fails([...pull, '--attempts', '2', '--timeout', '2']);
      assert.match(msg, /the server could not be reached \(GET batches\/.*manifest\.json.*timeout/i);
      assert.ok(Date.now() - started < 15_000, 'gave up after its attempts, not hanging');
      assert.equal(proxy.counts.GET, 2, 'each attempt timed out once');
      // 200 MB declared, or streamed without a length: refused at the limit, no retry.
      for (const declareLength of [true, false]) {
        proxy.setMode('huge', { declareLength });
        proxy.resetCounts();
        const big = await fails([...pull, '--attempts', '3']);
        assert.match(big, /answer to GET batches\/.*manifest\.json is over 32 MB/);
        assert.equal(proxy.counts.GET, 1, 'not retried: it would only come back as big');
      }
    } finally {
      proxy.setMode('pass');
    }
    assert.ok(!fs.existsSync(out));
  });

  test(`${kind}: the server stops in the middle of a push; once it is back the push goes through`, async () => {
    const batch = await published(kind, 'restart');
    const { proxy, server } = E[kind];
    const file = bundleFile(`${batch}-alice`, tileIds());
    proxy.resetCounts();
    // Answers are held 300 ms, so the server is stopped while the push is in flight; the proxy then
    // answers 502 (like a load balancer) and the CLI backs off 1, 2, 4, 8 s.
    proxy.setMode('slow', { delayMs: 300 });
    try {
      const pushing = lamina(['sync', 'push', ...E[kind].flags({ url: proxy.url }), '--batch', batch, '--labeler', 'alice', '--attempts', '6', file]);
      await until(() => proxy.counts.total > 0);
      await server.stop();
      await until(() => proxy.requests.some((q) => q.status === 502));
      await server.restart();
      const r = await pushing;
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(await fragmentKeys(kind, batch), [r.json.key]);
      assert.deepEqual(await indexOf(kind, batch), [r.json.key]);
    } finally {
      proxy.setMode('pass');
    }
    // And without retries, a stopped server is reported as such.
    await server.stop();
    try {
      const direct = await fails(['sync', 'pull', ...E[kind].flags(), '--batch', batch, '--attempts', '1', '--out', path.join(TMP, 'never.json')]);
      assert.match(direct, /could not be reached/);
    } finally {
      await server.restart();
    }
    const again = await ok(['sync', 'push', ...E[kind].flags(), '--batch', batch, '--labeler', 'alice', file]);
    assert.equal(again.already_there, true);
  });

  test(`${kind}: a slow server (every answer held 250 ms) still works`, async () => {
    const batch = await published(kind, 'slow');
    const { proxy } = E[kind];
    const file = bundleFile(`${batch}-alice`, tileIds());
    proxy.setMode('slow', { delayMs: 250 });
    try {
      const t0 = Date.now();
      const pushed = await ok(['sync', 'push', ...E[kind].flags({ url: proxy.url }), '--batch', batch, '--labeler', 'alice', file]);
      const pulled = await ok(['sync', 'pull', ...E[kind].flags({ url: proxy.url }), '--batch', batch, '--out', path.join(TMP, `${batch}-pulled.json`)]);
      assert.equal(pulled.labeled, TILES);
      assert.ok(Date.now() - t0 >= 250 * (pulled.requests + 2), 'the answers were held');
      assert.deepEqual(await fragmentKeys(kind, batch), [pushed.key]);
    } finally {
      proxy.setMode('pass');
    }
  });

  test(`${kind}: a malformed manifest is a clear error naming the batch; a missing image is fine for pull`, async () => {
    const bad = batchId(kind, 'garbage');
    await E[kind].put(`batches/${bad}/manifest.json`, Buffer.from('\u0000garbage{{ not a manifest'));
    const msg = await fails(['sync', 'pull', ...E[kind].flags(), '--batch', bad, '--out', path.join(TMP, 'never.json')]);
    assert.match(msg, new RegExp(`manifest of batch \`${bad}\` cannot be read`));
    assert.ok(!fs.existsSync(path.join(TMP, 'never.json')));
    const none = batchId(kind, 'none');
    assert.match(await fails(['sync', 'pull', ...E[kind].flags(), '--batch', none, '--out', path.join(TMP, 'never.json')]),
      new RegExp(`batch \`${none}\` has no manifest`));

    // The CLI never fetches images (the app does, lazily): a manifest naming one that is not there pulls.
    const batch = await published(kind, 'missing-image');
    const manifest = JSON.parse(await E[kind].get(`batches/${batch}/manifest.json`));
    manifest.assets[0].url = 'images/not-uploaded.png';
    await E[kind].put(`batches/${batch}/manifest.json`, Buffer.from(JSON.stringify(manifest)));
    await ok(['sync', 'push', ...E[kind].flags(), '--batch', batch, '--labeler', 'alice', bundleFile(`${batch}-alice`, tileIds())]);
    const pulled = await ok(['sync', 'pull', ...E[kind].flags(), '--batch', batch, '--out', path.join(TMP, `${batch}-pulled.json`)]);
    assert.deepEqual([pulled.labeled, pulled.problems, pulled.manifest_problems], [TILES, [], []]);
  });

  test(`${kind}: a tampered fragment (class edited, revision kept) is skipped and listed; good labels come through`, async () => {
    const batch = await published(kind, 'tampered');
    const file = bundleFile(`${batch}-alice`, tileIds());
    const pushed = await ok(['sync', 'push', ...E[kind].flags(), '--batch', batch, '--labeler', 'alice', file]);
    // Carol uploads a copy of alice's fragment with one class changed, behind the CLI's back.
    const forged = JSON.parse(await E[kind].get(pushed.key));
    forged.labeler = 'carol';
    const victim = forged.assets[1];
    victim.instances[0].class_id = 'dead';
    const forgedKey = `batches/${batch}/labels/carol/${pushed.key.split('/').at(-1)}`;
    await E[kind].put(forgedKey, Buffer.from(JSON.stringify(forged)));
    // And a truncated object where a fragment would be.
    const bytes = await E[kind].get(pushed.key);
    const truncatedKey = `batches/${batch}/labels/dave/20261127000000000-0000000000000000.json`;
    await E[kind].put(truncatedKey, bytes.subarray(0, bytes.length / 2));

    const out = path.join(TMP, `${batch}-pulled.json`);
    const pulled = await ok(['sync', 'pull', ...E[kind].flags(), '--batch', batch, '--out', out]);
    assert.equal(pulled.fragments, 1);
    assert.equal(pulled.problems.length, 2, pulled.problems.join('\n'));
    const [forgedProblem] = pulled.problems.filter((p) => p.includes(forgedKey));
    assert.match(forgedProblem, new RegExp(`labels of image \`${victim.asset_id}\` do not match their revision`));
    assert.match(pulled.problems.find((p) => p.includes(truncatedKey)), /not readable JSON/);
    assert.deepEqual(pulled.conflicts, []);
    assert.deepEqual(labelsOf(readJson(out)), labelsOf(readJson(file)), "alice's labels, untouched");
  });
}

// ---- credentials -----------------------------------------------------------------------------

test('s3: a wrong secret key (like an expired credential) is refused, exit 1, nothing written', async () => {
  const batch = await published('s3', 'secret');
  const flags = E.s3.flags({ secretKey: 'ff'.repeat(32) });
  const msg = await fails(['sync', 'push', ...flags, '--batch', batch, '--labeler', 'alice', bundleFile(`${batch}-alice`, tileIds())]);
  assert.match(msg, /the server refused the credentials \(HTTP 403 on GET batches\/.*\/manifest\.json\)/);
  assert.match(msg, /may have expired/);
  assert.match(await fails(['sync', 'pull', ...flags, '--batch', batch, '--out', path.join(TMP, 'never.json')]), /refused the credentials/);
  assert.match(await fails(['sync', 'publish', ...flags, '--batch', batch, DEV, '--limit', '1']), /refused the credentials \(HTTP 403 on PUT/);
  assert.deepEqual(await fragmentKeys('s3', batch), []);
  // No keys at all: pushing is refused before any request.
  const anonymous = ['--endpoint', garage.endpoint, '--bucket', garage.bucket, '--region', garage.region];
  assert.match(await fails(['sync', 'push', ...anonymous, '--batch', batch, '--labeler', 'alice', bundleFile(`${batch}-anon`, tileIds())]),
    /writing to a bucket needs credentials: give --access-key and --secret-key/);
});

test('dav: a push without the token, or with a wrong one, is refused with 401; reads need none', async () => {
  const batch = await published('dav', 'token');
  const file = bundleFile(`${batch}-alice`, tileIds());
  for (const token of [null, 'wrong']) {
    const msg = await fails(['sync', 'push', ...E.dav.flags({ token }), '--batch', batch, '--labeler', 'alice', file]);
    assert.match(msg, /the server refused the credentials \(HTTP 401 on PUT batches\/.*\/labels\/alice\//);
  }
  assert.deepEqual(await fragmentKeys('dav', batch), []);
  assert.match(await fails(['sync', 'publish', ...E.dav.flags({ token: null }), '--batch', batchId('dav', 'token'), DEV, '--limit', '1']), /HTTP 401/);
  await ok(['sync', 'pull', ...E.dav.flags({ token: null }), '--batch', batch, '--out', path.join(TMP, `${batch}-pulled.json`)]);
});

// ---- a read-only host ------------------------------------------------------------------------

test('dav --read-only: pull reads the fragments from the index (no listing); push is refused', async () => {
  const batch = await published('dav', 'readonly');
  const file = bundleFile(`${batch}-alice`, tileIds());
  const pushed = await ok(['sync', 'push', ...E.dav.flags(), '--batch', batch, '--labeler', 'alice', file]);
  const { proxy } = E.dav;
  proxy.resetCounts();
  const out = path.join(TMP, `${batch}-pulled.json`);
  const pulled = await ok(['sync', 'pull', ...E.dav.flags({ url: proxy.url, token: null, readOnly: true }), '--batch', batch, '--out', out]);
  assert.equal(pulled.fragments, 1);
  assert.deepEqual(labelsOf(readJson(out)), labelsOf(readJson(file)));
  assert.deepEqual(
    proxy.requests.map((q) => `${q.method} ${q.url}`),
    [`GET /batches/${batch}/manifest.json`, `GET /batches/${batch}/index.json`, `GET /${pushed.key}`],
    'only GETs of files a static host serves',
  );

  const edited = bundleFile(`${batch}-alice-2`, tileIds(), { [tileIds()[0]]: reclass('dead') });
  const msg = await fails(['sync', 'push', ...E.dav.flags({ readOnly: true }), '--batch', batch, '--labeler', 'alice', edited]);
  assert.match(msg, /this endpoint is read-only \(GET only\): pull works, push needs a server that accepts PUT/);
  assert.deepEqual(await fragmentKeys('dav', batch), [pushed.key]);
});

// Registered last, so it runs after the servers have stopped (after hooks run in order).
after(() => fs.rmSync(TMP, { recursive: true, force: true }));
