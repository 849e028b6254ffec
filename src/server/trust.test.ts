/**
 * Evidence, trust and plans through the API, on a real SQLite store over real HTTP: enrollment makes a VM trusted
 * and gives its host a plan with its colors; a changed file makes it untrusted (the API names the path and both
 * digests; the plan isolates it; other hosts' plans do not move); good evidence does not re-trust it; an operator
 * re-admits it (audited) and the next good evidence trusts it; nonces are used once; agents act for their own host
 * only; the long poll answers as soon as a plan is stored; the deadline makes a silent VM unreachable.
 */
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { formatAsciiLine } from '../integrity/ima-entry.ts';
import { pathEntry } from '../integrity/measure-entry.ts';
import type { StoreEvent } from '../store/store.ts';
import { createToken } from './routes/tokens.ts';
import { AGENT_HOST, LAB, startServer, type TestServer } from './server.test-support.ts';
import { runTick } from './trust.ts';

const sha = (s: string) => createHash('sha256').update(s).digest();
const hex = (s: string) => sha(s).toString('hex');
const line = (path: string, content: string) => formatAsciiLine(pathEntry('file', path, sha(content)));
const FIRST = [line('/usr/bin/a', 'a v1'), line('/usr/bin/b', 'b v1'), line('/etc/web.conf', 'conf v1')];

