/**
 * VmTpm on a real swtpm: quotes after extends verify with hueguard's own verifier (verifyQuote) and the
 * controller's evidence path (processEvidence), PCR 10 equals the replay of the entries, a wrong nonce fails, and
 * the AK, PCR 10 and a safe, forward-only clock survive a stop and start, a killed swtpm and a dead agent.
 * Skipped, saying why, without swtpm and tpm2-tools.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { QuoteV1 } from '../api/types.ts';
import { formatAsciiLine, type ImaEntry } from '../integrity/ima-entry.ts';
import { PcrReplay } from '../integrity/ima-replay.ts';
import { imaNgEntry, pathEntry } from '../integrity/measure-entry.ts';
import { parseAttest } from '../integrity/tpm-attest.ts';
import { parsePcrFile } from '../integrity/tpm-pcr-file.ts';
import { loadAttestationKey, TPMA_OBJECT } from '../integrity/tpm-public.ts';
import { clockStateOf, verifyQuote, type ClockState } from '../integrity/tpm-quote.ts';
import { processEvidence, type IntegrityState } from '../trust/evidence.ts';
import { parseReadClock, VmTpm, VmTpmError, vmTpmMissing } from './vm-tpm.ts';

const missing = vmTpmMissing();
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const nonce = () => randomBytes(20).toString('hex');
const sha = (s: string) => createHash('sha256').update(s).digest();
const lines = (es: readonly ImaEntry[]) => es.map(formatAsciiLine);
const T0 = Date.parse('2025-01-01T00:00:00.000Z');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** N entries as the measurer makes them, a ToMToU violation among them. */
function entries(n: number, tag: string): ImaEntry[] {
  const out: ImaEntry[] = [];
  for (let i = 0; i < n; i++) out.push(pathEntry('file', `/srv/${tag}/file ${i}`, sha(`${tag}${i}`)));
  if (n > 3) out[2] = { ...imaNgEntry('/tmp/tomtou', new Uint8Array(32)), templateHash: new Uint8Array(20) };
  return out;
}

/** k files of the first batch measured again, unchanged (the fingerprint enrolled from that batch accepts them). */
function again(k: number): ImaEntry[] {
  return Array.from({ length: k }, (_, i) => {
    const j = i % 40 === 2 ? 3 : i % 40;
    return pathEntry('file', `/srv/a/file ${j}`, sha(`a${j}`));
  });
}

/** sha256 PCR 10 replayed from zero over the entries (ima-replay.ts). */
function replayed(es: readonly ImaEntry[]): string {
  const r = new PcrReplay(undefined, { banks: ['sha256'] });
  for (const e of es) r.extend(e);
  return hex(r.value('sha256'));
}

/** The quote checked as the controller checks it, and its quoted sha256 PCR 10. */
function check(q: QuoteV1, ak: Buffer, nonceHex: string, previousClock?: ClockState) {
  const pcrs = parsePcrFile(Buffer.from(q.pcrs as string, 'base64'));
  const r = verifyQuote({ attest: Buffer.from(q.attest, 'base64'), signature: Buffer.from(q.signature, 'base64'), ak, nonce: Buffer.from(nonceHex, 'hex'), pcrs, previousClock });
  return { r, pcr10: hex(pcrs.get('sha256')?.get(10) ?? new Uint8Array()) };
}

test('parseReadClock reads tpm2_readclock output', () => {
  const c = parseReadClock('time: 413\nclock_info:\n  clock: 11413\n  reset_count: 3\n  restart_count: 0\n  safe: no\n');
  assert.deepEqual(c, { clock: 11413n, resetCount: 3, restartCount: 0, safe: false });
  assert.equal(parseReadClock('clock_info:\n  clock: 5\n  safe: yes\n').safe, true);
  assert.throws(() => parseReadClock('nothing'), /unexpected output/);
});

