/**
 * Reading IMA measurement lists: every real list under ../shared/data/ima/, both kernel formats, streaming across
 * chunk boundaries, and bad input (truncation, huge length fields, bad hex, unknown templates, runaway lines, fuzz).
 *
 * Expectations come from the files themselves and from FORMATS.md: an ascii line is re-printed from the parsed
 * entry and must equal the file's line; the ascii entries re-encoded as binary records (FORMATS.md layout, template
 * data from ima-entry.ts) must equal the real binary list byte for byte; template hashes are recomputed with
 * ima-entry.ts. The counts are the ones data/README.md states.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { IntegrityError, isIntegrityError } from './errors.ts';
import { computeTemplateHash, isViolation, templateData, type ImaEntry } from './ima-entry.ts';
import {
  DEFAULT_MAX_LINE_BYTES,
  detectImaFormat,
  parseAsciiLine,
  parseImaLog,
  readImaBatches,
  readImaEntries,
  type ImaLogEntry,
  type ImaReadOptions,
} from './ima-log.ts';

const IMA_DATA = join(dirname(fileURLToPath(import.meta.url)), '../../../shared/data/ima');
const hex = (u: Uint8Array): string => Buffer.from(u).toString('hex');

function* walk(dir: string): Generator<string> {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) yield* walk(p);
    else yield p;
  }
}
/** The measurement lists among the data (the rest are policies, keys, UEFI logs): by the names their projects use. */
const LISTS = [...walk(IMA_DATA)].filter((p) => /(runtime_measurements|ima[_-]log|ima_verification_vectors)/.test(relative(IMA_DATA, p)));
const file = (rel: string): Buffer => readFileSync(join(IMA_DATA, rel));
const isBinary = (p: string): boolean => p.includes('binary_');

async function* chunked(data: Uint8Array, sizes: number[]): AsyncGenerator<Uint8Array> {
  let i = 0;
  for (let k = 0; i < data.length; k++) {
    const n = Math.max(1, sizes.length > 0 ? sizes[k % sizes.length] : data.length);
    yield data.subarray(i, i + n);
    i += n;
  }
}

async function collect(source: AsyncIterable<Uint8Array>, opts?: ImaReadOptions): Promise<ImaLogEntry[]> {
  const out: ImaLogEntry[] = [];
  for await (const e of readImaEntries(source, opts)) out.push(e);
  return out;
}

/** The ascii line the kernel prints for an entry (FORMATS.md "ascii_runtime_measurements line"). */
function asciiLine(e: ImaEntry): string {
  const d = e.template === 'ima' ? hex(e.digest) : `${e.digestAlg}:${hex(e.digest)}`;
  let line = `${String(e.pcr).padStart(2)} ${hex(e.templateHash)} ${e.template} ${d} ${e.name}`;
  if (e.template === 'ima-sig') line += ` ${hex(e.sig ?? new Uint8Array(0))}`;
  if (e.template === 'ima-buf') line += ` ${hex(e.buf ?? new Uint8Array(0))}`;
  return line;
}

