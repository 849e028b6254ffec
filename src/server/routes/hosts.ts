/**
 * Hosts and the VMs on them, as their agents report them. An agent (bound to its host) reports its host label and
 * its whole VM inventory; a VM that starts gets the next start number on its host (the Chinese Wall replays starts
 * in that order). A label an operator assigned is kept over the one the agent reads from the domain's metadata.
 */
import type { FastifyInstance } from 'fastify';
import type { HostInventoryV1, HostV1 } from '../../api/types.ts';
import type { VmRecord } from '../../store/store.ts';
import { principalOf } from '../auth.ts';
import { audit, notify, nowIso, type ServerContext } from '../context.ts';
import { ApiError, ApiErrorCode, notFound } from '../errors.ts';
import { hostV1, labelName, name, vmResource, vmV1 } from '../schemas.ts';
import { vmViews } from '../vm-view.ts';
import { countEffects, storeInventory } from '../trust.ts';

export type { HostInventoryV1, ReportedVmV1 } from '../../api/types.ts';

const tags = ['fleet'];
const nameParams = { type: 'object', required: ['name'], properties: { name } } as const;
const port = { type: 'string', minLength: 1, maxLength: 64, pattern: '^[^/\\s]+$' } as const;

const inventoryBody = {
  type: 'object',
  required: ['vms'],
  additionalProperties: false,
  properties: {
    vms: {
      type: 'array',
      maxItems: 4096,
      items: {
        type: 'object',
        required: ['name', 'running'],
        additionalProperties: false,
        properties: {
          name,
          label: { anyOf: [labelName, { type: 'null' }] },
          running: { type: 'boolean' },
          ports: { type: 'array', maxItems: 64, items: port },
          resources: { type: 'array', maxItems: 256, items: vmResource },
        },
      },
    },
  },
} as const;

export function hostRoutes(app: FastifyInstance, ctx: ServerContext): void {
  async function host(hostName: string): Promise<HostV1> {
    const h = await ctx.store.host(hostName);
    if (h === null) throw notFound('host', hostName);
    return h;
  }

  app.get('/api/v1/hosts', {
    schema: { summary: 'Every host', tags, response: { 200: { type: 'array', items: hostV1 } } },
  }, async () => ctx.store.hosts());

  app.get('/api/v1/hosts/:name', {
    schema: { summary: 'One host (an agent: its own)', tags, params: nameParams, response: { 200: hostV1 } },
  }, async (request) => host((request.params as { name: string }).name));

  app.get('/api/v1/hosts/:name/vms', {
    schema: { summary: 'The VMs on a host (an agent: its own)', tags, params: nameParams, response: { 200: { type: 'array', items: vmV1 } } },
  }, async (request) => {
    const h = await host((request.params as { name: string }).name);
    return vmViews(await ctx.store.vms(h.name), ctx.store, await ctx.policies.current());
  });

  app.put('/api/v1/hosts/:name', {
    schema: {
      summary: 'An agent reports its host: its label (null: the policy\'s bootstrap label)',
      tags,
      params: nameParams,
      body: { type: 'object', required: ['label'], additionalProperties: false, properties: { label: { anyOf: [labelName, { type: 'null' }] } } },
      response: { 200: hostV1 },
    },
  }, async (request) => {
    const hostName = (request.params as { name: string }).name;
    const { label } = request.body as { label: string | null };
    const p = principalOf(request);
    const h: HostV1 = { name: hostName, label, lastSeen: nowIso(ctx) };
    const effects = await ctx.fleet.change(async (s, view) => {
      const before = await s.host(hostName);
      await s.putHost(h);
      const r = await storeInventory(ctx, s, view.fleet, { hosts: [h] });
      if ((before?.label ?? null) !== label || before === null) {
        await audit(ctx, s, p.actor, 'host.label', `host/${hostName}`, { from: before?.label ?? null, to: label, registered: before === null });
      }
      return { value: r.effects, fleet: r.fleet };
    });
    countEffects(ctx, effects);
    await notify(ctx, 'fleet', `host/${hostName}`);
    return h;
  });

  app.put('/api/v1/hosts/:name/vms', {
    schema: {
      summary: 'An agent reports every VM defined on its host (running ones in start order); VMs it no longer reports are forgotten',
      tags,
      params: nameParams,
      body: inventoryBody,
      response: { 200: { type: 'array', items: vmV1 } },
    },
  }, async (request) => {
    const hostName = (request.params as { name: string }).name;
    const { vms } = request.body as HostInventoryV1;
    const seen = new Set<string>();
    vms.forEach((v, i) => {
      if (seen.has(v.name)) {
        throw new ApiError(ApiErrorCode.invalidParameter, `body.vms[${i}].name "${v.name}" is reported twice`, { field: `body.vms[${i}].name` });
      }
      seen.add(v.name);
    });
    const effects = await ctx.fleet.change(async (s, view) => {
      const set: VmRecord[] = [];
      const removed: string[] = [];
      const before = await s.vms(hostName);
      let seq = Math.max(0, ...before.map((v) => v.startedSeq ?? 0));
      for (const v of vms) {
        const prev = await s.vm(v.name);
        const keepsSeq = prev !== null && prev.running && prev.host === hostName && prev.startedSeq !== null;
        // isolated by a revoke while it keeps running here; a new start (admitted under the policy) starts clean
        const keepsRevoked = v.running && prev !== null && prev.running && prev.host === hostName && prev.revoked;
        const record: VmRecord = {
          name: v.name,
          host: hostName,
          label: prev?.label ?? v.label ?? null,
          running: v.running,
          ports: v.ports ?? [],
          resources: v.resources ?? [],
          startedSeq: v.running ? (keepsSeq ? prev.startedSeq : ++seq) : null,
          ...(keepsRevoked ? { revoked: prev.revoked } : {}),
        };
        await s.putVm(record);
        set.push(record);
      }
      for (const v of before) {
        if (seen.has(v.name)) continue;
        await s.deleteVm(v.name);
        removed.push(v.name);
      }
      const h = await s.host(hostName);
      const hostRecord: HostV1 = { name: hostName, label: h?.label ?? null, lastSeen: nowIso(ctx) };
      await s.putHost(hostRecord);
      // the plans of this host (and of the hosts VMs moved from) follow, in the same transaction
      const r = await storeInventory(ctx, s, view.fleet, { hosts: [hostRecord], vms: set, removeVms: removed });
      return { value: r.effects, fleet: r.fleet };
    });
    countEffects(ctx, effects);
    await notify(ctx, 'fleet', `host/${hostName}`);
    return vmViews(await ctx.store.vms(hostName), ctx.store, await ctx.policies.current());
  });
}
