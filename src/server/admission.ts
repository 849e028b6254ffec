/**
 * Admission: may VM X start on host H now? The question an agent's libvirt hook waits on (DESIGN.md §4 step 2),
 * answered by the reference monitor from what the store knows:
 *
 * 1. the labels: the VM's (the request's, else the store's, else `__UNLABELED__`), the host's (else the bootstrap
 *    label) — a label the policy lacks denies;
 * 2. host authorization: colors(V) ⊆ colors(host label);
 * 3. the host's Chinese Wall state: the host label first (as Dom0's was in Xen), then the VMs the store says run
 *    there, in the order they started — exactly as `monitor/update.ts` replays a host;
 * 4. every disk and network it uses: its resource label (else `__UNLABELED__`) must share the VM's color.
 * The first check that fails gives the reason; `details` carries every check's answer.
 */
import type { VmResourceV1 } from '../api/types.ts';
import { WallState, type StartAnswer } from '../monitor/chinese-wall.ts';
import type { CompiledPolicy } from '../monitor/compile.ts';
import { explainAuthorized, explainUse, type AuthorizedAnswer, type UseAnswer } from '../monitor/decisions.ts';
import { UNLABELED } from '../policy/model.ts';
import type { AdmissionAnswerV1, AdmissionReason, AdmissionRequestV1, AdmissionResourceV1, HostV1 } from '../api/types.ts';
import type { ResourceLabelRecord, VmRecord } from '../store/store.ts';
import { inStartOrder, resourceLabelMap, resourceLabelOf } from './fleet.ts';

export type { AdmissionRequestV1 } from '../api/types.ts';

export type { AdmissionAnswerV1, AdmissionReason, AdmissionResourceV1 } from '../api/types.ts';

export interface AdmissionFacts {
  policy: CompiledPolicy;
  policyVersion: number;
  host: HostV1 | null;
  /** the store's record of the VM, if any */
  vm: VmRecord | null;
  /** the VMs on the host */
  onHost: VmRecord[];
  resourceLabels: ResourceLabelRecord[];
}

/** Decide one admission. Pure. */
export function decideAdmission(req: AdmissionRequestV1, f: AdmissionFacts): AdmissionAnswerV1 {
  const p = f.policy;
  const hostLabel = f.host?.label ?? p.policy.host;
  const label = req.label !== undefined ? req.label : (f.vm?.label ?? null);
  const effective = label ?? (p.unlabeled >= 0 ? UNLABELED : null);
  const resourceMap = resourceLabelMap(f.resourceLabels);
  const resources: AdmissionResourceV1[] = (req.resources ?? f.vm?.resources ?? []).map((r) => ({
    kind: r.kind, id: r.id, label: resourceLabelOf(resourceMap, r.kind, r.id), allow: false,
  }));
  const details: AdmissionAnswerV1['details'] = {
    message: '', host: req.host, hostLabel, vm: req.vm, label, policyVersion: f.policyVersion, resources,
  };
  const answer = (allow: boolean, reason: AdmissionReason, message: string): AdmissionAnswerV1 => ({ allow, reason, details: { ...details, message } });

  if (effective === null) return answer(false, 'unlabeled', `VM "${req.vm}" is unlabeled and the policy has no ${UNLABELED} label`);
  const vi = p.labelIndex(effective);
  if (vi < 0) return answer(false, 'unknown_label', `VM "${req.vm}" has label "${effective}", which the policy does not define`);
  const hi = hostLabel === null ? -1 : p.labelIndex(hostLabel);
  if (hi < 0) return answer(false, 'host_label_unknown', `host "${req.host}" has label "${hostLabel ?? '(none)'}", which the policy does not define`);

  // Every check is answered, so that a denial shows all that is wrong; the first failure is the reason.
  const failures: [AdmissionReason, string][] = [];
  details.authorized = explainAuthorized(p, hostLabel!, effective);
  if (!details.authorized.allow) {
    failures.push(['not_authorized', `VM "${req.vm}" (${effective}) is not authorized to run on host "${req.host}" (${hostLabel}): missing ${details.authorized.missing.join(', ')}`]);
  }

  const wall = new WallState(p);
  wall.admit(hi);
  const running = [hostLabel!];
  const holders = new Map<string, string[]>([[hostLabel!, ['host']]]);
  for (const v of inStartOrder(f.onHost)) {
    if (v.name === req.vm) continue;
    const l = v.label ?? (p.unlabeled >= 0 ? UNLABELED : null);
    const li = l === null ? -1 : p.labelIndex(l);
    if (li < 0) continue; // a VM the policy cannot name holds no wall type
    wall.admit(li);
    running.push(l!);
    holders.set(l!, [...(holders.get(l!) ?? []), v.name]);
  }
  details.running = running;
  details.start = wall.check(vi);
  if (!details.start.allow) {
    details.standing = details.start.blockers.map((b) => ({ conflictSet: b.conflictSet, runningLabel: b.runningLabel, vms: holders.get(b.runningLabel) ?? [] }));
    const why = details.start.blockers.map((b) => `conflict set "${b.conflictSet}" is held by running label "${b.runningLabel}"`).join('; ');
    failures.push(['conflict_set_occupied', `VM "${req.vm}" (${effective}) may not start on host "${req.host}": ${why}`]);
  }

  for (const r of resources) {
    const rl = r.label ?? (p.unlabeledResource >= 0 ? UNLABELED : null);
    if (rl === null) {
      r.reason = 'unlabeled_resource';
      failures.push(['unlabeled_resource', `${r.kind} "${r.id}" is unlabeled and the policy has no ${UNLABELED} resource label`]);
    } else if (p.resourceIndex(rl) < 0) {
      r.reason = 'unknown_resource';
      failures.push(['unknown_resource', `${r.kind} "${r.id}" has resource label "${rl}", which the policy does not define`]);
    } else {
      r.answer = explainUse(p, effective, rl);
      r.allow = r.answer.allow;
      if (!r.allow) {
        r.reason = 'resource_forbidden';
        failures.push(['resource_forbidden', `VM "${req.vm}" (${effective}) may not use ${r.kind} "${r.id}" (${rl}, color ${r.answer.color})`]);
      }
    }
  }
  if (failures.length > 0) {
    return answer(false, failures[0][0], failures.map(([, m]) => m).join('; '));
  }
  return answer(true, 'allowed', `VM "${req.vm}" (${effective}) may start on host "${req.host}" (${hostLabel})`);
}
