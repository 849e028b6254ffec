/**
 * The compiled reference monitor against the plain one (reference.test-support.ts, straight from DESIGN.md §2):
 * random valid policies (fast-check), the real Xen policies, and named cases whose expectations come from
 * DESIGN.md and Xen's semantics, never from the monitor's output.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { relative } from 'node:path';
import fc from 'fast-check';
import type { Policy } from '../policy/model.ts';
import { UNLABELED } from '../policy/model.ts';
import { loadXenPolicy, XEN_DATA, xenPolicyFiles } from '../policy/xen-data.test-support.ts';
import { validatePolicy } from '../policy/validate.ts';
import { arbPolicy, arbPolicyAndQueries, arbWallOps } from '../policy/policy.arbitrary.ts';
import { compilePolicy, type CompiledPolicy } from './compile.ts';
import { WallState, type StartAnswer } from './chinese-wall.ts';
import { explainAuthorized, explainShare, explainStart, explainUse } from './decisions.ts';
import { isMonitorError } from './errors.ts';
import {
  PlainHost,
  plainAuthorized,
  plainCommonColors,
  plainLabel,
  plainMissing,
  plainShare,
  plainUse,
} from './reference.test-support.ts';

const RUNS = 300;

// ---- comparing one policy, compiled vs plain ---------------------------------------------------------------------

function assertValid(p: Policy): void {
  assert.deepEqual(validatePolicy(p), [], 'the test policy itself must be valid');
}

function checkShare(p: Policy, c: CompiledPolicy, a: string, b: string): void {
  const expected = plainShare(p, a, b);
  assert.equal(c.share(c.label(a), c.label(b)), expected, `share(${a}, ${b})`);
  const e = explainShare(c, a, b);
  assert.equal(e.allow, expected, `explainShare(${a}, ${b}).allow`);
  assert.deepEqual(new Set(e.colors), plainCommonColors(p, a, b), `explainShare(${a}, ${b}).colors`);
  assert.equal(new Set(e.colors).size, e.colors.length, 'no color named twice');
}

function checkUse(p: Policy, c: CompiledPolicy, vm: string, res: string): void {
  const expected = plainUse(p, vm, res);
  assert.equal(c.use(c.label(vm), c.resource(res)), expected, `use(${vm}, ${res})`);
  const e = explainUse(c, vm, res);
  assert.equal(e.allow, expected, `explainUse(${vm}, ${res}).allow`);
  assert.equal(e.color, p.resources.find((r) => r.name === res)!.color);
}

function checkAuthorized(p: Policy, c: CompiledPolicy, host: string, vm: string): void {
  const expected = plainAuthorized(p, host, vm);
  assert.equal(c.authorized(c.label(host), c.label(vm)), expected, `authorized(${host}, ${vm})`);
  const e = explainAuthorized(c, host, vm);
  assert.equal(e.allow, expected, `explainAuthorized(${host}, ${vm}).allow`);
  assert.deepEqual(new Set(e.missing), plainMissing(p, host, vm), `explainAuthorized(${host}, ${vm}).missing`);
}

/** Each running / blocked counter of the compiled state equals the plain map's (absent = 0). */
function checkCounters(p: Policy, c: CompiledPolicy, ws: WallState, plain: PlainHost, where: string): void {
  for (const w of p.walls ?? []) {
    const i = c.wallIndex(w);
    assert.equal(ws.running[i], plain.running.get(w) ?? 0, `${where}: running[${w}]`);
    assert.equal(ws.blocked[i], plain.blocked.get(w) ?? 0, `${where}: blocked[${w}]`);
  }
}

/**
 * A denial's blockers, checked against the plain state: at least one; each names a wall type of the starting
 * label that is blocked, a conflict set holding both that type and the running label's type, and a label that
 * really runs (with its count) and holds that type but not the blocked one. And exactly the (set, wall, running
 * label) triples the plain state implies, no more, no fewer.
 */
