/**
 * The engine's API: verdicts, re-admissions, deadlines, policies and inventory → transitions and new plans for the
 * affected hosts only; a fast-check property over random sequences; and the time from an untrusted verdict to the
 * affected host's new plan in a fleet of 1,000 hosts × 10 VMs (printed, not asserted).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { applyInventory, applyPolicy, applyVerdict, readmit, tick, type EngineResult } from './engine.ts';
import { isTrustError, TrustErrorCode } from './errors.ts';
import { makeFleet, trustOf, type Fleet, type TrustState } from './model.ts';
import { computePlan, planHosts } from './plan.ts';
import { VERIFIER } from './state.ts';
import { ACME, bigFleet, policyFrom, T0, trust, vm } from './fleet.test-support.ts';

const acme = policyFrom(ACME);
const BAD = { ok: false, fresh: false, summary: '1 of 1 entries failed appraisal: /usr/bin/a' };
const GOOD = { ok: true, fresh: true, summary: 'all good' };

/** The plans the result changed, as host → version. */
const versions = (r: EngineResult) => Object.fromEntries(r.plans.map((p) => [p.host, p.version]));

describe('applyVerdict', () => {
  test('an untrusted verdict: one transition, a new plan for the VM’s host only; the input fleet is untouched', () => {
    const f = bigFleet(5, 4); // labels cycle pepsi-web, coke-db, vio
    const before = JSON.stringify([...f.plans.values()]);
    const vmName = 'h0002-v02'; // (2 + 2) % 3 = 1: coke-db, isolate
    const r = applyVerdict(f, vmName, BAD, T0 + 1000);
    assert.deepEqual(r.transitions, [{ vm: vmName, from: 'trusted', to: 'untrusted', at: new Date(T0 + 1000).toISOString(), reason: BAD.summary, actor: VERIFIER }]);
    assert.deepEqual(versions(r), { h0002: 2 });
    assert.deepEqual(r.plans[0].vms.find((v) => v.name === vmName)?.colors, []);
    assert.equal(r.fleet.plans.get('h0002'), r.plans[0]);
    for (const h of ['h0000', 'h0001', 'h0003', 'h0004']) assert.equal(r.fleet.plans.get(h), f.plans.get(h), h);
    assert.equal(JSON.stringify([...f.plans.values()]), before);
    assert.equal(trustOf(f, vmName), 'trusted');
    assert.equal(trustOf(r.fleet, vmName), 'untrusted');
  });

  test('an alert VM turning untrusted: a transition, but no plan (its colors stay)', () => {
    const f = bigFleet(2, 3);
    const vio = 'h0000-v02'; // (0 + 2) % 3 = 2: vio
    const r = applyVerdict(f, vio, BAD, T0 + 1);
    assert.equal(r.transitions.length, 1);
    assert.deepEqual(r.plans, []);
  });

  test('good evidence on a trusted VM: its record moves (lastEvidence), no transition, no plan', () => {
    const f = bigFleet(2, 3);
    const r = applyVerdict(f, 'h0001-v00', GOOD, T0 + 5);
    assert.deepEqual(r.transitions, []);
    assert.deepEqual(r.plans, []);
    assert.equal(r.trust[0].lastEvidence, new Date(T0 + 5).toISOString());
  });

  test('an unknown VM is refused', () => {
    assert.throws(() => applyVerdict(bigFleet(1, 1), 'nope', BAD, T0), (e) => isTrustError(e) && e.code === TrustErrorCode.unknownVm);
  });
});

