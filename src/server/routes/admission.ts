/**
 * `POST /api/v1/admission`: may VM X start on host H now? (`admission.ts` decides.) An agent asks for its own host
 * only. A denial is audited: it is the moment a start was stopped.
 */
import type { FastifyInstance } from 'fastify';
import { principalOf } from '../auth.ts';
import { decideAdmission, type AdmissionRequestV1 } from '../admission.ts';
import { audit, type ServerContext } from '../context.ts';
import { anyObject, labelName, name, vmResource } from '../schemas.ts';

export function admissionRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/api/v1/admission', {
    schema: {
      summary: 'May this VM start on this host now: host authorization, the host\'s Chinese Wall state, its disks and networks',
      tags: ['monitor'],
      body: {
        type: 'object',
        required: ['host', 'vm'],
        additionalProperties: false,
        properties: {
          host: name,
          vm: name,
          label: { anyOf: [labelName, { type: 'null' }] },
          resources: { type: 'array', maxItems: 256, items: vmResource },
        },
      },
      response: {
        200: {
          type: 'object',
          required: ['allow', 'reason', 'details'],
          properties: { allow: { type: 'boolean' }, reason: { type: 'string' }, details: anyObject },
        },
      },
    },
  }, async (request) => {
    const req = request.body as AdmissionRequestV1;
    const current = await ctx.policies.require();
    const [host, vm, onHost, resourceLabels] = await Promise.all([
      ctx.store.host(req.host), ctx.store.vm(req.vm), ctx.store.vms(req.host), ctx.store.resourceLabels(),
    ]);
    const answer = decideAdmission(req, { policy: current.compiled, policyVersion: current.record.version, host, vm, onHost, resourceLabels });
    ctx.metrics.admissions.inc({ answer: answer.allow ? 'allow' : 'deny' });
    if (!answer.allow) {
      await audit(ctx, ctx.store, principalOf(request).actor, 'admission.deny', `${req.host}/${req.vm}`, { reason: answer.reason, ...answer.details });
    }
    return answer;
  });
}