function checkBlockers(p: Policy, plain: PlainHost, label: string, answer: StartAnswer): void {
  assert.equal(answer.allow, false);
  assert.equal(answer.reason, 'conflict_set_occupied');
  assert.ok(answer.blockers.length >= 1, `a denial of "${label}" names at least one blocker`);
  const mine = plainLabel(p, label).walls;
  for (const b of answer.blockers) {
    assert.ok(mine.includes(b.wall), `blocked wall ${b.wall} is one of ${label}'s`);
    assert.ok((plain.blocked.get(b.wall) ?? 0) > 0, `${b.wall} is really blocked`);
    assert.ok(
      p.conflicts.some((cs) => cs.name === b.conflictSet && cs.walls.includes(b.wall) && cs.walls.includes(b.runningWall)),
      `conflict set ${b.conflictSet} holds both ${b.wall} and ${b.runningWall}`,
    );
    assert.equal(plain.labels.get(b.runningLabel) ?? 0, b.running, `${b.runningLabel} runs ${b.running} times`);
    assert.ok(b.running > 0);
    const theirs = plainLabel(p, b.runningLabel).walls;
    assert.ok(theirs.includes(b.runningWall), `${b.runningLabel} holds ${b.runningWall}`);
    assert.ok(!theirs.includes(b.wall), `${b.runningLabel} does not hold the blocked ${b.wall} itself`);
  }
  const expected = new Set<string>();
  for (const t of mine) {
    if ((plain.blocked.get(t) ?? 0) === 0) continue;
    for (const cs of p.conflicts) {
      if (!cs.walls.includes(t)) continue;
      for (const r of plain.labels.keys()) {
        const theirs = plainLabel(p, r).walls;
        if (!theirs.includes(t) && theirs.some((u) => cs.walls.includes(u))) expected.add(`${cs.name}|${t}|${r}`);
      }
    }
  }
  assert.deepEqual(new Set(answer.blockers.map((b) => `${b.conflictSet}|${b.wall}|${b.runningLabel}`)), expected);
}

/**
 * Runs a start sequence on a fresh host, compiled and plain side by side: the same allow/deny for each start,
 * the same counters after each, valid blockers for each denial; then stops every running VM (in reverse) and
 * expects all counters back at 0.
 */
function checkStartSequence(p: Policy, c: CompiledPolicy, seq: readonly string[]): void {
  const ws = new WallState(c);
  const plain = new PlainHost(p);
  const running: string[] = [];
  for (const [k, label] of seq.entries()) {
    const where = `start ${k + 1} (${label}) of [${seq.join(', ')}]`;
    const expected = plain.mayStart(label);
    const answer = ws.start(c.label(label));
    assert.equal(answer.allow, expected, where);
    if (expected) {
      assert.equal(answer.reason, p.walls === null ? 'no_chwall_component' : 'no_conflict', where);
      assert.deepEqual(answer.blockers, []);
      plain.start(label);
      running.push(label);
    } else {
      checkBlockers(p, plain, label, answer);
    }
    checkCounters(p, c, ws, plain, where);
  }
  for (const label of [...running].reverse()) {
    ws.stop(c.label(label));
    plain.stop(label);
  }
  checkCounters(p, c, ws, plain, `after stopping [${seq.join(', ')}]`);
  assert.ok(ws.running.every((n) => n === 0) && ws.blocked.every((n) => n === 0));
  assert.equal(ws.runningLabels.size, 0);
}

// ---- random policies ---------------------------------------------------------------------------------------------

test('the policy generator yields valid policies, some past 32 and 64 colors with high colors really used', () => {
  const sample = fc.sample(arbPolicy(), { numRuns: 400, seed: 7 });
  for (const p of sample) assertValid(p);
  const usesHigh = (p: Policy, min: number) =>
    p.colors !== null && p.colors.length > min && p.labels.some((l) => l.colors.some((c) => Number(c.slice(1)) >= min));
  assert.ok(sample.filter((p) => usesHigh(p, 32)).length >= 40, 'enough policies with labels holding colors ≥ 32');
  assert.ok(sample.filter((p) => usesHigh(p, 64)).length >= 10, 'enough policies with labels holding colors ≥ 64');
  assert.ok(sample.some((p) => p.colors === null), 'some policies without STE');
  assert.ok(sample.some((p) => p.walls === null), 'some policies without a Chinese Wall');
  assert.ok(sample.some((p) => p.labels.some((l) => l.name === UNLABELED)), 'some with __UNLABELED__');
  const overlapping = (p: Policy) => (p.walls ?? []).some((w) => p.conflicts.filter((cs) => cs.walls.includes(w)).length > 1);
  assert.ok(sample.filter(overlapping).length >= 20, 'enough policies with a wall type in two conflict sets');
});

