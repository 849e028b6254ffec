/**
 * The values the trust engine works on: trust records and transitions, plans, and the fleet.
 *
 * Trust states, transitions and plans are the API's wire types (src/api). The pure core may not import the store
 * (DESIGN.md §3), so `TrustRecord` is declared here again, field for field; TypeScript compares shapes, so the
 * controller passes its records in and stores what comes out without a conversion. `FleetHost` and `FleetVm` take only the fields the engine reads,
 * so `HostV1` and the store's `VmRecord` fit them as they are.
 *
 * A `Fleet` is a value: engine functions never change the one they are given, they return a new one that shares
 * every part they did not change. Its maps may be any `ReadonlyMap`; the engine returns `ChunkedMap`s, whose
 * updates copy about √N entries instead of N. Treat a fleet as immutable: the engine caches an index of VMs by
 * host per `vms` map, which a change in place would make stale.
 */
import type { PlanV1, PlanVmV1, TrustState, TrustTransitionV1 } from '../api/types.ts';
import type { CompiledPolicy } from '../monitor/compile.ts';
import { ChunkedMap } from './chunked-map.ts';

export type { TrustState } from '../api/types.ts';
export const TRUST_STATES: readonly TrustState[] = ['unverified', 'trusted', 'untrusted', 'unreachable'];

/** A VM's trust (the store's TrustRecord; the core may not import the store, so it is declared here). */
export interface TrustRecord {
  vm: string;
  state: TrustState;
  /** ISO time of the transition into `state` */
  since: string;
  /** why it is in `state` (the transition's reason) */
  reason: string;
  /** ISO time of the last fresh, good evidence; null if none yet */
  lastEvidence: string | null;
}

/** One change of a VM's trust state: every one goes to the trust history and the audit log. */
export type TrustTransition = TrustTransitionV1;

/** What one host must enforce: version 1 for a host's first plan, then one more each time its content changes. */
export type Plan = PlanV1;

/** One running VM of a plan: ports sorted, effective colors in policy order, `isolated` says why they are empty. */
export type PlanVm = PlanVmV1;

/** A host as the engine needs it (HostV1 fits). */
export interface FleetHost {
  name: string;
  /** the host's label; the policy's bootstrap label when null */
  label: string | null;
}

/** A VM as the engine needs it (the store's VmRecord fits). */
export interface FleetVm {
  name: string;
  host: string | null;
  /** null: unlabeled */
  label: string | null;
  running: boolean;
  ports: readonly string[];
  /** isolated by a policy update in `revoke` mode (the store's VmRecord.revoked); absent or null: not */
  revoked?: { policyVersion: number; reasons: readonly string[] } | null;
}

/** Everything the engine decides from. */
export interface Fleet {
  /** the published policy, compiled */
  policy: CompiledPolicy;
  /** its store version (plans say which one they were computed from) */
  policyVersion: number;
  hosts: ReadonlyMap<string, FleetHost>;
  vms: ReadonlyMap<string, FleetVm>;
  /** a VM without a record is `unverified` */
  trust: ReadonlyMap<string, TrustRecord>;
  /** the current plan of each host */
  plans: ReadonlyMap<string, Plan>;
}

/** A fleet from the arrays a store returns (its maps are ChunkedMaps: cheap to update, see chunked-map.ts). */
export function makeFleet(input: {
  policy: CompiledPolicy;
  policyVersion: number;
  hosts: Iterable<FleetHost>;
  vms: Iterable<FleetVm>;
  trust?: Iterable<TrustRecord>;
  plans?: Iterable<Plan>;
}): Fleet {
  return {
    policy: input.policy,
    policyVersion: input.policyVersion,
    hosts: ChunkedMap.from([...input.hosts].map((h) => [h.name, h])),
    vms: ChunkedMap.from([...input.vms].map((v) => [v.name, v])),
    trust: ChunkedMap.from([...(input.trust ?? [])].map((t) => [t.vm, t])),
    plans: ChunkedMap.from([...(input.plans ?? [])].map((p) => [p.host, p])),
  };
}

/** A VM's trust state: its record's, `unverified` without one. */
export function trustOf(fleet: Fleet, vm: string): TrustState {
  return fleet.trust.get(vm)?.state ?? 'unverified';
}
