import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHmas, launchBrowser, newPage, shot, signIn, ADMIN_PASSWORD } from './harness.mjs';

let hmas, b;
before(async () => { hmas = await startHmas(); b = await launchBrowser(); });
after(async () => { await b?.close(); await hmas?.stop(); });

test('an admin creates an operator, who cannot manage users', async () => {
  const page = await newPage(b.browser, hmas.base);
  await signIn(page, 'admin', ADMIN_PASSWORD);
  await page.click('.sidebar nav a[href="/users"]');
  await page.waitForSelector('[data-testid=users-table]');
  assert.equal(await page.locator('tbody tr').count(), 1);

  // The form checks as you submit, with the same rules as the server.
  await page.click('text=New user');
  await page.waitForSelector('[role=dialog]');
  await page.fill('#f-username', 'Bad Name');
  await page.fill('#f-password', 'short');
  await page.click('[role=dialog] button[type=submit]');
  assert.match(await page.textContent('#f-username-error'), /lowercase/);
  assert.match(await page.textContent('#f-password-error'), /at least 10/);
  await shot(page, 'users-new-invalid');

  await page.fill('#f-username', 'ops');
  await page.fill('#f-display_name', 'Olivia Ops');
  await page.selectOption('#f-role', 'operator');
  await page.fill('#f-password', 'ops-password-1');
  await page.click('[role=dialog] button[type=submit]');
  await page.waitForSelector('tr[data-username=ops]');
  assert.equal(await page.$('[role=dialog]'), null, 'the dialog closes on success');
  await shot(page, 'users');

  // The server is the authority: a duplicate is refused next to the field.
  await page.click('text=New user');
  await page.fill('#f-username', 'ops');
  await page.fill('#f-password', 'ops-password-1');
  await page.click('[role=dialog] button[type=submit]');
  await page.waitForSelector('#f-username-error:has-text("already exists")');
  await page.keyboard.press('Escape');
  assert.equal(await page.$('[role=dialog]'), null, 'Escape closes the dialog');

  // Reset a password: the generated one is shown once and works.
  await page.click('tr[data-username=ops] >> text=Reset password');
  await page.click('[role=dialog] button[type=submit]');
  const generated = (await page.textContent('[data-testid=generated-password]')).trim();
  assert.ok(generated.length >= 16);
  await shot(page, 'users-reset-password');
  await page.click('text=Done');

  const ops = await newPage(b.browser, hmas.base);
  await signIn(ops, 'ops', generated);
  const nav = await ops.$$eval('.sidebar nav a', (as) => as.map((a) => a.getAttribute('href')));
  assert.ok(!nav.includes('/users'), 'operators do not see Users');
  await ops.goto('/users');
  await ops.waitForSelector('text=Not available to your role');
  assert.equal(await ops.$('[data-testid=users-table]'), null);
  await shot(ops, 'users-forbidden');

  // Disabling ends the operator's session.
  await page.click('tr[data-username=ops] >> text=Disable');
  await page.waitForSelector('tr[data-username=ops] >> text=Disabled');
  await ops.goto('/');
  assert.match(ops.url(), /\/login/);
  assert.deepEqual(page.errors, []);
  await page.context().close();
  await ops.context().close();
});
