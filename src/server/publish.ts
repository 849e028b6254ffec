/**
 * Publishing a policy version (from a draft, or a revert to an earlier version) as one store transaction: read the
 * current version and the fleet, replay (`replay.ts`), and only if the monitor accepts: append the immutable
 * version, carry Xen's renames over to the labels the store holds, mark the VMs a `revoke` update isolates (and
 * unmark those it no longer finds violating: the revoked VMs are the violators of the last accepted update),
 * write the audit record with the actor and the note, drop the draft, and store every host's new plan under the
 * new version (`trust.ts` storePolicy: a revoked VM gets no colors, and the plan says why). A refusal, or a store
 * error at any step, writes nothing.
 */
import type { UpdateMode } from '../monitor/update.ts';
import { matchNames } from '../policy/diff.ts';
import type { Policy } from '../policy/model.ts';
import type { PolicyVersionRecord, Store } from '../store/store.ts';
import { audit, notify, nowIso, parseStoredPolicy, type ServerContext } from './context.ts';
import { ApiError, ApiErrorCode } from './errors.ts';
import { loadFleet } from './fleet.ts';
import { replayChange, revertView, type Replay } from './replay.ts';
import { countEffects, storePolicy } from './trust.ts';
import { CompiledPolicy } from '../monitor/compile.ts';

export interface PublishRequest {
  policy: Policy;
  yaml: string;
  note: string;
  mode: UpdateMode;
  actor: string;
  /** publish a draft (deleted once published), or revert to a version */
  source: { draft: string; base: number | null } | { revertTo: number };
}

export interface PublishResult {
  version: PolicyVersionRecord;
  result: Replay;
}

/** Relabel the store's VMs, hosts and resource labels that the update renames (Xen's `from=`). */
async function applyRenames(s: Store, oldP: Policy, newP: Policy): Promise<void> {
  const labels = matchNames(oldP.labels, newP.labels);
  const resources = matchNames(oldP.resources, newP.resources);
  const renamed = (m: Map<string, string>) => new Map([...m].filter(([a, b]) => a !== b));
  const labelRenames = renamed(labels);
  const resourceRenames = renamed(resources);
  if (labelRenames.size > 0) {
    for (const v of await s.vms()) {
      const to = v.label === null ? undefined : labelRenames.get(v.label);
      if (to !== undefined) await s.putVm({ ...v, label: to });
    }
    for (const h of await s.hosts()) {
      const to = h.label === null ? undefined : labelRenames.get(h.label);
      if (to !== undefined) await s.putHost({ ...h, label: to });
    }
  }
  if (resourceRenames.size > 0) {
    for (const r of await s.resourceLabels()) {
      const to = resourceRenames.get(r.label);
      if (to !== undefined) await s.putResourceLabel({ ...r, label: to });
    }
  }
}

/** The violators an accepted update isolates (revoke mode), marked on their records; the others' marks cleared. */
async function markRevoked(s: Store, result: Replay, policyVersion: number): Promise<void> {
  const isolate = new Map(result.isolate.map((x) => [x.vm, x.reasons]));
  for (const v of await s.vms()) {
    const reasons = isolate.get(v.name);
    if (reasons === undefined) {
      if (v.revoked) await s.putVm({ ...v, revoked: null });
      continue;
    }
    await s.putVm({ ...v, revoked: { policyVersion, reasons: [...reasons] } });
  }
}

/** Publish, or throw 409 `policy_update_refused` with the replay (nothing written). */
export async function publishPolicy(ctx: ServerContext, req: PublishRequest): Promise<PublishResult> {
  const revert = 'revertTo' in req.source;
  const out = await ctx.store.tx(async (s) => {
    // The draft's base is not checked: its `from` names the version it follows, and the identity check refuses it
    // if another version was published since.
    const latest = await s.latestPolicy();
    const current = latest === null ? null : parseStoredPolicy(latest);
    const result = replayChange(current, req.policy, await loadFleet(s), req.mode, revert);
    if (!result.accepted) {
      ctx.metrics.publishes.inc({ kind: revert ? 'revert' : 'publish', outcome: 'refused' });
      const why = result.refusals.length > 0
        ? result.refusals.map((r) => r.message).join('; ')
        : `${result.violations.length} running VM${result.violations.length === 1 ? '' : 's'} would violate it (mode reject)`;
      throw new ApiError(ApiErrorCode.updateRefused, `the update is refused: ${why}; the current policy stays`, result);
    }
    const version = await s.publishPolicy({
      name: req.policy.name,
      policyVersion: req.policy.version,
      yaml: req.yaml,
      note: req.note,
      actor: req.actor,
      at: nowIso(ctx),
    });
    if (current !== null) await applyRenames(s, current, revert ? revertView(current, req.policy) : req.policy);
    await markRevoked(s, result, version.version);
    await audit(ctx, s, req.actor, revert ? 'policy.revert' : 'policy.publish', `policy/${version.version}`, {
      version: version.version,
      policy: version.name,
      policyVersion: version.policyVersion,
      note: req.note,
      mode: req.mode,
      ...('revertTo' in req.source ? { revertTo: req.source.revertTo } : { draft: req.source.draft }),
      previous: latest?.version ?? null,
      isolate: result.isolate,
      relabeled: result.relabeled,
    });
    if ('draft' in req.source) await s.deleteDraft(req.source.draft);
    // every host's plan under the new version, in the same transaction
    const effects = await storePolicy(ctx, s, new CompiledPolicy(req.policy), version.version, latest?.version ?? 0);
    return { version, result, effects };
  });
  countEffects(ctx, out.effects);
  ctx.metrics.publishes.inc({ kind: revert ? 'revert' : 'publish', outcome: 'accepted' });
  ctx.policies.set(out.version, req.policy);
  ctx.metrics.policyVersion.set(out.version.version);
  await notify(ctx, 'policy', String(out.version.version));
  return { version: out.version, result: out.result };
}