describe('readmit', () => {
  test('untrusted → unverified (plan: still no colors, a new reason), → trusted at the next good verdict (plan: colors)', () => {
    const f0 = bigFleet(2, 3);
    const name = 'h0001-v00'; // (1 + 0) % 3 = 1: coke-db
    const f1 = applyVerdict(f0, name, BAD, T0 + 1).fleet;
    // evidence cannot make it trusted again
    const still = applyVerdict(f1, name, GOOD, T0 + 2);
    assert.deepEqual([still.transitions, still.plans], [[], []]);
    const r = readmit(f1, name, 'alice', 'file restored from backup', T0 + 3);
    assert.deepEqual(r.transitions.map((t) => [t.from, t.to, t.actor, t.reason]), [['untrusted', 'unverified', 'alice', 're-admitted: file restored from backup']]);
    assert.deepEqual(versions(r), { h0001: 3 });
    assert.match(r.plans[0].vms.find((v) => v.name === name)?.isolated ?? '', /unverified/);
    const g = applyVerdict(r.fleet, name, GOOD, T0 + 4);
    assert.deepEqual(g.transitions.map((t) => [t.from, t.to]), [['unverified', 'trusted']]);
    assert.deepEqual(g.plans[0].vms.find((v) => v.name === name)?.colors, ['coke']);
  });

  test('only an untrusted VM, with an actor and a reason', () => {
    const f = bigFleet(1, 2);
    assert.throws(() => readmit(f, 'h0000-v00', 'alice', 'why', T0), (e) => isTrustError(e) && e.code === TrustErrorCode.notUntrusted);
    const u = applyVerdict(f, 'h0000-v00', BAD, T0).fleet;
    assert.throws(() => readmit(u, 'h0000-v00', 'alice', '', T0), (e) => isTrustError(e) && e.code === TrustErrorCode.reasonRequired);
  });
});

describe('tick', () => {
  test('running VMs without fresh evidence past the deadline turn unreachable; good evidence brings them back', () => {
    let f = bigFleet(3, 3); // all trusted, lastEvidence T0
    const fresh = applyVerdict(f, 'h0000-v00', GOOD, T0 + 20_000);
    f = fresh.fleet;
    f = applyInventory(f, { vms: [{ ...f.vms.get('h0002-v01')!, running: false }] }, T0 + 20_000).fleet;
    assert.deepEqual(tick(f, T0 + 30_000, 30_000).transitions, []);
    const r = tick(f, T0 + 30_001, 30_000);
    const moved = r.transitions.map((t) => t.vm).sort();
    // all but the one with later evidence and the stopped one
    assert.deepEqual(moved, ['h0000-v01', 'h0000-v02', 'h0001-v00', 'h0001-v01', 'h0001-v02', 'h0002-v00', 'h0002-v02']);
    assert.ok(r.transitions.every((t) => t.from === 'trusted' && t.to === 'unreachable' && t.actor === VERIFIER));
    // isolate VMs lose their colors: every host gets a plan (each has one isolate VM that moved)
    assert.deepEqual(Object.keys(versions(r)).sort(), ['h0000', 'h0001', 'h0002']);
    const back = applyVerdict(r.fleet, 'h0001-v00', GOOD, T0 + 31_000);
    assert.deepEqual(back.transitions.map((t) => [t.from, t.to]), [['unreachable', 'trusted']]);
    assert.deepEqual(versions(back), { h0001: r.fleet.plans.get('h0001')!.version + 1 });
  });

  test('untrusted VMs never turn unreachable; a bad deadline is refused', () => {
    const f = applyVerdict(bigFleet(1, 2), 'h0000-v00', BAD, T0).fleet;
    const r = tick(f, T0 + 1e9, 1000);
    assert.deepEqual(r.transitions.map((t) => t.vm), ['h0000-v01']);
    assert.throws(() => tick(f, T0, -5), (e) => isTrustError(e) && e.code === TrustErrorCode.badArgument);
  });
});

