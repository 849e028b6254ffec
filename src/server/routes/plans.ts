/**
 * `GET /api/v1/hosts/:name/plan`: what the host must enforce now (`PlanV1`), for its agent (its own host only) and
 * for viewers.
 *
 * `?after=N` is the agent's long poll: the answer comes as soon as the host's plan has a version above N (at once
 * if it has already), or after `planWaitMs` (default 25 s) with **204 No Content** and no body when nothing newer
 * came — the agent then asks again with the same N. The wait is woken by the store's `plan` events, which every
 * controller on the same database receives (PostgreSQL: LISTEN/NOTIFY), so a plan stored through another
 * controller wakes it too. Without `after`: the current plan, or 404 when the host has none yet.
 */
import type { FastifyInstance } from 'fastify';
import type { PlanV1 } from '../../api/types.ts';
import type { ServerContext } from '../context.ts';
import { notFound } from '../errors.ts';
import { name } from '../schemas.ts';

const planV1 = {
  type: 'object',
  required: ['host', 'version', 'policyVersion', 'vms'],
  properties: {
    host: { type: 'string' },
    version: { type: 'integer' },
    policyVersion: { type: 'integer' },
    vms: {
      type: 'array',
      items: {
        type: 'object',
        required: ['name', 'ports', 'colors'],
        properties: {
          name: { type: 'string' },
          ports: { type: 'array', items: { type: 'string' } },
          colors: { type: 'array', items: { type: 'string' } },
          isolated: { type: 'string' },
        },
      },
    },
  },
} as const;

export function planRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const waiting = new Set<() => void>();
  // Waits end when the server closes (the agent asks again, of another controller or later).
  app.addHook('preClose', async () => {
    for (const end of [...waiting]) end();
  });

  app.get('/api/v1/hosts/:name/plan', {
    schema: {
      summary: 'The host\'s current plan; with `after=N`, wait (up to ~25 s) for a version above N: 204 if none came',
      tags: ['plans'],
      params: { type: 'object', required: ['name'], properties: { name } },
      querystring: { type: 'object', additionalProperties: false, properties: { after: { type: 'integer', minimum: 0 } } },
      response: { 200: planV1, 204: { type: 'null', description: 'no newer plan within the wait: ask again' } },
    },
  }, async (request, reply) => {
    const host = (request.params as { name: string }).name;
    const { after } = request.query as { after?: number };
    if (after === undefined) {
      const p = await ctx.store.plan(host);
      if (p === null) throw notFound('plan', host);
      return p;
    }
    const newer = (p: PlanV1 | null) => p !== null && p.version > after;
    // Subscribe first, then read: a plan stored in between is not missed.
    let pending = false;
    let ended = false;
    let resume: (() => void) | null = null;
    const unsubscribe = ctx.store.subscribe((e) => {
      if (e.kind !== 'plan' || e.subject !== host) return;
      pending = true;
      resume?.();
    });
    const end = () => {
      ended = true;
      resume?.();
    };
    const timer = setTimeout(end, ctx.planWaitMs);
    waiting.add(end);
    reply.raw.on('close', end);
    try {
      for (;;) {
        pending = false;
        const p = await ctx.store.plan(host);
        if (newer(p)) return p;
        if (ended) break;
        if (!pending) await new Promise<void>((resolve) => (resume = resolve));
        resume = null;
      }
    } finally {
      clearTimeout(timer);
      unsubscribe();
      waiting.delete(end);
      reply.raw.off('close', end);
    }
    return reply.code(204).send();
  });
}
