// Dialogs and copying as a keyboard user and a plain-HTTP install meet them: focus moves into a
// dialog, stays inside on Tab, returns to the button that opened it; the one-time key cannot be
// lost to Escape or a stray click; Copy works where navigator.clipboard does not exist; the skip
// link and the menu button say what they do.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHmas, launchBrowser, newPage, shot, signIn, hydrated, ADMIN_PASSWORD } from './harness.mjs';

let hmas, b;
// A name that is not localhost: Chromium treats http://127.0.0.1 as a secure context, an
// install reached by its host name over plain HTTP is not.
const HOST = 'hmas-plain.test';
before(async () => {
  hmas = await startHmas();
  b = await launchBrowser({ args: [`--host-resolver-rules=MAP ${HOST} 127.0.0.1`] });
});
after(async () => { await b?.close(); await hmas?.stop(); });

const focused = (page) => page.evaluate(() => {
  const a = document.activeElement;
  return { tag: a?.tagName, id: a?.id, text: a?.textContent?.trim(), inDialog: !!a?.closest('[role=dialog]') };
});

test('dialogs take focus, keep it, give it back; the one-time key stays until it is copied', async () => {
  const page = await newPage(b.browser, hmas.base);
  await signIn(page, 'admin', ADMIN_PASSWORD);
  await page.goto('/keys');
  await hydrated(page);

  // Focus moves to the dialog's first field.
  await page.focus('button:has-text("New key")');
  await page.keyboard.press('Enter');
  await page.waitForSelector('[role=dialog]');
  await page.waitForFunction(() => document.activeElement?.id === 'f-name');
  // Tab never leaves it, forwards or backwards.
  for (let i = 0; i < 12; i++) {
    await page.keyboard.press('Tab');
    assert.ok((await focused(page)).inDialog, `Tab ${i + 1} left the dialog: ${JSON.stringify(await focused(page))}`);
  }
  for (let i = 0; i < 12; i++) {
    await page.keyboard.press('Shift+Tab');
    assert.ok((await focused(page)).inDialog, `Shift+Tab ${i + 1} left the dialog`);
  }
  // Escape closes it, and focus is back on "New key".
  await page.keyboard.press('Escape');
  await page.waitForSelector('[role=dialog]', { state: 'detached' });
  assert.equal((await focused(page)).text, 'New key');

  // With the new key on screen, Escape, the backdrop and a missing × cannot lose it.
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.activeElement?.id === 'f-name');
  await page.keyboard.type('one-time');
  await page.click('[role=dialog] button[type=submit]');
  await page.waitForSelector('[data-testid=new-key-secret]');
  const secret = (await page.textContent('[data-testid=new-key-secret]')).trim();
  assert.match(secret, /^hmas-/);
  await page.keyboard.press('Escape');
  await page.mouse.click(5, 5); // the backdrop
  assert.equal(await page.locator('[role=dialog] [data-testid=new-key-secret]').count(), 1, 'the secret is still shown');
  assert.equal(await page.locator('[role=dialog] button[aria-label=Close]').count(), 0);
  await shot(page, 'keys-one-time-secret');
  await page.click('[role=dialog] button:has-text("I have copied it")');
  await page.waitForSelector('[role=dialog]', { state: 'detached' });
  assert.equal((await focused(page)).text, 'New key');

  // A confirm dialog: focus goes to its first button, and back to the row's button after Cancel.
  await page.click('button:has-text("Revoke")');
  await page.waitForSelector('[role=dialog]');
  await page.waitForFunction(() => document.activeElement?.closest('[role=dialog]'));
  await page.keyboard.press('Escape');
  await page.waitForSelector('[role=dialog]', { state: 'detached' });
  assert.match((await focused(page)).text, /Revoke/);
  assert.deepEqual(page.errors, []);
});

test('copy works over plain HTTP on a host name, where navigator.clipboard does not exist', async () => {
  const base = hmas.base.replace('127.0.0.1', HOST);
  const context = await b.browser.newContext({ baseURL: base, viewport: { width: 1280, height: 800 } });
  const page = await newPage(b.browser, base, context);
  await signIn(page, 'admin', ADMIN_PASSWORD);
  await page.goto('/keys');
  await hydrated(page);
  assert.equal(await page.evaluate(() => window.isSecureContext), false);
  assert.equal(await page.evaluate(() => typeof navigator.clipboard), 'undefined');
  // What the browser copies is seen by the page's copy event.
  await page.evaluate(() => document.addEventListener('copy', () => {
    const a = document.activeElement;
    window.__copied = a && 'value' in a ? a.value.slice(a.selectionStart, a.selectionEnd) : String(getSelection());
  }));
  await page.click('button[aria-label="Copy the Python example"]');
  await page.waitForSelector('button[aria-label="Copy the Python example"]:has-text("Copied")');
  const copied = await page.evaluate(() => window.__copied);
  assert.match(copied, new RegExp(`base_url="${base}/v1", api_key=os\\.environ\\["HMAS_API_KEY"\\]`));
  assert.deepEqual(page.errors, []);
});

test('a skip link leads past the menu, and the menu button says whether it is open', async () => {
  const page = await newPage(b.browser, hmas.base, await b.browser.newContext({ baseURL: hmas.base, viewport: { width: 390, height: 844 } }));
  await signIn(page, 'admin', ADMIN_PASSWORD);
  await page.keyboard.press('Tab');
  assert.equal((await focused(page)).text, 'Skip to content');
  await page.keyboard.press('Enter');
  assert.equal((await focused(page)).id, 'main');
  const menu = page.locator('button.menu-button');
  assert.equal(await menu.getAttribute('aria-expanded'), 'false');
  await menu.click();
  assert.equal(await menu.getAttribute('aria-expanded'), 'true');
  assert.equal(await menu.getAttribute('aria-controls'), 'sidebar');
  assert.deepEqual(page.errors, []);
});
