/**
 * Verifying a TPM 2.0 quote (FORMATS.md, "Checks a verifier makes"): magic, type, signature by the attestation
 * key, nonce, PCR digest, safe clock, and a clock that never runs backwards. Every check is made and reported;
 * `failed` names the first that failed. Structures that cannot be read throw an IntegrityError instead: there is
 * nothing to check in them.
 *
 * Verification is on the hot path of an attestation server, so keys are resolved once and cached, and the attest
 * bytes are parsed once and hashed by node:crypto's verify itself. `verifyQuote` verifies on the calling thread;
 * `verifyQuoteAsync` / `verifyQuotes` in libuv's thread pool, so that quotes in flight together use every core
 * (one core's OpenSSL does ~10,000 ECDSA P-256 verifications a second here: not enough on its own).
 */
import * as nodeCrypto from 'node:crypto';
import { constants, createHash, KeyObject, verify } from 'node:crypto';
import { IntegrityError } from './errors.ts';
import { parseAttest, parseSignature, TPM_GENERATED_VALUE, TPM_ST_ATTEST_QUOTE, type Attest, type TpmSignature } from './tpm-attest.ts';
import { ecdsaP1363, hashById, TPM_ALG, toHex, type HashName, type PcrSelection } from './tpm-marshal.ts';
import type { PcrBanks } from './tpm-pcr-file.ts';
import { attestationKeyFromKeyObject, loadAttestationKey, TPMA_OBJECT, type AttestationKey, type TpmPublic } from './tpm-public.ts';

export type CheckName = 'magic' | 'type' | 'signature' | 'nonce' | 'pcrDigest' | 'safe' | 'clock';
export const CHECK_ORDER: readonly CheckName[] = ['magic', 'type', 'signature', 'nonce', 'pcrDigest', 'safe', 'clock'];

export interface QuoteCheck {
  name: CheckName;
  ok: boolean;
  detail: string;
}

/** What a verifier remembers of a TPM's last good quote. */
export interface ClockState {
  clock: bigint;
  resetCount: number;
  restartCount: number;
}

export interface VerifyQuoteInput {
  /** TPMS_ATTEST bytes (`tpm2_quote -m`) */
  attest: Uint8Array;
  /** TPMT_SIGNATURE (`-f tss`, the default) or the bare signature (`-f plain`) */
  signature: Uint8Array;
  /** the attestation key: a KeyObject, an AK file (PEM, DER or TPM2B_PUBLIC), or one loaded before */
  ak: KeyObject | Uint8Array | AttestationKey;
  /** the verifier's nonce: extraData must equal it (checked when given) */
  nonce?: Uint8Array;
  /** PCR values: pcrDigest must be their hash (checked when given) */
  pcrs?: PcrBanks;
  /** the last good quote's clock (checked when given) */
  previousClock?: ClockState;
  /** 'tpmt' (default): a TPMT_SIGNATURE; 'plain': raw PKCS#1 / PSS bytes, or DER (or r‖s) for ECDSA */
  signatureFormat?: 'tpmt' | 'plain';
  /** plain signatures carry no hash: default the AK's scheme hash when known, else sha256 */
  hash?: HashName;
  /** plain RSA signatures carry no scheme: default the AK's scheme when known, else RSASSA */
  plainScheme?: 'rsassa' | 'rsapss';
}

export interface QuoteVerification {
  valid: boolean;
  failed: CheckName | null;
  /** the checks made, in CHECK_ORDER; nonce, pcrDigest and clock only when their input was given */
  checks: QuoteCheck[];
  attest: Attest;
  /** the quote's extraData, hex */
  nonce: string;
  /** the quote's pcrDigest, hex ('' when the attest is not a quote) */
  pcrDigest: string;
}

// ---------------------------------------------------------------------------------------------------------------
// Keys: resolved once

const byKeyObject = new WeakMap<KeyObject, AttestationKey>();
/** AK files by content (not by array identity: a caller may reuse a buffer); bounded, oldest evicted first. */
const byContent = new Map<string, AttestationKey>();
const CONTENT_CACHE_MAX = 64;

export function resolveAttestationKey(ak: KeyObject | Uint8Array | AttestationKey): AttestationKey {
  if (ak instanceof KeyObject) {
    let k = byKeyObject.get(ak);
    if (!k) byKeyObject.set(ak, (k = attestationKeyFromKeyObject(ak)));
    return k;
  }
  if (ak instanceof Uint8Array) {
    const id = Buffer.from(ak.buffer, ak.byteOffset, ak.byteLength).toString('latin1');
    let k = byContent.get(id);
    if (!k) {
      k = loadAttestationKey(ak);
      if (byContent.size >= CONTENT_CACHE_MAX) byContent.delete(byContent.keys().next().value as string);
      byContent.set(id, k);
    }
    return k;
  }
  return ak;
}

