/** `/healthz` (no credential: is the controller up and its store answering), `/metrics`, `/openapi.json`. */
import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../context.ts';
import type { OpenApiCollector } from '../openapi.ts';

export function systemRoutes(app: FastifyInstance, ctx: ServerContext, openapi: OpenApiCollector): void {
  app.get('/healthz', {
    schema: {
      summary: 'Liveness and store health (no credential needed)',
      tags: ['system'],
      response: {
        200: { type: 'object', required: ['status'], properties: { status: { type: 'string' }, store: { type: 'string' } } },
        503: { type: 'object', required: ['status'], properties: { status: { type: 'string' }, store: { type: 'string' } } },
      },
    },
  }, async (_request, reply) => {
    try {
      await ctx.store.policyVersion(0); // a key lookup: the store answers
      return { status: 'ok', store: ctx.store.kind };
    } catch {
      return reply.code(503).send({ status: 'unavailable', store: ctx.store.kind });
    }
  });

  app.get('/metrics', {
    schema: { summary: 'Prometheus metrics (text format 0.0.4)', tags: ['system'], produces: ['text/plain'] },
  }, async (_request, reply) => reply.type('text/plain; version=0.0.4; charset=utf-8').send(ctx.metrics.render()));

  app.get('/openapi.json', {
    schema: { summary: 'This API\'s OpenAPI 3.1 document', tags: ['system'] },
  }, async () => openapi.document());
}
