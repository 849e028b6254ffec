/**
 * Evidence with quotes from a real TPM (swtpm + tpm2-tools): PCR 10 extended with the entries as IMA does, quoted
 * with the verifier's nonce, and the trust engine's verdicts on it. Skipped, saying why, without swtpm.
 */
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { formatAsciiLine, type ImaEntry } from '../integrity/ima-entry.ts';
import { pathEntry } from '../integrity/measure-entry.ts';
import { applyVerdict } from './engine.ts';
import { isTrustError, TrustErrorCode } from './errors.ts';
import { expectedFrom, processEvidence, readmitIntegrity, type EvidenceContext, type IntegrityState } from './evidence.ts';
import { bigFleet, T0 } from './fleet.test-support.ts';
import { startTpm, tpmMissing, type TestTpm } from './tpm.test-support.ts';

const sha = (s: string) => createHash('sha256').update(s).digest();
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const file = (path: string, content: string) => pathEntry('file', path, sha(content));
const lines = (es: ImaEntry[]) => es.map(formatAsciiLine);
const nonce = () => randomBytes(20).toString('hex');

describe('evidence quoted by a real swtpm', () => {
  let tpm: TestTpm | null = null;
  /** the state after each good step, for the tests that branch off it */
  let enrolled: IntegrityState;
  let afterWait: IntegrityState;
  let firstQuote: { quote: ReturnType<TestTpm['quote']>; nonce: string };
  const FIRST = [file('/usr/bin/a', 'a v1'), file('/usr/bin/b', 'b v1'), file('/etc/conf', 'conf v1')];

  before(async () => {
    tpm = await startTpm();
  });
  after(async () => {
    await tpm?.stop();
  });
  const ctx = (n: string, extra: Partial<EvidenceContext> = {}): EvidenceContext => ({ now: T0, ak: tpm!.ak, nonce: n, ...extra });

  test('the first quoted evidence verifies, its PCR 10 matches the entries, and it enrolls', (t) => {
    if (tpm === null) return t.skip(tpmMissing);
    tpm.extend(FIRST);
    const n = nonce();
    const quote = tpm.quote(n, { withPcrs: true });
    firstQuote = { quote, nonce: n };
    const { newState, verdict } = processEvidence(null, { entries: lines(FIRST), from: 0, quote }, ctx(n));
    assert.deepEqual(verdict.quote, { valid: true, failed: null, detail: 'quote valid; PCR 10 covers 3 of 3 entries', covered: 3 });
    assert.deepEqual([verdict.ok, verdict.fresh, verdict.enrolled, verdict.appraised, verdict.waiting], [true, true, true, 3, 0]);
    assert.equal(newState.replay.pcr.sha256, tpm.pcr10());
    assert.ok(newState.clock !== null);
    enrolled = newState;
  });

  test('entries beyond the quoted prefix wait for the next quote (Keylime’s rule)', (t) => {
    if (tpm === null || enrolled === undefined) return t.skip(tpmMissing || 'needs the enrollment');
    const d = file('/usr/bin/b', 'b v1'); // measured again: fine
    const e = file('/etc/conf', 'conf v1');
    tpm.extend([d]); // e is in the list but not yet in PCR 10 when the quote is made
    const n1 = nonce();
    const r1 = processEvidence(enrolled, { entries: lines([d, e]), from: 3, quote: tpm.quote(n1, { withPcrs: true }) }, ctx(n1));
    assert.deepEqual([r1.verdict.ok, r1.verdict.fresh, r1.verdict.appraised, r1.verdict.waiting, r1.verdict.quote?.covered], [true, true, 1, 1, 1]);
    assert.equal(expectedFrom(r1.newState), 5);
    tpm.extend([e]);
    // a quote without PCR values (sha256:10 alone): the prefix is the one that hashes to its PCR digest
    const n2 = nonce();
    const r2 = processEvidence(r1.newState, { entries: [], from: 5, quote: tpm.quote(n2) }, ctx(n2));
    assert.deepEqual([r2.verdict.ok, r2.verdict.fresh, r2.verdict.appraised, r2.verdict.waiting], [true, true, 1, 0]);
    assert.equal(r2.newState.replay.pcr.sha256, tpm.pcr10());
    afterWait = r2.newState;
  });

  test('a wrong nonce fails the quote and makes the VM untrusted', (t) => {
    if (tpm === null || afterWait === undefined) return t.skip(tpmMissing || 'needs the earlier steps');
    const issued = nonce();
    const quote = tpm.quote(nonce(), { withPcrs: true }); // the TPM was given another nonce
    const { newState, verdict } = processEvidence(afterWait, { entries: [], quote: { ...quote, nonce: issued } }, ctx(issued));
    assert.equal(verdict.ok, false);
    assert.equal(verdict.quote?.failed, 'nonce');
    assert.match(verdict.summary, /^quote failed \(nonce\): extraData [0-9a-f]+ is not the nonce/);
    assert.equal(newState.replay, afterWait.replay);
    const fleet = bigFleet(3, 2); // labels cycle pepsi-web, coke-db, vio by (host + vm) % 3
    const alert = applyVerdict(fleet, 'h0001-v01', verdict, T0 + 1); // vio, alert: untrusted, colors kept
    assert.deepEqual(alert.transitions.map((x) => [x.from, x.to]), [['trusted', 'untrusted']]);
    assert.deepEqual(alert.plans, []);
    const isolate = applyVerdict(fleet, 'h0002-v01', verdict, T0 + 1); // pepsi-web, isolate
    assert.deepEqual(isolate.transitions.map((x) => [x.from, x.to]), [['trusted', 'untrusted']]);
    assert.deepEqual(isolate.plans.map((p) => p.host), ['h0002']);
    assert.deepEqual(isolate.plans[0].vms.find((v) => v.name === 'h0002-v01')?.colors, []);
  });

  test('a quote by another AK fails its signature; an old quote replayed fails the clock; a list PCR 10 does not match fails', (t) => {
    if (tpm === null || afterWait === undefined) return t.skip(tpmMissing || 'needs the earlier steps');
    const n = nonce();
    const q = tpm.quote(n, { withPcrs: true });
    assert.equal(processEvidence(afterWait, { entries: [], quote: q }, ctx(n, { ak: tpm.otherAk })).verdict.quote?.failed, 'signature');
    // the first quote again, with its own nonce: the TPM's clock has moved on since
    const old = processEvidence(afterWait, { entries: [], quote: firstQuote.quote }, ctx(firstQuote.nonce));
    assert.equal(old.verdict.quote?.failed, 'clock');
    // an entry that is not in PCR 10 (the list was edited): no prefix matches
    const edited = processEvidence(afterWait, { entries: lines([file('/usr/bin/a', 'a v1')]), quote: q }, ctx(n));
    assert.equal(edited.verdict.quote?.covered, 0);
    assert.equal(edited.verdict.ok, true); // the empty prefix matched: the edited entry waits
    const forged = lines([file('/usr/bin/a', 'a v1')]);
    tpm.extend([file('/usr/bin/a', 'a v1 but different')]);
    const n2 = nonce();
    const bad = processEvidence(afterWait, { entries: forged, quote: tpm.quote(n2, { withPcrs: true }) }, ctx(n2));
    assert.equal(bad.verdict.quote?.failed, 'pcr10');
    assert.equal(bad.verdict.ok, false);
    assert.equal(bad.newState.waiting.length, 1);
  });

  test('a changed file under a valid quote: the quote verifies, the entry fails with path, expected and found', async (t) => {
    if (tpm === null) return t.skip(tpmMissing);
    // a fresh TPM, so that PCR 10 holds exactly this VM's list
    await tpm.stop();
    tpm = await startTpm();
    if (tpm === null) return t.skip(tpmMissing);
    tpm.extend(FIRST);
    const n1 = nonce();
    const first = processEvidence(null, { entries: lines(FIRST), quote: tpm.quote(n1, { withPcrs: true }) }, ctx(n1));
    assert.equal(first.verdict.enrolled, true);
    const changed = file('/usr/bin/a', 'a v2');
    tpm.extend([changed]);
    const n2 = nonce();
    const { newState, verdict } = processEvidence(first.newState, { entries: lines([changed]), quote: tpm.quote(n2, { withPcrs: true }) }, ctx(n2, { now: T0 + 5 }));
    assert.equal(verdict.quote?.valid, true);
    assert.equal(verdict.ok, false);
    assert.deepEqual(verdict.failures, [{ entry: 4, path: '/usr/bin/a', status: 'mismatch', expected: [hex(sha('a v1'))], found: hex(sha('a v2')), alg: 'sha256' }]);
    // re-admitted with the current list as baseline: the next quote still matches (the bad entry is in PCR 10)
    const b = readmitIntegrity(newState, 'baseline', T0 + 10);
    const fixed = file('/usr/bin/a', 'a v1');
    tpm.extend([fixed]);
    const n3 = nonce();
    const r = processEvidence(b, { entries: lines([fixed]), quote: tpm.quote(n3, { withPcrs: true }) }, ctx(n3));
    assert.deepEqual([r.verdict.ok, r.verdict.fresh, r.verdict.appraised], [true, true, 1]);
    assert.throws(() => processEvidence(b, { entries: [], quote: { ...tpm!.quote(n3), attest: 'not base64!' } }, ctx(n3)), (e) => isTrustError(e) && e.code === TrustErrorCode.badEvidence);
  });
});
