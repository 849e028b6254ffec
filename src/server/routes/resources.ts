/**
 * Resource labels on disks and networks (one color each, DESIGN.md §1), assigned by operators. A label must be a
 * resource label of the published policy; a change that a running VM using the resource could not live with is
 * refused (409 `label_conflict`). Every change is audited.
 */
import type { FastifyInstance } from 'fastify';
import type { ResourceKind } from '../../api/types.ts';
import { explainUse } from '../../monitor/decisions.ts';
import { UNLABELED } from '../../policy/model.ts';
import { principalOf } from '../auth.ts';
import { audit, notify, type CurrentPolicy, type ServerContext } from '../context.ts';
import { ApiError, ApiErrorCode, notFound } from '../errors.ts';
import type { Store } from '../../store/store.ts';
import { labelName, note, resourceKind, resourceLabelV1 } from '../schemas.ts';

const tags = ['fleet'];
const params = {
  type: 'object',
  required: ['kind', 'id'],
  properties: { kind: resourceKind, id: { type: 'string', minLength: 1, maxLength: 4096 } },
} as const;

/** Running VMs that use (kind, id) and could not use it under resource label `label` (null: unlabeled). */
async function refusingVms(s: Store, current: CurrentPolicy, kind: ResourceKind, id: string, label: string | null) {
  const p = current.compiled;
  const effective = label ?? (p.unlabeledResource >= 0 ? UNLABELED : null);
  const out: { vm: string; host: string | null; message: string }[] = [];
  for (const v of await s.vms()) {
    if (!v.running || !v.resources.some((r) => r.kind === kind && r.id === id)) continue;
    const vmLabel = v.label ?? (p.unlabeled >= 0 ? UNLABELED : null);
    if (vmLabel === null || p.labelIndex(vmLabel) < 0) continue; // the policy cannot judge it either way
    if (effective === null) {
      out.push({ vm: v.name, host: v.host, message: `VM "${v.name}" uses it, and the policy has no ${UNLABELED} resource label` });
      continue;
    }
    const a = explainUse(p, vmLabel, effective);
    if (!a.allow) out.push({ vm: v.name, host: v.host, message: `VM "${v.name}" (${vmLabel}) uses it and may not use color ${a.color}` });
  }
  return out;
}

export function resourceRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get('/api/v1/resources', {
    schema: { summary: 'Every labeled disk and network', tags, response: { 200: { type: 'array', items: resourceLabelV1 } } },
  }, async () => ctx.store.resourceLabels());

  app.put('/api/v1/resources/:kind/:id', {
    schema: {
      summary: 'Label a disk (image path, URL-encoded) or a network with a resource label of the published policy',
      tags,
      params,
      body: { type: 'object', required: ['label'], additionalProperties: false, properties: { label: labelName, reason: note } },
      response: { 200: resourceLabelV1 },
    },
  }, async (request) => {
    const { kind, id } = request.params as { kind: ResourceKind; id: string };
    const { label, reason } = request.body as { label: string; reason?: string };
    const p = principalOf(request);
    const current = await ctx.policies.require();
    if (current.compiled.resourceIndex(label) < 0) {
      throw new ApiError(ApiErrorCode.unknownLabel, `resource label "${label}" is not defined by the published policy (version ${current.record.version})`, { field: 'body.label', label });
    }
    await ctx.store.tx(async (s) => {
      const before = (await s.resourceLabels()).find((r) => r.kind === kind && r.id === id) ?? null;
      if (before?.label === label) return;
      const refusing = await refusingVms(s, current, kind, id, label);
      if (refusing.length > 0) {
        throw new ApiError(ApiErrorCode.labelConflict, `${kind} "${id}" cannot take resource label "${label}": ${refusing.map((r) => r.message).join('; ')}`, { vms: refusing });
      }
      await s.putResourceLabel({ kind, id, label });
      await audit(ctx, s, p.actor, 'resource.label', `${kind}/${id}`, { from: before?.label ?? null, to: label, reason: reason ?? '' });
    });
    await notify(ctx, 'fleet', `${kind}/${id}`);
    return { kind, id, label };
  });

  app.delete('/api/v1/resources/:kind/:id', {
    schema: { summary: 'Remove a disk\'s or network\'s label (it becomes unlabeled)', tags, params },
  }, async (request, reply) => {
    const { kind, id } = request.params as { kind: ResourceKind; id: string };
    const p = principalOf(request);
    const current = await ctx.policies.current();
    await ctx.store.tx(async (s) => {
      const before = (await s.resourceLabels()).find((r) => r.kind === kind && r.id === id);
      if (before === undefined) throw notFound(kind, id);
      const refusing = current === null ? [] : await refusingVms(s, current, kind, id, null);
      if (refusing.length > 0) {
        throw new ApiError(ApiErrorCode.labelConflict, `${kind} "${id}" cannot become unlabeled: ${refusing.map((r) => r.message).join('; ')}`, { vms: refusing });
      }
      await s.deleteResourceLabel(kind, id);
      await audit(ctx, s, p.actor, 'resource.unlabel', `${kind}/${id}`, { from: before.label });
    });
    await notify(ctx, 'fleet', `${kind}/${id}`);
    return reply.code(204).send();
  });
}
