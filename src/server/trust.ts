/**
 * The controller's side of the trust engine (DESIGN.md §4 step 4): it builds the engine's fleet from the store,
 * and stores what the engine decides — trust records and transitions (each audited and published as a `trust`
 * event), new plans (each published as a `plan` event) — through the caller's transaction, so that a store error
 * never leaves a transition without its plan or the reverse.
 *
 * Every change that can move a plan goes through here: evidence, re-admission and deadlines (`routes/trust.ts`,
 * `runTick`), inventory and label changes (`routes/hosts.ts`, `routes/vms.ts`), publishing a policy (`publish.ts`).
 *
 * A good fresh verdict on a trusted VM moves only the record's `lastEvidence`: `storeResult` writes that with
 * `Store.touchTrust` (no transition, not audited), so the deadline counts from the trust record itself. (Evidence
 * that is good but not fresh — entries waiting for a quote — does not move it.)
 */
import type { CompiledPolicy } from '../monitor/compile.ts';
import type { Store, VmRecord } from '../store/store.ts';
import { applyInventory, applyPolicy, tick, type EngineResult, type InventoryChange } from '../trust/engine.ts';
import { makeFleet, type Fleet, type Plan, type TrustRecord, type TrustTransition } from '../trust/model.ts';
import { audit, type CurrentPolicy, type ServerContext } from './context.ts';

/** The engine's fleet, as the store holds it now (read through `s`: inside the caller's transaction). */
export async function engineFleet(s: Store, policy: CompiledPolicy, policyVersion: number): Promise<Fleet> {
  const [hosts, vms, trusts] = await Promise.all([s.hosts(), s.vms(), s.trusts()]);
  const names = new Set<string>(hosts.map((h) => h.name));
  for (const v of vms) if (v.host !== null) names.add(v.host);
  const plans: Plan[] = [];
  for (const h of names) {
    const p = await s.plan(h);
    if (p !== null) plans.push(p);
  }
  return makeFleet({ policy, policyVersion, hosts, vms, trust: trusts, plans });
}

/**
 * The part of the fleet that a change to one VM's trust can reach: its host, that host's VMs, their trust records
 * and the host's plan (plans hold only the host's own VMs, plan.ts). Enough for `applyVerdict` and `readmit`, at
 * a cost that follows the host, not the fleet.
 */
export async function vmFleet(s: Store, policy: CompiledPolicy, policyVersion: number, vm: VmRecord): Promise<Fleet> {
  if (vm.host === null) {
    const t = await s.trust(vm.name);
    return makeFleet({ policy, policyVersion, hosts: [], vms: [vm], trust: t === null ? [] : [t] });
  }
  const [host, vms, plan] = await Promise.all([s.host(vm.host), s.vms(vm.host), s.plan(vm.host)]);
  const trust: TrustRecord[] = [];
  for (const v of vms) {
    const t = await s.trust(v.name);
    if (t !== null) trust.push(t);
  }
  return makeFleet({ policy, policyVersion, hosts: host === null ? [] : [host], vms, trust, plans: plan === null ? [] : [plan] });
}

/** The engine's fleet under the published policy, or null when none is published (no plans then). */
export async function currentFleet(s: Store, current: CurrentPolicy | null): Promise<Fleet | null> {
  if (current === null) return null;
  return engineFleet(s, current.compiled, current.record.version);
}

/** What a stored engine result did, for the metrics once its transaction committed. */
export interface Effects {
  transitions: TrustTransition[];
  plans: Plan[];
}

export const noEffects = (): Effects => ({ transitions: [], plans: [] });

/**
 * Store an engine result through `s` (the caller's transaction): every transition with its record (audited with
 * the transition's actor, published as a `trust` event), every new trust record without a transition that the store
 * has not got yet (a VM first seen: its deadline clock starts; history notes it, it is not a transition and is not
 * audited), records that only move `lastEvidence` (`touchTrust`: fresh evidence on a trusted VM), and the new plans
 * (published as `plan` events).
 */