describe('applyPolicy and applyInventory', () => {
  test('a new policy: every host gets a new plan, with the new trust rules applied at once', () => {
    const f = applyVerdict(bigFleet(3, 3), 'h0001-v00', BAD, T0).fleet; // coke-db, isolated
    const alerting = policyFrom(ACME.replace('coke-db:    { colors: [coke], onUntrusted: isolate }', 'coke-db:    { colors: [coke], onUntrusted: alert }'));
    const r = applyPolicy(f, alerting, 2);
    assert.deepEqual(r.plans.map((p) => [p.host, p.policyVersion]), [['h0000', 2], ['h0001', 2], ['h0002', 2]]);
    assert.deepEqual(r.fleet.plans.get('h0001')!.vms.find((v) => v.name === 'h0001-v00')?.colors, ['coke']);
    assert.deepEqual(r.transitions, []);
    assert.deepEqual(applyPolicy(r.fleet, alerting, 2).plans, []);
  });

  test('inventory: a new VM gets an unverified record and its host a plan; a stop and a move replan the hosts concerned', () => {
    const f = bigFleet(2, 2);
    const add = applyInventory(f, { vms: [vm('new', 'h0000', 'pepsi-web')] }, T0 + 1);
    assert.deepEqual(add.trust.map((t) => [t.vm, t.state]), [['new', 'unverified']]);
    assert.deepEqual(add.transitions, []);
    assert.deepEqual(versions(add), { h0000: 2 });
    assert.match(add.plans[0].vms.find((v) => v.name === 'new')?.isolated ?? '', /unverified/);
    const moved = applyInventory(add.fleet, { vms: [{ ...add.fleet.vms.get('h0000-v00')!, host: 'h0001' }] }, T0 + 2);
    assert.deepEqual(versions(moved), { h0000: 3, h0001: 2 });
    const stop = applyInventory(moved.fleet, { removeVms: ['new'] }, T0 + 3);
    assert.deepEqual(versions(stop), { h0000: 4 });
    assert.equal(stop.fleet.trust.get('new')?.state, 'unverified');
  });
});

// ---- the property ------------------------------------------------------------------------------------------------

type Op =
  | { op: 'verdict'; vm: number; ok: boolean; fresh: boolean; dt: number }
  | { op: 'tick'; dt: number }
  | { op: 'readmit'; vm: number; dt: number }
  | { op: 'policy'; alt: boolean }
  | { op: 'run'; vm: number; running: boolean };

const arbOp: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant('verdict' as const), vm: fc.nat(8), ok: fc.boolean(), fresh: fc.boolean(), dt: fc.nat(20_000) }),
  fc.record({ op: fc.constant('tick' as const), dt: fc.nat(60_000) }),
  fc.record({ op: fc.constant('readmit' as const), vm: fc.nat(8), dt: fc.nat(5_000) }),
  fc.record({ op: fc.constant('policy' as const), alt: fc.boolean() }),
  fc.record({ op: fc.constant('run' as const), vm: fc.nat(8), running: fc.boolean() }),
);

const ALT = policyFrom(ACME.replace('vio:        { colors: [pepsi, coke], onUntrusted: alert }', 'vio:        { colors: [pepsi, coke], onUntrusted: isolate }')
  .replace('coke-db:    { colors: [coke], onUntrusted: isolate }', 'coke-db:    { colors: [coke], onUntrusted: alert }'));

test('property: untrusted → trusted only through re-admission; isolating states have no colors; plan versions rise by one per change', () => {
  fc.assert(
    fc.property(fc.array(arbOp, { maxLength: 60 }), (ops) => {
      let fleet: Fleet = bigFleet(3, 3, acme);
      let now = T0;
      const DEADLINE = 30_000;
      const names = [...fleet.vms.keys()].sort();
      /** VMs that turned untrusted and were not re-admitted since */
      const condemned = new Set<string>();
      for (const o of ops) {
        let r: EngineResult;
        const before = fleet;
        switch (o.op) {
          case 'verdict':
            now += o.dt;
            r = applyVerdict(fleet, names[o.vm], { ok: o.ok, fresh: o.ok && o.fresh, summary: 'v' }, now);
            break;
          case 'tick':
            now += o.dt;
            r = tick(fleet, now, DEADLINE);
            break;
          case 'readmit': {
            now += o.dt;
            const name = names[o.vm];
            if (trustOf(fleet, name) !== 'untrusted') {
              assert.throws(() => readmit(fleet, name, 'op', 'why', now), (e) => isTrustError(e) && e.code === TrustErrorCode.notUntrusted);
              continue;
            }
            r = readmit(fleet, name, 'op', 'why', now);
            break;
          }
          case 'policy':
            r = applyPolicy(fleet, o.alt ? ALT : acme, fleet.policyVersion + 1);
            break;
          case 'run':
            r = applyInventory(fleet, { vms: [{ ...fleet.vms.get(names[o.vm])!, running: o.running }] }, now);
            break;
        }
        for (const t of r.transitions) {
          if (t.from === 'untrusted') {
            assert.equal(t.to, 'unverified');
            assert.notEqual(t.actor, VERIFIER);
            condemned.delete(t.vm);
          }
          if (t.to === 'untrusted') condemned.add(t.vm);
          if (t.to === 'trusted') assert.ok(!condemned.has(t.vm), `${t.vm} trusted again without re-admission`);
        }
        // plan versions: one more than the host's current plan, and only for hosts whose content changed
        for (const p of r.plans) {
          const prev = before.plans.get(p.host);
          assert.equal(p.version, (prev?.version ?? 0) + 1, p.host);
          assert.equal(r.fleet.plans.get(p.host), p);
        }
        for (const [h, p] of r.fleet.plans) if (!r.plans.some((x) => x.host === h)) assert.equal(p, before.plans.get(h));
        fleet = r.fleet;
        // every plan is up to date (no affected host was missed), and isolation holds in it
        for (const h of planHosts(fleet)) {
          const p = fleet.plans.get(h);
          assert.ok(p !== undefined, h);
          assert.equal(computePlan(h, fleet, p), p, `stale plan for ${h}`);
          for (const pv of p.vms) {
            const state: TrustState = trustOf(fleet, pv.name);
            const label = fleet.vms.get(pv.name)!.label!;
            const rule = fleet.policy.policy.labels[fleet.policy.labelIndex(label)].onUntrusted;
            const isolates = state === 'unverified' || ((state === 'untrusted' || state === 'unreachable') && rule === 'isolate');
            assert.equal(pv.colors.length === 0, isolates, `${pv.name} ${state} ${rule}`);
            if (isolates) assert.ok(pv.isolated);
            assert.ok(fleet.vms.get(pv.name)!.running);
          }
        }
      }
    }),
    { numRuns: 300 },
  );
});

