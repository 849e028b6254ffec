/**
 * Evidence → verdict for one VM, incrementally (DESIGN.md §4 step 4), as a Keylime verifier does it per agent.
 *
 * The verifier's state of a VM (`IntegrityState`, plain JSON for the store's IntegrityRecord) holds: where the
 * replay of PCR 10 stands (entries accepted so far and the running sha256 value), the appraiser's state (entry
 * counter, totals, keys learnt from keyrings), the golden fingerprint (a Keylime runtime policy, in Keylime's JSON)
 * or none yet, the last good quote's clock, and the entries received that no quote has covered yet.
 *
 * An increment carries the entries that follow those sent before — ascii lines of the IMA list (`ima-ng` as
 * `hueguard measure` prints them; any IMA template reads) or parsed entries — and, for a VM with a vTPM, a quote.
 * `processEvidence(state, increment, context)` returns the new state and a verdict; it throws a TrustError, and
 * nothing changes, only when the increment cannot be read or does not follow on (see below).
 *
 * The rules, and why:
 * - First evidence enrolls. A VM without a fingerprint gets one from its first (attested) entries:
 *   `enrollFingerprint`, timed `now` — hueguard's golden fingerprint is its first measurement. That verdict is
 *   good: the first measurement is the reference. Its violations (ToMToU) are accepted that once (the fingerprint
 *   leaves them out); later ones fail unless `violations: 'accept'`. An increment with no entries enrolls nothing.
 * - Later entries are appraised against the fingerprint (appraise.ts). A changed file's new measurement is a
 *   failure naming the path, the digests the fingerprint accepts and the one found; a new file is `unknown`.
 * - A VM with a vTPM (the controller knows its attestation key, `context.ak`): nothing counts until a quote covers
 *   it. The quote must pass every check of verifyQuote — signature by the AK, nonce (`context.nonce`, the one the
 *   controller issued and consumed, else the quote's own claim), PCR digest, safe clock, clock never going back
 *   from the last good quote — and select PCR 10 of the sha256 bank. Then Keylime's rule: the *first* prefix of
 *   the waiting and new entries whose replay equals the quoted PCR 10 is appraised, and the entries beyond it wait
 *   for the next quote (reading the list and quoting are not atomic). No prefix matching is a failed quote. PCR
 *   values may come with the quote (`pcrs`, checked against its digest); without them the quote must select
 *   PCR 10 alone, and the prefix is the one whose value hashes to the quote's PCR digest.
 *   An increment without a quote only adds waiting entries (at most `maxWaiting`).
 * - A VM without a vTPM: the entries are appraised as they come, without a quote (the host's agent vouches for
 *   them); a quote for it is refused (no_attestation_key): the controller must register the AK first.
 * - The verdict is `ok` when the quote (if any) was good and no entry failed; `fresh` when it is also attested
 *   evidence on an enrolled VM: good entries appraised (or none new) under a valid quote, or without a vTPM. Only
 *   fresh evidence makes a VM trusted or keeps it from its deadline (state.ts).
 * - After a failed quote the increment's entries wait with the others (a later good quote may cover them), up to
 *   `maxWaiting`, beyond which they are dropped: no later quote can match then, and the VM needs re-enrollment.
 *   After failing entries (under a good quote) the state moves past them: the list is what it is.
 * - Unreadable evidence (a bad line, bad base64, a quote or PCR file that does not parse) is refused with
 *   bad_evidence and changes nothing: it is no evidence, and a VM that sends only that turns unreachable at its
 *   deadline — what silence would do. An increment whose `from` is not where the verifier stands is refused with
 *   evidence_out_of_order, `details.expected` saying where to resend from.
 * - A reboot (`reboot: true`, `from` 0): the VM's list starts again, so the replay and the appraiser start from
 *   entry 0 with an all-zero PCR; the fingerprint and the quote clock stay (a TPM's clock never goes back).
 * - Only the sha256 bank of PCR 10 is replayed and quoted (ima-replay.ts says why skipping sha1 is sound).
 * - Cost: parsing and compiling a fingerprint cost far more than appraising an increment, so both are cached
 *   (see "the fingerprint, parsed and compiled once per text" below); with the cache warm, an increment of one
 *   entry against a 10,000-path fingerprint takes well under a millisecond here.
 *
 * Re-admission (`readmitIntegrity`): a bad measurement stays in the IMA list and in PCR 10 until the VM reboots
 * (FORMATS.md), so restarting the appraisal from entry 0 against the same fingerprint, as Keylime does when an
 * agent is re-added, would fail on the same entry at once. Two choices, the operator's, with the re-admission:
 * - `baseline`: the list received so far becomes the new baseline. The entries already appraised,
 *   the bad one included, are history and are not appraised again; the replay goes on from where it stands (the
 *   bad entry is in PCR 10, so later quotes still match); the fingerprint stays as it was, so a file measured
 *   again with the bad digest fails again; waiting entries are appraised when a quote covers them. For "the
 *   file was restored, carry on".
 * - `reenroll`: the verifier restarts from entry 0 with no fingerprint, as for a new VM: the agent is asked
 *   (evidence_out_of_order, expected 0) to send the whole list again, which becomes the new fingerprint — the
 *   changed file's new digest included. For "the change was an approved update". The quote clock stays.
 */
