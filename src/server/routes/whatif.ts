/**
 * What-if questions about the live fleet, for the console (any signed-in role; nothing is recorded or changed):
 *
 * - `POST /api/v1/whatif/share {a, b}`: may these two VMs talk? The policy's answer for their labels (the colors
 *   they share, or none) and, since enforcement fails closed, whether they may talk *now*: both must hold a shared
 *   color among their effective colors (an untrusted, unverified or revoked VM holds none; `isolated` says why).
 * - `POST /api/v1/whatif/start {vm, host}`: may this VM start on this host now? The admission answer, with the
 *   conflict sets and the running VMs that stand in the way (`details.standing`). Unlike `POST /admission` a denial
 *   is not audited: nothing tried to start.
 */
import type { FastifyInstance } from 'fastify';
import type { AdmissionAnswerV1, WhatIfShareV1 } from '../../api/types.ts';
import { explainShare } from '../../monitor/decisions.ts';
import { UNLABELED } from '../../policy/model.ts';
import { decideAdmission } from '../admission.ts';
import type { ServerContext } from '../context.ts';
import { notFound } from '../errors.ts';
import { anyObject, name } from '../schemas.ts';
import { vmViews, type VmViewV1 } from '../vm-view.ts';

export type { WhatIfShareV1 } from '../../api/types.ts';

const tags = ['monitor'];

export function whatIfRoutes(app: FastifyInstance, ctx: ServerContext): void {
  async function views(names: string[]): Promise<VmViewV1[]> {
    const records = await Promise.all(names.map(async (n) => {
      const v = await ctx.store.vm(n);
      if (v === null) throw notFound('vm', n);
      return v;
    }));
    return vmViews(records, ctx.store, await ctx.policies.current());
  }

  app.post('/api/v1/whatif/share', {
    schema: {
      summary: 'May these two VMs talk: the policy\'s answer for their labels (shared colors) and whether they may now (trust, isolation)',
      tags,
      body: { type: 'object', required: ['a', 'b'], additionalProperties: false, properties: { a: name, b: name } },
      response: { 200: anyObject },
    },
  }, async (request): Promise<WhatIfShareV1> => {
    const body = request.body as { a: string; b: string };
    const { compiled } = await ctx.policies.require();
    const [a, b] = await views([body.a, body.b]);
    const vms = [a, b].map(({ name: n, host, label, trust, effectiveColors, isolated }) => ({ name: n, host, label, trust, effectiveColors, ...(isolated ? { isolated } : {}) }));
    const labelOf = (v: VmViewV1) => v.label ?? (compiled.unlabeled >= 0 ? UNLABELED : null);
    const la = labelOf(a);
    const lb = labelOf(b);
    const missing = [[a, la], [b, lb]].filter(([, l]) => l === null || compiled.labelIndex(l as string) < 0) as [VmViewV1, string | null][];
    if (missing.length > 0) {
      const message = missing.map(([v, l]) => l === null ? `VM "${v.name}" is unlabeled and the policy has no ${UNLABELED} label` : `VM "${v.name}" has label "${l}", which the policy does not define`).join('; ');
      return { allow: false, now: false, reason: 'unknown_label', colors: [], nowColors: [], message, vms };
    }
    const share = explainShare(compiled, la!, lb!);
    const held = new Set(a.effectiveColors);
    const nowColors = share.reason === 'no_ste_component' ? [] : b.effectiveColors.filter((c) => held.has(c));
    const now = share.reason === 'no_ste_component' ? share.allow : nowColors.length > 0;
    let message: string;
    if (!share.allow) message = `"${la}" and "${lb}" share no color: ${a.name} and ${b.name} may never talk`;
    else if (share.reason === 'no_ste_component') message = 'the policy has no colors: it restricts no sharing';
    else if (now) message = `${a.name} and ${b.name} may talk through ${nowColors.join(', ')}`;
    else {
      const why = [a, b].filter((v) => v.isolated).map((v) => `${v.name}: ${v.isolated}`).join('; ');
      message = `the policy lets them share ${share.colors.join(', ')}, but not now: ${why || 'one of them holds none of these colors'}`;
    }
    return { allow: share.allow, now, reason: share.allow && !now ? 'isolated' : share.reason, colors: share.colors, nowColors, message, vms };
  });

  app.post('/api/v1/whatif/start', {
    schema: {
      summary: 'May this VM start on this host now (the admission answer, with the conflict sets and running VMs in the way); not audited',
      tags,
      body: { type: 'object', required: ['vm', 'host'], additionalProperties: false, properties: { vm: name, host: name } },
      response: { 200: { type: 'object', required: ['allow', 'reason', 'details'], properties: { allow: { type: 'boolean' }, reason: { type: 'string' }, details: anyObject } } },
    },
  }, async (request): Promise<AdmissionAnswerV1> => {
    const req = request.body as { vm: string; host: string };
    const current = await ctx.policies.require();
    const [host, vm, onHost, resourceLabels] = await Promise.all([
      ctx.store.host(req.host), ctx.store.vm(req.vm), ctx.store.vms(req.host), ctx.store.resourceLabels(),
    ]);
    if (host === null) throw notFound('host', req.host);
    if (vm === null) throw notFound('vm', req.vm);
    return decideAdmission(req, { policy: current.compiled, policyVersion: current.record.version, host, vm, onHost, resourceLabels });
  });
}
