/**
 * Appraisal: each IMA entry against a runtime policy (FORMATS.md "Keylime runtime policy", Keylime's
 * keylime/ima/ima.py `_validate_ima_ng`, `_validate_ima_sig`, `_validate_ima_buf`), with IMA signature verification
 * (`signature_v2_hdr`, keylime/ima/file_signatures.py) and keys learnt from keyring measurements.
 *
 * Statuses, decided in this order for one entry:
 * 1. `excluded` — the policy's excludes match the name at its start (every template: Keylime also applies them to
 *    keyring and ima-buf names). An excluded keyring entry teaches no key (Keylime learns it: a deviation).
 * 2. Violation (all-zero template hash): `mismatch` (found = the zero digest) by default; with
 *    `violations: 'accept'` it is `excluded`, which is Keylime's shipped behaviour (ignore_tomtou_errors = False
 *    skips such entries without a failure).
 * 3. `ima`, `ima-ng`: `boot_aggregate` is checked against `digests.boot_aggregate` plus `bootAggregates` when either
 *    has values, else `ok` (the quote's PCRs 0–9 are the reference then). Other names: not in `digests` → `unknown`;
 *    digest not listed → `mismatch`.
 * 4. `ima-sig`: a signature that verifies with a known key (policy `verification-keys`, `keys` given, keys learnt)
 *    → `ok`. Otherwise the digest check of 3 applies; when that fails too and the signature was *wrong* —
 *    malformed, of another hash algorithm than the file digest, or not verifying with the key its keyid names —
 *    the status is `bad-signature`; a signature by a key nobody knows proves nothing and leaves `unknown` or
 *    `mismatch`. (Keylime reports the digest failure in every case.)
 * 5. `ima-buf`: a buffer holding a key (DER or PEM X.509 certificate, or public key): on an ignored keyring (or `*`)
 *    → `excluded`; else its digest must be in `keyrings[name]` (`unknown` / `mismatch`), and then the key joins the
 *    signature keys. Any other buffer: its digest must be in `ima-buf[name]`. For every ima-buf entry the digest
 *    must also be the hash of the buffer (a real kernel always logs it so), else `mismatch`. A key neither RSA nor
 *    EC on P-256, P-384, P-521 or secp256k1 is checked the same but not learnt (Keylime fails it as `invalid_key`).
 *    `ima.dm_policy` is not evaluated (device-mapper entries are checked as ima-buf digests).
 * Entries of every PCR are appraised alike: choosing PCR 10 is the replay's business. A failure record's `expected`
 * is the list the entry was checked against (`digests`, `keyrings` or `ima-buf` under its name), `found` its digest.
 *
 * Speed: digests are compared as bytes against a Map compiled once, the exclude expression is compiled once, hex
 * strings are made only for failures (≈ 3 M entries/s on the embrave log). For a list read through an ImaScanner
 * (ima-scan.ts), appraiseScanned takes the scanner's lookups in digestTable() instead of entry objects. Signatures are checked by
 * ima-signature.ts (RSA through OpenSSL, ECDSA in JS, 2–5 ms a signature), results cached process-wide.
 */
import { createHash, type KeyObject } from 'node:crypto';
import { equalBytes, hex } from './bytes.ts';
import { DigestTable, LOOKUP_OK, LOOKUP_UNKNOWN } from './digest-table.ts';
import { IntegrityError, IntegrityErrorCode } from './errors.ts';
import { isViolation, type ImaEntry } from './ima-entry.ts';
import { ascii, parseAsciiRange, utf8 } from './ima-log.ts';
import { SCAN_LOOKUP_SHIFT, SCAN_NON_ASCII, SCAN_NOT_LOOKED_UP, SCAN_STRIDE } from './ima-scan.ts';
import { keyFromBuffer, keyIdV2, loadSpki, type ImaKey } from './ima-keys.ts';
import { checkImaSignature } from './ima-signature.ts';
import { compileExcludes, type DigestMap, type ExcludeMatcher, type RuntimePolicy } from './runtime-policy.ts';

export type EntryStatus = 'ok' | 'excluded' | 'unknown' | 'mismatch' | 'bad-signature';
export type FailureStatus = 'unknown' | 'mismatch' | 'bad-signature';
export type StatusCounts = Record<EntryStatus, number>;

export interface AppraisalFailure {
  /** 1-based number of the entry in the whole log */
  entry: number;
  path: string;
  status: FailureStatus;
  /** the digests the policy accepts for this name (empty when it has none) */
  expected: string[];
  /** the digest the entry shows */
  found: string;
  /** the entry's digest algorithm */
  alg: string;
}

