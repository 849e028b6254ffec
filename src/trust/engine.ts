/**
 * The trust engine's API for the controller (DESIGN.md §4 step 4): verdicts, re-admissions, deadlines, policy and
 * inventory changes in; trust transitions and new plans out. Pure: time comes in as `now` (epoch ms), the fleet
 * comes in as a value and a new value comes out; nothing is read or written.
 *
 * Each function returns an `EngineResult`:
 * - `fleet`: the fleet after the change (sharing every part that did not change);
 * - `transitions`: every trust transition, for the trust history and the audit log;
 * - `trust`: every trust record that changed, with or without a transition (a good verdict on a trusted VM moves
 *   only its `lastEvidence`; a VM the inventory adds gets an `unverified` record);
 * - `plans`: a new plan for each host whose plan content changed, and for those only (plan.ts `replan`), its
 *   version one more than the host's current plan (1 for a host's first plan). Store them with the transitions
 *   in one transaction, then send each to its host.
 *
 * Only the hosts a change can reach are recomputed: the hosts of the VMs whose trust state changed, or of the VMs
 * and hosts an inventory change names; every host for a policy. So a verdict costs the same in a fleet of ten VMs
 * and of ten thousand (engine.test.ts prints the figure).
 *
 * The controller's sequence for evidence: load the VM's integrity state, `processEvidence` (evidence.ts), store
 * the new state, then `applyVerdict` with its verdict. For a re-admission: `readmit` here and
 * `readmitIntegrity` (evidence.ts) on the VM's integrity state, in one transaction.
 */
import type { CompiledPolicy } from '../monitor/compile.ts';
import { ChunkedMap } from './chunked-map.ts';
import { TrustError, TrustErrorCode } from './errors.ts';
import type { Fleet, FleetHost, FleetVm, Plan, TrustRecord, TrustTransition } from './model.ts';
import { deriveHostIndex, planHosts, replan } from './plan.ts';
import { initialTrust, isoTime, pastDeadline, stepTrust, type TrustEvent } from './state.ts';

export interface EngineResult {
  fleet: Fleet;
  transitions: TrustTransition[];
  trust: TrustRecord[];
  plans: Plan[];
}

/** What the engine needs of a verdict (evidence.ts's EvidenceVerdict has it). */
export interface VerdictInput {
  /** nothing failed */
  ok: boolean;
  /** good, attested evidence: appraised, and covered by a valid quote for a VM with a vTPM */
  fresh: boolean;
  /** one line: why (a transition's reason) */
  summary: string;
}

/**
 * The fleet after `changes` and these trust records, and the plans the hosts in `hosts` need (see replan).
 */
function finish(before: Fleet, records: TrustRecord[], transitions: TrustTransition[], hosts: Iterable<string>, changes: Partial<Fleet> = {}): EngineResult {
  const after: Fleet = { ...before, ...changes };
  if (records.length > 0) after.trust = ChunkedMap.of(before.trust).with(records.map((r) => [r.vm, r]));
  const plans = replan(before, after, hosts);
  if (plans.length > 0) after.plans = ChunkedMap.of(before.plans).with(plans.map((p) => [p.host, p]));
  return { fleet: after, transitions, trust: records, plans };
}

const nothing = (fleet: Fleet): EngineResult => ({ fleet, transitions: [], trust: [], plans: [] });

/** The hosts of the VMs whose trust state moved. */
function hostsOf(fleet: Fleet, transitions: readonly TrustTransition[]): Set<string> {
  const out = new Set<string>();
  for (const t of transitions) {
    const h = fleet.vms.get(t.vm)?.host;
    if (h !== undefined && h !== null) out.add(h);
  }
  return out;
}

