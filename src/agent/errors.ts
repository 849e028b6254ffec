/**
 * Agent errors, with stable codes. An error from an enforcer means the data plane is as it was before the call.
 */

export const AgentErrorCode = {
  /** a plan that names a port or color the data plane cannot hold (nothing was applied) */
  badPlan: 'bad_plan',
  /** the data plane refused a transaction (nothing was applied: `nft -f` is atomic) */
  enforceFailed: 'enforce_failed',
  /** a tool the agent needs is missing or not permitted (nft, ip, virsh, root) */
  notAvailable: 'not_available',
  /** a driver could not list or follow its VMs */
  driverFailed: 'driver_failed',
  /** the controller answered with an error or could not be reached */
  controllerFailed: 'controller_failed',
  /** bad input on the command line or in the lab's request */
  badArgument: 'bad_argument',
} as const;
export type AgentErrorCode = (typeof AgentErrorCode)[keyof typeof AgentErrorCode];

export class AgentError extends Error {
  readonly code: AgentErrorCode;
  readonly details?: unknown;
  constructor(code: AgentErrorCode, message: string, details?: unknown) {
    super(message);
    this.name = 'AgentError';
    this.code = code;
    this.details = details;
  }
}
