/**
 * A host's evidence in one request (`POST /api/v1/hosts/:name/evidence`) and the group commit behind both evidence
 * routes, on a real SQLite store over real HTTP: every VM of the host appraised and stored with one new plan for the
 * host; the request's own faults (schema, a VM twice, an unreadable entry, an unknown VM, a VM of another host)
 * refuse it whole with the field named and store nothing; per-VM refusals (order, nonce) are lines of the answer
 * and the other VMs' increments are stored; a failed appraisal is a verdict; concurrent requests share
 * transactions and each is durable once answered; the fleet kept in memory follows changes made by another
 * controller on the same database; the host's nonces in one request; retention prunes what has expired.
 */
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { formatAsciiLine } from '../integrity/ima-entry.ts';
import { pathEntry } from '../integrity/measure-entry.ts';
import { openSqliteStore } from '../store/sqlite.ts';
import { buildApp } from './app.ts';
import { createToken } from './routes/tokens.ts';
import { prune } from './retention.ts';
import { AGENT_HOST, LAB, call, startServer, type TestServer } from './server.test-support.ts';

const sha = (s: string) => createHash('sha256').update(s).digest();
const line = (path: string, content: string) => formatAsciiLine(pathEntry('file', path, sha(content)));
const FIRST = [line('/usr/bin/a', 'a v1'), line('/usr/bin/b', 'b v1'), line('/etc/web.conf', 'conf v1')];
const VMS = ['web', 'db', 'cache'];

