/**
 * `hueguard ima appraise LOG --policy FILE [--json]`: appraise a measurement list against reference values (a
 * Keylime runtime policy or allowlist), streaming, and replay its PCR 10 on the way. Exit 0 when every entry is
 * ok or excluded, 1 when any fails; every failing entry is listed with its path, expected and found digests.
 */
import { Appraiser, type AppraisalFailure } from '../integrity/appraise.ts';
import { PcrReplay, IMA_PCR } from '../integrity/ima-replay.ts';
import { integrity, loadRuntimePolicy, logBatches } from './ima-files.ts';

export async function imaAppraise(file: string, opts: { policy: string; binary?: boolean; json?: boolean }): Promise<number> {
  const policy = loadRuntimePolicy(opts.policy);
  const result = await integrity(file, async () => {
    const appraiser = new Appraiser(policy);
    const replay = new PcrReplay(undefined, { pcr: IMA_PCR });
    const failures: AppraisalFailure[] = [];
    for await (const batch of logBatches(file, opts.binary)) {
      for (const e of batch) replay.extend(e);
      failures.push(...appraiser.appraise(batch).failures);
    }
    return { ok: failures.length === 0, entries: appraiser.entries, counts: appraiser.totals, failures, pcr10: replay.snapshot().pcr };
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