// ---------------------------------------------------------------------------------------------------------------
// The checks, each usable on its own

export function checkMagic(a: Attest): QuoteCheck {
  const ok = a.magic === TPM_GENERATED_VALUE;
  return { name: 'magic', ok, detail: ok ? 'TPM_GENERATED_VALUE' : `magic 0x${a.magic.toString(16).padStart(8, '0')}, not TPM_GENERATED_VALUE (0xff544347)` };
}

export function checkType(a: Attest): QuoteCheck {
  const ok = a.type === TPM_ST_ATTEST_QUOTE && a.quote !== undefined;
  return { name: 'type', ok, detail: ok ? 'TPM_ST_ATTEST_QUOTE' : `type 0x${a.type.toString(16).padStart(4, '0')}, not a quote (0x8018)` };
}

export function checkNonce(a: Attest, nonce: Uint8Array): QuoteCheck {
  const ok = Buffer.from(a.extraData.buffer, a.extraData.byteOffset, a.extraData.byteLength).equals(nonce);
  return { name: 'nonce', ok, detail: ok ? 'extraData equals the nonce' : `extraData ${toHex(a.extraData) || '(empty)'} is not the nonce ${toHex(nonce) || '(empty)'}` };
}

export function checkSafe(a: Attest): QuoteCheck {
  const ok = a.clockInfo.safe === 1;
  return { name: 'safe', ok, detail: ok ? 'clock is safe' : 'clockInfo.safe = 0: the TPM clock may have been reported higher before (disorderly shutdown)' };
}

/**
 * resetCount never decreases; restartCount never decreases within one resetCount (a TPM Reset sets it back to
 * 0); clock never decreases (it survives resets and is only zeroed by TPM2_Clear, which also changes the AK).
 */
export function checkClock(a: Attest, prev: ClockState): QuoteCheck {
  const c = a.clockInfo;
  let problem = '';
  if (c.resetCount < prev.resetCount) problem = `resetCount went back from ${prev.resetCount} to ${c.resetCount}`;
  else if (c.resetCount === prev.resetCount && c.restartCount < prev.restartCount) {
    problem = `restartCount went back from ${prev.restartCount} to ${c.restartCount} without a reset`;
  } else if (c.clock < prev.clock) problem = `clock went back from ${prev.clock} to ${c.clock}`;
  return { name: 'clock', ok: problem === '', detail: problem || 'clock, resetCount and restartCount did not go back' };
}

/**
 * H(selected PCR values, bank by bank in selection order, ascending within a bank) — what TPM2_Quote puts in
 * pcrDigest, H being the signing scheme's hash (not the banks' own). A string says why it cannot be computed.
 */
export function computePcrDigest(selection: readonly PcrSelection[], pcrs: PcrBanks, hash: HashName): Uint8Array | string {
  // gathered into one buffer and hashed in one call: a Hash object and an update per PCR cost ~3 µs a quote more
  let n = 0;
  for (const sel of selection) {
    if (sel.pcrs.length === 0) continue;
    const bank = sel.bank === null ? undefined : pcrs.get(sel.bank);
    for (const pcr of sel.pcrs) {
      const v = bank?.get(pcr);
      if (!v) return `no value given for PCR ${sel.bank ?? `0x${sel.hashAlg.toString(16).padStart(4, '0')}`}:${pcr}`;
      if (n + v.length > pcrScratch.length) pcrScratch = grow(pcrScratch, n + v.length);
      pcrScratch.set(v, n);
      n += v.length;
    }
  }
  return hashOnce(hash, pcrScratch.subarray(0, n));
}

let pcrScratch: Buffer = Buffer.allocUnsafe(32 * 64);
function grow(b: Buffer, need: number): Buffer {
  const c = Buffer.allocUnsafe(Math.max(need, b.length * 2));
  b.copy(c);
  return c;
}

/** crypto.hash (Node ≥ 20.12) hashes in one call; older Node 20 releases go through a Hash object. */
const oneShot = (nodeCrypto as { hash?: typeof nodeCrypto.hash }).hash;
function hashOnce(hash: HashName, b: Buffer): Uint8Array {
  return typeof oneShot === 'function' ? oneShot(hash, b, 'buffer') : createHash(hash).update(b).digest();
}

