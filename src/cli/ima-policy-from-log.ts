/**
 * `hueguard ima policy-from-log LOG [--exclude FILE] [--keyrings] [--ima-buf]`: a Keylime runtime policy from a
 * known-good measurement list, as Keylime's policy generator makes it, on stdout.
 */
import { policyFromLog, writeRuntimePolicy } from '../integrity/runtime-policy.ts';
import type { ImaEntry } from '../integrity/ima-entry.ts';
import { integrity, loadExcludeList, logBatches } from './ima-files.ts';
import { emit } from './output.ts';

/** Keylime's timestamp: Python's str(datetime.now()), e.g. "2024-10-09 18:47:35.306609". */
function keylimeTimestamp(d: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds() * 1000, 6)}`;
}

export async function imaPolicyFromLog(
  file: string,
  opts: { exclude?: string; keyrings?: boolean; imaBuf?: boolean; binary?: boolean; output?: string },
): Promise<number> {
  const excludes = opts.exclude === undefined ? undefined : loadExcludeList(opts.exclude);
  const entries: ImaEntry[] = [];
  await integrity(file, async () => {
    for await (const batch of logBatches(file, opts.binary)) entries.push(...batch);
  });
  const policy = await integrity(file, () =>
    policyFromLog(entries, { excludes, keyrings: opts.keyrings, imaBuf: opts.imaBuf, timestamp: keylimeTimestamp(new Date()) }),
  );
  emit(writeRuntimePolicy(policy), opts.output);
  return 0;
}