function u32le(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

/** The binary record of an entry (FORMATS.md "binary_runtime_measurements record"). */
function binaryRecord(e: ImaEntry): Buffer {
  const head = [u32le(e.pcr), Buffer.from(e.templateHash), u32le(e.template.length), Buffer.from(e.template, 'latin1')];
  if (e.template === 'ima') {
    const name = Buffer.from(e.name, 'utf8');
    return Buffer.concat([...head, Buffer.from(e.digest), u32le(name.length), name]);
  }
  const td = templateData(e);
  return Buffer.concat([...head, u32le(td.length), td]);
}

/** Record boundaries of a binary list, walked here from its length fields (non-`ima` templates). */
function recordEnds(bin: Buffer, count: number): number[] {
  const ends = [0];
  let o = 0;
  for (let k = 0; k < count; k++) {
    const nameLen = bin.readUInt32LE(o + 24);
    const dataLen = bin.readUInt32LE(o + 28 + nameLen);
    o += 28 + nameLen + 4 + dataLen;
    ends.push(o);
  }
  return ends;
}

function expectError(f: () => unknown, code: string, place: Partial<IntegrityError['place']> = {}): IntegrityError {
  try {
    f();
  } catch (e) {
    assert.ok(isIntegrityError(e), `not an IntegrityError: ${String(e)}`);
    assert.equal(e.code, code, e.message);
    for (const [k, v] of Object.entries(place)) assert.equal(e.place[k as keyof IntegrityError['place']], v, `${k} in ${e.message}`);
    return e;
  }
  assert.fail(`no ${code} error`);
}

async function expectAsyncError(p: Promise<unknown>, code: string, place: Partial<IntegrityError['place']> = {}): Promise<IntegrityError> {
  try {
    await p;
  } catch (e) {
    assert.ok(isIntegrityError(e), `not an IntegrityError: ${String(e)}`);
    assert.equal(e.code, code, e.message);
    for (const [k, v] of Object.entries(place)) assert.equal(e.place[k as keyof IntegrityError['place']], v, `${k} in ${e.message}`);
    return e;
  }
  assert.fail(`no ${code} error`);
}

// ---- the real lists ---------------------------------------------------------------------------------------------

test('the data holds the lists data/README.md names', () => {
  const rel = LISTS.map((p) => relative(IMA_DATA, p));
  for (const want of [
    'hpe-keylime-perf-tests/ima_log.txt',
    'embrave/ascii_runtime_measurements',
    'embrave/binary_runtime_measurements',
    'rust-keylime/ascii_runtime_measurements',
    'keylime/ima-log-sha1',
    'keylime/ima-log-sha256',
    'keylime/test_ima_verification_vectors.txt',
  ]) {
    assert.ok(rel.includes(want), `${want} among ${rel.join(', ')}`);
  }
  assert.ok(rel.some((r) => r.startsWith('keylime-tests/')), 'keylime-tests logs');
});

for (const path of LISTS) {
  const rel = relative(IMA_DATA, path);
  test(`${rel}: every entry parses, re-prints or re-encodes to the file, and its template hash recomputes`, async () => {
    const data = readFileSync(path);
    assert.equal(detectImaFormat(data.subarray(0, 64)), isBinary(path) ? 'binary' : 'ascii');
    const entries = parseImaLog(data);
    assert.ok(entries.length > 0);
    if (isBinary(path)) {
      assert.deepEqual(Buffer.concat(entries.map(binaryRecord)), data, 'entries re-encoded as binary records give the file');
    } else {
      const lines = data.toString('utf8').split('\n').filter((l) => l !== '');
      assert.equal(entries.length, lines.length);
      entries.forEach((e, i) => {
        const printed = asciiLine(e);
        // a copy may have lost an unsigned ima-sig line's trailing space
        assert.ok(lines[i] === printed || lines[i] === printed.trimEnd(), `line ${i + 1}:\n${lines[i]}\n${printed}`);
      });
    }
    for (const [i, e] of entries.entries()) {
      assert.equal(hex(e.templateDataRaw!), hex(templateData(e)), `entry ${i + 1}: template data`);
      if (!isViolation(e)) assert.equal(hex(computeTemplateHash(e)), hex(e.templateHash), `entry ${i + 1}: template hash`);
    }
    // the same through a stream, in odd-sized chunks that split lines, records and hex pairs
    const streamed = await collect(chunked(data, [1, 7, 97, 4096, 3]));
    assert.deepEqual(streamed.map(asciiLine), entries.map(asciiLine));
  });
}

test('data/README.md counts: hpe 780, embrave 922 in both formats, rust-keylime 826 with sha1 digests and a zero boot_aggregate', () => {
  const hpe = parseImaLog(file('hpe-keylime-perf-tests/ima_log.txt'));
  assert.equal(hpe.length, 780);
  assert.ok(hpe.every((e) => e.template === 'ima-ng' && e.pcr === 10));
  assert.equal(hpe[0].name, 'boot_aggregate');

  const rk = parseImaLog(file('rust-keylime/ascii_runtime_measurements'));
  assert.equal(rk.length, 826);
  assert.ok(rk.every((e) => e.digestAlg === 'sha1' && e.digest.length === 20));
  assert.equal(rk[0].name, 'boot_aggregate');
  assert.ok(rk[0].digest.every((b) => b === 0));
});

test('embrave: the ascii and the binary list are the same 922 entries, field by field', async () => {
  const a = parseImaLog(file('embrave/ascii_runtime_measurements'));
  const b = parseImaLog(file('embrave/binary_runtime_measurements'));
  const s = await collect(chunked(file('embrave/binary_runtime_measurements'), [65536]));
  assert.equal(a.length, 922);
  assert.equal(b.length, 922);
  assert.equal(s.length, 922);
  const fields = (e: ImaLogEntry) => ({
    pcr: e.pcr,
    template: e.template,
    templateHash: hex(e.templateHash),
    digestAlg: e.digestAlg,
    digest: hex(e.digest),
    name: e.name,
    sig: e.sig && hex(e.sig),
    buf: e.buf && hex(e.buf),
    templateDataRaw: hex(e.templateDataRaw!),
  });
  for (let i = 0; i < a.length; i++) {
    assert.deepEqual(fields(b[i]), fields(a[i]), `entry ${i + 1}`);
    assert.deepEqual(fields(s[i]), fields(a[i]), `entry ${i + 1} (stream)`);
  }
});

test('keylime vectors: ima-sig with RSA and EC signatures, unsigned ima-sig, ima-buf keys', () => {
  const es = parseImaLog(file('keylime/test_ima_verification_vectors.txt'));
  const sigs = es.filter((e) => e.template === 'ima-sig');
  assert.ok(sigs.some((e) => e.sig!.length === 0), 'an unsigned ima-sig');
  // signature_v2_hdr (FORMATS.md): type 3, version 2, then hash_algo, keyid, sig_size (big-endian) and the signature
  for (const e of sigs.filter((x) => x.sig!.length > 0)) {
    assert.equal(e.sig![0], 3);
    assert.equal(e.sig![1], 2);
    assert.equal(Buffer.from(e.sig!).readUInt16BE(7), e.sig!.length - 9);
  }
  const bufs = es.filter((e) => e.template === 'ima-buf');
  assert.ok(bufs.length > 0);
  for (const e of bufs) {
    // ima-buf: the digest is the hash of the buffer (an X.509 key here)
    assert.equal(hex(createHash(e.digestAlg).update(e.buf!).digest()), hex(e.digest));
    assert.equal(e.buf![0], 0x30, 'a DER SEQUENCE');
  }
});

test('ima-sig and ima-buf entries read back the same from binary records built from them', () => {
  const src = [file('keylime/test_ima_verification_vectors.txt'), file('keylime-tests/keylime-policy-commands/ima_log.txt')];
  for (const data of src) {
    const a = parseImaLog(data);
    const bin = Buffer.concat(a.map(binaryRecord));
    const b = parseImaLog(bin);
    assert.deepEqual(b.map(asciiLine), a.map(asciiLine));
    assert.deepEqual(b.map((e) => hex(e.templateDataRaw!)), a.map((e) => hex(e.templateDataRaw!)));
  }
});

test('the legacy ima template: bare sha1 digest, name padded to 256 bytes in the hash, unpadded in binary', () => {
  const digest = createHash('sha1').update('busybox').digest();
  const name = '/bin/busybox';
  const padded = Buffer.alloc(256);
  padded.write(name, 'latin1');
  const th = createHash('sha1').update(Buffer.concat([digest, padded])).digest();
  const line = `10 ${th.toString('hex')} ima ${digest.toString('hex')} ${name}`;
  const e = parseAsciiLine(line, 1);
  assert.equal(e.template, 'ima');
  assert.equal(e.digestAlg, 'sha1');
  assert.equal(hex(e.digest), digest.toString('hex'));
  assert.equal(e.name, name);
  assert.equal(hex(e.templateDataRaw!), hex(Buffer.concat([digest, padded])));
  assert.equal(hex(computeTemplateHash(e)), th.toString('hex'));
  // binary: digest[20] | u32 len | name, no data_len
  const rec = Buffer.concat([u32le(10), th, u32le(3), Buffer.from('ima'), digest, u32le(name.length), Buffer.from(name)]);
  const [b] = parseImaLog(rec);
  assert.equal(asciiLine(b), line);
  assert.equal(hex(b.templateDataRaw!), hex(e.templateDataRaw!));
});

test('ascii details: "%2d" pads one-digit PCRs, CRLF and blank lines, an unsigned ima-sig with or without its space', () => {
  const base = file('hpe-keylime-perf-tests/ima_log.txt').toString('utf8').split('\n')[1];
  const e9 = parseAsciiLine(` 9${base.slice(2)}`, 1);
  assert.equal(e9.pcr, 9);
  const crlf = parseImaLog(`${base}\r\n\r\n${base}\r\n`);
  assert.equal(crlf.length, 2);
  assert.equal(asciiLine(crlf[1]), base);
  const unsigned = file('keylime/test_ima_verification_vectors.txt').toString('utf8').split('\n')[0];
  assert.ok(unsigned.endsWith(' '));
  assert.equal(hex(parseAsciiLine(unsigned, 1).templateDataRaw!), hex(parseAsciiLine(unsigned.trimEnd(), 1).templateDataRaw!));
  assert.equal(parseAsciiLine(`${base}\n`, 1).name, parseAsciiLine(base, 1).name);
});

test('a violation (zero template hash) may carry 20 zero bytes under sha256, as kernels record it', () => {
  const e = parseAsciiLine(`10 ${'0'.repeat(40)} ima-ng sha256:${'0'.repeat(40)} /usr/bin/foo`, 1);
  assert.ok(isViolation(e));
  assert.equal(e.digest.length, 20);
  const [b] = parseImaLog(binaryRecord(e));
  assert.equal(asciiLine(b), asciiLine(e));
  // not for a normal entry
  expectError(() => parseAsciiLine(`10 ${'1'.repeat(40)} ima-ng sha256:${'0'.repeat(40)} /usr/bin/foo`, 4), 'ima_bad_line', { line: 4 });
});

test('detectImaFormat: by content', () => {
  assert.equal(detectImaFormat(Buffer.from('10 f14cc95246062496c26dbc35c9cb0e99a153312a ima-ng')), 'ascii');
  assert.equal(detectImaFormat(Buffer.from(' 9 f14cc9')), 'ascii');
  assert.equal(detectImaFormat(file('embrave/binary_runtime_measurements').subarray(0, 64)), 'binary');
  assert.equal(detectImaFormat(new Uint8Array(0)), 'ascii');
  expectError(() => detectImaFormat(Buffer.from('{"meta": 1}')), 'ima_unknown_format');
  expectError(() => detectImaFormat(Buffer.from([0, 0, 0, 10, 1, 2, 3, 4])), 'ima_unknown_format');
});

// ---- streaming --------------------------------------------------------------------------------------------------

test('streaming equals the whole-buffer parse for any chunking (property)', async () => {
  const ascii = Buffer.from(file('keylime-tests/keylime-policy-commands/ima_log.txt'));
  const bin = file('embrave/binary_runtime_measurements').subarray(0, recordEnds(file('embrave/binary_runtime_measurements'), 40)[40]);
  const want = { ascii: parseImaLog(ascii).map(asciiLine), bin: parseImaLog(bin).map(asciiLine) };
  await fc.assert(
    fc.asyncProperty(fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 1, maxLength: 20 }), fc.boolean(), async (sizes, binary) => {
      const data = binary ? bin : ascii;
      const got = await collect(chunked(data, sizes));
      assert.deepEqual(got.map(asciiLine), binary ? want.bin : want.ascii);
    }),
    { numRuns: 100 },
  );
});

