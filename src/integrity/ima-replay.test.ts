/**
 * Replaying IMA lists into PCR 10. The expectations come from outside the replay code: the signed TPM quote taken
 * with the hpe list (its PCR file and pcrDigest, decoded here from FORMATS.md), a real TPM (swtpm) extended with the
 * entries' extend values, and a reference replay written here with createHash over ima-entry.ts's template data.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { isIntegrityError } from './errors.ts';
import { BANK_SIZE, extendValue, isViolation, templateData, type Bank, type ImaEntry } from './ima-entry.ts';
import { parseImaLog, readImaEntries } from './ima-log.ts';
import {
  PcrReplay,
  nodeHash,
  bootAggregate,
  checkBootAggregate,
  findQuotedPrefix,
  replayLog,
  replayLogAsync,
  type ReplaySnapshot,
} from './ima-replay.ts';

const DATA = join(dirname(fileURLToPath(import.meta.url)), '../../../shared/data');
const read = (rel: string): Buffer => readFileSync(join(DATA, rel));
const hex = (u: Uint8Array): string => Buffer.from(u).toString('hex');
const list = (rel: string) => parseImaLog(read(`ima/${rel}`));

/** FORMATS.md "Replay", written plainly: PCR = H(PCR ‖ H(template data)), all-0xFF for a violation. */
function referenceReplay(entries: ImaEntry[], bank: Bank, pcrIndex = 10): Buffer {
  let pcr = Buffer.alloc(BANK_SIZE[bank]);
  for (const e of entries) {
    if (e.pcr !== pcrIndex) continue;
    const ev = isViolation(e) ? Buffer.alloc(BANK_SIZE[bank], 0xff) : createHash(bank).update(templateData(e)).digest();
    pcr = createHash(bank).update(Buffer.concat([pcr, ev])).digest();
  }
  return pcr;
}

// ---- the hpe quote, decoded from FORMATS.md ---------------------------------------------------------------------

/** TPMS_ATTEST (big-endian): what a quote signs. */
function decodeAttest(b: Buffer) {
  let o = 0;
  const u16 = () => ((o += 2), b.readUInt16BE(o - 2));
  const u32 = () => ((o += 4), b.readUInt32BE(o - 4));
  const sized = () => {
    const n = u16();
    o += n;
    return b.subarray(o - n, o);
  };
  const magic = u32();
  const type = u16();
  sized(); // qualifiedSigner
  const extraData = sized();
  o += 8 + 4 + 4; // clock, resetCount, restartCount
  const safe = b[o++];
  o += 8; // firmwareVersion
  const selections: { hashAlg: number; pcrs: number[] }[] = [];
  for (let n = u32(); n > 0; n--) {
    const hashAlg = u16();
    const size = b[o++];
    const pcrs: number[] = [];
    for (let j = 0; j < size; j++) for (let i = 0; i < 8; i++) if (b[o + j] & (1 << i)) pcrs.push(8 * j + i);
    o += size;
    selections.push({ hashAlg, pcrs });
  }
  const pcrDigest = sized();
  assert.equal(o, b.length, 'TPMS_ATTEST fully read');
  return { magic, type, extraData, safe, selections, pcrDigest };
}

/** tpm2-tools' PCR file (little-endian): the selection, then the values, bank by bank, ascending. */
function decodePcrFile(b: Buffer): Map<number, Map<number, Buffer>> {
  const count = b.readUInt32LE(0);
  const sel: { hash: number; pcrs: number[] }[] = [];
  for (let k = 0; k < count; k++) {
    const o = 4 + 8 * k;
    const pcrs: number[] = [];
    for (let j = 0; j < b[o + 2]; j++) for (let i = 0; i < 8; i++) if (b[o + 3 + j] & (1 << i)) pcrs.push(8 * j + i);
    sel.push({ hash: b.readUInt16LE(o), pcrs });
  }
  let o = 4 + 16 * 8;
  const nDigests = b.readUInt32LE(o);
  o += 4;
  const values: Buffer[] = [];
  for (let d = 0; d < nDigests; d++) {
    const n = b.readUInt32LE(o);
    for (let k = 0; k < n; k++) {
      const p = o + 4 + 66 * k;
      values.push(b.subarray(p + 2, p + 2 + b.readUInt16LE(p)));
    }
    o += 4 + 8 * 66;
  }
  assert.equal(o, b.length, 'PCR file fully read');
  const banks = new Map<number, Map<number, Buffer>>();
  let v = 0;
  for (const s of sel) {
    const m = new Map<number, Buffer>();
    for (const i of s.pcrs) m.set(i, values[v++]);
    banks.set(s.hash, m);
  }
  assert.equal(v, values.length);
  return banks;
}

