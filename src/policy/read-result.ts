/** What a policy reader returns: the policy if it loaded, and every diagnostic either way. */
import type { Diagnostic } from './errors.ts';
import type { Policy } from './model.ts';

export interface ReadResult {
  /** null when any error-severity diagnostic was found: nothing is loaded */
  policy: Policy | null;
  diagnostics: Diagnostic[];
}
