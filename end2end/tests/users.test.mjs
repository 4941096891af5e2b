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

test('an admin lifts a sign-in lockout and creates an access token for a script', async () => {
  // Five wrong passwords lock the account (any name: whether it exists is not told).
  for (let i = 0; i < 5; i++) {
    const r = await fetch(`${hmas.base}/api/auth/login`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'mallory', password: `guess-${i}` }),
    });
    assert.equal(r.status, 401);
  }
  const locked = await fetch(`${hmas.base}/api/auth/login`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'mallory', password: 'guess-again' }),
  });
  assert.equal(locked.status, 429);
  assert.ok(Number(locked.headers.get('retry-after')) >= 1);

  const page = await newPage(b.browser, hmas.base);
  await signIn(page, 'admin', ADMIN_PASSWORD);
  await page.click('.sidebar nav a[href="/users"]');
  await page.waitForSelector('[data-testid=lockouts] tr[data-lockout=mallory]');
  await page.locator('[data-testid=lockouts]').scrollIntoViewIfNeeded();
  await shot(page, 'users-lockouts');
  await page.click('[data-testid=lockouts] button[aria-label="Let mallory sign in again"]');
  await page.waitForSelector('[data-testid=lockouts] >> text=No lockouts');

  // An access token: made for a role no higher than yours, shown once, and it works without a session.
  await page.click('.sidebar nav a[href="/keys"]');
  await page.waitForSelector('[data-testid=access-tokens] >> text=No access tokens');
  await page.click('button:has-text("New access token")');
  await page.fill('[role=dialog] #f-name', 'nightly deploy job');
  await page.fill('[role=dialog] #f-expires_in_days', '400');
  await page.click('[role=dialog] button[type=submit]');
  await page.waitForSelector('[role=dialog] .field-error:has-text("from 1 to 365")');
  await page.fill('[role=dialog] #f-expires_in_days', '30');
  await page.selectOption('[role=dialog] #f-role', 'operator');
  await page.click('[role=dialog] button[type=submit]');
  await page.waitForSelector('[data-testid=new-token-secret]');
  const secret = (await page.textContent('[data-testid=new-token-secret]')).trim();
  assert.match(secret, /^hmas-at-[0-9a-f]{64}$/);
  await shot(page, 'tokens-created');
  await page.click('[role=dialog] button:has-text("I have copied it")');
  await page.waitForSelector('[data-testid=tokens-table] tr[data-token="nightly deploy job"] >> text=operator');
  const list = await fetch(`${hmas.base}/api/deployments/list`, {
    method: 'POST', headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' }, body: '{}',
  });
  assert.equal(list.status, 200);
  const users = await fetch(`${hmas.base}/api/users/list`, {
    method: 'POST', headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' }, body: '{}',
  });
  assert.equal(users.status, 403, 'an operator token cannot manage users');
  await page.reload();
  await page.waitForSelector('[data-testid=tokens-table] tr[data-token="nightly deploy job"]');
  await page.locator('[data-testid=access-tokens]').scrollIntoViewIfNeeded();
  await shot(page, 'tokens');
  await page.click('button[aria-label="Revoke nightly deploy job"]');
  await page.click('[role=dialog] button:has-text("Revoke token")');
  await page.waitForSelector('[data-testid=tokens-table] tr[data-token="nightly deploy job"] >> text=Revoked');
  assert.deepEqual(page.errors, []);
  await page.context().close();
});
