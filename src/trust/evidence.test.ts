/**
 * Evidence without a vTPM (entries appraised as they come) and the rules that need no TPM: enrollment, a changed
 * file's verdict, increments out of order, unreadable evidence, waiting for a quote, reboot, re-admission.
 * Entries are built as `hueguard measure` prints them (measure-entry.ts + formatAsciiLine).
 */
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { formatAsciiLine, type ImaEntry } from '../integrity/ima-entry.ts';
import { imaNgEntry, pathEntry } from '../integrity/measure-entry.ts';
import { readRuntimePolicy } from '../integrity/runtime-policy.ts';
import { applyVerdict } from './engine.ts';
import { isTrustError, TrustErrorCode } from './errors.ts';
import {
  expectedFrom,
  newIntegrityState,
  processEvidence,
  readIntegrityState,
  readmitIntegrity,
  type EvidenceContext,
  type IntegrityState,
} from './evidence.ts';
import { bigFleet, T0 } from './fleet.test-support.ts';

const sha = (s: string) => createHash('sha256').update(s).digest();
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const file = (path: string, content: string) => pathEntry('file', path, sha(content));
const line = (e: ImaEntry) => formatAsciiLine(e);
const ctx: EvidenceContext = { now: T0 };

const FIRST = [file('/usr/bin/a', 'a v1'), file('/usr/bin/b', 'b v1'), pathEntry('symlink', '/usr/bin/c', sha('/usr/bin/a'))];

/** A VM enrolled from FIRST. */
function enrolled(): IntegrityState {
  return processEvidence(null, { entries: FIRST.map(line) }, ctx).newState;
}

const code = (c: string) => (e: unknown) => isTrustError(e) && e.code === c;