export function checkPcrDigest(a: Attest, pcrs: PcrBanks, hash: HashName): QuoteCheck {
  if (!a.quote) return { name: 'pcrDigest', ok: false, detail: 'not a quote: no pcrDigest' };
  const d = computePcrDigest(a.quote.pcrSelect, pcrs, hash);
  if (typeof d === 'string') return { name: 'pcrDigest', ok: false, detail: d };
  const ok = Buffer.from(d).equals(a.quote.pcrDigest);
  return {
    name: 'pcrDigest',
    ok,
    detail: ok ? `${hash} of the selected PCR values equals pcrDigest` : `${hash} of the given PCR values is ${toHex(d)}, the quote says ${toHex(a.quote.pcrDigest)}`,
  };
}

/**
 * Why a TPM public area cannot be trusted as an AK, or ''. Only a restricted key refuses to sign a forged
 * TPMS_ATTEST, and only a fixedTPM/fixedParent/sensitiveDataOrigin key was made in, and never leaves, its TPM
 * (the AK template of TCG's "TPM 2.0 Keys for Device Identity and Attestation"). A PEM key carries no attributes.
 */
const AK_ATTRIBUTES = TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent | TPMA_OBJECT.sensitiveDataOrigin | TPMA_OBJECT.restricted | TPMA_OBJECT.sign;
function akProblem(pub: TpmPublic): string {
  const a = pub.objectAttributes;
  if ((a & AK_ATTRIBUTES) !== AK_ATTRIBUTES || a & TPMA_OBJECT.decrypt) {
    return `the AK (attributes 0x${(a >>> 0).toString(16).padStart(8, '0')}) is not a fixedTPM, fixedParent, sensitiveDataOrigin, restricted signing key`;
  }
  return '';
}

export interface SignatureOutcome {
  check: QuoteCheck;
  /** the hash the signature is over, also the pcrDigest's hash */
  hash: HashName;
}

type VerifyKey = Parameters<typeof verify>[2];

/**
 * The signature check as work still to do, so that the sync and the async verifier share every decision and every
 * message: `early` is a verdict known without OpenSSL; otherwise the attempts are tried in turn, any true is ok.
 */
interface SignaturePlan {
  hash: HashName;
  label: string;
  early?: string;
  attempts: { key: VerifyKey; sig: Uint8Array }[];
}

function outcomeOf(plan: SignaturePlan, ok: boolean): SignatureOutcome {
  const detail = plan.early ?? (ok ? `${plan.label} signature by the AK` : `${plan.label} signature does not verify with the AK`);
  return { check: { name: 'signature', ok: plan.early === undefined && ok, detail }, hash: plan.hash };
}

function runPlanSync(plan: SignaturePlan, data: Uint8Array): SignatureOutcome {
  let ok = false;
  if (plan.early === undefined) {
    for (const a of plan.attempts) {
      try {
        ok = verify(plan.hash, data, a.key, a.sig);
      } catch {
        // wrong length, malformed DER, key/scheme mismatch: a bad signature, not an error of the verifier
        ok = false;
      }
      if (ok) break;
    }
  }
  return outcomeOf(plan, ok);
}

/**
 * The same in libuv's thread pool (crypto.verify's callback form): many in flight use every core. Callbacks, not
 * promises, and plain functions, not closures made per quote: the calling thread's work per quote is what limits
 * how fast the pool can be fed. `done` is called synchronously when OpenSSL is not needed.
 */
function runPlanAsync(plan: SignaturePlan, data: Uint8Array, done: (o: SignatureOutcome) => void): void {
  if (plan.early !== undefined || plan.attempts.length === 0) done(outcomeOf(plan, false));
  else attemptAsync(plan, data, 0, done);
}
function attemptAsync(plan: SignaturePlan, data: Uint8Array, i: number, done: (o: SignatureOutcome) => void): void {
  const a = plan.attempts[i];
  try {
    verify(plan.hash, data, a.key, a.sig, (e, ok) => attemptDone(plan, data, i, done, e === null && ok));
  } catch {
    attemptDone(plan, data, i, done, false); // as in the sync form: a bad signature
  }
}
function attemptDone(plan: SignaturePlan, data: Uint8Array, i: number, done: (o: SignatureOutcome) => void, ok: boolean): void {
  if (ok || i + 1 === plan.attempts.length) done(outcomeOf(plan, ok));
  else attemptAsync(plan, data, i + 1, done);
}

