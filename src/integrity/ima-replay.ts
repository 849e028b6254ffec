/**
 * Replaying an IMA measurement list into PCR 10 (FORMATS.md "Replay", "Incremental"), and the boot_aggregate check.
 *
 * Why it is shaped this way:
 * - A verifier checks a list against a quote many times as it grows, so the replay state is small and resumable:
 *   the next entry number and the running value of each bank (Keylime keeps the same per machine).
 * - The sha1 bank is extended with the *recomputed* SHA-1 of the template data, not with the hash the list states:
 *   the kernel extended with the hash of the data, so a list whose stated hash was left intact while its name or
 *   digest was edited must not replay to the quoted value. Recomputing also gives the template-hash check for free.
 * - Hashing dominates (node:crypto costs ~1–2 µs a call whatever the size, DESIGN.md §6), so each entry is hashed
 *   at most four times (SHA-1 and SHA-256 of its template data, one extend per bank) and, unless a `hash` is
 *   injected, short inputs are hashed by small-hash.ts (no call into C++, no allocation: ~3× faster per entry)
 *   and long ones by node:crypto.
 * - A verifier needs only the bank its quote covers (Keylime replays only that one), so `banks: ['sha256']` halves
 *   the work: the sha1 bank is not extended and the list's stated template hash (a SHA-1) is not checked. That is
 *   still sound: the sha256 extend value is computed here from the entry's own fields (its template data), never
 *   taken from the list, so an entry whose name or digest was edited — whatever its stated template hash says —
 *   changes the replayed sha256 PCR and no longer matches the quote. What is lost is only the early, per-entry
 *   diagnosis "this line's template hash is wrong" (extend() then returns true).
 */
import * as nodeCrypto from 'node:crypto';
import { IntegrityError, IntegrityErrorCode } from './errors.ts';
import { BANK_SIZE, templateData, type Bank, type ImaEntry } from './ima-entry.ts';
import type { ImaLogEntry } from './ima-log.ts';
import { extendSha1, extendSha256, sha1Into, sha256Into, SMALL_HASH_MAX } from './small-hash.ts';

/** One-shot hash of `data` with a bank's algorithm. */
export type HashFn = (alg: Bank, data: Uint8Array) => Uint8Array;

/** crypto.hash (Node ≥ 20.12) skips the Hash object createHash builds: ~1.5× faster for short inputs. */
const oneShot = (nodeCrypto as { hash?: typeof nodeCrypto.hash }).hash;
export const nodeHash: HashFn =
  typeof oneShot === 'function'
    ? (alg, data) => oneShot(alg, data, 'buffer')
    : (alg, data) => nodeCrypto.createHash(alg).update(data).digest();

/** The PCR IMA extends. */
export const IMA_PCR = 10;

/** Where a replay stands: the number of entries consumed and each bank's running value (hex). */
export interface ReplaySnapshot {
  next: number;
  pcr: { sha1: string; sha256: string };
}

export interface ReplayOptions {
  /** the PCR replayed; entries for other PCRs only advance `next` (default 10) */
  pcr?: number;
  /** the hash to use for every hash (default: small-hash.ts for short inputs, node:crypto for long ones) */
  hash?: HashFn;
  /**
   * The banks to replay (default both). A bank left out is not extended and `value()` refuses it; when sha1 is
   * left out the stated template hashes are not checked (see the module comment for why that is sound). The
   * snapshot keeps its shape: a bank left out shows the value it started from (zero, or the resumed snapshot's),
   * not a running one, so resume such a snapshot with the same banks.
   */
  banks?: readonly Bank[];
}

