/**
 * Policy drafts: the admin's work before a publish. A draft is policy text (native YAML, or Xen ACM XML converted
 * to it); a text with errors is refused (422, every diagnostic) and never stored. A draft can be validated against
 * the current version (Xen's identity rules), previewed against the live fleet (who gains or loses a peer, which
 * running VMs violate under reject, which would be isolated under revoke) and published as a new immutable version.
 * `POST /api/v1/policy/import` turns a Xen ACM XML policy into a draft.
 */
import type { FastifyInstance } from 'fastify';
import { checkUpdateIdentity, type UpdateMode } from '../../monitor/update.ts';
import { MAX_POLICY_BYTES } from '../../policy/limits.ts';
import type { DraftRecord } from '../../store/store.ts';
import { principalOf } from '../auth.ts';
import { notify, nowIso, type ServerContext } from '../context.ts';
import { newId } from '../credentials.ts';
import { notFound } from '../errors.ts';
import { loadFleet } from '../fleet.ts';
import { bodyText, readPolicyText, type DiagnosticV1 } from '../policy-text.ts';
import { publishPolicy } from '../publish.ts';
import { asMode, colorChanges, replayChange } from '../replay.ts';
import { anyObject, draftSummaryV1, draftV1, diagnosticV1 as diagnosticSchema, id, note, policyTextBody, policyVersionSummaryV1, updateMode } from '../schemas.ts';

/** A draft on the wire. */
export interface DraftV1 extends DraftRecord {
  name: string;
  policyVersion: string;
  format?: 'yaml' | 'xen-acm';
  warnings?: DiagnosticV1[];
}

const idParams = { type: 'object', required: ['id'], properties: { id } } as const;
const tags = ['policy drafts'];

async function loadDraft(ctx: ServerContext, draftId: string): Promise<DraftRecord> {
  const d = await ctx.store.draft(draftId);
  if (d === null) throw notFound('draft', draftId);
  return d;
}

/** A stored draft, read again (it was valid when stored). */
function readDraft(d: DraftRecord) {
  return readPolicyText(d.yaml, `drafts/${d.id}`);
}

