/**
 * Plans (DESIGN.md §1, §4 step 4): what one host must enforce, and which hosts need a new one.
 *
 * A plan holds the host's running VMs (by name), each with its bridge ports (sorted) and its effective colors (or
 * why it has none), and the policy version it was computed from. Its content is everything but `version`; the
 * version goes up by exactly one when the content changes and not otherwise, so an agent that already applied
 * version N has nothing to do when it is sent N again. A new policy version changes every plan's content
 * (`policyVersion`): each host then says which policy it enforces.
 *
 * What a plan does not hold yet: the addresses of remote VMs of its colors (DESIGN.md §1 lists them). Plans hold
 * only the host's own VMs, so enforcement covers traffic between VMs of one host (one bridge), hosts are
 * independent, and one VM's trust changes one plan at most: its own host's. Once plans carry remote colors'
 * addresses for cross-host traffic, a VM's change will also reach every host that runs a VM sharing one of its
 * colors. `replan` compares whole plans and needs no change for that; `candidateHosts` (and the engine's choice
 * of hosts) will have to add those hosts.
 */
import { effectiveColors } from './effective-colors.ts';
import type { Fleet, FleetVm, Plan, PlanVm } from './model.ts';

// ---- VMs by host, cached per (immutable) vms map --------------------------------------------------------------------

const byHostCache = new WeakMap<ReadonlyMap<string, FleetVm>, Map<string, FleetVm[]>>();

/** The VMs the fleet places on `host` (running or not), in no particular order. */
export function vmsOnHost(fleet: Fleet, host: string): readonly FleetVm[] {
  let index = byHostCache.get(fleet.vms);
  if (index === undefined) {
    index = new Map();
    for (const vm of fleet.vms.values()) {
      if (vm.host === null) continue;
      const list = index.get(vm.host);
      if (list === undefined) index.set(vm.host, [vm]);
      else list.push(vm);
    }
    byHostCache.set(fleet.vms, index);
  }
  return index.get(host) ?? [];
}

/**
 * Caches the index of `next`, a `vms` map made from `prev` by changing (setting or removing) the VMs named, from
 * that of `prev`: only those VMs' hosts' lists are copied, so an inventory change does not re-index the fleet.
 */
export function deriveHostIndex(prev: ReadonlyMap<string, FleetVm>, next: ReadonlyMap<string, FleetVm>, changed: Iterable<string>): void {
  const old = byHostCache.get(prev);
  if (old === undefined) return; // built when first needed
  const index = new Map(old);
  const copied = new Set<string>();
  const list = (h: string): FleetVm[] => {
    if (!copied.has(h)) {
      copied.add(h);
      index.set(h, [...(old.get(h) ?? [])]);
    }
    return index.get(h) as FleetVm[];
  };
  for (const name of new Set(changed)) {
    const a = prev.get(name);
    const b = next.get(name);
    if (a !== undefined && a.host !== null) {
      const l = list(a.host);
      const i = l.findIndex((v) => v.name === name);
      if (i >= 0) l.splice(i, 1);
    }
    if (b !== undefined && b.host !== null) list(b.host).push(b);
  }
  byHostCache.set(next, index);
}

/** Every host that has (or should have) a plan: the registered ones, those with a plan, those VMs are placed on. */
export function planHosts(fleet: Fleet): string[] {
  const out = new Set<string>(fleet.hosts.keys());
  for (const h of fleet.plans.keys()) out.add(h);
  for (const vm of fleet.vms.values()) if (vm.host !== null) out.add(vm.host);
  return [...out].sort(byName);
}

const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** One VM's entry in its host's plan. */
export function planVm(fleet: Fleet, vm: FleetVm): PlanVm {
  const e = effectiveColors(fleet.policy, vm, fleet.trust.get(vm.name)?.state ?? 'unverified', vm.host === null ? undefined : fleet.hosts.get(vm.host));
  const out: PlanVm = { name: vm.name, ports: [...vm.ports].sort(byName), colors: e.colors };
  if (e.isolated !== undefined) out.isolated = e.isolated;
  return out;
}

