import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHmas, launchBrowser, newPage, hydrated, shot, signIn, ADMIN_PASSWORD } from './harness.mjs';

let hmas, b;
before(async () => { hmas = await startHmas(); b = await launchBrowser(); });
after(async () => { await b?.close(); await hmas?.stop(); });

test('the sign-in page refuses empty fields and a wrong password', async () => {
  const page = await newPage(b.browser, hmas.base);
  await page.goto('/');
  assert.match(page.url(), /\/login$/, 'signed-out visitors land on sign-in');
  await hydrated(page);
  await shot(page, 'login');

  await page.click('button[type=submit]');
  assert.equal(await page.textContent('#f-username-error'), 'is required');
  assert.equal(await page.textContent('#f-password-error'), 'is required');

  await page.fill('#f-username', 'admin');
  await page.fill('#f-password', 'not-the-password');
  await page.click('button[type=submit]');
  await page.waitForSelector('.banner-error');
  assert.match(await page.textContent('.banner-error'), /wrong username or password/);
  assert.match(page.url(), /\/login$/);
  await shot(page, 'login-refused');
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('sign in, see the shell, sign out', async () => {
  const page = await newPage(b.browser, hmas.base);
  await signIn(page, 'admin', ADMIN_PASSWORD);
  assert.equal(new URL(page.url()).pathname, '/');
  assert.equal(await page.textContent('[data-testid=current-user]'), 'Administrator');
  const nav = await page.$$eval('.sidebar nav a .nav-label', (ls) => ls.map((l) => l.textContent.trim()));
  assert.deepEqual(nav, ['Overview', 'Clusters', 'Deployments', 'Policies', 'Playground', 'API keys', 'Users']);
  assert.match(await page.textContent('h1'), /Welcome, Administrator/);
  await shot(page, 'overview');

  // Client-side navigation through the shell.
  await page.click('.sidebar nav a[href="/policies"]');
  await page.waitForURL('**/policies');
  assert.equal(await page.textContent('h1'), 'Policies');
  assert.match(await page.textContent('.empty'), /No policies yet/);

  await page.click('text=Sign out');
  await page.waitForURL('**/login');
  await page.goto('/users');
  assert.match(page.url(), /\/login\?next=\/users$/, 'the session is gone');
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('an unknown page says so', async () => {
  const page = await newPage(b.browser, hmas.base);
  await signIn(page, 'admin', ADMIN_PASSWORD);
  const res = await page.goto('/no/such/page');
  assert.equal(res.status(), 404);
  assert.equal(await page.textContent('h1'), 'This page does not exist');
  await shot(page, 'not-found');
  await page.context().close();
});

test('the layout works on a phone-sized screen', async () => {
  const page = await newPage(b.browser, hmas.base);
  await page.setViewportSize({ width: 390, height: 800 });
  await signIn(page, 'admin', ADMIN_PASSWORD);
  assert.equal(await page.isVisible('.menu-button'), true);
  await page.click('.menu-button');
  await page.waitForSelector('.nav-open');
  await page.waitForTimeout(250); // let the slide-in finish before the picture
  await shot(page, 'mobile-menu');
  await page.click('.sidebar nav a[href="/deployments"]');
  await page.waitForURL('**/deployments');
  assert.equal(await page.$('.nav-open'), null, 'the menu closes after navigating');
  await page.context().close();
});