import { createHash, type KeyObject } from 'node:crypto';
import { Appraiser, type AppraisalFailure, type AppraiserState, type FailureStatus, type StatusCounts } from '../integrity/appraise.ts';
import { isIntegrityError } from '../integrity/errors.ts';
import { formatAsciiLine, type ImaEntry } from '../integrity/ima-entry.ts';
import { parseAsciiLine } from '../integrity/ima-log.ts';
import { findQuotedPrefix, IMA_PCR, PcrReplay, type ReplaySnapshot } from '../integrity/ima-replay.ts';
import { enrollFingerprint, readRuntimePolicy, writeRuntimePolicy, type RuntimePolicy } from '../integrity/runtime-policy.ts';
import type { HashName } from '../integrity/tpm-marshal.ts';
import { parsePcrFile, type PcrBanks } from '../integrity/tpm-pcr-file.ts';
import type { AttestationKey } from '../integrity/tpm-public.ts';
import { clockStateOf, verifyQuote, type CheckName, type ClockState } from '../integrity/tpm-quote.ts';
import { BoundedMap } from './bounded-map.ts';
import { TrustError, TrustErrorCode } from './errors.ts';
import { isoTime } from './state.ts';

// ---- the state ---------------------------------------------------------------------------------------------------

/** The verifier's state of one VM (plain JSON). */
export interface IntegrityState {
  version: 1;
  /** entries accepted (appraised) so far, and the running sha256 PCR 10 over them (sha1 is not replayed) */
  replay: ReplaySnapshot;
  /** the appraiser's entry counter (always replay.next), totals and learnt keys */
  appraiser: AppraiserState;
  /** the golden fingerprint: a Keylime runtime policy as Keylime writes it; null until the first evidence */
  fingerprint: string | null;
  /** when it was enrolled */
  enrolledAt: string | null;
  /** the last good quote's clock (`clock` in decimal: it is a 64-bit counter) */
  clock: { clock: string; resetCount: number; restartCount: number } | null;
  /** entries received that no quote has covered yet, as ascii lines, in list order */
  waiting: string[];
  /** the last re-admission: when, how, and at which entry */
  readmitted?: { at: string; mode: ReadmitMode; entry: number };
}

export type ReadmitMode = 'baseline' | 'reenroll';

const ZERO_REPLAY = (): ReplaySnapshot => ({ next: 0, pcr: { sha1: '00'.repeat(20), sha256: '00'.repeat(32) } });
const ZERO_APPRAISER = (): AppraiserState => ({ version: 1, next: 0, counts: { ok: 0, excluded: 0, unknown: 0, mismatch: 0, 'bad-signature': 0 }, learnt: [] });

/** The state of a VM the verifier has seen nothing of. */
export function newIntegrityState(): IntegrityState {
  return { version: 1, replay: ZERO_REPLAY(), appraiser: ZERO_APPRAISER(), fingerprint: null, enrolledAt: null, clock: null, waiting: [] };
}

