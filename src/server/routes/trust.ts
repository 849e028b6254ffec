/**
 * Evidence and trust (DESIGN.md §4 steps 3–4):
 * - `POST /api/v1/vms/:name/nonce`: a random nonce for the VM's next quote, usable once, for `nonceTtlMs`.
 *   `POST /api/v1/hosts/:name/nonces` (the host's agent, operators): one for each VM named (all on that host).
 * - `POST /api/v1/hosts/:name/evidence` (the host's agent): the increments of the host's VMs for one reporting
 *   period, in one request (`{vms: [{vm, entries, from?, reboot?, quote?}, …]}`); `POST /api/v1/vms/:name/evidence`
 *   (the agent of the VM's host): one VM's increment. Both are appraised and stored by the group commit
 *   (`ingest.ts`): with the other requests in flight, in one transaction, answered once it is committed. Per
 *   increment, as before: the quote's nonce is used (replayed, stale or unknown: 409, that increment changes
 *   nothing), the increment is appraised (`processEvidence`) against the VM's integrity state, the new state and
 *   the evidence record are stored, the verdicts go to the trust engine and its transitions (audited, actor
 *   `verifier`) and new plans are stored. Unreadable entries or quotes refuse the request (400 `bad_evidence`, the
 *   field named); an increment out of order is refused (409 `evidence_out_of_order` with `details.expected`) and
 *   changes nothing. The host route refuses the whole request for an unknown VM (404), a VM of another host (403)
 *   or an unreadable increment (400), and lists the per-VM refusals (nonce, order, backlog, no key) in its answer,
 *   storing the other VMs' increments (ingest.ts says why).
 *   A VM with a registered attestation key (below) has its quotes verified with it; a quote for a VM without one
 *   is refused 409 `no_attestation_key`.
 * - `PUT /api/v1/vms/:name/ak` (the agent of the VM's host, operators): register the VM's (v)TPM attestation key,
 *   base64 of a PEM public key or of a TPM2B_PUBLIC (`tpm2_createak -u`; it must then be a restricted signing key).
 *   Trust on first use: the first key is taken from the host's agent; the same key again changes nothing; a
 *   different key is refused to the agent (409 `ak_conflict`) and only an operator or admin may replace it.
 *   Registrations and replacements are audited (`vm.ak.register`, `vm.ak.replace`) and published (a `trust` event
 *   for the VM). A new key is a new (v)TPM, whose clock has nothing to do with the old one's: the quote clock the
 *   verifier kept is forgotten with it, so the new TPM's first quote is not taken for a clock going back.
 * - `GET /api/v1/vms/:name/trust`, `GET /api/v1/vms/:name/trust/history`.
 * - `POST /api/v1/vms/:name/readmit` (operators): an untrusted VM back to `unverified` (trusted again at its next
 *   good evidence), its integrity state re-admitted by `mode`; audited with the operator as the actor. 409
 *   `not_untrusted` for a VM in another state.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type {
  EntryFailureV1,
  EvidenceRequestV1,
  HostEvidenceAnswerV1,
  HostEvidenceRequestV1,
  HostNoncesV1,
  NonceV1,
  ReadmitRequestV1,
  VmEvidenceResultV1,
  VmTrustV1,
} from '../../api/types.ts';
import { isIntegrityError } from '../../integrity/errors.ts';
import { loadAttestationKey, TPMA_OBJECT, type AttestationKey } from '../../integrity/tpm-public.ts';
import type { AttestationKeyRecord, Store } from '../../store/store.ts';
import { readmitIntegrity } from '../../trust/evidence.ts';
import { readmit } from '../../trust/engine.ts';
import { isTrustError } from '../../trust/errors.ts';
import { principalOf } from '../auth.ts';
import { audit, nowIso, type ServerContext } from '../context.ts';
import { ApiError, ApiErrorCode, notFound } from '../errors.ts';
import { checkEntries, noRecord, storeIntegrity, type IngestItem } from '../ingest.ts';
import { name, note } from '../schemas.ts';
import { countEffects, storeResult } from '../trust.ts';

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

const evidenceFields = {
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
} as const;

const evidenceBody = { type: 'object', required: ['entries'], additionalProperties: false, properties: evidenceFields } as const;

/** Most VMs in one host's evidence request (as many as an inventory report may name). */
const MAX_HOST_VMS = 4096;
/** A host's request carries many VMs' increments: a larger body than the default 1 MiB. */
const HOST_EVIDENCE_BODY_LIMIT = 16 * 1024 * 1024;

