// Starts a real hmas on a free loopback port with its own data directory, and Debian's Chromium
// driven by playwright-core. Screenshots go to end2end/artifacts/ and are kept as test artefacts.
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const root = join(here, '..', '..');
export const artifacts = join(root, 'end2end', 'artifacts');
export const ADMIN_PASSWORD = 'browser-admin-pw-1';

/// `env` adds to hmas's environment (e.g. HMAS_SIM_TIME_SCALE to watch slow stages).
export async function startHmas({ env = {} } = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), 'hmas-e2e-'));
  const bin = process.env.HMAS_BIN || join(root, 'target', 'debug', 'hmas');
  const child = spawn(bin, ['serve', '--addr', '127.0.0.1:0', '--data-dir', join(dataDir, 'data'),
    '--site-root', process.env.HMAS_SITE_ROOT || join(root, 'target', 'site')], {
    env: { ...process.env, HMAS_ADMIN_PASSWORD: ADMIN_PASSWORD, HMAS_LOG: 'warn,kube_client::client::builder=off', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Kept for tests that check what the server said (a panic is a fault even when the page recovers).
  const log = [];
  createInterface({ input: child.stderr }).on('line', (line) => { log.push(line); process.stderr.write(`${line}\n`); });
  const base = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('hmas did not start in 30 s')), 30_000);
    child.on('exit', (code) => reject(new Error(`hmas exited with ${code}`)));
    createInterface({ input: child.stdout }).on('line', (line) => {
      const m = line.match(/^H-MAS is listening on (\S+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
  });
  return {
    base,
    dataDir: join(dataDir, 'data'),
    log,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r() : child.on('exit', r)));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export async function launchBrowser({ args = [] } = {}) {
  mkdirSync(artifacts, { recursive: true });
  const userDataDir = mkdtempSync(join(tmpdir(), 'hmas-chromium-'));
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage', ...args],
  });
  return {
    browser,
    async close() {
      await browser.close();
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

/// A page that fails the test on any uncaught error in the browser.
export async function newPage(browser, base, context) {
  context = context || await browser.newContext({ baseURL: base, viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e));
  // HTTP errors the app handles (a refused sign-in is a 401) are logged by the browser too; those are not faults.
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) page.errors.push(new Error(m.text()));
  });
  return page;
}

export async function hydrated(page) {
  await page.waitForSelector('html[data-hydrated="true"]', { timeout: 30_000 });
}

export async function shot(page, name) {
  // A sheet sliding in would be caught half transparent.
  await page.evaluate(() => Promise.all(document.getAnimations()
    .filter((a) => a.effect?.getComputedTiming().iterations !== Infinity)
    .map((a) => a.finished)));
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
}

export async function signIn(page, username, password) {
  await page.goto('/login');
  await hydrated(page);
  await page.fill('#f-username', username);
  await page.fill('#f-password', password);
  await Promise.all([page.waitForURL((u) => !u.pathname.startsWith('/login')), page.click('button[type=submit]')]);
  await hydrated(page);
}
