import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startHmas, launchBrowser, newPage, shot, signIn, hydrated, ADMIN_PASSWORD } from './harness.mjs';

let hmas, b;
// Model servers write 8 tokens a second: slow enough to see an answer stream and to stop one.
before(async () => {
  hmas = await startHmas({ env: { HMAS_SIM_TIME_SCALE: '0.01', HMAS_SIM_TOKENS_PER_SECOND: '8' } });
  b = await launchBrowser();
});
after(async () => { await b?.close(); await hmas?.stop(); });

async function deployByApi(page) {
  const kubeconfig = readFileSync(join(hmas.dataDir, 'sim', 'gpu-general.kubeconfig'), 'utf8');
  let r = await page.request.post('/api/clusters/register', {
    data: { name: 'gpu-general', zone_class: 'b', access: { kind: 'kubeconfig', kubeconfig } },
  });
  assert.equal(r.status(), 200, await r.text());
  for (let i = 0; ; i++) {
    r = await page.request.post('/api/deployments/create', {
      data: { spec: { model: 'llama3.2:1b', runtime: 'ollama', replicas: 1, gpus_per_replica: 1, clusters: ['gpu-general'] } },
    });
    if (r.status() === 200) break;
    // The cluster turns ready a moment after it registers.
    assert.ok(i < 50, await r.text());
    await new Promise((res) => setTimeout(res, 200));
  }
  for (let i = 0; ; i++) {
    const models = await (await page.request.post('/api/playground/models', { data: {} })).json();
    if (models.some((m) => m.ready)) return;
    assert.ok(i < 150, JSON.stringify(models));
    await new Promise((res) => setTimeout(res, 200));
  }
}

test('create a key (shown once), chat in the playground with a streamed answer, stop an answer', async () => {
  const context = await b.browser.newContext({ baseURL: hmas.base, viewport: { width: 1280, height: 900 } });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: hmas.base });
  const page = await newPage(b.browser, hmas.base, context);
  await signIn(page, 'admin', ADMIN_PASSWORD);
  await page.click('.sidebar nav a[href="/keys"]');
  await page.waitForSelector('text=No API keys yet');
  await page.waitForSelector(`[data-testid=base-url]:has-text("${hmas.base}/v1")`);
  await shot(page, 'keys-empty');
  await deployByApi(page);

  // A refused form says which field, and creates nothing.
  await page.click('button:has-text("New key")');
  await page.click('[role=dialog] button[type=submit]');
  await page.waitForSelector('[role=dialog] .field-error:has-text("is required")');
  await page.fill('#f-name', 'support bot');
  await page.check('[role=dialog] input[name=scope] >> nth=1');
  await page.check('[role=dialog] input[type=checkbox][value="llama3-2-1b"]');
  await page.fill('#f-rpm', '0');
  await page.click('[role=dialog] button[type=submit]');
  await page.waitForSelector('[role=dialog] .field-error:has-text("must be at least 1")');
  await page.fill('#f-rpm', '120');
  await shot(page, 'keys-new');
  await page.click('[role=dialog] button[type=submit]');

  // Shown once, copied with its button, and it works.
  await page.waitForSelector('[data-testid=new-key-secret]');
  const secret = (await page.textContent('[data-testid=new-key-secret]')).trim();
  assert.match(secret, /^hmas-[A-Za-z0-9]{40}$/);
  await page.click('[role=dialog] button:has-text("Copy")');
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret);
  await shot(page, 'keys-created');
  await page.click('[role=dialog] button:has-text("I have copied it")');
  await page.waitForSelector('[data-key="support bot"] >> text=llama3-2-1b');
  assert.ok(!(await page.content()).includes(secret), 'the secret is not on the page any more');
  const r = await fetch(`${hmas.base}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'llama3.2:1b', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 4 }),
  });
  assert.equal(r.status, 200, await r.text());

  // The playground streams an answer and says how fast it came.
  await page.click('.sidebar nav a[href="/playground"]');
  await hydrated(page);
  await page.waitForSelector('#pg-model');
  assert.match(await page.textContent('#pg-model'), /llama3\.2:1b/);
  await page.fill('#pg-max', '12');
  await page.fill('[data-testid=prompt]', 'Say hello');
  await page.keyboard.press('Enter');
  await page.waitForSelector('[data-testid=msg-user]:has-text("Say hello")');
  // Part of the answer is on screen while the rest is still being written.
  await page.waitForFunction(() => {
    const m = document.querySelector('[data-testid=msg-assistant] .msg-text');
    return m && m.textContent.startsWith('Hello from') && document.querySelector('[data-testid=msg-assistant] .caret');
  });
  await shot(page, 'playground-streaming');
  await page.waitForSelector('[data-testid=msg-meta]:has-text("tokens/s")', { timeout: 15_000 });
  const meta = await page.textContent('[data-testid=msg-meta]');
  assert.match(meta, /TTFT \d+ ms · [\d.]+ tokens\/s · 12 tokens/);
  assert.equal((await page.textContent('[data-testid=msg-assistant] .msg-text')).trim().split(/\s+/).length, 12);

  // Stop: the answer ends where it was, and the gateway logs the request as cancelled.
  await page.fill('#pg-max', '400');
  await page.fill('[data-testid=prompt]', 'Tell me a long story about clusters');
  await page.click('[data-testid=send]');
  await page.waitForFunction(() => document.querySelectorAll('[data-testid=msg-assistant] .msg-text')[1]?.textContent.split(' ').length > 3);
  await page.click('[data-testid=stop]');
  await page.waitForSelector('[data-testid=msg-assistant] >> nth=1 >> [data-testid=msg-meta]:has-text("stopped")');
  const stoppedAt = await page.textContent('[data-testid=msg-assistant] >> nth=1 >> .msg-text');
  await new Promise((res) => setTimeout(res, 600));
  assert.equal(await page.textContent('[data-testid=msg-assistant] >> nth=1 >> .msg-text'), stoppedAt, 'nothing arrives after Stop');
  await page.waitForSelector('[data-testid=send]');
  await shot(page, 'playground-stopped');

  // The keys page shows the traffic: charts and the log with the cancelled stream.
  await page.click('.sidebar nav a[href="/keys"]');
  await page.waitForSelector('[data-testid=chart-requests] svg rect');
  await page.waitForSelector('[data-testid=requests-table] >> text=cancelled', { timeout: 10_000 });
  await shot(page, 'keys-usage');

  // The overview charts the same traffic.
  await page.click('.sidebar nav a[href="/"]');
  await page.waitForSelector('[data-testid=chart-requests] svg rect');
  await page.waitForSelector('[data-testid=chart-tokens] svg rect');
  assert.equal(await page.locator('text=By deployment').count(), 0, 'the overview keeps to the charts');
  await shot(page, 'overview-traffic');
  await page.click('.sidebar nav a[href="/keys"]');

  // Revoke: confirmed, then refused by the gateway.
  await page.click('[data-key="support bot"] button:has-text("Revoke")');
  await page.click('[role=dialog] button:has-text("Revoke key")');
  await page.waitForSelector('[data-key="support bot"] >> text=Revoked');
  const again = await fetch(`${hmas.base}/v1/models`, { headers: { authorization: `Bearer ${secret}` } });
  assert.equal(again.status, 401);
  assert.deepEqual(page.errors, []);
  await context.close();
});
