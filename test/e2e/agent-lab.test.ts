/**
 * The agent end to end, as root: a real controller (SQLite in a temp folder, HTTP on loopback), a lab of four netns
 * VMs in two colors, the agent enforcing with nftables in the lab's host namespace. Every expectation comes from
 * the controller's API (its `share` decisions, its trust states, its revoke preview), never from the agent's code.
 * Pings go only from lab namespaces, after checking they have no default route.
 */
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Agent } from '../../src/agent/agent.ts';
import { ControllerClient } from '../../src/agent/controller-client.ts';
import { LabDriver } from '../../src/agent/lab-driver.ts';
import { hasDefaultRoute, labDown, labPing, labUp, type Lab, type LabVm } from '../../src/agent/lab.ts';
import { NftEnforcer } from '../../src/agent/nftables.ts';
import { nftUnavailable } from '../../src/agent/root.test-support.ts';
import { startController, type TestController } from '../support/controller.ts';
import { until as waitUntil } from '../support/until.ts';

const HOST = 'e2e-host';
const why = nftUnavailable();
if (why) console.log(`# SKIP agent end-to-end: ${why}`);

describe('agent end to end on a lab', { skip: why ?? false }, () => {
  let c: TestController;
  let lab: Lab;
  let agent: Agent;
  let driver: LabDriver;
  let enforcer: NftEnforcer;
  const logs: string[] = [];

  const api = <T = any>(method: string, path: string, body?: unknown) => c.api<T>(method, path, body);

  const until = <T>(what: string, f: () => Promise<T | undefined | false>, ms = 15_000) =>
    waitUntil(what, f, { ms, context: () => `agent log:\n${logs.join('\n')}` }) as Promise<T>;

  /** Which ordered pairs may talk, by the controller's own `share` decisions on the VMs' effective colors. */
  async function expectedMatrix(): Promise<string[]> {
    const vms = await api<{ name: string; effectiveColors: string[] }[]>('GET', '/api/v1/vms');
    const colors = new Map(vms.map((v) => [v.name, new Set(v.effectiveColors)]));
    const out: string[] = [];
    for (const a of lab.vms) for (const b of lab.vms) if (a !== b && [...(colors.get(a.name) ?? [])].some((c) => colors.get(b.name)?.has(c))) out.push(`${a.name}>${b.name}`);
    return out.sort();
  }

  async function shareMatrix(): Promise<string[]> {
    const pairs = lab.vms.flatMap((a) => lab.vms.filter((b) => b !== a).map((b) => [a, b] as const));
    const ans = await api<{ answers: { allow: boolean }[] }>('POST', '/api/v1/decide', { queries: pairs.map(([a, b]) => ({ op: 'share', a: a.label, b: b.label })) });
    return pairs.filter((_, i) => ans.answers[i].allow).map(([a, b]) => `${a.name}>${b.name}`).sort();
  }

  async function pingMatrix(): Promise<string[]> {
    const pairs = lab.vms.flatMap((a) => lab.vms.filter((b) => b !== a).map((b) => [a, b] as const));
    const ok = await Promise.all(pairs.map(([a, b]) => labPing(a, b.ip)));
    return pairs.filter((_, i) => ok[i]).map(([a, b]) => `${a.name}>${b.name}`).sort();
  }

  const vm = (name: string): LabVm => lab.vms.find((v) => v.name === name)!;
  const trust = (name: string) => api<{ state: string; reason: string; evidence: { failures: { path: string; expected: string[]; found: string }[] } | null }>('GET', `/api/v1/vms/${name}/trust`);

  before(async () => {
    c = await startController(HOST, 'hg-e2e-agent-');
    await c.publish(readFileSync(new URL('../../examples/demo.yaml', import.meta.url), 'utf8'), 'reject', 'e2e');
    lab = await labUp({ name: `e${process.pid % 10000}`, dir: join(c.dir, 'lab'), subnet: 60 + (process.pid % 40), vms: [{ label: 'blue', count: 2 }, { label: 'red', count: 2 }] });
    driver = new LabDriver(lab.dir);
    enforcer = new NftEnforcer({ netns: lab.hostNetns });
    agent = new Agent({ controller: new ControllerClient(c.url, c.agentToken), host: HOST, hostLabel: null, driver, enforcer, stateDir: join(c.dir, 'agent'), socket: join(c.dir, 'agent.sock'), log: (l) => logs.push(l) });
    await agent.start();
  });

  after(async () => {
    await agent?.stop();
    await driver?.close();
    // the rules outlive the agent: a stopped agent leaves its last plan in force
    if (enforcer) assert.ok(((await enforcer.current())?.ports.size ?? 0) > 0, 'the table is still there after the agent stopped');
    await enforcer?.remove().catch(() => {});
    if (lab) await labDown(lab.dir);
    await c?.close();
  });

  it('lab VMs have no default route', async () => {
    for (const v of lab.vms) assert.equal(await hasDefaultRoute(v.netns), false, v.netns);
  });

  it('once trusted, the ping matrix equals the policy\'s share relation exactly', async () => {
    await until('every VM trusted', async () => (await Promise.all(lab.vms.map((v) => trust(v.name)))).every((t) => t.state === 'trusted'));
    await until('the plan with every VM colored', async () => agent.plan?.vms.filter((v) => v.colors.length > 0).length === 4);
    const share = await shareMatrix();
    assert.deepEqual(share, ['blue-1>blue-2', 'blue-2>blue-1', 'red-1>red-2', 'red-2>red-1']);
    assert.deepEqual(await pingMatrix(), share);
  });

  it('the kernel\'s drops reach the controller: who tried to reach whom, and why', async () => {
    await labPing(vm('blue-1'), vm('red-1').ip);
    const blocked = await until('blue-1 → red-1 reported as blocked', async () => {
      const all = await api<{ host: string; from: string | null; to: string | null; packets: number; reason: string }[]>('GET', '/api/v1/blocked');
      return all.find((b) => b.from === 'blue-1' && b.to === 'red-1' && b.packets > 0) && all;
    });
    assert.ok(blocked.every((b) => b.host === HOST));
    assert.equal(blocked.find((b) => b.from === 'blue-1' && b.to === 'red-1')!.reason, 'no_common_color');
    assert.ok(!blocked.some((b) => (b.from === 'blue-1' && b.to === 'blue-2') || (b.from === 'red-1' && b.to === 'red-2')), 'same-color traffic is never blocked');
    const report = await api<{ appliedPlan: number; planError: unknown }>('GET', `/api/v1/hosts/${HOST}/report`);
    assert.equal(report.appliedPlan, agent.plan!.version);
    assert.equal(report.planError, null);
  });

  it('a file changed inside blue-1 cuts it off both ways; the API names the path; re-admission restores it', async () => {
    const changed = join(vm('blue-1').root, 'usr/bin/app');
    appendFileSync(changed, '# a new bit of functionality\n');
    const t = await until('blue-1 untrusted', async () => {
      const x = await trust('blue-1');
      return x.state === 'untrusted' && x;
    });
    assert.ok(t.evidence?.failures.some((f) => f.path.endsWith('/usr/bin/app') && f.found !== '' && !f.expected.includes(f.found)), JSON.stringify(t.evidence));
    await until('blue-1 out of the plan\'s colors', async () => agent.plan?.vms.find((v) => v.name === 'blue-1')?.colors.length === 0);
    assert.equal(await labPing(vm('blue-1'), vm('blue-2').ip), false);
    assert.equal(await labPing(vm('blue-2'), vm('blue-1').ip), false);
    assert.equal(await labPing(vm('red-1'), vm('red-2').ip), true, 'others are untouched');
    assert.deepEqual(await pingMatrix(), await expectedMatrix());

    await api('POST', '/api/v1/vms/blue-1/readmit', { reason: 'the change was a planned update', mode: 'reenroll' });
    await until('blue-1 trusted again', async () => (await trust('blue-1')).state === 'trusted');
    await until('blue-1 colored again', async () => agent.plan?.vms.find((v) => v.name === 'blue-1')?.colors.length === 1);
    assert.equal(await labPing(vm('blue-1'), vm('blue-2').ip), true);
    assert.deepEqual(await pingMatrix(), await shareMatrix());
  });

  it('without the controller the agent keeps enforcing, queues evidence, opens nothing, and resyncs when it is back', async () => {
    const before = await pingMatrix();
    await c.down();
    await until('the agent noticing', async () => !agent.status().connected);
    assert.deepEqual(await pingMatrix(), before, 'the last plan stays in force');
    // a change while nobody listens: measured and queued, and no flow opens
    appendFileSync(join(vm('red-2').root, 'etc/app.conf'), 'debug=1\n');
    await until('the change queued', async () => {
      const s = agent.status().vms.find((v) => v.name === 'red-2')!;
      return s.measured > s.sent;
    });
    assert.deepEqual(await pingMatrix(), before);
    await c.up();
    const t = await until('red-2 untrusted after the resync', async () => {
      const x = await trust('red-2');
      return x.state === 'untrusted' && x;
    }, 30_000);
    assert.ok(t.evidence?.failures.some((f) => f.path.endsWith('/etc/app.conf')), JSON.stringify(t.evidence));
    await until('red-2 cut off', async () => agent.plan?.vms.find((v) => v.name === 'red-2')?.colors.length === 0);
    assert.equal(await labPing(vm('red-1'), vm('red-2').ip), false);
    await api('POST', '/api/v1/vms/red-2/readmit', { reason: 'debug flag is fine', mode: 'reenroll' });
    await until('red-2 back', async () => agent.plan?.vms.find((v) => v.name === 'red-2')?.colors.length === 1);
  });

  it('a policy update published in revoke mode isolates exactly its violators', async () => {
    // v2: blue and red become a conflict set: one of the running pairs must go (Xen: the later starters).
    const v2 = readFileSync(new URL('../../examples/demo.yaml', import.meta.url), 'utf8')
      .replace('version: "1.0"', 'version: "1.1"\nfrom: { policy: demo, version: "1.0" }')
      .replace('walls: [green-w, secret-w]', 'walls: [green-w, secret-w, blue-w, red-w]')
      .replace('conflicts:\n', 'conflicts:\n  blue-apart-from-red: [blue-w, red-w]\n')
      .replace('blue:      { colors: [blue] }', 'blue:      { colors: [blue], walls: [blue-w] }')
      .replace('red:       { colors: [red] }', 'red:       { colors: [red], walls: [red-w] }');
    const d = await api<{ id: string }>('POST', '/api/v1/policy/drafts', { text: v2 });
    const preview = await api<{ revoke: { isolate: { vm: string }[] } }>('GET', `/api/v1/policy/drafts/${d.id}/preview`);
    const isolatedByPreview = preview.revoke.isolate.map((x) => x.vm).sort();
    assert.ok(isolatedByPreview.length > 0 && isolatedByPreview.length < 4, JSON.stringify(preview));
    await api('POST', `/api/v1/policy/drafts/${d.id}/publish`, { note: 'blue and red apart', mode: 'revoke' });
    await until('the revoke plan', async () => (agent.plan?.policyVersion ?? 0) >= 2 && agent.plan!.vms.filter((v) => v.colors.length === 0).length === isolatedByPreview.length).catch(async (e) => {
      throw new Error(`${e.message}\nplan: ${JSON.stringify(agent.plan)}\npreview: ${JSON.stringify(preview.revoke)}\nvms: ${JSON.stringify(await api('GET', '/api/v1/vms'))}`);
    });
    const isolated = agent.plan!.vms.filter((v) => v.colors.length === 0).map((v) => v.name).sort();
    assert.deepEqual(isolated, isolatedByPreview);
    assert.deepEqual(await pingMatrix(), await expectedMatrix());
    for (const name of isolated) for (const other of lab.vms) if (other.name !== name) assert.equal(await labPing(vm(name), other.ip), false, `${name} → ${other.name}`);
  });
});
