/**
 * The trust state machine of one VM (DESIGN.md §1 "trust state", §2 "Trust").
 *
 *   unverified ──good verdict──▶ trusted ◀──good verdict── unreachable
 *        │                          │                          ▲
 *        └──────── deadline ────────┴──────── deadline ────────┘
 *   any ──failed verdict──▶ untrusted ──operator re-admits (actor, reason)──▶ unverified
 *
 * - `unverified`: no appraised evidence yet (a new VM, or one just re-admitted).
 * - A failed verdict (a failed quote — bad signature, wrong nonce, PCR 10 matching no prefix of the list, clock
 *   going back — or failing entries) makes any state `untrusted`.
 * - `untrusted` is sticky: no evidence, however good, and no deadline changes it. Only an operator re-admits the
 *   VM, with a reason (it goes to the audit log), and re-admission leads to `unverified`, not `trusted`: the VM
 *   gets its colors back at the next good verdict, as Keylime re-attests a re-added agent before trusting it.
 *   What re-admission does to the verifier's state (the bad entry stays in the list until reboot) is evidence.ts's.
 * - "Good" means fresh: evidence that passed appraisal and, for a VM with a vTPM, was covered by a valid quote.
 *   Entries still waiting for a quote are not fresh evidence and change nothing.
 * - `trusted` or `unverified` with no fresh evidence for more than `deadlineMs` (counted from the last fresh
 *   evidence, or from entering the state if later — a re-admitted or new VM gets a full deadline) becomes
 *   `unreachable` at the next tick; fresh good evidence makes it `trusted` again. An `untrusted` VM never becomes
 *   `unreachable`: that would hide why it was cut off.
 *
 * Transitions from evidence and deadlines are made by the actor `verifier`; a re-admission by the operator.
 * Times come in as epoch milliseconds and are written as ISO strings.
 */
import { TrustError, TrustErrorCode } from './errors.ts';
import type { TrustRecord, TrustState, TrustTransition } from './model.ts';

/** The actor of every transition the engine makes by itself. */
export const VERIFIER = 'verifier';

/** What may change a VM's trust. */
export type TrustEvent =
  /** a verdict on evidence: `fresh` when it was appraised (and quoted, for a vTPM) — see evidence.ts */
  | { kind: 'verdict'; ok: boolean; fresh: boolean; reason: string }
  /** an operator re-admits an untrusted VM */
  | { kind: 'readmit'; actor: string; reason: string }
  /** a tick: has the VM been without fresh evidence for longer than `deadlineMs`? */
  | { kind: 'deadline'; deadlineMs: number };

export interface TrustStep {
  /** the VM's record after the event: the same object when nothing changed */
  record: TrustRecord;
  transition: TrustTransition | null;
}

/** The last time written (a group of verdicts shares one `now`). */
let lastMs = NaN;
let lastIso = '';

export function isoTime(ms: number): string {
  if (ms === lastMs) return lastIso;
  if (!Number.isFinite(ms)) throw new TrustError(TrustErrorCode.badArgument, `not a time: ${ms}`);
  lastIso = new Date(ms).toISOString();
  lastMs = ms;
  return lastIso;
}

/** The record of a VM the controller has just learnt of. */
export function initialTrust(vm: string, now: number, reason = 'new VM: no evidence yet'): TrustRecord {
  return { vm, state: 'unverified', since: isoTime(now), reason, lastEvidence: null };
}

function move(r: TrustRecord, to: TrustState, at: string, reason: string, actor: string, lastEvidence = r.lastEvidence): TrustStep {
  return {
    record: { vm: r.vm, state: to, since: at, reason, lastEvidence },
    transition: { vm: r.vm, from: r.state, to, at, reason, actor },
  };
}

/** Whether an ISO time is before `cutoff` (ms); `toISOString`'s form compares as text, without parsing. */
function before(iso: string, cutoff: number, cutoffIso: string): boolean {
  if (iso.length === 24 && iso.charCodeAt(10) === 0x54 /* T */ && iso.charCodeAt(23) === 0x5a /* Z */ && cutoffIso.length === 24) return iso < cutoffIso;
  return Date.parse(iso) < cutoff;
}

/**
 * Whether a record has had no fresh evidence since `cutoff` (ms): neither its last fresh evidence nor its entry
 * into its state is at or after it.
 */
export function pastDeadline(r: TrustRecord, cutoff: number, cutoffIso?: string): boolean {
  if (!(Math.abs(cutoff) <= 8.64e15)) return cutoff > 0; // beyond the dates there are: all times are before, or none
  cutoffIso ??= new Date(cutoff).toISOString();
  return before(r.since, cutoff, cutoffIso) && (r.lastEvidence === null || before(r.lastEvidence, cutoff, cutoffIso));
}

/**
 * The VM's record after one event, and the transition it makes, if any. A VM without a record is `unverified`
 * since `now`. Throws not_untrusted for a re-admission of a VM that is not untrusted, reason_required for one
 * without an actor or a reason.
 */
export function stepTrust(vm: string, current: TrustRecord | undefined, event: TrustEvent, now: number): TrustStep {
  const at = isoTime(now);
  const r = current ?? initialTrust(vm, now);
  const same: TrustStep = { record: r, transition: null };
  switch (event.kind) {
    case 'verdict': {
      if (!event.ok) {
        if (r.state === 'untrusted') return same; // the first failure stays the reason; the evidence log has the rest
        return move(r, 'untrusted', at, event.reason, VERIFIER);
      }
      if (!event.fresh || r.state === 'untrusted') return same;
      if (r.state === 'trusted') return { record: { ...r, lastEvidence: at }, transition: null };
      return move(r, 'trusted', at, event.reason, VERIFIER, at);
    }
    case 'readmit': {
      if (event.actor.trim() === '' || event.reason.trim() === '') {
        throw new TrustError(TrustErrorCode.reasonRequired, 're-admitting a VM needs an actor and a reason', { vm });
      }
      if (r.state !== 'untrusted') {
        throw new TrustError(TrustErrorCode.notUntrusted, `VM "${vm}" is ${r.state}, not untrusted: only an untrusted VM is re-admitted`, { vm, state: r.state });
      }
      return move(r, 'unverified', at, `re-admitted: ${event.reason}`, event.actor);
    }
    case 'deadline': {
      if (!Number.isFinite(event.deadlineMs) || event.deadlineMs < 0) {
        throw new TrustError(TrustErrorCode.badArgument, `a deadline must be a non-negative number of milliseconds, not ${event.deadlineMs}`);
      }
      if (r.state !== 'trusted' && r.state !== 'unverified') return same;
      if (!pastDeadline(r, now - event.deadlineMs)) return same;
      const what = r.lastEvidence === null ? 'no fresh evidence yet' : `no fresh evidence since ${r.lastEvidence}`;
      return move(r, 'unreachable', at, `${what} (deadline ${event.deadlineMs} ms)`, VERIFIER);
    }
  }
}