function step(fleet: Fleet, vm: string, event: TrustEvent, now: number): EngineResult {
  if (!fleet.vms.has(vm)) throw new TrustError(TrustErrorCode.unknownVm, `no VM "${vm}" in the fleet`, { vm });
  const current = fleet.trust.get(vm);
  const s = stepTrust(vm, current, event, now);
  if (s.record === current) return nothing(fleet);
  const transitions = s.transition === null ? [] : [s.transition];
  return finish(fleet, [s.record], transitions, hostsOf(fleet, transitions));
}

/**
 * A verdict on a VM's evidence: failed → `untrusted` (from any state); good and fresh → `trusted` from
 * `unverified` or `unreachable` (an `untrusted` VM stays so); anything else changes nothing. Throws unknown_vm.
 */
export function applyVerdict(fleet: Fleet, vm: string, verdict: VerdictInput, now: number): EngineResult {
  return step(fleet, vm, { kind: 'verdict', ok: verdict.ok, fresh: verdict.fresh, reason: verdict.summary }, now);
}

/** One verdict of many (applyVerdicts). */
export interface VerdictStep {
  vm: string;
  verdict: VerdictInput;
}

export interface VerdictsResult extends EngineResult {
  /** each step's trust record right after it (in the order of the steps; the same VM may come more than once) */
  after: TrustRecord[];
  /** each step's transition, or null when it made none */
  moved: (TrustTransition | null)[];
}

/**
 * Many verdicts at once, in order (a VM may have more than one: each steps from the record the one before left):
 * the result of applying them one after another, but with one new plan for each host they reach, not one per
 * verdict — what a controller stores in one transaction for evidence it took together. `trust` holds each changed
 * VM's last record; `transitions` every transition, in order. Throws unknown_vm (and nothing is applied).
 */
export function applyVerdicts(fleet: Fleet, steps: readonly VerdictStep[], now: number): VerdictsResult {
  const latest = new Map<string, TrustRecord>();
  const after: TrustRecord[] = [];
  const moved: (TrustTransition | null)[] = [];
  const transitions: TrustTransition[] = [];
  for (const { vm, verdict } of steps) {
    if (!fleet.vms.has(vm)) throw new TrustError(TrustErrorCode.unknownVm, `no VM "${vm}" in the fleet`, { vm });
    const current = latest.get(vm) ?? fleet.trust.get(vm);
    const s = stepTrust(vm, current, { kind: 'verdict', ok: verdict.ok, fresh: verdict.fresh, reason: verdict.summary }, now);
    if (s.record !== current) latest.set(vm, s.record);
    after.push(s.record);
    moved.push(s.transition);
    if (s.transition !== null) transitions.push(s.transition);
  }
  if (latest.size === 0) return { ...nothing(fleet), after, moved };
  return { ...finish(fleet, [...latest.values()], transitions, hostsOf(fleet, transitions)), after, moved };
}

/**
 * An operator re-admits an untrusted VM: → `unverified`, and `trusted` again at its next good verdict. Throws
 * unknown_vm, not_untrusted for a VM in another state, reason_required without an actor or a reason.
 */
export function readmit(fleet: Fleet, vm: string, actor: string, reason: string, now: number): EngineResult {
  return step(fleet, vm, { kind: 'readmit', actor, reason }, now);
}

/**
 * Deadlines: every running VM that is `trusted` or `unverified` and has had no fresh evidence for more than
 * `deadlineMs` becomes `unreachable`. A VM that is not running sends no evidence and is not judged; a VM without
 * a trust record is not judged either (give it `initialTrust`, as `applyInventory` does, to start its clock).
 */
