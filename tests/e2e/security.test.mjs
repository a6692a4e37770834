// The page's Content-Security-Policy is in force (an injected inline script does not run, and the page
// reports it), and the server sends the security headers docs/security.md asks hosts to send.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { suite } from './harness.mjs';

const env = suite();
before(env.setup);
after(env.teardown);

test('an injected inline script or event handler does not run, and the policy reports it', async (t) => {
  const { page } = await env.open(t);
  const ran = await page.evaluate(async () => {
    const s = document.createElement('script');
    s.textContent = 'window.__injected = 1';
    document.body.append(s);
    const img = document.createElement('img');
    img.setAttribute('onerror', 'window.__injected = 2');
    img.src = 'data:,not-an-image';
    document.body.append(img);
    await new Promise((r) => setTimeout(r, 200));
    return window.__injected ?? null;
  });
  assert.equal(ran, null, 'no injected code ran');
  const reported = await page.evaluate(() => window.__cspViolations);
  assert.ok(reported.some((v) => /script-src/.test(v)), `violations reported: ${reported}`);
});

test('the server sends the security headers with the page and the worker', async () => {
  for (const file of ['', 'worker.js']) {
    const res = await fetch(env.server.url + file);
    const csp = res.headers.get('content-security-policy') || '';
    for (const directive of ["script-src 'self' 'wasm-unsafe-eval'", "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'", "worker-src 'self'"]) {
      assert.ok(csp.includes(directive), `${file || 'index'}: ${directive} in ${csp}`);
    }
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(res.headers.get('referrer-policy'), 'no-referrer');
  }
});
