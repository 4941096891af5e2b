import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHmas, launchBrowser, newPage, shot, signIn, root, ADMIN_PASSWORD } from './harness.mjs';

let hmas, b, agent, work;
before(async () => {
  hmas = await startHmas();
  b = await launchBrowser();
  work = mkdtempSync(join(tmpdir(), 'hmas-agent-'));
});
after(async () => {
  if (agent && agent.exitCode === null) agent.kill('SIGKILL');
  await b?.close();
  await hmas?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

const bin = process.env.HMAS_BIN || join(root, 'target', 'debug', 'hmas');

function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

/// The simulated hub's fault controls, with the hub's admin token from its kubeconfig.
function simControl(member, body) {
  const kc = readFileSync(join(hmas.dataDir, 'sim', 'hub.kubeconfig'), 'utf8');
  const server = kc.match(/server: (\S+)/)[1];
  const token = kc.match(/token: (\S+)/)[1];
  return JSON.parse(execFileSync('curl', ['-sk', '-X', 'POST', '-H', `Authorization: Bearer ${token}`,
    '-H', 'Content-Type: application/json', '-d', JSON.stringify(body), `${server}/sim/v1/clusters/${member}`], { encoding: 'utf8' }));
}

test('a real agent in a wrapper pod drives the progress bar, then the model serves', async () => {
  const page = await newPage(b.browser, hmas.base);
  await signIn(page, 'admin', ADMIN_PASSWORD);
  const kubeconfig = readFileSync(join(hmas.dataDir, 'sim', 'edge-cpu.kubeconfig'), 'utf8');
  const r = await page.request.post('/api/clusters/register', {
    data: { name: 'edge-cpu', zone_class: 'b', access: { kind: 'kubeconfig', kubeconfig } },
  });
  assert.equal(r.status(), 200, await r.text());
  assert.equal(simControl('edge-cpu', { externalAgents: true }).externalAgents, true);

  // Deploy through the form, choosing the wrapper image; the command shows what the agent runs.
  await page.click('.sidebar nav a[href="/deployments"]');
  await page.click('button:has-text("Deploy model")');
  await page.waitForSelector('[role=dialog] [data-runtime=ollama][aria-checked=true]');
  await page.check('[data-cluster="edge-cpu"]');
  await page.fill('#f-gpus_per_replica', '0');
  await page.fill('#f-name', 'agent-llama');
  await page.click('summary:has-text("Advanced settings for Ollama")');
  await page.check('input[name=agent]');
  await page.waitForFunction(() => document.querySelector('[data-testid=command-preview]').textContent.startsWith('/usr/local/bin/hmas agent -- /bin/ollama serve'));
  await shot(page, 'deploy-sheet-agent');
  await page.click('[role=dialog] button[type=submit]');
  await page.waitForURL('**/deployments/agent-llama');
  await page.waitForSelector('[data-testid=runtime]:has-text("H-MAS agent")');

  // The member starts the container; the pod waits for its agent.
  let pod;
  for (let i = 0; i < 200 && !pod; i++) {
    const d = await (await page.request.post('/api/deployments/get', { data: { name: 'agent-llama' } })).json();
    const rep = d.replicas?.[0];
    if (rep && rep.node && rep.phase !== 'pending' && rep.phase !== 'pulling') pod = rep.pod;
    else await new Promise((res) => setTimeout(res, 100));
  }
  assert.ok(pod, 'the wrapper pod started');

  const runtimePort = await freePort();
  agent = spawn(bin, ['agent', '--', bin, 'sim-runtime', 'ollama', '--port', String(runtimePort),
    '--download-mb-per-second', '6', '--model-size-mb', '48'], {
    env: { ...process.env, HMAS_LOG: 'info', HMAS_RUNTIME: 'ollama', HMAS_MODEL: 'llama3.2:1b',
      HMAS_RUNTIME_PORT: String(runtimePort), HMAS_AGENT_ADDR: '127.0.0.1:0', HMAS_MODEL_DIR: work,
      OLLAMA_MODELS: join(work, 'models'), HMAS_POD_NAME: pod, HMAS_POD_NAMESPACE: 'hmas-serving',
      HMAS_AGENT_KUBECONFIG: join(hmas.dataDir, 'sim', 'edge-cpu.kubeconfig') },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  agent.stderr.on('data', (d) => { log += d; });

  // The bar appears and moves with the agent's pull.
  const bar = '[data-testid=download] [role=progressbar]';
  await page.waitForSelector(bar, { timeout: 20_000 });
  const seen = new Set();
  for (let i = 0; i < 100 && seen.size < 3; i++) {
    const v = await page.getAttribute(bar, 'aria-valuenow').catch(() => null);
    if (v !== null) seen.add(Number(v));
    if (seen.size === 2) await shot(page, 'agent-downloading');
    await new Promise((res) => setTimeout(res, 200));
  }
  const values = [...seen];
  assert.ok(values.length >= 2, `progress moved: ${values}`);
  assert.ok(values.every((v, i) => i === 0 || v >= values[i - 1]), `never backwards: ${values}`);
  assert.ok(values.some((v) => v > 0 && v < 100), `${values}`);

  await page.waitForSelector('.page-header [data-phase=running]', { timeout: 30_000 });
  await page.waitForSelector('[data-testid=endpoint-url]');
  // The agent's own events on its pod reach the deployment's events panel.
  await page.waitForSelector('[data-testid=events] td:text-is("ModelServed")', { timeout: 15_000 });
  for (const reason of ['DownloadingModel', 'ModelDownloaded']) {
    await page.waitForSelector(`[data-testid=events] td:text-is("${reason}")`);
  }
  await shot(page, 'agent-running');
  assert.deepEqual(page.errors, []);

  // A clean stop: the agent forwards SIGTERM, the runtime finishes, the agent exits 0.
  agent.kill('SIGTERM');
  const code = await new Promise((res) => (agent.exitCode !== null ? res(agent.exitCode) : agent.on('exit', res)));
  assert.equal(code, 0, log);
  assert.match(log, /sim-runtime: SIGTERM received/);
  await page.waitForSelector('.page-header [data-phase=running]', { state: 'detached', timeout: 20_000 });
});