test('streaming: chunks may be reused by the source after they are handed over', async () => {
  const all = file('embrave/ascii_runtime_measurements');
  const bin = file('embrave/binary_runtime_measurements');
  for (const [data, size] of [
    [all.subarray(0, all.lastIndexOf(10, 20000) + 1), 1000],
    [all.subarray(0, all.lastIndexOf(10, 20000) + 1), 50],
    [bin.subarray(0, recordEnds(bin, 40)[40]), 50],
    [bin.subarray(0, recordEnds(bin, 40)[40]), 1000],
  ] as const) {
    const scratch = Buffer.alloc(size);
    async function* reusing(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < data.length; i += scratch.length) {
        const n = data.copy(scratch, 0, i, i + scratch.length);
        yield scratch.subarray(0, n);
        scratch.fill(0x41);
      }
    }
    assert.deepEqual((await collect(reusing())).map(asciiLine), parseImaLog(data).map(asciiLine), `chunks of ${size}`);
  }
});

test('readImaBatches yields the entries before a failure, then the error', async () => {
  const good = file('hpe-keylime-perf-tests/ima_log.txt').toString('utf8').split('\n').slice(0, 5).join('\n');
  const data = Buffer.from(`${good}\n10 zz bad line\n`);
  const seen: ImaLogEntry[] = [];
  const err = await expectAsyncError(
    (async () => {
      for await (const batch of readImaBatches(chunked(data, [data.length]))) seen.push(...batch);
    })(),
    'ima_bad_line',
    { line: 6, entry: 6 },
  );
  assert.equal(seen.length, 5);
  assert.match(err.message, /^line 6: entry 6: /);
});