test('share, use and authorized answer as the plain evaluator on random queries', () => {
  fc.assert(
    fc.property(arbPolicyAndQueries(), ({ policy, pairs, uses, auths }) => {
      assertValid(policy);
      const c = compilePolicy(policy);
      for (const [a, b] of pairs) checkShare(policy, c, a, b);
      for (const [vm, r] of uses) checkUse(policy, c, vm, r);
      for (const [h, vm] of auths) checkAuthorized(policy, c, h, vm);
    }),
    { numRuns: RUNS },
  );
});

test('share is symmetric and equals the plain evaluator on all label pairs, use on all (label, resource) pairs', () => {
  fc.assert(
    fc.property(arbPolicy(), (p) => {
      assertValid(p);
      const c = compilePolicy(p);
      for (const a of p.labels) {
        for (const b of p.labels) {
          checkShare(p, c, a.name, b.name);
          assert.equal(c.share(c.label(a.name), c.label(b.name)), c.share(c.label(b.name), c.label(a.name)));
        }
        for (const r of p.resources) checkUse(p, c, a.name, r.name);
        if (p.host !== null) checkAuthorized(p, c, p.host, a.name);
      }
    }),
    { numRuns: RUNS },
  );
});

test('a random start/stop sequence on one host allows and denies as the plain Chinese Wall, with the same counters', () => {
  fc.assert(
    fc.property(
      arbPolicy({ chwall: 'always', maxLabels: 6 }).chain((p) => arbWallOps(p, 40).map((ops) => ({ p, ops }))),
      ({ p, ops }) => {
        assertValid(p);
        const c = compilePolicy(p);
        const ws = new WallState(c);
        const plain = new PlainHost(p);
        const running: string[] = [];
        for (const [k, op] of ops.entries()) {
          if (op.kind === 'start') {
            const where = `op ${k}: start ${op.label}`;
            const expected = plain.mayStart(op.label);
            // The explained answer for the VMs running now agrees with the live state.
            assert.equal(explainStart(c, op.label, running).allow, expected, `${where} (explainStart)`);
            assert.equal(ws.mayStart(c.label(op.label)), expected, `${where} (mayStart)`);
            const answer = ws.start(c.label(op.label));
            assert.equal(answer.allow, expected, where);
            if (expected) {
              plain.start(op.label);
              running.push(op.label);
            } else checkBlockers(p, plain, op.label, answer);
          } else {
            if (running.length === 0) continue;
            const [label] = running.splice(op.pick % running.length, 1);
            ws.stop(c.label(label));
            plain.stop(label);
          }
          checkCounters(p, c, ws, plain, `after op ${k}`);
          for (const l of p.labels) assert.equal(ws.runningLabels.get(c.label(l.name)) ?? 0, plain.labels.get(l.name) ?? 0);
        }
      },
    ),
    { numRuns: RUNS },
  );
});

test('every start sequence of length ≤ 3 on small random policies matches the plain Chinese Wall', () => {
  fc.assert(
    fc.property(arbPolicy({ chwall: 'always', maxLabels: 4, maxWalls: 5 }), (p) => {
      assertValid(p);
      const c = compilePolicy(p);
      for (const seq of sequences(p.labels.map((l) => l.name), 3)) checkStartSequence(p, c, seq);
    }),
    { numRuns: 100 },
  );
});

test('stopping a label that does not run is refused with not_running, and changes nothing', () => {
  const p = twoSets();
  const c = compilePolicy(p);
  const ws = new WallState(c);
  ws.start(c.label('B'));
  assert.throws(() => ws.stop(c.label('A')), (e: unknown) => isMonitorError(e) && e.code === 'not_running');
  assert.equal(ws.blocked[c.wallIndex('a')], 1);
  assert.equal(ws.running[c.wallIndex('b')], 1);
});

