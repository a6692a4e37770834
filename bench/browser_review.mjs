#!/usr/bin/env node
// Review mode's pace as the reviewer sees it: from a click on "Approve" to the next image in review ready
// (its picture loaded and its labels drawn, at the next frame), with `--instances` labels on every image,
// side by side with the baseline of plain "next image" (▶) on the same images. Prints figures; asserts
// nothing.
//
// Usage: node bench/browser_review.mjs [--instances 300] [--rounds 2] [--json]
// Needs: dist/ (bash scripts/build-web --dist for the deployed build), tools/ npm packages, pycocotools.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { startServer, launchBrowser, ROOT } from '../tests/e2e/harness.mjs';

const argv = process.argv.slice(2);
const opt = (name, dflt) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : dflt);
const crowd = Number(opt('--instances', 300));
const rounds = Number(opt('--rounds', 2));
const json = argv.includes('--json');
const bundle = path.join(ROOT, `target/bench/review${crowd}.json`);
execFileSync('python3', [path.join(ROOT, 'bench/crowd_bundle.py'), '--onto', path.join(ROOT, 'dist/demo/bundle.json'), bundle, String(crowd)]);

const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : NaN;
};

/** In the page: clicks `selector` and resolves to the ms until the next image is ready on screen. */
function timeToNextImage(selector) {
  const q = (id) => document.querySelector(`[data-testid="${id}"]`);
  const before = q('position').textContent;
  const t0 = performance.now();
  document.querySelector(selector).click();
  return new Promise((resolve, reject) => {
    const give_up = t0 + 10_000;
    const check = () => {
      const img = q('image');
      const ready = q('position').textContent !== before && Number(q('instance-count').textContent) > 0
        && img && img.complete && img.naturalWidth > 0;
      if (ready) resolve(performance.now() - t0);
      else if (performance.now() > give_up) reject(new Error(`no next image after ${selector}`));
      else requestAnimationFrame(check);
    };
    requestAnimationFrame(check);
  });
}

const server = await startServer();
const browser = await launchBrowser();
const samples = { approve: [], next: [] };
try {
  for (let r = 0; r < rounds; r++) {
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    await context.route('**/demo/bundle.json', (route) => route.fulfill({ path: bundle }));
    const page = await context.newPage();
    await page.goto(server.url);
    const text = (id) => page.evaluate((id) => document.querySelector(`[data-testid="${id}"]`)?.textContent.trim() ?? null, id);
    const waitFor = async (read, ok, what) => {
      const end = Date.now() + 120_000;
      for (let v = await read(); !ok(v); v = await read()) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what} (last ${v})`);
        await new Promise((res) => setTimeout(res, 50));
      }
    };
    await waitFor(() => text('stage-in_review'), (v) => /12$/.test(v || ''), '12 images in review');
    await waitFor(() => text('instance-count'), (v) => Number(v) >= crowd, `${crowd} labels on the first image`);
    await page.fill('input.author', 'bench');
    await page.locator('input.author').dispatchEvent('change');
    // Baseline: ▶ through every image of the project.
    for (let i = 0; i < 11; i++) samples.next.push(await page.evaluate(timeToNextImage, 'button[title^="Next image"]'));
    // Review mode from the first image: approve, and the next image in review comes up.
    await page.locator('[data-testid=stage-all]').click();
    await page.evaluate(() => document.querySelector('[data-testid=image-row]').click());
    await waitFor(() => text('position'), (v) => v === '1 / 12', 'the first image');
    await page.locator('[data-testid=start-review]').click();
    for (let i = 0; i < 11; i++) samples.approve.push(await page.evaluate(timeToNextImage, '[data-testid=approve]'));
    await waitFor(() => text('stage-done'), (v) => /11$/.test(v || ''), '11 approved');
    await context.close();
  }
} finally {
  await browser.close();
  await server.stop();
}
const stats = (xs) => ({ n: xs.length, p50_ms: quantile(xs, 0.5), p95_ms: quantile(xs, 0.95) });
const out = { instances_per_image: crowd, approve_to_next: stats(samples.approve), next_image: stats(samples.next) };
out.ratio_p50 = out.approve_to_next.p50_ms / out.next_image.p50_ms;
if (json) console.log(JSON.stringify(out));
else {
  console.log(`approve → next image ready (${crowd} labels): p50 ${out.approve_to_next.p50_ms.toFixed(1)} ms, p95 ${out.approve_to_next.p95_ms.toFixed(1)} ms (n ${out.approve_to_next.n})`);
  console.log(`next image (▶, baseline):           p50 ${out.next_image.p50_ms.toFixed(1)} ms, p95 ${out.next_image.p95_ms.toFixed(1)} ms (n ${out.next_image.n})`);
  console.log(`ratio p50 (approve / next): ${out.ratio_p50.toFixed(2)}`);
}