describe('evidence, trust and plans', () => {
  let s: TestServer;
  let clock = Date.now();
  let agent2: string;
  const events: StoreEvent[] = [];
  let unsubscribe = () => {};
  const evidence = (vm: string, body: unknown, token = s.tokens.agent) => s.call('POST', `/api/v1/vms/${vm}/evidence`, { token, body });
  const plan = async (host: string) => {
    const r = await s.call('GET', `/api/v1/hosts/${host}/plan`, { token: s.tokens.viewer });
    assert.equal(r.status, 200, r.text);
    return r.json;
  };
  const planVm = async (host: string, vm: string) => (await plan(host)).vms.find((v: { name: string }) => v.name === vm);

  before(async () => {
    s = await startServer({ now: () => new Date(clock), rateLimit: false, tickMs: false, deadlineMs: 30_000, nonceTtlMs: 60_000, planWaitMs: 3_000 });
    unsubscribe = s.store.subscribe((e) => events.push(e));
    await s.publish(LAB);
    agent2 = (await createToken(s.ctx, { name: 'agent-h2', role: 'agent', host: 'h2' })).secret;
    assert.equal((await s.call('PUT', `/api/v1/hosts/${AGENT_HOST}`, { token: s.tokens.agent, body: { label: 'host' } })).status, 200);
    let r = await s.call('PUT', `/api/v1/hosts/${AGENT_HOST}/vms`, { token: s.tokens.agent, body: { vms: [{ name: 'web', label: 'blue', running: true, ports: ['tap-web'] }] } });
    assert.equal(r.status, 200, r.text);
    r = await s.call('PUT', '/api/v1/hosts/h2/vms', { token: agent2, body: { vms: [{ name: 'db', label: 'red', running: true, ports: ['tap-db'] }] } });
    assert.equal(r.status, 200, r.text);
  });
  after(async () => {
    unsubscribe();
    await s.close();
  });

  test('a new VM is unverified and isolated in its host\'s plan; its first evidence enrolls it and makes it trusted', async () => {
    const p0 = await plan(AGENT_HOST);
    assert.equal(p0.policyVersion, 1);
    const web0 = p0.vms.find((v: { name: string }) => v.name === 'web');
    assert.deepEqual(web0.colors, []);
    assert.match(web0.isolated, /unverified/);
    assert.equal((await s.call('GET', '/api/v1/vms/web/trust', { token: s.tokens.viewer })).json.state, 'unverified');

    const r = await evidence('web', { entries: FIRST, from: 0 });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.verdict.ok, true);
    assert.equal(r.json.verdict.enrolled, true);
    assert.equal(r.json.trust.state, 'trusted');
    assert.equal(r.json.planVersion, p0.version + 1);
    const p1 = await plan(AGENT_HOST);
    assert.equal(p1.version, p0.version + 1);
    assert.deepEqual(p1.vms, [{ name: 'web', ports: ['tap-web'], colors: ['blue'] }], 'the label\'s colors once trusted');
    // the agent fetches its own host's plan
    const own = await s.call('GET', `/api/v1/hosts/${AGENT_HOST}/plan`, { token: s.tokens.agent });
    assert.equal(own.json.version, p1.version);
    assert.ok(events.some((e) => e.kind === 'trust' && e.subject === 'vm/web'), 'a trust event');
    assert.ok(events.some((e) => e.kind === 'plan' && e.subject === AGENT_HOST), 'a plan event');
    const audit = (await s.call('GET', '/api/v1/audit?action=trust.transition', { token: s.tokens.viewer })).json;
    const t = audit.find((a: { subject: string; details: { to: string } }) => a.subject === 'vm/web' && a.details.to === 'trusted');
    assert.equal(t?.actor, 'verifier');
  });

  test('an agent of another host may not send evidence for the VM or fetch its host\'s plan', async () => {
    const r = await evidence('web', { entries: [] }, agent2);
    assert.equal(r.status, 403);
    assert.equal(r.json.code, 'forbidden');
    assert.equal((await s.call('GET', `/api/v1/hosts/${AGENT_HOST}/plan`, { token: agent2 })).status, 403);
    assert.equal((await s.call('POST', '/api/v1/vms/web/nonce', { token: agent2 })).status, 403);
  });

  test('a changed file makes it untrusted: the path and digests are shown, the plan isolates it, the long poll wakes, other hosts keep their plans', async () => {
    const h2 = await plan('h2');
    const before = await plan(AGENT_HOST);
    const t0 = Date.now();
    const poll = s.call('GET', `/api/v1/hosts/${AGENT_HOST}/plan?after=${before.version}`, { token: s.tokens.agent });
    await new Promise((resolve) => setTimeout(resolve, 100));
    clock += 1000;
    const r = await evidence('web', { entries: [line('/usr/bin/a', 'a v2')], from: 3 });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.verdict.ok, false);
    assert.equal(r.json.trust.state, 'untrusted');
    const woke = await poll;
    assert.equal(woke.status, 200, woke.text);
    assert.ok(Date.now() - t0 < 2_500, 'the long poll answered when the plan was stored, not at its timeout');
    assert.equal(woke.json.version, before.version + 1);
    const web = woke.json.vms.find((v: { name: string }) => v.name === 'web');
    assert.deepEqual(web.colors, []);
    assert.match(web.isolated, /untrusted/);

    const trust = (await s.call('GET', '/api/v1/vms/web/trust', { token: s.tokens.viewer })).json;
    assert.equal(trust.state, 'untrusted');
    assert.match(trust.reason, /\/usr\/bin\/a/);
    assert.equal(trust.evidence.ok, false);
    const [f] = trust.evidence.failures;
    assert.deepEqual([f.path, f.expected, f.found], ['/usr/bin/a', [hex('a v1')], hex('a v2')]);
    assert.deepEqual(await plan('h2'), h2, 'h2\'s plan did not change');
    const vm = (await s.call('GET', '/api/v1/vms/web', { token: s.tokens.viewer })).json;
    assert.deepEqual([vm.trust, vm.effectiveColors], ['untrusted', []]);

    // the agent's heartbeat (an empty increment) that follows does not hide the failing entry
    clock += 1000;
    const beat = await evidence('web', { entries: [], from: 4 });
    assert.equal(beat.status, 200, beat.text);
    const still = (await s.call('GET', '/api/v1/vms/web/trust', { token: s.tokens.viewer })).json;
    assert.deepEqual(still.evidence.failures.map((x: { path: string }) => x.path), ['/usr/bin/a']);
  });

  test('a long poll with nothing newer answers 204 after its wait', async () => {
    const p = await plan('h2');
    const t0 = Date.now();
    const r = await s.call('GET', `/api/v1/hosts/h2/plan?after=${p.version}`, { token: agent2 });
    assert.equal(r.status, 204);
    assert.ok(Date.now() - t0 >= 2_900);
    const now = await s.call('GET', `/api/v1/hosts/h2/plan?after=${p.version - 1}`, { token: agent2 });
    assert.equal(now.json.version, p.version, 'an older `after` answers at once');
  });

  test('further good evidence does not re-trust it', async () => {
    const r = await evidence('web', { entries: [line('/usr/bin/b', 'b v1')], from: 4 });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.verdict.ok, true);
    assert.equal(r.json.trust.state, 'untrusted');
    assert.equal(r.json.planVersion, undefined);
  });

  test('bad or out-of-order evidence is refused with the engine\'s code and changes nothing', async () => {
    const before = (await s.call('GET', '/api/v1/vms/web/trust', { token: s.tokens.viewer })).json;
    let r = await evidence('web', { entries: ['not an ima line'], from: 5 });
    assert.equal(r.status, 400);
    assert.equal(r.json.code, 'bad_evidence');
    r = await evidence('web', { entries: [line('/usr/bin/b', 'b v1')], from: 2 });
    assert.equal(r.status, 409);
    assert.equal(r.json.code, 'evidence_out_of_order');
    assert.equal(r.json.details.expected, 5);
    assert.deepEqual((await s.call('GET', '/api/v1/vms/web/trust', { token: s.tokens.viewer })).json, before);
  });

  test('readmit: operators only, a reason required, audited; unverified, then trusted at the next good evidence', async () => {
    assert.equal((await s.call('POST', '/api/v1/vms/web/readmit', { token: s.tokens.viewer, body: { reason: 'x', mode: 'baseline' } })).status, 403);
    let r = await s.call('POST', '/api/v1/vms/web/readmit', { token: s.tokens.operator, body: { reason: '  ', mode: 'baseline' } });
    assert.equal(r.status, 400);
    assert.equal(r.json.details.field, 'body.reason');
    clock += 1000;
    r = await s.call('POST', '/api/v1/vms/web/readmit', { token: s.tokens.operator, body: { reason: 'the file was restored', mode: 'baseline' } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.state, 'unverified');
    r = await s.call('POST', '/api/v1/vms/web/readmit', { token: s.tokens.operator, body: { reason: 'again', mode: 'baseline' } });
    assert.equal(r.status, 409);
    assert.equal(r.json.code, 'not_untrusted');
    const audit = (await s.call('GET', '/api/v1/audit?subject=vm/web', { token: s.tokens.viewer })).json;
    const readmit = audit.find((a: { action: string }) => a.action === 'trust.readmit');
    assert.equal(readmit.actor, 'token:operator');
    assert.equal(readmit.details.reason, 'the file was restored');
    assert.ok(audit.some((a: { action: string; actor: string; details: { to: string } }) => a.action === 'trust.transition' && a.actor === 'token:operator' && a.details.to === 'unverified'));
    assert.deepEqual((await planVm(AGENT_HOST, 'web')).colors, []);

    clock += 1000;
    r = await evidence('web', { entries: [line('/etc/web.conf', 'conf v1')], from: 5 });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.trust.state, 'trusted');
    assert.deepEqual((await planVm(AGENT_HOST, 'web')).colors, ['blue']);
    const history = (await s.call('GET', '/api/v1/vms/web/trust/history', { token: s.tokens.viewer })).json;
    assert.deepEqual(history.filter((t: { from: string; to: string }) => t.from !== t.to).map((t: { to: string }) => t.to), ['trusted', 'untrusted', 'unverified', 'trusted']);
  });

  test('a quote\'s nonce: issued for the VM, used once, not after it expires; refused changes nothing', async () => {
    const before = (await s.call('GET', '/api/v1/vms/web/trust', { token: s.tokens.viewer })).json;
    const quote = (nonce: string) => ({ attest: 'AAAA', signature: 'AAAA', nonce });
    const n = await s.call('POST', '/api/v1/vms/web/nonce', { token: s.tokens.agent });
    assert.equal(n.status, 201, n.text);
    assert.match(n.json.nonce, /^[0-9a-f]{40}$/);
    // used once already (as a quote accepted before would have)
    assert.equal(await s.store.useNonce('web', n.json.nonce, new Date(clock).toISOString()), 'ok');
    let r = await evidence('web', { entries: [], quote: quote(n.json.nonce) });
    assert.equal(r.status, 409);
    assert.equal(r.json.code, 'nonce_replayed');
    r = await evidence('web', { entries: [], quote: quote('ab'.repeat(20)) });
    assert.equal(r.json.code, 'nonce_unknown');
    const late = await s.call('POST', '/api/v1/vms/web/nonce', { token: s.tokens.operator });
    clock += 61_000;
    r = await evidence('web', { entries: [], quote: quote(late.json.nonce) });
    assert.equal(r.status, 409);
    assert.equal(r.json.code, 'nonce_stale');
    clock -= 61_000;
    assert.deepEqual((await s.call('GET', '/api/v1/vms/web/trust', { token: s.tokens.viewer })).json, before, 'nothing changed');
  });

  test('the deadline makes a silent VM unreachable (its label isolates it) and fresh evidence restores it', async () => {
    clock += 10_000;
    // db (h2) enrolls now; web stays silent
    let r = await evidence('db', { entries: FIRST, from: 0 }, agent2);
    assert.equal(r.json.trust.state, 'trusted');
    clock += 25_000;
    await runTick(s.ctx);
    assert.equal((await s.call('GET', '/api/v1/vms/web/trust', { token: s.tokens.viewer })).json.state, 'unreachable');
    assert.equal((await s.call('GET', '/api/v1/vms/db/trust', { token: s.tokens.viewer })).json.state, 'trusted', 'db sent evidence 25 s ago');
    const web = await planVm(AGENT_HOST, 'web');
    assert.deepEqual(web.colors, []);
    assert.match(web.isolated, /unreachable/);
    const audit = (await s.call('GET', '/api/v1/audit?subject=vm/web', { token: s.tokens.viewer })).json;
    assert.ok(audit.some((a: { action: string; actor: string; details: { to: string } }) => a.action === 'trust.transition' && a.actor === 'verifier' && a.details.to === 'unreachable'));

    // db keeps sending good evidence: its deadline counts from the last one
    clock += 20_000;
    const dbHistory = (await s.store.trustHistory('db')).length;
    r = await evidence('db', { entries: [line('/usr/bin/a', 'a v1')], from: 3 }, agent2);
    assert.equal(r.json.trust.state, 'trusted');
    // stored on its trust record (Store.touchTrust): no transition, no new history
    assert.equal((await s.store.trust('db'))?.lastEvidence, new Date(clock).toISOString());
    assert.equal((await s.call('GET', '/api/v1/vms/db/trust', { token: s.tokens.viewer })).json.lastEvidence, new Date(clock).toISOString());
    assert.equal((await s.store.trustHistory('db')).length, dbHistory);
    clock += 20_000;
    await runTick(s.ctx);
    assert.equal((await s.call('GET', '/api/v1/vms/db/trust', { token: s.tokens.viewer })).json.state, 'trusted', 'its last evidence was 20 s ago');

    r = await evidence('web', { entries: [], from: 6 });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.trust.state, 'trusted');
    assert.deepEqual((await planVm(AGENT_HOST, 'web')).colors, ['blue']);
  });

  test('metrics: evidence appraised, trust transitions, plans', async () => {
    const m = (await s.call('GET', '/metrics', { token: s.tokens.viewer })).text;
    assert.match(m, /hueguard_evidence_appraised_total\{result="ok"\} \d+/);
    assert.match(m, /hueguard_evidence_appraised_total\{result="failed"\} 1/);
    assert.match(m, /hueguard_evidence_appraised_total\{result="refused"\} \d+/);
    assert.match(m, /hueguard_trust_transitions_total\{from="trusted",to="untrusted"\} 1/);
    assert.match(m, /hueguard_plans_issued_total \d+/);
    assert.match(m, new RegExp(`hueguard_plan_version\\{host="${AGENT_HOST}"\\} \\d+`));
  });
});