/** All sequences over `items` of length 0..max (with repetition), shortest first. */
function* sequences(items: readonly string[], max: number): Generator<string[]> {
  let level: string[][] = [[]];
  yield [];
  for (let len = 1; len <= max; len++) {
    const next: string[][] = [];
    for (const s of level) for (const i of items) next.push([...s, i]);
    yield* next;
    level = next;
  }
}

test('the sequence enumerator yields each sequence of length ≤ 3 exactly once', () => {
  const all = [...sequences(['x', 'y'], 3)].map((s) => s.join(''));
  assert.equal(all.length, 1 + 2 + 4 + 8);
  assert.equal(new Set(all).size, all.length);
});

// ---- named cases from DESIGN.md §2 (hand-built policies) ---------------------------------------------------------

const base = (): Pick<Policy, 'name' | 'version' | 'conflicts' | 'resources'> => ({ name: 'named', version: '1.0', conflicts: [], resources: [] });

/** S1 = {a, b}, S2 = {a, c}: wall type `a` in two conflict sets. D holds b and c (no set holds both). */
function twoSets(): Policy {
  return {
    ...base(),
    colors: ['x'],
    walls: ['a', 'b', 'c', 'h'],
    conflicts: [
      { name: 'S1', walls: ['a', 'b'] },
      { name: 'S2', walls: ['a', 'c'] },
    ],
    host: 'H',
    labels: [
      { name: 'H', colors: ['x'], walls: ['h'], onUntrusted: 'isolate' },
      { name: 'A', colors: ['x'], walls: ['a'], onUntrusted: 'isolate' },
      { name: 'B', colors: ['x'], walls: ['b'], onUntrusted: 'isolate' },
      { name: 'C', colors: ['x'], walls: ['c'], onUntrusted: 'isolate' },
      { name: 'D', colors: ['x'], walls: ['b', 'c'], onUntrusted: 'alert' },
    ],
  };
}

test('a policy without STE (colors: null) shares everything, restricts no resource use and no host', () => {
  const p: Policy = {
    ...base(),
    colors: null,
    walls: ['w'],
    host: 'dom0',
    labels: [
      { name: 'dom0', colors: [], walls: ['w'], onUntrusted: 'isolate' },
      { name: 'a', colors: [], walls: [], onUntrusted: 'isolate' },
      { name: 'b', colors: [], walls: ['w'], onUntrusted: 'alert' },
    ],
  };
  assertValid(p);
  const c = compilePolicy(p);
  for (const x of ['dom0', 'a', 'b']) {
    for (const y of ['dom0', 'a', 'b']) {
      assert.equal(c.share(c.label(x), c.label(y)), true, `${x} shares with ${y}`);
      assert.deepEqual(explainShare(c, x, y), { allow: true, reason: 'no_ste_component', colors: [] });
      assert.equal(explainAuthorized(c, x, y).allow, true);
    }
  }
});

test('a policy without a Chinese Wall (walls: null) restricts no start', () => {
  const p: Policy = {
    ...base(),
    colors: ['x', 'y'],
    walls: null,
    host: 'dom0',
    labels: [
      { name: 'dom0', colors: ['x', 'y'], walls: [], onUntrusted: 'isolate' },
      { name: 'a', colors: ['x'], walls: [], onUntrusted: 'isolate' },
      { name: 'b', colors: ['y'], walls: [], onUntrusted: 'isolate' },
    ],
  };
  assertValid(p);
  const c = compilePolicy(p);
  const ws = new WallState(c);
  for (const l of ['a', 'b', 'a', 'b', 'dom0', 'a']) {
    assert.deepEqual(ws.start(c.label(l)), { allow: true, reason: 'no_chwall_component', blockers: [] });
  }
  assert.equal(explainStart(c, 'b', ['a', 'a']).allow, true);
});

