/**
 * The two-thread replay + appraisal must give exactly what one thread gives: the same replay state, counts,
 * failures and errors, on real lists, chunked any way, resumed from a snapshot or not.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { Appraiser, type AppraisalFailure, type StatusCounts } from '../integrity/appraise.ts';
import { isIntegrityError } from '../integrity/errors.ts';
import type { Bank } from '../integrity/ima-entry.ts';
import { parseImaLog, readImaBatches, type ChunkSource } from '../integrity/ima-log.ts';
import { PcrReplay, type ReplaySnapshot } from '../integrity/ima-replay.ts';
import { policyFromLog, type RuntimePolicy } from '../integrity/runtime-policy.ts';
import { replayAndAppraise } from './ima-pipeline.ts';

const DATA = join(dirname(fileURLToPath(import.meta.url)), '../../../shared/data/ima');
const LISTS = [
  'hpe-keylime-perf-tests/ima_log.txt',
  'embrave/binary_runtime_measurements',
  'keylime/ima-log-sha1',
  'keylime/test_ima_verification_vectors.txt',
];

/** The one-thread answer: the same loop as `hueguard ima appraise`. */
async function oneThread(source: ChunkSource, appraiser: Appraiser, opts: { replay?: ReplaySnapshot; banks?: readonly Bank[] } = {}) {
  const r = new PcrReplay(opts.replay, { banks: opts.banks });
  const counts: StatusCounts = { ok: 0, excluded: 0, unknown: 0, mismatch: 0, 'bad-signature': 0 };
  const failures: AppraisalFailure[] = [];
  let entries = 0;
  let templateHashMismatches = 0;
  for await (const batch of readImaBatches(source)) {
    for (const e of batch) if (!r.extend(e)) templateHashMismatches++;
    const v = appraiser.appraise(batch);
    for (const k of Object.keys(counts) as (keyof StatusCounts)[]) counts[k] += v.counts[k];
    failures.push(...v.failures);
    entries += batch.length;
  }
  return { entries, replay: r.snapshot(), templateHashMismatches, ok: failures.length === 0, counts, failures };
}

/** A policy from the list's first half (the second half then has unknown paths), with one digest changed. */
function policyFor(bytes: Buffer): RuntimePolicy {
  const entries = parseImaLog(bytes);
  const p = policyFromLog(entries.slice(0, entries.length >> 1), { excludes: ['/var/log/'] });
  const some = [...p.digests.keys()].find((k) => k !== 'boot_aggregate');
  if (some !== undefined) p.digests.set(some, ['00'.repeat(32)]);
  return p;
}

function chunked(bytes: Buffer, sizes: number[]): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  for (let i = 0; at < bytes.length; i++) {
    const n = sizes[i % sizes.length];
    out.push(bytes.subarray(at, at + n));
    at += n;
  }
  return out;
}

test('on every real list, read from a file: the same result as one thread', async () => {
  for (const rel of LISTS) {
    const file = join(DATA, rel);
    const bytes = readFileSync(file);
    const policy = policyFor(bytes);
    const want = await oneThread(createReadStream(file), new Appraiser(policy));
    const got = await replayAndAppraise(createReadStream(file, { highWaterMark: 4096 }), new Appraiser(policy));
    assert.deepEqual(got, want, rel);
    assert.ok(got.entries > 0 && got.failures.length > 0, `${rel}: the policy finds something`);
  }
});

test('chunked any way (flow control with one chunk in flight), one bank or both: the same result', async () => {
  const bytes = readFileSync(join(DATA, 'hpe-keylime-perf-tests/ima_log.txt'));
  const policy = policyFor(bytes);
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.integer({ min: 1, max: 5000 }), { minLength: 1, maxLength: 8 }),
      fc.constantFrom<readonly Bank[] | undefined>(undefined, ['sha256'], ['sha1']),
      fc.integer({ min: 1, max: 4 }),
      async (sizes, banks, maxInFlight) => {
        const chunks = chunked(bytes, sizes);
        const want = await oneThread(chunks, new Appraiser(policy), { banks });
        const got = await replayAndAppraise(chunks, new Appraiser(policy), { banks, maxInFlight });
        assert.deepEqual(got, want);
      },
    ),
    { numRuns: 8 },
  );
});

test('goes on from a replay snapshot and an appraiser that saw the first part', async () => {
  const bytes = readFileSync(join(DATA, 'hpe-keylime-perf-tests/ima_log.txt'));
  const policy = policyFor(bytes);
  const cut = bytes.subarray(0, bytes.length >> 1).lastIndexOf(10) + 1;
  const a = new Appraiser(policy);
  const first = await replayAndAppraise([bytes.subarray(0, cut)], a, { banks: ['sha256'] });
  const second = await replayAndAppraise([bytes.subarray(cut)], a, { banks: ['sha256'], replay: first.replay });
  const whole = await oneThread([bytes], new Appraiser(policy), { banks: ['sha256'] });
  assert.equal(first.entries + second.entries, whole.entries);
  assert.deepEqual(second.replay, whole.replay);
  assert.deepEqual([...first.failures, ...second.failures], whole.failures, 'entries are numbered across the two calls');
});

test('a list that cannot be read fails with the IntegrityError one thread gives', async () => {
  const bytes = readFileSync(join(DATA, 'hpe-keylime-perf-tests/ima_log.txt'));
  const policy = policyFor(bytes);
  const lines = bytes.toString('latin1').split('\n');
  lines[400] = lines[400].replace(' ima-ng ', ' ima-xx ');
  const bad = Buffer.from(lines.join('\n'), 'latin1');
  let want: unknown;
  try {
    await oneThread([bad], new Appraiser(policy));
  } catch (e) {
    want = e;
  }
  assert.ok(isIntegrityError(want));
  await assert.rejects(replayAndAppraise(chunked(bad, [1000]), new Appraiser(policy)), (e) => {
    assert.ok(isIntegrityError(e));
    assert.equal(e.code, want.code);
    assert.deepEqual(e.place, want.place);
    assert.equal(e.message, want.message);
    return true;
  });
  // a bad snapshot is refused before any thread starts
  await assert.rejects(replayAndAppraise([bytes], new Appraiser(policy), { replay: { next: -1 } as unknown as ReplaySnapshot }), isIntegrityError);
});

test('an empty list: nothing appraised, the starting state back', async () => {
  const policy = policyFor(readFileSync(join(DATA, 'hpe-keylime-perf-tests/ima_log.txt')));
  const got = await replayAndAppraise([], new Appraiser(policy));
  assert.equal(got.entries, 0);
  assert.deepEqual(got.replay, new PcrReplay().snapshot());
  assert.equal(got.ok, true);
});