export interface Verdict {
  ok: boolean;
  counts: StatusCounts;
  /** every failing entry, in log order */
  failures: AppraisalFailure[];
}

export interface AppraiseOptions {
  /** violations (all-zero template hash) not excluded: 'fail' (default, as `mismatch`) or 'accept' (as Keylime) */
  violations?: 'fail' | 'accept';
  /** more accepted boot_aggregate values (hex), e.g. H(PCR0‖…‖PCR9) of the quote, as Keylime adds measured boot's */
  bootAggregates?: readonly string[];
  /** more signature keys (Keylime's tenant keyring); keyid computed when absent */
  keys?: readonly (KeyObject | ImaKey)[];
}

/** A key learnt from a keyring measurement, as saved: DER SubjectPublicKeyInfo in base64. */
export interface LearntKey {
  keyring: string;
  spki: string;
  keyid: number;
}

/** What an Appraiser carries from one call to the next (JSON-safe). */
export interface AppraiserState {
  version: 1;
  /** entries appraised so far: the next entry is number next + 1 */
  next: number;
  counts: StatusCounts;
  learnt: LearntKey[];
}

const zeroCounts = (): StatusCounts => ({ ok: 0, excluded: 0, unknown: 0, mismatch: 0, 'bad-signature': 0 });

// ---- the appraiser ----------------------------------------------------------------------------------------------------

/** A digest map compiled for the hot path: name → accepted digests as bytes. */
function compile(m: DigestMap): Map<string, Uint8Array[]> {
  return new Map([...m].map(([k, v]) => [k, v.map((h) => Buffer.from(h, 'hex'))]));
}

function listed(m: Map<string, Uint8Array[]>, name: string, digest: Uint8Array): 'ok' | 'unknown' | 'mismatch' {
  const list = m.get(name);
  if (list === undefined) return 'unknown';
  for (let i = 0; i < list.length; i++) if (equalBytes(list[i], digest)) return 'ok';
  return 'mismatch';
}

function badState(message: string): never {
  throw new IntegrityError(IntegrityErrorCode.appraiseBadState, `appraiser state: ${message}`);
}

/**
 * Appraises a log incrementally: `appraise(newEntries)` looks only at the entries given, numbering them after those
 * seen before, and keeps the keys learnt from keyrings. Its verdict covers those entries; `totals` covers all.
 */
export class Appraiser {
  private readonly digests: Map<string, Uint8Array[]>;
  private table: DigestTable | null = null;
  private readonly keyrings: Map<string, Uint8Array[]>;
  private readonly imaBuf: Map<string, Uint8Array[]>;
  private readonly excluded: ExcludeMatcher | null;
  private readonly ignored: Set<string>;
  private readonly bootAggregate: Uint8Array[];
  private readonly acceptViolations: boolean;
  private readonly baseKeys: ImaKey[] = [];
  private keys = new Map<number, ImaKey[]>();
  private learnt: LearntKey[] = [];
  private next = 0;
  private counts = zeroCounts();

  constructor(
    private readonly policy: RuntimePolicy,
    opts: AppraiseOptions = {},
  ) {
    this.digests = compile(policy.digests);
    this.keyrings = compile(policy.keyrings);
    this.imaBuf = compile(policy.imaBuf);
    this.excluded = compileExcludes(policy.excludes);
    this.ignored = new Set(policy.ima.ignored_keyrings);
    const boot = [...(policy.digests.get('boot_aggregate') ?? []), ...(opts.bootAggregates ?? [])];
    this.bootAggregate = boot.map((h) => Buffer.from(h, 'hex'));
    this.acceptViolations = opts.violations === 'accept';
    const vk = policy.verificationKeys;
    vk?.pubkeys.forEach((b64, i) => {
      const key = loadSpki(Buffer.from(b64, 'base64'));
      if (key === null) throw new IntegrityError(IntegrityErrorCode.policyBadKey, 'not a DER RSA or EC public key', { field: `verification-keys.pubkeys[${i}]` });
      this.baseKeys.push({ key, keyid: vk.keyids[i] ?? keyIdV2(key) });
    });
    for (const k of opts.keys ?? []) this.baseKeys.push('keyid' in k ? k : { key: k, keyid: keyIdV2(k) });
    this.reset();
  }

  /** Forgets everything appraised (Keylime restarts from entry 0 after a failure): learnt keys, counter, totals. */
  reset(): void {
    this.keys = new Map();
    for (const k of this.baseKeys) this.addKey(k);
    this.learnt = [];
    this.next = 0;
    this.counts = zeroCounts();
  }

