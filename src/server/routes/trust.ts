/**
 * Evidence and trust (DESIGN.md §4 steps 3–4):
 * - `POST /api/v1/vms/:name/nonce`: a random nonce for the VM's next quote, usable once, for `nonceTtlMs`.
 * - `POST /api/v1/vms/:name/evidence` (the agent of the VM's host): one increment of the VM's measurement list,
 *   with a quote where it has one. In ONE transaction: the quote's nonce is used (replayed, stale or unknown: 409,
 *   nothing changes), the increment is appraised (`processEvidence`) against the VM's integrity state, the new
 *   state and the evidence record are stored, the verdict goes to the trust engine (`applyVerdict`) and its
 *   transitions (audited, actor `verifier`) and new plans are stored. Unreadable or out-of-order evidence is
 *   refused with the engine's code (400 `bad_evidence`, 409 `evidence_out_of_order` with `details.expected`) and
 *   nothing changes.
 * - `GET /api/v1/vms/:name/trust`, `GET /api/v1/vms/:name/trust/history`.
 * - `POST /api/v1/vms/:name/readmit` (operators): an untrusted VM back to `unverified` (trusted again at its next
 *   good evidence), its integrity state re-admitted by `mode`; audited with the operator as the actor. 409
 *   `not_untrusted` for a VM in another state.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { EntryFailureV1, EvidenceAnswerV1, EvidenceRequestV1, NonceV1, ReadmitRequestV1, TrustRecordV1, VmTrustV1 } from '../../api/types.ts';
import type { Store } from '../../store/store.ts';
import { readmitIntegrity, processEvidence } from '../../trust/evidence.ts';
import { applyVerdict, readmit } from '../../trust/engine.ts';
import { isTrustError } from '../../trust/errors.ts';
import { principalOf } from '../auth.ts';
import { audit, nowIso, type ServerContext } from '../context.ts';
import { ApiError, ApiErrorCode, notFound } from '../errors.ts';
import { name } from '../schemas.ts';
import { countEffects, storeResult, vmFleet, type Effects } from '../trust.ts';

const tags = ['trust'];
const nameParams = { type: 'object', required: ['name'], properties: { name } } as const;
const trustState = { type: 'string', enum: ['unverified', 'trusted', 'untrusted', 'unreachable'] } as const;

const failureV1 = {
  type: 'object',
  required: ['entry', 'path', 'status', 'expected', 'found', 'alg'],
  properties: {
    entry: { type: 'integer' },
    path: { type: 'string' },
    status: { type: 'string' },
    expected: { type: 'array', items: { type: 'string' } },
    found: { type: 'string' },
    alg: { type: 'string' },
  },
} as const;

const trustRecordProps = {
  vm: { type: 'string' },
  state: trustState,
  since: { type: ['string', 'null'] },
  reason: { type: 'string' },
  lastEvidence: { type: ['string', 'null'] },
} as const;
const trustRecordV1 = { type: 'object', required: ['vm', 'state', 'since', 'reason', 'lastEvidence'], properties: trustRecordProps } as const;

const transitionV1 = {
  type: 'object',
  required: ['vm', 'from', 'to', 'at', 'reason', 'actor'],
  properties: { vm: { type: 'string' }, from: trustState, to: trustState, at: { type: 'string' }, reason: { type: 'string' }, actor: { type: 'string' } },
} as const;

const hex = { type: 'string', minLength: 2, maxLength: 128, pattern: '^([0-9a-fA-F]{2})+$' } as const;
const base64 = { type: 'string', minLength: 1, maxLength: 65536, pattern: '^[A-Za-z0-9+/=\\s]+$' } as const;

const evidenceBody = {
  type: 'object',
  required: ['entries'],
  additionalProperties: false,
  properties: {
    entries: { type: 'array', maxItems: 100_000, items: { type: 'string', maxLength: 8192 } },
    from: { type: 'integer', minimum: 0 },
    reboot: { type: 'boolean' },
    quote: {
      type: 'object',
      required: ['attest', 'signature', 'nonce'],
      additionalProperties: false,
      properties: {
        attest: base64,
        signature: base64,
        nonce: hex,
        pcrs: {
          anyOf: [
            base64,
            { type: 'object', additionalProperties: { type: 'object', additionalProperties: { type: 'string', pattern: '^[0-9a-fA-F]+$' } } },
          ],
        },
      },
    },
  },
} as const;

const evidenceAnswerV1 = {
  type: 'object',
  required: ['verdict', 'trust'],
  properties: {
    verdict: {
      type: 'object',
      required: ['ok', 'fresh', 'enrolled', 'appraised', 'waiting', 'summary', 'failures'],
      properties: {
        ok: { type: 'boolean' },
        fresh: { type: 'boolean' },
        enrolled: { type: 'boolean' },
        appraised: { type: 'integer' },
        waiting: { type: 'integer' },
        summary: { type: 'string' },
        failures: { type: 'array', items: failureV1 },
        quote: {
          type: 'object',
          required: ['valid', 'failed', 'detail', 'covered'],
          properties: { valid: { type: 'boolean' }, failed: { type: ['string', 'null'] }, detail: { type: 'string' }, covered: { type: 'integer' } },
        },
      },
    },
    trust: trustRecordV1,
    planVersion: { type: 'integer' },
  },
} as const;

/** The trust of a VM the store has no record of yet. */
const noRecord = (vm: string): TrustRecordV1 => ({ vm, state: 'unverified', since: null, reason: 'no evidence yet', lastEvidence: null });