export async function storeResult(ctx: Pick<ServerContext, 'now'>, s: Store, r: EngineResult, into: Effects = noEffects()): Promise<Effects> {
  const records = new Map(r.trust.map((t) => [t.vm, t]));
  const moved = new Set<string>();
  for (const t of r.transitions) {
    const record = records.get(t.vm);
    if (record === undefined) continue; // the engine gives every transition its record
    moved.add(t.vm);
    await s.putTrust(record, t);
    await audit(ctx, s, t.actor, 'trust.transition', `vm/${t.vm}`, { from: t.from, to: t.to, reason: t.reason });
    await s.publish({ kind: 'trust', subject: `vm/${t.vm}`, at: t.at });
    into.transitions.push(t);
  }
  for (const record of r.trust) {
    if (moved.has(record.vm)) continue;
    const stored = await s.trust(record.vm);
    if (stored !== null) {
      if (record.lastEvidence !== null && record.lastEvidence !== stored.lastEvidence) await s.touchTrust(record.vm, record.lastEvidence);
      continue;
    }
    await s.putTrust(record, { vm: record.vm, from: record.state, to: record.state, at: record.since, reason: record.reason, actor: 'verifier' });
    await s.publish({ kind: 'trust', subject: `vm/${record.vm}`, at: record.since });
  }
  if (r.plans.length > 0) {
    await s.putPlans(r.plans);
    const at = ctx.now().toISOString();
    for (const p of r.plans) await s.publish({ kind: 'plan', subject: p.host, at });
    into.plans.push(...r.plans);
  }
  return into;
}

/** Count what a committed change did. */
export function countEffects(ctx: Pick<ServerContext, 'metrics'>, e: Effects): void {
  for (const t of e.transitions) ctx.metrics.trustTransitions.inc({ from: t.from, to: t.to });
  for (const p of e.plans) {
    ctx.metrics.plansIssued.inc();
    ctx.metrics.planVersion.set(p.version, { host: p.host });
  }
}

/**
 * An inventory change (hosts, VMs, labels) through `s`: `before` is the fleet read before the change was written
 * (null: no policy, nothing to plan). New plans for the hosts it reaches, first trust records for new VMs.
 */
export async function storeInventory(ctx: Pick<ServerContext, 'now'>, s: Store, before: Fleet | null, change: InventoryChange): Promise<Effects> {
  if (before === null) return noEffects();
  return storeResult(ctx, s, applyInventory(before, change, ctx.now().getTime()));
}

/**
 * One deadline tick: every running VM that is trusted or unverified and has had no fresh evidence for more than
 * `ctx.deadlineMs` becomes unreachable (its label's trust rule then isolates or alerts), in one transaction.
 */
export async function runTick(ctx: ServerContext): Promise<Effects> {
  const current = await ctx.policies.current();
  if (current === null) return noEffects();
  const effects = await ctx.store.tx(async (s) => {
    const fleet = await engineFleet(s, current.compiled, current.record.version);
    return storeResult(ctx, s, tick(fleet, ctx.now().getTime(), ctx.deadlineMs));
  });
  countEffects(ctx, effects);
  return effects;
}

/**
 * A policy published through `s` (after it is stored, and after its renames are applied): every host gets a new
 * plan computed under it, in the publish's transaction.
 */
export async function storePolicy(ctx: Pick<ServerContext, 'now'>, s: Store, policy: CompiledPolicy, version: number, previous: number): Promise<Effects> {
  const fleet = await engineFleet(s, policy, previous);
  return storeResult(ctx, s, applyPolicy(fleet, policy, version));
}

/** At start: the hosts that have no plan under the current policy yet get their first (nothing else changes). */
export async function firstPlans(ctx: ServerContext, current: CurrentPolicy): Promise<void> {
  const effects = await ctx.store.tx(async (s) => {
    const fleet = await engineFleet(s, current.compiled, current.record.version);
    return storeResult(ctx, s, applyPolicy(fleet, current.compiled, current.record.version));
  });
  countEffects(ctx, effects);
}
