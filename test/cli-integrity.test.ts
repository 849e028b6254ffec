/**
 * The integrity commands as a user runs them (a real process from bin/hueguard) on the real lists and quotes in
 * ../shared/data; expectations come from the files' own content and the facts of ../shared/data/README.md.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const bin = join(root, 'bin', 'hueguard');
const data = join(root, '..', 'shared', 'data');
const ima = join(data, 'ima');
const tpm = join(data, 'tpm');
const tmp = mkdtempSync(join(tmpdir(), 'hg-cli-int-'));

function hg(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', cwd: tmp, timeout: 60_000, env: { ...process.env, ...env } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** PCR values from tpm2-tools' PCR file (little-endian, FORMATS.md), read here independently of hueguard. */
function pcrFile(bytes: Buffer): Map<number, Buffer> {
  const count = bytes.readUInt32LE(0);
  const banks: { alg: number; pcrs: number[] }[] = [];
  for (let i = 0; i < count; i++) {
    const o = 4 + i * 8;
    const alg = bytes.readUInt16LE(o);
    const size = bytes[o + 2];
    const pcrs: number[] = [];
    for (let j = 0; j < size; j++) for (let bit = 0; bit < 8; bit++) if (bytes[o + 3 + j] & (1 << bit)) pcrs.push(j * 8 + bit);
    banks.push({ alg, pcrs });
  }
  let o = 4 + 16 * 8;
  const groups = bytes.readUInt32LE(o);
  o += 4;
  const values: Buffer[] = [];
  for (let g = 0; g < groups; g++) {
    const n = bytes.readUInt32LE(o);
    for (let k = 0; k < 8; k++) {
      const size = bytes.readUInt16LE(o + 4 + k * 66);
      if (k < n) values.push(bytes.subarray(o + 6 + k * 66, o + 6 + k * 66 + size));
    }
    o += 4 + 8 * 66;
  }
  const sha256 = banks.find((b) => b.alg === 0x000b)!;
  const before = banks.slice(0, banks.indexOf(sha256)).reduce((n, b) => n + b.pcrs.length, 0);
  return new Map(sha256.pcrs.map((p, i) => [p, values[before + i]]));
}

test('ima replay --json of the hpe log gives the PCR 10 of the quote taken with it', () => {
  const r = hg(['ima', 'replay', join(ima, 'hpe-keylime-perf-tests', 'ima_log.txt'), '--json']);
  assert.equal(r.code, 0, r.err);
  const out = JSON.parse(r.out);
  const lines = readFileSync(join(ima, 'hpe-keylime-perf-tests', 'ima_log.txt'), 'utf8').trim().split('\n');
  assert.equal(out.entries, lines.length);
  assert.equal(out.violations, 0);
  assert.equal(out.templateHashMismatches, 0);
  const pcrs = pcrFile(readFileSync(join(tpm, 'hpe', 'quote_subject_data_pcrs.bin')));
  assert.equal(out.pcr10.sha256, pcrs.get(10)!.toString('hex'));
  assert.deepEqual(Object.keys(out), ['entries', 'violations', 'templateHashMismatches', 'pcr10']);
});

test('ima replay reads the binary list like the ascii one (embrave), with or without --binary', () => {
  const a = JSON.parse(hg(['ima', 'replay', join(ima, 'embrave', 'ascii_runtime_measurements'), '--json']).out);
  const b = JSON.parse(hg(['ima', 'replay', join(ima, 'embrave', 'binary_runtime_measurements'), '--json']).out);
  const c = JSON.parse(hg(['ima', 'replay', join(ima, 'embrave', 'binary_runtime_measurements'), '--binary', '--json']).out);
  assert.deepEqual(a, b);
  assert.deepEqual(b, c);
  assert.equal(a.entries, readFileSync(join(ima, 'embrave', 'ascii_runtime_measurements'), 'utf8').trim().split('\n').length);
});

test('ima replay of a truncated binary list names the entry and byte offset (exit 1)', () => {
  const bin = readFileSync(join(ima, 'embrave', 'binary_runtime_measurements'));
  const cut = join(tmp, 'cut.bin');
  writeFileSync(cut, bin.subarray(0, 1000));
  const r = hg(['ima', 'replay', cut, '--binary']);
  assert.equal(r.code, 1);
  assert.match(r.err, /ima_truncated/);
  assert.match(r.err, /entry \d+/);
  assert.match(r.err, /byte \d+/);
});