function isZero20(b: Uint8Array): boolean {
  for (let i = 0; i < 20; i++) if (b[i] !== 0) return false;
  return true;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function badState(message: string): IntegrityError {
  return new IntegrityError(IntegrityErrorCode.imaBadReplayState, message, { field: 'snapshot' });
}

/** A bank's value in hex, checked, written into `into` (no intermediate buffer: a replay is resumed per increment). */
function fromHex(hex: unknown, bank: Bank, into: Uint8Array): void {
  const size = BANK_SIZE[bank];
  if (typeof hex !== 'string' || hex.length !== size * 2 || !/^[0-9a-fA-F]*$/.test(hex)) {
    throw badState(`pcr.${bank} must be ${size * 2} hex digits`);
  }
  Buffer.from(into.buffer, into.byteOffset, size).write(hex, 'hex');
}

/**
 * The running PCR values of one list. Each bank lives in a scratch buffer `[PCR | extend value]`, so an extend is
 * one hash of the template data written into the scratch's second half and one hash of the scratch, with no
 * allocation on the default path.
 */
export class PcrReplay {
  readonly pcrIndex: number;
  /** the banks replayed */
  readonly banks: readonly Bank[];
  /** the injected hash, or undefined for the default (small-hash.ts / node:crypto) */
  private readonly custom: HashFn | undefined;
  private readonly do1: boolean;
  private readonly do256: boolean;
  private readonly s1 = new Uint8Array(40);
  private readonly s256 = new Uint8Array(64);
  private n = 0;
  /** the hex a bank that is not replayed was resumed from (its snapshot, unchanged) */
  private hex1: string | undefined;
  private hex256: string | undefined;

  /** A fresh replay (all-zero PCR, entry 0), or one resumed from a snapshot. */
  constructor(from?: ReplaySnapshot, opts: ReplayOptions = {}) {
    this.pcrIndex = opts.pcr ?? IMA_PCR;
    this.custom = opts.hash;
    const banks = opts.banks ?? ['sha1', 'sha256'];
    for (const b of banks) {
      if (b !== 'sha1' && b !== 'sha256') throw badState(`unknown bank ${JSON.stringify(b)}`);
    }
    this.do1 = banks.includes('sha1');
    this.do256 = banks.includes('sha256');
    if (!this.do1 && !this.do256) throw badState('no bank to replay');
    this.banks = (['sha1', 'sha256'] as const).filter((b) => banks.includes(b));
    if (from !== undefined) this.resume(from);
  }

  /**
   * This replay taken to a snapshot (what `new PcrReplay(from)` gives, without allocating one: a verifier resumes
   * a replay for every increment it appraises). Throws as the constructor does.
   */
  resume(from: ReplaySnapshot): this {
    if (typeof from !== 'object' || from === null || typeof from.pcr !== 'object' || from.pcr === null) throw badState('not a replay snapshot');
    if (!Number.isSafeInteger(from.next) || from.next < 0) throw badState('next must be a non-negative integer');
    fromHex(from.pcr.sha1, 'sha1', this.s1);
    fromHex(from.pcr.sha256, 'sha256', this.s256);
    this.n = from.next;
    // a bank not replayed keeps its value: its snapshot is the text it came as
    this.hex1 = this.do1 ? undefined : from.pcr.sha1.toLowerCase();
    this.hex256 = this.do256 ? undefined : from.pcr.sha256.toLowerCase();
    return this;
  }

  /** How many entries were consumed: the number of the next entry, counting from 0. */
  get next(): number {
    return this.n;
  }

  /** The running value of a bank (a copy). Throws for a bank not replayed. */
  value(bank: Bank): Uint8Array {
    if (!(bank === 'sha1' ? this.do1 : this.do256)) {
      throw new IntegrityError(IntegrityErrorCode.imaBadReplayState, `the ${bank} bank is not replayed (banks: ${this.banks.join(', ')})`, { field: 'bank' });
    }
    return (bank === 'sha1' ? this.s1 : this.s256).slice(0, BANK_SIZE[bank]);
  }

  /** Whether a bank's running value equals `v` (no copy). Throws for a bank not replayed. */
  valueEquals(bank: Bank, v: Uint8Array): boolean {
    if (!(bank === 'sha1' ? this.do1 : this.do256)) this.value(bank);
    const s = bank === 'sha1' ? this.s1 : this.s256;
    const n = BANK_SIZE[bank];
    if (v.length !== n) return false;
    for (let i = 0; i < n; i++) if (s[i] !== v[i]) return false;
    return true;
  }

  snapshot(): ReplaySnapshot {
    const hex = (s: Uint8Array, n: number) => Buffer.from(s.buffer, s.byteOffset, n).toString('hex');
    return { next: this.n, pcr: { sha1: this.hex1 ?? hex(this.s1, 20), sha256: this.hex256 ?? hex(this.s256, 32) } };
  }

  clone(): PcrReplay {
    const c = new PcrReplay(undefined, { pcr: this.pcrIndex, hash: this.custom, banks: this.banks });
    c.n = this.n;
    c.s1.set(this.s1);
    c.s256.set(this.s256);
    c.hex1 = this.hex1;
    c.hex256 = this.hex256;
    return c;
  }

  /**
   * For a batch hasher (ima-scan.ts): the scratch buffers the running values live in, `[PCR | extend value]`
   * (40 and 64 bytes), null for a bank not replayed or when a `hash` was injected (the batch hasher would bypass
   * it). It extends them as extend() would, then counts its entries with advance().
   */
  batchState(): { s1: Uint8Array | null; s256: Uint8Array | null } | null {
    if (this.custom !== undefined) return null;
    return { s1: this.do1 ? this.s1 : null, s256: this.do256 ? this.s256 : null };
  }

  /** Counts `n` entries consumed by a batch hasher (see batchState). */
  advance(n: number): void {
    this.n += n;
  }

  /** s1 = [PCR | H(s1)]: the sha1 extend of the value in s1[20..40). */
  private extend1(): void {
    const h = this.custom;
    if (h === undefined) extendSha1(this.s1, 0, this.s1, 20);
    else this.s1.set(h('sha1', this.s1));
  }

  private extend256(): void {
    const h = this.custom;
    if (h === undefined) extendSha256(this.s256, 0, this.s256, 32);
    else this.s256.set(h('sha256', this.s256));
  }

  /** H(td) into the second half of the bank's scratch. */
  private hashInto(bank: Bank, td: Uint8Array): void {
    const h = this.custom;
    const s = bank === 'sha1' ? this.s1 : this.s256;
    const at = BANK_SIZE[bank];
    if (h !== undefined) s.set(h(bank, td), at);
    else if (td.length > SMALL_HASH_MAX) s.set(nodeHash(bank, td), at);
    else if (bank === 'sha1') sha1Into(td, 0, td.length, s, at);
    else sha256Into(td, 0, td.length, s, at);
  }

  /**
   * Consumes the next entry of the list: extends the replayed banks if it is for the replayed PCR. Returns whether
   * its stated template hash is right (always true for a violation, whose stated hash is zero by definition, and
   * when the sha1 bank is not replayed: then it is not checked).
   */
  extend(e: ImaEntry | ImaLogEntry): boolean {
    this.n++;
    if (isZero20(e.templateHash)) {
      // violation: the kernel extends every bank with all-0xFF instead of a hash
      if (e.pcr === this.pcrIndex) {
        if (this.do1) {
          this.s1.fill(0xff, 20);
          this.extend1();
        }
        if (this.do256) {
          this.s256.fill(0xff, 32);
          this.extend256();
        }
      }
      return true;
    }
    const td = (e as ImaLogEntry).templateDataRaw ?? templateData(e);
    let ok = true;
    if (this.do1) {
      // the recomputed SHA-1 goes where the extend wants it: s1[20..40)
      this.hashInto('sha1', td);
      const s1 = this.s1;
      const th = e.templateHash;
      for (let i = 0; i < 20; i++) if (s1[20 + i] !== th[i]) ok = false;
      if (e.pcr !== this.pcrIndex) return ok;
      this.extend1();
    } else if (e.pcr !== this.pcrIndex) return ok;
    if (this.do256) {
      this.hashInto('sha256', td);
      this.extend256();
    }
    return ok;
  }
}

/**
 * Keylime's incremental rule: the FIRST prefix of `entries` (consumed after `state`) at which the running value of
 * `quoted.bank` equals the quoted PCR. The empty prefix counts (nothing new since the last quote). Returns how many
 * entries it took and the state to resume from, or null when no prefix matches. `state` is not changed.
 */
export function findQuotedPrefix(
  state: ReplaySnapshot | PcrReplay,
  entries: Iterable<ImaEntry>,
  quoted: { bank: Bank; value: Uint8Array },
  opts: ReplayOptions = {},
): { count: number; state: ReplaySnapshot } | null {
  const size = BANK_SIZE[quoted.bank];
  if (quoted.value.length !== size) {
    throw new IntegrityError(IntegrityErrorCode.tpmBadStructure, `a quoted ${quoted.bank} PCR has ${size} bytes, this one ${quoted.value.length}`, { field: 'pcr' });
  }
  const r = state instanceof PcrReplay ? state.clone() : new PcrReplay(state, opts);
  let count = 0;
  if (r.valueEquals(quoted.bank, quoted.value)) return { count, state: r.snapshot() };
  for (const e of entries) {
    r.extend(e);
    count++;
    if (e.pcr === r.pcrIndex && r.valueEquals(quoted.bank, quoted.value)) return { count, state: r.snapshot() };
  }
  return null;
}

// ---- boot_aggregate ---------------------------------------------------------------------------------------------

function pcrAt(pcrs: Map<number, Uint8Array> | Uint8Array[], i: number): Uint8Array | undefined {
  return pcrs instanceof Map ? pcrs.get(i) : pcrs[i];
}

/** H(PCR0 ‖ … ‖ PCR(count-1)) of one bank: what the kernel records as boot_aggregate. */
export function bootAggregate(pcrs: Map<number, Uint8Array> | Uint8Array[], bank: Bank, count: 8 | 10, hash: HashFn = nodeHash): Uint8Array {
  const size = BANK_SIZE[bank];
  const all = new Uint8Array(size * count);
  for (let i = 0; i < count; i++) {
    const v = pcrAt(pcrs, i);
    if (v === undefined || v.length !== size) {
      throw new IntegrityError(IntegrityErrorCode.tpmBadStructure, `PCR ${i} of the ${bank} bank is ${v === undefined ? 'missing' : `${v.length} bytes, not ${size}`}`, { field: `pcr${i}` });
    }
    all.set(v, i * size);
  }
  return hash(bank, all);
}

export type BootAggregateCheck =
  /** the entry equals H(PCR0‖…‖PCR7) or H(PCR0‖…‖PCR9) */
  | { status: 'match'; pcrs: 8 | 10 }
  /** an all-zero boot_aggregate: the kernel found no TPM, so nothing ties the list to the boot */
  | { status: 'no_tpm' }
  /** the entry's digest is of another algorithm than the bank given */
  | { status: 'other_algorithm'; digestAlg: string }
  /** no candidate matched (`tried`: the PCR counts that could be computed from the values given) */
  | { status: 'mismatch'; tried: (8 | 10)[] }
  /** the entry is not a boot_aggregate */
  | { status: 'not_boot_aggregate'; name: string };

/**
 * Checks a boot_aggregate entry against PCR values of `bank`: PCR 0–9 (non-sha1 banks, kernels ≥ 5.8), then
 * PCR 0–7 (older kernels, and always for sha1). The entry's digest algorithm names the bank the kernel read.
 */
export function checkBootAggregate(
  entry: ImaEntry,
  pcrValues: Map<number, Uint8Array> | Uint8Array[],
  bank: Bank,
  hash: HashFn = nodeHash,
): BootAggregateCheck {
  if (entry.name !== 'boot_aggregate') return { status: 'not_boot_aggregate', name: entry.name };
  if (entry.digest.every((b) => b === 0)) return { status: 'no_tpm' };
  if (entry.digestAlg !== bank) return { status: 'other_algorithm', digestAlg: entry.digestAlg };
  const tried: (8 | 10)[] = [];
  const counts: (8 | 10)[] = bank === 'sha1' ? [8] : [10, 8];
  for (const count of counts) {
    let have = true;
    for (let i = 0; i < count; i++) if (pcrAt(pcrValues, i)?.length !== BANK_SIZE[bank]) have = false;
    if (!have) continue;
    tried.push(count);
    if (equalBytes(bootAggregate(pcrValues, bank, count, hash), entry.digest)) return { status: 'match', pcrs: count };
  }
  return { status: 'mismatch', tried };
}

// ---- whole lists ------------------------------------------------------------------------------------------------

/** What `hueguard ima replay --json` prints. */
export interface ReplaySummary {
  entries: number;
  violations: number;
  templateHashMismatches: number;
  pcr10: { sha1: string; sha256: string };
}

class Tally {
  readonly r: PcrReplay;
  entries = 0;
  violations = 0;
  templateHashMismatches = 0;
  constructor(opts: { hash?: HashFn }) {
    this.r = new PcrReplay(undefined, { pcr: IMA_PCR, hash: opts.hash });
  }
  add(e: ImaEntry): void {
    this.entries++;
    if (isZero20(e.templateHash)) this.violations++;
    if (!this.r.extend(e)) this.templateHashMismatches++;
  }
  summary(): ReplaySummary {
    const { pcr } = this.r.snapshot();
    return { entries: this.entries, violations: this.violations, templateHashMismatches: this.templateHashMismatches, pcr10: pcr };
  }
}

/** Replays a whole list from an all-zero PCR 10. */
export function replayLog(entries: Iterable<ImaEntry>, opts: { hash?: HashFn } = {}): ReplaySummary {
  const t = new Tally(opts);
  for (const e of entries) t.add(e);
  return t.summary();
}

/** The same over a stream of entries (readImaEntries), without holding the list. */
export async function replayLogAsync(entries: AsyncIterable<ImaEntry>, opts: { hash?: HashFn } = {}): Promise<ReplaySummary> {
  const t = new Tally(opts);
  for await (const e of entries) t.add(e);
  return t.summary();
}

