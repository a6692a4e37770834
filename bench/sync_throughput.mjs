#!/usr/bin/env node
// `lamina sync` throughput against real servers on this machine: Garage (S3) and nginx (WebDAV-style),
// started fresh in a temporary folder. Publishes a batch of nuinsseg-train tiles (JPEG), pushes one
// labeler's labels for every image, pulls them back, and prints the CLI's own figures (its --json
// report: seconds, requests, bytes) per endpoint. Prints figures; asserts only that the pull got back
// every label.
//
// Usage: node bench/sync_throughput.mjs [--images N] [--runs R] [--data DIR] [--json]
//   --images  batch size (500); --runs  repeats, each with a fresh batch id; the median is printed (1)
//   LAMINA_CLI=path picks the binary; otherwise target/release/lamina when it is newer than every
//   source file of the CLI and its crates, else target/debug/lamina (the output says which).
// Needs what tests/sync/servers.mjs needs: garage 2.5.0, Debian nginx, python3 with boto3.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startGarage, startDav, runJson } from '../tests/sync/servers.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const opt = (name, dflt) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : dflt);
const images = Number(opt('--images', 500));
const runs = Number(opt('--runs', 1));
const data = path.resolve(root, opt('--data', '../shared/data/nuinsseg-train'));
const asJson = argv.includes('--json');

// ---- which binary ----------------------------------------------------------------------------

function newestSource() {
  let newest = 0;
  const walk = (dir) => {
    for (const d of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, d.name);
      if (d.isDirectory()) walk(p);
      else newest = Math.max(newest, fs.statSync(p).mtimeMs);
    }
  };
  for (const c of ['lamina-cli', 'lamina-sync', 'lamina-core']) {
    walk(path.join(root, 'crates', c, 'src'));
    newest = Math.max(newest, fs.statSync(path.join(root, 'crates', c, 'Cargo.toml')).mtimeMs);
  }
  return newest;
}

function pickCli() {
  if (process.env.LAMINA_CLI) return { cli: process.env.LAMINA_CLI, build: 'LAMINA_CLI' };
  const release = path.join(root, 'target/release/lamina');
  const debug = path.join(root, 'target/debug/lamina');
  if (fs.existsSync(release) && fs.statSync(release).mtimeMs > newestSource()) return { cli: release, build: 'release' };
  if (!fs.existsSync(debug)) throw new Error('no CLI: cargo build -p lamina-cli (or --release)');
  const why = fs.existsSync(release) ? 'target/release/lamina is older than the sources' : 'no target/release/lamina';
  return { cli: debug, build: `debug (${why})` };
}
const { cli, build } = pickCli();

/** Runs `lamina --json ...args`; resolves to its report and the wall time (process start included). */
async function lamina(args) {
  const { code, stdout, stderr, wall } = await runJson(cli, args);
  if (code !== 0) throw new Error(`lamina ${args.join(' ')} failed (${code}):\n${stderr}`);
  return { ...JSON.parse(stdout), wall };
}

// ---- run ---------------------------------------------------------------------------------------

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lamina-sync-bench-'));
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function main() {
  const token = 'bench-token';
  const [garage, dav] = await Promise.all([
    startGarage({ dir: path.join(tmp, 'garage') }),
    startDav({ dir: path.join(tmp, 'dav'), token }),
  ]);
  try {
    const bundle = path.join(tmp, 'labels.json');
    const imported = await lamina(['import-masks', data, '--limit', String(images), '--out', bundle]);
    if (imported.assets !== images) throw new Error(`${data} has ${imported.assets} tiles, not ${images}`);
    const endpoints = {
      'Garage (S3)': ['--endpoint', garage.endpoint, '--bucket', garage.bucket, '--region', garage.region,
        '--access-key', garage.accessKey, '--secret-key', garage.secretKey],
      'nginx (WebDAV)': ['--endpoint', dav.url, '--token', token],
    };
    const results = [];
    for (const [name, flags] of Object.entries(endpoints)) {
      const samples = { publish: [], push: [], pull: [] };
      for (let run = 0; run < runs; run++) {
        const batch = `bench-${run}`;
        const publish = await lamina(['sync', 'publish', ...flags, '--batch', batch, data, '--limit', String(images), '--ontology', bundle]);
        const push = await lamina(['sync', 'push', ...flags, '--batch', batch, '--labeler', 'bench', bundle]);
        const pull = await lamina(['sync', 'pull', ...flags, '--batch', batch, '--out', path.join(tmp, `pulled-${run}.json`)]);
        if (pull.labeled !== images || pull.instances !== imported.instances || pull.problems.length || pull.conflicts.length) {
          throw new Error(`${name}: the pull did not give back every label: ${JSON.stringify(pull)}`);
        }
        samples.publish.push({ seconds: publish.seconds, wall: publish.wall, requests: publish.requests, bytes: publish.bytes });
        samples.push.push({ seconds: push.seconds, wall: push.wall, requests: push.requests, bytes: push.transferred });
        samples.pull.push({ seconds: pull.seconds, wall: pull.wall, requests: pull.requests, bytes: pull.bytes });
      }
      for (const [step, list] of Object.entries(samples)) {
        const m = (k) => median(list.map((s) => s[k]));
        results.push({ endpoint: name, step, images, seconds: m('seconds'), wall: m('wall'), requests: m('requests'), bytes: m('bytes') });
      }
    }
    const load = os.loadavg().map((x) => x.toFixed(2)).join(' ');
    if (asJson) {
      console.log(JSON.stringify({ cli, build, images, runs, instances: imported.instances, cores: os.cpus().length, load, results }, null, 2));
      return;
    }
    console.log(`lamina sync throughput: ${images} images of ${path.basename(data)}, ${imported.instances} labels, ` +
      `${runs} run(s)${runs > 1 ? ' (median)' : ''}`);
    console.log(`CLI: ${path.relative(root, cli) || cli}, ${build}; ${os.cpus().length} cores, load ${load}; ` +
      'servers on 127.0.0.1 (fresh Garage 2.5.0 single node, Debian nginx)');
    console.log('s = the CLI\'s own figure (requests and bodies); wall = the process, start-up included\n');
    console.log('| endpoint | step | s | wall s | images/s | requests | MB moved | MB/s |');
    console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const r of results) {
      const mb = r.bytes / 1e6;
      console.log(`| ${r.endpoint} | ${r.step} | ${r.seconds.toFixed(2)} | ${r.wall.toFixed(2)} | ${(r.images / r.seconds).toFixed(0)} | ` +
        `${r.requests} | ${mb.toFixed(1)} | ${(mb / r.seconds).toFixed(1)} |`);
    }
  } finally {
    await garage.stop();
    await dav.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e.stack || String(e));
  process.exitCode = 1;
});
