/**
 * `npm run bench:console` — the console's two figures (the console issue), each next to a baseline from the same run:
 *
 * 1. Time to an interactive fleet map of 5,000 VMs on 500 hosts in headless Chromium, median of 5 (target < 2 s).
 *    A real controller (SQLite in a temp folder, loopback HTTP) holding a seeded fleet put there through the API as
 *    agents do (enrolled, so trusted; a few VMs then tampered with, so untrusted; drops reported on a few hosts), the
 *    built console it serves, Debian's Chromium through playwright-core. Signed in once (the session cookie); each try
 *    opens `/#/` in a new browser context with that cookie and an empty HTTP cache (so the scripts are fetched again)
 *    and takes the page's own `hueguard-map-ready` mark: from the navigation's start to the first complete draw of the
 *    map with the whole fleet loaded (the canvas then says `data-ready="true"`). The wall-clock time seen from outside
 *    the browser is printed too. Baseline: in the same kind of page, `fetch('/api/v1/vms')` and `JSON.parse` of it, the
 *    floor under any console that shows the fleet.
 * 2. The console's bundle: every file the build puts in assets/ (scripts and styles) and index.html, each gzipped
 *    (node:zlib, level 9), added up (target < 500 kB).
 *
 * A missed target prints MISSED (the exit code is 0); only errors exit non-zero. The last line is one JSON object.
 */
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Browser } from 'playwright-core';
import { browserMissing, ensureConsoleBuilt, launch, signedIn } from '../test/support/browser.ts';
import { PASSWORD, startSeededFleet, USERS, type SeededFleet } from '../test/support/seeded-fleet.ts';

const HOSTS = Number(process.env.BENCH_HOSTS ?? 500);
const PER_HOST = Number(process.env.BENCH_VMS_PER_HOST ?? 10);
const TRIES = Number(process.env.BENCH_TRIES ?? 5);
const TARGET_MS = 2000;
const TARGET_KB = 500;
const Results: Record<string, unknown> = {};
const loadLine = (when: string) => `load average ${when}: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')} (${os.cpus().length} cores)`;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const ms = (x: number) => `${x.toFixed(0)} ms`;
const verdict = (met: boolean) => (met ? 'PASS' : 'MISSED');

function bundle(dir: string): void {
  const files = [join(dir, 'index.html'), ...readdirSync(join(dir, 'assets')).filter((n) => /\.(js|css)$/.test(n)).map((n) => join(dir, 'assets', n))];
  let raw = 0;
  let gz = 0;
  const each: Record<string, { bytes: number; gzBytes: number }> = {};
  for (const f of files) {
    const b = readFileSync(f);
    const z = gzipSync(b, { level: 9 }).length;
    raw += b.length;
    gz += z;
    each[f.slice(dir.length + 1)] = { bytes: b.length, gzBytes: z };
    console.log(`   ${f.slice(dir.length + 1).padEnd(32)} ${(b.length / 1024).toFixed(1).padStart(8)} kB  gzip ${(z / 1024).toFixed(1).padStart(7)} kB`);
  }
  const kb = gz / 1024;
  Results.bundle = { files: each, bytes: raw, gzBytes: gz, gzKB: kb, targetKB: TARGET_KB, ratioToTarget: kb / TARGET_KB, met: kb < TARGET_KB };
  console.log(`2. console bundle (${files.length} files: index.html, scripts, styles): ${(raw / 1024).toFixed(1)} kB, gzip -9 ${kb.toFixed(1)} kB = ${(kb / TARGET_KB).toFixed(2)} of the target < ${TARGET_KB} kB: ${verdict(kb < TARGET_KB)}`);
}

