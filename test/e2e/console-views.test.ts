/**
 * The console's VM page, what-if view and audit timeline, in a real Chromium against a real controller holding a
 * seeded fleet (3 hosts × 6 VMs: web blue, db red, cache green, gateway blue+red, bank-a-app amber — bank-b-app teal
 * on the last host —, oil-a-app violet). What a user sees is asserted: the VM's label, colors, host, peers and trust
 * history; a VM that turns untrusted while its page is open, within a second, with the failing entry's path and
 * digests (computed here, independently); re-admission by an operator (refused without a reason before anything is
 * sent) and none offered to a viewer; the what-if answers; the audit records, filtered and arriving live; and the
 * what-if view used with the keyboard alone. Screenshots go to test-artifacts/console/.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { formatAsciiLine } from '../../src/integrity/ima-entry.ts';
import { pathEntry } from '../../src/integrity/measure-entry.ts';
import { browserMissing, ensureConsoleBuilt, launch, screenshot, signedIn } from '../support/browser.ts';
import { PASSWORD, USERS, startSeededFleet, type SeededFleet } from '../support/seeded-fleet.ts';

const why = browserMissing();
if (why) console.log(`# skipping the console's VM page, what-if and audit tests: ${why}`);

const sha256hex = (s: string) => createHash('sha256').update(s).digest('hex');
/** a measurement line as an agent sends it (what test/support/seeded-fleet.ts sends for the first evidence) */
const line = (path: string, content: string) => formatAsciiLine(pathEntry('file', path, new Uint8Array(createHash('sha256').update(content).digest())));

const DISK = '/var/lib/hueguard/images/web 000.qcow2';
/** a VM whose name is HTML: the console must show it as text */
const HTML_NAME = '<img src=x onerror="window.__pwned=1">&amp;';

async function open(page: Page, url: string, hash: string): Promise<void> {
  await page.goto(`${url}/#${hash}`);
}

/** Tab until the focused element satisfies `test` (at most `max` presses); fails otherwise. */
async function tabTo(page: Page, what: string, test: (el: { id: string; text: string; tag: string }) => boolean, max = 40): Promise<void> {
  for (let i = 0; i < max; i++) {
    await page.keyboard.press('Tab');
    const el = await page.evaluate(() => {
      const a = document.activeElement as HTMLElement | null;
      return { id: a?.id ?? '', text: (a?.textContent ?? '').trim(), tag: a?.tagName ?? '' };
    });
    if (test(el)) return;
  }
  assert.fail(`${max} presses of Tab never reached ${what}`);
}

