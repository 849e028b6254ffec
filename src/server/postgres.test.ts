/**
 * Two controllers on one PostgreSQL database serve one fleet: a change made through one is seen by the clients of
 * the other, as events and in its answers (its compiled policy is forgotten when the other publishes); the fleet
 * each keeps in memory follows what the other stores (trust, re-admission, plans: evidence through both at once);
 * a token revoked through one stops working on the other. On a throwaway server; skipped where none can run.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { openPostgresStore } from '../store/postgres.ts';
import { createToken } from './routes/tokens.ts';
import { postgresUnavailable, startPostgres, type PostgresServer } from '../../test/support/postgres.ts';
import { AGENT_HOST, LAB, startServer, type TestServer } from './server.test-support.ts';

const skip = postgresUnavailable() ?? false;

describe('two controllers on one PostgreSQL database', { skip }, () => {
  let pgServer: PostgresServer;
  let a: TestServer;
  let b: TestServer;
  before(async () => {
    pgServer = await startPostgres();
    const url = await pgServer.createDatabase();
    a = await startServer({ open: () => openPostgresStore({ url }), rateLimit: false });
    // b trusts a token it looked up for a minute: only the revocation's event can make it forget it sooner
    b = await startServer({ open: () => openPostgresStore({ url }), rateLimit: false, tokenCacheMs: 60_000 });
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await pgServer?.stop();
  });

  test('a publish and a label change through one are seen by the clients of the other', async () => {
    const abort = new AbortController();
    const r = await fetch(`${b.url}/api/v1/events`, { headers: { authorization: `Bearer ${b.tokens.viewer}` }, signal: abort.signal });
    assert.equal(r.status, 200);
    let text = '';
    const reader = (async () => {
      const decoder = new TextDecoder();
      try {
        for await (const chunk of r.body as unknown as AsyncIterable<Uint8Array>) text += decoder.decode(chunk, { stream: true });
      } catch {
        // aborted
      }
    })();
    const until = async (re: RegExp) => {
      const deadline = Date.now() + 10_000;
      while (!re.test(text)) {
        assert.ok(Date.now() < deadline, `not seen ${re}: ${text}`);
        await new Promise((res) => setTimeout(res, 25));
      }
    };

    assert.equal(await a.publish(LAB, 'through a'), 1);
    await until(/event: policy\ndata: \{"kind":"policy","subject":"1"/);
    assert.equal((await b.call('POST', '/api/v1/decide', { token: b.tokens.viewer, body: { op: 'share', a: 'blue', b: 'vio' } })).json.allow, true);

    assert.equal((await a.call('PUT', `/api/v1/hosts/${AGENT_HOST}/vms`, { token: a.tokens.agent, body: { vms: [{ name: 'web', running: true, label: 'blue' }] } })).status, 200);
    assert.equal((await a.call('PUT', '/api/v1/vms/web/label', { token: a.tokens.operator, body: { label: 'vio', reason: 'through a' } })).status, 200);
    await until(/event: fleet\ndata: \{"kind":"fleet","subject":"vm\/web"/);
    assert.equal((await b.call('GET', '/api/v1/vms/web', { token: b.tokens.viewer })).json.label, 'vio');

    // b's compiled policy follows a's next publish at once
    const next = LAB.replace('version: "1.0"', 'version: "1.1"\nfrom: { policy: lab, version: "1.0" }').replace('vio:  { colors: [blue, green]', 'vio:  { colors: [green]');
    assert.equal((await b.call('POST', '/api/v1/decide', { token: b.tokens.viewer, body: { op: 'share', a: 'blue', b: 'vio' } })).json.allow, true);
    const d = await a.call('POST', '/api/v1/policy/drafts', { token: a.tokens.admin, raw: { type: 'application/yaml', text: next } });
    const p = await a.call('POST', `/api/v1/policy/drafts/${d.json.id}/publish`, { token: a.tokens.admin, body: { note: 'vio loses blue', mode: 'revoke' } });
    assert.equal(p.status, 201, p.text);
    await until(/"subject":"2"/);
    assert.equal((await b.call('POST', '/api/v1/decide', { token: b.tokens.viewer, body: { op: 'share', a: 'blue', b: 'vio' } })).json.allow, false);
    assert.match((await b.call('GET', '/metrics', { token: b.tokens.viewer })).text, /^hueguard_policy_version 2$/m);
    abort.abort();
    await reader;
  });

  test('the audit chain stays one chain across both controllers', async () => {
    await Promise.all([
      ...Array.from({ length: 5 }, (_, i) => a.call('POST', '/api/v1/admission', { token: a.tokens.operator, body: { host: AGENT_HOST, vm: `a${i}`, label: 'nope' } })),
      ...Array.from({ length: 5 }, (_, i) => b.call('POST', '/api/v1/admission', { token: b.tokens.operator, body: { host: AGENT_HOST, vm: `b${i}`, label: 'nope' } })),
    ]);
    const records = (await a.call('GET', '/api/v1/audit?limit=1000', { token: a.tokens.viewer })).json as { seq: number; hash: string; prevHash: string }[];
    assert.equal(records.length, 13, '2 publishes, 1 label change, 10 denials');
    records.forEach((r, i) => {
      assert.equal(r.seq, i + 1);
      if (i > 0) assert.equal(r.prevHash, records[i - 1].hash);
    });
  });

  test('a plan stored through one wakes an agent\'s long poll on the other', async () => {
    const { createHash } = await import('node:crypto');
    const { formatAsciiLine } = await import('../integrity/ima-entry.ts');
    const { pathEntry } = await import('../integrity/measure-entry.ts');
    const line = (path: string) => formatAsciiLine(pathEntry('file', path, createHash('sha256').update(path).digest()));
    const current = await b.call('GET', `/api/v1/hosts/${AGENT_HOST}/plan`, { token: b.tokens.agent });
    assert.equal(current.status, 200, current.text);
    const t0 = Date.now();
    const poll = b.call('GET', `/api/v1/hosts/${AGENT_HOST}/plan?after=${current.json.version}`, { token: b.tokens.agent });
    await new Promise((res) => setTimeout(res, 200));
    const e = await a.call('POST', '/api/v1/vms/web/evidence', { token: a.tokens.agent, body: { entries: [line('/usr/bin/a'), line('/usr/bin/b')], from: 0 } });
    assert.equal(e.status, 200, e.text);
    assert.equal(e.json.trust.state, 'trusted');
    const woke = await poll;
    assert.equal(woke.status, 200, woke.text);
    assert.ok(Date.now() - t0 < 10_000, 'woken by the event, not by the 25 s wait');
    assert.equal(woke.json.version, e.json.planVersion);
    assert.deepEqual(woke.json.vms.find((v: { name: string }) => v.name === 'web').colors, ['green']);
  });

  test('evidence through both at once: each controller\'s fleet in memory follows the other\'s; untrusted stays untrusted; one plan history', async () => {
    const { createHash } = await import('node:crypto');
    const { formatAsciiLine } = await import('../integrity/ima-entry.ts');
    const { pathEntry } = await import('../integrity/measure-entry.ts');
    const line = (path: string, c = 'v1') => formatAsciiLine(pathEntry('file', path, createHash('sha256').update(`${path} ${c}`).digest()));
    const agent = (await createToken(a.ctx, { name: 'agent-h9', role: 'agent', host: 'h9' })).secret;
    const vms = Array.from({ length: 8 }, (_, i) => ({ name: `h9-v${i}`, label: 'blue', running: true, ports: [`tap-h9-${i}`] }));
    assert.equal((await a.call('PUT', '/api/v1/hosts/h9/vms', { token: agent, body: { vms } })).status, 200);
    const from = new Map(vms.map((v) => [v.name, 0]));
    const send = (s: TestServer, names: string[], content = 'v1') => {
      const body = { vms: names.map((vm) => ({ vm, entries: [line(`/usr/bin/${vm}`, content), line('/etc/x', content)], from: from.get(vm) })) };
      return s.call('POST', '/api/v1/hosts/h9/evidence', { token: agent, body });
    };
    const half = (k: number) => vms.filter((_, i) => i % 2 === k).map((v) => v.name);
    // rounds of evidence through a and b at once, for VMs of the same host (the same plan)
    for (let round = 0; round < 4; round++) {
      const [ra, rb] = await Promise.all([send(a, half(0)), send(b, half(1))]);
      for (const r of [ra, rb]) {
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.refused, 0, r.text);
        for (const x of r.json.results) {
          assert.equal(x.trust.state, 'trusted', JSON.stringify(x));
          from.set(x.vm, (from.get(x.vm) ?? 0) + 2);
        }
      }
    }
    // b makes h9-v0 untrusted; a's next good evidence for it does not trust it again
    const bad = await b.call('POST', '/api/v1/hosts/h9/evidence', { token: agent, body: { vms: [{ vm: 'h9-v0', entries: [line('/usr/bin/h9-v0', 'v2')], from: from.get('h9-v0') }] } });
    assert.equal(bad.json.results[0].trust.state, 'untrusted', bad.text);
    from.set('h9-v0', (from.get('h9-v0') ?? 0) + 1);
    const good = await send(a, ['h9-v0']);
    assert.equal(good.json.results[0].trust.state, 'untrusted', good.text);
    from.set('h9-v0', (from.get('h9-v0') ?? 0) + 2);
    // b re-admits it; a's next good evidence trusts it; both serve the same plan
    assert.equal((await b.call('POST', '/api/v1/vms/h9-v0/readmit', { token: b.tokens.operator, body: { reason: 'restored', mode: 'baseline' } })).status, 200);
    const back = await send(a, ['h9-v0']);
    assert.equal(back.json.results[0].trust.state, 'trusted', back.text);
    const [pa, pb] = await Promise.all([a.call('GET', '/api/v1/hosts/h9/plan', { token: a.tokens.viewer }), b.call('GET', '/api/v1/hosts/h9/plan', { token: b.tokens.viewer })]);
    assert.deepEqual(pa.json, pb.json);
    assert.ok(pa.json.vms.every((v: { colors: string[] }) => v.colors.length > 0), JSON.stringify(pa.json));
    const history = (await a.call('GET', '/api/v1/vms/h9-v0/trust/history', { token: a.tokens.viewer })).json;
    assert.deepEqual(history.filter((t: { from: string; to: string }) => t.from !== t.to).map((t: { to: string }) => t.to), ['trusted', 'untrusted', 'unverified', 'trusted']);
  });

  test('a token revoked through one controller stops working on the other at once (its event), not after its cache time', async () => {
    const t = await a.call('POST', '/api/v1/tokens', { token: a.tokens.admin, body: { name: 'short', role: 'viewer' } });
    assert.equal((await b.call('GET', '/api/v1/hosts', { token: t.json.secret })).status, 200, 'b looked it up (and keeps it for a minute)');
    assert.equal((await a.call('DELETE', `/api/v1/tokens/${t.json.id}`, { token: a.tokens.admin })).status, 204);
    const deadline = Date.now() + 5_000;
    let status = 200;
    while (status === 200 && Date.now() < deadline) {
      status = (await b.call('GET', '/api/v1/hosts', { token: t.json.secret })).status;
      if (status === 200) await new Promise((res) => setTimeout(res, 25));
    }
    assert.equal(status, 401);
  });
});
