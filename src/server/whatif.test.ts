/**
 * The console's server side: what-if questions about the live fleet (two VMs: may they talk, by policy and now;
 * a VM and a host: may it start there now, and who stands in the way — never audited as a denied start), the
 * audit log newest first, and the console's files (a strict CSP; only files of the build are served).
 */
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { formatAsciiLine } from '../integrity/ima-entry.ts';
import { pathEntry } from '../integrity/measure-entry.ts';
import { AGENT_HOST, startServer, type TestServer } from './server.test-support.ts';

const POLICY = `policy: whatif
version: "1.0"
colors: [blue, red]
walls: [a, b]
conflicts:
  rivals: [a, b]
host: hv
labels:
  hv:     { colors: [blue, red] }
  blue-a: { colors: [blue], walls: [a] }
  red-b:  { colors: [red], walls: [b] }
  both:   { colors: [blue, red] }
`;

const sha = (s: string) => new Uint8Array(createHash('sha256').update(s).digest());
const entry = (path: string, content: string) => formatAsciiLine(pathEntry('file', path, sha(content)));

describe('what-if', () => {
  let s: TestServer;
  const ask = (path: string, body: unknown, token = s.tokens.viewer) => s.call('POST', path, { token, body });
  before(async () => {
    s = await startServer({ rateLimit: false, tickMs: false });
    await s.publish(POLICY);
    const inv = await s.call('PUT', `/api/v1/hosts/${AGENT_HOST}/vms`, {
      token: s.tokens.agent,
      body: { vms: [
        { name: 'alpha', running: true, label: 'blue-a' },
        { name: 'gate', running: true, label: 'both' },
        { name: 'rival', running: false, label: 'red-b' },
      ] },
    });
    assert.equal(inv.status, 200, inv.text);
  });
  after(() => s.close());

  test('two VMs whose labels share blue may talk by policy, but not before they are trusted; then through blue', async () => {
    let r = await ask('/api/v1/whatif/share', { a: 'alpha', b: 'gate' });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.allow, true);
    assert.deepEqual(r.json.colors, ['blue']);
    assert.equal(r.json.now, false, 'unverified VMs hold no colors: fail closed');
    assert.equal(r.json.reason, 'isolated');
    assert.match(r.json.message, /not now/);

    const ev = await s.call('POST', `/api/v1/hosts/${AGENT_HOST}/evidence`, {
      token: s.tokens.agent,
      body: { vms: ['alpha', 'gate'].map((vm) => ({ vm, entries: [entry('/usr/bin/app', vm)], from: 0 })) },
    });
    assert.equal(ev.status, 200, ev.text);
    r = await ask('/api/v1/whatif/share', { a: 'alpha', b: 'gate' });
    assert.equal(r.json.now, true, r.text);
    assert.deepEqual(r.json.nowColors, ['blue']);
    assert.match(r.json.message, /alpha and gate may talk through blue/);
  });

  test('blue and red share no color: refused, with no colors named', async () => {
    const r = await ask('/api/v1/whatif/share', { a: 'alpha', b: 'rival' });
    assert.equal(r.json.allow, false);
    assert.equal(r.json.now, false);
    assert.equal(r.json.reason, 'no_common_color');
    assert.deepEqual(r.json.colors, []);
  });

  test('a VM of the rival wall type may not start where alpha runs: the conflict set and alpha are named, and nothing is audited', async () => {
    const before = (await s.call('GET', '/api/v1/audit?action=admission.deny', { token: s.tokens.viewer })).json.length;
    const r = await ask('/api/v1/whatif/start', { vm: 'rival', host: AGENT_HOST });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.allow, false);
    assert.equal(r.json.reason, 'conflict_set_occupied');
    assert.deepEqual(r.json.details.standing, [{ conflictSet: 'rivals', runningLabel: 'blue-a', vms: ['alpha'] }]);
    const afterwards = (await s.call('GET', '/api/v1/audit?action=admission.deny', { token: s.tokens.viewer })).json.length;
    assert.equal(afterwards, before, 'a what-if is not a denied start');
    // the same VM may start once alpha stops
    const inv = await s.call('PUT', `/api/v1/hosts/${AGENT_HOST}/vms`, {
      token: s.tokens.agent,
      body: { vms: [{ name: 'alpha', running: false, label: 'blue-a' }, { name: 'gate', running: true, label: 'both' }, { name: 'rival', running: false, label: 'red-b' }] },
    });
    assert.equal(inv.status, 200, inv.text);
    const again = await ask('/api/v1/whatif/start', { vm: 'rival', host: AGENT_HOST });
    assert.equal(again.json.allow, true, again.text);
  });

  test('unknown names are 404 naming them; a malformed question is 400 naming the field', async () => {
    const r = await ask('/api/v1/whatif/share', { a: 'alpha', b: 'ghost' });
    assert.equal(r.status, 404);
    assert.match(r.text, /ghost/);
    const h = await ask('/api/v1/whatif/start', { vm: 'alpha', host: 'nowhere' });
    assert.equal(h.status, 404);
    assert.match(h.text, /nowhere/);
    const bad = await ask('/api/v1/whatif/start', { vm: 'alpha' });
    assert.equal(bad.status, 400);
    assert.match(bad.text, /host/);
  });
});

