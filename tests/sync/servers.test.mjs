// The sync test servers work, checked with independent clients (boto3 through s3check.py, node's
// fetch and http) before any Lamina code talks to them. Run: node --test tests/sync/servers.test.mjs
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { startGarage, startDav, startFaultProxy, s3check, S3CHECK, freePort } from './servers.mjs';

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'lamina-sync-servers-'));

const ORIGIN = 'http://127.0.0.1:8080'; // any origin: the rules under test allow all
// What a browser sends before a signed S3 PUT from the app.
const S3_PREFLIGHT_HEADERS = 'if-none-match,content-type,authorization,x-amz-date,x-amz-content-sha256';

/** A raw HTTP request (node's http, so Origin and friends are sent exactly as given). */
function request(url, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

// ---- nginx -----------------------------------------------------------------------------------

const TOKEN = 'test-token_1.2~3';
let dav;
before(async () => {
  dav = await startDav({ dir: path.join(TMP, 'dav'), token: TOKEN });
});
after(() => dav?.stop());
const auth = { Authorization: `Bearer ${TOKEN}` };

test('nginx: PUT with the token creates nested folders, GET reads it back, a folder GET lists JSON', async () => {
  const body = JSON.stringify({ labels: [1, 2, 3] });
  const put = await fetch(dav.url + 'proj/labels/img-001.json', { method: 'PUT', body, headers: auth });
  assert.equal(put.status, 201);
  assert.equal(fs.readFileSync(path.join(dav.root, 'proj/labels/img-001.json'), 'utf8'), body);
  const again = await fetch(dav.url + 'proj/labels/img-001.json', { method: 'PUT', body: body + ' ', headers: auth });
  assert.equal(again.status, 204, 'overwriting an existing file answers 204');

  const get = await fetch(dav.url + 'proj/labels/img-001.json');
  assert.equal(get.status, 200);
  assert.equal(await get.text(), body + ' ');
  assert.match(get.headers.get('etag'), /^"[0-9a-f]+-[0-9a-f]+"$/);
  assert.equal(get.headers.get('access-control-allow-origin'), '*');
  assert.match(get.headers.get('access-control-expose-headers'), /ETag/);

  const list = await fetch(dav.url + 'proj/labels/');
  assert.equal(list.status, 200);
  assert.equal(list.headers.get('content-type'), 'application/json');
  const entries = await list.json();
  assert.deepEqual(
    entries.map(({ name, type, size }) => ({ name, type, size })),
    [{ name: 'img-001.json', type: 'file', size: body.length + 1 }],
  );
  const top = await (await fetch(dav.url + 'proj/')).json();
  assert.deepEqual(top.map(({ name, type }) => ({ name, type })), [{ name: 'labels', type: 'directory' }]);
  // Without the trailing slash a folder is a relative redirect (so it also works behind a proxy).
  const redirect = await fetch(dav.url + 'proj', { redirect: 'manual' });
  assert.equal(redirect.status, 301);
  assert.equal(redirect.headers.get('location'), '/proj/');
});

test('nginx: writes without the right token are 401 with CORS headers; reads stay open', async () => {
  for (const headers of [{}, { Authorization: 'Bearer wrong' }, { Authorization: `Basic ${TOKEN}` }]) {
    const r = await fetch(dav.url + 'proj/denied.json', { method: 'PUT', body: '{}', headers });
    assert.equal(r.status, 401, JSON.stringify(headers));
    assert.equal(r.headers.get('access-control-allow-origin'), '*', 'the browser must see the 401');
  }
  assert.ok(!fs.existsSync(path.join(dav.root, 'proj/denied.json')));
  fs.mkdirSync(path.join(dav.root, 'open'), { recursive: true });
  fs.writeFileSync(path.join(dav.root, 'open/a.json'), '{}');
  assert.equal((await fetch(dav.url + 'open/a.json', { method: 'DELETE' })).status, 401);
  assert.equal((await fetch(dav.url + 'open/b/', { method: 'MKCOL' })).status, 401);
  assert.equal((await fetch(dav.url + 'open/a.json')).status, 200);
  assert.equal((await fetch(dav.url + 'open/a.json', { method: 'DELETE', headers: auth })).status, 204);
  assert.equal((await fetch(dav.url + 'open/a.json', { method: 'DELETE', headers: auth })).status, 404);
  assert.equal((await fetch(dav.url + 'open/b/', { method: 'MKCOL', headers: auth })).status, 201);
  const missing = await fetch(dav.url + 'open/none.json');
  assert.equal(missing.status, 404);
  assert.equal(missing.headers.get('access-control-allow-origin'), '*');
});

test('nginx: CORS preflight is 204 and allows the headers the app sends', async () => {
  const r = await request(dav.url + 'proj/x.json', {
    method: 'OPTIONS',
    headers: {
      Origin: ORIGIN,
      'Access-Control-Request-Method': 'PUT',
      'Access-Control-Request-Headers': 'authorization,content-type,if-none-match',
    },
  });
  assert.equal(r.status, 204);
  assert.equal(r.headers['access-control-allow-origin'], '*');
  assert.match(r.headers['access-control-allow-methods'], /\bPUT\b/);
  assert.match(r.headers['access-control-allow-methods'], /\bDELETE\b/);
  for (const h of ['Authorization', 'Content-Type', 'If-None-Match']) {
    assert.match(r.headers['access-control-allow-headers'], new RegExp(h));
  }
});

test('nginx: stock dav ignores If-None-Match on PUT; the opt-in emulation answers 412', async () => {
  const put = (d, body) =>
    fetch(d.url + 'c/once.json', { method: 'PUT', body, headers: { ...auth, 'If-None-Match': '*' } });
  assert.equal((await put(dav, '1')).status, 201);
  assert.equal((await put(dav, '2')).status, 204, 'nginx overwrites despite If-None-Match: *');
  assert.equal(fs.readFileSync(path.join(dav.root, 'c/once.json'), 'utf8'), '2');

  const strict = await startDav({ dir: path.join(TMP, 'dav-strict'), token: TOKEN, emulateIfNoneMatch: true });
  try {
    assert.equal((await put(strict, '1')).status, 201);
    const second = await put(strict, '2');
    assert.equal(second.status, 412);
    assert.equal(second.headers.get('access-control-allow-origin'), '*');
    assert.equal(fs.readFileSync(path.join(strict.root, 'c/once.json'), 'utf8'), '1');
    // A plain PUT still overwrites.
    const plain = await fetch(strict.url + 'c/once.json', { method: 'PUT', body: '3', headers: auth });
    assert.equal(plain.status, 204);
    assert.equal((await fetch(strict.url + 'c/once.json', { method: 'PUT', body: '4' })).status, 401);
  } finally {
    await strict.stop();
  }
});

test('nginx: stop() and restart() keep the port and the files', async () => {
  const d = await startDav({ dir: path.join(TMP, 'dav-restart') });
  try {
    assert.equal((await fetch(d.url + 'k.json', { method: 'PUT', body: 'kept' })).status, 201, 'no token: writes open');
    await d.stop();
    await assert.rejects(fetch(d.url + 'k.json'));
    await d.restart();
    assert.equal(await (await fetch(d.url + 'k.json')).text(), 'kept');
  } finally {
    await d.stop();
  }
});

// ---- fault proxy (in front of nginx) ---------------------------------------------------------

test('proxy: pass forwards method, path, query, headers and body, and counts by method', async () => {
  const p = await startFaultProxy({ target: dav.url });
  try {
    const put = await fetch(p.url + '/px/a.json?x=1', { method: 'PUT', body: 'via proxy', headers: auth });
    assert.equal(put.status, 201);
    assert.equal(put.headers.get('location'), '/px/a.json');
    assert.equal(fs.readFileSync(path.join(dav.root, 'px/a.json'), 'utf8'), 'via proxy');
    const get = await fetch(p.url + '/px/a.json');
    assert.equal(await get.text(), 'via proxy');
    assert.equal(get.headers.get('access-control-allow-origin'), '*', 'upstream headers come through');
    assert.equal((await fetch(p.url + '/px/b.json', { method: 'PUT', body: 'x' })).status, 401, 'Authorization matters');
    assert.deepEqual({ ...p.counts }, { PUT: 2, GET: 1, total: 3 });
    assert.deepEqual(p.requests.map((r) => `${r.method} ${r.url} ${r.status}`), [
      'PUT /px/a.json?x=1 201',
      'GET /px/a.json 200',
      'PUT /px/b.json 401',
    ]);
    // A large body streams through intact.
    const big = Buffer.alloc(5 * 1024 * 1024, 7);
    assert.equal((await fetch(p.url + '/px/big.bin', { method: 'PUT', body: big, headers: auth })).status, 201);
    assert.ok(fs.readFileSync(path.join(dav.root, 'px/big.bin')).equals(big));
  } finally {
    await p.stop();
  }
});

test('proxy: error500 and error503 answer with CORS headers and do not reach the server', async () => {
  const p = await startFaultProxy({ target: dav.url });
  try {
    p.setMode('error500');
    const r500 = await fetch(p.url + '/px/e.json', { method: 'PUT', body: 'no', headers: auth });
    assert.equal(r500.status, 500);
    assert.equal(r500.headers.get('access-control-allow-origin'), '*');
    assert.match(await r500.text(), /<Code>InternalError<\/Code>/);
    assert.ok(!fs.existsSync(path.join(dav.root, 'px/e.json')));

    p.setMode('error503');
    const r503 = await fetch(p.url + '/px/a.json');
    assert.equal(r503.status, 503);
    assert.equal(r503.headers.get('retry-after'), '1');
    assert.equal(r503.headers.get('access-control-allow-origin'), '*');
    // Preflights still pass, so a browser gets to see the 503 of the real request.
    const pre = await request(p.url + '/px/a.json', {
      method: 'OPTIONS',
      headers: { Origin: ORIGIN, 'Access-Control-Request-Method': 'PUT' },
    });
    assert.equal(pre.status, 204);

    p.setMode('pass');
    assert.equal((await fetch(p.url + '/px/a.json')).status, 200);
    assert.deepEqual({ ...p.counts }, { PUT: 1, GET: 2, OPTIONS: 1, total: 4 });
  } finally {
    await p.stop();
  }
});

test('proxy: slow holds each answer delayMs after the server acted', async () => {
  const p = await startFaultProxy({ target: dav.url });
  try {
    p.setMode('slow', { delayMs: 600 });
    const t0 = Date.now();
    const pending = fetch(p.url + '/px/slow.json', { method: 'PUT', body: 'late', headers: auth });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(fs.readFileSync(path.join(dav.root, 'px/slow.json'), 'utf8'), 'late', 'written before the answer');
    assert.equal((await pending).status, 201);
    assert.ok(Date.now() - t0 >= 600, `answered after ${Date.now() - t0} ms`);
    // A client that gives up first sees a timeout, though the write happened.
    await assert.rejects(fetch(p.url + '/px/slow.json', { signal: AbortSignal.timeout(200) }), /TimeoutError|aborted/);
  } finally {
    await p.stop();
  }
});

test('proxy: down destroys connections; pass recovers', async () => {
  const p = await startFaultProxy({ target: dav.url });
  try {
    assert.equal((await fetch(p.url + '/px/a.json')).status, 200); // a keep-alive connection now exists
    p.setMode('down');
    await assert.rejects(fetch(p.url + '/px/a.json'), /fetch failed/);
    await assert.rejects(fetch(p.url + '/px/d.json', { method: 'PUT', body: 'x', headers: auth }), /fetch failed/);
    assert.ok(!fs.existsSync(path.join(dav.root, 'px/d.json')));
    p.setMode('pass');
    assert.equal((await fetch(p.url + '/px/a.json')).status, 200);
    assert.equal(p.counts.GET, 3);
  } finally {
    await p.stop();
  }
});

test('proxy: failNext fails only the next n matching requests', async () => {
  const p = await startFaultProxy({ target: dav.url });
  try {
    p.failNext(2, 503, 'PUT');
    const put = (n) => fetch(p.url + `/px/f${n}.json`, { method: 'PUT', body: String(n), headers: auth });
    assert.equal((await fetch(p.url + '/px/a.json')).status, 200, 'GETs are not affected');
    assert.equal((await put(1)).status, 503);
    assert.equal((await fetch(p.url + '/px/a.json')).status, 200);
    assert.equal((await put(2)).status, 503);
    assert.equal((await put(3)).status, 201);
    assert.ok(!fs.existsSync(path.join(dav.root, 'px/f1.json')));
    assert.ok(fs.existsSync(path.join(dav.root, 'px/f3.json')));
    assert.deepEqual(p.requests.map((r) => r.status), [200, 503, 200, 503, 201]);
    assert.deepEqual(p.requests.map((r) => !!r.injected), [false, true, false, true, false]);

    p.failNext(1, 500); // any method, but preflights pass
    const pre = await request(p.url + '/px/a.json', {
      method: 'OPTIONS',
      headers: { Origin: ORIGIN, 'Access-Control-Request-Method': 'GET' },
    });
    assert.equal(pre.status, 204);
    assert.equal((await fetch(p.url + '/px/a.json')).status, 500);
    p.failNext(1, 0, ['PUT', 'DELETE']); // status 0: the connection drops
    await assert.rejects(put(4), /fetch failed/);
    assert.equal((await put(4)).status, 201);
    p.resetCounts();
    assert.deepEqual({ ...p.counts }, {});
  } finally {
    await p.stop();
  }
});

test('proxy: a stopped target is a 502 with CORS headers', async () => {
  const d = await startDav({ dir: path.join(TMP, 'dav-gone') });
  const p = await startFaultProxy({ target: d.url });
  try {
    assert.equal((await fetch(p.url + '/')).status, 200);
    await d.stop();
    const r = await fetch(p.url + '/x.json', { method: 'PUT', body: 'x' });
    assert.equal(r.status, 502);
    assert.equal(r.headers.get('access-control-allow-origin'), '*');
    await d.restart();
    assert.equal((await fetch(p.url + '/x.json', { method: 'PUT', body: 'x' })).status, 201);
  } finally {
    await p.stop();
    await d.stop();
  }
});

// ---- Garage (S3) -----------------------------------------------------------------------------

let s3;
before(async () => {
  s3 = await startGarage({ dir: path.join(TMP, 'garage') });
});
after(() => s3?.stop());
const text = async (...a) => (await s3check(...a)).toString();
const json = async (...a) => JSON.parse(await s3check(...a));

test('garage: put, get, list and delete-prefix through boto3 (s3check.py)', async () => {
  const file = path.join(TMP, 'one.json');
  fs.writeFileSync(file, '{"a":1}');
  const put = await json(s3, ['put', 'proj/labels/one.json', file]);
  assert.match(put.etag, /^"[0-9a-f]{32}"$/);
  await s3check(s3, ['put', 'proj/labels/two.json', '-'], { input: 'two' });
  await s3check(s3, ['put', 'other/three.json', '-'], { input: '3' });
  assert.equal(await text(s3, ['get', 'proj/labels/one.json']), '{"a":1}');
  const list = await json(s3, ['list', 'proj/']);
  assert.deepEqual(list, [
    { key: 'proj/labels/one.json', size: 7, etag: put.etag },
    { key: 'proj/labels/two.json', size: 3, etag: list[1].etag },
  ]);
  assert.deepEqual(await json(s3, ['delete-prefix', 'proj/']), { deleted: 2 });
  assert.deepEqual(await json(s3, ['list', 'proj/']), []);
  assert.equal((await json(s3, ['list', ''])).length, 1);
  // A missing key is exit status 2, not a crash.
  const r = spawnSync('python3', [S3CHECK, '--endpoint', s3.endpoint, '--bucket', s3.bucket, '--region', s3.region,
    '--access-key', s3.accessKey, '--secret-key', s3.secretKey, 'get', 'nope'], { encoding: 'utf8' });
  assert.equal(r.status, 2, r.stderr);
});

test('garage: the bucket has the CORS rule and answers a browser preflight for a signed PUT', async () => {
  const rules = await json(s3, ['get-cors']);
  assert.deepEqual(rules[0].AllowedOrigins, ['*']);
  assert.deepEqual(rules[0].ExposeHeaders, ['ETag']);
  const r = await request(`${s3.endpoint}/${s3.bucket}/proj/x.json`, {
    method: 'OPTIONS',
    headers: {
      Origin: ORIGIN,
      'Access-Control-Request-Method': 'PUT',
      'Access-Control-Request-Headers': S3_PREFLIGHT_HEADERS,
    },
  });
  assert.equal(r.status, 200);
  assert.equal(r.headers['access-control-allow-origin'], '*');
  assert.match(r.headers['access-control-allow-methods'], /\bPUT\b/);
  assert.equal(r.headers['access-control-allow-headers'], '*');
  assert.equal(r.headers['access-control-expose-headers'], 'ETag');
  // Garage keeps MaxAgeSeconds but does not send Access-Control-Max-Age: browsers cache the
  // preflight only briefly (Chromium: 5 s) and preflight again.
  assert.equal(r.headers['access-control-max-age'], undefined);
  // A method outside the rule is refused.
  const bad = await request(`${s3.endpoint}/${s3.bucket}/proj/x.json`, {
    method: 'OPTIONS',
    headers: { Origin: ORIGIN, 'Access-Control-Request-Method': 'PATCH' },
  });
  assert.equal(bad.status, 403);
});

test('garage: errors carry Access-Control-Allow-Origin, so a browser sees 404 and 403', async () => {
  const missing = await request((await text(s3, ['presign', 'GET', 'no/such.json'])).trim(), {
    headers: { Origin: ORIGIN },
  });
  assert.equal(missing.status, 404);
  assert.match(missing.body, /NoSuchKey/);
  assert.equal(missing.headers['access-control-allow-origin'], '*');
  const unsigned = await request(`${s3.endpoint}/${s3.bucket}/x.json`, { headers: { Origin: ORIGIN } });
  assert.equal(unsigned.status, 403);
  assert.equal(unsigned.headers['access-control-allow-origin'], '*');
  // Only successful answers get the rule's Expose-Headers; an error's ETag is not readable anyway.
  assert.equal(missing.headers['access-control-expose-headers'], undefined);
});

// Pins what the sync design has to live with; if this starts failing, Garage began honouring
// conditional writes and create-only pushes can rely on them.
test('garage 2.5.0 ignores If-None-Match: * on PutObject (signed header and presigned URL)', async () => {
  await s3check(s3, ['put', 'inm/a.json', '-'], { input: 'first' });
  await s3check(s3, ['put', 'inm/a.json', '-', '--if-none-match'], { input: 'second' });
  assert.equal(await text(s3, ['get', 'inm/a.json']), 'second', 'signed If-None-Match: * overwrote');
  const url = (await text(s3, ['presign', 'PUT', 'inm/a.json'])).trim();
  const r = await fetch(url, { method: 'PUT', body: 'third', headers: { 'If-None-Match': '*' } });
  assert.equal(r.status, 200);
  assert.equal(await text(s3, ['get', 'inm/a.json']), 'third', 'presigned PUT with If-None-Match: * overwrote');
});

test('garage: a request signed for the proxy host works through the proxy; faults show', async () => {
  const p = await startFaultProxy({ target: s3.endpoint });
  try {
    const via = { ...s3, endpoint: p.url };
    await s3check(via, ['put', 'px/a.json', '-'], { input: 'through the proxy' });
    assert.equal(await text(s3, ['get', 'px/a.json']), 'through the proxy', 'stored in garage');
    assert.equal((await json(via, ['list', 'px/'])).length, 1);
    assert.equal(p.counts.PUT, 1);
    p.failNext(1, 503, 'GET');
    await assert.rejects(s3check(via, ['get', 'px/a.json']), /SlowDown|503/);
    assert.equal(await text(via, ['get', 'px/a.json']), 'through the proxy');
  } finally {
    await p.stop();
  }
});

test('garage: stop() then restart() keeps ports, keys and objects', async () => {
  await s3check(s3, ['put', 'keep/me.json', '-'], { input: 'kept' });
  const p = await startFaultProxy({ target: s3.endpoint });
  try {
    await s3.stop();
    assert.equal((await fetch(p.url + `/${s3.bucket}/keep/me.json`)).status, 502);
    await s3.restart();
    assert.equal(await text(s3, ['get', 'keep/me.json']), 'kept');
    // The CORS rule lives in the bucket's metadata, so it survives too.
    assert.deepEqual((await json(s3, ['get-cors']))[0].AllowedOrigins, ['*']);
    await s3.stop({ hard: true });
    await s3.restart();
    assert.equal(await text(s3, ['get', 'keep/me.json']), 'kept');
  } finally {
    await p.stop();
  }
});

test('freePort gives a port one can listen on', async () => {
  const port = await freePort();
  const srv = http.createServer();
  await new Promise((resolve, reject) => srv.once('error', reject).listen(port, '127.0.0.1', resolve));
  await new Promise((resolve) => srv.close(resolve));
});

// Registered last, so it runs after the servers above have stopped (after hooks run in order).
after(() => fs.rmSync(TMP, { recursive: true, force: true }));
