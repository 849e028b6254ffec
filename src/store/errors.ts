/**
 * Store errors, with stable codes (the API answers them as `{code, message, details}`). Both backends throw the same
 * codes for the same fault, so the server maps them to HTTP answers in one place whichever database it runs on.
 */

export const StoreErrorCode = {
  /** the database was written by a newer hueguard: its schema has migrations this one does not know */
  schemaTooNew: 'store_schema_too_new',
  /** `putPlans` with a version that is not the host's current one plus one */
  planVersionConflict: 'plan_version_conflict',
  /** a record whose key (or other unique field, such as a token's hash) is already taken */
  conflict: 'store_conflict',
  /** a record the schema refuses: a missing field, an unknown state or role, a reference to nothing */
  invalidRecord: 'store_invalid_record',
  /** a call on a store that was closed */
  closed: 'store_closed',
} as const;
export type StoreErrorCode = (typeof StoreErrorCode)[keyof typeof StoreErrorCode];

export class StoreError extends Error {
  readonly code: StoreErrorCode;
  readonly details?: unknown;
  constructor(code: StoreErrorCode, message: string, details?: unknown, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreError';
    this.code = code;
    this.details = details;
  }
}

export function isStoreError(e: unknown, code?: StoreErrorCode): e is StoreError {
  return e instanceof StoreError && (code === undefined || e.code === code);
}
