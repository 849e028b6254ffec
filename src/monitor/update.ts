/**
 * The policy-update transaction (DESIGN.md §2): replay the running state against the new policy.
 *
 * - Identity, as Xen's acmpolicy.py checks it: the old policy must have a version; the new one must name it in
 *   `from` (FromPolicy: the old name and version); the new version must be greater; every `from=` rename must
 *   name a label or resource label of the old policy. Xen's DEFAULT policy on either side skips the version check.
 *   These refuse an update in either mode.
 * - Replay, per host (whose own label counts first in its Chinese Wall state, as Dom0's did in Xen): every VM's label (renamed through `from`) must exist, be authorized on the host's label, keep
 *   every attached resource usable, and start in order against the host's new Chinese Wall state (the later of two
 *   conflicting VMs is the violator; a violator is not counted, so that it blames no one after it). Every open flow
 *   must still share a color.
 * - `reject` (Xen's rule): any violation refuses the whole update. `revoke` (hueguard's): the update is applied,
 *   every VM-level violator is isolated, and flows that lost their common color are closed (the new plan drops them;
 *   their endpoints keep their other peers).
 */
import type { Policy } from '../policy/model.ts';
import { UNLABELED } from '../policy/model.ts';
import { matchNames, structuralDiff, type StructuralDiff } from '../policy/diff.ts';
import { CompiledPolicy } from './compile.ts';
import { WallState, type WallBlocker } from './chinese-wall.ts';
import { MonitorError, MonitorErrorCode } from './errors.ts';

export type UpdateMode = 'reject' | 'revoke';

/** The running state an update is replayed against (the `--running STATE.json` file). */
export interface RunningState {
  hosts: RunningHost[];
  /** open flows between VMs, by VM name */
  flows?: { a: string; b: string }[];
}

export interface RunningHost {
  name: string;
  /** the host's label; the old policy's bootstrap label when absent */
  label?: string;
  /** in start order */
  vms: RunningVm[];
}

export interface RunningVm {
  name: string;
  /** null or absent: unlabeled (the old policy's __UNLABELED__) */
  label?: string | null;
  /** resource labels of the disks and networks it uses */
  resources?: string[];
}

export type RefusalCode = 'version_prevents_update' | 'bad_rename';

export interface Refusal {
  code: RefusalCode;
  message: string;
}

export type ViolationCode =
  | 'label_removed'
  | 'host_label_removed'
  | 'not_authorized'
  | 'resource_label_removed'
  | 'resource_forbidden'
  | 'wall_conflict'
  | 'flow_forbidden';

export interface Violation {
  code: ViolationCode;
  message: string;
  host: string;
  vm: string;
  /** the other VM of a forbidden flow */
  peer?: string;
  resource?: string;
  blockers?: WallBlocker[];
}

export interface SharingDiff {
  /** label pairs (new names) that share under the new policy and did not under the old (or are new) */
  gained: [string, string][];
  /** label pairs (old names) that shared under the old policy and no longer do (or were removed) */
  lost: [string, string][];
}

export interface UpdateResult {
  mode: UpdateMode;
  accepted: boolean;
  refusals: Refusal[];
  violations: Violation[];
  /** revoke: the VMs to isolate, each with every reason */
  isolate: { vm: string; host: string; reasons: ViolationCode[] }[];
  /** revoke: open flows the new policy closes */
  closedFlows: { a: string; b: string }[];
  /** VMs whose label is renamed by the update */
  relabeled: { vm: string; from: string; to: string }[];
  diff: StructuralDiff;
  sharing: SharingDiff;
}

/**
 * Xen's DEFAULT policy (acmpolicy.py is_default_policy): updates from or to it skip the version check.
 *
 * FIX (update.test.ts): this recognized only the 2007 DEFAULT (default-security_policy.xml: the label, STE type
 * and CHWALL type SystemManagement, nothing else). The DEFAULT that Xen 4.1's acmpolicy.py writes
 * (get_DEFAULT_policy, our DEFAULT-security_policy.xml) and tests for (is_default_policy) also has `__UNLABELED__`: labels
 * [SystemManagement, __UNLABELED__] with bootstrap SystemManagement, STE types [SystemManagement, __UNLABELED__]
 * (SystemManagement holds both, __UNLABELED__ holds itself), resource labels [__UNLABELED__], CHWALL types
 * [SystemManagement]. Both are recognized now; lists are compared in order, as Xen does.
 */
