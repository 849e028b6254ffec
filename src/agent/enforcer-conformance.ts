/**
 * The Enforcer conformance suite (node:test), written once and run by every enforcer: `nftables.test.ts` (real nft
 * in a namespace of its own) and `dry-run.test.ts`. It checks what `enforcer.ts` promises: a plan is enforced as
 * asked, a bad plan changes nothing, a later plan replaces an earlier one whole, and `remove` leaves nothing.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { PlanV1, PlanVmV1 } from '../api/types.ts';
import type { Enforced, Enforcer } from './enforcer.ts';
import { AgentError } from './errors.ts';

export interface EnforcerBackend {
  /** Why this enforcer cannot run here (the suite is skipped with the reason printed), or null. */
  unavailable(): string | null;
  /** A fresh enforcer on an empty data plane. */
  fresh(): Promise<Enforcer>;
  /** Undo everything `fresh` made. */
  cleanup(): Promise<void>;
}

let version = 0;
export const planOf = (vms: PlanVmV1[], host = 'h1'): PlanV1 => ({ host, version: ++version, policyVersion: 1, vms });
const vm = (name: string, ports: string[], colors: string[], isolated?: string): PlanVmV1 => ({ name, ports, colors, ...(isolated ? { isolated } : {}) });

const asObject = (e: Enforced | null) => (e ? Object.fromEntries([...e.ports].sort(([a], [b]) => a.localeCompare(b))) : null);

export function runEnforcerConformance(name: string, backend: EnforcerBackend): void {
  const why = backend.unavailable();
  if (why) console.log(`# SKIP enforcer conformance (${name}): ${why}`);
  describe(`Enforcer conformance: ${name}`, { skip: why ?? false }, () => {
    after(() => backend.cleanup());

    it('enforces nothing before the first plan', async () => {
      const e = await backend.fresh();
      assert.equal(await e.current(), null);
    });

    it('puts each port in exactly the colors of its VM; an isolated VM in none; a several-color VM in each', async () => {
      const e = await backend.fresh();
      await e.apply(planOf([vm('a', ['p-a'], ['blue']), vm('b', ['p-b1', 'p-b2'], ['blue']), vm('c', ['p-c'], ['red']), vm('d', ['p-d'], ['red', 'blue']), vm('e', ['p-e'], [], 'untrusted')]));
      assert.deepEqual(asObject(await e.current()), { 'p-a': ['blue'], 'p-b1': ['blue'], 'p-b2': ['blue'], 'p-c': ['red'], 'p-d': ['blue', 'red'], 'p-e': [] });
    });

    it('replaces the previous plan whole: colors gone, ports gone, a VM recolored', async () => {
      const e = await backend.fresh();
      await e.apply(planOf([vm('a', ['p-a'], ['blue']), vm('c', ['p-c'], ['red']), vm('g', ['p-g'], ['green'])]));
      await e.apply(planOf([vm('a', ['p-a'], ['red']), vm('c', ['p-c'], ['red'])]));
      assert.deepEqual(asObject(await e.current()), { 'p-a': ['red'], 'p-c': ['red'] });
      await e.apply(planOf([]));
      assert.deepEqual(asObject(await e.current()), {});
    });

    it('refuses a plan with a port that is no interface name, and keeps the last good one', async () => {
      const e = await backend.fresh();
      await e.apply(planOf([vm('a', ['p-a'], ['blue'])]));
      for (const bad of ['x; reboot', 'a-name-longer-than-15', '', '"quoted"', '../up']) {
        await assert.rejects(e.apply(planOf([vm('a', ['p-a'], ['red']), vm('z', [bad], ['red'])])), (err: unknown) => {
          assert.ok(err instanceof AgentError);
          assert.equal(err.code, 'bad_plan');
          assert.match(err.message, /vms\[1\]\.ports\[0\]/);
          return true;
        });
      }
      await assert.rejects(e.apply(planOf([vm('a', ['p-a'], ['red']), vm('b', ['p-a'], ['red'])])), /appears twice/);
      assert.deepEqual(asObject(await e.current()), { 'p-a': ['blue'] });
    });

    it('keeps color names of any spelling (Xen labels have spaces and quotes)', async () => {
      const e = await backend.fresh();
      const odd = ['A "quoted" color', 'ünï cödé', 'semi;colon', 'x'.repeat(200)];
      await e.apply(planOf(odd.map((c, i) => vm(`v${i}`, [`p${i}`], [c]))));
      assert.deepEqual(asObject(await e.current()), Object.fromEntries(odd.map((c, i) => [`p${i}`, [c]])));
    });

    it('remove leaves nothing', async () => {
      const e = await backend.fresh();
      await e.apply(planOf([vm('a', ['p-a'], ['blue'])]));
      await e.remove();
      assert.equal(await e.current(), null);
      await e.remove(); // twice is fine
    });
  });
}
