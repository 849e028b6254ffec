/**
 * Replaying an IMA measurement list into PCR 10 (FORMATS.md "Replay", "Incremental"), and the boot_aggregate check.
 *
 * Why it is shaped this way:
 * - A verifier checks a list against a quote many times as it grows, so the replay state is small and resumable:
 *   the next entry number and the running value of each bank (Keylime keeps the same per machine).
 * - The sha1 bank is extended with the *recomputed* SHA-1 of the template data, not with the hash the list states:
 *   the kernel extended with the hash of the data, so a list whose stated hash was left intact while its name or
 *   digest was edited must not replay to the quoted value. Recomputing also gives the template-hash check for free.
 * - Hashing dominates (node:crypto costs ~1–2 µs a call whatever the size, DESIGN.md §6), so the hash function can
 *   be swapped (e.g. for hash-wasm) and each entry is hashed exactly four times: SHA-1 and SHA-256 of its template
 *   data, and one extend per bank.
 */
import * as nodeCrypto from 'node:crypto';
import { IntegrityError, IntegrityErrorCode } from './errors.ts';
import { BANK_SIZE, templateData, type Bank, type ImaEntry } from './ima-entry.ts';
import type { ImaLogEntry } from './ima-log.ts';

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
  hash?: HashFn;
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

function fromHex(hex: unknown, bank: Bank): Uint8Array {
  const size = BANK_SIZE[bank];
  if (typeof hex !== 'string' || hex.length !== size * 2 || !/^[0-9a-fA-F]*$/.test(hex)) {
    throw badState(`pcr.${bank} must be ${size * 2} hex digits`);
  }
  return Buffer.from(hex, 'hex');
}

/**
 * The running PCR values of one list. Each bank lives in a scratch buffer `[PCR | extend value]`, so an extend is
 * one copy and one hash with no allocation but the hash's result.
 */
export class PcrReplay {
  readonly pcrIndex: number;
  private readonly hash: HashFn;
  private readonly s1 = new Uint8Array(40);
  private readonly s256 = new Uint8Array(64);
  private n = 0;

  /** A fresh replay (all-zero PCR, entry 0), or one resumed from a snapshot. */
  constructor(from?: ReplaySnapshot, opts: ReplayOptions = {}) {
    this.pcrIndex = opts.pcr ?? IMA_PCR;
    this.hash = opts.hash ?? nodeHash;
    if (from !== undefined) {
      if (typeof from !== 'object' || from === null || typeof from.pcr !== 'object' || from.pcr === null) throw badState('not a replay snapshot');
      if (!Number.isSafeInteger(from.next) || from.next < 0) throw badState('next must be a non-negative integer');
      this.n = from.next;
      this.s1.set(fromHex(from.pcr.sha1, 'sha1'));
      this.s256.set(fromHex(from.pcr.sha256, 'sha256'));
    }
  }

  /** How many entries were consumed: the number of the next entry, counting from 0. */
  get next(): number {
    return this.n;
  }

  /** The running value of a bank (a copy). */
  value(bank: Bank): Uint8Array {
    return (bank === 'sha1' ? this.s1 : this.s256).slice(0, BANK_SIZE[bank]);
  }

  snapshot(): ReplaySnapshot {
    return { next: this.n, pcr: { sha1: Buffer.from(this.s1.subarray(0, 20)).toString('hex'), sha256: Buffer.from(this.s256.subarray(0, 32)).toString('hex') } };
  }

  clone(): PcrReplay {
    const c = new PcrReplay(undefined, { pcr: this.pcrIndex, hash: this.hash });
    c.n = this.n;
    c.s1.set(this.s1);
    c.s256.set(this.s256);
    return c;
  }

  /**
   * Consumes the next entry of the list: extends both banks if it is for the replayed PCR. Returns whether its
   * stated template hash is right (always true for a violation, whose stated hash is zero by definition).
   */
  extend(e: ImaEntry | ImaLogEntry): boolean {
    this.n++;
    const h = this.hash;
    if (isZero20(e.templateHash)) {
      // violation: the kernel extends every bank with all-0xFF instead of a hash
      if (e.pcr === this.pcrIndex) {
        this.s1.fill(0xff, 20);
        this.s1.set(h('sha1', this.s1));
        this.s256.fill(0xff, 32);
        this.s256.set(h('sha256', this.s256));
      }
      return true;
    }
    const td = (e as ImaLogEntry).templateDataRaw ?? templateData(e);
    const t1 = h('sha1', td);
    const ok = equalBytes(t1, e.templateHash);
    if (e.pcr !== this.pcrIndex) return ok;
    this.s1.set(t1, 20);
    this.s1.set(h('sha1', this.s1));
    this.s256.set(h('sha256', td), 32);
    this.s256.set(h('sha256', this.s256));
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
  if (equalBytes(r.value(quoted.bank), quoted.value)) return { count, state: r.snapshot() };
  for (const e of entries) {
    r.extend(e);
    count++;
    if (e.pcr === r.pcrIndex && equalBytes(r.value(quoted.bank), quoted.value)) return { count, state: r.snapshot() };
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