describe('processEvidence without a vTPM', () => {
  test('the first evidence enrolls the golden fingerprint and is good', () => {
    const { newState, verdict } = processEvidence(null, { entries: FIRST.map(line), from: 0 }, ctx);
    assert.equal(verdict.ok, true);
    assert.equal(verdict.fresh, true);
    assert.equal(verdict.enrolled, true);
    assert.equal(verdict.appraised, 3);
    assert.match(verdict.summary, /enrolled the golden fingerprint from 3 entries/);
    const fp = readRuntimePolicy(newState.fingerprint ?? '');
    assert.deepEqual(fp.digests.get('/usr/bin/a'), [hex(sha('a v1'))]);
    assert.equal(fp.meta.timestamp, new Date(T0).toISOString());
    assert.equal(newState.enrolledAt, new Date(T0).toISOString());
    assert.equal(expectedFrom(newState), 3);
    // the state is plain JSON
    assert.deepEqual(JSON.parse(JSON.stringify(newState)), newState);
  });

  test('a changed file fails, naming the path, the expected digest and the one found; a new file is unknown', () => {
    const changed = file('/usr/bin/a', 'a v2 — tampered');
    const fresh = file('/usr/bin/evil', 'x');
    const { newState, verdict } = processEvidence(enrolled(), { entries: [line(file('/usr/bin/b', 'b v1')), line(changed), line(fresh)], from: 3 }, ctx);
    assert.equal(verdict.ok, false);
    assert.equal(verdict.fresh, false);
    assert.deepEqual(verdict.failures, [
      { entry: 5, path: '/usr/bin/a', status: 'mismatch', expected: [hex(sha('a v1'))], found: hex(sha('a v2 — tampered')), alg: 'sha256' },
      { entry: 6, path: '/usr/bin/evil', status: 'unknown', expected: [], found: hex(sha('x')), alg: 'sha256' },
    ]);
    assert.match(verdict.summary, /^2 of 3 entries failed appraisal: \/usr\/bin\/a \(expected [0-9a-f]{12}…, found [0-9a-f]{12}…\); \/usr\/bin\/evil \(not in the fingerprint/);
    // the list is what it is: the verifier goes on after the bad entries
    assert.equal(expectedFrom(newState), 6);
    // and the trust engine makes the VM untrusted
    const fleet = bigFleet(2, 2); // labels cycle pepsi-web, coke-db, vio by (host + vm) % 3
    const iso = applyVerdict(fleet, 'h0000-v00', verdict, T0 + 1); // pepsi-web, isolate
    assert.equal(iso.transitions[0].to, 'untrusted');
    assert.deepEqual(iso.plans.map((p) => p.host), ['h0000']);
    assert.match(iso.transitions[0].reason, /\/usr\/bin\/a/);
  });

  test('later good increments are good and fresh; an empty one is a heartbeat', () => {
    const st = enrolled();
    const r = processEvidence(st, { entries: [line(file('/usr/bin/a', 'a v1'))] }, ctx);
    assert.deepEqual([r.verdict.ok, r.verdict.fresh, r.verdict.appraised], [true, true, 1]);
    const h = processEvidence(r.newState, { entries: [] }, ctx);
    assert.deepEqual([h.verdict.ok, h.verdict.fresh, h.verdict.appraised, h.verdict.summary], [true, true, 0, 'no new entries']);
  });

  test('the cached appraiser changes no verdict: the same increment from the same state, hit or miss, gives the same', () => {
    const s0 = enrolled();
    const inc1 = { entries: [line(file('/usr/bin/a', 'a v1')), line(file('/usr/bin/x', 'x'))] };
    const inc2 = { entries: [line(file('/usr/bin/b', 'b v2'))] };
    const r1 = processEvidence(s0, inc1, ctx);
    const r1again = processEvidence(JSON.parse(JSON.stringify(s0)), inc1, ctx); // the live appraiser is past s0: a miss
    assert.deepEqual(r1again, r1);
    const r2 = processEvidence(JSON.parse(JSON.stringify(r1.newState)), inc2, ctx); // a hit
    const r2again = processEvidence(r1.newState, inc2, ctx); // a miss
    assert.deepEqual(r2again, r2);
    assert.deepEqual(r2.verdict.failures.map((f) => [f.entry, f.path]), [[6, '/usr/bin/b']]);
  });

  test('no entries before enrollment: nothing enrolled, not fresh', () => {
    const r = processEvidence(null, { entries: [] }, ctx);
    assert.deepEqual([r.verdict.ok, r.verdict.fresh, r.verdict.enrolled], [true, false, false]);
    assert.equal(r.newState.fingerprint, null);
  });

  test('parsed entries are taken as well as lines, blank lines skipped', () => {
    const r = processEvidence(null, { entries: [FIRST[0], '', `${line(FIRST[1])}\n`] }, ctx);
    assert.equal(r.verdict.appraised, 2);
  });

  test('violations: accepted in the first measurement, a failure later (unless accepted)', () => {
    const violation: ImaEntry = { ...imaNgEntry('/var/log/x', new Uint8Array(32)), templateHash: new Uint8Array(20) };
    const first = processEvidence(null, { entries: [...FIRST, violation].map(line) }, ctx);
    assert.equal(first.verdict.ok, true);
    const later = processEvidence(first.newState, { entries: [line(violation)] }, ctx);
    assert.equal(later.verdict.ok, false);
    assert.equal(later.verdict.failures[0].path, '/var/log/x');
    assert.equal(processEvidence(first.newState, { entries: [line(violation)] }, { ...ctx, violations: 'accept' }).verdict.ok, true);
  });

  test('the appraiser an enrollment keeps for its VM appraises the next increment in the later mode, as a cold one would', () => {
    const violation: ImaEntry = { ...imaNgEntry('/var/log/y', new Uint8Array(32)), templateHash: new Uint8Array(20) };
    const next = { entries: [line(violation), line(file('/usr/bin/a', 'a v2'))] };
    for (const violations of ['fail', 'accept'] as const) {
      const key = `enrolled-${violations}`;
      const first = processEvidence(null, { entries: [...FIRST, violation].map(line) }, { ...ctx, key, violations });
      assert.equal(first.verdict.ok, true); // the first measurement accepts its violation
      const kept = processEvidence(first.newState, next, { ...ctx, key, violations });
      const cold = processEvidence(JSON.parse(JSON.stringify(first.newState)), next, { ...ctx, key: `${key}-cold`, violations });
      assert.deepEqual(kept, cold);
      const paths = kept.verdict.failures.map((f) => f.path);
      assert.deepEqual(paths, violations === 'fail' ? ['/var/log/y', '/usr/bin/a'] : ['/usr/bin/a']);
    }
  });

  test('enrollment excludes: paths not appraised later', () => {
    const st = processEvidence(null, { entries: FIRST.map(line) }, { ...ctx, excludes: ['/tmp/'] }).newState;
    assert.equal(processEvidence(st, { entries: [line(file('/tmp/scratch', 'anything'))] }, ctx).verdict.ok, true);
  });

  test('an increment out of order is refused, saying where to resend from; nothing changes', () => {
    const st = enrolled();
    const copy = JSON.stringify(st);
    assert.throws(
      () => processEvidence(st, { entries: [line(FIRST[0])], from: 7 }, ctx),
      (e) => isTrustError(e) && e.code === TrustErrorCode.evidenceOutOfOrder && (e.details as { expected: number }).expected === 3,
    );
    assert.equal(JSON.stringify(st), copy);
  });

  test('unreadable evidence is refused with bad_evidence, naming the entry', () => {
    assert.throws(
      () => processEvidence(enrolled(), { entries: [line(FIRST[0]), '10 zz ima-ng sha256:00 /x'] }, ctx),
      (e) => isTrustError(e) && e.code === TrustErrorCode.badEvidence && /entry 5/.test(e.message),
    );
    assert.throws(() => processEvidence(enrolled(), { entries: 'nope' as unknown as string[] }, ctx), code(TrustErrorCode.badEvidence));
  });

  test('a quote for a VM without a known AK is refused', () => {
    assert.throws(() => processEvidence(enrolled(), { entries: [], quote: { attest: 'AA==', signature: 'AA==', nonce: '00' } }, ctx), code(TrustErrorCode.noAttestationKey));
  });

  test('a stored state that does not read is refused', () => {
    for (const bad of [{}, { version: 2 }, { ...newIntegrityState(), waiting: [1] }, { ...newIntegrityState(), appraiser: { ...newIntegrityState().appraiser, next: 5 } }]) {
      assert.throws(() => readIntegrityState(bad), code(TrustErrorCode.badIntegrityState));
    }
    assert.deepEqual(readIntegrityState(null), newIntegrityState());
  });

  test('a reboot restarts the list at entry 0 against the same fingerprint', () => {
    const st = enrolled();
    const r = processEvidence(st, { entries: FIRST.map(line), from: 0, reboot: true }, ctx);
    assert.deepEqual([r.verdict.ok, r.verdict.fresh, r.verdict.enrolled], [true, true, false]);
    assert.equal(r.newState.fingerprint, st.fingerprint);
    assert.equal(expectedFrom(r.newState), 3);
    assert.deepEqual(r.newState.replay, st.replay); // the same list replays to the same PCR
    assert.throws(() => processEvidence(st, { entries: [], from: 2, reboot: true }, ctx), code(TrustErrorCode.evidenceOutOfOrder));
  });
});

describe('entries of a vTPM VM wait for a quote', () => {
  const ak = new Uint8Array(1); // never used: no quote is sent here
  test('without a quote: ok, not fresh, the entries wait; beyond maxWaiting the increment is refused', () => {
    const r = processEvidence(enrolled(), { entries: [line(file('/usr/bin/a', 'a v2'))] }, { ...ctx, ak });
    assert.deepEqual([r.verdict.ok, r.verdict.fresh, r.verdict.appraised, r.verdict.waiting], [true, false, 0, 1]);
    assert.equal(expectedFrom(r.newState), 4);
    assert.throws(() => processEvidence(r.newState, { entries: FIRST.map(line) }, { ...ctx, ak, maxWaiting: 3 }), code(TrustErrorCode.evidenceBacklog));
  });
});

describe('readmitIntegrity', () => {
  function failed(): IntegrityState {
    const r = processEvidence(enrolled(), { entries: [line(file('/usr/bin/a', 'a v2'))] }, ctx);
    assert.equal(r.verdict.ok, false);
    return r.newState;
  }

  test('baseline: the list so far is history; later entries are appraised against the same fingerprint', () => {
    const st = failed();
    const b = readmitIntegrity(st, 'baseline', T0 + 10);
    assert.deepEqual(b.readmitted, { at: new Date(T0 + 10).toISOString(), mode: 'baseline', entry: 4 });
    assert.equal(b.fingerprint, st.fingerprint);
    assert.equal(expectedFrom(b), 4);
    // the restored file is good again; a file measured with the bad digest again fails again
    assert.equal(processEvidence(b, { entries: [line(file('/usr/bin/a', 'a v1'))] }, ctx).verdict.ok, true);
    assert.equal(processEvidence(b, { entries: [line(file('/usr/bin/a', 'a v2'))] }, ctx).verdict.ok, false);
  });

  test('reenroll: the verifier restarts at entry 0 and the whole list resent becomes the fingerprint', () => {
    const st = failed();
    const r = readmitIntegrity(st, 'reenroll', T0 + 10);
    assert.equal(r.fingerprint, null);
    assert.equal(expectedFrom(r), 0);
    assert.throws(() => processEvidence(r, { entries: [], from: 4 }, ctx), (e) => isTrustError(e) && (e.details as { expected: number }).expected === 0);
    const all = [...FIRST, file('/usr/bin/a', 'a v2')].map(line);
    const e = processEvidence(r, { entries: all, from: 0 }, { ...ctx, now: T0 + 20 });
    assert.deepEqual([e.verdict.ok, e.verdict.enrolled], [true, true]);
    assert.equal(processEvidence(e.newState, { entries: [line(file('/usr/bin/a', 'a v2'))] }, ctx).verdict.ok, true);
    assert.throws(() => readmitIntegrity(st, 'nope' as 'baseline', T0), code(TrustErrorCode.badArgument));
  });
});
