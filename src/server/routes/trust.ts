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
 *   A VM with a registered attestation key (below) has its quotes verified with it; a quote for a VM without one
 *   is refused 409 `no_attestation_key`.
 * - `PUT /api/v1/vms/:name/ak` (the agent of the VM's host, operators): register the VM's (v)TPM attestation key,
 *   base64 of a PEM public key or of a TPM2B_PUBLIC (`tpm2_createak -u`; it must then be a restricted signing key).
 *   Trust on first use: the first key is taken from the host's agent; the same key again changes nothing; a
 *   different key is refused to the agent (409 `ak_conflict`) and only an operator or admin may replace it.
 *   Registrations and replacements are audited (`vm.ak.register`, `vm.ak.replace`).
 * - `GET /api/v1/vms/:name/trust`, `GET /api/v1/vms/:name/trust/history`.
 * - `POST /api/v1/vms/:name/readmit` (operators): an untrusted VM back to `unverified` (trusted again at its next
 *   good evidence), its integrity state re-admitted by `mode`; audited with the operator as the actor. 409
 *   `not_untrusted` for a VM in another state.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { EntryFailureV1, EvidenceAnswerV1, EvidenceRequestV1, NonceV1, ReadmitRequestV1, TrustRecordV1, VmTrustV1 } from '../../api/types.ts';
import { isIntegrityError } from '../../integrity/errors.ts';
import { loadAttestationKey, TPMA_OBJECT, type AttestationKey } from '../../integrity/tpm-public.ts';
import type { AttestationKeyRecord, Store } from '../../store/store.ts';
import { readmitIntegrity, processEvidence } from '../../trust/evidence.ts';
import { applyVerdict, readmit } from '../../trust/engine.ts';
import { isTrustError } from '../../trust/errors.ts';
import { principalOf } from '../auth.ts';
import { audit, nowIso, type ServerContext } from '../context.ts';
import { ApiError, ApiErrorCode, notFound } from '../errors.ts';
import { name, note } from '../schemas.ts';
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

const attestationKeyV1 = {
  type: 'object',
  required: ['vm', 'name', 'registeredAt', 'by', 'changed'],
  properties: {
    vm: { type: 'string' },
    /** the TPM Name (hex) of a TPM2B_PUBLIC key; `sha256:` and the SHA-256 of the SPKI DER of a PEM key */
    name: { type: 'string' },
    registeredAt: { type: 'string' },
    by: { type: 'string' },
    /** false: this key was registered already, nothing changed */
    changed: { type: 'boolean' },
  },
} as const;

/** The SHA-256 (hex) of the key's SubjectPublicKeyInfo: the same key whatever form it came in. */
const spkiHash = (k: AttestationKey) => createHash('sha256').update(k.key.export({ type: 'spki', format: 'der' })).digest('hex');

/** A registered AK as the evidence path uses it. */
const loadRecorded = (r: AttestationKeyRecord) => loadAttestationKey(Buffer.from(r.ak, 'base64'));

/** An offered AK, parsed and checked: 400 `invalid_parameter` (field `body.ak`) when it is no usable AK. */
function readAk(b64: string): { key: AttestationKey; name: string; ak: string } {
  const bytes = Buffer.from(b64.replace(/\s+/g, ''), 'base64');
  const bad = (why: string) => new ApiError(ApiErrorCode.invalidParameter, `body.ak is not a usable attestation key: ${why}`, { field: 'body.ak' });
  let key: AttestationKey;
  try {
    key = loadAttestationKey(bytes);
  } catch (e) {
    if (isIntegrityError(e)) throw bad(e.message);
    throw e;
  }
  if (key.public !== null) {
    const a = key.public.objectAttributes;
    if ((a & TPMA_OBJECT.restricted) === 0 || (a & TPMA_OBJECT.sign) === 0 || (a & TPMA_OBJECT.decrypt) !== 0) {
      throw bad('a TPM key that verifies quotes must be a restricted signing key (restricted, sign, not decrypt)');
    }
  }
  const keyName = key.public !== null ? Buffer.from(key.public.name).toString('hex') : `sha256:${spkiHash(key)}`;
  return { key, name: keyName, ak: bytes.toString('base64') };
}

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
        const [integrity, akRecord] = await Promise.all([s.integrity(vmName), s.attestationKey(vmName)]);
        const ak = akRecord === null ? undefined : loadRecorded(akRecord);
        const { newState, verdict } = processEvidence(integrity?.state ?? null, body, {
          now: now.getTime(),
          ...(ak === undefined ? {} : { ak }),
          ...(nonce === undefined ? {} : { nonce }),
        });
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

  app.put('/api/v1/vms/:name/ak', {
    schema: {
      summary: 'Register the VM\'s attestation key (its host\'s agent, once: trust on first use); replacing a different key takes an operator',
      tags,
      params: nameParams,
      body: {
        type: 'object',
        required: ['ak'],
        additionalProperties: false,
        properties: { ak: base64, reason: note },
      },
      response: { 200: attestationKeyV1 },
    },
  }, async (request) => {
    const vmName = (request.params as { name: string }).name;
    const body = request.body as { ak: string; reason?: string };
    const p = principalOf(request);
    const offered = readAk(body.ak);
    const at = nowIso(ctx);
    return ctx.store.tx(async (s) => {
      await vmOf(s, vmName);
      const existing = await s.attestationKey(vmName);
      if (existing !== null) {
        const same = spkiHash(loadRecorded(existing)) === spkiHash(offered.key);
        if (same) return { vm: vmName, name: existing.name, registeredAt: existing.registeredAt, by: existing.by, changed: false };
        if (p.role === 'agent') {
          throw new ApiError(
            ApiErrorCode.akConflict,
            `VM "${vmName}" has an attestation key already (${existing.name}, registered by ${existing.by}); only an operator may replace it`,
            { vm: vmName, registered: existing.name, offered: offered.name },
          );
        }
      }
      const record = { ak: offered.ak, name: offered.name, registeredAt: at, by: p.actor };
      await s.putAttestationKey(vmName, record);
      if (existing === null) await audit(ctx, s, p.actor, 'vm.ak.register', `vm/${vmName}`, { name: offered.name, reason: body.reason ?? '' });
      else await audit(ctx, s, p.actor, 'vm.ak.replace', `vm/${vmName}`, { from: existing.name, to: offered.name, reason: body.reason ?? '' });
      return { vm: vmName, name: record.name, registeredAt: record.registeredAt, by: record.by, changed: true };
    });
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
