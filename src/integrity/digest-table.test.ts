/**
 * The byte-keyed digest table must answer as the Appraiser's Map does (name → digests as bytes), for any names,
 * Unicode and lone surrogates included, and its hash must be MurmurHash3 as published (the native scanner computes
 * the same one).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DigestTable, LOOKUP_MISMATCH, LOOKUP_OK, LOOKUP_UNKNOWN, murmur3 } from './digest-table.ts';

const bytes = (s: string) => Buffer.from(s, 'utf8');

test('murmur3 gives the published MurmurHash3 x86_32 values (seed 0)', () => {
  const cases: [string, number][] = [
    ['', 0],
    ['a', 0x3c2569b2],
    ['ab', 0x9bbfd75f],
    ['abc', 0xb3dd93fa],
    ['abcd', 0x43ed676a],
    ['hello', 0x248bfa47],
    ['Hello, world!', 0xc0363e43],
    ['The quick brown fox jumps over the lazy dog', 0x2e4ff723],
  ];
  for (const [s, want] of cases) assert.equal(murmur3(bytes(s), 0, bytes(s).length) >>> 0, want, s);
  const b = bytes('xxhelloxx');
  assert.equal(murmur3(b, 2, 7) >>> 0, 0x248bfa47, 'a range of a buffer');
});

/** What the Appraiser's Map answers. */
function byMap(m: Map<string, Uint8Array[]>, name: string, digest: Uint8Array): number {
  const list = m.get(name);
  if (list === undefined) return LOOKUP_UNKNOWN;
  return list.some((d) => Buffer.compare(d, digest) === 0) ? LOOKUP_OK : LOOKUP_MISMATCH;
}

test('lookups agree with a Map, by string and by bytes, on generated tables', () => {
  const name = fc.oneof(fc.string({ maxLength: 12 }), fc.string({ unit: 'binary', maxLength: 12 }), fc.constantFrom('/usr/bin/ls', 'boot_aggregate', '\ud800', 'é', ''));
  const digest = fc.uint8Array({ minLength: 0, maxLength: 6 });
  fc.assert(
    fc.property(fc.array(fc.tuple(name, fc.array(digest, { maxLength: 3 })), { maxLength: 40 }), fc.array(fc.tuple(name, digest), { maxLength: 40 }), (entries, probes) => {
      const m = new Map<string, Uint8Array[]>(entries);
      const t = DigestTable.fromBytes(m);
      // every key and digest of the map, and random probes
      const all: [string, Uint8Array][] = [...probes];
      for (const [k, list] of m) for (const d of [...list, new Uint8Array([9, 9])]) all.push([k, d]);
      for (const [k, d] of all) {
        // a lone surrogate never comes out of decoding a list's UTF-8: such keys are left out, such names not asked
        if (Buffer.from(k, 'utf8').toString('utf8') !== k) continue;
        const want = byMap(m, k, d);
        assert.equal(t.lookup(k, d), want, `${JSON.stringify(k)} ${Buffer.from(d).toString('hex')}`);
        const kb = Buffer.from(`..${k}`, 'utf8');
        assert.equal(t.lookupBytes(kb, 2, kb.length, d), want);
      }
    }),
    { numRuns: 300 },
  );
});

test('from() decodes hex digests as Buffer.from does; a million-slot table stays at most half full', () => {
  const t = DigestTable.from(new Map([['/a', ['00ff', 'abcd']], ['/b', []]]));
  assert.equal(t.lookup('/a', Buffer.from('abcd', 'hex')), LOOKUP_OK);
  assert.equal(t.lookup('/a', Buffer.from('abce', 'hex')), LOOKUP_MISMATCH);
  assert.equal(t.lookup('/b', Buffer.from('abcd', 'hex')), LOOKUP_MISMATCH);
  assert.equal(t.lookup('/c', Buffer.from('abcd', 'hex')), LOOKUP_UNKNOWN);
  assert.equal(t.size, 2);
  const big = DigestTable.from(new Map(Array.from({ length: 3000 }, (_, i) => [`/p/${i}`, [i.toString(16).padStart(4, '0')]])));
  assert.ok(big.slots.length / 2 >= 6000);
  for (let i = 0; i < 3000; i += 7) assert.equal(big.lookup(`/p/${i}`, Buffer.from(i.toString(16).padStart(4, '0'), 'hex')), LOOKUP_OK);
});