const hostEvidenceBody = {
  type: 'object',
  required: ['vms'],
  additionalProperties: false,
  properties: {
    vms: {
      type: 'array',
      minItems: 1,
      maxItems: MAX_HOST_VMS,
      items: { type: 'object', required: ['vm', 'entries'], additionalProperties: false, properties: { vm: name, ...evidenceFields } },
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

const errorV1 = { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' }, details: {} } } as const;

const hostEvidenceAnswerV1 = {
  type: 'object',
  required: ['host', 'results', 'refused'],
  properties: {
    host: { type: 'string' },
    /** one per VM of the request, in its order: the VM's answer, or why its increment was refused */
    results: {
      type: 'array',
      items: {
        type: 'object',
        required: ['vm'],
        properties: { vm: { type: 'string' }, ...evidenceAnswerV1.properties, error: errorV1 },
      },
    },
    /** how many VMs' increments were refused (each result with an `error`) */
    refused: { type: 'integer' },
    /** the host's new plan version, when this request (or one stored with it) changed it */
    planVersion: { type: 'integer' },
  },
} as const;

const nonceV1 = { type: 'object', required: ['nonce', 'expiresAt'], properties: { nonce: { type: 'string' }, expiresAt: { type: 'string' } } } as const;

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

/** An error as a line of the host route's answer. */
function errorLine(e: ApiError | (Error & { code: string; details?: unknown })) {
  return { code: e.code, message: e.message, ...(e.details === undefined ? {} : { details: e.details }) };
}

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
      response: { 201: nonceV1 },
    },
  }, async (request, reply) => {
    const vmName = (request.params as { name: string }).name;
    await vmOf(ctx.store, vmName);
    const answer: NonceV1 = { nonce: randomBytes(20).toString('hex'), expiresAt: new Date(ctx.now().getTime() + ctx.nonceTtlMs).toISOString() };
    await ctx.store.putNonce(vmName, answer.nonce, answer.expiresAt);
    return reply.code(201).send(answer);
  });

  app.post('/api/v1/hosts/:name/nonces', {
    schema: {
      summary: 'Fresh nonces for the next quotes of VMs of the host (its agent: one request per reporting period), each usable once, for its VM',
      tags,
      params: nameParams,
      body: {
        type: 'object',
        required: ['vms'],
        additionalProperties: false,
        properties: { vms: { type: 'array', minItems: 1, maxItems: MAX_HOST_VMS, uniqueItems: true, items: name } },
      },
      response: {
        201: {
          type: 'object',
          required: ['nonces'],
          properties: { nonces: { type: 'array', items: { type: 'object', required: ['vm', 'nonce', 'expiresAt'], properties: { vm: { type: 'string' }, ...nonceV1.properties } } } },
        },
      },
    },
  }, async (request, reply) => {
    const hostName = (request.params as { name: string }).name;
    const { vms } = request.body as { vms: string[] };
    const expiresAt = new Date(ctx.now().getTime() + ctx.nonceTtlMs).toISOString();
    const answer: HostNoncesV1 = await ctx.store.tx(async (s) => {
      const nonces: HostNoncesV1['nonces'] = [];
      for (let i = 0; i < vms.length; i++) {
        const v = await s.vm(vms[i]);
        if (v === null) throw new ApiError(ApiErrorCode.notFound, `VM "${vms[i]}" does not exist`, { vm: vms[i], field: `body.vms[${i}]` });
        if (v.host !== hostName) throw new ApiError(ApiErrorCode.forbidden, `VM "${vms[i]}" is not on host "${hostName}"`, { vm: vms[i], host: v.host, field: `body.vms[${i}]` });
        const n = { vm: vms[i], nonce: randomBytes(20).toString('hex'), expiresAt };
        await s.putNonce(n.vm, n.nonce, n.expiresAt);
        nonces.push(n);
      }
      return { nonces };
    });
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
    let parsed;
    try {
      parsed = checkEntries(body.entries, 'body');
    } catch (e) {
      ctx.metrics.evidence.inc({ result: 'refused' });
      throw e;
    }
    const out = await ctx.ingest.submit({ host: null, single: true, items: [{ vm: vmName, increment: { ...body, parsed }, field: 'body' }] });
    const [item] = out.items;
    if ('error' in item) throw item.error; // (a single job's refusals are its error: not reached)
    return item.answer;
  });

  app.post('/api/v1/hosts/:name/evidence', {
    bodyLimit: HOST_EVIDENCE_BODY_LIMIT,
    schema: {
      summary: 'The host\'s agent sends, in one request per reporting period, the next entries (and quotes) of its VMs: each appraised, trust and the host\'s plan updated',
      tags,
      params: nameParams,
      body: hostEvidenceBody,
      response: { 200: hostEvidenceAnswerV1 },
    },
  }, async (request) => {
    const hostName = (request.params as { name: string }).name;
    const body = request.body as HostEvidenceRequestV1;
    const items: IngestItem[] = [];
    const seen = new Map<string, number>();
    try {
      body.vms.forEach((v, i) => {
        const field = `body.vms[${i}]`;
        const first = seen.get(v.vm);
        if (first !== undefined) {
          throw new ApiError(ApiErrorCode.invalidParameter, `${field}.vm "${v.vm}" is in the request twice (first as body.vms[${first}])`, { field: `${field}.vm` });
        }
        seen.set(v.vm, i);
        const parsed = checkEntries(v.entries, field);
        const { vm, ...increment } = v;
        items.push({ vm, increment: { ...increment, parsed }, field });
      });
    } catch (e) {
      ctx.metrics.evidence.inc({ result: 'refused' }, body.vms.length);
      throw e;
    }
    const out = await ctx.ingest.submit({ host: hostName, single: false, items });
    const results: VmEvidenceResultV1[] = out.items.map((r) => ('error' in r ? { vm: r.vm, error: errorLine(r.error) } : { vm: r.vm, ...r.answer }));
    const answer: HostEvidenceAnswerV1 = {
      host: hostName,
      results,
      refused: results.filter((r) => 'error' in r).length,
      ...(out.planVersion === undefined ? {} : { planVersion: out.planVersion }),
    };
    return answer;
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
    return ctx.fleet.change(async (s, view) => {
      await vmOf(s, vmName);
      const existing = await s.attestationKey(vmName);
      if (existing !== null) {
        const same = spkiHash(loadRecorded(existing)) === spkiHash(offered.key);
        if (same) return { value: { vm: vmName, name: existing.name, registeredAt: existing.registeredAt, by: existing.by, changed: false } };
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
      // A new key is a new TPM: the clock of the old one's last good quote says nothing about it.
      const integrity: [string, { state: unknown } | null][] = [];
      const stored = await s.integrity(vmName);
      const clock = (stored?.state as { clock?: unknown } | null | undefined)?.clock;
      if (existing !== null && stored !== null && clock !== null && clock !== undefined) {
        const state = { ...(stored.state as object), fingerprint: stored.fingerprint ?? (stored.state as { fingerprint?: unknown }).fingerprint ?? null, clock: null };
        integrity.push([vmName, await storeIntegrity(s, vmName, { fingerprint: stored.fingerprint }, state)]);
      }
      if (existing === null) await audit(ctx, s, p.actor, 'vm.ak.register', `vm/${vmName}`, { name: offered.name, reason: body.reason ?? '' });
      else await audit(ctx, s, p.actor, 'vm.ak.replace', `vm/${vmName}`, { from: existing.name, to: offered.name, reason: body.reason ?? '', clockReset: integrity.length > 0 });
      await s.publish({ kind: 'trust', subject: `vm/${vmName}`, at });
      void view;
      return {
        value: { vm: vmName, name: record.name, registeredAt: record.registeredAt, by: record.by, changed: true },
        aks: [[vmName, offered.key]],
        integrity,
      };
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
    const nowMs = ctx.now().getTime();
    const out = await ctx.fleet.change(async (s, view) => {
      if (view.fleet === null) throw new ApiError(ApiErrorCode.noPolicy, 'no policy has been published yet');
      await vmOf(s, vmName);
      const result = readmit(view.fleet, vmName, actor, body.reason, nowMs);
      const stored = await s.integrity(vmName);
      const before = stored === null ? null : stored.fingerprint === null ? stored.state : { ...(stored.state as object), fingerprint: stored.fingerprint };
      const state = readmitIntegrity(before, body.mode, nowMs);
      const entry = await storeIntegrity(s, vmName, { fingerprint: stored?.fingerprint ?? null }, state);
      const effects = await storeResult(ctx, s, result, view.fleet);
      await audit(ctx, s, actor, 'trust.readmit', `vm/${vmName}`, { reason: body.reason, mode: body.mode, at: nowIso(ctx) });
      return { value: { trust: result.fleet.trust.get(vmName) ?? noRecord(vmName), effects }, fleet: result.fleet, integrity: [[vmName, entry]] as const };
    });
    countEffects(ctx, out.effects);
    return out.trust;
  });
}
