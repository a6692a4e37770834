// Real servers for the sync tests: Garage (S3), Debian nginx (WebDAV-style PUT/DELETE/MKCOL plus
// JSON directory listings) and a small fault-injecting reverse proxy. No mocks: the app and the CLI
// talk to the same software a team would run, and tests/sync/s3check.py (boto3) checks the result
// independently of our own S3 code.
//
// Every child runs in its own process group so stop() reaches nginx's workers too, and all of
// them are killed when this process exits, so a failing test never leaves servers behind.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const S3CHECK = path.join(HERE, 's3check.py');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- process bookkeeping -------------------------------------------------------------------

const live = new Set(); // ChildProcess objects still running

function killGroup(child, signal) {
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {}
  }
}

process.on('exit', () => {
  // Only synchronous work is possible here; SIGKILL so nothing lingers (nginx's workers are in
  // the same process group as their master).
  for (const child of live) killGroup(child, 'SIGKILL');
});
// 'exit' does not run on signals; node:test's runner stops a file with SIGTERM on timeout.
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => process.exit(128 + os.constants.signals[sig]));
}

function launch(cmd, args, { env, logFile, cwd } = {}) {
  const log = fs.openSync(logFile, 'a');
  const child = spawn(cmd, args, {
    env: { ...process.env, ...env },
    cwd,
    stdio: ['ignore', log, log],
    detached: true, // own process group, see killGroup
  });
  fs.closeSync(log);
  child.exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      live.delete(child);
      resolve({ code, signal });
    });
    child.once('error', (error) => {
      live.delete(child);
      resolve({ code: null, signal: null, error });
    });
  });
  // Do not keep the test process alive just because a server is running.
  child.unref();
  live.add(child);
  return child;
}

async function stopChild(child, signal = 'SIGTERM', graceMs = 5000) {
  if (!child || !live.has(child)) return;
  killGroup(child, signal);
  const timer = sleep(graceMs).then(() => 'timeout');
  if ((await Promise.race([child.exited, timer])) === 'timeout') {
    killGroup(child, 'SIGKILL');
    await child.exited;
  }
}

function tail(file, lines = 30) {
  try {
    return fs.readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves to the status once a GET of url is answered with a status ok() accepts (default: any). */
async function waitHttp(url, child, logFile, what, { ok = () => true, timeoutMs = 60000 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    if (!live.has(child)) {
      const { code, signal } = await child.exited;
      throw new Error(`${what} exited (code ${code}, signal ${signal}) before answering; log ${logFile}:\n${tail(logFile)}`);
    }
    try {
      const status = await new Promise((resolve, reject) => {
        const req = http.get(url, (res) => {
          res.resume();
          resolve(res.statusCode);
        });
        req.setTimeout(2000, () => req.destroy(new Error('timeout')));
        req.on('error', reject);
      });
      if (ok(status)) return status;
      last = new Error(`status ${status}`);
    } catch (e) {
      last = e;
    }
    await sleep(100);
  }
  throw new Error(`${what} did not answer at ${url} within ${timeoutMs} ms (${last?.message}); log ${logFile}:\n${tail(logFile)}`);
}

function which(name) {
  for (const d of (process.env.PATH || '').split(path.delimiter)) {
    const f = path.join(d, name);
    try {
      fs.accessSync(f, fs.constants.X_OK);
      return f;
    } catch {}
  }
  return null;
}

// ---- Garage (S3) ---------------------------------------------------------------------------

export const GARAGE_VERSION = '2.5.0';

function garageBin() {
  if (process.env.GARAGE_BIN && !fs.existsSync(process.env.GARAGE_BIN)) {
    throw new Error(`GARAGE_BIN=${process.env.GARAGE_BIN} does not exist`);
  }
  const candidates = [process.env.GARAGE_BIN, path.join(os.homedir(), '.cargo/bin/garage'), which('garage')];
  for (const c of candidates) {
    if (c && fs.existsSync(c)) return c;
  }
  throw new Error(
    `garage ${GARAGE_VERSION} not found (looked at $GARAGE_BIN, ~/.cargo/bin/garage, PATH). Install it with ` +
      '`bash .ci/setup test` or `cargo install garage --version 2.5.0 --locked --no-default-features ' +
      '--features bundled-libs,lmdb` (about 30 minutes on 2 cores, once).',
  );
}

function python() {
  const py = which('python3');
  if (!py) throw new Error('python3 not found; install it with `bash .ci/setup test` (apt python3)');
  return py;
}

/**
 * Runs `cli --json ...args` and resolves to { code, stdout, stderr, wall } (wall: seconds, process start
 * included). Asynchronous for the same reason as s3check: a fault proxy in this process keeps answering.
 */
export function runJson(cli, args, { env } = {}) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cli, ['--json', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out = [];
    const err = [];
    child.stdout.on('data', (c) => out.push(c));
    child.stderr.on('data', (c) => err.push(c));
    child.on('error', reject);
    child.on('close', (code) => resolve({
      code,
      stdout: Buffer.concat(out).toString(),
      stderr: Buffer.concat(err).toString(),
      wall: (performance.now() - t0) / 1000,
    }));
  });
}