describe('the audit log, newest first', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer({ rateLimit: false, tickMs: false });
    await s.publish(POLICY);
    for (const name of ['one', 'two', 'three']) {
      await s.call('POST', '/api/v1/tokens', { token: s.tokens.admin, body: { name, role: 'viewer' } });
    }
  });
  after(() => s.close());

  test('order=desc gives the newest first; beforeSeq pages back; filters still apply', async () => {
    const all = (await s.call('GET', '/api/v1/audit', { token: s.tokens.viewer })).json as { seq: number; action: string }[];
    const desc = (await s.call('GET', '/api/v1/audit?order=desc&limit=2', { token: s.tokens.viewer })).json as { seq: number }[];
    assert.deepEqual(desc.map((r) => r.seq), [all.at(-1)!.seq, all.at(-2)!.seq]);
    const older = (await s.call('GET', `/api/v1/audit?order=desc&limit=2&beforeSeq=${desc[1].seq}`, { token: s.tokens.viewer })).json as { seq: number }[];
    assert.deepEqual(older.map((r) => r.seq), [all.at(-3)!.seq, all.at(-4)!.seq]);
    const created = (await s.call('GET', '/api/v1/audit?order=desc&action=token.create', { token: s.tokens.viewer })).json as { details: { name: string } }[];
    assert.deepEqual(created.map((r) => r.details.name), ['three', 'two', 'one']);
  });
});

describe('the console\'s files', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer({ rateLimit: false, tickMs: false });
  });
  after(() => s.close());

  test('the page needs no credential and carries a CSP that allows no inline script and no frames', async () => {
    const r = await s.call('GET', '/');
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /text\/html/);
    const csp = r.headers.get('content-security-policy') ?? '';
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
  });

  test('assets are served with their type and cached; nothing else is: not other files, not paths', async () => {
    const a = await s.call('GET', '/assets/app-test.js');
    assert.equal(a.status, 200);
    assert.match(a.headers.get('content-type') ?? '', /javascript/);
    assert.match(a.headers.get('cache-control') ?? '', /immutable/);
    for (const p of ['/assets/nothing.js', '/assets/..%2findex.html', '/assets/%2e%2e%2f%2e%2e%2fpackage.json']) {
      const r = await s.call('GET', p);
      assert.equal(r.status, 404, p);
    }
    // API routes still need a credential
    assert.equal((await s.call('GET', '/api/v1/vms')).status, 401);
  });

  test('a controller without a built console says how to build it', async () => {
    const bare = await startServer({ rateLimit: false, tickMs: false, consoleDir: null });
    try {
      const r = await bare.call('GET', '/');
      assert.equal(r.status, 503);
      assert.match(r.text, /npm run build:console/);
    } finally {
      await bare.close();
    }
  });
});