test('a label with no colors shares nothing, not even with itself', () => {
  const p: Policy = {
    ...base(),
    colors: ['x'],
    walls: [],
    host: 'dom0',
    labels: [
      { name: 'dom0', colors: ['x'], walls: [], onUntrusted: 'isolate' },
      { name: 'mute', colors: [], walls: [], onUntrusted: 'isolate' },
    ],
    resources: [{ name: 'disk', color: 'x' }],
  };
  assertValid(p);
  const c = compilePolicy(p);
  assert.equal(c.share(c.label('mute'), c.label('mute')), false);
  assert.deepEqual(explainShare(c, 'mute', 'mute'), { allow: false, reason: 'no_common_color', colors: [] });
  assert.equal(c.share(c.label('mute'), c.label('dom0')), false);
  assert.equal(c.use(c.label('mute'), c.resource('disk')), false);
  // … but it holds no color the host lacks, so a host may run it.
  assert.equal(c.authorized(c.label('dom0'), c.label('mute')), true);
});

test('a VM with several colors (a VIO label) shares with each of them, while they share nothing with each other', () => {
  const p: Policy = {
    ...base(),
    colors: ['pepsi', 'coke', 'infra'],
    walls: ['pepsi-w', 'coke-w'],
    conflicts: [{ name: 'soft-drinks', walls: ['pepsi-w', 'coke-w'] }],
    host: 'infra-host',
    labels: [
      { name: 'infra-host', colors: ['pepsi', 'coke', 'infra'], walls: [], onUntrusted: 'isolate' },
      { name: 'pepsi-web', colors: ['pepsi'], walls: ['pepsi-w'], onUntrusted: 'isolate' },
      { name: 'coke-db', colors: ['coke'], walls: ['coke-w'], onUntrusted: 'isolate' },
      { name: 'vio', colors: ['pepsi', 'coke'], walls: [], onUntrusted: 'alert' },
    ],
    resources: [
      { name: 'pepsi-disk', color: 'pepsi' },
      { name: 'coke-disk', color: 'coke' },
    ],
  };
  assertValid(p);
  const c = compilePolicy(p);
  assert.deepEqual(explainShare(c, 'vio', 'pepsi-web'), { allow: true, reason: 'common_color', colors: ['pepsi'] });
  assert.deepEqual(explainShare(c, 'coke-db', 'vio'), { allow: true, reason: 'common_color', colors: ['coke'] });
  assert.equal(explainShare(c, 'pepsi-web', 'coke-db').allow, false);
  assert.equal(explainShare(c, 'vio', 'vio').colors.length, 2);
  assert.equal(c.use(c.label('vio'), c.resource('pepsi-disk')), true);
  assert.equal(c.use(c.label('vio'), c.resource('coke-disk')), true);
  assert.equal(c.use(c.label('pepsi-web'), c.resource('coke-disk')), false);
  // The VIO label holds no wall type: it runs beside either side of the conflict.
  assert.equal(explainStart(c, 'vio', ['pepsi-web']).allow, true);
  assert.equal(explainStart(c, 'coke-db', ['pepsi-web', 'vio']).allow, false);
});

test('a VM whose colors its host label lacks is not authorized to run, and the missing colors are named', () => {
  const p: Policy = {
    ...base(),
    colors: ['x', 'y', 'z'],
    walls: [],
    host: 'dom0',
    labels: [
      { name: 'dom0', colors: ['x', 'y'], walls: [], onUntrusted: 'isolate' },
      { name: 'xy', colors: ['y', 'x'], walls: [], onUntrusted: 'isolate' },
      { name: 'xz', colors: ['x', 'z'], walls: [], onUntrusted: 'isolate' },
    ],
  };
  assertValid(p);
  const c = compilePolicy(p);
  assert.deepEqual(explainAuthorized(c, 'dom0', 'xy'), { allow: true, reason: 'host_covers', missing: [] });
  assert.deepEqual(explainAuthorized(c, 'dom0', 'xz'), { allow: false, reason: 'not_authorized', missing: ['z'] });
});

