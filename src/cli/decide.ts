/**
 * `hueguard decide --policy FILE`: JSON lines in, one JSON line out per query, in order.
 *
 *   {"op":"share","a":L,"b":L}  {"op":"use","vm":L,"resource":R}  {"op":"authorized","host":L,"vm":L}
 *   {"op":"start","vm":L,"running":[L,…]}
 *
 * A bad line answers `{"error":{"code","message"}}` and the stream goes on. Answers are written once per chunk
 * of input (so a pipe of a million queries is not a million writes) and before the next chunk is read (so an
 * interactive caller gets each answer as soon as its line is complete).
 */
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { CompiledPolicy } from '../monitor/compile.ts';
import { MonitorErrorCode } from '../monitor/errors.ts';
import { answerQuery, isQueryError } from '../monitor/query.ts';
import { loadPolicyFile } from './policy-files.ts';

/** Answer one query line (already trimmed, non-empty). Never throws. The logic is `monitor/query.ts`'s. */
export function answerLine(p: CompiledPolicy, line: string, lineNo: number): unknown {
  let q: unknown;
  try {
    q = JSON.parse(line);
  } catch (e) {
    return { error: { code: MonitorErrorCode.badQuery, message: `line ${lineNo}: not JSON: ${(e as Error).message}` } };
  }
  const a = answerQuery(p, q);
  return isQueryError(a) ? { error: { code: a.error.code, message: `line ${lineNo}: ${a.error.message}` } } : a;
}

/** Run the decide loop over streams; resolves when the input ends. */
export function decideStream(p: CompiledPolicy, input: Readable, output: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input, crlfDelay: Infinity });
    let pending: string[] = [];
    let scheduled = false;
    let lineNo = 0;
    const flush = () => {
      scheduled = false;
      if (pending.length === 0) return;
      const text = pending.join('');
      pending = [];
      output.write(text);
    };
    rl.on('line', (raw) => {
      lineNo++;
      const line = raw.trim();
      if (line === '') return;
      pending.push(JSON.stringify(answerLine(p, line, lineNo)) + '\n');
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    });
    rl.on('close', () => {
      flush();
      resolve();
    });
    input.on('error', reject);
  });
}

export async function decide(opts: { policy: string }): Promise<number> {
  const p = new CompiledPolicy(loadPolicyFile(opts.policy).policy);
  await decideStream(p, process.stdin, process.stdout);
  return 0;
}
