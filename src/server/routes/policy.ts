/**
 * Published policy versions: the current one, the history, one version's text, the difference between two
 * (structure and sharing), and a revert, which publishes an earlier version's text as a new version after the
 * same replay against the fleet as any publish.
 */
import type { FastifyInstance } from 'fastify';
import { CompiledPolicy } from '../../monitor/compile.ts';
import { sharingDiff, type UpdateMode } from '../../monitor/update.ts';
import { matchNames, structuralDiff } from '../../policy/diff.ts';
import type { PolicyVersionRecord } from '../../store/store.ts';
import { principalOf } from '../auth.ts';
import { parseStoredPolicy, type ServerContext } from '../context.ts';
import { ApiError, ApiErrorCode, notFound } from '../errors.ts';
import { publishPolicy } from '../publish.ts';
import { anyObject, note, policyVersionSummaryV1, policyVersionV1, updateMode } from '../schemas.ts';

const tags = ['policy'];
const versionNumber = { type: 'integer', minimum: 1 } as const;

const summary = ({ yaml: _y, ...rest }: PolicyVersionRecord) => rest;

export function policyRoutes(app: FastifyInstance, ctx: ServerContext): void {
  async function version(n: number): Promise<PolicyVersionRecord> {
    const v = await ctx.store.policyVersion(n);
    if (v === null) throw notFound('version', n);
    return v;
  }

  app.get('/api/v1/policy', {
    schema: { summary: 'The published policy (the latest version), with its text', tags, response: { 200: policyVersionV1 } },
  }, async () => {
    const c = await ctx.policies.current();
    if (c === null) throw new ApiError(ApiErrorCode.notFound, 'no policy has been published yet');
    return c.record;
  });

  app.get('/api/v1/policy/versions', {
    schema: { summary: 'Every published version, oldest first (without their text)', tags, response: { 200: { type: 'array', items: policyVersionSummaryV1 } } },
  }, async () => (await ctx.store.policyHistory()).map(summary));

  app.get('/api/v1/policy/versions/:n', {
    schema: { summary: 'One published version, with its text', tags, params: { type: 'object', required: ['n'], properties: { n: versionNumber } }, response: { 200: policyVersionV1 } },
  }, async (request) => version((request.params as { n: number }).n));

  app.get('/api/v1/policy/diff', {
    schema: {
      summary: 'What changed between two versions: structure (added, removed, renamed, changed) and sharing (label pairs gained, lost)',
      tags,
      querystring: {
        type: 'object',
        required: ['from'],
        additionalProperties: false,
        properties: { from: versionNumber, to: { ...versionNumber, description: 'default: the latest version' } },
      },
      response: { 200: anyObject },
    },
  }, async (request) => {
    const q = request.query as { from: number; to?: number };
    const a = await version(q.from);
    const b = q.to === undefined ? await ctx.store.latestPolicy() : await version(q.to);
    if (b === null) throw notFound('version', 'latest');
    const pa = parseStoredPolicy(a);
    const pb = parseStoredPolicy(b);
    return {
      from: a.version,
      to: b.version,
      diff: structuralDiff(pa, pb),
      sharing: sharingDiff(new CompiledPolicy(pa), new CompiledPolicy(pb), matchNames(pa.labels, pb.labels)),
    };
  });

  app.post('/api/v1/policy/revert', {
    schema: {
      summary: 'Publish an earlier version\'s text as a new version (replayed against the fleet like any publish)',
      tags,
      body: {
        type: 'object',
        required: ['to', 'note'],
        additionalProperties: false,
        properties: { to: versionNumber, note, mode: { ...updateMode, default: 'reject' } },
      },
      response: { 201: { type: 'object', required: ['version', 'result'], properties: { version: policyVersionSummaryV1, result: anyObject } } },
    },
  }, async (request, reply) => {
    const body = request.body as { to: number; note: string; mode: UpdateMode };
    const target = await version(body.to);
    const { version: v, result } = await publishPolicy(ctx, {
      policy: parseStoredPolicy(target),
      yaml: target.yaml,
      note: body.note,
      mode: body.mode,
      actor: principalOf(request).actor,
      source: { revertTo: target.version },
    });
    return reply.code(201).send({ version: summary(v), result });
  });
}
