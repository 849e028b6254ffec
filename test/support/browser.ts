/**
 * Debian's Chromium driven by playwright-core, for the console's end-to-end tests and benchmark: headless, with the
 * flags this machine needs; the console built first when its sources are newer than the build; screenshots kept in
 * `test-artifacts/console/` (CI keeps that folder). `browserMissing()` says why a test must skip.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM = process.env.HUEGUARD_CHROMIUM ?? '/usr/bin/chromium';
const ROOT = new URL('../..', import.meta.url).pathname;
export const ARTIFACTS = join(ROOT, 'test-artifacts', 'console');

/** Why the browser tests cannot run here, or null. */
export function browserMissing(): string | null {
  if (!existsSync(CHROMIUM)) return `no Chromium at ${CHROMIUM} (apt-get install chromium)`;
  return null;
}

function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

/**
 * Build the console when its build is missing or older than console/src (the controller serves what is built), into
 * console/dist, or into HUEGUARD_CONSOLE_OUT when set (so that two people working at once do not build over each
 * other; `startSeededFleet` serves the same folder). Returns the folder.
 */
export function ensureConsoleBuilt(): string {
  const out = process.env.HUEGUARD_CONSOLE_OUT ?? join(ROOT, 'console', 'dist');
  const index = join(out, 'index.html');
  const sources = Math.max(newest(join(ROOT, 'console', 'src')), statSync(join(ROOT, 'console', 'index.html')).mtimeMs);
  if (existsSync(index) && statSync(index).mtimeMs >= sources) return out;
  execFileSync(process.execPath, [join(ROOT, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', '--config', join(ROOT, 'console', 'vite.config.ts'), '--outDir', out, '--emptyOutDir', '--logLevel', 'warn'], { cwd: ROOT, stdio: 'inherit' });
  return out;
}

export async function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
  });
}

/** A fresh page (its own cookies) at the console, signed in as `user` with `password`. */
export async function signedIn(browser: Browser, url: string, user: string, password: string, viewport = { width: 1400, height: 900 }): Promise<Page> {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  await page.goto(`${url}/`);
  await page.getByLabel('User', { exact: true }).fill(user);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('navigation', { name: 'Views' }).waitFor();
  return page;
}

/** Keep a screenshot as a test artifact. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}