function planSignature(sig: TpmSignature, ak: AttestationKey): SignaturePlan {
  const label = `${sig.scheme.toUpperCase()}/${sig.hash}`;
  const plan: SignaturePlan = { hash: sig.hash, label, attempts: [] };
  if (ak.public) {
    const p = akProblem(ak.public);
    if (p) return { ...plan, early: p };
    const s = ak.public.scheme;
    // A restricted key signs only with its own scheme: anything else was not made by this key in a TPM.
    if (s && (s.alg !== sig.sigAlg || s.hashAlg !== sig.hashAlg)) {
      const want = `${schemeName(s.alg)}/${hashById(s.hashAlg ?? 0)?.name ?? '?'}`;
      return { ...plan, early: `${label} signature, but the AK's scheme is ${want}` };
    }
  }
  if (sig.scheme === 'ecdsa') {
    if (ak.kind !== 'ec') return { ...plan, early: `${label} signature, but the AK is an RSA key` };
    const rs = ecdsaP1363(sig.r, sig.s, ak.curveBytes);
    if (rs !== null) plan.attempts.push({ key: p1363Key(ak), sig: rs });
  } else {
    if (ak.kind !== 'rsa') return { ...plan, early: `${label} signature, but the AK is an EC key` };
    plan.attempts.push({ key: rsaKey(ak.key, sig.scheme), sig: sig.sig });
  }
  return plan;
}

export function checkSignature(attestBytes: Uint8Array, sig: TpmSignature, ak: AttestationKey): SignatureOutcome {
  return runPlanSync(planSignature(sig, ak), attestBytes);
}

/** Key options made once per AK: verify() then reads no new object's properties per quote. */
const p1363Keys = new WeakMap<AttestationKey, VerifyKey>();
function p1363Key(ak: AttestationKey): VerifyKey {
  let k = p1363Keys.get(ak);
  if (k === undefined) p1363Keys.set(ak, (k = { key: ak.key, dsaEncoding: 'ieee-p1363' }));
  return k;
}

/** PSS: TPMs use salt length = hash length; AUTO also accepts that and the maximum, as OpenSSL does. */
function rsaKey(key: KeyObject, scheme: 'rsassa' | 'rsapss') {
  if (scheme === 'rsapss') return { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO };
  // PKCS#1 v1.5 is the default for an 'rsa' key; the bare KeyObject skips an options object on the hot path
  return key.asymmetricKeyType === 'rsa' ? key : { key, padding: constants.RSA_PKCS1_PADDING };
}

function schemeName(alg: number): string {
  return alg === TPM_ALG.rsassa ? 'RSASSA' : alg === TPM_ALG.rsapss ? 'RSAPSS' : alg === TPM_ALG.ecdsa ? 'ECDSA' : `0x${alg.toString(16).padStart(4, '0')}`;
}

interface PlainOptions {
  hash?: HashName;
  plainScheme?: 'rsassa' | 'rsapss';
}

function planPlainSignature(sig: Uint8Array, ak: AttestationKey, opts: PlainOptions): SignaturePlan {
  const s = ak.public?.scheme ?? null;
  const hash = opts.hash ?? (s?.hashAlg != null ? hashById(s.hashAlg)?.name : undefined) ?? 'sha256';
  if (ak.public) {
    const p = akProblem(ak.public);
    // the label is not shown when there is an early verdict
    if (p) return { hash, label: '', early: p, attempts: [] };
  }
  if (ak.kind === 'ec') {
    // tpm2-tools writes DER; r‖s of exactly twice the field size is accepted too.
    const attempts: SignaturePlan['attempts'] = [{ key: { key: ak.key, dsaEncoding: 'der' }, sig }];
    if (sig.length === 2 * ak.curveBytes) attempts.push({ key: p1363Key(ak), sig });
    return { hash, label: `plain ECDSA/${hash}`, attempts };
  }
  const scheme = opts.plainScheme ?? (s?.alg === TPM_ALG.rsapss ? 'rsapss' : 'rsassa');
  return { hash, label: `plain ${scheme.toUpperCase()}/${hash}`, attempts: [{ key: rsaKey(ak.key, scheme), sig }] };
}

/** `-f plain`: no TPMT header, so the scheme and hash come from the AK's public area or the caller. */
export function checkPlainSignature(attestBytes: Uint8Array, sig: Uint8Array, ak: AttestationKey, opts: PlainOptions = {}): SignatureOutcome {
  return runPlanSync(planPlainSignature(sig, ak, opts), attestBytes);
}

// ---------------------------------------------------------------------------------------------------------------
// The verifier

/** What a quote needs before its signature is verified: parsed, its key resolved, the signature check planned. */
interface PreparedQuote {
  attest: Attest;
  plan: SignaturePlan;
}

