/**
 * `POST /api/v1/decide`: the reference monitor's four questions against the published policy, one query or a batch
 * (`{queries: […]}`), in exactly the shapes of `hueguard decide` (`monitor/query.ts`). A query that does not have
 * the shape of one is a 400 naming the field; a name the policy lacks is answered `{error:{code,message}}` in its
 * place, as the CLI answers it, and the batch goes on.
 */
import type { FastifyInstance } from 'fastify';
import { answerQuery, isQueryError, queryOp, type QueryAnswer } from '../../monitor/query.ts';
import type { ServerContext } from '../context.ts';
import { labelName } from '../schemas.ts';

/** The largest batch one request may carry. */
export const MAX_BATCH = 10_000;

const query = {
  type: 'object',
  required: ['op'],
  additionalProperties: false,
  properties: {
    op: { type: 'string', enum: ['share', 'use', 'authorized', 'start'] },
    a: labelName,
    b: labelName,
    vm: labelName,
    host: labelName,
    resource: labelName,
    running: { type: 'array', maxItems: 4096, items: labelName },
  },
  allOf: [
    { if: { properties: { op: { const: 'share' } } }, then: { required: ['a', 'b'] } },
    { if: { properties: { op: { const: 'use' } } }, then: { required: ['vm', 'resource'] } },
    { if: { properties: { op: { const: 'authorized' } } }, then: { required: ['host', 'vm'] } },
    { if: { properties: { op: { const: 'start' } } }, then: { required: ['vm'] } },
  ],
} as const;

const answer = { type: 'object', additionalProperties: true } as const;

export function decideRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/api/v1/decide', {
    schema: {
      summary: 'share / use / authorized / start: one query, or a batch {queries: [...]}, as `hueguard decide` answers them',
      tags: ['monitor'],
      body: {
        type: 'object',
        if: { required: ['queries'] },
        then: {
          required: ['queries'],
          additionalProperties: false,
          properties: { queries: { type: 'array', maxItems: MAX_BATCH, items: query } },
        },
        else: query,
      },
      // {answers: [...]} for a batch, one answer otherwise: `monitor/query.ts` defines both.
      response: { 200: answer },
    },
  }, async (request) => {
    const { compiled } = await ctx.policies.require();
    const count = (q: unknown, a: QueryAnswer) => {
      const outcome = isQueryError(a) ? 'error' : a.allow ? 'allow' : 'deny';
      ctx.metrics.decisions.inc({ op: queryOp(q) ?? 'unknown', answer: outcome });
      return a;
    };
    const body = request.body as { queries?: unknown[] };
    if (body.queries !== undefined) return { answers: body.queries.map((q) => count(q, answerQuery(compiled, q))) };
    return count(body, answerQuery(compiled, body));
  });
}