// ---- the figure ------------------------------------------------------------------------------------------------------

test('time from an untrusted verdict to the affected host’s new plan, 1,000 hosts × 10 VMs (printed)', (t) => {
  const built = performance.now();
  const fleet = bigFleet(1000, 10);
  const buildMs = performance.now() - built;
  const victims = [...fleet.vms.values()].filter((v) => v.label !== 'vio').map((v) => v.name);
  const verdict = (i: number) => {
    const name = victims[(i * 7919) % victims.length];
    const t0 = performance.now();
    const r = applyVerdict(fleet, name, BAD, T0 + 1000);
    const ms = performance.now() - t0;
    assert.equal(r.plans.length, 1);
    assert.equal(r.plans[0].host, fleet.vms.get(name)!.host);
    return ms;
  };
  const cold = verdict(0);
  for (let i = 1; i <= 200; i++) verdict(i); // warm up
  const times: number[] = [];
  for (let i = 0; i < 1000; i++) times.push(verdict(1000 + i));
  times.sort((a, b) => a - b);
  const q = (p: number) => times[Math.min(times.length - 1, Math.floor(p * times.length))].toFixed(3);
  const t1 = performance.now();
  const tk = tick(fleet, T0 + 10_000, 30_000);
  const tickMs = performance.now() - t1;
  assert.equal(tk.transitions.length, 0);
  const t2 = performance.now();
  const ap = applyPolicy(fleet, policyFrom(ACME), 2);
  const policyMs = performance.now() - t2;
  assert.equal(ap.plans.length, 1000);
  const line =
    `untrusted verdict → the host’s new plan, 1,000 hosts × 10 VMs, in process: median ${q(0.5)} ms, p99 ${q(0.99)} ms, ` +
    `max ${q(1)} ms over 1,000 verdicts (first, cold: ${cold.toFixed(2)} ms; target < 10 ms). ` +
    `A tick over 10,000 VMs with nothing due: ${tickMs.toFixed(1)} ms; a new policy, 1,000 new plans: ${policyMs.toFixed(1)} ms; ` +
    `building the fleet and its first plans: ${buildMs.toFixed(0)} ms`;
  t.diagnostic(line);
  console.log(`# ${line}`);
});

test('makeFleet keys the arrays a store returns', () => {
  const f = makeFleet({ policy: acme, policyVersion: 1, hosts: [{ name: 'h', label: null }], vms: [vm('a', 'h', null)], trust: [trust('a', 'trusted')] });
  assert.equal(f.vms.get('a')?.host, 'h');
  assert.equal(trustOf(f, 'a'), 'trusted');
  assert.equal(trustOf(f, 'b'), 'unverified');
});