function prepareQuote(input: VerifyQuoteInput): PreparedQuote {
  const attest = parseAttest(input.attest);
  const ak = resolveAttestationKey(input.ak);
  const plan = input.signatureFormat === 'plain' ? planPlainSignature(input.signature, ak, input) : planSignature(parseSignature(input.signature), ak);
  return { attest, plan };
}

function finishQuote(input: VerifyQuoteInput, attest: Attest, sig: SignatureOutcome): QuoteVerification {
  const checks: QuoteCheck[] = [checkMagic(attest), checkType(attest), sig.check];
  if (input.nonce) checks.push(checkNonce(attest, input.nonce));
  if (input.pcrs) checks.push(checkPcrDigest(attest, input.pcrs, sig.hash));
  checks.push(checkSafe(attest));
  if (input.previousClock) checks.push(checkClock(attest, input.previousClock));
  const failed = checks.find((c) => !c.ok)?.name ?? null;
  return {
    valid: failed === null,
    failed,
    checks,
    attest,
    nonce: toHex(attest.extraData),
    pcrDigest: attest.quote ? toHex(attest.quote.pcrDigest) : '',
  };
}

/**
 * Makes every check and reports them. Throws an IntegrityError (tpm_truncated, tpm_bad_structure,
 * tpm_unsupported) when the attest, the signature or the key cannot be read.
 */
export function verifyQuote(input: VerifyQuoteInput): QuoteVerification {
  const { attest, plan } = prepareQuote(input);
  return finishQuote(input, attest, runPlanSync(plan, input.attest));
}

/**
 * verifyQuote with the signature verified in libuv's thread pool: the same result, or the same IntegrityError as a
 * rejection. One call uses one pool thread; with many in flight (verifyQuotes, or concurrent requests) every core
 * verifies, while parsing and the other checks stay on the calling thread.
 */
export function verifyQuoteAsync(input: VerifyQuoteInput): Promise<QuoteVerification> {
  return new Promise((resolve, reject) => {
    let p: PreparedQuote;
    try {
      p = prepareQuote(input);
    } catch (e) {
      reject(e);
      return;
    }
    runPlanAsync(p.plan, input.attest, (o) => {
      try {
        resolve(finishQuote(input, p.attest, o));
      } catch (e) {
        reject(e);
      }
    });
  });
}

/**
 * Many quotes, `inFlight` at a time (default 64: enough to keep every pool thread busy, few enough that queued
 * copies of the inputs stay small). Results in input order; a quote that cannot be read is its IntegrityError.
 * One promise for the batch, none per quote.
 */
export function verifyQuotes(inputs: readonly VerifyQuoteInput[], opts: { inFlight?: number } = {}): Promise<(QuoteVerification | IntegrityError)[]> {
  return new Promise((resolve, reject) => {
    const n = inputs.length;
    const out = new Array<QuoteVerification | IntegrityError>(n);
    let next = 0;
    let finished = 0;
    let failed = false;
    const fail = (e: unknown): void => {
      failed = true;
      reject(e);
    };
    // one lane: quotes one after another until one goes to the pool, whose callback carries the lane on
    const lane = (): void => {
      while (next < n && !failed) {
        const i = next++;
        const input = inputs[i];
        let p: PreparedQuote;
        try {
          p = prepareQuote(input);
        } catch (e) {
          if (!(e instanceof IntegrityError)) return fail(e);
          out[i] = e;
          finished++;
          continue;
        }
        let inPool = false;
        let doneHere = false;
        runPlanAsync(p.plan, input.attest, (o) => {
          try {
            out[i] = finishQuote(input, p.attest, o);
          } catch (e) {
            return fail(e);
          }
          finished++;
          if (!inPool) doneHere = true;
          else if (finished === n) resolve(out);
          else lane();
        });
        inPool = !doneHere;
        if (inPool) return;
      }
      if (finished === n && !failed) resolve(out);
    };
    const lanes = Math.max(1, Math.min(opts.inFlight ?? 64, n));
    for (let k = 0; k < lanes && !failed; k++) lane();
  });
}

/** What `hueguard quote verify --json` prints (the full result holds bigints, which JSON cannot). */
export function quoteSummary(r: QuoteVerification): { valid: boolean; failed: CheckName | null; nonce: string; pcrDigest: string } {
  return { valid: r.valid, failed: r.failed, nonce: r.nonce, pcrDigest: r.pcrDigest };
}

/** The clock to remember after a good quote, for the next one's `previousClock`. */
export function clockStateOf(a: Attest): ClockState {
  return { clock: a.clockInfo.clock, resetCount: a.clockInfo.resetCount, restartCount: a.clockInfo.restartCount };
}