describe('plans follow the policy and the inventory', () => {
  test('a label change and a new policy version give new plans, in the change\'s transaction', async () => {
    const s = await startServer({ rateLimit: false, tickMs: false });
    try {
      // inventory before any policy: no plans yet
      await s.call('PUT', `/api/v1/hosts/${AGENT_HOST}/vms`, { token: s.tokens.agent, body: { vms: [{ name: 'vio', label: 'vio', running: true, ports: ['tap-vio'] }] } });
      assert.equal((await s.call('GET', `/api/v1/hosts/${AGENT_HOST}/plan`, { token: s.tokens.agent })).status, 404);
      await s.publish(LAB);
      let p = (await s.call('GET', `/api/v1/hosts/${AGENT_HOST}/plan`, { token: s.tokens.agent })).json;
      assert.equal(p.version, 1);
      assert.deepEqual(p.vms[0].colors, [], 'unverified: isolated until its first evidence');
      const e = await s.call('POST', '/api/v1/vms/vio/evidence', { token: s.tokens.agent, body: { entries: FIRST } });
      assert.equal(e.json.planVersion, 2);
      p = (await s.call('GET', `/api/v1/hosts/${AGENT_HOST}/plan`, { token: s.tokens.agent })).json;
      assert.deepEqual(p.vms, [{ name: 'vio', ports: ['tap-vio'], colors: ['blue', 'green'] }]);
      const r = await s.call('PUT', '/api/v1/vms/vio/label', { token: s.tokens.operator, body: { label: 'red' } });
      assert.equal(r.status, 200, r.text);
      p = (await s.call('GET', `/api/v1/hosts/${AGENT_HOST}/plan`, { token: s.tokens.agent })).json;
      assert.deepEqual([p.version, p.vms[0].colors], [3, ['red']]);
      await s.publish(LAB.replace('version: "1.0"', 'version: "1.1"\nfrom: { policy: lab, version: "1.0" }'));
      p = (await s.call('GET', `/api/v1/hosts/${AGENT_HOST}/plan`, { token: s.tokens.agent })).json;
      assert.deepEqual([p.version, p.policyVersion], [4, 2]);
      // a VM the agent no longer reports leaves the plan
      await s.call('PUT', `/api/v1/hosts/${AGENT_HOST}/vms`, { token: s.tokens.agent, body: { vms: [] } });
      p = (await s.call('GET', `/api/v1/hosts/${AGENT_HOST}/plan`, { token: s.tokens.agent })).json;
      assert.deepEqual([p.version, p.vms], [5, []]);
    } finally {
      await s.close();
    }
  });

  test('the periodic tick runs by itself', async () => {
    const s = await startServer({ rateLimit: false, tickMs: 50, deadlineMs: 100 });
    try {
      await s.publish(LAB);
      await s.call('PUT', `/api/v1/hosts/${AGENT_HOST}/vms`, { token: s.tokens.agent, body: { vms: [{ name: 'web', label: 'blue', running: true }] } });
      const deadline = Date.now() + 5_000;
      let state = '';
      while (Date.now() < deadline) {
        state = (await s.call('GET', '/api/v1/vms/web/trust', { token: s.tokens.viewer })).json.state;
        if (state === 'unreachable') break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.equal(state, 'unreachable');
    } finally {
      await s.close();
    }
  });
});

describe('a store error in the middle of evidence', () => {
  test('leaves no trust transition without its plan, no audit record, no integrity step: the same increment is taken again', async () => {
    const s = await startServer({ rateLimit: false, tickMs: false });
    try {
      await s.publish(LAB);
      await s.call('PUT', `/api/v1/hosts/${AGENT_HOST}/vms`, { token: s.tokens.agent, body: { vms: [{ name: 'web', label: 'blue', running: true }] } });
      assert.equal((await s.call('POST', '/api/v1/vms/web/evidence', { token: s.tokens.agent, body: { entries: FIRST, from: 0 } })).json.trust.state, 'trusted');
      const plan = (await s.call('GET', `/api/v1/hosts/${AGENT_HOST}/plan`, { token: s.tokens.viewer })).json;
      const history = await s.store.trustHistory('web');
      const audit = await s.store.audit();
      const putPlans = s.store.putPlans;
      s.store.putPlans = async () => {
        throw new Error('disk full');
      };
      const bad = { entries: [line('/usr/bin/a', 'a v2')], from: 3 };
      let r = await s.call('POST', '/api/v1/vms/web/evidence', { token: s.tokens.agent, body: bad });
      s.store.putPlans = putPlans;
      assert.equal(r.status, 500);
      assert.equal((await s.store.trust('web'))?.state, 'trusted');
      assert.deepEqual(await s.store.trustHistory('web'), history);
      assert.deepEqual(await s.store.audit(), audit);
      assert.deepEqual((await s.call('GET', `/api/v1/hosts/${AGENT_HOST}/plan`, { token: s.tokens.viewer })).json, plan);
      r = await s.call('POST', '/api/v1/vms/web/evidence', { token: s.tokens.agent, body: bad });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.trust.state, 'untrusted');
      assert.equal(r.json.planVersion, plan.version + 1);
    } finally {
      await s.close();
    }
  });
});
