/**
 * `hueguard ima appraise LOG --policy FILE [--json]`: appraise a measurement list against reference values (a
 * Keylime runtime policy or allowlist), streaming, and replay its PCR 10 on the way. Exit 0 when every entry is
 * ok or excluded, 1 when any fails; every failing entry is listed with its path, expected and found digests.
 * The ordinary lines of an ascii list go through the native scanner where it is built (native/): the same answers,
 * about ten times faster (README, bench:integrity).
 */
import { fileChunks, nativeImaScanner } from '../agent/ima-native.ts';
import { Appraiser } from '../integrity/appraise.ts';
import { replayAndAppraiseStream } from '../integrity/ima-scan.ts';
import { assertReadable, integrity, loadRuntimePolicy } from './ima-files.ts';

export async function imaAppraise(file: string, opts: { policy: string; binary?: boolean; json?: boolean }): Promise<number> {
  const policy = loadRuntimePolicy(opts.policy);
  assertReadable(file);
  const result = await integrity(file, async () => {
    const appraiser = new Appraiser(policy);
    const scanner = opts.binary ? null : nativeImaScanner();
    if (scanner !== null) appraiser.digestTable();
    const r = await replayAndAppraiseStream(fileChunks(file, 1 << 20), appraiser, { scanner, ...(opts.binary ? { format: 'binary' as const } : {}) });
    return { ok: r.ok, entries: r.entries, counts: r.counts, failures: r.failures, pcr10: r.replay.pcr };
  });
  if (opts.json) process.stdout.write(JSON.stringify(result) + '\n');
  else {
    const c = result.counts;
    const lines = [
      `${result.ok ? 'OK' : 'FAILED'}: ${result.entries} entries: ${c.ok} ok, ${c.excluded} excluded, ${c.unknown} unknown, ${c.mismatch} mismatch, ${c['bad-signature']} bad signature`,
    ];
    for (const f of result.failures) {
      const expected = f.expected.length ? f.expected.map((d) => `${f.alg}:${d}`).join(' or ') : '(no reference)';
      lines.push(`  entry ${f.entry} ${f.path}: ${f.status}: expected ${expected}, found ${f.alg}:${f.found}`);
    }
    process.stdout.write(lines.join('\n') + '\n');
  }
  return result.ok ? 0 : 1;
}