async function mapTimes(browser: Browser, f: SeededFleet): Promise<void> {
  const first = await signedIn(browser, f.url, USERS.viewer, PASSWORD);
  const storageState = await first.context().storageState();
  await first.context().close();
  const viewport = { width: 1400, height: 900 };

  const map: number[] = [];
  const wall: number[] = [];
  const drawn: number[] = [];
  for (let i = 0; i < TRIES; i++) {
    const ctx = await browser.newContext({ storageState, viewport });
    const page = await ctx.newPage();
    const t = performance.now();
    await page.goto(`${f.url}/#/`);
    await page.locator('canvas[data-ready="true"]').waitFor({ timeout: 60_000 });
    wall.push(performance.now() - t);
    const m = await page.evaluate(() => ({ at: performance.getEntriesByName('hueguard-map-ready')[0]?.startTime ?? NaN, vms: Number(document.querySelector('canvas.map-canvas')?.getAttribute('data-vms')) }));
    if (m.vms !== HOSTS * PER_HOST) throw new Error(`the map holds ${m.vms} VMs, not ${HOSTS * PER_HOST}`);
    map.push(m.at);
    drawn.push(m.vms);
    await ctx.close();
  }

  // the floor: the same kind of page (same origin, the session cookie, a fresh context) fetching and parsing the VMs
  const base: number[] = [];
  for (let i = 0; i < TRIES; i++) {
    const ctx = await browser.newContext({ storageState, viewport });
    const page = await ctx.newPage();
    await page.goto(`${f.url}/api/v1/session`);
    const r = await page.evaluate(async () => {
      const t = performance.now();
      const res = await fetch('/api/v1/vms', { credentials: 'same-origin', headers: { accept: 'application/json' } });
      const vms = JSON.parse(await res.text()) as unknown[];
      return { ms: performance.now() - t, n: vms.length };
    });
    if (r.n !== HOSTS * PER_HOST) throw new Error(`GET /api/v1/vms answered ${r.n} VMs`);
    base.push(r.ms);
    await ctx.close();
  }
  const m = median(map);
  const b = median(base);
  Results.timeToMap = {
    vms: HOSTS * PER_HOST, hosts: HOSTS, tries: TRIES, medianMs: m, eachMs: map, wallMedianMs: median(wall), wallEachMs: wall,
    fetchVmsMedianMs: b, fetchVmsEachMs: base, ratioToFetch: m / b, targetMs: TARGET_MS, ratioToTarget: m / TARGET_MS, met: m < TARGET_MS,
  };
  console.log(`   map ready (navigation start → hueguard-map-ready), each: ${map.map(ms).join(', ')}`);
  console.log(`   the same seen from outside the browser (goto → canvas[data-ready]), each: ${wall.map(ms).join(', ')}`);
  console.log(`   baseline fetch('/api/v1/vms') + JSON.parse of ${HOSTS * PER_HOST} VMs, each: ${base.map(ms).join(', ')}`);
  console.log(`1. time to an interactive map of ${(HOSTS * PER_HOST).toLocaleString('en')} VMs on ${HOSTS} hosts (cold HTTP cache): median ${ms(m)} (wall ${ms(median(wall))}); fetching and parsing the VMs alone: ${ms(b)} (map/fetch ${(m / b).toFixed(1)}×); ${(m / TARGET_MS).toFixed(2)} of the target < ${TARGET_MS} ms: ${verdict(m < TARGET_MS)}`);
}

async function main(): Promise<void> {
  console.log(`console bench — node ${process.version}, ${os.cpus().length} cores`);
  console.log(loadLine('at start'));
  const dir = ensureConsoleBuilt();
  console.log(`console build: ${dir}`);
  bundle(dir);

  const why = browserMissing();
  if (why) {
    console.log(`1. time to an interactive map: not measured (${why})`);
    Results.timeToMap = { skipped: why };
  } else {
    let t = performance.now();
    const f = await startSeededFleet({ hosts: HOSTS, vmsPerHost: PER_HOST });
    let browser: Browser | undefined;
    try {
      console.log(`fleet of ${HOSTS} hosts × ${PER_HOST} VMs seeded through the API (reported, enrolled) in ${ms(performance.now() - t)}`);
      t = performance.now();
      // a few VMs untrusted, and drops reported on a few hosts (red links on the map, rows in its list)
      for (let i = 0; i < 5; i++) await f.tamper(f.vms[(i * 997) % f.vms.length].name);
      for (let h = 0; h < Math.min(20, HOSTS); h++) {
        const host = f.hosts[h * Math.floor(HOSTS / Math.min(20, HOSTS))];
        const mine = f.vms.filter((v) => v.host === host);
        const ports = await Promise.all(mine.slice(0, 3).map(async (v) => (await f.api<{ ports: string[] }>('GET', `/api/v1/vms/${encodeURIComponent(v.name)}`)).ports[0]));
        if (mine.length < 3) continue;
        await f.report(host, [
          { from: mine[0].name, to: mine[1].name, fromPort: ports[0], toPort: ports[1], packets: 10 + h, bytes: 1000, reason: 'no_common_color' },
          { from: mine[2].name, to: mine[0].name, fromPort: ports[2], toPort: ports[0], packets: 3, bytes: 300, reason: 'isolated' },
        ]);
      }
      console.log(`5 VMs tampered with (untrusted), drops reported on 20 hosts, in ${ms(performance.now() - t)}`);
      browser = await launch();
      await mapTimes(browser, f);
    } finally {
      await browser?.close();
      await f.close();
    }
  }
  console.log(loadLine('at end'));
  console.log(JSON.stringify(Results));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
