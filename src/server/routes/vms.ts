/**
 * VMs: the inventory, and label assignment by operators. A label must be one the published policy defines; a
 * running VM may take a new label only if it could start with it where it runs (host authorization, the Chinese
 * Wall, its disks and networks), else 409 `label_conflict` with the admission answer. Every change is audited.
 */
import type { FastifyInstance } from 'fastify';
import type { VmLabelRequestV1 } from '../../api/types.ts';
import { principalOf } from '../auth.ts';
import { decideAdmission } from '../admission.ts';
import { audit, notify, type ServerContext } from '../context.ts';
import { ApiError, ApiErrorCode, notFound } from '../errors.ts';
import { labelName, name, note, vmV1 } from '../schemas.ts';
import { vmViews } from '../vm-view.ts';
import { countEffects, noEffects, storeInventory } from '../trust.ts';

const tags = ['fleet'];
const nameParams = { type: 'object', required: ['name'], properties: { name } } as const;

export type { VmLabelRequestV1 } from '../../api/types.ts';

export function vmRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get('/api/v1/vms', {
    schema: {
      summary: 'Every VM, with its trust state and effective colors',
      tags,
      querystring: { type: 'object', additionalProperties: false, properties: { host: name } },
      response: { 200: { type: 'array', items: vmV1 } },
    },
  }, async (request) => {
    const { host } = request.query as { host?: string };
    return vmViews(await ctx.store.vms(host), ctx.store, await ctx.policies.current());
  });

  app.get('/api/v1/vms/:name', {
    schema: { summary: 'One VM', tags, params: nameParams, response: { 200: vmV1 } },
  }, async (request) => {
    const vmName = (request.params as { name: string }).name;
    const v = await ctx.store.vm(vmName);
    if (v === null) throw notFound('vm', vmName);
    return (await vmViews([v], ctx.store, await ctx.policies.current()))[0];
  });

  app.put('/api/v1/vms/:name/label', {
    schema: {
      summary: 'Assign a VM\'s label (null: unlabeled); refused if the VM runs and could not start with it where it runs',
      tags,
      params: nameParams,
      body: {
        type: 'object',
        required: ['label'],
        additionalProperties: false,
        properties: { label: { anyOf: [labelName, { type: 'null' }] }, reason: note },
      },
      response: { 200: vmV1 },
    },
  }, async (request) => {
    const vmName = (request.params as { name: string }).name;
    const body = request.body as VmLabelRequestV1;
    const p = principalOf(request);
    const current = await ctx.policies.require();
    if (body.label !== null && current.compiled.labelIndex(body.label) < 0) {
      throw new ApiError(ApiErrorCode.unknownLabel, `label "${body.label}" is not defined by the published policy (version ${current.record.version})`, { field: 'body.label', label: body.label });
    }
    const effects = await ctx.fleet.change(async (s, view) => {
      const v = await s.vm(vmName);
      if (v === null) throw notFound('vm', vmName);
      if (v.label === body.label) return { value: noEffects() };
      if (v.running && v.host !== null) {
        const answer = decideAdmission(
          { host: v.host, vm: v.name, label: body.label },
          {
            policy: current.compiled, policyVersion: current.record.version, host: await s.host(v.host), vm: v,
            onHost: await s.vms(v.host), resourceLabels: await s.resourceLabels(),
          },
        );
        if (!answer.allow) {
          throw new ApiError(ApiErrorCode.labelConflict, `VM "${vmName}" runs on host "${v.host}", where it could not run with label "${body.label ?? '(unlabeled)'}": ${answer.details.message}`, answer);
        }
      }
      // a new label, admitted where it runs: no longer isolated by an earlier revoke
      const relabeled = { ...v, label: body.label, revoked: null };
      await s.putVm(relabeled);
      // its host's plan follows the new label's colors, in the same transaction
      const r = await storeInventory(ctx, s, view.fleet, { vms: [relabeled] });
      await audit(ctx, s, p.actor, 'vm.label', `vm/${vmName}`, { from: v.label, to: body.label, reason: body.reason ?? '', host: v.host });
      return { value: r.effects, fleet: r.fleet };
    });
    countEffects(ctx, effects);
    await notify(ctx, 'fleet', `vm/${vmName}`);
    const v = await ctx.store.vm(vmName);
    return (await vmViews([v!], ctx.store, current))[0];
  });
}