const TPM_ALG_SHA256 = 0x000b;

test('hpe: the 780-entry list replays into sha256 to the PCR 10 of the signed quote taken with it', async () => {
  const attest = decodeAttest(read('tpm/hpe/quote_message_tpms_attest.bin'));
  assert.equal(attest.magic, 0xff544347);
  assert.equal(attest.type, 0x8018);
  assert.equal(attest.safe, 1);
  const banks = decodePcrFile(read('tpm/hpe/quote_subject_data_pcrs.bin'));
  // the PCR file is the one quoted: same selection, and its values hash to the signed pcrDigest
  assert.deepEqual(attest.selections, [...banks].map(([hashAlg, m]) => ({ hashAlg, pcrs: [...m.keys()] })));
  const sha256 = banks.get(TPM_ALG_SHA256)!;
  assert.equal(hex(createHash('sha256').update(Buffer.concat([...sha256.values()])).digest()), hex(attest.pcrDigest));
  assert.ok(sha256.has(10));

  const entries = list('hpe-keylime-perf-tests/ima_log.txt');
  const summary = replayLog(entries);
  assert.equal(summary.entries, 780);
  assert.equal(summary.violations, 0);
  assert.equal(summary.templateHashMismatches, 0);
  assert.equal(summary.pcr10.sha256, hex(sha256.get(10)!));
  assert.equal(summary.pcr10.sha1, hex(referenceReplay(entries, 'sha1')));
  // the streaming path gives the same
  const streamed = await replayLogAsync(readImaEntries([read('ima/hpe-keylime-perf-tests/ima_log.txt')]));
  assert.deepEqual(streamed, summary);

  // boot_aggregate = sha256(PCR0 ‖ … ‖ PCR9) of the same quote
  const boot = entries[0];
  assert.equal(boot.name, 'boot_aggregate');
  const ten = [...Array(10).keys()].map((i) => sha256.get(i)!);
  assert.equal(hex(boot.digest), hex(createHash('sha256').update(Buffer.concat(ten)).digest()));
  assert.equal(hex(bootAggregate(sha256, 'sha256', 10)), hex(boot.digest));
  assert.deepEqual(checkBootAggregate(boot, sha256, 'sha256'), { status: 'match', pcrs: 10 });
  assert.deepEqual(checkBootAggregate(boot, ten, 'sha256'), { status: 'match', pcrs: 10 });
  // with only PCR 0–7 known, nothing matches and it says what it tried
  const eight = new Map([...sha256].filter(([i]) => i < 8));
  assert.deepEqual(checkBootAggregate(boot, eight, 'sha256'), { status: 'mismatch', tried: [8] });
  assert.deepEqual(checkBootAggregate(boot, sha256, 'sha1'), { status: 'other_algorithm', digestAlg: 'sha256' });
  assert.deepEqual(checkBootAggregate(entries[1], sha256, 'sha256'), { status: 'not_boot_aggregate', name: entries[1].name });
});

test('every real list replays like the reference, with no template hash mismatch', () => {
  const rels = [
    'hpe-keylime-perf-tests/ima_log.txt',
    'embrave/ascii_runtime_measurements',
    'embrave/binary_runtime_measurements',
    'rust-keylime/ascii_runtime_measurements',
    'rust-keylime/ima_log.txt',
    'keylime/ima-log-sha1',
    'keylime/ima-log-sha256',
    'keylime/test_ima_verification_vectors.txt',
    'keylime-tests/keylime-policy-commands/ima_log.txt',
    'keylime-tests/keylime_create_policy-static-data/test2/ascii_runtime_measurements-1',
    'keylime-tests/keylime_create_policy-static-data/test2/ascii_runtime_measurements-2',
  ];
  for (const rel of rels) {
    const entries = list(rel);
    const s = replayLog(entries);
    assert.equal(s.entries, entries.length, rel);
    assert.equal(s.templateHashMismatches, 0, rel);
    assert.equal(s.violations, entries.filter(isViolation).length, rel);
    assert.equal(s.pcr10.sha1, hex(referenceReplay(entries, 'sha1')), rel);
    assert.equal(s.pcr10.sha256, hex(referenceReplay(entries, 'sha256')), rel);
  }
});

