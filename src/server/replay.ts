/**
 * A policy change judged against the live fleet: the reference monitor's update transaction
 * (`monitor/update.ts` updatePolicy) on the running state from the store, for the three ways a policy changes:
 *
 * - `publish` a draft over the current policy: exactly Xen's update (identity checks, replay, reject or revoke);
 * - the `first` publish, when nothing is published yet: there is no version to follow, so no identity check; the
 *   replay judges the running VMs by the new policy alone, and every sharing pair of it is "gained";
 * - `revert` to an earlier version: going back cannot name the current version in `from` nor carry a greater
 *   version, so the version check is waived; the old version's renames pointed at an older policy and are dropped,
 *   and a rename the current version made is undone (its label takes back the old name).
 */
import { CompiledPolicy } from '../monitor/compile.ts';
import { sharingDiff, updatePolicy, type UpdateMode, type UpdateResult, type Violation, type ViolationCode } from '../monitor/update.ts';
import { matchNames, structuralDiff } from '../policy/diff.ts';
import { UNLABELED, type Policy } from '../policy/model.ts';
import { runningState, type Fleet, type Unmanaged } from './fleet.ts';

export type ChangeKind = 'publish' | 'first' | 'revert';

export interface Replay extends UpdateResult {
  kind: ChangeKind;
  /** running VMs the current policy cannot judge, left out of the replay */
  unmanaged: Unmanaged[];
}

/** A policy with nothing in it: what the first publish is compared with. */
const NOTHING: Policy = { name: '', version: '', colors: [], walls: [], conflicts: [], host: null, labels: [], resources: [] };

/** VM-level violators, each with every reason (as updatePolicy lists them in revoke mode). */
export function isolateOf(violations: readonly Violation[]): UpdateResult['isolate'] {
  const m = new Map<string, { vm: string; host: string; reasons: ViolationCode[] }>();
  for (const v of violations) {
    if (v.code === 'flow_forbidden') continue;
    const e = m.get(v.vm) ?? { vm: v.vm, host: v.host, reasons: [] };
    if (!e.reasons.includes(v.code)) e.reasons.push(v.code);
    m.set(v.vm, e);
  }
  return [...m.values()];
}

/** The policy to replay for a revert to `target` from `current`: renames dropped, the current one's undone. */
export function revertView(current: Policy, target: Policy): Policy {
  const currentNames = new Set(current.labels.map((l) => l.name));
  const renamedTo = new Map(current.labels.filter((l) => l.from !== undefined).map((l) => [l.from!, l.name]));
  const currentRes = new Set(current.resources.map((r) => r.name));
  const resRenamedTo = new Map(current.resources.filter((r) => r.from !== undefined).map((r) => [r.from!, r.name]));
  const { from: _from, ...rest } = target;
  void _from;
  return {
    ...rest,
    labels: target.labels.map(({ from: _f, ...l }) => (!currentNames.has(l.name) && renamedTo.has(l.name) ? { ...l, from: renamedTo.get(l.name)! } : l)),
    resources: target.resources.map(({ from: _f, ...r }) => (!currentRes.has(r.name) && resRenamedTo.has(r.name) ? { ...r, from: resRenamedTo.get(r.name)! } : r)),
  };
}

/**
 * Judge replacing `current` (null: nothing published) by `next` in `mode`, against the fleet. Pure.
 * `revert` waives the version identity check (see the module comment).
 */
export function replayChange(current: Policy | null, next: Policy, fleet: Fleet, mode: UpdateMode, revert = false): Replay {
  if (current === null) {
    const nextC = new CompiledPolicy(next);
    const { state, unmanaged } = runningState(nextC, fleet);
    const r = updatePolicy(next, next, state, mode);
    return waiveIdentity({
      ...r,
      kind: 'first',
      unmanaged,
      relabeled: [],
      diff: structuralDiff(NOTHING, next),
      sharing: sharingDiff(new CompiledPolicy(NOTHING), nextC, new Map()),
    });
  }
  const { state, unmanaged } = runningState(new CompiledPolicy(current), fleet);
  if (!revert) return { ...updatePolicy(current, next, state, mode), kind: 'publish', unmanaged };
  const r = updatePolicy(current, revertView(current, next), state, mode);
  return waiveIdentity({ ...r, kind: 'revert', unmanaged, diff: structuralDiff(current, next) });
}

/**
 * The other mode's answer from a replay (`reject` and `revoke` replay the same: they differ only in what they do
 * with the violations), so a preview replays the fleet once.
 */
export function asMode(r: Replay, mode: UpdateMode): Pick<UpdateResult, 'accepted' | 'isolate' | 'closedFlows'> {
  const accepted = r.refusals.length === 0 && (mode === 'revoke' || r.violations.length === 0);
  // No open flows are known to the store yet, so there are none to close.
  return { accepted, isolate: mode === 'revoke' && accepted ? isolateOf(r.violations) : [], closedFlows: [] };
}

/** A running VM whose label's colors the change moves. */
export interface ColorChange {
  vm: string;
  host: string;
  /** its label now, and under the change (renames followed; null: the change removes it) */
  label: string;
  to: string | null;
  /** colors its label gains and loses: it gains (loses) the VMs of those colors as peers */
  gained: string[];
  lost: string[];
}

/**
 * Which running VMs gain or lose colors, and which (the fleet's view of the sharing diff): one pass over the
 * running VMs, each comparing its label's colors before and after — O(VMs × colors), where listing every pair of
 * VMs that gains or loses a peer would be quadratic. Unlabeled VMs count as `__UNLABELED__`.
 */
export function colorChanges(current: Policy | null, next: Policy, fleet: Fleet): ColorChange[] {
  const oldColors = new Map((current?.labels ?? []).map((l) => [l.name, l.colors]));
  const newColors = new Map(next.labels.map((l) => [l.name, l.colors]));
  const renames = current === null ? new Map<string, string>() : matchNames(current.labels, next.labels);
  const out: ColorChange[] = [];
  for (const v of fleet.vms) {
    if (!v.running || v.host === null) continue;
    const label = v.label ?? UNLABELED;
    const to = current === null ? label : (renames.get(label) ?? null);
    const before = oldColors.get(label) ?? [];
    const after = to === null ? [] : (newColors.get(to) ?? []);
    const gained = after.filter((c) => !before.includes(c));
    const lost = before.filter((c) => !after.includes(c));
    if (gained.length > 0 || lost.length > 0 || (to !== label && current !== null)) out.push({ vm: v.name, host: v.host, label, to, gained, lost });
  }
  return out.sort((a, b) => (a.vm < b.vm ? -1 : a.vm > b.vm ? 1 : 0));
}

/** Drop the version checks and decide again, as updatePolicy would have without them. */
function waiveIdentity(r: Replay): Replay {
  const refusals = r.refusals.filter((f) => f.code !== 'version_prevents_update');
  const accepted = refusals.length === 0 && (r.mode === 'revoke' || r.violations.length === 0);
  const revoked = r.mode === 'revoke' && accepted;
  // No open flows are known to the store yet, so there are none to close.
  return { ...r, refusals, accepted, isolate: revoked ? isolateOf(r.violations) : [], closedFlows: [] };
}