function badState(message: string): never {
  throw new TrustError(TrustErrorCode.badIntegrityState, `integrity state: ${message}`);
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** Reads a stored state back (null or undefined: a new one). Throws bad_integrity_state. */
export function readIntegrityState(raw: unknown): IntegrityState {
  if (raw === null || raw === undefined) return newIntegrityState();
  if (!isObj(raw) || raw.version !== 1) badState('not a version 1 state');
  const r = raw.replay;
  if (!isObj(r) || !isCount(r.next) || !isObj(r.pcr) || typeof r.pcr.sha1 !== 'string' || typeof r.pcr.sha256 !== 'string') badState('bad replay');
  if (!/^[0-9a-f]{40}$/.test(r.pcr.sha1) || !/^[0-9a-f]{64}$/.test(r.pcr.sha256)) badState('bad replay PCR value');
  const a = raw.appraiser;
  if (!isObj(a) || a.version !== 1 || a.next !== r.next) badState('the appraiser is not where the replay is');
  if (raw.fingerprint !== null && typeof raw.fingerprint !== 'string') badState('bad fingerprint');
  if (raw.enrolledAt !== null && typeof raw.enrolledAt !== 'string') badState('bad enrolledAt');
  const c = raw.clock;
  if (c !== null && (!isObj(c) || typeof c.clock !== 'string' || !/^\d+$/.test(c.clock) || !isCount(c.resetCount) || !isCount(c.restartCount))) badState('bad clock');
  if (!Array.isArray(raw.waiting) || !raw.waiting.every((l) => typeof l === 'string')) badState('bad waiting entries');
  return raw as unknown as IntegrityState;
}

/** The entry number (0-based: entries before it) the VM's next increment must start at. */
export function expectedFrom(state: IntegrityState): number {
  return state.replay.next + state.waiting.length;
}

/**
 * The VM's integrity state after an operator re-admits it (see the module comment): `baseline` keeps the list
 * received so far as history, `reenroll` restarts from entry 0 without a fingerprint. The quote clock stays.
 */
export function readmitIntegrity(stateIn: unknown, mode: ReadmitMode, now: number): IntegrityState {
  const st = readIntegrityState(stateIn);
  const at = isoTime(now);
  if (mode === 'reenroll') return { ...newIntegrityState(), clock: st.clock, readmitted: { at, mode, entry: 0 } };
  if (mode !== 'baseline') throw new TrustError(TrustErrorCode.badArgument, `a re-admission is baseline or reenroll, not ${String(mode)}`);
  return { ...st, readmitted: { at, mode, entry: st.replay.next } };
}

// ---- the increment and the verdict --------------------------------------------------------------------------------

/** A quote as the agent sends it. */
export interface QuoteEvidence {
  /** TPMS_ATTEST (`tpm2_quote -m`), base64 */
  attest: string;
  /** TPMT_SIGNATURE (`tpm2_quote -s`), base64 */
  signature: string;
  /** the nonce given to `tpm2_quote -q`, hex */
  nonce: string;
  /** the quoted PCR values: base64 of `tpm2_quote -o` (tpm2-tools' serialized file), or `{ bank: { pcr: hex } }` */
  pcrs?: string | Record<string, Record<string, string>>;
}

export interface EvidenceIncrement {
  /** the entries after those sent before: ascii list lines (blank ones skipped) or parsed entries */
  entries: readonly (string | ImaEntry)[];
  /** how many entries of the VM's list come before these; checked when given (see expectedFrom) */
  from?: number;
  /** the VM booted again: its list starts anew (`from` must then be 0) */
  reboot?: boolean;
  quote?: QuoteEvidence;
  /** the string entries, already parsed by the caller (blank lines left out), in order: not parsed again */
  parsed?: readonly ImaEntry[];
}

export interface EvidenceContext {
  /** epoch ms: the enrollment's timestamp */
  now: number;
  /** the VM's attestation key when it has a vTPM: quotes are then required; none: entries are appraised as they come */
  ak?: KeyObject | Uint8Array | AttestationKey;
  /** the nonce the controller issued for this quote and consumed (hex); the quote's extraData must equal it */
  nonce?: string;
  /** paths the fingerprint enrolled now will not appraise (Python regular expressions, Keylime's excludes) */
  excludes?: readonly string[];
  /** violations (ToMToU) after enrollment: 'fail' (default) or 'accept' (Keylime's shipped behaviour) */
  violations?: 'fail' | 'accept';
  /** most entries kept waiting for a quote (default 100,000) */
  maxWaiting?: number;
  /**
   * whose state this is (a VM's name): the appraiser compiled for it is kept under this key and used again at its
   * next increment. Without one, a single appraiser is kept per fingerprint text.
   */
  key?: string;
}

/** One entry that failed appraisal. */
export interface EntryFailure {
  /** its 1-based number in the VM's list */
  entry: number;
  path: string;
  status: FailureStatus;
  /** the digests the fingerprint accepts for the path (empty: not in the fingerprint) */
  expected: string[];
  found: string;
  alg: string;
}

/** Why a quote failed: a verifyQuote check, `selection` (PCR 10 of sha256 not quoted), `pcr10` (no prefix matches). */
export type QuoteFailure = CheckName | 'selection' | 'pcr10';

export interface QuoteOutcome {
  valid: boolean;
  failed: QuoteFailure | null;
  detail: string;
  /** entries the quote covered (the matching prefix) */
  covered: number;
}

export interface EvidenceVerdict {
  /** nothing failed: the quote (if any) was good and every appraised entry passed */
  ok: boolean;
  /** good, attested evidence on an enrolled VM (what makes a VM trusted, see the module comment) */
  fresh: boolean;
  failures: EntryFailure[];
  quote?: QuoteOutcome;
  /** this increment enrolled the golden fingerprint */
  enrolled: boolean;
  /** entries appraised (or enrolled) now */
  appraised: number;
  /** entries waiting for a quote after this increment */
  waiting: number;
  /** statuses of the entries appraised now */
  counts: StatusCounts;
  /** one line for a transition's reason */
  summary: string;
}

export interface EvidenceResult {
  newState: IntegrityState;
  verdict: EvidenceVerdict;
}

// ---- reading the increment -------------------------------------------------------------------------------------------

const DEFAULT_MAX_WAITING = 100_000;

function badEvidence(message: string, details?: unknown): never {
  throw new TrustError(TrustErrorCode.badEvidence, message, details);
}

function base64(s: unknown, field: string): Buffer {
  if (typeof s !== 'string' || s.length === 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0) badEvidence(`quote.${field} is not base64`, { field: `quote.${field}` });
  return Buffer.from(s, 'base64');
}

function hexBytes(s: unknown, field: string): Buffer {
  if (typeof s !== 'string' || s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) badEvidence(`${field} is not hex`, { field });
  return Buffer.from(s, 'hex');
}

/**
 * Entries as parsed entries and their lines; `first` is the 1-based number of the first. `parsed`, when given,
 * holds the string lines already parsed (blank ones left out), in order.
 */
function readEntries(
  raw: readonly (string | ImaEntry)[],
  first: number,
  onError: (n: number, e: unknown) => never,
  parsed?: readonly ImaEntry[],
): { entries: ImaEntry[]; lines: string[] } {
  const entries: ImaEntry[] = [];
  const lines: string[] = [];
  let k = 0;
  for (const x of raw) {
    const n = first + entries.length;
    if (typeof x === 'string') {
      if (x.trim() === '') continue;
      const known = parsed?.[k++];
      if (known !== undefined) entries.push(known);
      else {
        try {
          entries.push(parseAsciiLine(x, n));
        } catch (e) {
          onError(n, e);
        }
      }
      lines.push(x.endsWith('\n') ? x.slice(0, -1) : x);
    } else {
      entries.push(x);
      lines.push(formatAsciiLine(x));
    }
  }
  return { entries, lines };
}

function pcrBanks(p: QuoteEvidence['pcrs']): PcrBanks | undefined {
  if (p === undefined) return undefined;
  if (typeof p === 'string') {
    try {
      return parsePcrFile(base64(p, 'pcrs'));
    } catch (e) {
      if (e instanceof TrustError) throw e;
      badEvidence(`quote.pcrs: ${(e as Error).message}`, { field: 'quote.pcrs', code: isIntegrityError(e) ? e.code : undefined });
    }
  }
  if (!isObj(p)) badEvidence('quote.pcrs is neither a PCR file nor { bank: { pcr: hex } }', { field: 'quote.pcrs' });
  const out: PcrBanks = new Map();
  for (const [bank, values] of Object.entries(p)) {
    if (!['sha1', 'sha256', 'sha384', 'sha512'].includes(bank) || !isObj(values)) badEvidence(`quote.pcrs: unknown bank ${JSON.stringify(bank)}`, { field: 'quote.pcrs' });
    const m = new Map<number, Uint8Array>();
    for (const [pcr, hex] of Object.entries(values)) {
      const i = Number(pcr);
      if (!Number.isInteger(i) || i < 0 || i > 23) badEvidence(`quote.pcrs.${bank}: no PCR ${JSON.stringify(pcr)}`, { field: `quote.pcrs.${bank}` });
      m.set(i, hexBytes(hex, `quote.pcrs.${bank}.${pcr}`));
    }
    out.set(bank as HashName, m);
  }
  return out;
}

// ---- the fingerprint, parsed and compiled once per text -------------------------------------------------------------

/**
 * Parsing a fingerprint and compiling it into an Appraiser cost far more than appraising a few entries (10,000
 * paths: ~50 ms to parse, ~15 ms to compile, under 1 ms to appraise one entry). So the parsed fingerprints are
 * cached by text, and with each the live Appraiser of its last increment: an increment whose stored appraiser
 * state is exactly the one that Appraiser saved goes on with it instead of compiling a new one (the same state
 * either way, so the cache changes no verdict; a state that was not stored — a rolled-back transaction — just
 * misses). The cache is bounded by the paths it holds, oldest evicted first.
 */
interface CachedFingerprint {
  policy: RuntimePolicy;
  paths: number;
  live?: { appraiser: Appraiser; violations: 'fail' | 'accept'; state: AppraiserState };
}
const CACHE_MAX_PATHS = 500_000;
const fingerprints = new BoundedMap<CachedFingerprint>(CACHE_MAX_PATHS, (c) => c.paths);

function cachedFingerprint(text: string, enrolled?: RuntimePolicy): CachedFingerprint {
  let c = fingerprints.get(text);
  if (c !== undefined) {
    fingerprints.set(text, c); // most recent last
    return c;
  }
  let policy: RuntimePolicy;
  if (enrolled !== undefined) policy = enrolled; // just written from it: no need to read it back
  else {
    try {
      policy = readRuntimePolicy(text);
    } catch (e) {
      badState(`the fingerprint does not read: ${(e as Error).message}`);
    }
  }
  c = { policy, paths: policy.digests.size + policy.keyrings.size + policy.imaBuf.size + 1 };
  fingerprints.set(text, c);
  return c;
}

/** The golden fingerprint of a state, parsed (cached by text). */
export function fingerprintOf(state: IntegrityState): RuntimePolicy | null {
  return state.fingerprint === null ? null : cachedFingerprint(state.fingerprint).policy;
}

/** Whether two saved appraiser states are the same (field by field: a store may reorder a JSON object's keys). */
function sameAppraiserState(a: AppraiserState, b: AppraiserState): boolean {
  if (a === b) return true; // the state this verifier returned, held by the caller as it was (it is frozen)
  if (a.version !== b.version || a.next !== b.next || !isObj(b.counts) || !Array.isArray(b.learnt) || a.learnt.length !== b.learnt.length) return false;
  for (const k of Object.keys(a.counts) as (keyof StatusCounts)[]) if (a.counts[k] !== b.counts[k]) return false;
  return a.learnt.every((k, i) => {
    const o = b.learnt[i];
    return isObj(o) && k.keyring === o.keyring && k.spki === o.spki && k.keyid === o.keyid;
  });
}

/** A saved appraiser state frozen: the live appraiser kept with it can be matched by identity, and no caller can change it. */
function frozenState(a: AppraiserState): AppraiserState {
  Object.freeze(a.counts);
  for (const k of a.learnt) Object.freeze(k);
  Object.freeze(a.learnt);
  return Object.freeze(a);
}

/**
 * Live appraisers kept by the caller's key (a VM's name, `EvidenceContext.key`): VMs enrolled together from the
 * same entries at the same time have the same fingerprint text, so one live appraiser per text would be taken in
 * turn by each and compiled again every time. Bounded by the paths their fingerprints hold, oldest evicted first.
 */
interface Live {
  appraiser: Appraiser;
  violations: 'fail' | 'accept';
  state: AppraiserState;
}
const LIVE_MAX_PATHS = 1_000_000;
const liveByKey = new BoundedMap<{ text: string; live: Live; paths: number }>(LIVE_MAX_PATHS, (e) => e.paths);

/**
 * An Appraiser for `text` in the stored `state` — the live one kept for `key` (or for the text) when it is in
 * exactly that state, else one compiled from the cached fingerprint — and the paths its fingerprint holds.
 */
function appraiserFor(text: string, state: AppraiserState, violations: 'fail' | 'accept', key?: string): { appraiser: Appraiser; paths: number } {
  if (key !== undefined) {
    // taken: whatever happens next, it is not reused unless kept again
    const e = liveByKey.take(key);
    if (e !== undefined) {
      if (e.text === text && e.live.violations === violations && sameAppraiserState(e.live.state, state)) return { appraiser: e.live.appraiser, paths: e.paths };
    }
    const c = cachedFingerprint(text);
    return { appraiser: restoreAppraiser(c.policy, state, violations), paths: c.paths };
  }
  const c = cachedFingerprint(text);
  const live = c.live;
  c.live = undefined; // taken: whatever happens next, it is not reused unless kept again
  if (live !== undefined && live.violations === violations && sameAppraiserState(live.state, state)) return { appraiser: live.appraiser, paths: c.paths };
  return { appraiser: restoreAppraiser(c.policy, state, violations), paths: c.paths };
}

function restoreAppraiser(policy: RuntimePolicy, state: AppraiserState, violations: 'fail' | 'accept'): Appraiser {
  try {
    return Appraiser.restore(policy, state, { violations });
  } catch (e) {
    if (isIntegrityError(e)) badState(e.message);
    throw e;
  }
}

/** Keep `appraiser`, now in the (frozen) state `saved`, for the next increment of `key` (or of the text). */
function keepAppraiser(text: string, appraiser: Appraiser, saved: AppraiserState, violations: 'fail' | 'accept', paths: number, key?: string): void {
  const live = { appraiser, violations, state: saved };
  if (key === undefined) {
    const c = fingerprints.get(text);
    if (c !== undefined) c.live = live;
    return;
  }
  liveByKey.set(key, { text, live, paths });
}

// ---- the quote -----------------------------------------------------------------------------------------------------

type QuoteCheckResult =
  | { ok: false; outcome: QuoteOutcome }
  | { ok: true; outcome: QuoteOutcome; replay: ReplaySnapshot; clock: ClockState };

const quoteFailed = (failed: QuoteFailure, detail: string): QuoteCheckResult => ({ ok: false, outcome: { valid: false, failed, detail, covered: 0 } });

const DIGEST_HASH: ReadonlyMap<number, HashName> = new Map([
  [20, 'sha1'],
  [32, 'sha256'],
  [48, 'sha384'],
  [64, 'sha512'],
]);

function checkQuote(q: QuoteEvidence, ctx: EvidenceContext, st: IntegrityState, entries: readonly ImaEntry[]): QuoteCheckResult {
  if (!isObj(q)) badEvidence('quote is not an object', { field: 'quote' });
  const attest = base64(q.attest, 'attest');
  const signature = base64(q.signature, 'signature');
  const nonceHex = ctx.nonce ?? q.nonce;
  if (typeof nonceHex !== 'string' || nonceHex === '') return quoteFailed('nonce', 'no nonce: a quote without the verifier’s nonce proves no freshness');
  const nonce = hexBytes(nonceHex, ctx.nonce !== undefined ? 'the issued nonce' : 'quote.nonce');
  const pcrs = pcrBanks(q.pcrs);
  const previousClock = st.clock === null ? undefined : { clock: BigInt(st.clock.clock), resetCount: st.clock.resetCount, restartCount: st.clock.restartCount };
  let r: ReturnType<typeof verifyQuote>;
  try {
    r = verifyQuote({ attest, signature, ak: ctx.ak as NonNullable<EvidenceContext['ak']>, nonce, pcrs, previousClock });
  } catch (e) {
    if (!isIntegrityError(e)) throw e;
    badEvidence(`the quote does not read: ${e.message}`, { field: 'quote', code: e.code });
  }
  if (!r.valid) {
    const c = r.checks.find((x) => !x.ok);
    return quoteFailed(r.failed as CheckName, c?.detail ?? String(r.failed));
  }
  const sel = r.attest.quote?.pcrSelect ?? [];
  if (!sel.some((s) => s.bank === 'sha256' && s.pcrs.includes(IMA_PCR))) return quoteFailed('selection', `the quote does not cover PCR ${IMA_PCR} of the sha256 bank`);
  const clock = clockStateOf(r.attest);
  let found: { count: number; state: ReplaySnapshot } | null;
  if (pcrs !== undefined) {
    // pcrDigest was checked against these values over the selection, which holds sha256:10
    const value = pcrs.get('sha256')?.get(IMA_PCR) as Uint8Array;
    found = findQuotedPrefix(st.replay, entries, { bank: 'sha256', value }, { banks: ['sha256'] });
  } else {
    const alone = sel.every((s) => s.pcrs.length === 0 || (s.bank === 'sha256' && s.pcrs.length === 1));
    if (!alone) return quoteFailed('selection', `without PCR values, a quote must select PCR ${IMA_PCR} of the sha256 bank alone`);
    const digest = r.attest.quote?.pcrDigest ?? new Uint8Array(0);
    const hash = DIGEST_HASH.get(digest.length);
    if (hash === undefined) return quoteFailed('pcrDigest', `a PCR digest of ${digest.length} bytes`);
    found = prefixByDigest(st.replay, entries, hash, Buffer.from(digest));
  }
  if (found === null) {
    return quoteFailed('pcr10', `no prefix of the ${entries.length} entries after entry ${st.replay.next} replays to the quoted PCR ${IMA_PCR}`);
  }
  const detail = `quote valid; PCR ${IMA_PCR} covers ${found.count} of ${entries.length} entries`;
  return { ok: true, outcome: { valid: true, failed: null, detail, covered: found.count }, replay: found.state, clock };
}

/** The first prefix whose sha256 PCR 10 hashes (with the quote's hash) to the quoted PCR digest. */
function prefixByDigest(from: ReplaySnapshot, entries: readonly ImaEntry[], hash: HashName, digest: Buffer): { count: number; state: ReplaySnapshot } | null {
  const r = new PcrReplay(from, { banks: ['sha256'] });
  const matches = () => createHash(hash).update(r.value('sha256')).digest().equals(digest);
  if (matches()) return { count: 0, state: r.snapshot() };
  for (let i = 0; i < entries.length; i++) {
    r.extend(entries[i]);
    if (entries[i].pcr === r.pcrIndex && matches()) return { count: i + 1, state: r.snapshot() };
  }
  return null;
}

// ---- processing an increment -----------------------------------------------------------------------------------------

const short = (hex: string) => (hex.length > 16 ? `${hex.slice(0, 12)}…` : hex);

function describeFailures(failures: readonly EntryFailure[], appraised: number): string {
  const shown = failures.slice(0, 3).map((f) => {
    if (f.status === 'unknown') return `${f.path} (not in the fingerprint; found ${short(f.found)})`;
    if (f.status === 'bad-signature') return `${f.path} (bad signature; found ${short(f.found)})`;
    return `${f.path} (expected ${f.expected.map(short).join(' or ') || 'nothing'}, found ${short(f.found)})`;
  });
  const more = failures.length > 3 ? `; and ${failures.length - 3} more` : '';
  return `${failures.length} of ${appraised} entries failed appraisal: ${shown.join('; ')}${more}`;
}

const toFailure = (f: AppraisalFailure): EntryFailure => ({ entry: f.entry, path: f.path, status: f.status, expected: f.expected, found: f.found, alg: f.alg });

/** The replay of increments without a quote, resumed for each (processEvidence is synchronous: never two at once). */
const SHA256_REPLAY = new PcrReplay(undefined, { banks: ['sha256'] });

const zeroCounts = (): StatusCounts => ({ ok: 0, excluded: 0, unknown: 0, mismatch: 0, 'bad-signature': 0 });

/**
 * Processes one evidence increment of a VM (see the module comment): `stateIn` is its stored integrity state (null
 * for a VM seen for the first time). Returns the new state to store and the verdict for the trust engine.
 * Throws (and nothing changes) bad_evidence, evidence_out_of_order, evidence_backlog, no_attestation_key,
 * bad_integrity_state.
 */
export function processEvidence(stateIn: unknown, inc: EvidenceIncrement, ctx: EvidenceContext): EvidenceResult {
  let st = readIntegrityState(stateIn);
  const maxWaiting = ctx.maxWaiting ?? DEFAULT_MAX_WAITING;
  if (!isObj(inc) || !Array.isArray(inc.entries)) badEvidence('an increment is { entries, from?, reboot?, quote? }');
  if (inc.reboot === true) {
    if (inc.from !== undefined && inc.from !== 0) throw new TrustError(TrustErrorCode.evidenceOutOfOrder, 'after a reboot the list starts at entry 0', { expected: 0, got: inc.from });
    st = { ...st, replay: ZERO_REPLAY(), appraiser: { ...ZERO_APPRAISER(), counts: st.appraiser.counts }, waiting: [] };
  }
  const expected = expectedFrom(st);
  if (inc.from !== undefined && inc.from !== expected) {
    throw new TrustError(TrustErrorCode.evidenceOutOfOrder, `the increment starts at entry ${inc.from}; the verifier expects entry ${expected}`, { expected, got: inc.from });
  }
  if (inc.quote !== undefined && ctx.ak === undefined) {
    throw new TrustError(TrustErrorCode.noAttestationKey, 'a quote for a VM without a known attestation key: register its AK first');
  }
  const incoming = readEntries(
    inc.entries,
    expected + 1,
    (n, e) => badEvidence(`entry ${n}: ${(e as Error).message}`, { entry: n, code: isIntegrityError(e) ? e.code : undefined }),
    inc.parsed,
  );
  const held = readEntries(st.waiting, st.replay.next + 1, (n, e) => badState(`waiting entry ${n}: ${(e as Error).message}`));
  const all = [...held.entries, ...incoming.entries];
  const allLines = [...held.lines, ...incoming.lines];

  let covered = all.length;
  let quote: QuoteOutcome | undefined;
  let replay: ReplaySnapshot;
  let clock = st.clock;
  if (ctx.ak !== undefined) {
    if (inc.quote === undefined) {
      if (allLines.length > maxWaiting) {
        throw new TrustError(TrustErrorCode.evidenceBacklog, `${allLines.length} entries would wait for a quote, at most ${maxWaiting}: send a quote`, { waiting: allLines.length, max: maxWaiting });
      }
      const newState = { ...st, waiting: allLines };
      const summary = `no quote: ${allLines.length} entries wait for one`;
      return { newState, verdict: { ok: true, fresh: false, failures: [], enrolled: false, appraised: 0, waiting: allLines.length, counts: zeroCounts(), summary } };
    }
    const q = checkQuote(inc.quote, ctx, st, all);
    quote = q.outcome;
    if (!q.ok) {
      const waiting = allLines.slice(0, maxWaiting);
      const newState = { ...st, waiting };
      const summary = `quote failed (${q.outcome.failed}): ${q.outcome.detail}`;
      return { newState, verdict: { ok: false, fresh: false, failures: [], quote, enrolled: false, appraised: 0, waiting: waiting.length, counts: zeroCounts(), summary } };
    }
    covered = q.outcome.covered;
    replay = q.replay;
    clock = { clock: q.clock.clock.toString(), resetCount: q.clock.resetCount, restartCount: q.clock.restartCount };
  } else {
    const r = SHA256_REPLAY.resume(st.replay);
    for (const e of all) r.extend(e);
    replay = r.snapshot();
  }

  const appraisedEntries = all.slice(0, covered);
  const waiting = allLines.slice(covered);
  let fingerprint = st.fingerprint;
  let enrolledAt = st.enrolledAt;
  let enrolled = false;
  let appraiser: Appraiser | null = null;
  let paths = 0;
  let enrolledPolicy: RuntimePolicy | null = null;
  const violations = ctx.violations ?? 'fail';
  if (fingerprint === null && appraisedEntries.length > 0) {
    enrolledAt = isoTime(ctx.now);
    const policy = enrollFingerprint(appraisedEntries, { timestamp: enrolledAt, excludes: ctx.excludes });
    fingerprint = writeRuntimePolicy(policy);
    enrolledPolicy = policy;
    enrolled = true;
    // violations of the first measurement are accepted with it (the fingerprint leaves them out)
    appraiser = restoreAppraiser(policy, st.appraiser, 'accept');
  } else if (fingerprint !== null) {
    ({ appraiser, paths } = appraiserFor(fingerprint, st.appraiser, violations, ctx.key));
  }
  const v = appraiser?.appraise(appraisedEntries) ?? { ok: true, counts: zeroCounts(), failures: [] };
  const saved = frozenState(appraiser?.saveState() ?? { version: 1, next: replay.next, counts: { ...st.appraiser.counts }, learnt: st.appraiser.learnt.map((k) => ({ ...k })) });
  if (appraiser !== null && fingerprint !== null) {
    if (!enrolled) keepAppraiser(fingerprint, appraiser, saved, violations, paths, ctx.key);
    else if (ctx.key !== undefined) {
      // The VM's next increment goes on from here: its fingerprint cached as the policy just enrolled and an
      // appraiser kept in the mode later increments use, so that increment does not read and compile it again
      // (a fleet enrolled together would otherwise pay that for every VM at once, at its second increment).
      const c = cachedFingerprint(fingerprint, enrolledPolicy as RuntimePolicy);
      const next = violations === 'accept' ? appraiser : restoreAppraiser(c.policy, saved, violations);
      keepAppraiser(fingerprint, next, saved, violations, c.paths, ctx.key);
    }
  }
  // built field by field (not spread from the state read): this path runs for every increment
  const newState: IntegrityState = { version: 1, replay, appraiser: saved, fingerprint, enrolledAt, clock, waiting };
  if (st.readmitted !== undefined) newState.readmitted = st.readmitted;
  if (newState.appraiser.next !== newState.replay.next) badState('the appraiser and the replay went apart');
  const failures = v.failures.map(toFailure);
  const ok = v.ok;
  const isFresh = ok && fingerprint !== null;
  const parts: string[] = [];
  if (quote !== undefined) parts.push(quote.detail);
  if (enrolled) parts.push(`enrolled the golden fingerprint from ${appraisedEntries.length} entries`);
  else if (!ok) parts.push(describeFailures(failures, appraisedEntries.length));
  else if (fingerprint === null) parts.push('no entries yet: nothing to enroll');
  else parts.push(appraisedEntries.length === 0 ? 'no new entries' : `${appraisedEntries.length} entries appraised: all good`);
  if (waiting.length > 0) parts.push(`${waiting.length} wait for the next quote`);
  return {
    newState,
    verdict: { ok, fresh: isFresh, failures, quote, enrolled, appraised: appraisedEntries.length, waiting: waiting.length, counts: v.counts, summary: parts.join('; ') },
  };
}