/**
 * Runs tests/sync/s3check.py against an S3 endpoint; resolves to its stdout (a Buffer), rejects on
 * failure (the error has .status and .stderr). Asynchronous on purpose: a synchronous spawn would
 * block this process's event loop, and with it a fault proxy running here in front of the server.
 */
export function s3check(s3, args, { input } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(python(), [S3CHECK, ...args], {
      env: {
        ...process.env,
        S3_ENDPOINT: s3.endpoint,
        S3_BUCKET: s3.bucket,
        S3_REGION: s3.region,
        AWS_ACCESS_KEY_ID: s3.accessKey,
        AWS_SECRET_ACCESS_KEY: s3.secretKey,
      },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out = [];
    const err = [];
    child.stdout.on('data', (c) => out.push(c));
    child.stderr.on('data', (c) => err.push(c));
    child.on('error', reject);
    child.on('close', (status) => {
      if (status === 0) return resolve(Buffer.concat(out));
      const stderr = Buffer.concat(err).toString();
      reject(Object.assign(new Error(`s3check.py ${args.join(' ')} failed (${status}):\n${stderr}`), { status, stderr }));
    });
    child.stdin.end(input);
  });
}

/**
 * Starts a single-node Garage with a default bucket and key on free 127.0.0.1 ports, data under dir,
 * and a permissive CORS rule on the bucket (set with boto3, not with our own S3 code).
 */
export async function startGarage({ dir, bucket = 'lamina', region = 'garage' } = {}) {
  const bin = garageBin();
  dir = path.resolve(dir);
  fs.mkdirSync(path.join(dir, 'meta'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'data'), { recursive: true });
  const [rpcPort, s3Port, adminPort] = [await freePort(), await freePort(), await freePort()];
  const accessKey = 'GK' + randomBytes(12).toString('hex');
  const secretKey = randomBytes(32).toString('hex');
  const config = path.join(dir, 'garage.toml');
  // No [s3_web] (the app talks to the S3 API) and no root_domain (path-style addressing only).
  // The admin API's GET /health (no token needed) is 200 once the node is fully operational.
  fs.writeFileSync(
    config,
    `metadata_dir = "${path.join(dir, 'meta')}"
data_dir = "${path.join(dir, 'data')}"
db_engine = "lmdb"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:${rpcPort}"
rpc_public_addr = "127.0.0.1:${rpcPort}"
rpc_secret = "${randomBytes(32).toString('hex')}"

[s3_api]
s3_region = "${region}"
api_bind_addr = "127.0.0.1:${s3Port}"

[admin]
api_bind_addr = "127.0.0.1:${adminPort}"
`,
  );
  const logFile = path.join(dir, 'garage.log');
  const env = {
    GARAGE_DEFAULT_ACCESS_KEY: accessKey,
    GARAGE_DEFAULT_SECRET_KEY: secretKey,
    GARAGE_DEFAULT_BUCKET: bucket,
    RUST_LOG: process.env.RUST_LOG || 'garage=info',
  };
  const endpoint = `http://127.0.0.1:${s3Port}`;
  let child;
  const start = async () => {
    child = launch(bin, ['-c', config, 'server', '--single-node', '--default-bucket'], { env, logFile, cwd: dir });
    // The key and bucket are created before the S3 server starts listening, so any answer means ready
    // (an unsigned request gets 403).
    await waitHttp(endpoint + '/', child, logFile, 'garage');
    await waitHttp(`http://127.0.0.1:${adminPort}/health`, child, logFile, 'garage health', { ok: (s) => s === 200 });
  };
  await start();
  const s3 = {
    endpoint,
    bucket,
    region,
    accessKey,
    secretKey,
    adminUrl: `http://127.0.0.1:${adminPort}`,
    dir,
    logFile,
    get pid() {
      return child.pid;
    },
    // SIGTERM lets garage shut down cleanly; { hard: true } kills it (SIGKILL) at once.
    stop: ({ hard = false } = {}) => stopChild(child, hard ? 'SIGKILL' : 'SIGTERM', 10000),
    restart: async () => {
      await stopChild(child, 'SIGTERM', 10000);
      await start();
    },
  };
  // Browsers preflight every signed request; Garage answers preflights only from a bucket's CORS rule.
  // The default bucket has a global alias, which is what Garage resolves preflights against.
  // s3check retries while the fresh single-node layout settles.
  await s3check(s3, ['set-cors', '--retry-seconds', '30']);
  return s3;
}

