/**
 * The native scanner must change nothing but the speed: on every file of the shared IMA data and on generated
 * lists (good lines and every kind of bad one, chunked any way), replay + appraisal through it gives exactly what
 * the JavaScript path gives — replay state, template-hash mismatches, counts, failures — or exactly the same error
 * after the same progress. Its hashing is OpenSSL's, checked against node:crypto. In CI the addon must be built.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { Appraiser, type AppraisalFailure, type StatusCounts } from '../integrity/appraise.ts';
import { murmur3 } from '../integrity/digest-table.ts';
import { isIntegrityError } from '../integrity/errors.ts';
import type { Bank } from '../integrity/ima-entry.ts';
import { parseImaLog, readImaBatches, type ChunkSource } from '../integrity/ima-log.ts';
import { PcrReplay, type ReplaySnapshot } from '../integrity/ima-replay.ts';
import { replayAndAppraiseStream, type ImaScanner } from '../integrity/ima-scan.ts';
import { emptyRuntimePolicy, policyFromLog, readRuntimePolicy, type RuntimePolicy } from '../integrity/runtime-policy.ts';
import { fileChunks, nativeImaAddon, nativeImaScanner, nativeImaStatus } from './ima-native.ts';

const DATA = join(dirname(fileURLToPath(import.meta.url)), '../../../shared/data/ima');
const scanner = nativeImaScanner({ threaded: true });
const inline = nativeImaScanner({ threaded: false });
const skip = scanner === null ? `native addon not loaded: ${nativeImaStatus().detail}` : false;

test('in CI the native addon is built and loads', { skip: process.env.CI ? false : 'not CI' }, () => {
  assert.equal(nativeImaStatus().loaded, true, nativeImaStatus().detail);
});

test('the status says whether the addon loaded, and from where or why not', () => {
  const s = nativeImaStatus();
  assert.equal(typeof s.loaded, 'boolean');
  assert.ok(s.detail.length > 0);
});

test('the addon hashes as node:crypto does (sha1, sha256, 0–300 bytes) and has the table hash of digest-table.ts', { skip }, () => {
  const addon = nativeImaAddon()!;
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (data) => {
      assert.deepEqual(addon.digest(1, data), createHash('sha1').update(data).digest());
      assert.deepEqual(addon.digest(256, data), createHash('sha256').update(data).digest());
      assert.equal(addon.murmur3(data), murmur3(data, 0, data.length) >>> 0);
    }),
    { numRuns: 500 },
  );
  // every padding case: the message's tail alone, with 0x80, with the length spilling into a second block
  for (let n = 0; n <= 200; n++) {
    const data = Buffer.alloc(n, n);
    assert.deepEqual(addon.digest(1, data), createHash('sha1').update(data).digest(), `sha1 of ${n} bytes`);
    assert.deepEqual(addon.digest(256, data), createHash('sha256').update(data).digest(), `sha256 of ${n} bytes`);
  }
  assert.throws(() => addon.digest(5 as 1, new Uint8Array(1)), RangeError);
});

type Outcome =
  | { ok: true; result: unknown }
  | { ok: false; error: { code: string; message: string; place: unknown }; entries: number; totals: StatusCounts };

interface RunOptions {
  banks?: readonly Bank[];
  replay?: ReplaySnapshot;
  maxLineBytes?: number;
}

/** The reference: readImaBatches → PcrReplay → Appraiser, as `hueguard ima appraise` does. */
async function reference(source: ChunkSource, appraiser: Appraiser, opts: RunOptions): Promise<Outcome> {
  const r = new PcrReplay(opts.replay, { banks: opts.banks });
  const counts: StatusCounts = { ok: 0, excluded: 0, unknown: 0, mismatch: 0, 'bad-signature': 0 };
  const failures: AppraisalFailure[] = [];
  let entries = 0;
  let templateHashMismatches = 0;
  try {
    for await (const batch of readImaBatches(source, { maxLineBytes: opts.maxLineBytes })) {
      for (const e of batch) if (!r.extend(e)) templateHashMismatches++;
      const v = appraiser.appraise(batch);
      for (const k of Object.keys(counts) as (keyof StatusCounts)[]) counts[k] += v.counts[k];
      failures.push(...v.failures);
      entries += batch.length;
    }
  } catch (e) {
    return failed(e, appraiser);
  }
  return { ok: true, result: { entries, replay: r.snapshot(), templateHashMismatches, ok: failures.length === 0, counts, failures } };
}

function failed(e: unknown, appraiser: Appraiser): Outcome {
  if (!isIntegrityError(e)) throw e;
  return { ok: false, error: { code: e.code, message: e.message, place: e.place }, entries: appraiser.entries, totals: appraiser.totals };
}