// ---- bad input --------------------------------------------------------------------------------------------------

test('ascii errors name the line: bad hex, field counts, unknown template and algorithm, digest length', () => {
  const lines = file('keylime/test_ima_verification_vectors.txt').toString('utf8').split('\n');
  const ng = file('hpe-keylime-perf-tests/ima_log.txt').toString('utf8').split('\n')[1];
  const [pcr, th, , d, name] = ng.split(' ');
  const cases: [string, string][] = [
    [`${pcr} ${th.slice(0, 39)}g ima-ng ${d} ${name}`, 'ima_bad_line'],
    [`${pcr} ${th} ima-ng ${d.slice(0, -1)}x ${name}`, 'ima_bad_line'],
    [`${pcr} ${th} ima-ng ${d.slice(0, -1)} ${name}`, 'ima_bad_line'],
    [`${pcr} ${th} ima-ng ${d} ${name} extra`, 'ima_bad_line'],
    [`${pcr} ${th} ima-ng ${d}`, 'ima_bad_line'],
    [`${pcr} ${th} ima-ng ${d} `, 'ima_bad_line'],
    [`${pcr} ${th} ima-ng ${d.replace('sha256:', 'sha999:')} ${name}`, 'ima_bad_line'],
    [`${pcr} ${th} ima-ng ${d.replace('sha256:', 'sha1:')} ${name}`, 'ima_bad_line'],
    [`${pcr} ${th} ima-ng ${d.replace('sha256:', '')} ${name}`, 'ima_bad_line'],
    [`${pcr} ${th} ima-modsig ${d} ${name}`, 'ima_unknown_template'],
    [`${pcr} ${th} evm-sig ${d} ${name}`, 'ima_unknown_template'],
    [`x${pcr} ${th} ima-ng ${d} ${name}`, 'ima_bad_line'],
    [`${pcr}${th} ima-ng ${d} ${name}`, 'ima_bad_line'],
    [`${lines[3].replace(/ [0-9a-f]+$/, ' 0302zz')}`, 'ima_bad_line'],
    [`${lines[5].split(' ').slice(0, 5).join(' ')}`, 'ima_bad_line'],
    [`${lines[3]}0`, 'ima_bad_line'],
  ];
  for (const [i, [line, code]] of cases.entries()) {
    // as a single line, and as line 3 of a list
    expectError(() => parseAsciiLine(line, 42), code, { line: 42 });
    expectError(() => parseImaLog(`${ng}\n${ng}\n${line}\n${ng}\n`), code, { line: 3, entry: 3 });
    assert.ok(i >= 0);
  }
});

