import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startHmas, launchBrowser, newPage, shot, signIn, ADMIN_PASSWORD } from './harness.mjs';

let hmas, b;
// Half real time: image pulls take 10 s, llama3.2:1b downloads in 2.6 s, slow enough to watch.
before(async () => { hmas = await startHmas({ env: { HMAS_SIM_TIME_SCALE: '0.5' } }); b = await launchBrowser(); });
after(async () => { await b?.close(); await hmas?.stop(); });

async function registerByApi(page, member) {
  const kubeconfig = readFileSync(join(hmas.dataDir, 'sim', `${member}.kubeconfig`), 'utf8');
  const r = await page.request.post('/api/clusters/register', {
    data: { name: member, zone_class: 'b', access: { kind: 'kubeconfig', kubeconfig } },
  });
  assert.equal(r.status(), 200, await r.text());
}

/// Copies the curl example with its button, runs it with a new API key, and returns the model's answer.
async function copyAndRunCurl(page) {
  await page.click('[data-testid=endpoint] button:has-text("Copy")');
  await page.waitForSelector('[data-testid=endpoint] button:has-text("Copied")');
  const curl = await page.evaluate(() => navigator.clipboard.readText());
  // The gateway's address with a key, never the member's NodePort.
  assert.match(curl, new RegExp(`^curl -s ${hmas.base}/v1/chat/completions`));
  assert.match(curl, /Authorization: Bearer \$HMAS_API_KEY/);
  const r = await page.request.post('/api/keys/create', { data: { input: { name: `curl-${Date.now()}` } } });
  assert.equal(r.status(), 200, await r.text());
  const { secret } = await r.json();
  const out = execFileSync('sh', ['-c', curl], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, HMAS_API_KEY: secret } });
  return JSON.parse(out).choices[0].message.content;
}

async function deleteFromDetail(page, name) {
  await page.click('button:has-text("Delete…")');
  await page.waitForSelector('[role=dialog] >> text=withdraws their copies');
  await page.click('[role=dialog] button:has-text("Delete deployment")');
  await page.waitForURL('**/deployments');
  await page.waitForFunction((n) => !document.querySelector(`[data-deployment="${n}"]`), name);
}