export function tick(fleet: Fleet, now: number, deadlineMs: number): EngineResult {
  if (!Number.isFinite(deadlineMs) || deadlineMs < 0) {
    throw new TrustError(TrustErrorCode.badArgument, `a deadline must be a non-negative number of milliseconds, not ${deadlineMs}`);
  }
  isoTime(now);
  const cutoff = now - deadlineMs;
  const cutoffIso = Math.abs(cutoff) <= 8.64e15 ? new Date(cutoff).toISOString() : undefined;
  const records: TrustRecord[] = [];
  const transitions: TrustTransition[] = [];
  const event: TrustEvent = { kind: 'deadline', deadlineMs };
  for (const vm of fleet.vms.values()) {
    if (!vm.running) continue;
    const current = fleet.trust.get(vm.name);
    if (current === undefined || (current.state !== 'trusted' && current.state !== 'unverified')) continue;
    if (!pastDeadline(current, cutoff, cutoffIso)) continue;
    const s = stepTrust(vm.name, current, event, now);
    if (s.transition === null) continue;
    records.push(s.record);
    transitions.push(s.transition);
  }
  if (records.length === 0) return nothing(fleet);
  return finish(fleet, records, transitions, hostsOf(fleet, transitions));
}

/**
 * A newly published policy: every plan is recomputed, and every host gets a new plan (its `policyVersion` changes
 * even where its VMs' colors do not, so each host reports which policy it enforces). Trust states do not change:
 * a label's new trust rule applies at once. With the fleet's own policy and version, it gives the hosts that have
 * no plan yet their first (the controller's start) and nothing else.
 */
export function applyPolicy(fleet: Fleet, policy: CompiledPolicy, policyVersion: number): EngineResult {
  if (!Number.isSafeInteger(policyVersion) || policyVersion < 1) {
    throw new TrustError(TrustErrorCode.badArgument, `a policy version is a positive integer, not ${policyVersion}`);
  }
  const after: Fleet = { ...fleet, policy, policyVersion };
  return finish(fleet, [], [], new Set([...planHosts(fleet), ...planHosts(after)]), { policy, policyVersion });
}

/** What an agent's report (or an operator) changes in the fleet. */
export interface InventoryChange {
  /** hosts added or changed (a new label) */
  hosts?: readonly FleetHost[];
  /** VMs added or changed (started, stopped, moved, relabelled, new ports) */
  vms?: readonly FleetVm[];
  /** VMs gone (undefined); their trust records stay, so a VM of the same name comes back as what it was */
  removeVms?: readonly string[];
}

/**
 * Hosts and VMs change: the hosts whose plans change get new ones (both hosts of a VM that moved). A VM the fleet
 * did not know, without a trust record, gets an `unverified` one (`initialTrust`, its deadline clock starting
 * now) — a record without a transition.
 */
export function applyInventory(fleet: Fleet, change: InventoryChange, now: number): EngineResult {
  isoTime(now);
  const changes: Partial<Fleet> = {};
  const touched = new Set<string>();
  if (change.hosts !== undefined && change.hosts.length > 0) {
    changes.hosts = ChunkedMap.of(fleet.hosts).with(change.hosts.map((h) => [h.name, h]));
    for (const h of change.hosts) touched.add(h.name);
  }
  const records: TrustRecord[] = [];
  const setVms = change.vms ?? [];
  const removeVms = change.removeVms ?? [];
  if (setVms.length > 0 || removeVms.length > 0) {
    const vmHosts = new Set<string>();
    const note = (name: string) => {
      const h = fleet.vms.get(name)?.host;
      if (h !== undefined && h !== null) vmHosts.add(h);
    };
    const added = new Set<string>();
    for (const v of setVms) {
      note(v.name);
      if (v.host !== null) vmHosts.add(v.host);
      if (!fleet.trust.has(v.name) && !added.has(v.name)) {
        added.add(v.name);
        records.push(initialTrust(v.name, now));
      }
    }
    for (const name of removeVms) note(name);
    const vms = ChunkedMap.of(fleet.vms).with(
      setVms.map((v) => [v.name, v]),
      removeVms,
    );
    deriveHostIndex(fleet.vms, vms, [...setVms.map((v) => v.name), ...removeVms]);
    changes.vms = vms;
    for (const h of vmHosts) touched.add(h);
  }
  if (touched.size === 0) return nothing(fleet);
  return finish(fleet, records, [], touched, changes);
}