// ---- nginx (WebDAV-style) ------------------------------------------------------------------

const NGINX = process.env.NGINX_BIN || '/usr/sbin/nginx';

// The token goes into nginx.conf literally; keep it to characters that need no quoting.
const TOKEN_RE = /^[A-Za-z0-9._~+\/=-]+$/;

// nginx's dav module ignores If-None-Match on PUT (an existing file is overwritten, 204). This
// emulates "If-None-Match: *" with a file test; it is a check-then-write, not atomic, so two
// simultaneous creators can both succeed. Opt-in, so the default stays what a stock nginx does.
const IF_NONE_MATCH_EMULATION = `            set $lamina_create_only "";
            if ($request_method = PUT) { set $lamina_create_only "P"; }
            if ($http_if_none_match = "*") { set $lamina_create_only "\${lamina_create_only}N"; }
            if (-e $request_filename) { set $lamina_create_only "\${lamina_create_only}E"; }
            if ($lamina_create_only = "PNE") { return 412; }
`;

/** The nginx.conf startDav writes (docs/sync-endpoints.md shows the same server block). */
export function davConfig({ dir, port, token, emulateIfNoneMatch = false }) {
  const runAsRoot = process.getuid?.() === 0;
  const writeGate = token
    ? `
    # Writes need the bearer token; reads stay open (a published data set is readable by anyone
    # with the URL, and a pull-only client needs no secret). Exact map keys beat the regex.
    map "$request_method:$http_authorization" $lamina_write_denied {
        default 0;
        "PUT:Bearer ${token}" 0;
        "DELETE:Bearer ${token}" 0;
        "MKCOL:Bearer ${token}" 0;
        "~^(PUT|DELETE|MKCOL):" 1;
    }`
    : `
    map $request_method $lamina_write_denied { default 0; }`;
  return `# Written by tests/sync/servers.mjs startDav().
${runAsRoot ? '# Workers must be able to write the served folder, which belongs to root here.\nuser root;\n' : ''}worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 256; }

http {
    # Debian's compiled-in temp paths are under /var/lib/nginx; keep everything inside dir.
    # The body temp folder is on the same file system as root, so a PUT ends in a rename
    # (readers never see a half-written file).
    client_body_temp_path ${dir}/tmp/body;
    proxy_temp_path ${dir}/tmp/proxy;
    fastcgi_temp_path ${dir}/tmp/fastcgi;
    uwsgi_temp_path ${dir}/tmp/uwsgi;
    scgi_temp_path ${dir}/tmp/scgi;
    access_log ${dir}/access.log;
    types { application/json json; text/plain txt; image/png png; image/jpeg jpg jpeg; }
    default_type application/octet-stream;
${writeGate}

    server {
        listen 127.0.0.1:${port};
        root ${dir}/root;
        client_max_body_size 1g;
        # Redirects (GET /folder -> /folder/) and PUT's Location stay relative, so they also work
        # behind a proxy on another port.
        absolute_redirect off;

        location / {
            # CORS on every answer, errors included ("always"), so a browser app sees 401/404/409
            # instead of an opaque network error.
            add_header Access-Control-Allow-Origin "*" always;
            add_header Access-Control-Allow-Methods "GET, HEAD, PUT, DELETE, MKCOL, OPTIONS" always;
            add_header Access-Control-Allow-Headers "Authorization, Content-Type, If-None-Match, If-Match, Depth" always;
            add_header Access-Control-Expose-Headers "ETag, Last-Modified" always;
            add_header Access-Control-Max-Age "600" always;

            if ($request_method = OPTIONS) { return 204; }
            if ($lamina_write_denied) { return 401; }
${emulateIfNoneMatch ? IF_NONE_MATCH_EMULATION : ''}
            dav_methods PUT DELETE MKCOL;
            create_full_put_path on;
            dav_access user:rw group:r all:r;
            # A GET of a folder (with the trailing slash) lists it as JSON:
            # [{"name":..., "type":"file"|"directory", "mtime":..., "size":...}]
            autoindex on;
            autoindex_format json;
        }
    }
}
`;
}