test('colors past the 32-bit word boundary (70 colors) are told apart: c5, c33, c64, c69', () => {
  const colors = Array.from({ length: 70 }, (_, i) => `c${i}`);
  const p: Policy = {
    ...base(),
    colors,
    walls: [],
    host: 'dom0',
    labels: [
      { name: 'dom0', colors: colors.filter((c) => c !== 'c64'), walls: [], onUntrusted: 'isolate' },
      { name: 'hi', colors: ['c33', 'c69'], walls: [], onUntrusted: 'isolate' },
      { name: 'top', colors: ['c69'], walls: [], onUntrusted: 'isolate' },
      { name: 'low', colors: ['c5', 'c1'], walls: [], onUntrusted: 'isolate' },
      { name: 'w1', colors: ['c37'], walls: [], onUntrusted: 'isolate' },
      { name: 'b64', colors: ['c64', 'c0'], walls: [], onUntrusted: 'isolate' },
    ],
    resources: [
      { name: 'r69', color: 'c69' },
      { name: 'r33', color: 'c33' },
      { name: 'r1', color: 'c1' },
    ],
  };
  assertValid(p);
  const c = compilePolicy(p);
  assert.equal(c.words, 3);
  assert.deepEqual(explainShare(c, 'hi', 'top').colors, ['c69']);
  assert.equal(c.share(c.label('hi'), c.label('low')), false);
  assert.equal(c.share(c.label('w1'), c.label('low')), false, 'c37 is not c5 (same bit in the next word)');
  assert.equal(c.share(c.label('w1'), c.label('hi')), false, 'c37 is not c33');
  assert.equal(c.share(c.label('b64'), c.label('low')), false, 'c64 is not c0 — but b64 also holds c0 …');
  assert.equal(explainShare(c, 'b64', 'dom0').colors.join(), 'c0');
  assert.equal(c.use(c.label('top'), c.resource('r69')), true);
  assert.equal(c.use(c.label('top'), c.resource('r33')), false);
  assert.equal(c.use(c.label('low'), c.resource('r1')), true);
  assert.deepEqual(explainAuthorized(c, 'dom0', 'b64').missing, ['c64']);
  assert.equal(c.authorized(c.label('dom0'), c.label('hi')), true);
  for (const a of p.labels) for (const b of p.labels) checkShare(p, c, a.name, b.name);
});

test('a wall type in two conflict sets is blocked per set: stopping one of two blockers keeps the block', () => {
  const p = twoSets();
  assertValid(p);
  const c = compilePolicy(p);
  const ws = new WallState(c);
  const a = c.label('A');
  assert.equal(ws.start(c.label('B')).allow, true);
  assert.equal(ws.start(c.label('C')).allow, true, 'B and C are in no common conflict set');
  assert.equal(ws.blocked[c.wallIndex('a')], 2, 'a is blocked once through S1 (by B) and once through S2 (by C)');
  const denied = ws.check(a);
  assert.equal(denied.allow, false);
  assert.deepEqual(
    denied.blockers.map((b) => [b.conflictSet, b.runningLabel, b.runningWall]).sort(),
    [['S1', 'B', 'b'], ['S2', 'C', 'c']],
  );
  ws.stop(c.label('B'));
  const still = ws.check(a);
  assert.equal(still.allow, false, 'C still holds S2');
  assert.deepEqual(still.blockers.map((b) => b.runningLabel), ['C']);
  ws.stop(c.label('C'));
  assert.equal(ws.check(a).allow, true);

  // One label meeting both sets blocks `a` once per set; one stop undoes both.
  assert.equal(ws.start(c.label('D')).allow, true);
  assert.equal(ws.blocked[c.wallIndex('a')], 2);
  assert.equal(ws.check(a).allow, false);
  ws.stop(c.label('D'));
  assert.equal(ws.blocked[c.wallIndex('a')], 0);

  // Two VMs of one label: reference counts, the block holds until the last one stops.
  ws.start(c.label('B'));
  ws.start(c.label('B'));
  assert.equal(ws.check(a).blockers[0].running, 2);
  ws.stop(c.label('B'));
  assert.equal(ws.check(a).allow, false, 'one B still runs');
  ws.stop(c.label('B'));
  assert.equal(ws.check(a).allow, true);
  // And A running blocks b and c, but not a second A.
  ws.start(a);
  assert.equal(ws.check(c.label('B')).allow, false);
  assert.equal(ws.check(c.label('C')).allow, false);
  assert.equal(ws.check(c.label('D')).allow, false);
  assert.equal(ws.start(a).allow, true);
  assert.equal(ws.check(c.label('H')).allow, true, 'h is in no conflict set');
  for (const seq of sequences(p.labels.map((l) => l.name), 3)) checkStartSequence(p, c, seq);
});