test('embrave: ascii and binary give the same PCR 10 in both banks', () => {
  const a = replayLog(list('embrave/ascii_runtime_measurements'));
  const b = replayLog(list('embrave/binary_runtime_measurements'));
  assert.equal(a.entries, 922);
  assert.deepEqual(b, a);
});

test('rust-keylime: a zero boot_aggregate means no TPM', () => {
  const entries = list('rust-keylime/ascii_runtime_measurements');
  assert.equal(entries.length, 826);
  assert.deepEqual(checkBootAggregate(entries[0], new Map(), 'sha1'), { status: 'no_tpm' });
});

test('keylime/ima-log-sha1: its violation extends all-0xFF', () => {
  const entries = list('keylime/ima-log-sha1');
  const s = replayLog(entries);
  assert.equal(s.violations, 1);
  // by hand: PCR = sha1(0^20 ‖ FF^20), then the second entry
  let pcr = createHash('sha1').update(Buffer.concat([Buffer.alloc(20), Buffer.alloc(20, 0xff)])).digest();
  pcr = createHash('sha1').update(Buffer.concat([pcr, Buffer.from(entries[1].templateHash)])).digest();
  assert.equal(s.pcr10.sha1, hex(pcr));
});

test('a tampered entry (name edited, stated hash kept) counts as a mismatch and does not replay to the quoted value', () => {
  const entries = list('hpe-keylime-perf-tests/ima_log.txt');
  const good = replayLog(entries);
  const tampered = entries.map((e, i): ImaEntry => (i === 5 ? { ...e, name: '/usr/bin/evil', templateDataRaw: undefined } as ImaEntry : e));
  const bad = replayLog(tampered);
  assert.equal(bad.templateHashMismatches, 1);
  assert.notEqual(bad.pcr10.sha1, good.pcr10.sha1);
  assert.notEqual(bad.pcr10.sha256, good.pcr10.sha256);
});

// ---- incremental ------------------------------------------------------------------------------------------------

test('replaying in two parts through a (JSON) snapshot equals replaying the whole', () => {
  const entries = list('hpe-keylime-perf-tests/ima_log.txt').slice(0, 120);
  const whole = new PcrReplay();
  for (const e of entries) whole.extend(e);
  fc.assert(
    fc.property(fc.integer({ min: 0, max: entries.length }), (k) => {
      const a = new PcrReplay();
      for (const e of entries.slice(0, k)) a.extend(e);
      const snap = JSON.parse(JSON.stringify(a.snapshot())) as ReplaySnapshot;
      assert.equal(snap.next, k);
      const b = new PcrReplay(snap);
      for (const e of entries.slice(k)) b.extend(e);
      assert.deepEqual(b.snapshot(), whole.snapshot());
    }),
    { numRuns: 25 },
  );
  assert.equal(whole.snapshot().pcr.sha256, hex(referenceReplay(entries, 'sha256')));
});

test('findQuotedPrefix: the first prefix at which the quote matches; resuming from it; null when none', () => {
  const entries = list('hpe-keylime-perf-tests/ima_log.txt');
  const at500 = referenceReplay(entries.slice(0, 500), 'sha256');
  const fresh = new PcrReplay();
  const m = findQuotedPrefix(fresh, entries, { bank: 'sha256', value: at500 });
  assert.ok(m);
  assert.equal(m.count, 500);
  assert.equal(m.state.next, 500);
  assert.equal(m.state.pcr.sha256, hex(at500));
  assert.equal(fresh.next, 0, 'the given state is not changed');
  // the quote lagged the list; next time the verifier resumes from entry 500
  const final = findQuotedPrefix(m.state, entries.slice(500), { bank: 'sha256', value: referenceReplay(entries, 'sha256') });
  assert.deepEqual(final && { count: final.count, next: final.state.next }, { count: 280, next: 780 });
  // the sha1 bank too
  const s1 = findQuotedPrefix(fresh.snapshot(), entries, { bank: 'sha1', value: referenceReplay(entries.slice(0, 3), 'sha1') });
  assert.equal(s1?.count, 3);
  // nothing new since the last quote: the empty prefix
  assert.equal(findQuotedPrefix(m.state, entries.slice(500), { bank: 'sha256', value: at500 })?.count, 0);
  // a value no prefix reaches
  assert.equal(findQuotedPrefix(fresh, entries, { bank: 'sha256', value: createHash('sha256').update('x').digest() }), null);
  assert.throws(() => findQuotedPrefix(fresh, entries, { bank: 'sha256', value: new Uint8Array(20) }), isIntegrityError);
});

