/**
 * Trust-engine errors, with stable codes (the API answers them as `{ code, message, details }`).
 *
 * An error means "nothing was decided": the VM's trust state, integrity state and plans are as they were. Evidence
 * that fails appraisal is not an error — it is a failing verdict, and it makes the VM untrusted.
 */

export const TrustErrorCode = {
  /** the VM is not in the fleet */
  unknownVm: 'unknown_vm',
  /** re-admission asked for a VM that is not untrusted (an unreachable VM recovers by itself on good evidence) */
  notUntrusted: 'not_untrusted',
  /** re-admission needs an actor and a reason for the audit log */
  reasonRequired: 'reason_required',
  /** a saved integrity state that cannot be read back */
  badIntegrityState: 'bad_integrity_state',
  /** evidence that cannot be read: a measurement line, a base64 field, a PCR map (nothing was appraised) */
  badEvidence: 'bad_evidence',
  /** an increment that does not start where the verifier stands (`details.expected` says where to resend from) */
  evidenceOutOfOrder: 'evidence_out_of_order',
  /** too many entries waiting for a quote: the agent sends entries of a vTPM VM without quoting them */
  evidenceBacklog: 'evidence_backlog',
  /** a quote for a VM whose attestation key the controller does not know */
  noAttestationKey: 'no_attestation_key',
  /** an argument out of range (a deadline, a time) */
  badArgument: 'bad_argument',
} as const;
export type TrustErrorCode = (typeof TrustErrorCode)[keyof typeof TrustErrorCode];

export class TrustError extends Error {
  readonly code: TrustErrorCode;
  readonly details?: unknown;
  constructor(code: TrustErrorCode, message: string, details?: unknown) {
    super(message);
    this.name = 'TrustError';
    this.code = code;
    this.details = details;
  }
}

export function isTrustError(e: unknown): e is TrustError {
  return e instanceof TrustError;
}