/**
 * Starts Debian nginx serving dir/root with PUT/DELETE/MKCOL and JSON folder listings on a free
 * 127.0.0.1 port. With a token, writes need "Authorization: Bearer <token>" and reads stay open.
 * emulateIfNoneMatch: answer 412 to "PUT If-None-Match: *" on an existing file (see above).
 */
export async function startDav({ dir, token, emulateIfNoneMatch = false } = {}) {
  if (!fs.existsSync(NGINX)) {
    throw new Error(`nginx not found at ${NGINX}; install Debian's nginx (\`apt-get install nginx\`, or \`bash .ci/setup test\`)`);
  }
  if (token != null && !TOKEN_RE.test(token)) {
    throw new Error(`token must match ${TOKEN_RE} (it is written into nginx.conf)`);
  }
  dir = path.resolve(dir);
  const root = path.join(dir, 'root');
  fs.mkdirSync(root, { recursive: true });
  fs.mkdirSync(path.join(dir, 'tmp'), { recursive: true });
  const port = await freePort();
  const conf = path.join(dir, 'nginx.conf');
  fs.writeFileSync(conf, davConfig({ dir, port, token, emulateIfNoneMatch }));
  const logFile = path.join(dir, 'nginx.out');
  const check = spawnSync(NGINX, ['-t', '-q', '-p', dir, '-c', conf, '-g', 'daemon off;'], { encoding: 'utf8' });
  if (check.status !== 0) throw new Error(`nginx rejects ${conf}:\n${check.stderr}`);
  const url = `http://127.0.0.1:${port}/`;
  let child;
  const start = async () => {
    child = launch(NGINX, ['-p', dir, '-c', conf, '-g', 'daemon off;'], { logFile });
    await waitHttp(url, child, path.join(dir, 'error.log'), 'nginx');
  };
  await start();
  return {
    url,
    root,
    dir,
    token,
    get pid() {
      return child.pid;
    },
    // SIGTERM is nginx's fast shutdown: open connections are closed, workers exit.
    stop: () => stopChild(child, 'SIGTERM'),
    restart: async () => {
      await stopChild(child, 'SIGTERM');
      await start();
    },
  };
}

// ---- fault proxy ---------------------------------------------------------------------------

// Hop-by-hop headers belong to one connection and are not forwarded (RFC 9110 7.6.1).
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade']);

function rawHeadersWithout(raw, drop) {
  const out = [];
  for (let i = 0; i < raw.length; i += 2) {
    if (!drop.has(raw[i].toLowerCase())) out.push(raw[i], raw[i + 1]);
  }
  return out;
}

const S3_CODES = { 500: 'InternalError', 502: 'BadGateway', 503: 'SlowDown', 504: 'GatewayTimeout' };

/**
 * A reverse proxy in front of target that can fail on purpose. The Host header is forwarded
 * unchanged: SigV4 signs Host, so an S3 client signs for the proxy's host:port and Garage checks
 * the signature against that same header.
 *
 * Modes: 'pass'; 'error500' / 'error503' (answer that status, not forwarded); 'slow' (forward,
 * then hold the answer delayMs: the server has already acted when the client times out);
 * 'down' (destroy every connection, like a crashed server); 'hang' (take the request, never answer);
 * 'huge' (answer every GET with 200 and an endless body of `hugeBytes` declared or, with
 * declareLength false, chunked).
 * CORS preflights (OPTIONS with Access-Control-Request-Method) pass through in the error modes,
 * so a browser gets to send the real request and sees its error status; so does failNext unless
 * its filter names 'OPTIONS'.
 */