describe('a host\'s evidence in one request', () => {
  let s: TestServer;
  let clock = Date.parse('2031-01-01T00:00:00Z');
  let agent2 = '';
  const host = (body: unknown, token = s.tokens.agent, h = AGENT_HOST) => s.call('POST', `/api/v1/hosts/${h}/evidence`, { token, body });
  const plan = async () => (await s.call('GET', `/api/v1/hosts/${AGENT_HOST}/plan`, { token: s.tokens.viewer })).json;
  /** what the store holds of the VMs' evidence and trust: nothing of a refused request may change it */
  const held = async () => ({
    trust: await s.store.trusts(),
    integrity: await Promise.all(VMS.map((v) => s.store.integrity(v))),
    evidence: await Promise.all(VMS.map((v) => s.store.lastEvidence(v))),
    plan: await s.store.plan(AGENT_HOST),
    audit: (await s.store.audit()).length,
  });

  before(async () => {
    s = await startServer({ now: () => new Date(clock), rateLimit: false, tickMs: false, nonceTtlMs: 60_000 });
    await s.publish(LAB);
    agent2 = (await createToken(s.ctx, { name: 'agent-h2', role: 'agent', host: 'h2' })).secret;
    const vms = [
      { name: 'web', label: 'blue', running: true, ports: ['tap-web'] },
      { name: 'db', label: 'blue', running: true, ports: ['tap-db'] },
      { name: 'cache', label: 'vio', running: true, ports: ['tap-cache'] },
    ];
    assert.equal((await s.call('PUT', `/api/v1/hosts/${AGENT_HOST}/vms`, { token: s.tokens.agent, body: { vms } })).status, 200);
    assert.equal((await s.call('PUT', '/api/v1/hosts/h2/vms', { token: agent2, body: { vms: [{ name: 'far', label: 'red', running: true }] } })).status, 200);
  });
  after(() => s.close());

  test('every VM\'s first evidence in one request: each enrolled and trusted, in order, one new plan for the host', async () => {
    const p0 = await plan();
    const r = await host({ vms: VMS.map((vm) => ({ vm, entries: FIRST, from: 0 })) });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.host, AGENT_HOST);
    assert.equal(r.json.refused, 0);
    assert.deepEqual(r.json.results.map((x: { vm: string }) => x.vm), VMS);
    for (const x of r.json.results) {
      assert.deepEqual([x.verdict.ok, x.verdict.enrolled, x.trust.state], [true, true, 'trusted'], x.vm);
      assert.equal(x.planVersion, p0.version + 1, 'each transition names the plan it is in');
    }
    assert.equal(r.json.planVersion, p0.version + 1, 'one new plan for the three transitions');
    const p1 = await plan();
    assert.equal(p1.version, p0.version + 1);
    assert.deepEqual(p1.vms.map((v: { name: string; colors: string[] }) => [v.name, v.colors]), [['cache', ['blue', 'green']], ['db', ['blue']], ['web', ['blue']]]);
    for (const vm of VMS) assert.equal((await s.store.lastEvidence(vm))?.entries, 3);
    const transitions = (await s.call('GET', '/api/v1/audit?action=trust.transition', { token: s.tokens.viewer })).json;
    assert.deepEqual(transitions.map((a: { subject: string }) => a.subject).sort(), VMS.map((v) => `vm/${v}`).sort());
  });

  test('the request\'s own faults refuse it whole, the field named, and store nothing', async () => {
    const was = await held();
    const good = (vm: string) => ({ vm, entries: [line('/usr/bin/a', 'a v1')], from: 3 });
    const cases: [unknown, number, string, string][] = [
      [{ vms: [good('web'), { entries: [] }] }, 400, 'invalid_parameter', 'body.vms[1].vm'],
      [{ vms: [good('web'), { ...good('db'), extra: 1 }] }, 400, 'invalid_parameter', 'body.vms[1].extra'],
      [{ vms: [] }, 400, 'invalid_parameter', 'body.vms'],
      [{ vms: [good('web'), good('db'), good('web')] }, 400, 'invalid_parameter', 'body.vms[2].vm'],
      [{ vms: [good('web'), { vm: 'db', entries: [FIRST[0], FIRST[1], 'not an ima line'], from: 3 }] }, 400, 'bad_evidence', 'body.vms[1].entries[2]'],
      [{ vms: [good('web'), { vm: 'db', entries: [], from: 3, quote: { attest: 'AAAA', signature: 'AAAA', nonce: 'zz' } }] }, 400, 'invalid_parameter', 'body.vms[1].quote.nonce'],
      [{ vms: [good('web'), good('nobody')] }, 404, 'resource_not_found', 'body.vms[1].vm'],
      [{ vms: [good('web'), good('far')] }, 403, 'forbidden', 'body.vms[1].vm'],
    ];
    for (const [body, status, code, field] of cases) {
      const r = await host(body);
      const what = `${JSON.stringify(body).slice(0, 120)}: ${r.text}`;
      assert.equal(r.status, status, what);
      assert.equal(r.json.code, code, what);
      assert.equal(r.json.details.field, field, what);
    }
    assert.deepEqual(await held(), was, 'nothing was stored');
    // an agent of another host may not send for this one at all
    const other = await host({ vms: [good('web')] }, agent2);
    assert.equal(other.status, 403);
    assert.deepEqual(await held(), was);
  });

  test('a VM out of order or with a used nonce is refused in the answer, the others are stored; a failed appraisal is a verdict', async () => {
    const p0 = await plan();
    clock += 1000;
    const n = await s.call('POST', `/api/v1/hosts/${AGENT_HOST}/nonces`, { token: s.tokens.agent, body: { vms: ['cache'] } });
    assert.equal(n.status, 201, n.text);
    const [{ vm, nonce }] = n.json.nonces;
    assert.equal(vm, 'cache');
    assert.equal(await s.store.useNonce('cache', nonce, new Date(clock).toISOString()), 'ok'); // used already
    const r = await host({
      vms: [
        { vm: 'web', entries: [line('/usr/bin/a', 'a v2')], from: 3 }, // a changed file: untrusted
        { vm: 'db', entries: [line('/usr/bin/b', 'b v1')], from: 7 }, // the verifier is at 3
        { vm: 'cache', entries: [], quote: { attest: 'AAAA', signature: 'AAAA', nonce } },
      ],
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.refused, 2);
    const [web, db, cache] = r.json.results;
    assert.deepEqual([web.verdict.ok, web.trust.state], [false, 'untrusted']);
    assert.equal(web.verdict.failures[0].path, '/usr/bin/a');
    assert.equal(web.planVersion, p0.version + 1);
    assert.deepEqual([db.vm, db.error.code, db.error.details.expected], ['db', 'evidence_out_of_order', 3]);
    assert.deepEqual([cache.vm, cache.error.code], ['cache', 'nonce_replayed']);
    assert.equal(r.json.planVersion, p0.version + 1);
    const p1 = await plan();
    assert.deepEqual(p1.vms.find((v: { name: string }) => v.name === 'web').colors, []);
    assert.equal((await s.store.trust('db'))?.state, 'trusted', 'db: nothing changed');
    assert.equal((await s.store.lastEvidence('db'))?.entries, 3);
    // db sent again from where the verifier stands: taken
    const again = await host({ vms: [{ vm: 'db', entries: [line('/usr/bin/b', 'b v1')], from: 3 }] });
    assert.equal(again.status, 200, again.text);
    assert.deepEqual([again.json.refused, again.json.results[0].verdict.ok, again.json.planVersion], [0, true, undefined]);
  });

  test('host nonces: one per VM named, each for its VM; a VM of another host refuses the request', async () => {
    const r = await s.call('POST', `/api/v1/hosts/${AGENT_HOST}/nonces`, { token: s.tokens.agent, body: { vms: ['web', 'db'] } });
    assert.equal(r.status, 201, r.text);
    assert.deepEqual(r.json.nonces.map((n: { vm: string }) => n.vm), ['web', 'db']);
    const [web, db] = r.json.nonces;
    assert.equal(await s.store.useNonce('db', web.nonce, new Date(clock).toISOString()), 'unknown', 'a nonce is for its own VM');
    assert.equal(await s.store.useNonce('db', db.nonce, new Date(clock).toISOString()), 'ok');
    const far = await s.call('POST', `/api/v1/hosts/${AGENT_HOST}/nonces`, { token: s.tokens.agent, body: { vms: ['web', 'far'] } });
    assert.equal(far.status, 403);
    assert.equal(far.json.details.field, 'body.vms[1]');
    const twice = await s.call('POST', `/api/v1/hosts/${AGENT_HOST}/nonces`, { token: s.tokens.agent, body: { vms: ['web', 'web'] } });
    assert.equal(twice.status, 400);
  });

  test('retention prunes expired nonces and sessions (configurable), keeps what is still in use', async () => {
    const r = await s.call('POST', `/api/v1/hosts/${AGENT_HOST}/nonces`, { token: s.tokens.agent, body: { vms: ['web'] } });
    const kept = r.json.nonces[0].nonce;
    await s.store.putSession({ hash: 'old', user: 'alice', role: 'viewer', csrf: 'x', expiresAt: new Date(clock - 1).toISOString() });
    clock += 61_000; // every nonce issued so far has expired
    const late = await s.call('POST', '/api/v1/vms/web/nonce', { token: s.tokens.agent });
    const counts = await prune(s.ctx);
    assert.ok(counts.nonces >= 3, JSON.stringify(counts));
    assert.equal(counts.sessions, 1);
    assert.equal(await s.store.session('old'), null);
    assert.equal(await s.store.useNonce('web', kept, new Date(clock).toISOString()), 'unknown', 'expired and pruned');
    assert.equal(await s.store.useNonce('web', late.json.nonce, new Date(clock).toISOString()), 'ok', 'not expired: kept');
    assert.match((await s.call('GET', '/metrics', { token: s.tokens.viewer })).text, /hueguard_pruned_total\{table="nonces"\} \d+/);
  });
});

