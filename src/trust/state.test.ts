/** The trust state machine: every transition rule of state.ts, and what never happens. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isTrustError, TrustErrorCode } from './errors.ts';
import { TRUST_STATES, type TrustRecord, type TrustState } from './model.ts';
import { initialTrust, stepTrust, VERIFIER, type TrustEvent } from './state.ts';
import { T0, trust } from './fleet.test-support.ts';

const good: TrustEvent = { kind: 'verdict', ok: true, fresh: true, reason: 'all good' };
const waiting: TrustEvent = { kind: 'verdict', ok: true, fresh: false, reason: 'entries wait for a quote' };
const bad: TrustEvent = { kind: 'verdict', ok: false, fresh: false, reason: '1 of 3 entries failed appraisal: /usr/bin/a' };
const readmit: TrustEvent = { kind: 'readmit', actor: 'alice', reason: 'file restored' };
const deadline = (ms: number): TrustEvent => ({ kind: 'deadline', deadlineMs: ms });
const iso = (ms: number) => new Date(ms).toISOString();

describe('stepTrust', () => {
  test('unverified → trusted on the first good verdict, with lastEvidence', () => {
    const s = stepTrust('a', trust('a', 'unverified'), good, T0 + 1000);
    assert.deepEqual(s.transition, { vm: 'a', from: 'unverified', to: 'trusted', at: iso(T0 + 1000), reason: 'all good', actor: VERIFIER });
    assert.equal(s.record.state, 'trusted');
    assert.equal(s.record.lastEvidence, iso(T0 + 1000));
  });

  test('a VM without a record is unverified', () => {
    const s = stepTrust('a', undefined, good, T0);
    assert.equal(s.transition?.from, 'unverified');
    assert.equal(s.record.state, 'trusted');
  });

  test('any state → untrusted on a failed verdict; an untrusted VM stays so, its first reason kept', () => {
    for (const from of ['unverified', 'trusted', 'unreachable'] as TrustState[]) {
      const s = stepTrust('a', trust('a', from), bad, T0 + 5);
      assert.equal(s.transition?.from, from);
      assert.equal(s.transition?.to, 'untrusted');
      assert.equal(s.transition?.actor, VERIFIER);
      assert.match(s.transition?.reason ?? '', /failed appraisal/);
    }
    const u = trust('a', 'untrusted');
    const s = stepTrust('a', u, bad, T0 + 5);
    assert.equal(s.transition, null);
    assert.equal(s.record, u);
  });

  test('untrusted stays untrusted whatever evidence comes, and whatever the deadline', () => {
    const u = trust('a', 'untrusted');
    for (const e of [good, waiting, bad, deadline(0)]) {
      const s = stepTrust('a', u, e, T0 + 1e9);
      assert.equal(s.transition, null, e.kind);
      assert.equal(s.record, u);
    }
  });

  test('re-admission: untrusted → unverified, by the operator, with the reason; then trusted at the next good verdict', () => {
    const s = stepTrust('a', trust('a', 'untrusted'), readmit, T0 + 10);
    assert.deepEqual(s.transition, { vm: 'a', from: 'untrusted', to: 'unverified', at: iso(T0 + 10), reason: 're-admitted: file restored', actor: 'alice' });
    const t = stepTrust('a', s.record, good, T0 + 20);
    assert.equal(t.transition?.to, 'trusted');
  });

  test('re-admission needs an untrusted VM, an actor and a reason', () => {
    for (const from of ['unverified', 'trusted', 'unreachable'] as TrustState[]) {
      assert.throws(() => stepTrust('a', trust('a', from), readmit, T0), (e) => isTrustError(e) && e.code === TrustErrorCode.notUntrusted);
    }
    for (const ev of [{ ...readmit, reason: ' ' }, { ...readmit, actor: '' }] as TrustEvent[]) {
      assert.throws(() => stepTrust('a', trust('a', 'untrusted'), ev, T0), (e) => isTrustError(e) && e.code === TrustErrorCode.reasonRequired);
    }
  });

  test('trusted → unreachable after the deadline without fresh evidence, not at it; back to trusted on good evidence', () => {
    const t = trust('a', 'trusted'); // lastEvidence T0
    assert.equal(stepTrust('a', t, deadline(30_000), T0 + 30_000).transition, null);
    const s = stepTrust('a', t, deadline(30_000), T0 + 30_001);
    assert.equal(s.transition?.to, 'unreachable');
    assert.equal(s.transition?.actor, VERIFIER);
    assert.match(s.transition?.reason ?? '', /no fresh evidence since 2025-01-01T00:00:00.000Z \(deadline 30000 ms\)/);
    const back = stepTrust('a', s.record, good, T0 + 40_000);
    assert.equal(back.transition?.from, 'unreachable');
    assert.equal(back.transition?.to, 'trusted');
  });

  test('unverified → unreachable after the deadline counted from entering the state', () => {
    const u = initialTrust('a', T0);
    assert.equal(stepTrust('a', u, deadline(1000), T0 + 1000).transition, null);
    assert.equal(stepTrust('a', u, deadline(1000), T0 + 1001).transition?.to, 'unreachable');
    // a re-admitted VM gets a full deadline, whatever its old lastEvidence
    const old: TrustRecord = { ...u, since: iso(T0 + 50_000), lastEvidence: iso(T0) };
    assert.equal(stepTrust('a', old, deadline(1000), T0 + 50_500).transition, null);
  });

  test('the deadline reads times in other ISO forms too (a store may write them so)', () => {
    const r: TrustRecord = { ...trust('a', 'trusted'), since: '2025-01-01T00:00:00Z', lastEvidence: '2025-01-01T01:00:00+01:00' };
    assert.equal(stepTrust('a', r, deadline(1000), T0 + 1000).transition, null);
    assert.equal(stepTrust('a', r, deadline(1000), T0 + 1001).transition?.to, 'unreachable');
  });

  test('unreachable stays unreachable on a tick; good but not fresh evidence changes nothing', () => {
    const r = trust('a', 'unreachable');
    assert.equal(stepTrust('a', r, deadline(0), T0 + 1e9).record, r);
    for (const from of TRUST_STATES) {
      const rec = trust('a', from);
      assert.equal(stepTrust('a', rec, waiting, T0 + 1).record, rec, from);
    }
  });

  test('fresh evidence on a trusted VM moves only lastEvidence, without a transition', () => {
    const s = stepTrust('a', trust('a', 'trusted'), good, T0 + 7);
    assert.equal(s.transition, null);
    assert.equal(s.record.state, 'trusted');
    assert.equal(s.record.since, iso(T0));
    assert.equal(s.record.lastEvidence, iso(T0 + 7));
  });

  test('a bad deadline or time is refused', () => {
    assert.throws(() => stepTrust('a', trust('a', 'trusted'), deadline(-1), T0), (e) => isTrustError(e) && e.code === TrustErrorCode.badArgument);
    assert.throws(() => stepTrust('a', trust('a', 'trusted'), good, Number.NaN), (e) => isTrustError(e) && e.code === TrustErrorCode.badArgument);
  });
});
