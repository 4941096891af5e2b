import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHmas, launchBrowser, newPage, hydrated, signIn, ADMIN_PASSWORD } from './harness.mjs';

const ROUTES = ['/', '/clusters', '/deployments', '/policies',
  '/playground', '/keys', '/users'];
// The overview's first load, once the bundle is split by route.
const OVERVIEW_WASM_TARGET = 400 * 1024;

let hmas, b, signedIn;
before(async () => {
  hmas = await startHmas();
  b = await launchBrowser();
  const page = await newPage(b.browser, hmas.base);
  await signIn(page, 'admin', ADMIN_PASSWORD);
  signedIn = await page.context().storageState();
  await page.context().close();
});
after(async () => { await b?.close(); await hmas?.stop(); });

/// A fresh context (empty cache) signed in, with the moment of hydration recorded by the page.
async function coldPage() {
  const context = await b.browser.newContext({ baseURL: hmas.base, storageState: signedIn,
    viewport: { width: 1280, height: 800 } });
  await context.addInitScript(() => {
    new MutationObserver((_, obs) => {
      if (document.documentElement.dataset.hydrated === 'true') { window.__hydratedAt = performance.now(); obs.disconnect(); }
    }).observe(document, { attributes: true, subtree: true });
  });
  return newPage(b.browser, hmas.base, context);
}

/// Bytes on the wire (compressed, with headers) per kind, from the page's resource timings.
function transferred(page) {
  return page.evaluate(() => {
    const sum = { wasm: 0, js: 0, css: 0, wasmBody: 0 };
    for (const e of performance.getEntriesByType('resource')) {
      const kind = new URL(e.name).pathname.match(/\.(wasm|js|css)$/)?.[1];
      if (kind) sum[kind] += e.transferSize;
      if (kind === 'wasm') sum.wasmBody += e.encodedBodySize;
    }
    return { ...sum, hydratedMs: window.__hydratedAt };
  });
}

test('every route loads directly (twice, cold), hydrates, and the server does not panic', async () => {
  const kib = (n) => (n / 1024).toFixed(1).padStart(8);
  const rows = [];
  for (const route of ROUTES) {
    for (let i = 0; i < 2; i++) {
      const page = await coldPage();
      const res = await page.goto(route);
      await hydrated(page).catch((e) => { throw new Error(`${route}: ${e.message}; browser errors: ${page.errors.join('; ')}`); });
      assert.ok(res.status() === 200 || res.status() === 404, `${route}: HTTP ${res.status()}`);
      const t = await transferred(page);
      assert.ok(t.wasm > 0, `${route}: the wasm came from the network`);
      if (i === 0) rows.push({ route, ...t });
      assert.deepEqual(page.errors, [], `${route}: no error in the browser`);
      await page.context().close();
    }
  }
  console.log('\n  cold load, transferred (compressed)    wasm KiB   js KiB  css KiB  hydrated ms');
  for (const r of rows) {
    console.log(`  ${r.route.padEnd(36)}${kib(r.wasm)} ${kib(r.js)} ${kib(r.css)} ${String(Math.round(r.hydratedMs)).padStart(11)}`);
  }
  const overview = rows.find((r) => r.route === '/');
  const met = overview.wasmBody <= OVERVIEW_WASM_TARGET;
  console.log(`  ${met ? 'met   ' : 'MISSED'} overview wasm <= ${OVERVIEW_WASM_TARGET / 1024} KiB compressed: ${kib(overview.wasmBody).trim()} KiB\n`);
  const panics = hmas.log.filter((l) => /panicked/.test(l));
  assert.deepEqual(panics, [], 'the server log has no panic');
});

test('the bundle is sent compressed and kept; a page revalidates with a 304', async () => {
  const page = await coldPage();
  const responses = [];
  page.on('response', (r) => responses.push(r));
  await page.goto('/');
  await hydrated(page);
  const wasm = responses.find((r) => r.url().endsWith('.wasm'));
  const headers = await wasm.allHeaders();
  assert.match(headers['content-encoding'] ?? '', /^(br|gzip)$/);
  assert.match(headers['cache-control'], /immutable/);
  assert.match(new URL(wasm.url()).pathname, /^\/pkg\/hmas\.[0-9a-f]{16}_bg\.wasm$/, 'the name carries the content hash');
  const doc = responses.find((r) => r.request().resourceType() === 'document');
  const etag = (await doc.allHeaders()).etag;
  assert.ok(etag, 'the page has an ETag');

  // A page that has not changed is revalidated without its body (the sign-in page: the same for
  // everyone; a signed-in page changes with what it shows).
  const first = await page.request.get('/login', { headers: { cookie: '' } });
  const tag = first.headers().etag;
  const again = await page.request.get('/login', { headers: { 'If-None-Match': tag, cookie: '' } });
  assert.equal(again.status(), 304);
  // Loaded again: the bundle comes from the cache without asking.
  responses.length = 0;
  await page.reload();
  await hydrated(page);
  const t = await transferred(page);
  assert.equal(t.wasm, 0, 'the wasm is not downloaded again');
  assert.deepEqual(page.errors, []);
  await page.context().close();
});
