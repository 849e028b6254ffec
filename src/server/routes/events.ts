/**
 * `GET /api/v1/events`: server-sent events for the console. Every store event (`Store.subscribe`: this controller's
 * changes and, on PostgreSQL, every other controller's) is sent as `event: KIND` with the event as JSON data;
 * `?kinds=policy,fleet` narrows the stream. A comment line every `heartbeatMs` keeps proxies from closing it.
 * A console (cookie) session's stream ends when the session does: at its expiry, or at the first heartbeat after
 * it was ended (signed out), so that a page left open stops receiving the fleet's changes.
 */
import type { FastifyInstance } from 'fastify';
import type { StoreEvent } from '../../store/store.ts';
import { principalOf } from '../auth.ts';
import type { ServerContext } from '../context.ts';

const KINDS: StoreEvent['kind'][] = ['policy', 'fleet', 'trust', 'plan', 'audit'];

export function eventRoutes(app: FastifyInstance, ctx: ServerContext, heartbeatMs: number): void {
  const open = new Set<() => void>();
  // Streams never end by themselves: close them before the server waits for its connections to finish.
  app.addHook('preClose', async () => {
    for (const close of [...open]) close();
  });

  app.get('/api/v1/events', {
    schema: {
      summary: 'Server-sent events: what changed (policy, fleet, trust, plan, audit), as `event: KIND` / `data: {kind, subject, at}`',
      tags: ['events'],
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: { kinds: { type: 'string', pattern: `^(${KINDS.join('|')})(,(${KINDS.join('|')}))*$` } },
      },
      produces: ['text/event-stream'],
    },
  }, async (request, reply) => {
    const { kinds } = request.query as { kinds?: string };
    const wanted = new Set(kinds ? kinds.split(',') : KINDS);
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    raw.write(': hueguard events\n\n');
    const unsubscribe = ctx.store.subscribe((e) => {
      if (wanted.has(e.kind)) raw.write(`event: ${e.kind}\ndata: ${JSON.stringify(e)}\n\n`);
    });
    const principal = principalOf(request);
    const session = principal.via === 'cookie' ? await ctx.store.session(principal.session!.hash) : null;
    const heartbeat = setInterval(() => {
      raw.write(': keep-alive\n\n');
      if (session) void ctx.store.session(session.hash).then((s) => { if (s === null) close(); }, () => {});
    }, heartbeatMs);
    heartbeat.unref();
    const expiry = session ? setTimeout(() => close(), Math.max(0, Date.parse(session.expiresAt) - ctx.now().getTime())) : null;
    expiry?.unref();
    ctx.metrics.eventStreams.set(open.size + 1);
    const close = () => {
      if (!open.delete(close)) return;
      clearInterval(heartbeat);
      if (expiry) clearTimeout(expiry);
      unsubscribe();
      ctx.metrics.eventStreams.set(open.size);
      raw.end();
    };
    open.add(close);
    raw.on('close', close);
  });
}