export async function startFaultProxy({ target, port } = {}) {
  const t = new URL(target);
  const state = { mode: 'pass', delayMs: 1000, failQueue: [], hugeBytes: 200 << 20, declareLength: true };
  const counts = {}; // by method, plus total; live object
  const requests = []; // { method, url, status } in arrival order; status 0 = connection destroyed
  const sockets = new Set();

  // The proxy's own answers need CORS headers too, or a browser sees only a network error.
  const CORS = { 'Access-Control-Allow-Origin': '*', 'Access-Control-Expose-Headers': 'ETag, Last-Modified' };

  const fail = (req, res, status, entry, message = 'injected by the test fault proxy') => {
    entry.status = status;
    entry.injected = true;
    req.resume();
    if (status === 0) {
      req.socket.destroy();
      return;
    }
    const body =
      `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${S3_CODES[status] || 'InjectedFault'}</Code>` +
      `<Message>${message}</Message></Error>\n`;
    res.writeHead(status, {
      ...CORS,
      'Content-Type': 'application/xml',
      'Content-Length': Buffer.byteLength(body),
      ...(status === 503 ? { 'Retry-After': '1' } : {}),
    });
    res.end(body);
  };

  // Without a method filter a failure skips preflights, like the error modes do.
  const takeFailure = (method, preflight) => {
    const i = state.failQueue.findIndex((f) => (f.methods ? f.methods.includes(method) : !preflight));
    if (i < 0) return null;
    const f = state.failQueue[i];
    if (--f.left <= 0) state.failQueue.splice(i, 1);
    return f;
  };

  const server = http.createServer((req, res) => {
    counts[req.method] = (counts[req.method] || 0) + 1;
    counts.total = (counts.total || 0) + 1;
    const entry = { method: req.method, url: req.url, status: null };
    requests.push(entry);
    const preflight = req.method === 'OPTIONS' && req.headers['access-control-request-method'];

    const queued = takeFailure(req.method, preflight);
    if (queued != null) return fail(req, res, queued.status, entry, queued.message);
    if (state.mode === 'down') return fail(req, res, 0, entry);
    if (state.mode === 'error500' && !preflight) return fail(req, res, 500, entry);
    if (state.mode === 'error503' && !preflight) return fail(req, res, 503, entry);
    if (state.mode === 'hang' && !preflight) {
      entry.injected = true;
      return req.resume(); // never answered
    }
    if (state.mode === 'huge' && req.method === 'GET') {
      entry.status = 200;
      entry.injected = true;
      res.writeHead(200, { ...CORS, 'Content-Type': 'application/json',
        ...(state.declareLength ? { 'Content-Length': state.hugeBytes } : {}) });
      const chunk = Buffer.alloc(1 << 16, 0x20);
      let sent = 0;
      const pump = () => {
        while (sent < state.hugeBytes && !res.destroyed) {
          sent += chunk.length;
          if (!res.write(chunk)) return res.once('drain', pump);
        }
        res.end();
      };
      res.on('error', () => {});
      return pump();
    }
    const delay = state.mode === 'slow' ? state.delayMs : 0;

    const up = http.request({
      host: t.hostname,
      port: t.port || 80,
      method: req.method,
      path: req.url,
      // Original header names, values and order, Host included.
      headers: rawHeadersWithout(req.rawHeaders, HOP),
      setHost: false,
    });
    up.on('response', async (ur) => {
      if (delay) await sleep(delay);
      if (res.destroyed) return ur.resume();
      entry.status = ur.statusCode;
      res.writeHead(ur.statusCode, ur.statusMessage, rawHeadersWithout(ur.rawHeaders, HOP));
      ur.pipe(res);
    });
    up.on('error', (e) => {
      // The target is down (e.g. stopped mid-push): answer like a gateway would, with CORS.
      if (res.headersSent) return res.destroy();
      fail(req, res, 502, entry);
    });
    req.pipe(up);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port || 0, '127.0.0.1', resolve);
  });
  server.unref();
  const url = `http://127.0.0.1:${server.address().port}`;

  return {
    url,
    counts,
    requests,
    get mode() {
      return state.mode;
    },
    /**
     * mode: 'pass' | 'error500' | 'error503' | 'slow' | 'down' | 'hang' | 'huge'; options { delayMs } for
     * 'slow', { hugeBytes, declareLength } for 'huge'.
     */
    setMode(mode, { delayMs, hugeBytes, declareLength } = {}) {
      if (!['pass', 'error500', 'error503', 'slow', 'down', 'hang', 'huge'].includes(mode)) throw new Error(`unknown mode ${mode}`);
      state.mode = mode;
      if (delayMs != null) state.delayMs = delayMs;
      if (hugeBytes != null) state.hugeBytes = hugeBytes;
      if (declareLength != null) state.declareLength = declareLength;
      // A crashed server also drops the keep-alive connections clients hold.
      if (mode === 'down') for (const s of sockets) s.destroy();
    },
    /**
     * Fail the next n requests whose method matches (a string, an array, or any method but
     * preflights when omitted) with status; status 0 destroys the connection instead of answering.
     */
    failNext(n, status = 500, method, message) {
      const methods = method == null ? null : [].concat(method).map((m) => m.toUpperCase());
      state.failQueue.push({ left: n, status, methods, message });
    },
    resetCounts() {
      for (const k of Object.keys(counts)) delete counts[k];
      requests.length = 0;
    },
    stop() {
      return new Promise((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
    },
  };
}
