/**
 * Effective colors (DESIGN.md §1): the colors enforcement gives a VM now. Fail closed: a VM gets its label's
 * colors only when everything about it is known and allowed, and every "none" says why (PlanVmV1.isolated).
 *
 * Decided in this order, the first that applies giving the reason:
 * 1. The label: an unlabeled VM has the policy's `__UNLABELED__` label if the policy defines one, else none
 *    ("without it an unlabeled VM shares nothing"); a label the policy does not have gives none.
 * 2. The host: a VM on no host, on a host the fleet does not know, or on a host whose label (its own, or the
 *    policy's bootstrap label when it has none) is not in the policy gets none; so does a VM not authorized there,
 *    `colors(V) ⊄ colors(hostLabel)` (DESIGN.md §2: "VM is not authorized to run"); and one that a policy update
 *    in `revoke` mode isolated (DESIGN.md §2: "isolate exactly the violators"), until it stops or is relabeled.
 * 3. Trust: `trusted` keeps the label's colors; `unverified` gets none (no appraised evidence yet); `untrusted`
 *    and `unreachable` keep them under the label's trust rule `alert`, and get none under `isolate`.
 * A label with no colors gives none too (it shares nothing), with that reason.
 *
 * A policy without an STE component restricts no sharing (DESIGN.md §2). Its labels have no colors, so every VM
 * that passes 1–3 gets the one color `ANY_COLOR`, which all such VMs share: isolation still works.
 * Whether a VM runs is the plan's business: a VM that is not running is in no plan.
 */
import type { CompiledPolicy } from '../monitor/compile.ts';
import { UNLABELED } from '../policy/model.ts';
import type { FleetHost, FleetVm, TrustState } from './model.ts';

/** The one color of every admitted VM under a policy without an STE component (it declares no colors to clash). */
export const ANY_COLOR = '__ANY__';

export interface EffectiveColors {
  /** in policy order; empty when isolated */
  colors: string[];
  /** why `colors` is empty, when it is */
  isolated?: string;
}

const none = (isolated: string): EffectiveColors => ({ colors: [], isolated });

/** The label index a VM runs under, or a reason why it has none. */
export function vmLabel(policy: CompiledPolicy, vm: Pick<FleetVm, 'label'>): number | string {
  if (vm.label === null) return policy.unlabeled >= 0 ? policy.unlabeled : `unlabeled, and the policy has no ${UNLABELED} label`;
  const i = policy.labelIndex(vm.label);
  return i >= 0 ? i : `label "${vm.label}" is not in the policy`;
}

/** The label index of a host, or a reason why it has none. */
export function hostLabel(policy: CompiledPolicy, host: FleetHost | undefined, name: string | null): number | string {
  if (name === null) return 'not on a host';
  if (host === undefined) return `host "${name}" is not registered`;
  const label = host.label ?? policy.policy.host;
  if (label === null) return `host "${name}" has no label and the policy no bootstrap label`;
  const i = policy.labelIndex(label);
  return i >= 0 ? i : `host label "${label}" is not in the policy`;
}

/**
 * The effective colors of `vm`, in trust state `trust`, on `host` (the fleet's record of `vm.host`, undefined
 * when it has none).
 */
export function effectiveColors(policy: CompiledPolicy, vm: FleetVm, trust: TrustState, host: FleetHost | undefined): EffectiveColors {
  const label = vmLabel(policy, vm);
  if (typeof label === 'string') return none(label);
  const labelName = policy.labelNames[label];
  const onHost = hostLabel(policy, host, vm.host);
  if (typeof onHost === 'string') return none(onHost);
  if (!policy.authorized(onHost, label)) {
    return none(`not authorized to run on host "${vm.host}": the colors of "${labelName}" are not within host label "${policy.labelNames[onHost]}"`);
  }
  if (vm.revoked) return none(`isolated by the revoke of policy version ${vm.revoked.policyVersion}: ${vm.revoked.reasons.join(', ')}`);
  if (trust === 'unverified') return none('unverified: no appraised evidence yet');
  if (trust !== 'trusted' && policy.policy.labels[label].onUntrusted === 'isolate') {
    const why = trust === 'untrusted' ? 'evidence failed appraisal' : 'no fresh evidence before the deadline';
    return none(`${trust} (${why}): label "${labelName}" isolates`);
  }
  if (!policy.hasSte) return { colors: [ANY_COLOR] };
  const colors = policy.colorsOf(label);
  if (colors.length === 0) return none(`label "${labelName}" has no colors`);
  return { colors: [...colors] };
}
