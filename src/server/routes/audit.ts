/** `GET /api/v1/audit`: the hash-chained audit log, oldest first, filtered by actor, action, subject, position. */
import type { FastifyInstance } from 'fastify';
import type { AuditFilter } from '../../store/store.ts';
import type { ServerContext } from '../context.ts';
import { auditRecordV1 } from '../schemas.ts';

export const AUDIT_PAGE = 100;
export const AUDIT_MAX_PAGE = 1000;

export function auditRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get('/api/v1/audit', {
    schema: {
      summary: 'Audit records, oldest first (order=desc: newest first): page with afterSeq or beforeSeq and limit',
      tags: ['audit'],
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          actor: { type: 'string', minLength: 1, maxLength: 300 },
          action: { type: 'string', minLength: 1, maxLength: 100 },
          subject: { type: 'string', minLength: 1, maxLength: 4200 },
          afterSeq: { type: 'integer', minimum: 0 },
          beforeSeq: { type: 'integer', minimum: 1 },
          order: { type: 'string', enum: ['asc', 'desc'], default: 'asc' },
          limit: { type: 'integer', minimum: 1, maximum: AUDIT_MAX_PAGE, default: AUDIT_PAGE },
        },
      },
      response: { 200: { type: 'array', items: auditRecordV1 } },
    },
  }, async (request) => ctx.store.audit(request.query as AuditFilter));
}
