/** BoundedMap: the newest entries within the budget of weight, oldest evicted first, never the one just set. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BoundedMap } from './bounded-map.ts';

test('keeps the entries set last within the budget; setting again makes an entry the newest; take removes', () => {
  const m = new BoundedMap<{ w: number }>(10, (v) => v.w);
  m.set('a', { w: 4 });
  m.set('b', { w: 4 });
  m.set('a', { w: 4 }); // a is now newer than b
  m.set('c', { w: 4 }); // 12 > 10: the oldest (b) goes
  assert.equal(m.get('b'), undefined);
  assert.deepEqual([m.get('a'), m.get('c')], [{ w: 4 }, { w: 4 }]);
  assert.deepEqual(m.take('a'), { w: 4 });
  assert.equal(m.get('a'), undefined);
  assert.equal(m.size, 1);
  m.set('big', { w: 50 }); // over budget alone: kept, everything older goes
  assert.deepEqual([m.size, m.get('big')?.w, m.get('c')], [1, 50, undefined]);
  m.delete('big');
  assert.equal(m.size, 0);
});

test('many sets and re-sets of a few thousand keys stay within the budget and keep the newest', () => {
  const m = new BoundedMap<number>(1000, () => 1);
  for (let round = 0; round < 5; round++) for (let i = 0; i < 3000; i++) m.set(`k${i}`, round);
  assert.equal(m.size, 1000);
  assert.equal(m.get('k2999'), 4);
  assert.equal(m.get('k1999'), undefined);
});