async function streamed(source: ChunkSource, appraiser: Appraiser, opts: RunOptions, sc: ImaScanner | null): Promise<Outcome & { scanned?: number }> {
  try {
    const { scanned, ...result } = await replayAndAppraiseStream(source, appraiser, { ...opts, scanner: sc });
    return { ok: true, result, scanned };
  } catch (e) {
    return failed(e, appraiser);
  }
}

function chunked(bytes: Buffer, sizes: number[]): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  for (let i = 0; at < bytes.length; i++) {
    const n = Math.max(1, sizes[i % sizes.length]);
    out.push(bytes.subarray(at, at + n));
    at += n;
  }
  return out;
}

/** The three paths on one list: reference, the stream driver without and with the scanner. Returns lines scanned. */
async function same(bytes: Buffer, policy: RuntimePolicy, sizes: number[], opts: RunOptions, what: string): Promise<number> {
  const want = await reference(chunked(bytes, sizes), new Appraiser(policy), opts);
  const js = await streamed(chunked(bytes, sizes), new Appraiser(policy), opts, null);
  delete (js as { scanned?: number }).scanned;
  assert.deepEqual(js, want, `${what}: the stream driver without a scanner`);
  let scanned = 0;
  for (const [how, sc] of [['hashing on a thread', scanner], ['hashing inline', inline]] as const) {
    const fast = await streamed(chunked(bytes, sizes), new Appraiser(policy), opts, sc);
    scanned = fast.scanned ?? 0;
    delete fast.scanned;
    assert.deepEqual(fast, want, `${what}: the native scanner, ${how}`);
  }
  return scanned;
}

function* files(dir: string): Generator<string> {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) yield* files(p);
    else yield p;
  }
}

/** A policy from the list's first half with one digest changed, or an empty one when it is no list. */
function policyFor(bytes: Buffer): RuntimePolicy {
  let entries;
  try {
    entries = parseImaLog(bytes);
  } catch {
    return emptyRuntimePolicy();
  }
  const p = policyFromLog(entries.slice(0, entries.length >> 1), { excludes: ['/var/log/', '/usr/lib/modules/'] });
  const some = [...p.digests.keys()].find((k) => k !== 'boot_aggregate');
  if (some !== undefined) p.digests.set(some, ['00'.repeat(32)]);
  return p;
}

test('every file of the shared IMA data: the same result or the same error, any chunking, any banks', { skip }, async () => {
  let scanned = 0;
  const keylimePolicy = readRuntimePolicy(readFileSync(join(DATA, 'keylime/runtime-policy.json'), 'utf8'));
  for (const file of files(DATA)) {
    const bytes = readFileSync(file);
    const rel = relative(DATA, file);
    for (const policy of [policyFor(bytes), keylimePolicy]) {
      for (const banks of [undefined, ['sha256'], ['sha1']] as (Bank[] | undefined)[]) {
        for (const sizes of [[bytes.length || 1], [4096], [1, 7, 300, 65536], [150]]) {
          scanned += await same(bytes, policy, sizes, { banks }, `${rel} banks=${banks} chunks=${sizes}`);
        }
      }
    }
  }
  assert.ok(scanned > 10_000, `the scanner took ${scanned} lines`);
});

test('fileChunks gives the file back in order, whatever the chunk size, and reads a list as any source does', async () => {
  const file = join(DATA, 'embrave/ascii_runtime_measurements');
  const bytes = readFileSync(file);
  for (const size of [1, 7, 4096, 1 << 20]) {
    const parts: Buffer[] = [];
    // the buffers are reused: copy each chunk before the next read lands in it
    for await (const c of fileChunks(file, size)) parts.push(Buffer.from(c));
    assert.deepEqual(Buffer.concat(parts), bytes, `chunks of ${size}`);
  }
  const policy = policyFor(bytes);
  const want = await reference([bytes], new Appraiser(policy), {});
  for (const sc of [null, scanner]) assert.deepEqual(await streamed(fileChunks(file, 999), new Appraiser(policy), {}, sc).then(({ scanned: _, ...o }) => o), want);
});

test('resuming from a snapshot mid-list gives the same state', { skip }, async () => {
  const bytes = readFileSync(join(DATA, 'embrave/ascii_runtime_measurements'));
  const policy = policyFor(bytes);
  const cut = bytes.indexOf(10, bytes.length >> 1) + 1;
  const a = new Appraiser(policy);
  const first = await replayAndAppraiseStream([bytes.subarray(0, cut)], a, { banks: ['sha256'], scanner });
  const second = await replayAndAppraiseStream([bytes.subarray(cut)], a, { banks: ['sha256'], scanner, replay: first.replay });
  const whole = await replayAndAppraiseStream([bytes], new Appraiser(policy), { banks: ['sha256'] });
  assert.deepEqual(second.replay, whole.replay);
  assert.equal(first.failures.length + second.failures.length, whole.failures.length);
  assert.deepEqual(a.totals, whole.counts);
  assert.ok(first.scanned > 0 && second.scanned > 0);
});