describe('retention by itself', () => {
  test('with `retention.everyMs` the controller prunes on its own; expired nonces go, evidence within the retention stays', async () => {
    const s = await startServer({ rateLimit: false, tickMs: false, nonceTtlMs: 1, retention: { everyMs: 50, evidenceMs: 60_000 } });
    try {
      await s.publish(LAB);
      await s.call('PUT', `/api/v1/hosts/${AGENT_HOST}/vms`, { token: s.tokens.agent, body: { vms: [{ name: 'web', label: 'blue', running: true }] } });
      const n = await s.call('POST', '/api/v1/vms/web/nonce', { token: s.tokens.agent });
      assert.equal(n.status, 201);
      await s.call('POST', '/api/v1/vms/web/evidence', { token: s.tokens.agent, body: { entries: [FIRST[0], 'junk'] } }); // refused: nothing stored
      const good = await s.call('POST', '/api/v1/vms/web/evidence', { token: s.tokens.agent, body: { entries: FIRST, from: 0 } });
      assert.equal(good.status, 200);
      const deadline = Date.now() + 5_000;
      while (Date.now() < deadline && s.ctx.metrics.pruned.get({ table: 'nonces' }) === 0) await new Promise((r) => setTimeout(r, 25));
      assert.equal(s.ctx.metrics.pruned.get({ table: 'nonces' }), 1);
      assert.equal(await s.store.useNonce('web', n.json.nonce, new Date().toISOString()), 'unknown');
      assert.equal((await s.store.lastEvidence('web'))?.entries, 3, 'the last evidence stays');
    } finally {
      await s.close();
    }
  });
});