test('deploy llama3.2:1b on Ollama and a vLLM model, watch them come up, ask them, delete them', async () => {
  const context = await b.browser.newContext({ baseURL: hmas.base, viewport: { width: 1280, height: 860 } });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: hmas.base });
  const page = await newPage(b.browser, hmas.base, context);
  await signIn(page, 'admin', ADMIN_PASSWORD);
  await registerByApi(page, 'gpu-general');

  await page.click('.sidebar nav a[href="/deployments"]');
  await page.waitForSelector('text=No models deployed yet');
  await shot(page, 'deployments-empty');

  // Ollama: the form's defaults, one cluster ticked.
  await page.click('button:has-text("Deploy model")');
  await page.waitForSelector('[role=dialog] [data-runtime=ollama][aria-checked=true]');
  assert.equal(await page.inputValue('#f-model'), 'llama3.2:1b');
  assert.equal(await page.inputValue('#f-name'), 'llama3-2-1b');
  // Nothing chosen yet: the form says where the problem is, and nothing is sent.
  await page.click('[role=dialog] button[type=submit]');
  await page.waitForSelector('[role=dialog] .field-error:has-text("at least one cluster")');
  await page.check('[data-cluster="gpu-general"]');
  await page.waitForSelector('[role=dialog] .field-error:has-text("at least one cluster")', { state: 'detached' });
  assert.match(await page.textContent('[data-testid=command-preview]'), /ollama serve/);
  await shot(page, 'deploy-sheet-ollama');
  await page.click('[role=dialog] button[type=submit]');
  await page.waitForURL('**/deployments/llama3-2-1b');

  // Pulling the image, then the download with its progress bar, then Running.
  await page.waitForSelector('[data-testid=download] [role=progressbar]', { timeout: 30_000 });
  await shot(page, 'deployment-downloading');
  const pct = Number(await page.getAttribute('[data-testid=download] [role=progressbar]', 'aria-valuenow'));
  assert.ok(pct >= 0 && pct < 100, `progress ${pct}`);
  await page.waitForSelector('.page-header [data-phase=running]', { timeout: 40_000 });
  await page.waitForSelector('[data-testid=endpoint-url]');

  assert.match(await page.textContent('[data-testid=events]'), /DownloadingModel/);
  await shot(page, 'deployment-running');
  const answer = await copyAndRunCurl(page);
  assert.match(answer, /Hello from llama3\.2:1b/);

  // The list shows it running, and finds it by search.
  await page.click('.crumbs a[href="/deployments"]');
  await page.waitForSelector('[data-deployment="llama3-2-1b"] [data-phase=running]');
  await page.fill('.search', 'qwen');
  await page.waitForSelector('text=Nothing matches');
  await page.fill('.search', 'llama');
  await page.waitForSelector('[data-deployment="llama3-2-1b"]');
  await shot(page, 'deployments-list');

  // vLLM: pick the runtime, a wrong setting is caught as it is typed, the command follows.
  await page.click('button:has-text("Deploy model")');
  await page.click('[role=dialog] [data-runtime=vllm]');
  assert.equal(await page.inputValue('#f-model'), 'Qwen/Qwen2.5-1.5B-Instruct');
  await page.check('[data-cluster="gpu-general"]');
  await page.click('summary:has-text("Advanced settings for vLLM")');
  await page.fill('#f-settings-gpu_memory_utilization', '1.5');
  await page.waitForSelector('.field-error:has-text("must be a number from 0.1 to 0.99")');
  await shot(page, 'deploy-sheet-vllm-invalid');
  await page.fill('#f-settings-gpu_memory_utilization', '0.85');
  await page.waitForFunction(() => document.querySelector('[data-testid=command-preview]').textContent.includes('--gpu-memory-utilization 0.85'));
  assert.match(await page.textContent('[data-testid=command-preview]'), /^vllm serve Qwen\/Qwen2\.5-1\.5B-Instruct --host 0\.0\.0\.0 --port 8000/);
  await page.click('[role=dialog] button[type=submit]');
  await page.waitForURL('**/deployments/qwen2-5-1-5b-instruct');
  await page.waitForSelector('.page-header [data-phase=running]', { timeout: 40_000 });
  const vllm = await copyAndRunCurl(page);
  assert.match(vllm, /Hello from Qwen\/Qwen2\.5-1\.5B-Instruct/);
  await shot(page, 'deployment-vllm-running');

  // The overview: the fleet's figures, nothing needing attention, both deployments listed.
  await page.click('.sidebar nav a[href="/"]');
  await page.waitForSelector('[data-testid=overview-deployments] [data-deployment="qwen2-5-1-5b-instruct"] [data-phase=running]');
  assert.equal((await page.textContent('[data-testid=stat-clusters] .stat-value')).trim(), '1 / 1');
  assert.equal((await page.textContent('[data-testid=stat-running] .stat-value')).trim(), '2');
  assert.equal((await page.textContent('[data-testid=stat-attention] .stat-value')).trim(), '0');
  assert.match(await page.textContent('[data-testid=attention]'), /All clear/);
  assert.equal(await page.locator('[data-testid=first-steps]').count(), 0, 'no first steps once there is a fleet');
  await page.waitForSelector('[data-testid=overview-clusters] [role=meter]');
  await shot(page, 'overview-fleet');
  await page.click('[data-testid=overview-deployments] a[href="/deployments/qwen2-5-1-5b-instruct"]');

  await deleteFromDetail(page, 'qwen2-5-1-5b-instruct');
  await page.click('[data-deployment="llama3-2-1b"] a');
  await page.waitForSelector('.page-header [data-phase=running]');
  await deleteFromDetail(page, 'llama3-2-1b');
  await page.fill('.search', '');
  await page.waitForSelector('text=No models deployed yet');
  assert.deepEqual(page.errors, []);
  await context.close();
});