// ---- the real Xen policies ---------------------------------------------------------------------------------------

/** Runs `fn` on a real Xen policy (imported with its gen1 label template where it has one). */
function withXen(_t: unknown, rel: string, fn: (p: Policy) => void): void {
  fn(loadXenPolicy(rel));
}

const DATA = XEN_DATA;
const XEN_FILES = xenPolicyFiles();

test('the Xen data set is there (every generation)', (t) => {
  if (!existsSync(DATA)) return t.skip(`no data folder at ${DATA}`);
  assert.ok(XEN_FILES.length >= 20, `found ${XEN_FILES.length} policy files`);
});

for (const file of XEN_FILES) {
  const rel = relative(DATA, file);
  test(`Xen ${rel}: compiled = plain on all label pairs, (label, resource) pairs, (host, label) pairs and start sequences ≤ 3`, (t) => {
    withXen(t, rel, (p) => {
      assertValid(p);
      const c = compilePolicy(p);
      const names = p.labels.map((l) => l.name);
      for (const a of names) {
        for (const b of names) {
          checkShare(p, c, a, b);
          // every label stands once as the host label: covers the bootstrap label and more
          checkAuthorized(p, c, b, a);
        }
        for (const r of p.resources) checkUse(p, c, a, r.name);
      }
      let n = 0;
      for (const seq of sequences(names, 3)) {
        checkStartSequence(p, c, seq);
        n++;
      }
      assert.equal(n, 1 + names.length + names.length ** 2 + names.length ** 3);
    });
  });
}

const XM_TEST = 'gen3_xen-3.2_to_4.1/xm-test-security_policy.xml';

test('xm-test: green shares with SystemManagement but not with red', (t) => {
  withXen(t, XM_TEST, (p) => {
    const c = compilePolicy(p);
    assert.deepEqual(explainShare(c, 'green', 'SystemManagement'), { allow: true, reason: 'common_color', colors: ['green'] });
    assert.equal(explainShare(c, 'green', 'red').allow, false);
    assert.equal(explainShare(c, 'green', 'red').reason, 'no_common_color');
    assert.equal(c.use(c.label('green'), c.resource('green')), true);
    assert.equal(c.use(c.label('green'), c.resource('red')), false);
    assert.equal(c.authorized(c.label('SystemManagement'), c.label('blue')), true, 'Dom0 covers every color');
  });
});

test('xm-test: with a blue VM running, red may not start (conflict set RER, blocked by blue) but green may', (t) => {
  withXen(t, XM_TEST, (p) => {
    const c = compilePolicy(p);
    const ws = new WallState(c);
    assert.equal(ws.start(c.label('blue')).allow, true);
    const red = ws.check(c.label('red'));
    assert.equal(red.allow, false);
    assert.deepEqual(red.blockers, [{ conflictSet: 'RER', wall: 'red', runningLabel: 'blue', runningWall: 'blue', running: 1 }]);
    assert.equal(ws.start(c.label('green')).allow, true);
    assert.equal(ws.start(c.label('SystemManagement')).allow, true);
    // the same question, explained from a list of running labels
    assert.equal(explainStart(c, 'red', ['blue', 'green']).allow, false);
    assert.equal(explainStart(c, 'green', ['blue']).allow, true);
  });
});

test('xm-test: after the blue VM stops, red may start (and then blue may not)', (t) => {
  withXen(t, XM_TEST, (p) => {
    const c = compilePolicy(p);
    const ws = new WallState(c);
    ws.start(c.label('blue'));
    assert.equal(ws.check(c.label('red')).allow, false);
    ws.stop(c.label('blue'));
    assert.equal(ws.start(c.label('red')).allow, true);
    const blue = ws.check(c.label('blue'));
    assert.equal(blue.allow, false);
    assert.deepEqual(blue.blockers.map((b) => `${b.conflictSet}:${b.runningLabel}`), ['RER:red']);
  });
});