export function trustRoutes(app: FastifyInstance, ctx: ServerContext): void {
  async function vmOf(s: Store, vmName: string) {
    const v = await s.vm(vmName);
    if (v === null) throw notFound('vm', vmName);
    return v;
  }

  app.post('/api/v1/vms/:name/nonce', {
    schema: {
      summary: 'A fresh nonce for the VM\'s next quote: usable once, for a few minutes',
      tags,
      params: nameParams,
      response: { 201: { type: 'object', required: ['nonce', 'expiresAt'], properties: { nonce: { type: 'string' }, expiresAt: { type: 'string' } } } },
    },
  }, async (request, reply) => {
    const vmName = (request.params as { name: string }).name;
    await vmOf(ctx.store, vmName);
    const answer: NonceV1 = { nonce: randomBytes(20).toString('hex'), expiresAt: new Date(ctx.now().getTime() + ctx.nonceTtlMs).toISOString() };
    await ctx.store.putNonce(vmName, answer.nonce, answer.expiresAt);
    return reply.code(201).send(answer);
  });

  app.post('/api/v1/vms/:name/evidence', {
    schema: {
      summary: 'The agent of the VM\'s host sends the next entries of its measurement list (and a quote): appraised, trust and plans updated',
      tags,
      params: nameParams,
      body: evidenceBody,
      response: { 200: evidenceAnswerV1 },
    },
  }, async (request) => {
    const vmName = (request.params as { name: string }).name;
    const body = request.body as EvidenceRequestV1;
    const current = await ctx.policies.require();
    const now = ctx.now();
    const at = now.toISOString();
    let out: { answer: EvidenceAnswerV1; effects: Effects };
    try {
      out = await ctx.store.tx(async (s) => {
        const vm = await vmOf(s, vmName);
        let nonce: string | undefined;
        if (body.quote !== undefined) {
          nonce = body.quote.nonce.toLowerCase();
          const used = await s.useNonce(vmName, nonce, at);
          if (used === 'replayed') throw new ApiError(ApiErrorCode.nonceReplayed, 'the quote\'s nonce was used before: ask for a new one', { vm: vmName });
          if (used === 'stale') throw new ApiError(ApiErrorCode.nonceStale, 'the quote\'s nonce has expired: ask for a new one', { vm: vmName });
          if (used === 'unknown') throw new ApiError(ApiErrorCode.nonceUnknown, 'the quote\'s nonce was not issued for this VM', { vm: vmName });
        }
        const integrity = await s.integrity(vmName);
        const { newState, verdict } = processEvidence(integrity?.state ?? null, body, { now: now.getTime(), ...(nonce === undefined ? {} : { nonce }) });
        await s.putIntegrity({ vm: vmName, state: newState });
        await s.addEvidence({ vm: vmName, at, entries: body.entries.length, ok: verdict.ok, failures: verdict.failures });
        const fleet = await vmFleet(s, current.compiled, current.record.version, vm);
        const result = applyVerdict(fleet, vmName, verdict, now.getTime());
        const effects = await storeResult(ctx, s, result);
        const trust = result.fleet.trust.get(vmName) ?? (await s.trust(vmName)) ?? noRecord(vmName);
        const plan = vm.host === null ? undefined : result.plans.find((p) => p.host === vm.host);
        const answer: EvidenceAnswerV1 = {
          verdict: {
            ok: verdict.ok,
            fresh: verdict.fresh,
            enrolled: verdict.enrolled,
            appraised: verdict.appraised,
            waiting: verdict.waiting,
            summary: verdict.summary,
            failures: verdict.failures,
            ...(verdict.quote === undefined ? {} : { quote: verdict.quote }),
          },
          trust: { vm: trust.vm, state: trust.state, since: trust.since, reason: trust.reason, lastEvidence: trust.lastEvidence },
          ...(plan === undefined ? {} : { planVersion: plan.version }),
        };
        return { answer, effects };
      });
    } catch (e) {
      if (isTrustError(e) || (e instanceof ApiError && e.code.startsWith('nonce_'))) ctx.metrics.evidence.inc({ result: 'refused' });
      throw e;
    }
    ctx.metrics.evidence.inc({ result: out.answer.verdict.ok ? 'ok' : 'failed' });
    countEffects(ctx, out.effects);
    return out.answer;
  });

  app.get('/api/v1/vms/:name/trust', {
    schema: {
      summary: 'A VM\'s trust state, since when and why, and its last evidence with the failing entries (path, expected, found)',
      tags,
      params: nameParams,
      response: {
        200: {
          type: 'object',
          required: ['vm', 'state', 'since', 'reason', 'lastEvidence', 'evidence'],
          properties: {
            ...trustRecordProps,
            evidence: {
              anyOf: [
                { type: 'null' },
                {
                  type: 'object',
                  required: ['at', 'entries', 'ok', 'failures'],
                  properties: { at: { type: 'string' }, entries: { type: 'integer' }, ok: { type: 'boolean' }, failures: { type: 'array', items: failureV1 } },
                },
              ],
            },
          },
        },
      },
    },
  }, async (request) => {
    const vmName = (request.params as { name: string }).name;
    const [vm, t, e] = await Promise.all([ctx.store.vm(vmName), ctx.store.trust(vmName), ctx.store.lastEvidence(vmName)]);
    if (vm === null && t === null) throw notFound('vm', vmName);
    const answer: VmTrustV1 = {
      ...(t ?? noRecord(vmName)),
      evidence: e === null ? null : { at: e.at, entries: e.entries, ok: e.ok, failures: e.failures as EntryFailureV1[] },
    };
    return answer;
  });

  app.get('/api/v1/vms/:name/trust/history', {
    schema: { summary: 'Every trust transition of a VM, oldest first', tags, params: nameParams, response: { 200: { type: 'array', items: transitionV1 } } },
  }, async (request) => {
    const vmName = (request.params as { name: string }).name;
    const [vm, history] = await Promise.all([ctx.store.vm(vmName), ctx.store.trustHistory(vmName)]);
    if (vm === null && history.length === 0) throw notFound('vm', vmName);
    return history;
  });

  app.post('/api/v1/vms/:name/readmit', {
    schema: {
      summary: 'Re-admit an untrusted VM, with a reason: unverified now, trusted again at its next good evidence',
      tags,
      params: nameParams,
      body: {
        type: 'object',
        required: ['reason', 'mode'],
        additionalProperties: false,
        properties: {
          reason: { type: 'string', minLength: 1, maxLength: 4096, pattern: '\\S' },
          mode: { type: 'string', enum: ['baseline', 'reenroll'] },
        },
      },
      response: { 200: trustRecordV1 },
    },
  }, async (request) => {
    const vmName = (request.params as { name: string }).name;
    const body = request.body as ReadmitRequestV1;
    const actor = principalOf(request).actor;
    const current = await ctx.policies.require();
    const nowMs = ctx.now().getTime();
    const out = await ctx.store.tx(async (s) => {
      const vm = await vmOf(s, vmName);
      const fleet = await vmFleet(s, current.compiled, current.record.version, vm);
      const result = readmit(fleet, vmName, actor, body.reason, nowMs);
      const integrity = await s.integrity(vmName);
      await s.putIntegrity({ vm: vmName, state: readmitIntegrity(integrity?.state ?? null, body.mode, nowMs) });
      await audit(ctx, s, actor, 'trust.readmit', `vm/${vmName}`, { reason: body.reason, mode: body.mode, at: nowIso(ctx) });
      const effects = await storeResult(ctx, s, result);
      return { trust: result.fleet.trust.get(vmName) ?? noRecord(vmName), effects };
    });
    countEffects(ctx, out.effects);
    return out.trust;
  });
}