test('a 10 MB line fails fast with ima_entry_too_large, holding no more than the limit', async () => {
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  let pulled = 0;
  async function* huge(): AsyncGenerator<Uint8Array> {
    yield Buffer.from('10 ');
    for (let i = 0; i < 160; i++) {
      pulled++;
      yield chunk;
    }
  }
  const t0 = performance.now();
  await expectAsyncError(collect(huge(), { format: 'ascii' }), 'ima_entry_too_large', { line: 1 });
  assert.ok(pulled <= Math.ceil(DEFAULT_MAX_LINE_BYTES / chunk.length) + 1, `read ${pulled} chunks of 64 KiB before failing`);
  const big = `10 ${'a'.repeat(10 * 1024 * 1024)}`;
  expectError(() => parseAsciiLine(big, 7), 'ima_entry_too_large', { line: 7 });
  expectError(() => parseImaLog(big), 'ima_entry_too_large', { line: 1 });
  assert.ok(performance.now() - t0 < 2000);
  // a second line after a good one: the number is right
  const ok = file('hpe-keylime-perf-tests/ima_log.txt').toString('utf8').split('\n')[0];
  expectError(() => parseImaLog(`${ok}\n${big}`), 'ima_entry_too_large', { line: 2 });
});

test('binary truncated at every offset of the first records: a clean end at a boundary, else ima_truncated naming entry and offset', async () => {
  const bin = file('embrave/binary_runtime_measurements');
  const ends = recordEnds(bin, 4);
  for (let cut = 0; cut <= ends[4]; cut++) {
    const data = bin.subarray(0, cut);
    const complete = ends.filter((e) => e <= cut).length - 1;
    if (ends.includes(cut)) {
      assert.equal(parseImaLog(data, { format: 'binary' }).length, complete, `cut ${cut}`);
    } else {
      expectError(() => parseImaLog(data, { format: 'binary' }), 'ima_truncated', { entry: complete + 1, offset: ends[complete] });
      if (cut % 5 === 0) {
        await expectAsyncError(collect(chunked(data, [13]), { format: 'binary' }), 'ima_truncated', { entry: complete + 1, offset: ends[complete] });
      }
    }
  }
});