test('entries for other PCRs are filtered: they advance the entry number only', () => {
  const entries = list('hpe-keylime-perf-tests/ima_log.txt').slice(0, 50);
  const mixed: ImaEntry[] = [];
  for (const [i, e] of entries.entries()) {
    mixed.push(e);
    if (i % 3 === 0) mixed.push({ ...e, pcr: 11 });
  }
  const a = replayLog(entries);
  const b = replayLog(mixed);
  assert.equal(b.entries, mixed.length);
  assert.deepEqual(b.pcr10, a.pcr10);
  // the first prefix ends at the PCR 10 entry, not after the PCR 11 entry that follows it
  const target = referenceReplay(entries.slice(0, 1), 'sha256');
  assert.equal(mixed[1].pcr, 11);
  assert.equal(findQuotedPrefix(new PcrReplay(), mixed, { bank: 'sha256', value: target })?.count, 1);
  // replaying PCR 11 instead
  const r11 = new PcrReplay(undefined, { pcr: 11 });
  for (const e of mixed) r11.extend(e);
  assert.equal(hex(r11.value('sha256')), hex(referenceReplay(mixed, 'sha256', 11)));
});

// ---- one bank, and the default (small-hash) path against node:crypto ------------------------------------------------

const ALL_LISTS = [
  'hpe-keylime-perf-tests/ima_log.txt',
  'embrave/binary_runtime_measurements',
  'rust-keylime/ascii_runtime_measurements',
  'keylime/ima-log-sha1',
  'keylime/ima-log-sha256',
  'keylime/test_ima_verification_vectors.txt',
  'keylime-tests/keylime-policy-commands/ima_log.txt',
];

test('the default hashing equals node:crypto injected as the hash, on every real list (violations included)', () => {
  for (const rel of ALL_LISTS) {
    const entries = list(rel);
    const fast = new PcrReplay();
    const slow = new PcrReplay(undefined, { hash: nodeHash });
    for (const e of entries) assert.equal(fast.extend(e), slow.extend(e), rel);
    assert.deepEqual(fast.snapshot(), slow.snapshot(), rel);
  }
});

test('banks: [sha256] gives the sha256 bank of a full replay, skips sha1 and keeps the snapshot shape', () => {
  for (const rel of ALL_LISTS) {
    const entries = list(rel);
    const one = new PcrReplay(undefined, { banks: ['sha256'] });
    for (const e of entries) assert.equal(one.extend(e), true, 'the template hash is not checked');
    assert.equal(hex(one.value('sha256')), hex(referenceReplay(entries, 'sha256')), rel);
    assert.deepEqual(one.banks, ['sha256']);
    const snap = one.snapshot();
    assert.deepEqual(Object.keys(snap), ['next', 'pcr']);
    assert.deepEqual(Object.keys(snap.pcr), ['sha1', 'sha256']);
    assert.equal(snap.next, entries.length);
    assert.equal(snap.pcr.sha1, '00'.repeat(20), 'a bank not replayed keeps its starting value');
    assert.throws(() => one.value('sha1'), (e) => isIntegrityError(e) && e.code === 'ima_bad_replay_state');
    // the other way round, with an injected hash too
    const sha1 = new PcrReplay(undefined, { banks: ['sha1'], hash: nodeHash });
    for (const e of entries) sha1.extend(e);
    assert.equal(hex(sha1.value('sha1')), hex(referenceReplay(entries, 'sha1')), rel);
  }
  assert.throws(() => new PcrReplay(undefined, { banks: [] }), isIntegrityError);
  assert.throws(() => new PcrReplay(undefined, { banks: ['md5' as Bank] }), isIntegrityError);
});

test('banks: [sha256] is still sound: an edited entry whose stated template hash was kept replays elsewhere', () => {
  const entries = list('hpe-keylime-perf-tests/ima_log.txt');
  const good = new PcrReplay(undefined, { banks: ['sha256'] });
  for (const e of entries) good.extend(e);
  fc.assert(
    fc.property(fc.integer({ min: 1, max: entries.length - 1 }), fc.constantFrom('name', 'digest'), (i, what) => {
      const e = entries[i];
      const digest = Uint8Array.from(e.digest);
      digest[0] ^= 1;
      const forged = { ...e, templateDataRaw: undefined } as ImaEntry;
      if (what === 'name') forged.name = `${e.name}x`;
      else forged.digest = digest;
      const r = new PcrReplay(undefined, { banks: ['sha256'] });
      for (const [j, x] of entries.entries()) r.extend(j === i ? forged : x);
      assert.equal(r.valueEquals('sha256', good.value('sha256')), false);
    }),
    { numRuns: 20 },
  );
});

