/**
 * What each host's data plane enforces and whom it stopped, as its agent reports it (`HostReportV1`, every few
 * seconds): the plan version in force, the last plan it could not apply, and the frames dropped per pair of VMs
 * since its last report. The controller adds the drops up per (host, from port, to port) so that operators see who
 * tried to reach whom, and with what reason; every report is an event (`fleet`, subject `report HOST`) for the
 * console.
 *
 * Kept in this controller's memory, not in the store: counts restart at zero with the controller, and with two
 * controllers on one database each holds what its own agents told it (the event reaches both).
 */
import type { FastifyInstance } from 'fastify';
import type { BlockedTotalV1, HostReportV1 } from '../../api/types.ts';
import { notify, nowIso, type ServerContext } from '../context.ts';
import { notFound } from '../errors.ts';
import { name } from '../schemas.ts';

export type { BlockedTotalV1 } from '../../api/types.ts';

export interface HostReportStateV1 {
  host: string;
  at: string;
  appliedPlan: number | null;
  planError: { version: number; message: string } | null;
  /** since this controller started, added up per port pair */
  blocked: BlockedTotalV1[];
}

const state = new WeakMap<object, Map<string, { report: HostReportStateV1; pairs: Map<string, BlockedTotalV1> }>>();
const of = (ctx: ServerContext) => {
  let m = state.get(ctx);
  if (!m) state.set(ctx, (m = new Map()));
  return m;
};

const port = { type: 'string', minLength: 1, maxLength: 64 } as const;
const vmOrNull = { anyOf: [name, { type: 'null' }] } as const;
const count = { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER } as const;
const reportBody = {
  type: 'object',
  required: ['appliedPlan', 'planError', 'blocked'],
  additionalProperties: false,
  properties: {
    appliedPlan: { anyOf: [{ type: 'integer', minimum: 0 }, { type: 'null' }] },
    planError: {
      anyOf: [
        { type: 'null' },
        { type: 'object', required: ['version', 'message'], additionalProperties: false, properties: { version: { type: 'integer', minimum: 0 }, message: { type: 'string', maxLength: 4096 } } },
      ],
    },
    blocked: {
      type: 'array',
      maxItems: 65536,
      items: {
        type: 'object',
        required: ['from', 'to', 'fromPort', 'toPort', 'packets', 'bytes', 'reason'],
        additionalProperties: false,
        properties: { from: vmOrNull, to: vmOrNull, fromPort: port, toPort: port, packets: count, bytes: count, reason: { type: 'string', enum: ['isolated', 'no_common_color', 'unknown_port'] } },
      },
    },
  },
} as const;
const nameParams = { type: 'object', required: ['name'], properties: { name } } as const;
const tags = ['fleet'];

export function reportRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const view = (s: { report: HostReportStateV1; pairs: Map<string, BlockedTotalV1> }): HostReportStateV1 => ({ ...s.report, blocked: [...s.pairs.values()] });

  app.put('/api/v1/hosts/:name/report', {
    schema: { summary: 'The host\'s agent reports the plan in force, a plan it could not apply, and the frames its data plane dropped since its last report', tags, params: nameParams, body: reportBody },
  }, async (request, reply) => {
    const host = (request.params as { name: string }).name;
    if ((await ctx.store.host(host)) === null) throw notFound('host', host);
    const body = request.body as HostReportV1;
    const at = nowIso(ctx);
    const hosts = of(ctx);
    const s = hosts.get(host) ?? { report: { host, at, appliedPlan: null, planError: null, blocked: [] }, pairs: new Map<string, BlockedTotalV1>() };
    s.report = { host, at, appliedPlan: body.appliedPlan, planError: body.planError, blocked: [] };
    for (const b of body.blocked) {
      const key = `${b.fromPort}\0${b.toPort}`;
      const t = s.pairs.get(key);
      if (t) {
        t.packets += b.packets;
        t.bytes += b.bytes;
        t.lastAt = at;
        // the VMs behind the ports and the reason are what the host says now
        t.from = b.from;
        t.to = b.to;
        t.reason = b.reason;
      } else s.pairs.set(key, { ...b, host, firstAt: at, lastAt: at });
    }
    hosts.set(host, s);
    await notify(ctx, 'fleet', `report ${host}`);
    return reply.code(204).send();
  });

  app.get('/api/v1/hosts/:name/report', {
    schema: { summary: 'The host\'s last report, with the drops added up since this controller started', tags, params: nameParams },
  }, async (request) => {
    const host = (request.params as { name: string }).name;
    const s = of(ctx).get(host);
    if (!s) throw notFound('report of host', host);
    return view(s);
  });

  app.get('/api/v1/blocked', {
    schema: { summary: 'Who tried to reach whom: dropped frames per (host, from, to), with the reason, since this controller started', tags },
  }, async () => [...of(ctx).values()].flatMap((s) => [...s.pairs.values()]));
}