test('a length field of 0xFFFFFFFF fails fast, naming entry and byte offset', async () => {
  const bin = Buffer.from(file('embrave/binary_runtime_measurements'));
  const ends = recordEnds(bin, 3);
  const r = ends[2]; // third record
  const nameLen = bin.readUInt32LE(r + 24);
  const t0 = performance.now();
  // data_len
  const a = Buffer.from(bin);
  a.writeUInt32LE(0xffffffff, r + 28 + nameLen);
  expectError(() => parseImaLog(a), 'ima_entry_too_large', { entry: 3, offset: r + 28 + nameLen });
  await expectAsyncError(collect(chunked(a, [4096])), 'ima_entry_too_large', { entry: 3, offset: r + 28 + nameLen });
  // data_len within the cap but beyond the list
  const a2 = Buffer.from(bin.subarray(0, ends[3]));
  a2.writeUInt32LE(1 << 20, r + 28 + nameLen);
  expectError(() => parseImaLog(a2), 'ima_truncated', { entry: 3, offset: r });
  // template name length
  const b = Buffer.from(bin);
  b.writeUInt32LE(0xffffffff, r + 24);
  expectError(() => parseImaLog(b), 'ima_bad_record', { entry: 3, offset: r + 24 });
  // d-ng field length inside the template data
  const c = Buffer.from(bin);
  c.writeUInt32LE(0xffffffff, r + 28 + nameLen + 4);
  expectError(() => parseImaLog(c), 'ima_bad_record', { entry: 3, offset: r + 28 + nameLen + 4 });
  // the last field's length
  const dngLen = bin.readUInt32LE(r + 28 + nameLen + 4);
  const d = Buffer.from(bin);
  d.writeUInt32LE(0xffffffff, r + 28 + nameLen + 8 + dngLen);
  expectError(() => parseImaLog(d), 'ima_bad_record', { entry: 3 });
  assert.ok(performance.now() - t0 < 1000, 'fast');
});

