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
import { explainAuthorized, explainShare, explainStart, explainUse } from '../monitor/decisions.ts';
import { isMonitorError, MonitorErrorCode } from '../monitor/errors.ts';
import { loadPolicyFile } from './policy-files.ts';

type Query = Record<string, unknown>;

function str(q: Query, field: string): string {
  const v = q[field];
  if (typeof v !== 'string') throw { code: MonitorErrorCode.badQuery, message: `field "${field}" must be a string` };
  return v;
}

/** Answer one query line (already trimmed, non-empty). Never throws. */
export function answerLine(p: CompiledPolicy, line: string, lineNo: number): unknown {
  try {
    let q: unknown;
    try {
      q = JSON.parse(line);
    } catch (e) {
      return { error: { code: MonitorErrorCode.badQuery, message: `line ${lineNo}: not JSON: ${(e as Error).message}` } };
    }
    if (typeof q !== 'object' || q === null || Array.isArray(q)) {
      return { error: { code: MonitorErrorCode.badQuery, message: `line ${lineNo}: a query is a JSON object` } };
    }
    const o = q as Query;
    switch (o.op) {
      case 'share':
        return explainShare(p, str(o, 'a'), str(o, 'b'));
      case 'use':
        return explainUse(p, str(o, 'vm'), str(o, 'resource'));
      case 'authorized':
        return explainAuthorized(p, str(o, 'host'), str(o, 'vm'));
      case 'start': {
        const running = o.running ?? [];
        if (!Array.isArray(running) || running.some((r) => typeof r !== 'string')) {
          return { error: { code: MonitorErrorCode.badQuery, message: `line ${lineNo}: field "running" must be a list of labels` } };
        }
        return explainStart(p, str(o, 'vm'), running as string[]);
      }
      default:
        return { error: { code: MonitorErrorCode.unknownOp, message: `line ${lineNo}: unknown op ${JSON.stringify(o.op)}: use share, use, authorized or start` } };
    }
  } catch (e) {
    if (isMonitorError(e)) return { error: { code: e.code, message: `line ${lineNo}: ${e.message}` } };
    const c = e as { code?: string; message?: string };
    if (c && typeof c.code === 'string') return { error: { code: c.code, message: `line ${lineNo}: ${c.message}` } };
    throw e;
  }
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
