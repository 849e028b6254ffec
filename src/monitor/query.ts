/**
 * Decision queries as data: the one shape that `hueguard decide` (JSON lines) and the controller's
 * `POST /api/v1/decide` both answer.
 *
 *   {"op":"share","a":L,"b":L}  {"op":"use","vm":L,"resource":R}  {"op":"authorized","host":L,"vm":L}
 *   {"op":"start","vm":L,"running":[L,…]}
 *
 * A query that cannot be answered gets `{"error":{"code","message"}}` instead of an answer; it never throws.
 */
import type { CompiledPolicy } from './compile.ts';
import type { StartAnswer } from './chinese-wall.ts';
import { explainAuthorized, explainShare, explainStart, explainUse, type AuthorizedAnswer, type ShareAnswer, type UseAnswer } from './decisions.ts';
import { isMonitorError, MonitorErrorCode } from './errors.ts';

export type DecisionOp = 'share' | 'use' | 'authorized' | 'start';
export const DECISION_OPS: readonly DecisionOp[] = ['share', 'use', 'authorized', 'start'];

export interface QueryError {
  error: { code: string; message: string };
}

export type DecisionAnswer = ShareAnswer | UseAnswer | AuthorizedAnswer | StartAnswer;
export type QueryAnswer = DecisionAnswer | QueryError;

export function isQueryError(a: QueryAnswer): a is QueryError {
  return (a as QueryError).error !== undefined;
}

class BadQuery {
  constructor(readonly message: string) {}
}

function str(q: Record<string, unknown>, field: string): string {
  const v = q[field];
  if (typeof v !== 'string') throw new BadQuery(`field "${field}" must be a string`);
  return v;
}

const fail = (code: string, message: string): QueryError => ({ error: { code, message } });

/** Answer one query (a parsed JSON value). Never throws for a bad query or an unknown name. */
export function answerQuery(p: CompiledPolicy, q: unknown): QueryAnswer {
  if (typeof q !== 'object' || q === null || Array.isArray(q)) return fail(MonitorErrorCode.badQuery, 'a query is a JSON object');
  const o = q as Record<string, unknown>;
  try {
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
          return fail(MonitorErrorCode.badQuery, 'field "running" must be a list of labels');
        }
        return explainStart(p, str(o, 'vm'), running as string[]);
      }
      default:
        return fail(MonitorErrorCode.unknownOp, `unknown op ${JSON.stringify(o.op)}: use share, use, authorized or start`);
    }
  } catch (e) {
    if (e instanceof BadQuery) return fail(MonitorErrorCode.badQuery, e.message);
    if (isMonitorError(e)) return fail(e.code, e.message);
    throw e;
  }
}

/** The query's op, when it is one of the four (for counting answers by op). */
export function queryOp(q: unknown): DecisionOp | null {
  const op = typeof q === 'object' && q !== null ? (q as { op?: unknown }).op : undefined;
  return DECISION_OPS.includes(op as DecisionOp) ? (op as DecisionOp) : null;
}
