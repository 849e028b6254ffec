/** Reading a running state (the input of a policy update) from JSON text, with errors that name the field. */
import { Ajv } from 'ajv';
import schema from './running-state.schema.json' with { type: 'json' };
import { MonitorError, MonitorErrorCode } from './errors.ts';
import type { RunningState } from './update.ts';

const validate = new Ajv({ allErrors: true }).compile<RunningState>(schema);

/** 1-based line and column of a character offset. */
function lineColumn(text: string, offset: number): string {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  const column = offset - before.lastIndexOf('\n');
  return `${line}:${column}`;
}

/** Parse and check a running state; throws `bad_running_state` naming `FILE:LINE:COLUMN` or the field path. */
export function parseRunningState(text: string, file = '<running state>'): RunningState {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    const msg = (e as Error).message;
    const m = /position (\d+)/.exec(msg);
    const where = m ? lineColumn(text, Number(m[1])) : '1:1';
    throw new MonitorError(MonitorErrorCode.badState, `${file}:${where}: not valid JSON: ${msg}`);
  }
  if (!validate(value)) {
    const problems = (validate.errors ?? []).map((e) => {
      const path = e.instancePath === '' ? '(top level)' : e.instancePath.slice(1).replace(/\/(\d+)/g, '[$1]').replace(/\//g, '.');
      const extra = e.keyword === 'additionalProperties' ? ` "${(e.params as { additionalProperty: string }).additionalProperty}"` : '';
      return `${file}: ${path}: ${e.message}${extra}`;
    });
    throw new MonitorError(MonitorErrorCode.badState, problems.join('\n'), { problems });
  }
  return value;
}