test('xm-test: two blue VMs may both run, and red stays blocked until both stop', (t) => {
  withXen(t, XM_TEST, (p) => {
    const c = compilePolicy(p);
    const ws = new WallState(c);
    assert.equal(ws.start(c.label('blue')).allow, true);
    assert.equal(ws.start(c.label('blue')).allow, true);
    assert.equal(ws.check(c.label('red')).blockers[0].running, 2);
    ws.stop(c.label('blue'));
    assert.equal(ws.check(c.label('red')).allow, false);
    ws.stop(c.label('blue'));
    assert.equal(ws.check(c.label('red')).allow, true);
  });
});

test('xm-test has no __UNLABELED__ label: an unlabeled VM has no label to share through', (t) => {
  withXen(t, XM_TEST, (p) => {
    const c = compilePolicy(p);
    assert.equal(c.unlabeled, -1);
    assert.equal(c.labelIndex(UNLABELED), -1);
  });
});

test('test policy (gen3): the VIO label shares with PepsiCo and with CocaCola, which share nothing with each other', (t) => {
  withXen(t, 'gen3_xen-3.2_to_4.1/test-security_policy.xml', (p) => {
    const c = compilePolicy(p);
    assert.equal(explainShare(c, 'VIO', 'PepsiCo').allow, true);
    assert.equal(explainShare(c, 'VIO', 'CocaCola').allow, true);
    assert.equal(explainShare(c, 'PepsiCo', 'CocaCola').allow, false);
  });
});

test('gen1 chwall policy (no STE): every pair of labels shares; Protection1 keeps HomeBanking and Fun apart', (t) => {
  withXen(t, 'gen1_xen-3.0.0/chwall/chwall-security_policy.xml', (p) => {
    assert.equal(p.colors, null);
    const c = compilePolicy(p);
    assert.equal(c.share(c.label('dom_HomeBanking'), c.label('dom_Fun')), true);
    assert.equal(explainStart(c, 'dom_Fun', ['dom_HomeBanking']).allow, false);
    assert.equal(explainStart(c, 'dom_BoincClient', ['dom_HomeBanking']).allow, true);
  });
});

test('gen1 ste policy (no Chinese Wall): any start is allowed; HomeBanking shares with the storage domain only via PersonalFinances', (t) => {
  withXen(t, 'gen1_xen-3.0.0/ste/ste-security_policy.xml', (p) => {
    assert.equal(p.walls, null);
    const c = compilePolicy(p);
    assert.equal(explainStart(c, 'dom_Fun', ['dom_HomeBanking', 'dom_BoincClient']).reason, 'no_chwall_component');
    assert.deepEqual(explainShare(c, 'dom_HomeBanking', 'dom_StorageDomain').colors, ['ste_PersonalFinances']);
    assert.equal(explainShare(c, 'dom_HomeBanking', 'dom_Fun').allow, false);
  });
});

test('mytest: __UNLABELED__ sits in both conflict sets, so a SecurityUnderwriting VM blocks it through each', (t) => {
  withXen(t, 'reconstructed_from_user_manual/mytest-security_policy.xml', (p) => {
    const c = compilePolicy(p);
    const ws = new WallState(c);
    assert.equal(ws.start(c.label('A-Bank.SecurityUnderwriting')).allow, true);
    assert.equal(ws.blocked[c.wallIndex(UNLABELED)], 2);
    const ul = ws.check(c.label(UNLABELED));
    assert.equal(ul.allow, false);
    assert.equal(new Set(ul.blockers.map((b) => b.conflictSet)).size, 2, 'one blocker per conflict set');
    assert.equal(ws.check(c.label('B-Bank')).allow, false);
    assert.equal(ws.check(c.label('A-Bank.MarketAnalysis')).allow, false);
    assert.equal(ws.start(c.label('A-Bank')).allow, true, 'A-Bank is on the same side of both walls');
    assert.equal(ws.start(c.label('AutoCorp')).allow, true);
  });
});
