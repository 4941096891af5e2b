import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { startHmas, launchBrowser, newPage, shot, signIn, ADMIN_PASSWORD } from './harness.mjs';

let hmas, b;
before(async () => { hmas = await startHmas(); b = await launchBrowser(); });
after(async () => { await b?.close(); await hmas?.stop(); });

async function register(page, member, display, zoneClass, file) {
  await page.click('button:has-text("Register cluster")');
  await page.waitForSelector('[role=dialog]');
  await page.fill('#f-display_name', display);
  await page.fill('#f-name', member);
  await page.selectOption('#f-zone_class', zoneClass);
  await page.fill('#f-region', 'us-east');
  await page.setInputFiles('#f-kubeconfig-file', file);
  await page.waitForFunction(() => document.querySelector('#f-kubeconfig').value.includes('apiVersion'));
}

test('register each simulated member from its kubeconfig, see it Ready, open it, release it', async () => {
  const page = await newPage(b.browser, hmas.base);
  await signIn(page, 'admin', ADMIN_PASSWORD);
  await page.click('.sidebar nav a[href="/clusters"]');
  await page.waitForSelector('text=No clusters registered yet');
  await shot(page, 'clusters-empty');

  // A kubeconfig with the wrong token: the error says so next to the field, nothing is registered.
  const good = join(hmas.dataDir, 'sim', 'edge-cpu.kubeconfig');
  const bad = join(hmas.dataDir, 'wrong.kubeconfig');
  const { readFileSync } = await import('node:fs');
  writeFileSync(bad, readFileSync(good, 'utf8').replace(/token: .*/, 'token: wrong-token'));
  await register(page, 'edge-cpu', 'Edge', 'b', bad);
  await page.click('[role=dialog] button[type=submit]');
  await page.waitForSelector('#f-kubeconfig-error:has-text("401 Unauthorized")');
  await shot(page, 'clusters-register-refused');
  await page.keyboard.press('Escape');

  const members = [['gpu-hpc', 'HPC East', 'a'], ['gpu-general', 'General West', 'b'], ['edge-cpu', 'Edge Frankfurt', 'b']];
  for (const [member, display, zone] of members) {
    const file = join(hmas.dataDir, 'sim', `${member}.kubeconfig`);
    await register(page, member, display, zone, file);
    if (member === 'gpu-hpc') await shot(page, 'clusters-register');
    await page.click('[role=dialog] button[type=submit]');
    await page.waitForSelector(`[data-cluster="${member}"]`, { timeout: 20_000 });
    assert.equal(await page.$('[role=dialog]'), null);
  }
  for (const [member] of members) {
    await page.waitForSelector(`[data-cluster="${member}"] [data-testid=phase]:has-text("Ready")`, { timeout: 20_000 });
  }
  const hpc = await page.textContent('[data-cluster="gpu-hpc"]');
  assert.match(hpc, /16 × NVIDIA-H100-80GB-HBM3 · 80 GB · NVLink · MIG/);
  assert.match(hpc, /4 × NVIDIA-A100-SXM4-80GB/);
  assert.match(hpc, /0 of 20 GPUs in use/);
  assert.match(await page.textContent('[data-cluster="edge-cpu"]'), /No GPUs/);
  await shot(page, 'clusters');

  await page.click('[data-cluster="gpu-general"]');
  await page.waitForSelector('[data-testid=nodes]');
  assert.equal(await page.locator('[data-testid=nodes] tbody tr').count(), 4);
  assert.match(await page.textContent('[data-testid=nodes]'), /4 × Tesla-T4/);
  assert.match(await page.textContent('main'), /Ready True/);
  await shot(page, 'cluster-detail');

  await page.click('button:has-text("Release…")');
  await page.waitForSelector('[role=dialog] >> text=deletes its Cluster object');
  const confirm = page.locator('[role=dialog] button:has-text("Release cluster")');
  assert.equal(await confirm.isDisabled(), true, 'needs the name typed');
  await page.fill('#f-confirm', 'gpu-general');
  await shot(page, 'cluster-release');
  await confirm.click();
  await page.waitForURL('**/clusters');
  await page.waitForSelector('[data-cluster="gpu-hpc"]');
  assert.equal(await page.$('[data-cluster="gpu-general"]'), null);
  assert.deepEqual(page.errors, []);
  await page.context().close();
});