describe('group commit', () => {
  test('concurrent requests share transactions; every answered increment is stored; the same VM twice is taken in order', async () => {
    const s = await startServer({ rateLimit: false, tickMs: false });
    try {
      await s.publish(LAB);
      const hosts = ['g1', 'g2', 'g3', 'g4', 'g5', 'g6'];
      const tokens = new Map<string, string>();
      for (const h of hosts) {
        const t = (await createToken(s.ctx, { name: `agent-${h}`, role: 'agent', host: h })).secret;
        tokens.set(h, t);
        const vms = Array.from({ length: 5 }, (_, i) => ({ name: `${h}-v${i}`, label: 'blue', running: true }));
        assert.equal((await s.call('PUT', `/api/v1/hosts/${h}/vms`, { token: t, body: { vms } })).status, 200);
      }
      const groups0 = s.ctx.ingest.groups;
      // every host at once, each VM's first evidence; and per-VM requests for g1's VMs' next entries, at once too
      const batch = hosts.map((h) =>
        s.call('POST', `/api/v1/hosts/${h}/evidence`, { token: tokens.get(h), body: { vms: Array.from({ length: 5 }, (_, i) => ({ vm: `${h}-v${i}`, entries: FIRST })) } }),
      );
      const answers = await Promise.all(batch);
      for (const a of answers) assert.equal(a.status, 200, a.text);
      const single = Array.from({ length: 5 }, (_, i) =>
        s.call('POST', `/api/v1/vms/g1-v${i}/evidence`, { token: tokens.get('g1'), body: { entries: [line('/usr/bin/a', 'a v1')], from: 3 } }),
      );
      // the same VM twice in flight: the second follows the first
      const twice = [
        s.call('POST', '/api/v1/vms/g2-v0/evidence', { token: tokens.get('g2'), body: { entries: [line('/usr/bin/a', 'a v1')], from: 3 } }),
        s.call('POST', '/api/v1/vms/g2-v0/evidence', { token: tokens.get('g2'), body: { entries: [line('/usr/bin/b', 'b v1')], from: 4 } }),
      ];
      for (const a of await Promise.all([...single, ...twice])) assert.equal(a.status, 200, a.text);
      const requests = batch.length + single.length + twice.length;
      const groups = s.ctx.ingest.groups - groups0;
      assert.ok(groups < requests, `${requests} requests in ${groups} transactions`);
      // durable: a store opened afresh on the same files has every answered increment
      const other = await openSqliteStore({ dir: s.dir });
      try {
        for (const h of hosts) for (let i = 0; i < 5; i++) assert.equal((await other.trust(`${h}-v${i}`))?.state, 'trusted');
        const g2v0 = (await other.integrity('g2-v0'))?.state as { replay: { next: number } };
        assert.equal(g2v0.replay.next, 5, 'both increments of g2-v0, in order');
        assert.equal(((await other.integrity('g1-v3'))?.state as { replay: { next: number } }).replay.next, 4);
      } finally {
        await other.close();
      }
      const m = (await s.call('GET', '/metrics', { token: s.tokens.viewer })).text;
      assert.match(m, /hueguard_evidence_group_increments_count \d+/);
    } finally {
      await s.close();
    }
  });

  test('commit delay: requests that come within it of the last group share the next one; one after a quiet spell is not held', async () => {
    for (const commitDelayMs of [0, 400]) {
      const s = await startServer({ rateLimit: false, tickMs: false, ingest: { commitDelayMs } });
      try {
        await s.publish(LAB);
        const vms = Array.from({ length: 3 }, (_, i) => ({ name: `d${i}`, label: 'blue', running: true }));
        assert.equal((await s.call('PUT', `/api/v1/hosts/${AGENT_HOST}/vms`, { token: s.tokens.agent, body: { vms } })).status, 200);
        const send = (vm: string) => s.call('POST', `/api/v1/vms/${vm}/evidence`, { token: s.tokens.agent, body: { entries: FIRST, from: 0 } });
        const settle = () => new Promise((r) => setTimeout(r, commitDelayMs + 100));
        await settle();
        // a first request after a quiet spell is answered without waiting for the delay
        const t = performance.now();
        assert.equal((await send('d0')).status, 200);
        const quiet = performance.now() - t;
        // two more right after it, 30 ms apart: with the delay they are one group, without it two
        const groups0 = s.ctx.ingest.groups;
        const first = send('d1');
        await new Promise((r) => setTimeout(r, 30));
        const second = send('d2');
        for (const a of await Promise.all([first, second])) assert.equal(a.status, 200, a.text);
        const groups = s.ctx.ingest.groups - groups0;
        if (commitDelayMs === 0) assert.equal(groups, 2);
        else {
          assert.equal(groups, 1, 'both requests in the group after the delay');
          assert.ok(quiet < commitDelayMs / 2, `the first request after a quiet spell took ${quiet.toFixed(0)} ms`);
        }
      } finally {
        await s.close();
      }
    }
  });

  test('a store error fails every request of the group and stores nothing of it; sent again, they are taken', async () => {
    const s = await startServer({ rateLimit: false, tickMs: false });
    try {
      await s.publish(LAB);
      await s.call('PUT', `/api/v1/hosts/${AGENT_HOST}/vms`, { token: s.tokens.agent, body: { vms: [{ name: 'a', label: 'blue', running: true }, { name: 'b', label: 'red', running: true }] } });
      const send = () => [
        s.call('POST', '/api/v1/vms/a/evidence', { token: s.tokens.agent, body: { entries: FIRST, from: 0 } }),
        s.call('POST', `/api/v1/hosts/${AGENT_HOST}/evidence`, { token: s.tokens.agent, body: { vms: [{ vm: 'b', entries: FIRST, from: 0 }] } }),
      ];
      const putIntegrities = s.store.putIntegrities;
      s.store.putIntegrities = async () => {
        throw new Error('disk full');
      };
      const failed = await Promise.all(send());
      s.store.putIntegrities = putIntegrities;
      assert.deepEqual(failed.map((r) => r.status), [500, 500]);
      for (const vm of ['a', 'b']) {
        assert.equal((await s.store.trust(vm))?.state, 'unverified');
        assert.equal(await s.store.integrity(vm), null);
        assert.equal(await s.store.lastEvidence(vm), null);
      }
      const ok = await Promise.all(send());
      assert.deepEqual(ok.map((r) => r.status), [200, 200], ok.map((r) => r.text).join('\n'));
      assert.equal(ok[0].json.trust.state, 'trusted');
      assert.equal(ok[1].json.results[0].trust.state, 'trusted');
    } finally {
      await s.close();
    }
  });
});