test('banks: [sha256] resumes from its snapshot, and findQuotedPrefix works on it', () => {
  const entries = list('hpe-keylime-perf-tests/ima_log.txt');
  const a = new PcrReplay(undefined, { banks: ['sha256'] });
  for (const e of entries.slice(0, 300)) a.extend(e);
  const b = new PcrReplay(JSON.parse(JSON.stringify(a.snapshot())) as ReplaySnapshot, { banks: ['sha256'] });
  for (const e of entries.slice(300)) b.extend(e);
  assert.equal(hex(b.value('sha256')), hex(referenceReplay(entries, 'sha256')));
  assert.deepEqual(b.clone().banks, ['sha256']);
  const at500 = referenceReplay(entries.slice(0, 500), 'sha256');
  const m = findQuotedPrefix(new PcrReplay(undefined, { banks: ['sha256'] }), entries, { bank: 'sha256', value: at500 });
  assert.equal(m?.count, 500);
  // a quote of a bank that is not replayed is refused, not compared with a stale value
  assert.throws(
    () => findQuotedPrefix(new PcrReplay().snapshot(), entries, { bank: 'sha1', value: new Uint8Array(20) }, { banks: ['sha256'] }),
    (e) => isIntegrityError(e) && e.code === 'ima_bad_replay_state',
  );
});

test('resume: a used replay taken to a snapshot goes on as a new one from it would, for one bank or both', () => {
  const entries = list('hpe-keylime-perf-tests/ima_log.txt');
  for (const banks of [['sha256'], ['sha1', 'sha256']] as Bank[][]) {
    const a = new PcrReplay(undefined, { banks });
    for (const e of entries.slice(0, 200)) a.extend(e);
    const at200 = JSON.parse(JSON.stringify(a.snapshot())) as ReplaySnapshot;
    const used = new PcrReplay(undefined, { banks });
    for (const e of entries.slice(0, 500)) used.extend(e); // somewhere else entirely
    const resumed = used.resume(at200);
    const fresh = new PcrReplay(at200, { banks });
    for (const e of entries.slice(200, 400)) {
      resumed.extend(e);
      fresh.extend(e);
    }
    assert.deepEqual(resumed.snapshot(), fresh.snapshot());
    assert.equal(resumed.snapshot().pcr.sha256, hex(referenceReplay(entries.slice(0, 400), 'sha256')));
    // a bad snapshot is refused as the constructor refuses it
    assert.throws(() => used.resume({ next: -1, pcr: at200.pcr }), (e) => isIntegrityError(e) && e.code === 'ima_bad_replay_state');
  }
});

test('a snapshot that cannot be read back is ima_bad_replay_state', () => {
  const good = new PcrReplay().snapshot();
  const bad: unknown[] = [
    { ...good, next: -1 },
    { ...good, next: 1.5 },
    { ...good, pcr: { ...good.pcr, sha1: 'zz' } },
    { ...good, pcr: { ...good.pcr, sha256: good.pcr.sha1 } },
    { next: 0 },
    null,
  ];
  for (const s of bad) {
    assert.throws(
      () => new PcrReplay(s as ReplaySnapshot),
      (e) => isIntegrityError(e) && e.code === 'ima_bad_replay_state',
      JSON.stringify(s),
    );
  }
});

test('bootAggregate: sha1 uses PCR 0–7 only; missing PCRs are named', () => {
  const pcrs = [...Array(10).keys()].map((i) => createHash('sha1').update(`pcr${i}`).digest());
  const agg = createHash('sha1').update(Buffer.concat(pcrs.slice(0, 8))).digest();
  assert.equal(hex(bootAggregate(pcrs, 'sha1', 8)), hex(agg));
  const entry: ImaEntry = { pcr: 10, template: 'ima-ng', templateHash: new Uint8Array(20).fill(1), digestAlg: 'sha1', digest: agg, name: 'boot_aggregate' };
  assert.deepEqual(checkBootAggregate(entry, pcrs, 'sha1'), { status: 'match', pcrs: 8 });
  // a sha1 boot_aggregate is never over PCR 0–9
  const agg10 = createHash('sha1').update(Buffer.concat(pcrs)).digest();
  assert.deepEqual(checkBootAggregate({ ...entry, digest: agg10 }, pcrs, 'sha1'), { status: 'mismatch', tried: [8] });
  assert.throws(
    () => bootAggregate(pcrs.slice(0, 5), 'sha1', 8),
    (e) => isIntegrityError(e) && e.code === 'tpm_bad_structure' && /PCR 5/.test(e.message),
  );
  assert.throws(() => bootAggregate(pcrs, 'sha256', 8), (e) => isIntegrityError(e) && /PCR 0 of the sha256 bank is 20 bytes/.test(e.message));
});

