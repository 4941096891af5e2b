import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startHmas, launchBrowser, newPage, shot, signIn, hydrated, ADMIN_PASSWORD } from './harness.mjs';

let hmas, b;
before(async () => { hmas = await startHmas({ env: { HMAS_SIM_TIME_SCALE: '0.1' } }); b = await launchBrowser(); });
after(async () => { await b?.close(); await hmas?.stop(); });

async function register(page, member, zone) {
  const kubeconfig = readFileSync(join(hmas.dataDir, 'sim', `${member}.kubeconfig`), 'utf8');
  const r = await page.request.post('/api/clusters/register', {
    data: { name: member, zone_class: zone, access: { kind: 'kubeconfig', kubeconfig } },
  });
  assert.equal(r.status(), 200, await r.text());
}

const card = (name) => `[data-policy="${name}"]`;

test('policies: default set, edits with warnings, blocked delete, deploy by strategy, failover drill', async () => {
  const page = await newPage(b.browser, hmas.base);
  await signIn(page, 'admin', ADMIN_PASSWORD);
  await register(page, 'gpu-general', 'b');
  await register(page, 'edge-cpu', 'b');
  await register(page, 'gpu-hpc', 'a');

  await page.click('.sidebar nav a[href="/policies"]');
  await page.waitForSelector('text=No policies yet');
  await shot(page, 'policies-empty');
  await page.click('.empty button:has-text("Create default set")');
  await page.waitForSelector(card('auto-by-model-size'));
  await page.waitForFunction(() => {
    const s = [...document.querySelectorAll('[data-testid=sync]')];
    return s.length === 3 && s.every((e) => e.dataset.state === 'in_sync');
  }, null, { timeout: 20_000 });
  assert.match(await page.textContent(card('auto-by-model-size')), /Model size \(GB\) ≥ 30 → Zone A/);
  await shot(page, 'policies-strategies');

  // Strategy: auto mode with a rule edited as typed, and made the default (confirmed).
  await page.click(`${card('high-availability')} button:has-text("Edit")`);
  await page.waitForSelector('[data-testid=strategy-form]');
  await page.click('[data-testid=strategy-form] [role=radio]:has-text("Auto")');
  await page.click('[data-testid=add-rule]');
  const row = '[data-testid=rule-row]';
  await page.selectOption(`${row} select[aria-label=Condition]`, 'runtime');
  await page.fill(`${row} input[aria-label=Value]`, 'dockr');
  await page.waitForSelector(`${row} .rule-error:has-text("must be a runtime")`);
  await page.fill(`${row} input[aria-label=Value]`, 'ollama');
  await page.selectOption(`${row} select[aria-label="Then place in"]`, 'b');
  await page.waitForSelector(`${row} .rule-error:has-text("must be a runtime")`, { state: 'detached' });
  await page.click('[data-testid=strategy-form] summary:has-text("Advanced")');
  await page.check('[data-testid=is-default]');
  await shot(page, 'policies-strategy-sheet');
  await page.click('[data-testid=strategy-form] button[type=submit]');
  await page.waitForSelector('[data-testid=confirm] >> text=Change the default strategy?');
  await page.click('[data-testid=confirm] button:has-text("Confirm")');
  await page.waitForSelector('[data-testid=strategy-form]', { state: 'detached' });
  await page.waitForSelector(`${card('high-availability')} .badge:has-text("Default")`);
  assert.match(await page.textContent(card('high-availability')), /Runtime = ollama → Zone B/);
  assert.doesNotMatch(await page.textContent(card('auto-by-model-size')), /Default/);

  // Profiles: conflicting choices are flagged as they are made and refused; notices are not.
  await page.click('[role=tab]:has-text("Resource profiles")');
  await page.click(`${card('a100-nvlink-4gpu')} button:has-text("Edit")`);
  await page.selectOption('[data-testid=mig]', '1g.10gb');
  await page.waitForSelector('.remark.error:has-text("MIG slices cannot use NVLink")');
  await shot(page, 'policies-profile-conflict');
  await page.click('[data-testid=profile-form] button:has-text("Cancel")');
  await page.click(`${card('shared-gpu-be')} button:has-text("Edit")`);
  await page.waitForSelector('[data-testid=profile-form] .remark.info:has-text("BE pods run on reclaimed capacity")');
  await page.selectOption('[data-testid=qos]', 'LSE');
  await page.waitForSelector('[data-testid=profile-form] .remark.error:has-text("LSE and LSR pods bind whole CPUs")');
  await page.click('[data-testid=profile-form] button[type=submit]');
  // Refused before it is sent: the sheet stays, the error stays next to the choice.
  await page.waitForTimeout(300);
  assert.ok(await page.isVisible('[data-testid=profile-form] .remark.error:has-text("cannot be overcommitted")'));
  await page.selectOption('[data-testid=qos]', 'LS');
  await page.fill('#p-mem', '12');
  await page.click('[data-testid=profile-form] button[type=submit]');
  await page.waitForSelector('[data-testid=profile-form]', { state: 'detached' });
  await page.waitForSelector(`${card('shared-gpu-be')} >> text=QoS LS`);
  assert.match(await page.textContent(card('shared-gpu-be')), /12 GiB/);

  // A profile a strategy uses cannot be deleted; the dialog says who uses it.
  await page.click(`${card('general-1gpu')} button:has-text("Delete")`);
  await page.waitForSelector('[data-testid=delete-blocked] >> text=strategy auto-by-model-size');
  await shot(page, 'policies-delete-blocked');
  await page.click('[data-testid=delete-blocked] button:has-text("Close")');

  // Failover: the timeline follows the values; disabling asks first.
  await page.click('[role=tab]:has-text("Failover")');
  await page.waitForSelector(`${card('standard-failover')} [data-testid=failover-timeline]`);
  await page.click(`${card('standard-failover')} button:has-text("Edit")`);
  await page.fill('#f-tol', '10');
  await page.waitForSelector('[data-testid=failover-form] .hint:has-text("10 s")');
  await page.selectOption('#f-purge', 'Directly');
  await page.waitForFunction(() => document.querySelector('[data-testid=failover-form] [data-testid=failover-timeline]')
    ?.getAttribute('aria-label').includes('NotReady after about 40 s, tolerates it 10 s, then evict at once'));
  await shot(page, 'policies-failover-sheet');
  await page.uncheck('[data-testid=enabled]');
  await page.click('[data-testid=failover-form] button[type=submit]');
  await page.waitForSelector('[data-testid=confirm] >> text=Disable failover?');
  await page.click('[data-testid=confirm] button:has-text("Cancel")');
  await page.check('[data-testid=enabled]');
  await page.click('[data-testid=failover-form] button[type=submit]');
  await page.waitForSelector('[data-testid=failover-form]', { state: 'detached' });
  await page.waitForSelector(`${card('standard-failover')} >> text=10 s`);
  await shot(page, 'policies-failover');

  // Deploy by the default strategy: the preview says where, and that is where it lands.
  await page.click('.sidebar nav a[href="/deployments"]');
  await page.click('button:has-text("Deploy model")');
  await page.waitForSelector('[role=dialog] [data-runtime=ollama][aria-checked=true]');
  await page.waitForFunction(() => document.querySelector('[data-testid=strategy]')?.value === 'high-availability');
  await page.fill('#f-gpus_per_replica', '0');
  await page.selectOption('[data-testid=failover]', 'standard-failover');
  await page.waitForSelector('[data-testid=placement-preview] [data-candidate="gpu-hpc"].no');
  // The preview follows the form: wait for the one made for 0 GPUs (an earlier one, for the default
  // GPU count, may still be on screen for a moment).
  await page.waitForFunction(() => /rule 1: Runtime = ollama → Zone B/
    .test(document.querySelector('[data-testid=preview-summary]')?.textContent ?? ''));
  await page.waitForFunction(() => document.querySelector('[data-testid=placement-preview] [data-replicas="1"]'));
  const landing = await page.getAttribute('[data-testid=placement-preview] [data-replicas="1"]', 'data-candidate');
  const other = landing === 'edge-cpu' ? 'gpu-general' : 'edge-cpu';
  assert.match(await page.textContent('[data-testid=preview-summary]'), /rule 1: Runtime = ollama → Zone B/);
  assert.match(await page.textContent('[data-candidate="gpu-hpc"]'), /wants Zone B/);
  await shot(page, 'deploy-preview');
  await Promise.all([page.waitForURL('**/deployments/llama3-2-1b'), page.click('[role=dialog] button[type=submit]')]);
  await hydrated(page);
  await page.waitForSelector('[data-testid=phase][data-phase=running]', { timeout: 60_000 });
  const placed = await page.evaluate(async () => {
    const r = await fetch('/api/deployments/get', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'llama3-2-1b' }) });
    return (await r.json()).placements.filter((p) => p.ready > 0).map((p) => p.cluster);
  });
  assert.deepEqual(placed, [landing], 'landed where the preview said');

  // The drill: take the landing cluster down, watch the timeline, see it serve from the other.
  await page.goto(`/clusters/${landing}`);
  await hydrated(page);
  await page.click('[data-testid=drill-start]');
  await page.click('[data-testid=drill-confirm]');
  await page.waitForSelector('[data-testid=drill-down]');
  await page.waitForSelector('[data-testid=drill-row][data-deployment=llama3-2-1b] .now', { state: 'attached' });
  await shot(page, 'drill-running');
  await page.waitForSelector('[data-testid=drill-row][data-recovered=true]', { timeout: 90_000 });
  assert.match(await page.textContent('[data-testid=drill-row]'), new RegExp(`Serving again from ${other} after`));
  await shot(page, 'drill-recovered');

  // The overview puts the cut-off cluster first, with the hub's reason, while its model serves elsewhere.
  await page.goto('/');
  await hydrated(page);
  await page.waitForSelector(`[data-testid=attention] a[href="/clusters/${landing}"]`, { timeout: 20_000 });
  assert.equal((await page.textContent('[data-testid=stat-attention] .stat-value')).trim(), '1');
  assert.match(await page.textContent('[data-testid=stat-clusters] .stat-value'), /^\s*2 \/ 3\s*$/);
  await page.waitForSelector('[data-testid=overview-deployments] [data-deployment="llama3-2-1b"] [data-phase=running]');
  await shot(page, 'overview-attention');
  await page.goto(`/clusters/${landing}`);
  await hydrated(page);
  const answer = await page.evaluate(async () => {
    const r = await fetch('/api/inference/llama3-2-1b/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'llama3.2:1b', messages: [{ role: 'user', content: 'hi' }] }) });
    return r.status;
  });
  assert.equal(answer, 200);
  await page.click('[data-testid=drill-up]');
  await page.waitForSelector('[data-testid=drill-down]', { state: 'detached' });
  assert.deepEqual(page.errors, []);
});
