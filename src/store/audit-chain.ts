/**
 * The audit log's hash chain (pure): how a record is sealed and how a list of records is checked.
 *
 * A record's hash is hex SHA-256 over the UTF-8 bytes of `prevHash + canonicalJson({seq, at, actor, action, subject,
 * details})`, where `prevHash` is the previous record's hash as 64 lowercase hex characters (64 zeros before the
 * first record, seq 1). The canonical JSON has every object's keys sorted by UTF-16 code units (JavaScript's default
 * string order), no whitespace, and strings and numbers written as JSON.stringify writes them; `details` is first
 * normalised to what it reads back as from JSON (undefined → null, NaN → null, Dates → strings), so a record read
 * back from the store hashes to what was sealed.
 *
 * Both stores seal records with `sealAuditRecord` inside the transaction that advances the chain's head, so the
 * hashing lives here once and `verifyAuditChain` checks exactly what was written.
 *
 * What the chain cannot show: someone with write access to the database who appends well-formed records at the end
 * (or rewrites every record from some point on) leaves a chain that verifies; anchoring the head elsewhere would.
 */
import { createHash } from 'node:crypto';
import type { AuditRecordV1 } from '../api/types.ts';

export const GENESIS_HASH = '0'.repeat(64);

export type AuditContent = Pick<AuditRecordV1, 'seq' | 'at' | 'actor' | 'action' | 'subject' | 'details'>;

/** JSON with sorted keys and no whitespace; takes plain JSON values (see `normaliseJson`). */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
}

/** The value as it reads back from JSON: what the store keeps of `details`. */
export function normaliseJson(value: unknown): unknown {
  const text = JSON.stringify(value);
  return text === undefined ? null : JSON.parse(text);
}

/** The hash of a record that follows `prevHash`. */
export function auditHash(prevHash: string, r: AuditContent): string {
  const content = canonicalJson({ seq: r.seq, at: r.at, actor: r.actor, action: r.action, subject: r.subject, details: normaliseJson(r.details) });
  return createHash('sha256').update(prevHash + content, 'utf8').digest('hex');
}

/** The record the store appends: `input` given its sequence number and chained to `prevHash`. */
export function sealAuditRecord(input: Omit<AuditContent, 'seq'>, seq: number, prevHash: string): AuditRecordV1 {
  const content: AuditContent = { seq, at: input.at, actor: input.actor, action: input.action, subject: input.subject, details: normaliseJson(input.details) };
  return { ...content, hash: auditHash(prevHash, content), prevHash };
}

export type AuditProblem = 'edited' | 'inserted' | 'deleted' | 'reordered';

export type AuditVerdict = { ok: true } | { ok: false; seq: number; problem: AuditProblem; message: string };

export interface VerifyOptions {
  /**
   * The records are a segment that need not start at seq 1 (e.g. `audit({ afterSeq })`): the first one is trusted to
   * follow whatever its prevHash names. Default false: the chain must start at seq 1 from the genesis hash.
   */
  partial?: boolean;
}

/** How far `originalSeq` looks for the number a renumbered record was sealed with. */
const RENUMBER_SEARCH = 1024;

/** The sequence number `r` was sealed with, if it was renumbered by at most RENUMBER_SEARCH; null if not found. */
function originalSeq(r: AuditRecordV1): number | null {
  for (let d = 1; d <= RENUMBER_SEARCH; d++) {
    if (auditHash(r.prevHash, { ...r, seq: r.seq + d }) === r.hash) return r.seq + d;
    if (r.seq - d >= 1 && auditHash(r.prevHash, { ...r, seq: r.seq - d }) === r.hash) return r.seq - d;
  }
  return null;
}

/**
 * Check records in the order given (the store's order: seq ascending) and name the first problem:
 * - `edited`: a record's content no longer hashes to its hash, or a record was rewritten with a fresh hash that
 *   its successor does not chain to;
 * - `deleted`: a gap in the sequence numbers, or a record chaining to a hash no record has and sealed under a
 *   higher number (the rest renumbered down to hide the gap);
 * - `inserted`: a record the chain goes around (its successor chains to its predecessor), or a duplicate number;
 * - `reordered`: sequence numbers out of order, or two neighbours whose links are crossed.
 * `seq` is where the problem shows: the edited, inserted or first missing record's number.
 */
export function verifyAuditChain(records: readonly AuditRecordV1[], opts: VerifyOptions = {}): AuditVerdict {
  const fail = (seq: number, problem: AuditProblem, message: string): AuditVerdict => ({ ok: false, seq, problem, message });
  if (records.length === 0) return { ok: true };
  const first = records[0];
  const genesis = opts.partial ? { seq: first.seq - 1, hash: first.prevHash } : { seq: 0, hash: GENESIS_HASH };
  for (let i = 0; i < records.length; i++) {
    const r = records[i];
    const p = i > 0 ? records[i - 1] : genesis;
    const pp = i > 1 ? records[i - 2] : i === 1 ? genesis : undefined;
    const next = records[i + 1] as AuditRecordV1 | undefined;
    if (r.seq === p.seq) return fail(r.seq, 'inserted', `two records have seq ${r.seq}`);
    if (r.seq < p.seq) return fail(r.seq, 'reordered', `record ${r.seq} comes after record ${p.seq}`);
    if (r.seq > p.seq + 1) {
      if (records.slice(i + 1).some((x) => x.seq === p.seq + 1)) {
        return fail(p.seq + 1, 'reordered', `record ${p.seq + 1} comes after record ${r.seq}`);
      }
      const missing = r.seq - p.seq - 1 === 1 ? `record ${p.seq + 1} is` : `records ${p.seq + 1}–${r.seq - 1} are`;
      return fail(p.seq + 1, 'deleted', `${missing} missing`);
    }
    const selfOk = auditHash(r.prevHash, r) === r.hash;
    if (r.prevHash === p.hash) {
      if (!selfOk) return fail(r.seq, 'edited', `record ${r.seq}'s content does not match its hash`);
      continue;
    }
    // The link to the previous record is broken: find which tampering explains it.
    if (next && r.prevHash === next.hash && next.prevHash === p.hash) {
      return fail(r.seq, 'reordered', `records ${r.seq} and ${next.seq} were swapped`);
    }
    if (pp && r.prevHash === pp.hash) {
      return fail(p.seq, 'inserted', `record ${p.seq} was inserted: record ${r.seq} chains to record ${pp.seq}`);
    }
    if (next && next.prevHash === p.hash) {
      return fail(r.seq, 'inserted', `record ${r.seq} was inserted: record ${next.seq} chains to record ${p.seq}`);
    }
    if (!selfOk) {
      const was = originalSeq(r);
      if (was !== null && was > r.seq) {
        return fail(r.seq, 'deleted', `record ${r.seq} is missing: the record now numbered ${r.seq} was sealed as ${was}`);
      }
      if (was !== null && was < r.seq) {
        return fail(was, 'inserted', `a record was inserted before record ${was}, now numbered ${r.seq}`);
      }
      return fail(r.seq, 'edited', `record ${r.seq}'s content does not match its hash`);
    }
    return fail(p.seq, 'edited', `record ${p.seq} was rewritten: record ${r.seq} chains to a hash it no longer has`);
  }
  return { ok: true };
}
