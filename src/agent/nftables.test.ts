/**
 * The nftables enforcer for real: the conformance suite with nft in a namespace of its own, then a lab of four
 * netns VMs on one bridge where pings (sent only from inside lab namespaces without a default route) must follow
 * the plan exactly, drops are counted per pair, a tampered table is reported and repaired, and a transaction nft
 * refuses leaves the last good ruleset in force.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { planOf, runEnforcerConformance } from './enforcer-conformance.ts';
import { sameEnforced } from './enforcer.ts';
import { execTool } from './exec.ts';
import { nftUnavailable } from './root.test-support.ts';
import { hasDefaultRoute, labDown, labPing, labUp, type Lab } from './lab.ts';
import { NftEnforcer, nftRunner, renderTransaction } from './nftables.ts';

const why = nftUnavailable();
const namespaces: string[] = [];
runEnforcerConformance('nftables', {
  unavailable: () => why,
  async fresh() {
    const ns = `hgt-nft-${process.pid}-${namespaces.length}`;
    spawnSync('ip', ['netns', 'add', ns]);
    namespaces.push(ns);
    return new NftEnforcer({ netns: ns });
  },
  async cleanup() {
    for (const ns of namespaces) spawnSync('ip', ['netns', 'del', ns]);
  },
});

if (why) console.log(`# SKIP nftables lab tests: ${why}`);
describe('nftables enforcer on a lab bridge', { skip: why ?? false }, () => {
  let lab: Lab;
  let dir: string;
  let enforcer: NftEnforcer;
  const byName = (n: string) => lab.vms.find((v) => v.name === n)!;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hg-nft-'));
    lab = await labUp({ name: `n${process.pid % 10000}`, dir, subnet: 200 + (process.pid % 50), vms: [{ label: 'blue', count: 2 }, { label: 'red', count: 2 }] });
    enforcer = new NftEnforcer({ netns: lab.hostNetns });
  });
  after(async () => {
    await labDown(dir);
    rmSync(dir, { recursive: true, force: true });
  });

  const plan = (colors: Record<string, string[]>) =>
    planOf(lab.vms.map((v) => ({ name: v.name, ports: [v.port], colors: colors[v.name] ?? [], ...(colors[v.name]?.length ? {} : { isolated: 'untrusted' }) })));

  async function matrix(): Promise<string[]> {
    const pairs = lab.vms.flatMap((a) => lab.vms.filter((b) => b !== a).map((b) => [a, b] as const));
    const ok = await Promise.all(pairs.map(([a, b]) => labPing(a, b.ip)));
    return pairs.filter((_, i) => ok[i]).map(([a, b]) => `${a.name}>${b.name}`).sort();
  }

  it('lab VMs have no default route (test packets stay in the lab)', async () => {
    for (const v of lab.vms) assert.equal(await hasDefaultRoute(v.netns), false, v.netns);
  });

  it('the ping matrix equals the plan: same color talks, other colors and isolated VMs do not', async () => {
    await enforcer.apply(plan({ 'blue-1': ['blue'], 'blue-2': ['blue'], 'red-1': ['red'], 'red-2': ['red'] }));
    assert.deepEqual(await matrix(), ['blue-1>blue-2', 'blue-2>blue-1', 'red-1>red-2', 'red-2>red-1']);
    // blue-2 isolated, red-2 in both colors
    await enforcer.apply(plan({ 'blue-1': ['blue'], 'red-1': ['red'], 'red-2': ['blue', 'red'] }));
    assert.deepEqual(await matrix(), ['blue-1>red-2', 'red-1>red-2', 'red-2>blue-1', 'red-2>red-1']);
  });

  it('counts drops per (source port, destination port) in the kernel', async () => {
    await enforcer.apply(plan({ 'blue-1': ['blue'], 'blue-2': ['blue'], 'red-1': ['red'], 'red-2': ['red'] }));
    const before = await enforcer.drops();
    const count = (from: string, to: string, ds = before) => ds.find((d) => d.from === byName(from).port && d.to === byName(to).port)?.packets ?? 0;
    // a fresh neighbour table, so that the ping's ARP request goes out (and is dropped) again
    await execTool('ip', ['neigh', 'flush', 'all'], { netns: byName('blue-1').netns });
    assert.equal(await labPing(byName('blue-1'), byName('red-1').ip), false);
    const afterDrops = await enforcer.drops();
    assert.ok(count('blue-1', 'red-1', afterDrops) > count('blue-1', 'red-1'), JSON.stringify(afterDrops));
    // same-color traffic is never counted
    assert.equal(await labPing(byName('blue-1'), byName('blue-2').ip), true);
    assert.equal(count('blue-1', 'blue-2', await enforcer.drops()), count('blue-1', 'blue-2'));
    // the counters survive the next plan
    await enforcer.apply(plan({ 'blue-1': ['blue'], 'blue-2': ['blue'], 'red-1': ['red'] }));
    assert.ok(count('blue-1', 'red-1', await enforcer.drops()) >= count('blue-1', 'red-1', afterDrops));
  });

  it('reports an edited or deleted rule, and a re-apply repairs it', async () => {
    const good = plan({ 'blue-1': ['blue'], 'blue-2': ['blue'], 'red-1': ['red'], 'red-2': ['red'] });
    await enforcer.apply(good);
    const wanted = await enforcer.current();
    const run = nftRunner(lab.hostNetns);
    await run(['insert', 'rule', 'bridge', 'hueguard', 'forward', 'accept']); // someone opens everything
    assert.equal(await labPing(byName('blue-1'), byName('red-1').ip), true);
    assert.equal(sameEnforced(await enforcer.current(), wanted), false);
    await enforcer.apply(good);
    assert.equal(sameEnforced(await enforcer.current(), wanted), true);
    assert.equal(await labPing(byName('blue-1'), byName('red-1').ip), false);
    await run(['delete', 'table', 'bridge', 'hueguard']); // someone removes the table
    assert.equal(await enforcer.current(), null);
    await enforcer.apply(good);
    assert.deepEqual(await matrix(), ['blue-1>blue-2', 'blue-2>blue-1', 'red-1>red-2', 'red-2>red-1']);
  });

  it('a transaction nft refuses changes nothing (atomic), and says why', async () => {
    const good = plan({ 'blue-1': ['blue'], 'blue-2': ['blue'], 'red-1': ['red'], 'red-2': ['red'] });
    await enforcer.apply(good);
    const wanted = await enforcer.current();
    // The same transaction with one bad line at its end: nft must refuse all of it.
    const real = nftRunner(lab.hostNetns);
    const broken = new NftEnforcer({ run: (args, input) => real(args, args[0] === '-f' ? `${input}add rule bridge hueguard forward no-such-thing\n` : input) });
    await assert.rejects(broken.apply(plan({ 'blue-1': ['red'], 'blue-2': ['red'], 'red-1': ['red'], 'red-2': ['red'] })), (e: Error & { code?: string }) => e.code === 'enforce_failed' && /no-such-thing|syntax/i.test(e.message));
    assert.equal(sameEnforced(await enforcer.current(), wanted), true);
    assert.deepEqual(await matrix(), ['blue-1>blue-2', 'blue-2>blue-1', 'red-1>red-2', 'red-2>red-1']);
  });

  it('a port the plan does not know gets nothing', async () => {
    // blue-2's port is on the bridge but not in the plan at all
    await enforcer.apply(planOf([{ name: 'blue-1', ports: [byName('blue-1').port], colors: ['blue'] }]));
    assert.equal(await labPing(byName('blue-1'), byName('blue-2').ip), false);
    assert.equal(await labPing(byName('blue-2'), byName('blue-1').ip), false);
  });
});

it('replaces the color sets after the chain flush that frees them', () => {
  const lines = renderTransaction(new Map([['p1', ['blue']]]), ['c0', 'c1', 'c2']).trim().split('\n');
  const at = (l: string) => lines.indexOf(l);
  for (const set of ['c0', 'c1', 'c2']) assert.ok(at('flush chain bridge hueguard forward') < at(`delete set bridge hueguard ${set}`), set);
  assert.ok(at('delete set bridge hueguard c0') < at('add set bridge hueguard c0 { type ifname; comment "color:blue"; }'));
});