describe('VmTpm on a real swtpm', { skip: missing ?? undefined }, () => {
  let base = '';
  let dir = '';
  let vm: VmTpm | null = null;
  const others: VmTpm[] = [];
  let ak: Buffer;
  /** every entry extended so far, in order */
  const list: ImaEntry[] = [];
  /** the controller's integrity state of the VM, as the evidence path leaves it */
  let state: IntegrityState | null = null;
  let lastClock: ClockState | undefined;
  /** what the controller knows when it appraises: the registered AK, the nonce it issued (and consumed) */
  const ctx = (n: string) => ({ now: T0, ak, nonce: n, violations: 'accept' as const });

  before(() => {
    base = realpathSync(mkdtempSync(join(tmpdir(), 'hg-vmtpm-')));
    dir = join(base, 'vm1');
  });
  after(async () => {
    for (const v of [vm, ...others]) await v?.stop().catch(() => {});
    rmSync(base, { recursive: true, force: true });
  });

  test('the first start creates a persistent EK and an RSA-2048 restricted signing AK', async (t) => {
    const t0 = performance.now();
    vm = await VmTpm.start({ stateDir: dir });
    t.diagnostic(`first start (swtpm, Startup(CLEAR), EK, AK): ${(performance.now() - t0).toFixed(0)} ms`);
    assert.equal(vm.startup, 'cleared');
    assert.equal(vm.created, true);
    assert.match(vm.tcti, /^swtpm:path=.*tpm\.sock$/);
    ak = vm.ak();
    const key = loadAttestationKey(ak);
    assert.equal(key.public?.type, 'rsa');
    assert.equal(key.public?.type === 'rsa' ? key.public.keyBits : 0, 2048);
    const a = key.public?.objectAttributes ?? 0;
    assert.ok((a & TPMA_OBJECT.restricted) !== 0 && (a & TPMA_OBJECT.sign) !== 0 && (a & TPMA_OBJECT.decrypt) === 0);
    assert.equal(vm.akName(), hex(key.public?.name ?? new Uint8Array()));
    assert.ok(vm.ek().length > 200);
    const zero = await vm.pcr10();
    assert.equal(hex(zero.sha256), '00'.repeat(32));
  });

  test('a quote after N extends verifies against the nonce, and PCR 10 is the replay of the entries', async (t) => {
    if (vm === null) return t.skip('no VmTpm');
    const es = entries(40, 'a');
    await vm.extend(es);
    list.push(...es);
    const n = nonce();
    const q = await vm.quote(n);
    assert.equal(q.nonce, n);
    const { r, pcr10 } = check(q, ak, n);
    assert.equal(r.valid, true, JSON.stringify(r.checks));
    assert.deepEqual(r.checks.map((c) => c.name), ['magic', 'type', 'signature', 'nonce', 'pcrDigest', 'safe']);
    assert.equal(pcr10, replayed(list));
    assert.equal(hex((await vm.pcr10()).sha256), replayed(list));
    // the controller's evidence path: the AK as registered (base64 of TPM2B_PUBLIC), the nonce it issued
    const out = processEvidence(null, { entries: lines(es), from: 0, quote: q }, { ...ctx(n), ak: Buffer.from(ak.toString('base64'), 'base64') });
    assert.deepEqual(out.verdict.quote, { valid: true, failed: null, detail: 'quote valid; PCR 10 covers 40 of 40 entries', covered: 40 });
    assert.deepEqual([out.verdict.ok, out.verdict.fresh, out.verdict.enrolled, out.verdict.waiting], [true, true, true, 0]);
    state = out.newState;
    lastClock = clockStateOf(r.attest);
  });

  test('a wrong nonce fails, in verifyQuote and in the evidence path; a bad one is refused', async (t) => {
    if (vm === null || state === null) return t.skip('needs the first quote');
    const n = nonce();
    const q = await vm.quote(n);
    const other = nonce();
    const { r } = check(q, ak, other);
    assert.equal(r.valid, false);
    assert.equal(r.failed, 'nonce');
    const out = processEvidence(state, { entries: [], from: list.length, quote: q }, ctx(other));
    assert.equal(out.verdict.quote?.failed, 'nonce');
    assert.equal(out.verdict.ok, false);
    // the quote claiming another nonce than the one quoted
    const lying = processEvidence(state, { entries: [], from: list.length, quote: { ...q, nonce: other } }, { ...ctx(n), nonce: undefined });
    assert.equal(lying.verdict.quote?.failed, 'nonce');
    for (const bad of ['', 'abc', 'zz', '00'.repeat(65)]) {
      await assert.rejects(vm.quote(bad), (e: unknown) => e instanceof VmTpmError && e.code === 'bad_argument');
    }
  });

  test('extends and quotes asked for together: each quote covers the extends before it (the prefix rule)', async (t) => {
    if (vm === null || state === null) return t.skip('needs the first quote');
    const a = again(5);
    const b = again(7);
    const [n1, n2] = [nonce(), nonce()];
    // not awaited one by one: the queue keeps their order
    const pa = vm.extend(a);
    const q1p = vm.quote(n1);
    const pb = vm.extend(b);
    const q2p = vm.quote(n2);
    const [q1, q2] = await Promise.all([q1p, q2p, pa, pb]);
    list.push(...a, ...b);
    // the agent sends all 12 new entries with the first quote: 5 are covered, 7 wait
    const r1 = processEvidence(state, { entries: lines([...a, ...b]), from: list.length - 12, quote: q1 }, ctx(n1));
    assert.deepEqual([r1.verdict.ok, r1.verdict.quote?.covered, r1.verdict.appraised, r1.verdict.waiting], [true, 5, 5, 7]);
    // the next period: no new entries, the second quote covers the 7 waiting
    const r2 = processEvidence(r1.newState, { entries: [], from: list.length, quote: q2 }, ctx(n2));
    assert.deepEqual([r2.verdict.ok, r2.verdict.quote?.covered, r2.verdict.appraised, r2.verdict.waiting], [true, 7, 7, 0]);
    assert.equal(r2.newState.replay.pcr.sha256, replayed(list));
    state = r2.newState;
    lastClock = clockStateOf(parseAttest(Buffer.from(q2.attest, 'base64')));
  });

  test('timings: extends in batches, one quote', async (t) => {
    if (vm === null || state === null) return t.skip('needs the first quote');
    const es = again(1000);
    let t0 = performance.now();
    await vm.extend(es);
    const extendMs = performance.now() - t0;
    list.push(...es);
    const times: number[] = [];
    let q: QuoteV1 | null = null;
    let n = '';
    for (let i = 0; i < 10; i++) {
      n = nonce();
      t0 = performance.now();
      q = await vm.quote(n);
      times.push(performance.now() - t0);
    }
    t.diagnostic(`extend 1000 entries: ${extendMs.toFixed(0)} ms; one quote: median ${median(times).toFixed(1)} ms (min ${Math.min(...times).toFixed(1)}, max ${Math.max(...times).toFixed(1)}) over ${times.length}`);
    const out = processEvidence(state, { entries: lines(es), from: list.length - es.length, quote: q as QuoteV1 }, ctx(n));
    assert.deepEqual([out.verdict.ok, out.verdict.quote?.covered], [true, 1000]);
    state = out.newState;
    lastClock = clockStateOf(parseAttest(Buffer.from((q as QuoteV1).attest, 'base64')));
  });

  test('stopped and started again on the same state: the same AK, PCR 10 kept (Shutdown/Startup STATE)', async (t) => {
    if (vm === null || state === null) return t.skip('needs the first quote');
    const before = hex((await vm.pcr10()).sha256);
    await vm.stop();
    await assert.rejects(vm.quote(nonce()), (e: unknown) => e instanceof VmTpmError && e.code === 'stopped');
    const t0 = performance.now();
    vm = await VmTpm.start({ stateDir: dir });
    t.diagnostic(`start on a kept state (swtpm, Startup(STATE)): ${(performance.now() - t0).toFixed(0)} ms`);
    assert.equal(vm.startup, 'resumed');
    assert.equal(vm.created, false);
    assert.deepEqual(vm.ak(), ak);
    assert.equal(hex((await vm.pcr10()).sha256), before);
    assert.equal(before, replayed(list));
    const n = nonce();
    const q = await vm.quote(n);
    const { r } = check(q, ak, n, lastClock);
    assert.equal(r.valid, true, JSON.stringify(r.checks));
    // the evidence path goes on where it stood: nothing new, the quote still matches
    const out = processEvidence(state, { entries: [], from: list.length, quote: q }, ctx(n));
    assert.deepEqual([out.verdict.ok, out.verdict.fresh, out.verdict.quote?.valid], [true, true, true]);
    state = out.newState;
    lastClock = clockStateOf(r.attest);
  });

  test('a swtpm killed without shutdown: the same AK, PCR 10 from zero, a safe clock that did not go back', async (t) => {
    if (vm === null || state === null) return t.skip('needs the first quote');
    const pid = vm.pid;
    assert.ok(pid !== null);
    process.kill(pid, 'SIGKILL');
    await vm.stop().catch(() => {}); // nothing left to shut down in order
    vm = await VmTpm.start({ stateDir: dir });
    assert.equal(vm.startup, 'cleared');
    assert.deepEqual(vm.ak(), ak);
    assert.equal(hex((await vm.pcr10()).sha256), '00'.repeat(32));
    // the agent starts the VM's list again: every entry extended anew, sent with reboot from entry 0
    await vm.extend(list);
    const n = nonce();
    const q = await vm.quote(n);
    const { r, pcr10 } = check(q, ak, n, lastClock);
    assert.equal(r.valid, true, JSON.stringify(r.checks));
    assert.equal(r.attest.clockInfo.safe, 1);
    assert.equal(pcr10, replayed(list));
    // either way verifies: the list sent again from entry 0 as a reboot…
    const out = processEvidence(state, { entries: lines(list), from: 0, reboot: true, quote: q }, ctx(n));
    assert.deepEqual([out.verdict.ok, out.verdict.fresh, out.verdict.quote?.covered], [true, true, list.length]);
    // …or, PCR 10 being the list's again, going on where the controller stands
    const on = processEvidence(state, { entries: [], from: list.length, quote: q }, ctx(n));
    assert.deepEqual([on.verdict.ok, on.verdict.fresh, on.verdict.quote?.covered], [true, true, 0]);
    state = out.newState;
    lastClock = clockStateOf(r.attest);
  });

  test('an agent that died leaves its swtpm running: the next start attaches to it, PCRs and all', async (t) => {
    if (vm === null || state === null) return t.skip('needs the first quote');
    const pcr = hex((await vm.pcr10()).sha256);
    const pid = vm.pid;
    // `vm` is abandoned here, as by an agent killed with SIGKILL
    const again = await VmTpm.start({ stateDir: dir });
    others.push(again);
    assert.equal(again.startup, 'running');
    assert.equal(again.pid, pid);
    assert.deepEqual(again.ak(), ak);
    assert.equal(hex((await again.pcr10()).sha256), pcr);
    const n = nonce();
    const { r } = check(await again.quote(n), ak, n, lastClock);
    assert.equal(r.valid, true, JSON.stringify(r.checks));
    await again.stop();
    vm = null;
    // it was shut down in order: the next start resumes
    vm = await VmTpm.start({ stateDir: dir });
    assert.equal(vm.startup, 'resumed');
    assert.equal(hex((await vm.pcr10()).sha256), pcr);
  });

  test('reset(): PCR 10 back to zero, the same AK, a clock that stays safe; a list sent again from entry 0 verifies', async (t) => {
    if (vm === null || state === null) return t.skip('needs the first quote');
    await vm.reset();
    assert.equal(hex((await vm.pcr10()).sha256), '00'.repeat(32));
    assert.deepEqual(vm.ak(), ak);
    const fresh = again(3);
    await vm.extend(fresh);
    const n = nonce();
    const q = await vm.quote(n);
    const { r, pcr10 } = check(q, ak, n, lastClock);
    assert.equal(r.valid, true, JSON.stringify(r.checks));
    assert.equal(pcr10, replayed(fresh));
    const out = processEvidence(state, { entries: lines(fresh), from: 0, reboot: true, quote: q }, ctx(n));
    assert.deepEqual([out.verdict.ok, out.verdict.quote?.covered], [true, 3]);
    list.splice(0, list.length, ...fresh);
    state = out.newState;
    lastClock = clockStateOf(r.attest);
    // stopped in order after a reset: resumed with the new PCR 10
    await vm.stop();
    vm = await VmTpm.start({ stateDir: dir });
    assert.equal(vm.startup, 'resumed');
    assert.equal(hex((await vm.pcr10()).sha256), replayed(fresh));
  });

  test('attaching to a TPM through its TCTI: the same keys; stop() leaves that TPM running', async (t) => {
    if (vm === null) return t.skip('no VmTpm');
    const attached = await VmTpm.start({ stateDir: join(base, 'attached'), tcti: vm.tcti });
    others.push(attached);
    assert.equal(attached.startup, 'running');
    assert.equal(attached.created, false);
    assert.equal(attached.pid, null);
    assert.deepEqual(attached.ak(), ak);
    const n = nonce();
    assert.equal(check(await attached.quote(n), ak, n).r.valid, true);
    await assert.rejects(attached.reset(), (e: unknown) => e instanceof VmTpmError && e.code === 'bad_argument');
    await attached.stop();
    const n2 = nonce();
    assert.equal(check(await vm.quote(n2), ak, n2).r.valid, true);
  });
});
