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
 * `Store.touchTrusts` (no transition, not audited), so the deadline counts from the trust record itself. (Evidence
 * that is good but not fresh — entries waiting for a quote — does not move it.)
 *
 * The writers that run often (evidence, the deadline tick, inventory and label changes, re-admission) work from the
 * fleet in memory (`ctx.fleet`, fleet-state.ts) and hand it the fleet their change left; publishing a policy reads
 * the fleet from the store (it is rare, and renames labels first).
 */
import type { CompiledPolicy } from '../monitor/compile.ts';
import type { Store } from '../store/store.ts';
import { applyInventory, applyPolicy, tick, type EngineResult, type InventoryChange } from '../trust/engine.ts';
import type { Fleet, Plan, TrustRecord, TrustTransition } from '../trust/model.ts';
import { audit, type CurrentPolicy, type ServerContext } from './context.ts';
import { loadEngineFleet } from './fleet-state.ts';

/** The engine's fleet, as the store holds it now (read through `s`: inside the caller's transaction). */
export const engineFleet = loadEngineFleet;

/** What a stored engine result did, for the metrics once its transaction committed. */
export interface Effects {
  transitions: TrustTransition[];
  plans: Plan[];
}

export const noEffects = (): Effects => ({ transitions: [], plans: [] });

/**
 * Store an engine result through `s` (the caller's transaction): every transition with its record (audited with
 * the transition's actor, published as a `trust` event; a VM with several transitions in one result — a group of
 * evidence — gets each in order, the last with its final record), every new trust record without a transition that
 * the store has not got yet (a VM first seen: its deadline clock starts; history notes it, it is not a transition
 * and is not audited), records that only move `lastEvidence` (`touchTrusts`: fresh evidence on a trusted VM), and
 * the new plans (published as `plan` events). `before`, the fleet the result was computed from as the store holds
 * it, says which records the store has; without it they are read.
 */
export async function storeResult(ctx: Pick<ServerContext, 'now'>, s: Store, r: EngineResult, before?: Fleet): Promise<Effects> {
  const into = noEffects();
  const records = new Map(r.trust.map((t) => [t.vm, t]));
  const last = new Map(r.transitions.map((t) => [t.vm, t]));
  const moved = new Set<string>();
  // fleet state first, then the audit records (store.ts: fleet tables before other locked rows)
  const audits: TrustTransition[] = [];
  for (const t of r.transitions) {
    const final = records.get(t.vm);
    if (final === undefined) continue; // the engine gives every transition its record
    moved.add(t.vm);
    const record: TrustRecord = last.get(t.vm) === t ? final : { vm: t.vm, state: t.to, since: t.at, reason: t.reason, lastEvidence: final.lastEvidence };
    await s.putTrust(record, t);
    audits.push(t);
  }
  const touches: { vm: string; lastEvidence: string }[] = [];
  const fresh: TrustRecord[] = [];
  for (const record of r.trust) {
    if (moved.has(record.vm)) continue;
    const stored = before !== undefined ? (before.trust.get(record.vm) ?? null) : await s.trust(record.vm);
    if (stored !== null) {
      if (record.lastEvidence !== null && record.lastEvidence !== stored.lastEvidence) touches.push({ vm: record.vm, lastEvidence: record.lastEvidence });
      continue;
    }
    await s.putTrust(record, { vm: record.vm, from: record.state, to: record.state, at: record.since, reason: record.reason, actor: 'verifier' });
    fresh.push(record);
  }
  await s.touchTrusts(touches);
  if (r.plans.length > 0) await s.putPlans(r.plans);
  for (const t of audits) {
    await audit(ctx, s, t.actor, 'trust.transition', `vm/${t.vm}`, { from: t.from, to: t.to, reason: t.reason });
    await s.publish({ kind: 'trust', subject: `vm/${t.vm}`, at: t.at });
    into.transitions.push(t);
  }
  for (const record of fresh) await s.publish({ kind: 'trust', subject: `vm/${record.vm}`, at: record.since });
  if (r.plans.length > 0) {
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
 * An inventory change (hosts, VMs, labels) through `s`: `before` is the fleet as the store held it before the
 * change was written (null: no policy, nothing to plan). New plans for the hosts it reaches, first trust records
 * for new VMs; and the fleet after it.
 */
export async function storeInventory(
  ctx: Pick<ServerContext, 'now'>,
  s: Store,
  before: Fleet | null,
  change: InventoryChange,
): Promise<{ effects: Effects; fleet: Fleet | null }> {
  if (before === null) return { effects: noEffects(), fleet: null };
  const r = applyInventory(before, change, ctx.now().getTime());
  return { effects: await storeResult(ctx, s, r, before), fleet: r.fleet };
}

/**
 * One deadline tick: every running VM that is trusted or unverified and has had no fresh evidence for more than
 * `ctx.deadlineMs` becomes unreachable (its label's trust rule then isolates or alerts), in one transaction, from
 * the fleet in memory (a tick that moves nothing writes nothing).
 */
export async function runTick(ctx: ServerContext): Promise<Effects> {
  const effects = await ctx.fleet.change(async (s, view) => {
    if (view.fleet === null) return { value: noEffects() };
    const r = tick(view.fleet, ctx.now().getTime(), ctx.deadlineMs);
    if (r.transitions.length === 0 && r.plans.length === 0) return { value: noEffects() };
    return { value: await storeResult(ctx, s, r, view.fleet), fleet: r.fleet };
  }, { lock: false });
  countEffects(ctx, effects);
  return effects;
}

/**
 * A policy published through `s` (after it is stored, and after its renames are applied): every host gets a new
 * plan computed under it, in the publish's transaction.
 */
export async function storePolicy(ctx: Pick<ServerContext, 'now'>, s: Store, policy: CompiledPolicy, version: number, previous: number): Promise<Effects> {
  const fleet = await engineFleet(s, policy, previous);
  return storeResult(ctx, s, applyPolicy(fleet, policy, version), fleet);
}

/** At start: the hosts that have no plan under the current policy yet get their first (nothing else changes). */
export async function firstPlans(ctx: ServerContext, current: CurrentPolicy): Promise<void> {
  const effects = await ctx.store.tx(async (s) => {
    const fleet = await engineFleet(s, current.compiled, current.record.version);
    return storeResult(ctx, s, applyPolicy(fleet, current.compiled, current.record.version), fleet);
  });
  countEffects(ctx, effects);
}