// ---- a real TPM -------------------------------------------------------------------------------------------------

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): { ok: boolean; out: string } {
  const r = spawnSync(cmd, args, { env, encoding: 'utf8', timeout: 10_000 });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

/** `tpm2_pcrread sha1:10+sha256:10` prints `  sha1:\n    10: 0x…` per bank. */
function pcr10FromText(text: string): Record<Bank, string> {
  const out: Partial<Record<Bank, string>> = {};
  let bank: Bank | undefined;
  for (const line of text.split('\n')) {
    const b = /^\s*(sha1|sha256):\s*$/.exec(line);
    if (b) bank = b[1] as Bank;
    const v = /^\s*10\s*:\s*0x([0-9A-Fa-f]+)\s*$/.exec(line);
    if (v && bank) out[bank] = v[1].toLowerCase();
  }
  assert.ok(out.sha1 && out.sha256, text);
  return out as Record<Bank, string>;
}

test('swtpm: a real TPM extended with the entries\' extend values holds the PCR 10 PcrReplay computes', async (t) => {
  for (const tool of ['swtpm', 'tpm2_pcrextend', 'tpm2_pcrread']) {
    if (spawnSync(tool, ['--version']).error) {
      const reason = `${tool} is not installed`;
      console.log(`# skipped: ${reason}`);
      t.skip(reason);
      return;
    }
  }
  const port = 2400 + 2 * Math.floor(Math.random() * 2000);
  const state = mkdtempSync(join(tmpdir(), 'hg-swtpm-'));
  let tpm: ChildProcess | undefined;
  try {
    tpm = spawn(
      'swtpm',
      ['socket', '--tpm2', '--tpmstate', `dir=${state}`, '--server', `type=tcp,port=${port},bindaddr=127.0.0.1`, '--ctrl', `type=tcp,port=${port + 1},bindaddr=127.0.0.1`, '--flags', 'not-need-init,startup-clear'],
      { stdio: 'ignore' },
    );
    const env = { ...process.env, TPM2TOOLS_TCTI: `swtpm:host=127.0.0.1,port=${port}` };
    let before: { ok: boolean; out: string } = { ok: false, out: '' };
    for (let i = 0; i < 50 && !before.ok; i++) {
      await new Promise((r) => setTimeout(r, 100));
      before = run('tpm2_pcrread', ['sha1:10+sha256:10'], env);
    }
    assert.ok(before.ok, `swtpm on port ${port} did not answer: ${before.out}`);
    assert.deepEqual(pcr10FromText(before.out), { sha1: '0'.repeat(40), sha256: '0'.repeat(64) });

    const hpe = list('hpe-keylime-perf-tests/ima_log.txt');
    const vectors = list('keylime/test_ima_verification_vectors.txt');
    const violation: ImaEntry = { pcr: 10, template: 'ima-ng', templateHash: new Uint8Array(20), digestAlg: 'sha256', digest: new Uint8Array(20), name: '/var/log/messages' };
    const entries: ImaEntry[] = [...hpe.slice(0, 3), violation, vectors[3], vectors[5], { ...hpe[4], pcr: 11 }, hpe[5]];
    const replay = new PcrReplay();
    for (const e of entries) {
      replay.extend(e);
      if (e.pcr !== 10) continue;
      const r = run('tpm2_pcrextend', [`10:sha1=${hex(extendValue(e, 'sha1'))},sha256=${hex(extendValue(e, 'sha256'))}`], env);
      assert.ok(r.ok, r.out);
    }
    const after = run('tpm2_pcrread', ['sha1:10+sha256:10'], env);
    assert.ok(after.ok, after.out);
    assert.deepEqual(pcr10FromText(after.out), { sha1: hex(replay.value('sha1')), sha256: hex(replay.value('sha256')) });
    assert.equal(replay.next, entries.length);
  } finally {
    if (tpm?.pid !== undefined) tpm.kill('SIGTERM');
    rmSync(state, { recursive: true, force: true });
  }
});
