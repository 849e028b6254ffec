/** Reference-monitor errors, with stable codes (the API and `decide` answer them as `{code, message}`). */

export const MonitorErrorCode = {
  unknownLabel: 'unknown_label',
  unknownResource: 'unknown_resource',
  unknownOp: 'unknown_op',
  badQuery: 'bad_query',
  notRunning: 'not_running',
  badState: 'bad_running_state',
} as const;
export type MonitorErrorCode = (typeof MonitorErrorCode)[keyof typeof MonitorErrorCode];

export class MonitorError extends Error {
  readonly code: MonitorErrorCode;
  readonly details?: unknown;
  constructor(code: MonitorErrorCode, message: string, details?: unknown) {
    super(message);
    this.name = 'MonitorError';
    this.code = code;
    this.details = details;
  }
}

export function isMonitorError(e: unknown): e is MonitorError {
  return e instanceof MonitorError;
}
