/** ChunkedMap against a plain Map: the same contents after any sequence of updates, and updates never mutate. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ChunkedMap } from './chunked-map.ts';

const sorted = (m: ReadonlyMap<string, number>) => [...m.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));

test('ChunkedMap behaves as a Map under random sets and removals, and `with` leaves the old map as it was', () => {
  const key = fc.oneof(fc.string({ maxLength: 4 }), fc.constantFrom('__proto__', 'constructor', ''));
  const update = fc.record({ set: fc.array(fc.tuple(key, fc.integer()), { maxLength: 40 }), remove: fc.array(key, { maxLength: 10 }) });
  fc.assert(
    fc.property(fc.array(fc.tuple(key, fc.integer()), { maxLength: 300 }), fc.array(update, { maxLength: 20 }), (initial, updates) => {
      let plain = new Map(initial);
      let chunked = ChunkedMap.from(initial);
      for (const u of updates) {
        const before = sorted(chunked);
        const next = chunked.with(u.set, u.remove);
        assert.deepEqual(sorted(chunked), before);
        plain = new Map(plain);
        for (const [k, v] of u.set) plain.set(k, v);
        for (const k of u.remove) plain.delete(k);
        chunked = next;
        assert.equal(chunked.size, plain.size);
        assert.deepEqual(sorted(chunked), sorted(plain));
        for (const [k, v] of plain) {
          assert.equal(chunked.get(k), v);
          assert.ok(chunked.has(k));
        }
        assert.deepEqual([...chunked.keys()].sort(), [...plain.keys()].sort());
        assert.deepEqual([...chunked.values()].sort(), [...plain.values()].sort());
        let n = 0;
        chunked.forEach(() => n++);
        assert.equal(n, plain.size);
      }
    }),
    { numRuns: 200 },
  );
});

test('a map that grows far past its buckets is spread again, and stays correct', () => {
  let m = ChunkedMap.from<number>([]);
  for (let i = 0; i < 5000; i++) m = m.with([[`k${i}`, i]]);
  assert.equal(m.size, 5000);
  for (let i = 0; i < 5000; i += 97) assert.equal(m.get(`k${i}`), i);
  assert.equal(ChunkedMap.of(m), m);
  assert.equal(ChunkedMap.of(new Map([['a', 1]])).get('a'), 1);
});
