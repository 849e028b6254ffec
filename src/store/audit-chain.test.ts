import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import type { AuditRecordV1 } from '../api/types.ts';
import { GENESIS_HASH, auditHash, canonicalJson, sealAuditRecord, verifyAuditChain } from './audit-chain.ts';

const input = (n: number) => ({ at: `2025-01-01T00:00:0${n % 10}.000Z`, actor: 'alice', action: 'policy.publish', subject: `p${n}`, details: { n } });

function chain(length: number): AuditRecordV1[] {
  const out: AuditRecordV1[] = [];
  for (let seq = 1; seq <= length; seq++) out.push(sealAuditRecord(input(seq), seq, out.at(-1)?.hash ?? GENESIS_HASH));
  return out;
}

/** The verdict's problem and seq, or 'ok'. */
function verdict(records: AuditRecordV1[]): string {
  const v = verifyAuditChain(records);
  return v.ok ? 'ok' : `${v.problem}@${v.seq}`;
}

describe('canonical JSON', () => {
  it('sorts keys at every depth (by code units, integer-like keys too), drops undefined members, writes no spaces', () => {
    assert.equal(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: 'x' } }), '{"a":{"c":"x","d":[3,{"y":2,"z":1}]},"b":1}');
    assert.equal(canonicalJson({ 2: 'b', 10: 'a', B: 0, a: 0 }), '{"10":"a","2":"b","B":0,"a":0}');
    assert.equal(canonicalJson({ a: undefined, b: [undefined, null] }), '{"b":[null,null]}');
    assert.equal(canonicalJson('é"\n'), '"é\\"\\n"');
    assert.equal(canonicalJson(undefined), 'null');
  });

  it('the hash is sha256 over prevHash followed by the canonical record, as documented', () => {
    const r = { seq: 1, at: 't', actor: 'b', action: 'a', subject: 's', details: { y: [1], x: 'ü' } };
    const expected = createHash('sha256')
      .update(`${GENESIS_HASH}{"action":"a","actor":"b","at":"t","details":{"x":"ü","y":[1]},"seq":1,"subject":"s"}`, 'utf8')
      .digest('hex');
    assert.equal(auditHash(GENESIS_HASH, r), expected);
    assert.equal(sealAuditRecord(r, 1, GENESIS_HASH).hash, expected);
  });

  it('details hash as they read back from JSON', () => {
    const sealed = sealAuditRecord({ ...input(1), details: { d: new Date(0), gone: undefined, n: Number.NaN } }, 1, GENESIS_HASH);
    assert.deepEqual(sealed.details, { d: '1970-01-01T00:00:00.000Z', n: null });
    const readBack = JSON.parse(JSON.stringify(sealed)) as AuditRecordV1;
    assert.equal(verdict([readBack]), 'ok');
  });
});

describe('verifyAuditChain', () => {
  it('accepts an intact chain, an empty one, and (partial) a segment', () => {
    assert.equal(verdict(chain(6)), 'ok');
    assert.equal(verdict([]), 'ok');
    assert.deepEqual(verifyAuditChain(chain(6).slice(2), { partial: true }), { ok: true });
    assert.equal(verdict(chain(6).slice(2)), 'deleted@1', 'a segment is not a whole chain');
  });

  it('edited: content changed', () => {
    const c = chain(5);
    c[2] = { ...c[2], details: { n: 99 } };
    assert.equal(verdict(c), 'edited@3');
  });

  it('edited: the hash field changed', () => {
    const c = chain(5);
    c[4] = { ...c[4], hash: 'f'.repeat(64) };
    assert.equal(verdict(c), 'edited@5');
  });

  it('edited: content changed and resealed, so only the next link breaks', () => {
    const c = chain(5);
    c[2] = sealAuditRecord({ ...input(3), actor: 'mallory' }, 3, c[1].hash);
    assert.equal(verdict(c), 'edited@3');
  });

  it('deleted: a gap, the first record, or the rest renumbered down', () => {
    const c = chain(6);
    assert.equal(verdict([...c.slice(0, 2), ...c.slice(3)]), 'deleted@3');
    assert.equal(verdict(c.slice(1)), 'deleted@1');
    const renumbered = [...c.slice(0, 2), ...c.slice(3).map((r) => ({ ...r, seq: r.seq - 1 }))];
    assert.equal(verdict(renumbered), 'deleted@3');
  });

  it('inserted: a forged record with the rest renumbered up, two of them, or a duplicate number', () => {
    const c = chain(5);
    const forged = sealAuditRecord(input(9), 3, c[1].hash);
    const shifted = c.slice(2).map((r) => ({ ...r, seq: r.seq + 1 }));
    assert.equal(verdict([...c.slice(0, 2), forged, ...shifted]), 'inserted@3');
    const forged2 = sealAuditRecord(input(8), 4, forged.hash);
    const shifted2 = c.slice(2).map((r) => ({ ...r, seq: r.seq + 2 }));
    assert.equal(verdict([...c.slice(0, 2), forged, forged2, ...shifted2]), 'inserted@3');
    assert.equal(verdict([...c.slice(0, 3), { ...c[2] }, ...c.slice(3)]), 'inserted@3');
  });

  it('inserted: a record the chain goes around', () => {
    const c = chain(4);
    // Record 3 replaced by a stranger whose successor still chains to record 2.
    const stranger = { ...sealAuditRecord(input(7), 3, 'e'.repeat(64)) };
    const next = sealAuditRecord(input(4), 4, c[1].hash);
    assert.equal(verdict([c[0], c[1], stranger, next]), 'inserted@3');
  });

  it('reordered: swapped seq numbers, or records listed out of order', () => {
    const c = chain(5);
    const swapped = [c[0], c[1], { ...c[3], seq: 3 }, { ...c[2], seq: 4 }, c[4]];
    assert.equal(verdict(swapped), 'reordered@3');
    assert.equal(verdict([c[0], c[2], c[1], c[3]]), 'reordered@2');
    assert.equal(verdict([c[1], c[0]]), 'reordered@1');
  });
});
