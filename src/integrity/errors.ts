/**
 * Integrity errors: every failure to read or check a measurement list, a TPM structure, a reference-value
 * policy or a file being measured, with a stable code and the place (entry number, byte offset, line, field).
 */

export const IntegrityErrorCode = {
  // IMA measurement lists
  /** a line of an ascii list that cannot be read (bad field count, bad hex, unknown hash algorithm, …) */
  imaBadLine: 'ima_bad_line',
  /** a binary list cut short, or a length field larger than what is left */
  imaTruncated: 'ima_truncated',
  /** a record whose fields do not parse as its template says */
  imaBadRecord: 'ima_bad_record',
  /** a template this reader does not know */
  imaUnknownTemplate: 'ima_unknown_template',
  /** a line or record beyond the size any real entry has */
  imaTooLarge: 'ima_entry_too_large',
  /** neither an ascii nor a binary measurement list */
  imaUnknownFormat: 'ima_unknown_format',
  /** a saved replay state (next entry, running PCR values) that cannot be read back */ imaBadReplayState: 'ima_bad_replay_state',
  // TPM 2.0 structures and quotes
  /** a TPM structure cut short or with a size field beyond its end */
  tpmTruncated: 'tpm_truncated',
  /** a TPM structure with a value it may not hold (magic, type, algorithm, selection size, …) */
  tpmBadStructure: 'tpm_bad_structure',
  /** a key or signature type, curve or hash this verifier does not support */
  tpmUnsupported: 'tpm_unsupported',
  // reference values (Keylime runtime policies)
  /** a runtime policy that is not JSON or not of the expected shape */
  policyBadFormat: 'runtime_policy_bad_format',
  /** an exclude that is not a valid regular expression */
  policyBadExclude: 'runtime_policy_bad_exclude',
  /** a digest that is not hex of a known length */
  policyBadDigest: 'runtime_policy_bad_digest',
  /** a verification key that cannot be read */
  policyBadKey: 'runtime_policy_bad_key',
  /** a saved appraiser state (entry counter, totals, learnt keys) that cannot be read back */ appraiseBadState: 'appraise_bad_state',
  // measuring
  /** a file or tree that cannot be read while measuring */
  measureUnreadable: 'measure_unreadable',
  /** a libvirt domain definition that is not well-formed XML */
  measureBadDomain: 'measure_bad_domain',
  /** a measurer state file that cannot be read back */
  measureBadState: 'measure_bad_state',
} as const;
export type IntegrityErrorCode = (typeof IntegrityErrorCode)[keyof typeof IntegrityErrorCode];

/** Where a problem is: entry number (1-based), byte offset, line (1-based), file, field. */
export interface IntegrityPlace {
  file?: string;
  entry?: number;
  offset?: number;
  line?: number;
  field?: string;
}

export class IntegrityError extends Error {
  readonly code: IntegrityErrorCode;
  readonly place: IntegrityPlace;
  constructor(code: IntegrityErrorCode, message: string, place: IntegrityPlace = {}) {
    super(`${describePlace(place)}${message}`);
    this.name = 'IntegrityError';
    this.code = code;
    this.place = place;
  }
}

/** `FILE:LINE: ` or `FILE: entry N (byte O): ` — the prefix of an error message. */
export function describePlace(p: IntegrityPlace): string {
  const parts: string[] = [];
  if (p.entry !== undefined) parts.push(`entry ${p.entry}`);
  if (p.offset !== undefined) parts.push(`byte ${p.offset}`);
  if (p.field !== undefined) parts.push(`field ${p.field}`);
  const head = p.file !== undefined ? (p.line !== undefined ? `${p.file}:${p.line}` : p.file) : p.line !== undefined ? `line ${p.line}` : '';
  const tail = parts.join(', ');
  if (head && tail) return `${head}: ${tail}: `;
  if (head || tail) return `${head || tail}: `;
  return '';
}

export function isIntegrityError(e: unknown): e is IntegrityError {
  return e instanceof IntegrityError;
}