/** The plan entries of `host`: its running VMs, by name. */
export function planVms(host: string, fleet: Fleet): PlanVm[] {
  const out: PlanVm[] = [];
  for (const vm of vmsOnHost(fleet, host)) if (vm.running) out.push(planVm(fleet, vm));
  return out.sort((a, b) => byName(a.name, b.name));
}

function sameStrings(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Whether two plans say the same (everything but `version`). */
export function samePlanContent(a: Plan, b: Plan): boolean {
  if (a.host !== b.host || a.policyVersion !== b.policyVersion || a.vms.length !== b.vms.length) return false;
  for (let i = 0; i < a.vms.length; i++) {
    const x = a.vms[i];
    const y = b.vms[i];
    if (x.name !== y.name || x.isolated !== y.isolated || !sameStrings(x.ports, y.ports) || !sameStrings(x.colors, y.colors)) return false;
  }
  return true;
}

/**
 * The plan `host` must enforce in `fleet`. With `prev` (its current plan): `prev` itself when the content is the
 * same, else version `prev.version + 1`. Without: version 1.
 */
export function computePlan(host: string, fleet: Fleet, prev?: Plan | null): Plan {
  const next: Plan = { host, version: 1, policyVersion: fleet.policyVersion, vms: planVms(host, fleet) };
  if (prev === undefined || prev === null) return next;
  if (samePlanContent(prev, next)) return prev;
  next.version = prev.version + 1;
  return next;
}

/**
 * The hosts whose plans may change from `before` to `after`: every host when the policy or its version changed;
 * else the hosts of the VMs whose records or trust states changed (both the old and the new host of a VM that
 * moved) and the hosts whose records changed. Only these are recomputed, so the cost follows the change, not the
 * fleet.
 */
export function candidateHosts(before: Fleet, after: Fleet): Set<string> {
  if (before.policy !== after.policy || before.policyVersion !== after.policyVersion) {
    return new Set([...planHosts(before), ...planHosts(after)]);
  }
  const c = new Set<string>();
  const vmHost = (name: string) => {
    for (const f of [before, after]) {
      const h = f.vms.get(name)?.host;
      if (h !== undefined && h !== null) c.add(h);
    }
  };
  if (before.vms !== after.vms) {
    for (const [name, vm] of after.vms) if (before.vms.get(name) !== vm) vmHost(name);
    for (const name of before.vms.keys()) if (!after.vms.has(name)) vmHost(name);
  }
  if (before.trust !== after.trust) {
    for (const [name, t] of after.trust) if (before.trust.get(name)?.state !== t.state) vmHost(name);
    for (const name of before.trust.keys()) if (!after.trust.has(name)) vmHost(name);
  }
  if (before.hosts !== after.hosts) {
    for (const [name, h] of after.hosts) if (before.hosts.get(name) !== h) c.add(name);
    for (const name of before.hosts.keys()) if (!after.hosts.has(name)) c.add(name);
  }
  return c;
}

/**
 * The new plans the change from `before` to `after` calls for, sorted by host: for each candidate host
 * (`candidateHosts`, or the hosts given), the plan computed in `after`, when the host has no current plan
 * (`before.plans`) or its current plan says something else. Versions follow the current plans.
 */
export function replan(before: Fleet, after: Fleet, hosts: Iterable<string> = candidateHosts(before, after)): Plan[] {
  const out: Plan[] = [];
  for (const host of hosts) {
    const prev = before.plans.get(host);
    const next = computePlan(host, after, prev);
    if (next !== prev) out.push(next);
  }
  return out.sort((a, b) => byName(a.host, b.host));
}

/** The hosts that need a new plan when the fleet goes from `before` to `after` (see replan), sorted. */
export function affectedHosts(before: Fleet, after: Fleet): string[] {
  return replan(before, after).map((p) => p.host);
}