export function isXenDefaultPolicy(p: Policy): boolean {
  const SM = 'SystemManagement';
  const is = (a: readonly string[] | null | undefined, b: readonly string[]) => JSON.stringify(a) === JSON.stringify(b);
  const colorsOf = (name: string) => p.labels.find((l) => l.name === name)?.colors;
  if (p.name !== 'DEFAULT' || p.host !== SM || !is(p.walls, [SM])) return false;
  const labels = p.labels.map((l) => l.name);
  const resources = p.resources.map((r) => r.name);
  const withUnlabeled =
    is(labels, [SM, UNLABELED]) && is(p.colors, [SM, UNLABELED]) &&
    is(colorsOf(SM), [SM, UNLABELED]) && is(colorsOf(UNLABELED), [UNLABELED]) && is(resources, [UNLABELED]);
  const alone = is(labels, [SM]) && is(p.colors, [SM]) && is(colorsOf(SM), [SM]) && resources.length === 0;
  return withUnlabeled || alone;
}

/** Dotted numeric versions ("1.4", "2.10.1"); null when not numeric. */
function parseVersion(v: string): number[] | null {
  if (!/^\d+(\.\d+)*$/.test(v)) return null;
  return v.split('.').map(Number);
}

function compareVersions(a: number[], b: number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** The identity checks an update must pass whatever its mode. */
export function checkUpdateIdentity(oldP: Policy, newP: Policy): Refusal[] {
  const out: Refusal[] = [];
  if (!isXenDefaultPolicy(oldP) && !isXenDefaultPolicy(newP)) {
    const from = newP.from;
    if (oldP.version === '') out.push({ code: 'version_prevents_update', message: `the current policy "${oldP.name}" has no version` });
    else if (!from) {
      out.push({ code: 'version_prevents_update', message: `the new policy does not say which policy it updates (from: ${oldP.name} ${oldP.version})` });
    } else if (from.name !== oldP.name || from.version !== oldP.version) {
      out.push({
        code: 'version_prevents_update',
        message: `the new policy updates "${from.name}" ${from.version}, but the current policy is "${oldP.name}" ${oldP.version}`,
      });
    }
    const vOld = parseVersion(oldP.version);
    const vNew = parseVersion(newP.version);
    if (vOld === null || vNew === null) {
      out.push({ code: 'version_prevents_update', message: `versions "${oldP.version}" and "${newP.version}" cannot be ordered (use MAJOR.MINOR)` });
    } else if (compareVersions(vNew, vOld) <= 0) {
      out.push({ code: 'version_prevents_update', message: `the new version ${newP.version} is not greater than the current ${oldP.version}` });
    }
  }
  const oldLabels = new Set(oldP.labels.map((l) => l.name));
  for (const l of newP.labels) {
    if (l.from !== undefined && !oldLabels.has(l.from)) {
      out.push({ code: 'bad_rename', message: `label "${l.name}" is renamed from "${l.from}", which is not a label of the current policy` });
    }
  }
  const oldRes = new Set(oldP.resources.map((r) => r.name));
  for (const r of newP.resources) {
    if (r.from !== undefined && !oldRes.has(r.from)) {
      out.push({ code: 'bad_rename', message: `resource label "${r.name}" is renamed from "${r.from}", which is not a resource label of the current policy` });
    }
  }
  return out;
}

/**
 * Label pairs that gain or lose sharing between two compiled versions, each list in label order (by the first label,
 * then the second, of the policy it names: new names for gained pairs, old names for lost ones).
 *
 * Only a pair with a label whose colors changed (by name), or that is new or gone, can change; so only those
 * labels' partners are looked at, found through the labels of each of their colors: the cost follows the labels
 * that changed and their partners, not the square of all labels (a policy of 100,000 labels with a few changed
 * is diffed in milliseconds). With or without an STE component on both sides alike; when that differs, every
 * label counts as changed.
 */
export function sharingDiff(oldC: CompiledPolicy, newC: CompiledPolicy, labelMap: Map<string, string>): SharingDiff {
  const newToOld = new Map<string, string>();
  for (const [o, n] of labelMap) newToOld.set(n, o);
  const oldIdxOfNew = newC.labelNames.map((n) => {
    const o = newToOld.get(n);
    return o === undefined ? -1 : oldC.labelIndex(o);
  });
  const newIdxOfOld = oldC.labelNames.map((o) => {
    const n = labelMap.get(o);
    return n === undefined ? -1 : newC.labelIndex(n);
  });
  const sameSte = oldC.hasSte === newC.hasSte;
  const gained = changedPairs(newC, oldC, oldIdxOfNew, sameSte);
  const lost = changedPairs(oldC, newC, newIdxOfOld, sameSte);
  return { gained, lost };
}

/** Whether label `a` of `x` has the same colors (by name) as label `b` of `y`. */
function sameColors(x: CompiledPolicy, a: number, y: CompiledPolicy, b: number): boolean {
  const ca = x.colorsOf(a);
  const cb = y.colorsOf(b);
  if (ca.length !== cb.length) return false;
  if (ca.length <= 8) return ca.every((c) => cb.includes(c));
  const set = new Set(cb);
  return ca.every((c) => set.has(c));
}

/**
 * The pairs of labels of `c` that share in `c` and did not in `other` (their labels mapped by `toOther`; -1: none
 * there), sorted by (first, second) with first ≤ second.
 */
function changedPairs(c: CompiledPolicy, other: CompiledPolicy, toOther: readonly number[], sameSte: boolean): [string, string][] {
  const L = c.labelNames.length;
  const changed = new Uint8Array(L);
  const changedList: number[] = [];
  for (let i = 0; i < L; i++) {
    const o = toOther[i];
    if (!sameSte || o < 0 || !sameColors(c, i, other, o)) {
      changed[i] = 1;
      changedList.push(i);
    }
  }
  if (changedList.length === 0) return [];
  // the labels of each color of `c`, to find a label's partners without trying every label
  let byColor: number[][] | null = null;
  if (c.hasSte) {
    byColor = c.colorNames.map(() => []);
    for (let i = 0; i < L; i++) for (let k = c.colorStart[i]; k < c.colorStart[i + 1]; k++) byColor[c.colorFlat[k]].push(i);
  }
  const pairs: number[] = []; // flattened (first, second)
  const seen = new Uint8Array(L);
  const partners: number[] = [];
  for (const i of changedList) {
    partners.length = 0;
    if (byColor === null) for (let j = 0; j < L; j++) partners.push(j);
    else {
      for (let k = c.colorStart[i]; k < c.colorStart[i + 1]; k++) {
        for (const j of byColor[c.colorFlat[k]]) {
          if (seen[j] === 0) {
            seen[j] = 1;
            partners.push(j);
          }
        }
      }
      for (const j of partners) seen[j] = 0;
    }
    const oi = toOther[i];
    for (const j of partners) {
      // a pair of two changed labels is taken once, from its smaller end
      if (changed[j] === 1 && j < i) continue;
      if (!c.share(i, j)) continue;
      const oj = toOther[j];
      if (oi >= 0 && oj >= 0 && other.share(oi, oj)) continue;
      pairs.push(Math.min(i, j), Math.max(i, j));
    }
  }
  const order = Array.from({ length: pairs.length / 2 }, (_, k) => k);
  order.sort((a, b) => pairs[2 * a] - pairs[2 * b] || pairs[2 * a + 1] - pairs[2 * b + 1]);
  return order.map((k) => [c.labelNames[pairs[2 * k]], c.labelNames[pairs[2 * k + 1]]] as [string, string]);
}

/** Check that the running state fits the old policy; a state that does not is the caller's error. */
function checkRunningState(oldC: CompiledPolicy, state: RunningState): void {
  const seen = new Set<string>();
  const bad = (message: string, where: string) => {
    throw new MonitorError(MonitorErrorCode.badState, message, { at: where });
  };
  state.hosts.forEach((h, hi) => {
    if (h.label !== undefined && oldC.labelIndex(h.label) < 0) bad(`host "${h.name}" has label "${h.label}", unknown to the current policy`, `hosts[${hi}].label`);
    h.vms.forEach((v, vi) => {
      const at = `hosts[${hi}].vms[${vi}]`;
      if (seen.has(v.name)) bad(`VM "${v.name}" appears twice`, `${at}.name`);
      seen.add(v.name);
      if (v.label != null && oldC.labelIndex(v.label) < 0) bad(`VM "${v.name}" has label "${v.label}", unknown to the current policy`, `${at}.label`);
      if (v.label == null && oldC.unlabeled < 0) bad(`VM "${v.name}" is unlabeled, and the current policy has no ${UNLABELED} label for it`, `${at}.label`);
      (v.resources ?? []).forEach((r, ri) => {
        if (oldC.resourceIndex(r) < 0) bad(`VM "${v.name}" uses resource label "${r}", unknown to the current policy`, `${at}.resources[${ri}]`);
      });
    });
  });
  (state.flows ?? []).forEach((f, fi) => {
    for (const end of [f.a, f.b]) if (!seen.has(end)) bad(`flow ${fi} names VM "${end}", which is not running`, `flows[${fi}]`);
  });
}

/** Replay the running state against the new policy and decide the update. Pure; throws only for a state that does not fit the old policy. */
export function updatePolicy(oldP: Policy, newP: Policy, state: RunningState, mode: UpdateMode): UpdateResult {
  const oldC = new CompiledPolicy(oldP);
  const newC = new CompiledPolicy(newP);
  checkRunningState(oldC, state);
  const refusals = checkUpdateIdentity(oldP, newP);
  const labelMap = matchNames(oldP.labels, newP.labels);
  const resMap = matchNames(oldP.resources, newP.resources);
  const violations: Violation[] = [];
  const relabeled: UpdateResult['relabeled'] = [];
  const newLabelOfVm = new Map<string, number>();

  for (const h of state.hosts) {
    const oldHostLabel = h.label ?? oldP.host;
    const hostNew = oldHostLabel === null ? undefined : labelMap.get(oldHostLabel);
    const hostIdx = hostNew === undefined ? -1 : newC.labelIndex(hostNew);
    // The host label runs on its host as Xen's Dom0 did: its wall types count before any VM's.
    const wall = new WallState(newC);
    if (hostIdx >= 0) wall.admit(hostIdx);
    for (const v of h.vms) {
      const oldLabel = v.label ?? UNLABELED;
      const to = labelMap.get(oldLabel);
      const vi = to === undefined ? -1 : newC.labelIndex(to);
      const base = { host: h.name, vm: v.name };
      if (vi < 0) {
        violations.push({ ...base, code: 'label_removed', message: `VM "${v.name}" would lose its label "${oldLabel}": the new policy has no such label` });
        continue;
      }
      if (to !== oldLabel) relabeled.push({ vm: v.name, from: oldLabel, to: to! });
      newLabelOfVm.set(v.name, vi);
      if (hostIdx < 0) {
        violations.push({ ...base, code: 'host_label_removed', message: `host "${h.name}" would lose its label "${oldHostLabel ?? '(none)'}"` });
      } else if (!newC.authorized(hostIdx, vi)) {
        violations.push({ ...base, code: 'not_authorized', message: `VM "${v.name}" (${to}) is not authorized to run on host "${h.name}" (${hostNew})` });
      }
      for (const r of v.resources ?? []) {
        const rTo = resMap.get(r);
        const ri = rTo === undefined ? -1 : newC.resourceIndex(rTo);
        if (ri < 0) {
          violations.push({ ...base, resource: r, code: 'resource_label_removed', message: `resource label "${r}" used by VM "${v.name}" is not in the new policy` });
        } else if (!newC.use(vi, ri)) {
          violations.push({ ...base, resource: rTo, code: 'resource_forbidden', message: `VM "${v.name}" (${to}) may no longer use resource "${rTo}" (color ${newP.resources[ri].color})` });
        }
      }
      if (newC.hasChwall) {
        const answer = wall.start(vi);
        if (!answer.allow) {
          const why = answer.blockers.map((b) => `conflict set "${b.conflictSet}" is held by running label "${b.runningLabel}"`).join('; ');
          violations.push({ ...base, code: 'wall_conflict', blockers: answer.blockers, message: `VM "${v.name}" (${to}) may not run on host "${h.name}": ${why}` });
        }
      }
    }
  }

  const hostOfVm = new Map<string, string>();
  for (const h of state.hosts) for (const v of h.vms) hostOfVm.set(v.name, h.name);
  const closedFlows: { a: string; b: string }[] = [];
  for (const f of state.flows ?? []) {
    const a = newLabelOfVm.get(f.a);
    const b = newLabelOfVm.get(f.b);
    if (a === undefined || b === undefined) {
      closedFlows.push(f);
      continue;
    }
    if (!newC.share(a, b)) {
      closedFlows.push(f);
      violations.push({
        code: 'flow_forbidden', host: hostOfVm.get(f.a)!, vm: f.a, peer: f.b,
        message: `VMs "${f.a}" (${newC.labelNames[a]}) and "${f.b}" (${newC.labelNames[b]}) have an open flow but would share no color`,
      });
    }
  }

  const isolateMap = new Map<string, { vm: string; host: string; reasons: ViolationCode[] }>();
  for (const v of violations) {
    if (v.code === 'flow_forbidden') continue;
    const e = isolateMap.get(v.vm) ?? { vm: v.vm, host: v.host, reasons: [] };
    if (!e.reasons.includes(v.code)) e.reasons.push(v.code);
    isolateMap.set(v.vm, e);
  }
  const accepted = refusals.length === 0 && (mode === 'revoke' || violations.length === 0);
  return {
    mode,
    accepted,
    refusals,
    violations,
    isolate: mode === 'revoke' && accepted ? [...isolateMap.values()] : [],
    closedFlows: mode === 'revoke' && accepted ? closedFlows : [],
    relabeled,
    diff: structuralDiff(oldP, newP),
    sharing: sharingDiff(oldC, newC, labelMap),
  };
}