describe('console: the VM page, what-if and the audit timeline', { skip: why ?? false }, () => {
  let f: SeededFleet;
  let browser: Browser;

  before(async () => {
    ensureConsoleBuilt();
    f = await startSeededFleet({ hosts: 3, vmsPerHost: 6 });
    browser = await launch();
    // vm-000-00 uses a disk labeled web-disk (blue); host-001 gains a VM whose name is HTML
    await f.api('PUT', `/api/v1/resources/disk/${encodeURIComponent(DISK)}`, { label: 'web-disk', reason: 'the web images' });
    const inventory = (h: number) => f.vms.filter((v) => v.host === f.hosts[h]).map((v, i) => ({ name: v.name, label: v.label, running: true, ports: [`tap${h}x${i}`] }));
    await f.api('PUT', '/api/v1/hosts/host-000/vms', {
      vms: inventory(0).map((v) => v.name === 'vm-000-00' ? { ...v, resources: [{ kind: 'disk', id: DISK }] } : v),
    }, f.agentToken('host-000'));
    await f.api('PUT', '/api/v1/hosts/host-001/vms', {
      vms: [...inventory(1), { name: HTML_NAME, label: 'web', running: true, ports: ['tap1x9'] }],
    }, f.agentToken('host-001'));
    // host-000's data plane dropped frames from web (blue) to db (red)
    await f.report('host-000', [{ from: 'vm-000-00', to: 'vm-000-01', fromPort: 'tap0x0', toPort: 'tap0x1', packets: 12, bytes: 1200, reason: 'no_common_color' }]);
  });

  after(async () => {
    await browser?.close();
    await f?.close();
  });

  it('a VM\'s page shows its label, colors, host, disk, peers (same color listed, other colors not) and trust history', async () => {
    const page = await signedIn(browser, f.url, USERS.viewer, PASSWORD);
    await open(page, f.url, '/vm/vm-000-00');
    await page.getByRole('heading', { level: 1, name: /vm-000-00/ }).waitFor();
    assert.equal(await page.getByTestId('vm-label').innerText(), 'web');
    assert.equal(await page.getByTestId('vm-host').innerText(), 'host-000');
    assert.match(await page.getByTestId('vm-label-colors').innerText(), /\bblue\b/);
    assert.match(await page.getByTestId('vm-effective-colors').innerText(), /\bblue\b/);
    assert.equal(await page.locator('.vm-head [data-trust]').innerText(), 'trusted');

    const disk = page.locator('table.resources tbody tr');
    assert.equal(await disk.count(), 1);
    const diskText = await disk.innerText();
    assert.ok(diskText.includes(DISK), diskText);
    assert.match(diskText, /disk\s+.*web-disk\s+blue/s);

    const peers = page.getByRole('region', { name: 'May talk to now' });
    await peers.getByRole('link', { name: 'vm-001-00', exact: true }).waitFor(); // web, blue, on another host
    await peers.getByRole('link', { name: 'vm-000-03', exact: true }).waitFor(); // gateway: blue and red
    assert.equal(await peers.getByRole('link', { name: 'vm-000-01', exact: true }).count(), 0, 'db (red) is no peer of web (blue)');
    assert.equal(await peers.getByRole('link', { name: 'vm-000-02', exact: true }).count(), 0, 'cache (green) is no peer of web (blue)');
    // 18 seeded VMs and one more, unverified: web on 3 hosts and gateway on 3 share blue (5 others), 13 do not
    assert.match(await peers.innerText(), /5 running VMs share a color with it now/);
    assert.match(await page.getByTestId('may-not').innerText(), /may not talk to 13 other running VMs/);

    const blocked = page.getByRole('region', { name: 'Blocked attempts' }).locator('tbody tr');
    assert.equal(await blocked.count(), 1);
    assert.match(await blocked.innerText(), /vm-000-00\s*→\s*vm-000-01\s+host-000\s+no common color\s+12\s+1200/);
    assert.equal(await blocked.getByRole('link', { name: 'vm-000-01', exact: true }).getAttribute('href'), '#/vm/vm-000-01');

    const history = page.getByRole('region', { name: 'Trust history' });
    const rows = history.locator('tbody tr');
    assert.equal(await rows.count(), 2);
    // newest first: the enrollment, then the VM's arrival
    assert.match(await rows.nth(0).innerText(), /unverified\s*→\s*trusted.*enrolled the golden fingerprint from 3 entries\s+verifier/s);
    assert.match(await rows.nth(1).innerText(), /new VM: no evidence yet/);

    // a viewer is offered neither re-admission nor a label change
    assert.equal(await page.getByRole('form', { name: 'Change label' }).count(), 0);
    assert.equal(await page.getByRole('form', { name: 'Re-admit' }).count(), 0);
    await screenshot(page, 'vm-page');

    // a peer's link opens its page
    await peers.getByRole('link', { name: 'vm-001-00', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: /vm-001-00/ }).waitFor();
    assert.match(page.url(), /#\/vm\/vm-001-00$/);
    await page.context().close();
  });

  it('names from the fleet are shown as text, never as HTML', async () => {
    const page = await signedIn(browser, f.url, USERS.viewer, PASSWORD);
    await open(page, f.url, `/vm/${encodeURIComponent(HTML_NAME)}`);
    await page.getByRole('heading', { level: 1 }).filter({ hasText: HTML_NAME }).waitFor();
    assert.equal(await page.getByTestId('vm-host').innerText(), 'host-001');
    assert.equal(await page.locator('main img').count(), 0);
    assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined);
    // it holds no color yet (no evidence: unverified)
    await page.getByTestId('no-peers').waitFor();
    await page.context().close();
  });

  it('a VM that turns untrusted shows so within a second, with the failing path and its digests; an operator re-admits it with a reason', async () => {
    const vm = 'vm-001-00';
    const page = await signedIn(browser, f.url, USERS.operator, PASSWORD);
    const readmits: string[] = [];
    page.on('request', (r) => { if (r.method() === 'POST' && r.url().includes('/readmit')) readmits.push(r.url()); });
    await open(page, f.url, `/vm/${vm}`);
    await page.getByTestId('trust-state').locator('[data-trust="trusted"]').waitFor();
    assert.equal(await page.getByRole('form', { name: 'Re-admit' }).count(), 0, 'a trusted VM is not re-admitted');

    const t0 = Date.now();
    await f.tamper(vm);
    await page.locator('.vm-head [data-trust="untrusted"]').waitFor({ timeout: 5_000 });
    const row = page.locator('table.failures tbody tr').filter({ hasText: '/usr/bin/app' });
    await row.waitFor({ timeout: 5_000 });
    const elapsed = Date.now() - t0;
    console.log(`# the VM page showed untrusted and the failing entry ${elapsed} ms after the evidence was sent`);
    assert.ok(elapsed < 1_000, `shown after ${elapsed} ms`);

    const expected = sha256hex(`app of ${vm}`);
    const found = sha256hex('a rootkit');
    const cells = row.locator('td');
    assert.equal(await cells.nth(1).innerText(), '/usr/bin/app');
    assert.equal(await cells.nth(2).innerText(), 'mismatch');
    assert.equal(await cells.nth(3).innerText(), expected);
    assert.equal(await cells.nth(4).innerText(), found);
    assert.equal(await cells.nth(5).innerText(), 'sha256');
    assert.equal(await page.getByTestId('trust-state').locator('[data-trust]').innerText(), 'untrusted');
    // untrusted: it holds no color, so it may talk to no one
    await page.getByTestId('no-peers').waitFor();
    assert.match(await page.getByTestId('vm-effective-colors').innerText(), /isolated/);
    await screenshot(page, 'vm-untrusted');

    // re-admission: a reason is required, checked before anything is sent
    const form = page.getByRole('form', { name: 'Re-admit' });
    await form.waitFor();
    await form.getByRole('button', { name: 'Re-admit' }).click();
    const reason = form.getByLabel('Reason');
    await form.getByText('Give a reason').waitFor();
    assert.equal(await reason.getAttribute('aria-invalid'), 'true');
    await reason.fill('   ');
    await form.getByRole('button', { name: 'Re-admit' }).click();
    await form.getByText('Give a reason').waitFor();
    assert.deepEqual(readmits, [], 'nothing was sent without a reason');
    await screenshot(page, 'vm-readmit-no-reason');

    const why = 'restored /usr/bin/app from the package <b>bold?</b>';
    await reason.fill(why);
    await form.getByLabel(/Baseline/).check();
    await form.getByRole('button', { name: 'Re-admit' }).click();
    await page.getByText(/Re-admitted: unverified now/).waitFor();
    assert.equal(readmits.length, 1);
    const api = await f.api<{ state: string }>('GET', `/api/v1/vms/${vm}/trust`);
    assert.equal(api.state, 'unverified');
    await page.getByTestId('trust-state').locator(`[data-trust="${api.state}"]`).waitFor();
    await page.locator(`.vm-head [data-trust="${api.state}"]`).waitFor();
    assert.equal(await page.getByRole('form', { name: 'Re-admit' }).count(), 0, 'no longer untrusted: no re-admission');
    const newest = page.getByRole('region', { name: 'Trust history' }).locator('tbody tr').first();
    await newest.filter({ hasText: 're-admitted' }).waitFor();
    const text = await newest.innerText();
    assert.match(text, /untrusted\s*→\s*unverified/);
    assert.ok(text.includes(`re-admitted: ${why}`), text);
    assert.match(text, /user:otto/);
    assert.equal(await page.locator('table.history b').count(), 0, 'the reason is text, not HTML');
    await screenshot(page, 'vm-readmitted');

    // its next good evidence (the baseline goes on from entry 5): trusted again, shown live
    await f.api('POST', '/api/v1/hosts/host-001/evidence', { vms: [{ vm, entries: [line('/usr/lib/libc.so', 'libc')], from: 4 }] }, f.agentToken('host-001'));
    const after = await f.api<{ state: string }>('GET', `/api/v1/vms/${vm}/trust`);
    assert.equal(after.state, 'trusted');
    await page.locator('.vm-head [data-trust="trusted"]').waitFor({ timeout: 2_000 });
    await page.getByTestId('trust-state').locator('[data-trust="trusted"]').waitFor({ timeout: 2_000 });
    await page.getByRole('region', { name: 'May talk to now' }).getByRole('link', { name: 'vm-000-00', exact: true }).waitFor();
    await page.context().close();
  });

  it('an operator changes a label: the controller\'s refusal is shown next to the label; a good one is taken', async () => {
    const page = await signedIn(browser, f.url, USERS.operator, PASSWORD);
    await open(page, f.url, '/vm/vm-001-01');
    const form = page.getByRole('form', { name: 'Change label' });
    await form.waitFor();
    const label = form.getByLabel('Label', { exact: true });
    // the same label: refused here
    await form.getByRole('button', { name: 'Change label' }).click();
    await form.getByText(/already has label “db”/).waitFor();
    // bank-b-app on host-001, where bank-a-app (vm-001-04) runs: the controller refuses (409), next to the field
    await label.selectOption('bank-b-app');
    await form.getByLabel(/Reason/).fill('try the rival bank');
    await form.getByRole('button', { name: 'Change label' }).click();
    const err = page.locator('#vm-new-label-error');
    await err.waitFor();
    assert.match(await err.innerText(), /conflict set "banks" is held by running label "bank-a-app"/);
    assert.equal(await label.getAttribute('aria-invalid'), 'true');
    assert.equal(await label.getAttribute('aria-describedby'), 'vm-new-label-error');
    await screenshot(page, 'vm-label-refused');
    await label.selectOption('cache');
    await form.getByRole('button', { name: 'Change label' }).click();
    await form.getByText('Label changed to “cache”.').waitFor();
    await page.getByTestId('vm-label').filter({ hasText: /^cache$/ }).waitFor();
    assert.equal((await f.api<{ label: string }>('GET', '/api/v1/vms/vm-001-01')).label, 'cache');
    await page.context().close();
  });

  it('a viewer sees an untrusted VM and its failing entry, and is offered no re-admission', async () => {
    const vm = 'vm-000-02';
    await f.tamper(vm);
    const page = await signedIn(browser, f.url, USERS.viewer, PASSWORD);
    await open(page, f.url, `/vm/${vm}`);
    await page.locator('.vm-head [data-trust="untrusted"]').waitFor();
    await page.locator('table.failures tbody tr').filter({ hasText: '/usr/bin/app' }).filter({ hasText: sha256hex(`app of ${vm}`) }).waitFor();
    await page.getByText('An operator may re-admit it.').waitFor();
    assert.equal(await page.getByRole('form', { name: 'Re-admit' }).count(), 0);
    assert.equal(await page.getByRole('button', { name: 'Re-admit' }).count(), 0);
    assert.equal(await page.getByRole('form', { name: 'Change label' }).count(), 0);
    await screenshot(page, 'vm-untrusted-viewer');
    await page.context().close();
  });

  it('what-if, two VMs: the same color is allowed and named, different colors have no common color, a tampered VM is allowed by policy but not now', async () => {
    const page = await signedIn(browser, f.url, USERS.viewer, PASSWORD);
    const asked: string[] = [];
    page.on('request', (r) => { if (r.url().endsWith('/api/v1/whatif/share')) asked.push(r.postData() ?? ''); });
    await open(page, f.url, '/whatif');
    const q = page.getByRole('region', { name: 'May these two VMs talk?' });
    const first = q.getByLabel('First VM');
    const second = q.getByLabel('Second VM');
    const answer = q.getByTestId('share-answer');

    // checked before sending: an empty pick, a name the fleet does not hold
    await q.getByRole('button', { name: 'Ask' }).click();
    await q.getByText('Pick a VM.').first().waitFor();
    await first.fill('vm-000-00');
    await second.fill('no-such-vm');
    await q.getByRole('button', { name: 'Ask' }).click();
    await q.getByText('No VM named “no-such-vm” in the fleet.').waitFor();
    assert.equal(await second.getAttribute('aria-invalid'), 'true');
    assert.deepEqual(asked, []);

    await second.fill('vm-002-00');
    await q.getByRole('button', { name: 'Ask' }).click();
    await answer.filter({ hasText: 'vm-002-00' }).waitFor();
    assert.equal(await answer.locator('[data-verdict]').first().getAttribute('data-verdict'), 'allow');
    assert.match(await answer.locator('[data-verdict]').first().innerText(), /✔\s*Allowed by the policy/);
    assert.match(await answer.getByTestId('share-colors').innerText(), /Matching colors:\s*blue/);
    assert.match(await answer.innerText(), /They may talk now, through\s*blue/);
    await screenshot(page, 'whatif-share-allowed');

    await second.fill('vm-000-01');
    await q.getByRole('button', { name: 'Ask' }).click();
    await answer.filter({ hasText: 'vm-000-01' }).waitFor();
    assert.match(await answer.locator('[data-verdict]').first().innerText(), /✘\s*Not allowed by the policy/);
    assert.match(await answer.getByTestId('share-colors').innerText(), /no common color/);
    assert.equal(await answer.locator('.chip').count() > 0, true, 'each VM\'s own colors are still shown');
    await screenshot(page, 'whatif-share-denied');

    // a tampered VM and a peer of the same label: the policy allows it, enforcement does not, now
    await f.tamper('vm-002-02');
    await first.fill('vm-002-02');
    await second.fill('vm-001-02');
    await q.getByRole('button', { name: 'Ask' }).click();
    await answer.filter({ hasText: 'vm-001-02' }).waitFor();
    const verdicts = answer.locator('[data-verdict]');
    assert.match(await verdicts.nth(0).innerText(), /Allowed by the policy/);
    assert.match(await answer.getByTestId('share-colors').innerText(), /green/);
    assert.equal(await verdicts.nth(1).getAttribute('data-verdict'), 'deny');
    assert.match(await verdicts.nth(1).innerText(), /not now/);
    assert.match(await answer.getByTestId('share-message').innerText(), /untrusted/);
    await screenshot(page, 'whatif-share-not-now');

    // the answer follows the fleet: a pair allowed now turns "not now" when one of them turns untrusted
    await first.fill('vm-000-03');
    await second.fill('vm-001-03');
    await q.getByRole('button', { name: 'Ask' }).click();
    await answer.filter({ hasText: 'vm-001-03' }).waitFor();
    await answer.locator('[data-verdict="allow"]').filter({ hasText: 'They may talk now' }).waitFor();
    await f.tamper('vm-001-03');
    await answer.locator('[data-verdict="deny"]').filter({ hasText: 'But not now' }).waitFor({ timeout: 3_000 });
    await page.context().close();
  });

  it('what-if, a VM on a host: bank-b-app on host-000 is refused, naming conflict set banks and the bank-a-app VM running there', async () => {
    const page = await signedIn(browser, f.url, USERS.viewer, PASSWORD);
    await open(page, f.url, '/whatif');
    const q = page.getByRole('region', { name: 'May this VM start on this host now?' });
    const answer = q.getByTestId('start-answer');
    // checked before sending
    await q.getByRole('button', { name: 'Ask' }).click();
    await q.getByText('Pick a VM.').waitFor();
    await q.getByText('Pick a host.').waitFor();

    // a web VM may start anywhere
    await q.getByLabel('VM', { exact: true }).fill('vm-002-00');
    await q.getByLabel('Host', { exact: true }).selectOption('host-000');
    await q.getByRole('button', { name: 'Ask' }).click();
    await answer.filter({ hasText: 'vm-002-00' }).waitFor();
    assert.match(await answer.locator('[data-verdict]').innerText(), /✔\s*May start: vm-002-00 on host-000 now/);

    // vm-002-04 runs bank-b-app on the last host; host-000 runs bank-a-app (vm-000-04)
    await q.getByLabel('VM', { exact: true }).fill('vm-002-04');
    await q.getByRole('button', { name: 'Ask' }).click();
    await answer.filter({ hasText: 'vm-002-04' }).waitFor();
    assert.match(await answer.locator('[data-verdict]').innerText(), /✘\s*May not start: vm-002-04 on host-000 now/);
    const conflicts = answer.getByTestId('start-conflicts');
    const banks = conflicts.locator('li[data-conflict-set="banks"]');
    assert.match(await banks.innerText(), /conflict set banks is held by running label bank-a-app — in the way: vm-000-04/);
    const link = banks.getByRole('link', { name: 'vm-000-04', exact: true });
    assert.equal(await link.getAttribute('href'), '#/vm/vm-000-04');
    assert.match(await answer.getByTestId('start-authorized').innerText(), /holds every color/);
    await screenshot(page, 'whatif-start-refused');
    await link.click();
    await page.getByRole('heading', { level: 1, name: /vm-000-04/ }).waitFor();
    assert.equal(await page.getByTestId('vm-label').innerText(), 'bank-a-app');
    await page.context().close();
  });

  it('the audit timeline shows the sign-in and a re-admission, filters by action, and shows a new record live', async () => {
    // a re-admission of its own: tamper, then re-admit as the admin token
    await f.tamper('vm-002-01');
    await f.api('POST', '/api/v1/vms/vm-002-01/readmit', { reason: 'audit timeline check', mode: 'reenroll' });
    // and enough records for more than one page (50)
    for (let i = 0; i < 12; i++) await f.api('PUT', `/api/v1/resources/disk/${encodeURIComponent(`/spare/disk-${i}.img`)}`, { label: 'db-disk' });
    const page = await signedIn(browser, f.url, USERS.admin, PASSWORD);
    await open(page, f.url, '/audit');
    const rows = page.locator('table.au-table tbody tr');
    await rows.first().waitFor();
    // newest first: the seqs go down
    const seqs = (await rows.evaluateAll((trs) => trs.map((tr) => Number(tr.getAttribute('data-seq')))));
    assert.deepEqual(seqs, [...seqs].sort((a, b) => b - a));
    const login = rows.filter({ has: page.locator('td.au-action', { hasText: /^session\.login$/ }) }).filter({ has: page.locator('td.au-actor', { hasText: /^user:ada$/ }) });
    assert.ok(await login.count() >= 1, 'ada\'s sign-in is there');
    const readmit = rows.filter({ has: page.locator('td.au-action', { hasText: /^trust\.readmit$/ }) }).filter({ hasText: 'vm/vm-002-01' });
    assert.equal(await readmit.count(), 1);
    assert.match(await readmit.locator('td.au-actor').innerText(), /^token:admin$/);
    await readmit.locator('summary').click();
    const json = await readmit.locator('pre').innerText();
    assert.deepEqual({ ...JSON.parse(json), at: undefined }, { reason: 'audit timeline check', mode: 'reenroll', at: undefined });
    await screenshot(page, 'audit');

    // filter by action (exact, on the controller)
    await page.getByLabel('Action', { exact: true }).fill('trust.readmit');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.getByTestId('au-count').filter({ hasText: /^\d+ records loaded$/ }).waitFor();
    await page.waitForFunction(() => [...document.querySelectorAll('table.au-table td.au-action')].every((td) => td.textContent === 'trust.readmit'));
    const actions = await page.locator('table.au-table td.au-action').allInnerTexts();
    const all = await f.api<{ action: string }[]>('GET', '/api/v1/audit?action=trust.readmit&limit=1000');
    assert.equal(actions.length, all.length);
    assert.ok(actions.length >= 1);
    await screenshot(page, 'audit-filtered');
    await page.getByRole('button', { name: 'Clear' }).click();
    await page.waitForFunction(() => new Set([...document.querySelectorAll('table.au-table td.au-action')].map((td) => td.textContent)).size > 1);

    // live: a sign-in elsewhere comes on top, without a reload, and is announced
    const t0 = Date.now();
    const r = await fetch(`${f.url}/api/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: USERS.viewer, password: PASSWORD }) });
    assert.equal(r.status, 201);
    const top = rows.first();
    await top.filter({ hasText: 'user:vera' }).filter({ hasText: 'session.login' }).waitFor({ timeout: 3_000 });
    console.log(`# the audit timeline showed the new record ${Date.now() - t0} ms after the sign-in`);
    assert.match(await page.getByTestId('au-announce').innerText(), /New audit record: session\.login user:vera by user:vera/);
    await screenshot(page, 'audit-live');

    // older pages, until the first record
    const total = (await f.api<unknown[]>('GET', '/api/v1/audit?limit=1000')).length;
    assert.ok(total > 50, `${total} records: more than a page`);
    for (let i = 0; i < 40 && await page.getByRole('button', { name: 'Load older' }).count() > 0; i++) {
      const before = await rows.count();
      await page.getByRole('button', { name: 'Load older' }).click();
      await page.waitForFunction((n) => document.querySelectorAll('table.au-table tbody tr').length > n || !document.querySelector('.audit > button'), before);
    }
    await page.getByText('The first record is loaded').waitFor();
    assert.ok(await rows.count() >= total, `${await rows.count()} rows for ${total} records`);
    assert.equal(await rows.last().getAttribute('data-seq'), '1');

    // the free-text search within the loaded records
    await page.getByLabel('Find in the loaded records').fill('audit timeline check');
    await page.getByTestId('au-count').filter({ hasText: / of \d+ loaded records$/ }).waitFor();
    const found = await rows.allInnerTexts();
    assert.ok(found.length >= 1 && found.length < total, `${found.length} rows found`);
    for (const t of found) assert.ok(t.includes('audit timeline check') || t.includes('vm-002-01'), t);
    await page.context().close();
  });

  it('the what-if view works with the keyboard alone: the navigation, the pickers, the answers and their links', async () => {
    const page = await signedIn(browser, f.url, USERS.viewer, PASSWORD);
    await page.locator('body').focus();
    await tabTo(page, 'the What-if link', (el) => el.tag === 'A' && el.text === 'What-if', 15);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'What-if' }).waitFor();
    assert.match(page.url(), /#\/whatif$/);

    await tabTo(page, 'the first VM field', (el) => el.id === 'wi-share-a');
    await page.keyboard.type('vm-000-00');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'wi-share-b');
    await page.keyboard.type('vm-001-00');
    await page.keyboard.press('Enter');
    const share = page.getByTestId('share-answer');
    await share.filter({ hasText: 'vm-001-00' }).waitFor();
    assert.match(await share.getByTestId('share-colors').innerText(), /blue/);

    await tabTo(page, 'the start question\'s VM field', (el) => el.id === 'wi-start-vm');
    await page.keyboard.type('vm-002-04');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'wi-start-host');
    await page.keyboard.press('ArrowDown');
    assert.equal(await page.locator('#wi-start-host').inputValue(), 'host-000');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Ask');
    await page.keyboard.press('Enter');
    const start = page.getByTestId('start-answer');
    await start.filter({ hasText: 'vm-002-04' }).waitFor();
    assert.match(await start.locator('[data-verdict]').innerText(), /May not start/);
    await screenshot(page, 'whatif-keyboard');

    // on to the VM in the way, by its link
    await tabTo(page, 'the link to vm-000-04', (el) => el.tag === 'A' && el.text === 'vm-000-04');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: /vm-000-04/ }).waitFor();
    await page.context().close();
  });
});