// ---- generated lists ------------------------------------------------------------------------------------------

const NAMES = ['boot_aggregate', '/usr/bin/bash', '/usr/lib/libc.so.6', '/tmp/x.sh', '/etc/ünïcode', '/opt/日本', '/var/log/a b'];

/** Template data of an ima-ng / ima-sig entry from raw fields (a name may be any bytes). */
function templateData(alg: string, digest: Buffer, name: Buffer, sig: Buffer | null): Buffer {
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n);
    return b;
  };
  const dng = Buffer.concat([Buffer.from(`${alg}:\0`, 'latin1'), digest]);
  const parts = [u32(dng.length), dng, u32(name.length + 1), name, Buffer.from([0])];
  if (sig !== null) parts.push(u32(sig.length), sig);
  return Buffer.concat(parts);
}

const lineArb: fc.Arbitrary<LineSpec> = fc.record({
  pcr: fc.oneof({ weight: 8, arbitrary: fc.constant('10') }, fc.constantFrom(' 9', '11', '010', '4294967295', '4294967296', 'x', '', '12345678901')),
  th: fc.oneof({ weight: 8, arbitrary: fc.constant('right') }, fc.constantFrom('wrong', 'zero', 'UPPER', 'bad', 'short')),
  template: fc.oneof({ weight: 6, arbitrary: fc.constant('ima-ng') }, fc.constantFrom('ima-sig', 'ima-sig', 'ima-buf', 'ima', 'ima-xx')),
  alg: fc.oneof({ weight: 6, arbitrary: fc.constant('sha256') }, fc.constantFrom('sha1', 'sha384', 'sha512', 'md5', 'SHA256', 'sm3', '')),
  digest: fc.oneof({ weight: 8, arbitrary: fc.constant('right') }, fc.constantFrom('short', 'long', 'bad', 'UPPER', 'zero', 'odd')),
  name: fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(...NAMES).map((n) => Buffer.from(n, 'utf8')) },
    fc.uint8Array({ minLength: 0, maxLength: 20 }).map((b) => Buffer.from(b.map((c) => (c === 10 ? 65 : c)))),
    fc.constant(Buffer.alloc(180, 0x61)),
  ),
  sig: fc.constantFrom('', ' ', ' 0302', ' 030', ' zz', ' 03 04'),
  end: fc.oneof({ weight: 10, arbitrary: fc.constant('\n') }, fc.constantFrom('\r\n', '\n\n', ' \n')),
  known: fc.constantFrom('listed', 'other', 'absent'),
  seed: fc.integer({ min: 0, max: 0xffff }),
});
interface LineSpec {
  pcr: string;
  th: string;
  template: string;
  alg: string;
  digest: string;
  name: Buffer;
  sig: string;
  end: string;
  known: string;
  seed: number;
}

const SIZE: Record<string, number> = { sha1: 20, sha256: 32, sha384: 48, sha512: 64, md5: 16, SHA256: 32, sm3: 32, '': 32 };

/** One generated line (bytes) and what the policy says of its name. */
function makeLine(l: LineSpec): { bytes: Buffer; name: string; digestHex: string; known: string } {
  const size = SIZE[l.alg];
  const digest = createHash('sha512').update(`${l.seed}`).digest().subarray(0, l.digest === 'short' ? size - 1 : l.digest === 'long' ? size + 1 : size);
  if (l.digest === 'zero') digest.fill(0);
  let dhex = digest.toString('hex');
  if (l.digest === 'UPPER') dhex = dhex.toUpperCase();
  if (l.digest === 'bad') dhex = `g${dhex.slice(1)}`;
  if (l.digest === 'odd') dhex = dhex.slice(1);
  const sigHex = l.template === 'ima-sig' || l.template === 'ima-buf' ? l.sig.trim() : '';
  const sigBytes = /^([0-9a-f]{2})*$/.test(sigHex) ? Buffer.from(sigHex, 'hex') : Buffer.alloc(0);
  const td = templateData(l.alg, digest, l.name, l.template === 'ima-ng' ? null : sigBytes);
  let th = createHash('sha1').update(td).digest('hex');
  if (l.th === 'wrong') th = createHash('sha1').update(`${l.seed}`).digest('hex');
  if (l.th === 'zero') th = '0'.repeat(40);
  if (l.th === 'UPPER') th = th.toUpperCase();
  if (l.th === 'bad') th = `${th.slice(0, 39)}q`;
  if (l.th === 'short') th = th.slice(0, 38);
  const dfield = l.template === 'ima' ? dhex : `${l.alg}:${dhex}`;
  const tail = l.template === 'ima-sig' || l.template === 'ima-buf' ? l.sig : '';
  const bytes = Buffer.concat([Buffer.from(`${l.pcr} ${th} ${l.template} ${dfield} `, 'latin1'), l.name, Buffer.from(tail + l.end, 'latin1')]);
  return { bytes, name: l.name.toString('utf8'), digestHex: digest.toString('hex'), known: l.known };
}