  /** Number of entries appraised so far. */
  get entries(): number {
    return this.next;
  }

  /** Counts over every entry appraised so far. */
  get totals(): StatusCounts {
    return { ...this.counts };
  }

  private addKey(k: ImaKey): void {
    const list = this.keys.get(k.keyid);
    if (list === undefined) this.keys.set(k.keyid, [k]);
    else list.push(k);
  }

  /** Appraises the next entries of the log. */
  appraise(entries: readonly ImaEntry[]): Verdict {
    const counts = zeroCounts();
    const failures: AppraisalFailure[] = [];
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i];
      const n = ++this.next;
      const status = this.status(e);
      counts[status]++;
      if (status !== 'ok' && status !== 'excluded') failures.push(this.failure(e, n, status));
    }
    for (const k of Object.keys(counts) as EntryStatus[]) this.counts[k] += counts[k];
    return { ok: failures.length === 0, counts, failures };
  }

  private failure(e: ImaEntry, entry: number, status: FailureStatus): AppraisalFailure {
    let map = this.policy.digests;
    if (e.template === 'ima-buf') map = keyFromBuffer(e.buf ?? new Uint8Array(0)) !== null ? this.policy.keyrings : this.policy.imaBuf;
    let expected = [...(map.get(e.name) ?? [])];
    if (e.template !== 'ima-buf' && e.name === 'boot_aggregate') expected = this.bootAggregate.map(hex);
    return { entry, path: e.name, status, expected, found: hex(e.digest), alg: e.digestAlg };
  }

  /** The status of one entry (see the module comment for the rules). */
  private status(e: ImaEntry): EntryStatus {
    if (this.excluded !== null && this.excluded(e.name)) return 'excluded';
    if (isViolation(e)) return this.acceptViolations ? 'excluded' : 'mismatch';
    switch (e.template) {
      case 'ima-ng':
      case 'ima':
        return this.fileStatus(e);
      case 'ima-sig':
        return this.signedStatus(e);
      case 'ima-buf':
        return this.bufStatus(e);
    }
  }

  private fileStatus(e: ImaEntry): 'ok' | 'unknown' | 'mismatch' {
    if (e.name === 'boot_aggregate') {
      if (this.bootAggregate.length === 0) return 'ok';
      for (const d of this.bootAggregate) if (equalBytes(d, e.digest)) return 'ok';
      return 'mismatch';
    }
    return listed(this.digests, e.name, e.digest);
  }

  private signedStatus(e: ImaEntry): EntryStatus {
    const sig = e.sig;
    if (sig === undefined || sig.length === 0) return this.fileStatus(e);
    const check = checkImaSignature(sig, e.digest, e.digestAlg, this.keys);
    if (check === 'ok') return 'ok';
    const byDigest = this.fileStatus(e);
    if (byDigest === 'ok') return 'ok';
    return check === 'bad' || check === 'malformed' ? 'bad-signature' : byDigest;
  }

  private bufStatus(e: ImaEntry): EntryStatus {
    const buf = e.buf ?? new Uint8Array(0);
    const key = keyFromBuffer(buf);
    if (key !== null && (this.ignored.has('*') || this.ignored.has(e.name))) return 'excluded';
    const status = listed(key !== null ? this.keyrings : this.imaBuf, e.name, e.digest);
    if (status !== 'ok') return status;
    if (!digestOfBufferMatches(e.digestAlg, buf, e.digest)) return 'mismatch';
    if (key !== null && key.supported) {
      this.addKey(key);
      this.learnt.push({ keyring: e.name, spki: key.key.export({ format: 'der', type: 'spki' }).toString('base64'), keyid: key.keyid });
    }
    return 'ok';
  }

  /**
   * The policy's digests as a byte-keyed table, built on first use (~1 s and ~100 MB for a million paths): what
   * an ImaScanner looks paths up in. Call it ahead to keep its cost out of the first list.
   */
  digestTable(): DigestTable {
    if (this.table === null) this.table = DigestTable.fromBytes(this.digests);
    return this.table;
  }

  /**
   * For ima-scan.ts: appraises `count` entries an ImaScanner scanned out of `b` (columns per entry in `cols`, see
   * SCAN_STRIDE there), adding to `counts` and `failures` and to the totals. An entry whose status the scanner's
   * lookup does not settle alone (boot_aggregate, a non-ASCII name, no lookup) and every failing entry is parsed
   * again in JavaScript from its line, and goes through the same rules as appraise().
   */
  appraiseScanned(b: Buffer, cols: Int32Array, count: number, counts: StatusCounts, failures: AppraisalFailure[]): void {
    const ex = this.excluded;
    // plain counters: counts[status]++ over five string keys is a megamorphic store, a tenth of the time here
    let ok = 0;
    let excluded = 0;
    let unknown = 0;
    let mismatch = 0;
    const rare = zeroCounts();
    for (let k = 0, c = 0; k < count; k++, c += SCAN_STRIDE) {
      const n = ++this.next;
      const flags = cols[c + 4];
      const nonAscii = (flags & SCAN_NON_ASCII) !== 0;
      const name = nonAscii ? utf8(b, cols[c + 2], cols[c + 3]) : ascii(b, cols[c + 2], cols[c + 3]);
      if (ex !== null && ex(name)) {
        excluded++;
        continue;
      }
      const found = (flags >> SCAN_LOOKUP_SHIFT) & 3;
      if (found === LOOKUP_OK && !nonAscii && name !== 'boot_aggregate') {
        ok++;
        continue;
      }
      const e = parseAsciiRange(b, cols[c], cols[c + 1], n, n);
      let status: EntryStatus;
      // the rules beyond a plain lookup, and a name whose bytes are not its string's (invalid UTF-8): as appraise()
      if (found === SCAN_NOT_LOOKED_UP || nonAscii || name === 'boot_aggregate') {
        status = this.status(e);
        rare[status]++;
      } else if (found === LOOKUP_UNKNOWN) {
        status = 'unknown';
        unknown++;
      } else {
        status = 'mismatch';
        mismatch++;
      }
      if (status !== 'ok' && status !== 'excluded') failures.push(this.failure(e, n, status));
    }
    rare.ok += ok;
    rare.excluded += excluded;
    rare.unknown += unknown;
    rare.mismatch += mismatch;
    for (const key of Object.keys(rare) as EntryStatus[]) {
      counts[key] += rare[key];
      this.counts[key] += rare[key];
    }
  }

  /** The state to carry to a later call or process (learnt keys, entry counter, totals). */
  saveState(): AppraiserState {
    return { version: 1, next: this.next, counts: { ...this.counts }, learnt: this.learnt.map((k) => ({ ...k })) };
  }

  /** An appraiser for `policy` that goes on from a saved state. */
  static restore(policy: RuntimePolicy, state: unknown, opts: AppraiseOptions = {}): Appraiser {
    const a = new Appraiser(policy, opts);
    const s = state as Partial<AppraiserState> | null;
    if (typeof s !== 'object' || s === null || s.version !== 1) badState('not a version 1 state');
    if (typeof s.next !== 'number' || !Number.isSafeInteger(s.next) || s.next < 0) badState('bad entry counter');
    if (typeof s.counts !== 'object' || s.counts === null) badState('no counts');
    const counts = zeroCounts();
    for (const k of Object.keys(counts) as EntryStatus[]) {
      const v = (s.counts as Record<string, unknown>)[k];
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) badState(`bad count ${k}`);
      counts[k] = v;
    }
    if (!Array.isArray(s.learnt)) badState('no learnt keys');
    for (const k of s.learnt as unknown[]) {
      const l = k as Partial<LearntKey> | null;
      if (typeof l !== 'object' || l === null || typeof l.keyring !== 'string' || typeof l.spki !== 'string') badState('bad learnt key');
      if (typeof l.keyid !== 'number' || !Number.isInteger(l.keyid) || l.keyid < 0 || l.keyid > 0xffffffff) badState('bad keyid');
      const key = loadSpki(Buffer.from(l.spki, 'base64'));
      if (key === null) badState('a learnt key does not load');
      a.addKey({ key, keyid: l.keyid });
      a.learnt.push({ keyring: l.keyring, spki: l.spki, keyid: l.keyid });
    }
    a.next = s.next;
    a.counts = counts;
    return a;
  }
}

/** Whether an ima-buf digest is the hash of its buffer (true when Node does not know the algorithm). */
function digestOfBufferMatches(alg: string, buf: Uint8Array, digest: Uint8Array): boolean {
  let h: Buffer;
  try {
    h = createHash(alg).update(buf).digest();
  } catch {
    return true;
  }
  return equalBytes(h, digest);
}

/** One-shot appraisal of a whole log. */
export function appraise(policy: RuntimePolicy, entries: readonly ImaEntry[], opts: AppraiseOptions = {}): Verdict {
  return new Appraiser(policy, opts).appraise(entries);
}