describe('the fleet in memory and another controller on the same database', () => {
  test('a change made through the other controller is seen at the next evidence (untrusted stays untrusted; a re-admission counts)', async () => {
    const a = await startServer({ rateLimit: false, tickMs: false });
    // a second controller on the same SQLite files (as two controllers on one PostgreSQL share a database)
    const storeB = await openSqliteStore({ dir: a.dir });
    const b = await buildApp({ store: storeB, rateLimit: false, tickMs: false });
    await b.app.listen({ host: '127.0.0.1', port: 0 });
    const urlB = `http://127.0.0.1:${(b.app.server.address() as AddressInfo).port}`;
    try {
      await a.publish(LAB);
      await a.call('PUT', `/api/v1/hosts/${AGENT_HOST}/vms`, { token: a.tokens.agent, body: { vms: [{ name: 'web', label: 'blue', running: true }] } });
      const ev = (from: number, content = 'a v1') => a.call('POST', `/api/v1/hosts/${AGENT_HOST}/evidence`, { token: a.tokens.agent, body: { vms: [{ vm: 'web', entries: from === 0 ? FIRST : [line('/usr/bin/a', content)], from }] } });
      assert.equal((await ev(0)).json.results[0].trust.state, 'trusted');
      assert.equal((await ev(3)).json.results[0].trust.state, 'trusted');
      const loads = a.ctx.fleet.loads;
      // B: a bad increment makes web untrusted (B's answer); A's memory still says trusted
      const bad = await call(urlB, 'POST', `/api/v1/hosts/${AGENT_HOST}/evidence`, { token: a.tokens.agent, body: { vms: [{ vm: 'web', entries: [line('/usr/bin/a', 'a v2')], from: 4 }] } });
      assert.equal(bad.json.results[0].trust.state, 'untrusted', bad.text);
      // A: good evidence after it, from where B left the verifier: still untrusted, the plan still isolates it
      const good = await ev(5);
      assert.equal(good.status, 200, good.text);
      assert.equal(good.json.results[0].trust.state, 'untrusted');
      assert.equal(a.ctx.fleet.loads, loads + 1, 'A read the fleet again, once');
      const planA = (await a.call('GET', `/api/v1/hosts/${AGENT_HOST}/plan`, { token: a.tokens.viewer })).json;
      assert.deepEqual(planA.vms[0].colors, []);
      // B re-admits it; A's next good evidence trusts it again (not refused as untrusted, not a plan conflict)
      const re = await call(urlB, 'POST', '/api/v1/vms/web/readmit', { token: a.tokens.operator, body: { reason: 'restored', mode: 'baseline' } });
      assert.equal(re.status, 200, re.text);
      const back = await ev(6);
      assert.equal(back.json.results[0].trust.state, 'trusted', back.text);
      assert.deepEqual((await a.call('GET', `/api/v1/hosts/${AGENT_HOST}/plan`, { token: a.tokens.viewer })).json.vms[0].colors, ['blue']);
      // and A's own changes do not make it read the fleet again
      const l2 = a.ctx.fleet.loads;
      for (let i = 7; i < 10; i++) assert.equal((await ev(i)).status, 200);
      assert.equal(a.ctx.fleet.loads, l2);
    } finally {
      await b.app.close();
      await storeB.close();
      await a.close();
    }
  });
});