export function draftRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const policyBody = policyTextBody(MAX_POLICY_BYTES);

  /** Store `text` as draft `draftId`: the base is the current version for a new draft, kept for an existing one. */
  async function saveDraft(draftId: string, text: string, actor: string, labels?: string, only?: 'xen-acm'): Promise<DraftV1> {
    const t = readPolicyText(text, only ? 'import' : `drafts/${draftId}`, only, labels);
    const existing = await ctx.store.draft(draftId);
    const base = existing ? existing.base : ((await ctx.store.latestPolicy())?.version ?? null);
    const record: DraftRecord = { id: draftId, yaml: t.yaml, base, actor, updatedAt: nowIso(ctx) };
    await ctx.store.putDraft(record);
    await notify(ctx, 'policy', `draft/${draftId}`);
    return { ...record, name: t.policy.name, policyVersion: t.policy.version, format: t.format, warnings: t.warnings };
  }

  app.get('/api/v1/policy/drafts', {
    schema: { summary: 'List drafts', tags, response: { 200: { type: 'array', items: draftSummaryV1 } } },
  }, async () => (await ctx.store.drafts()).map(({ id: i, base, actor, updatedAt }) => ({ id: i, base, actor, updatedAt })));

  app.post('/api/v1/policy/drafts', {
    bodyLimit: MAX_POLICY_BYTES + 1024,
    schema: { summary: 'Create a draft from policy text (native YAML or Xen ACM XML); 422 with every diagnostic if it has errors', tags, body: policyBody, response: { 201: draftV1 } },
  }, async (request, reply) => reply.code(201).send(await saveDraft(newId(), bodyText(request.body), principalOf(request).actor)));

  app.get('/api/v1/policy/drafts/:id', {
    schema: { summary: 'A draft, with its text', tags, params: idParams, response: { 200: draftV1 } },
  }, async (request) => {
    const d = await loadDraft(ctx, (request.params as { id: string }).id);
    const t = readDraft(d);
    return { ...d, name: t.policy.name, policyVersion: t.policy.version, format: 'yaml', warnings: t.warnings } satisfies DraftV1;
  });

  app.put('/api/v1/policy/drafts/:id', {
    bodyLimit: MAX_POLICY_BYTES + 1024,
    schema: { summary: 'Create or replace a draft; 422 with every diagnostic if the text has errors (the draft is unchanged)', tags, params: idParams, body: policyBody, response: { 200: draftV1 } },
  }, async (request) => saveDraft((request.params as { id: string }).id, bodyText(request.body), principalOf(request).actor));

  app.delete('/api/v1/policy/drafts/:id', {
    schema: { summary: 'Delete a draft', tags, params: idParams },
  }, async (request, reply) => {
    const draftId = (request.params as { id: string }).id;
    if (!(await ctx.store.deleteDraft(draftId))) throw notFound('draft', draftId);
    await notify(ctx, 'policy', `draft/${draftId}`);
    return reply.code(204).send();
  });

  app.post('/api/v1/policy/drafts/:id/validate', {
    schema: {
      summary: 'Check a draft: its diagnostics, and whether it may follow the current version (Xen\'s FromPolicy and version rules)',
      tags,
      params: idParams,
      response: {
        200: {
          type: 'object',
          required: ['valid', 'diagnostics', 'refusals', 'current'],
          properties: {
            valid: { type: 'boolean' },
            diagnostics: { type: 'array', items: diagnosticSchema },
            refusals: { type: 'array', items: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } } } },
            current: { type: ['integer', 'null'] },
          },
        },
      },
    },
  }, async (request) => {
    const d = await loadDraft(ctx, (request.params as { id: string }).id);
    const t = readDraft(d);
    const current = await ctx.policies.current();
    const refusals = current === null ? [] : checkUpdateIdentity(current.policy, t.policy);
    return { valid: refusals.length === 0, diagnostics: t.warnings, refusals, current: current?.record.version ?? null };
  });

  app.get('/api/v1/policy/drafts/:id/preview', {
    schema: {
      summary: 'What publishing the draft would do to the live fleet (operators): the sharing diff by label pair, the running VMs whose colors change (`colors`), the violations (reject refuses them) and the VMs revoke would isolate',
      tags,
      params: idParams,
      response: { 200: anyObject },
    },
  }, async (request) => {
    const d = await loadDraft(ctx, (request.params as { id: string }).id);
    const t = readDraft(d);
    const current = await ctx.policies.current();
    const fleet = await loadFleet(ctx.store);
    // one replay: the two modes differ only in what they do with its violations
    const reject = replayChange(current?.policy ?? null, t.policy, fleet, 'reject');
    const revoke = asMode(reject, 'revoke');
    return {
      draft: d.id,
      current: current?.record.version ?? null,
      kind: reject.kind,
      diff: reject.diff,
      sharing: reject.sharing,
      colors: colorChanges(current?.policy ?? null, t.policy, fleet),
      relabeled: reject.relabeled,
      refusals: reject.refusals,
      violations: reject.violations,
      unmanaged: reject.unmanaged,
      reject: { accepted: reject.accepted },
      revoke: { accepted: revoke.accepted, isolate: revoke.isolate, closedFlows: revoke.closedFlows },
    };
  });

  app.post('/api/v1/policy/drafts/:id/publish', {
    schema: {
      summary: 'Publish a draft as a new immutable version (reject: any violation refuses it and nothing changes; revoke: violators are isolated)',
      tags,
      params: idParams,
      body: { type: 'object', required: ['note'], additionalProperties: false, properties: { note, mode: { ...updateMode, default: 'reject' } } },
      response: { 201: { type: 'object', required: ['version', 'result'], properties: { version: policyVersionSummaryV1, result: anyObject } } },
    },
  }, async (request, reply) => {
    const d = await loadDraft(ctx, (request.params as { id: string }).id);
    const t = readDraft(d);
    const body = request.body as { note: string; mode: UpdateMode };
    const { version, result } = await publishPolicy(ctx, {
      policy: t.policy, yaml: d.yaml, note: body.note, mode: body.mode, actor: principalOf(request).actor, source: { draft: d.id, base: d.base },
    });
    const { yaml: _y, ...summary } = version;
    void _y;
    return reply.code(201).send({ version: summary, result });
  });

  app.post('/api/v1/policy/import', {
    bodyLimit: MAX_POLICY_BYTES + 1024,
    schema: {
      summary: 'Import a Xen ACM XML policy (any generation; `labels`: a Xen 3.0.0 label template) as a new draft in native YAML',
      tags,
      body: policyTextBody(MAX_POLICY_BYTES, { labels: { type: 'string', minLength: 1, maxLength: MAX_POLICY_BYTES } }),
      response: { 201: draftV1 },
    },
  }, async (request, reply) => {
    const labels = typeof request.body === 'string' ? undefined : (request.body as { labels?: string }).labels;
    return reply.code(201).send(await saveDraft(newId(), bodyText(request.body), principalOf(request).actor, labels, 'xen-acm'));
  });
}
