/**
 * The console's fleet map as a person uses it: a real controller holding a seeded fleet (put there through the HTTP
 * API, as agents and operators do), the built console, Debian's Chromium. Every VM is on the map and the legend names
 * every color and label; a VM whose evidence fails turns untrusted on the open page within a second; blocked attempts
 * the agents report are listed with their counts and reasons in words; the filters narrow what is shown; the map and
 * its list work from the keyboard alone; names that look like HTML are shown as text. Screenshots go to
 * test-artifacts/console/. The layout's own arithmetic (hit-testing, keyboard moves) is checked first, without a
 * browser.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { parse } from 'yaml';
import { hitTest, layoutMap, move, visibleHosts } from '../../console/src/views/map/layout.ts';
import { browserMissing, ensureConsoleBuilt, launch, screenshot, signedIn } from '../support/browser.ts';
import { FLEET_POLICY, PASSWORD, startSeededFleet, USERS, type SeededFleet } from '../support/seeded-fleet.ts';

describe('the map layout', () => {
  const groups = [{ name: 'a', count: 10 }, { name: 'b', count: 0 }, { name: 'c', count: 3 }, { name: 'd', count: 23 }, { name: 'e', count: 1 }];
  const l = layoutMap(groups, 700, 20);

  it('puts every VM in its own cell inside its host box, and finds it again from a point', () => {
    assert.equal(l.total, 37);
    for (let s = 0; s < l.total; s++) {
      const b = l.hosts[l.host[s]];
      assert.ok(l.x[s] >= b.x && l.x[s] + l.cell <= b.x + b.w && l.y[s] >= b.y && l.y[s] + l.cell <= b.y + b.h, `slot ${s} outside its box`);
      assert.equal(hitTest(l, l.x[s] + 1, l.y[s] + 1), s);
      assert.equal(hitTest(l, l.x[s] + l.cell - 1, l.y[s] + l.cell - 1), s);
    }
    // the gaps between cells and the host names are no VM
    assert.equal(hitTest(l, l.x[0] + l.cell + 1, l.y[0] + 1), -1);
    assert.equal(hitTest(l, l.hosts[0].x + 2, l.hosts[0].y + 2), -1);
  });

  it('keeps host boxes apart and within the width', () => {
    for (const a of l.hosts) {
      assert.ok(a.x + a.w <= 700);
      for (const b of l.hosts) if (a !== b) assert.ok(a.x + a.w <= b.x || b.x + b.w <= a.x || a.y + a.h <= b.y || b.y + b.h <= a.y, `${a.name} overlaps ${b.name}`);
    }
  });

  it('moves the keyboard cursor to neighbouring cells, across host boxes, and never off the map', () => {
    assert.equal(move(l, -1, 'right'), 0);
    assert.equal(move(l, 0, 'left'), 0);
    assert.equal(move(l, 0, 'right'), 1);
    assert.equal(move(l, l.total - 1, 'right'), l.total - 1);
    assert.equal(move(l, 5, 'end'), l.total - 1);
    const below = move(l, 0, 'down');
    assert.ok(l.y[below] > l.y[0] && l.x[below] === l.x[0] && l.host[below] === l.host[0]);
    assert.equal(move(l, below, 'up'), 0);
    // from the last row of a box in the first grid row, down leads into the box below it
    const fromD = l.hosts[3].first;
    const upFromD = move(l, fromD, 'up');
    assert.ok(l.y[upFromD] < l.y[fromD], 'up from the top of a box leads to the box above');
    for (let s = 0; s < l.total; s++) for (const m of ['left', 'right', 'up', 'down', 'pageup', 'pagedown'] as const) {
      const t = move(l, s, m);
      assert.ok(t >= 0 && t < l.total);
    }
  });

  it('says which hosts a scrolled band shows', () => {
    const [a, b] = visibleHosts(l, 0, 10);
    assert.equal(a, 0);
    assert.ok(b >= 1 && b <= l.gridCols);
    assert.deepEqual(visibleHosts(l, l.height + 100, l.height + 200), [0, 0]);
  });
});

const why = browserMissing();
if (why) console.log(`# SKIP the console map: ${why}`);

const POLICY = parse(FLEET_POLICY) as { colors: string[]; labels: Record<string, { colors?: string[] }> };
const HOSTS = 6;
const PER_HOST = 10;

describe('the fleet map in Chromium', { skip: why ?? false, timeout: 180_000 }, () => {
  let f: SeededFleet;
  let browser: Browser;
  const pages: Page[] = [];
  const open = async (user: string = USERS.viewer) => {
    const page = await signedIn(browser, f.url, user, PASSWORD);
    pages.push(page);
    await page.locator('canvas[data-ready="true"]').waitFor({ timeout: 15_000 });
    return page;
  };
  const count = async (page: Page) => (await page.locator('.map-count').textContent()) ?? '';

  before(async () => {
    ensureConsoleBuilt();
    f = await startSeededFleet({ hosts: HOSTS, vmsPerHost: PER_HOST });
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
    await f?.close();
  });

  it('shows every VM of the fleet, and a legend naming every color and label of the policy', async () => {
    const page = await open();
    const canvas = page.getByRole('application', { name: /fleet map/i });
    assert.equal(await canvas.getAttribute('data-vms'), String(HOSTS * PER_HOST));
    assert.match(await canvas.getAttribute('aria-label') ?? '', new RegExp(`${HOSTS * PER_HOST} VMs on ${HOSTS} hosts`));
    assert.match(await count(page), new RegExp(`^${HOSTS * PER_HOST} of ${HOSTS * PER_HOST} VMs shown`));
    const legend = page.getByRole('region', { name: 'Legend' });
    for (const c of POLICY.colors) {
      const row = legend.locator(`li[data-color="${c}"]`);
      assert.equal(await row.locator('.name').textContent(), c);
      // and with the labels that have it
      const labels = Object.entries(POLICY.labels).filter(([l, d]) => l !== 'hypervisor' && d.colors?.includes(c) && f.vms.some((v) => v.label === l)).map(([l]) => l);
      assert.deepEqual(((await row.locator('.muted').textContent()) ?? '').split(', ').sort(), labels.sort());
    }
    for (const l of new Set(f.vms.map((v) => v.label!))) {
      const row = legend.locator(`li[data-label="${l}"]`);
      assert.equal(await row.locator('.name').textContent(), l);
      assert.match((await row.textContent()) ?? '', new RegExp(`${f.vms.filter((v) => v.label === l).length} VMs`));
    }
    for (const t of ['trusted', 'unverified', 'untrusted', 'unreachable']) assert.match((await legend.textContent()) ?? '', new RegExp(`${t}:`));
    assert.match((await legend.textContent()) ?? '', /isolated/);
    // hovering a VM names it, with its label, colors, trust and host
    const box = (await canvas.boundingBox())!;
    let tip = '';
    for (let y = 20; y < 120 && !tip; y += 4) {
      await page.mouse.move(box.x + 30, box.y + y);
      if (await page.getByRole('tooltip').count()) tip = (await page.getByRole('tooltip').textContent()) ?? '';
    }
    assert.match(tip, /^vm-\d{3}-\d{2}label\S+colors.+trusttrustedhosthost-\d{3}/);
    await screenshot(page, 'map-fleet');
  });

  it('shows a VM whose evidence fails as untrusted within a second, without a reload', async (t) => {
    const page = await open();
    const vm = f.vms.find((v) => v.label === 'gateway')!;
    await page.evaluate(() => ((window as unknown as { notReloaded: boolean }).notReloaded = true));
    await page.getByLabel('Search', { exact: true }).fill(vm.name);
    await page.waitForFunction((n) => document.querySelector('.map-count')?.textContent?.startsWith('1 of'), vm.name);
    await page.getByRole('button', { name: 'Show the VMs as a list' }).click();
    const row = page.locator('#map-list tbody tr');
    assert.equal(await row.count(), 1);
    assert.equal(await row.locator('td').first().textContent(), vm.name);
    assert.equal(await row.getByText('trusted', { exact: true }).count(), 1);
    // the map's cursor on it (Tab to the map: the cursor starts on the first VM that matches)
    await page.getByRole('application', { name: /fleet map/i }).focus();
    const cursor = page.locator('#map-cursor');
    assert.match((await cursor.textContent()) ?? '', new RegExp(`Selected: ${vm.name} — label gateway, colors blue, red, trusted`));
    const before = await page.locator('canvas.map-canvas').screenshot();

    const t0 = Date.now();
    await f.tamper(vm.name);
    await page.waitForFunction(
      (n) => document.querySelector(`#map-list tr[data-vm="${n}"] [data-trust]`)?.textContent === 'untrusted' && /untrusted/.test(document.getElementById('map-cursor')?.textContent ?? ''),
      vm.name, { timeout: 5_000, polling: 10 },
    );
    const elapsed = Date.now() - t0;
    t.diagnostic(`shown untrusted ${elapsed} ms after its agent began sending the failing evidence`);
    assert.ok(elapsed < 1000, `shown untrusted after ${elapsed} ms`);
    assert.equal(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded), true, 'the page was reloaded');
    // gateway isolates an untrusted VM: no colors now, and the map is redrawn
    assert.match((await cursor.textContent()) ?? '', /isolated \(.*untrusted/);
    assert.match((await row.textContent()) ?? '', /isolated/);
    const afterShot = await page.locator('canvas.map-canvas').screenshot();
    assert.notDeepEqual(afterShot, before, 'the map was not redrawn');
    await screenshot(page, 'map-untrusted');
  });

  it('lists the blocked attempts the agents report, with their counts and the reason in words, linking to the VMs', async () => {
    const page = await open();
    const host = f.hosts[1];
    const on = f.vms.filter((v) => v.host === host);
    const web = on.find((v) => v.label === 'web')!;
    const db = on.find((v) => v.label === 'db')!;
    const cache = on.find((v) => v.label === 'cache')!;
    const port = async (n: string) => (await f.api<{ ports: string[] }>('GET', `/api/v1/vms/${n}`)).ports[0];
    await f.report(host, [
      { from: web.name, to: db.name, fromPort: await port(web.name), toPort: await port(db.name), packets: 37, bytes: 3700, reason: 'no_common_color' },
      { from: cache.name, to: web.name, fromPort: await port(cache.name), toPort: await port(web.name), packets: 4, bytes: 400, reason: 'isolated' },
    ]);
    const list = page.getByRole('region', { name: 'Blocked attempts' });
    const first = list.locator(`tr[data-from="${web.name}"]`);
    await first.waitFor({ timeout: 5_000 });
    const cells = async (r: typeof first) => (await r.locator('td').allTextContents()).map((s) => s.trim());
    assert.deepEqual(await cells(first), [web.name, db.name, host, '37', 'no common color']);
    assert.deepEqual(await cells(list.locator(`tr[data-from="${cache.name}"]`)), [cache.name, web.name, host, '4', 'isolated']);
    // reported again: the counts add up
    await f.report(host, [{ from: web.name, to: db.name, fromPort: await port(web.name), toPort: await port(db.name), packets: 5, bytes: 500, reason: 'no_common_color' }]);
    await page.waitForFunction((n) => document.querySelector(`tr[data-from="${n}"] td.num`)?.textContent === '42', web.name, { timeout: 5_000 });
    await screenshot(page, 'map-blocked');
    await first.getByRole('link', { name: db.name }).click();
    await page.waitForFunction((n) => location.hash === `#/vm/${encodeURIComponent(n)}`, db.name);
  });

  it('narrows the map with the filters: label, color, host, trust state and text', async () => {
    const page = await open();
    const total = f.vms.length;
    const shows = async (n: number) => {
      await page.waitForFunction((t) => document.querySelector('.map-count')?.textContent?.startsWith(t), `${n} of ${total} VMs shown`, { timeout: 5_000 });
    };
    const byLabel = f.vms.filter((v) => v.label === 'db').length;
    await page.getByLabel('Label', { exact: true }).selectOption({ label: 'db' });
    await shows(byLabel);
    await page.getByRole('button', { name: 'Clear filters' }).click();
    await shows(total);

    // red: the labels that have red (db and gateway)
    const red = Object.entries(POLICY.labels).filter(([, d]) => d.colors?.includes('red')).map(([l]) => l);
    await page.getByLabel('Color', { exact: true }).selectOption({ label: 'red' });
    await shows(f.vms.filter((v) => red.includes(v.label!)).length);
    await page.getByRole('button', { name: 'Clear filters' }).click();

    // one host: only its box is left on the map
    await page.getByLabel('Host', { exact: true }).selectOption({ label: f.hosts[2] });
    await shows(PER_HOST);
    assert.equal(await page.locator('canvas.map-canvas').getAttribute('data-vms'), String(PER_HOST));
    await page.getByRole('button', { name: 'Clear filters' }).click();

    // untrusted: the controller's count of untrusted VMs (the earlier test made one)
    const untrusted = (await f.api<{ trust: string }[]>('GET', '/api/v1/vms')).filter((v) => v.trust === 'untrusted').length;
    assert.ok(untrusted >= 1);
    await page.getByLabel('Trust', { exact: true }).selectOption({ label: 'untrusted' });
    await shows(untrusted);
    await page.getByLabel('Trust', { exact: true }).selectOption({ label: 'trusted' });
    await shows(total - untrusted);
    await page.getByRole('button', { name: 'Clear filters' }).click();

    // text: a host's name, and combined with a label
    await page.getByLabel('Search', { exact: true }).fill(f.hosts[3]);
    await shows(PER_HOST);
    await page.getByLabel('Label', { exact: true }).selectOption({ label: 'web' });
    await shows(f.vms.filter((v) => v.host === f.hosts[3] && v.label === 'web').length);
    await screenshot(page, 'map-filtered');
  });

  it('works from the keyboard alone: Tab to the map, arrows, Enter opens the VM; the list of VMs is reachable by Tab', async () => {
    const page = await open();
    const canvasFocused = () => page.evaluate(() => document.activeElement?.classList.contains('map-canvas') ?? false);
    let tabs = 0;
    while (!(await canvasFocused())) {
      assert.ok(++tabs < 40, 'Tab never reached the map');
      await page.keyboard.press('Tab');
    }
    const cursor = page.locator('#map-cursor');
    const selected = async () => /Selected: (\S+) —/.exec((await cursor.textContent()) ?? '')?.[1];
    // the cursor starts on the first host's first VM
    const [first, second] = f.vms.filter((v) => v.host === f.hosts[0]);
    assert.equal(await selected(), first.name);
    await page.keyboard.press('ArrowRight');
    assert.equal(await selected(), second.name);
    await page.keyboard.press('ArrowLeft');
    assert.equal(await selected(), first.name);
    await page.keyboard.press('ArrowDown');
    const below = await selected();
    assert.notEqual(below, first.name);
    assert.equal(f.vms.find((v) => v.name === below)?.host, f.hosts[0], 'down stays in the host box while it has a row below');
    await page.keyboard.press('ArrowUp');
    assert.equal(await selected(), first.name);
    await page.keyboard.press('End');
    assert.equal(await selected(), f.vms[f.vms.length - 1].name);
    await page.keyboard.press('Home');
    await page.keyboard.press('ArrowRight');
    await screenshot(page, 'map-keyboard');
    await page.keyboard.press('Enter');
    await page.waitForFunction((n) => location.hash === `#/vm/${encodeURIComponent(n)}`, second.name);

    // back on the map: the list of VMs, by Tab and Enter only
    await page.goBack();
    await page.locator('canvas[data-ready="true"]').waitFor();
    await page.getByLabel('Search', { exact: true }).focus();
    const focusedText = () => page.evaluate(() => document.activeElement?.textContent ?? '');
    tabs = 0;
    while ((await focusedText()) !== 'Show the VMs as a list') {
      assert.ok(++tabs < 40, 'Tab never reached the list button');
      await page.keyboard.press('Tab');
    }
    await page.keyboard.press('Enter');
    await page.locator('#map-list').waitFor();
    tabs = 0;
    while ((await page.evaluate(() => document.activeElement?.closest('#map-list') ? document.activeElement.tagName : '')) !== 'A') {
      assert.ok(++tabs < 10, 'Tab never reached a VM in the list');
      await page.keyboard.press('Tab');
    }
    assert.equal(await focusedText(), first.name);
    await page.keyboard.press('Tab');
    assert.equal(await focusedText(), second.name);
    await page.keyboard.press('Enter');
    await page.waitForFunction((n) => location.hash === `#/vm/${encodeURIComponent(n)}`, second.name);
  });

  it('shows names that look like HTML as text', async () => {
    const host = f.hosts[0];
    const label = '<img src=x onerror=window.pwned=1>';
    // (a VM's name may hold anything but `/` and control characters)
    const vm = `<b onmouseover=window.pwned=2>evil<b>"'&amp;`;
    // a policy with that label (version 2), and a VM with both names reported by the host's agent
    const text = FLEET_POLICY.replace('version: "1.0"', 'version: "1.1"\nfrom: { policy: seeded, version: "1.0" }').replace('resources:', `  "${label}": { colors: [gold] }\nresources:`);
    const d = await f.api<{ id: string }>('POST', '/api/v1/policy/drafts', { text });
    await f.api('POST', `/api/v1/policy/drafts/${d.id}/publish`, { note: 'a label with markup', mode: 'reject' });
    const mine = (await f.api<{ name: string; host: string; label: string | null; running: boolean; ports: string[] }[]>('GET', '/api/v1/vms')).filter((v) => v.host === host);
    await f.api('PUT', `/api/v1/hosts/${host}/vms`, {
      vms: [...mine.map((v) => ({ name: v.name, label: v.label, running: v.running, ports: v.ports })), { name: vm, label, running: true, ports: ['tapevil'] }],
    }, f.agentToken(host));

    const page = await open();
    await page.getByLabel('Search', { exact: true }).fill('evil');
    await page.waitForFunction(() => document.querySelector('.map-count')?.textContent?.startsWith('1 of'));
    await page.getByRole('button', { name: 'Show the VMs as a list' }).click();
    const row = page.locator('#map-list tbody tr');
    assert.equal(await row.locator('td').nth(0).textContent(), vm);
    assert.equal(await row.locator('td').nth(2).textContent(), label);
    await page.getByRole('application', { name: /fleet map/i }).focus();
    assert.match((await page.locator('#map-cursor').textContent()) ?? '', new RegExp(`Selected: ${vm.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} — label ${label.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    assert.equal(await page.getByRole('region', { name: 'Legend' }).locator('li[data-label] .name').filter({ hasText: label }).textContent(), label);
    assert.equal(await page.getByLabel('Label', { exact: true }).locator('option').filter({ hasText: label }).count(), 1);
    // nothing of it became markup
    assert.equal(await page.locator('main img, main b').count(), 0);
    // hover the first VM of the one host left (ours sorts first): the tooltip holds the same text
    const box = (await page.locator('canvas.map-canvas').boundingBox())!;
    const tip = page.getByRole('tooltip');
    search: for (let y = 2; y < 120; y += 4) {
      for (let x = 2; x < 120; x += 4) {
        await page.mouse.move(box.x + x, box.y + y);
        if (await tip.count()) break search;
      }
    }
    assert.equal(await tip.locator('strong').textContent(), vm);
    assert.match((await tip.textContent()) ?? '', new RegExp(`label${label.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    assert.equal(await page.evaluate(() => (window as unknown as { pwned?: number }).pwned), undefined);
    await screenshot(page, 'map-html-names');
  });
});