test('binary errors: unknown template, bad d-ng, name without NUL, bytes after the last field', () => {
  const bin = Buffer.from(file('embrave/binary_runtime_measurements').subarray(0, recordEnds(file('embrave/binary_runtime_measurements'), 3)[3]));
  const ends = recordEnds(bin, 3);
  const r = ends[1];
  const t = Buffer.from(bin);
  t.write('imb', r + 28, 'latin1');
  expectError(() => parseImaLog(t), 'ima_unknown_template', { entry: 2, offset: r + 28 });
  const dng = r + 28 + 6 + 4 + 4; // start of "sha256:\0"
  const u = Buffer.from(bin);
  u[dng + 6] = 0x2e; // "sha256." — no colon
  expectError(() => parseImaLog(u), 'ima_bad_record', { entry: 2 });
  const v = Buffer.from(bin);
  v.write('md9', dng, 'latin1');
  expectError(() => parseImaLog(v), 'ima_bad_record', { entry: 2 });
  const w = Buffer.from(bin);
  w[ends[2] - 1] = 0x41; // the NUL ending the second record's name
  expectError(() => parseImaLog(w), 'ima_bad_record', { entry: 2 });
  // one byte more in data_len than the fields use
  const e = parseImaLog(bin)[1];
  const rec = binaryRecord(e);
  const padded = Buffer.concat([rec.subarray(0, 34), u32le(rec.readUInt32LE(34) + 1), rec.subarray(38), Buffer.from([0])]);
  expectError(() => parseImaLog(padded), 'ima_bad_record', { entry: 1 });
});

// ---- fuzzing ----------------------------------------------------------------------------------------------------

/** Either entries or an IntegrityError: never another exception. */
function parsesOrFailsCleanly(data: Uint8Array | string, opts?: ImaReadOptions): void {
  try {
    parseImaLog(data, opts);
  } catch (e) {
    if (!isIntegrityError(e)) throw e;
  }
}

test('fuzz: random bytes and mutated real lists never raise anything but IntegrityError (both parsers)', async () => {
  const asciiSeed = Buffer.concat([
    Buffer.from(file('keylime/test_ima_verification_vectors.txt')),
    Buffer.from(file('hpe-keylime-perf-tests/ima_log.txt').subarray(0, 800)),
  ]);
  const binAll = file('embrave/binary_runtime_measurements');
  const binSeed = binAll.subarray(0, recordEnds(binAll, 5)[5]);
  const mutation = fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('set', 'insert', 'delete')), { maxLength: 8 });
  const mutate = (seed: Buffer, ms: [number, number, string][], cut: number): Buffer => {
    let b = Buffer.from(seed);
    for (const [at, v, op] of ms) {
      const i = at % Math.max(1, b.length);
      if (op === 'set') b[i] = v;
      else if (op === 'insert') b = Buffer.concat([b.subarray(0, i), Buffer.from([v]), b.subarray(i)]);
      else b = Buffer.concat([b.subarray(0, i), b.subarray(i + 1)]);
    }
    return b.subarray(0, b.length - (cut % (b.length + 1)));
  };
  const t0 = performance.now();
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 2048 }), fc.constantFrom<ImaReadOptions['format']>('ascii', 'binary', undefined), (bytes, format) => {
      parsesOrFailsCleanly(bytes, { format });
    }),
    { numRuns: 200 },
  );
  fc.assert(
    fc.property(fc.string({ maxLength: 400 }), (s) => {
      parsesOrFailsCleanly(s);
      try {
        parseAsciiLine(s, 1);
      } catch (e) {
        if (!isIntegrityError(e)) throw e;
      }
    }),
    { numRuns: 200 },
  );
  fc.assert(
    fc.property(mutation, fc.nat(), fc.boolean(), (ms, cut, binary) => {
      parsesOrFailsCleanly(mutate(binary ? binSeed : asciiSeed, ms, cut % 64));
    }),
    { numRuns: 200 },
  );
  await fc.assert(
    fc.asyncProperty(mutation, fc.integer({ min: 1, max: 300 }), fc.boolean(), async (ms, size, binary) => {
      try {
        await collect(chunked(mutate(binary ? binSeed : asciiSeed, ms, 0), [size]));
      } catch (e) {
        if (!isIntegrityError(e)) throw e;
      }
    }),
    { numRuns: 200 },
  );
  assert.ok(performance.now() - t0 < 30_000, 'no hang');
});