function generated(lines: LineSpec[]): { bytes: Buffer; policy: RuntimePolicy } {
  const policy = emptyRuntimePolicy();
  policy.excludes = ['/tmp/', '.*\\.so\\.6$'];
  const made = lines.map(makeLine);
  for (const m of made) {
    if (m.known === 'listed') policy.digests.set(m.name, [...(policy.digests.get(m.name) ?? []), m.digestHex]);
    else if (m.known === 'other' && !policy.digests.has(m.name)) policy.digests.set(m.name, ['ab'.repeat(32)]);
  }
  return { bytes: Buffer.concat(made.map((m) => m.bytes)), policy };
}

test('generated lists, good lines and bad: the same result or error as the JavaScript path', { skip }, async () => {
  let scanned = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.array(lineArb, { minLength: 1, maxLength: 40 }),
      fc.array(fc.integer({ min: 1, max: 400 }), { minLength: 1, maxLength: 6 }),
      fc.constantFrom<Bank[] | undefined>(undefined, ['sha256'], ['sha1']),
      fc.constantFrom(undefined, 160, 200, 260),
      async (lines, sizes, banks, maxLineBytes) => {
        const { bytes, policy } = generated(lines);
        scanned += await same(bytes, policy, sizes, { banks, maxLineBytes }, 'generated');
      },
    ),
    { numRuns: 400 },
  );
  assert.ok(scanned > 0, `the scanner took ${scanned} lines`);
});

test('mostly good generated lists, split anywhere: the same result', { skip }, async () => {
  let scanned = 0;
  const noSpace = (n: Buffer) => (n.length === 0 ? Buffer.from('/x') : Buffer.from(n.map((c) => (c === 0x20 || c === 0x0d ? 0x5f : c))));
  const good = lineArb.map((l): LineSpec => ({ ...l, name: noSpace(l.name), pcr: '10', th: 'right', digest: 'right', end: '\n', template: l.template === 'ima-sig' ? 'ima-sig' : 'ima-ng', alg: l.alg === 'md5' || l.alg === 'SHA256' || l.alg === 'sm3' || l.alg === '' ? 'sha256' : l.alg, sig: l.sig === ' ' ? ' ' : '' }));
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.oneof({ weight: 30, arbitrary: good }, lineArb), { minLength: 1, maxLength: 120 }),
      fc.array(fc.integer({ min: 1, max: 2000 }), { minLength: 1, maxLength: 4 }),
      fc.constantFrom<Bank[] | undefined>(undefined, ['sha256'], ['sha1']),
      async (lines, sizes, banks) => {
        const { bytes, policy } = generated(lines);
        scanned += await same(bytes, policy, sizes, { banks }, 'mostly good');
      },
    ),
    { numRuns: 150 },
  );
  assert.ok(scanned > 200, `the scanner took ${scanned} lines`);
});

test('a 10 MB line, a line at the limit, CRLF, blank lines: the same errors and numbering', { skip }, async () => {
  const good = readFileSync(join(DATA, 'keylime/ima-log-sha256'));
  const cases: [string, Buffer, RunOptions][] = [
    ['10 MB line', Buffer.concat([good, Buffer.alloc(10 << 20, 0x61), Buffer.from('\n'), good]), {}],
    ['no newline at the end', good.subarray(0, good.length - 1), {}],
    ['cut mid-line', good.subarray(0, good.length - 30), {}],
    ['CRLF', Buffer.from(good.toString('latin1').replaceAll('\n', '\r\n'), 'latin1'), {}],
    ['blank lines', Buffer.concat([good, Buffer.from('\n\n'), good]), {}],
  ];
  const longest = Math.max(...good.toString('latin1').split('\n').map((l) => l.length));
  for (const max of [longest - 1, longest, longest + 1]) cases.push([`limit ${max}`, good, { maxLineBytes: max }]);
  const policy = policyFor(good);
  for (const [what, bytes, opts] of cases) {
    for (const sizes of [[bytes.length], [64 * 1024], [100]]) await same(bytes, policy, sizes, opts, what);
  }
});