test('ima appraise: a policy made from a log accepts it; a changed file digest is a mismatch with both digests', () => {
  const log = join(ima, 'keylime-tests', 'keylime_create_policy-static-data', 'test2', 'ascii_runtime_measurements-1');
  const policy = join(tmp, 'policy.json');
  const made = hg(['ima', 'policy-from-log', log, '-o', policy]);
  assert.equal(made.code, 0, made.err);
  const ok = hg(['ima', 'appraise', log, '--policy', policy, '--json']);
  assert.equal(ok.code, 0, ok.err);
  assert.equal(JSON.parse(ok.out).ok, true);
  // change the file digest of the third entry and fix its template hash, as a changed file would look
  const lines = readFileSync(log, 'utf8').trim().split('\n');
  const f = lines[2].split(' ');
  const newDigest = createHash('sha256').update('changed').digest('hex');
  const [alg] = f[3].split(':');
  f[3] = `${alg}:${newDigest}`;
  const u32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b; };
  const d = Buffer.concat([Buffer.from(`${alg}:\0`), Buffer.from(newDigest, 'hex')]);
  const n = Buffer.concat([Buffer.from(f[4]), Buffer.from([0])]);
  f[1] = createHash('sha1').update(Buffer.concat([u32(d.length), d, u32(n.length), n])).digest('hex');
  lines[2] = f.join(' ');
  const changed = join(tmp, 'changed.log');
  writeFileSync(changed, lines.join('\n') + '\n');
  const bad = hg(['ima', 'appraise', changed, '--policy', policy, '--json']);
  assert.equal(bad.code, 1);
  const v = JSON.parse(bad.out);
  assert.equal(v.failures.length, 1);
  assert.equal(v.failures[0].entry, 3);
  assert.equal(v.failures[0].path, f[4]);
  assert.equal(v.failures[0].status, 'mismatch');
  assert.equal(v.failures[0].found, newDigest);
  assert.deepEqual(v.failures[0].expected, [readFileSync(log, 'utf8').split('\n')[2].split(' ')[3].split(':')[1]]);
  // the JavaScript path alone (no native scanner) answers exactly the same, PCR 10 included
  const js = hg(['ima', 'appraise', changed, '--policy', policy, '--json'], { HUEGUARD_NATIVE: '0' });
  assert.deepEqual(JSON.parse(js.out), v);
  const human = hg(['ima', 'appraise', changed, '--policy', policy]);
  assert.match(human.out, new RegExp(`entry 3 ${f[4].replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: mismatch: expected sha256:[0-9a-f]{64}, found sha256:${newDigest}`));
});

test('ima policy-from-log with an exclude list writes the excludes (keylime-tests test3)', () => {
  const dir = join(ima, 'keylime-tests', 'keylime_create_policy-static-data');
  const r = hg(['ima', 'policy-from-log', join(dir, 'test2', 'ascii_runtime_measurements-1'), '--exclude', join(dir, 'test3', 'exclude-list-1')]);
  assert.equal(r.code, 0, r.err);
  const expected = JSON.parse(readFileSync(join(dir, 'test3', 'output1.json'), 'utf8'));
  const got = JSON.parse(r.out);
  delete expected.meta.timestamp;
  delete got.meta.timestamp;
  assert.deepEqual(got, expected);
});

test('quote verify: the hardware quote and the swtpm quotes verify; a wrong nonce or key fails on that check', () => {
  const hpe = join(tpm, 'hpe');
  const ok = hg(['quote', 'verify', '--attest', join(hpe, 'quote_message_tpms_attest.bin'), '--sig', join(hpe, 'quote_signature_tpmt_signature.bin'),
    '--ak', join(hpe, 'ak_tpm2b_public.bin'), '--pcrs', join(hpe, 'quote_subject_data_pcrs.bin'), '--json']);
  assert.equal(ok.code, 0, ok.err + ok.out);
  const v = JSON.parse(ok.out);
  assert.deepEqual(Object.keys(v), ['valid', 'failed', 'nonce', 'pcrDigest']);
  assert.equal(v.valid, true);
  assert.equal(v.failed, null);
  // the PCR digest the quote signs is sha256 over PCRs 0-16 in the PCR file (computed here)
  const pcrs = pcrFile(readFileSync(join(hpe, 'quote_subject_data_pcrs.bin')));
  const h = createHash('sha256');
  for (let i = 0; i <= 16; i++) h.update(pcrs.get(i)!);
  assert.equal(v.pcrDigest, h.digest('hex'));

  const sw = join(tpm, 'swtpm');
  const nonce = readFileSync(join(sw, 'nonce.hex'), 'utf8').trim();
  const args = (ak: string, n: string) => ['quote', 'verify', '--attest', join(sw, 'quote.msg'), '--sig', join(sw, 'quote.sig'), '--ak', join(sw, ak), '--nonce', n, '--pcrs', join(sw, 'quote.pcrs'), '--json'];
  const good = hg(args('ak.pub.pem', nonce));
  assert.equal(good.code, 0, good.out + good.err);
  assert.equal(JSON.parse(good.out).nonce, nonce);
  const wrongNonce = hg(args('ak.pub.pem', '00112233'));
  assert.equal(wrongNonce.code, 1);
  assert.equal(JSON.parse(wrongNonce.out).failed, 'nonce');
  const wrongKey = hg(args('ak_ecc.pub.pem', nonce));
  assert.equal(wrongKey.code, 1);
  assert.equal(JSON.parse(wrongKey.out).failed, 'signature');
});

test('quote verify on a file that is not a quote names the structure and byte offset', () => {
  const junk = join(tmp, 'junk.bin');
  writeFileSync(junk, Buffer.from('ff544347801800', 'hex'));
  const r = hg(['quote', 'verify', '--attest', junk, '--sig', join(tpm, 'swtpm', 'quote.sig'), '--ak', join(tpm, 'swtpm', 'ak.pub.pem')]);
  assert.equal(r.code, 1);
  assert.match(r.err, /tpm_truncated|tpm_bad_structure/);
  assert.match(r.err, /byte \d+/);
});
