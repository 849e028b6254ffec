/**
 * The console's sign-in, in a real Chromium against a real controller: a token or a user's password opens a
 * session; a wrong password is said so and opens nothing; the session's cookie is HttpOnly (the page's scripts
 * cannot read it); signing out ends it on the server; when the session expires, sign-in comes over the page, and
 * after signing in again the same view is there and the live stream follows the fleet again.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser } from 'playwright-core';
import { browserMissing, ensureConsoleBuilt, launch, screenshot } from '../support/browser.ts';
import { PASSWORD, USERS, startSeededFleet, type SeededFleet } from '../support/seeded-fleet.ts';
import { startServer } from '../../src/server/server.test-support.ts';

const why = browserMissing();
if (why) console.log(`# skipping the console's session tests: ${why}`);

describe('console sign-in and sessions', { skip: why ?? false }, () => {
  let f: SeededFleet;
  let browser: Browser;
  before(async () => {
    ensureConsoleBuilt();
    f = await startSeededFleet({ hosts: 2, vmsPerHost: 3, sessionTtlMs: 4_000 });
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
    await f?.close();
  });

  it('a wrong password is refused with a message, and nothing opens', async () => {
    const page = await (await browser.newContext()).newPage();
    await page.goto(`${f.url}/`);
    await page.getByLabel('User', { exact: true }).fill(USERS.viewer);
    await page.getByLabel('Password', { exact: true }).fill('not-the-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'wrong password' }).waitFor();
    assert.equal(await page.getByRole('navigation', { name: 'Views' }).count(), 0);
    await screenshot(page, 'session-wrong-password');
    await page.context().close();
  });

  it('the admin token signs in; the cookie is HttpOnly; the role is shown; signing out ends the session on the server', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${f.url}/`);
    await page.getByRole('tab', { name: 'Token' }).click();
    await page.getByLabel('Token', { exact: true }).fill(f.admin);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('navigation', { name: 'Views' }).waitFor();
    assert.match(await page.locator('header').innerText(), /token:admin \(admin\)/);
    assert.equal(await page.evaluate(() => document.cookie), '', 'the session cookie is not readable by scripts');
    const cookies = await context.cookies();
    assert.equal(cookies.length, 1);
    assert.equal(cookies[0].httpOnly, true);
    assert.equal(cookies[0].sameSite, 'Strict');

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    // the old cookie, sent by hand, no longer opens anything
    const r = await fetch(`${f.url}/api/v1/session`, { headers: { cookie: `${cookies[0].name}=${cookies[0].value}` } });
    assert.equal(r.status, 401);
    await context.close();
  });

  it('an expired session brings sign-in over the same view; after signing in, it is live again', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${f.url}/`);
    await page.getByLabel('User', { exact: true }).fill(USERS.operator);
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('navigation', { name: 'Views' }).waitFor();
    await page.goto(`${f.url}/#/audit`);
    await page.getByRole('link', { name: 'Audit', exact: true }).and(page.locator('[aria-current="page"]')).waitFor();

    // the session lasts 4 s: sign-in comes over the page by itself when it ends (no click needed)
    await page.getByText('Your session has ended').waitFor({ timeout: 10_000 });
    await screenshot(page, 'session-expired');
    assert.match(page.url(), /#\/audit$/, 'the view stays where it was');

    await page.getByLabel('User', { exact: true }).fill(USERS.operator);
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('Your session has ended').waitFor({ state: 'detached' });
    assert.match(page.url(), /#\/audit$/);
    await page.locator('[data-live="yes"]').waitFor({ timeout: 5_000 });
    await context.close();
  });
});

describe('a new controller', { skip: why ?? false }, () => {
  it('shows a new user what to do first: publish a policy, connect agents', async () => {
    const s = await startServer({ rateLimit: false, consoleDir: ensureConsoleBuilt() });
    const browser = await launch();
    try {
      const page = await (await browser.newContext()).newPage();
      await page.goto(`${s.url}/`);
      await page.getByRole('tab', { name: 'Token' }).click();
      await page.getByLabel('Token', { exact: true }).fill(s.tokens.admin);
      await page.getByRole('button', { name: 'Sign in' }).click();
      const start = page.getByRole('region', { name: 'Getting started' });
      await start.waitFor();
      assert.match(await start.innerText(), /Publish a policy/);
      assert.match(await start.innerText(), /hueguard agent --controller/);
      await start.getByRole('link', { name: 'Policy' }).click();
      await page.getByRole('button', { name: 'New draft' }).waitFor();
      await screenshot(page, 'new-controller-policy');
    } finally {
      await browser.close();
      await s.close();
    }
  });
});
