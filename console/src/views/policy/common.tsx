/**
 * What the policy view's pages share: the controller's answers as the console reads them, a VM link out of the
 * nested `/policy` routes, times, and a list of diagnostics. Every name from the fleet or a policy is React text.
 */
import { useEffect, useSyncExternalStore } from 'react';
import { Link } from 'wouter';
import { ApiError } from '../../api.ts';
import { FieldError, vmHref } from '../../ui.tsx';
import type { DiagnosticV1 } from './model.ts';

export interface VersionSummary {
  version: number;
  name: string;
  policyVersion: string;
  note: string;
  actor: string;
  at: string;
}
export interface VersionText extends VersionSummary { yaml: string }

export interface DraftSummary { id: string; base: number | null; actor: string; updatedAt: string }
export interface Draft extends DraftSummary {
  yaml: string;
  name: string;
  policyVersion: string;
  format?: 'yaml' | 'xen-acm';
  warnings?: DiagnosticV1[];
}

export interface ListChange { added: string[]; removed: string[] }
export interface StructuralDiff {
  name?: { from: string; to: string };
  version?: { from: string; to: string };
  host?: { from: string | null; to: string | null };
  colors: ListChange;
  walls: ListChange;
  conflicts: ListChange & { changed: { name: string; walls: ListChange }[] };
  labels: ListChange & {
    changed: { name: string; from?: string; colors: ListChange; walls: ListChange; onUntrusted?: { from: string; to: string } }[];
    renamed: { from: string; to: string }[];
  };
  resources: ListChange & { changed: { name: string; from?: string; color?: { from: string; to: string } }[]; renamed: { from: string; to: string }[] };
}
export interface SharingDiff { gained: [string, string][]; lost: [string, string][] }

export type ViolationCode = 'label_removed' | 'host_label_removed' | 'not_authorized' | 'resource_label_removed' | 'resource_forbidden' | 'wall_conflict' | 'flow_forbidden';
export interface Violation { code: ViolationCode | string; message: string; host: string; vm: string; peer?: string; resource?: string }
export interface Refusal { code: string; message: string }
export interface Isolation { vm: string; host: string; reasons: string[] }

/** An update's answer (publish, revert: the 409 refusal's details are this too). */
export interface UpdateResult {
  mode: 'reject' | 'revoke';
  accepted: boolean;
  refusals: Refusal[];
  violations: Violation[];
  isolate: Isolation[];
  relabeled: { vm: string; from: string; to: string }[];
}

export interface Preview {
  draft: string;
  current: number | null;
  kind: 'publish' | 'first' | 'revert';
  diff: StructuralDiff;
  sharing: SharingDiff;
  colors: { vm: string; host: string; label: string; to: string | null; gained: string[]; lost: string[] }[];
  relabeled: { vm: string; from: string; to: string }[];
  refusals: Refusal[];
  violations: Violation[];
  unmanaged: { vm: string; host: string; reason?: string; label?: string | null }[];
  reject: { accepted: boolean };
  revoke: { accepted: boolean; isolate: Isolation[]; closedFlows: { a: string; b: string }[] };
}

/** Why a VM fails a policy, in words. */
export const REASON: Record<string, string> = {
  label_removed: 'its label is gone',
  host_label_removed: 'its host’s label is gone',
  not_authorized: 'not authorized on its host (its colors are not all the host label’s)',
  resource_label_removed: 'a resource label it uses is gone',
  resource_forbidden: 'it may no longer use one of its resources',
  wall_conflict: 'a conflict set: a rival runs on its host',
  flow_forbidden: 'an open flow loses its common color',
};

/** A VM's page, from inside the nested /policy routes. */
export function VmLink({ name }: { name: string }) {
  return <Link href={`~${vmHref(name)}`}>{name}</Link>;
}

export function Time({ at }: { at: string }) {
  const d = new Date(at);
  return <time dateTime={at} title={at}>{Number.isNaN(d.getTime()) ? at : d.toLocaleString()}</time>;
}

/** The controller's words for a failed call (a 401 shows sign-in over the page: the work stays). */
export function errorText(e: unknown): string {
  if (e instanceof ApiError) {
    if (e.status === 401) return 'Your session has ended. Sign in again (above): nothing here is lost; then try again.';
    if (e.status === 403) return `Not allowed for your role: ${e.message}`;
    return e.message;
  }
  return 'The controller cannot be reached.';
}

/** The 422 diagnostics of an answer, if any. */
export function diagnosticsOf(e: unknown): DiagnosticV1[] | null {
  if (!(e instanceof ApiError) || e.code !== 'policy_invalid') return null;
  const d = e.details as { diagnostics?: DiagnosticV1[] } | null;
  return Array.isArray(d?.diagnostics) ? d.diagnostics : null;
}

/** The update result a 409 refusal carries. */
export function refusalOf(e: unknown): UpdateResult | null {
  if (!(e instanceof ApiError) || e.code !== 'policy_update_refused') return null;
  const d = e.details as UpdateResult | null;
  return d && Array.isArray(d.violations) ? d : null;
}

/** Diagnostics as a list: `line:column code message`, each a button when `onPick` moves the caret there. */
export function DiagnosticList({ id, diagnostics, onPick, title }: { id?: string; diagnostics: readonly DiagnosticV1[]; onPick?: (d: DiagnosticV1) => void; title?: string }) {
  if (diagnostics.length === 0) return null;
  return (
    <div id={id} className="pol-diags">
      {title && <p className="pol-diags-title">{title}</p>}
      <ul>
        {diagnostics.map((d, i) => {
          const body = (
            <>
              <span className="pol-diag-at">{d.file && d.file !== 'import' && !d.file.startsWith('drafts/') ? `${d.file}:` : ''}{d.line}:{d.column}</span>{' '}
              <span className={d.severity === 'error' ? 'pol-diag-code error' : 'pol-diag-code pol-warn'}>{d.severity === 'warning' ? 'warning ' : ''}{d.code}</span>{' '}
              <span>{d.message}</span>
            </>
          );
          return <li key={i} data-line={d.line} data-code={d.code}>{onPick ? <button type="button" className="pol-link" onClick={() => onPick(d)}>{body}</button> : body}</li>;
        })}
      </ul>
    </div>
  );
}

/** "a ↔ b" pairs. */
export function Pairs({ pairs, empty }: { pairs: readonly [string, string][]; empty: string }) {
  if (pairs.length === 0) return <p className="muted">{empty}</p>;
  return <ul className="pol-pairs">{pairs.map(([a, b]) => <li key={`${a}\u0000${b}`}><span className="mono">{a}</span> ↔ <span className="mono">{b}</span></li>)}</ul>;
}

/** The key a draft's unsaved work is kept under in this browser. */
export const localKey = (draftId: string) => `hueguard.policy.draft.${draftId}`;

/**
 * A message that outlives a navigation (published, reverted, deleted): shown on the page it is left for (`at`, a
 * path inside /policy), until the user moves on from there.
 */
export interface Flash { message: string; at: string; shown: boolean }
let flash: Flash | null = null;
const flashListeners = new Set<() => void>();
export function setFlash(message: string | null, at = '/'): void {
  flash = message === null ? null : { message, at, shown: false };
  for (const l of flashListeners) l();
}
/** The message for `location`, if any (and the one left for another page is dropped once it was shown). */
export function useFlash(location: string): string | null {
  const f = useSyncExternalStore((l) => { flashListeners.add(l); return () => flashListeners.delete(l); }, () => flash);
  useEffect(() => {
    if (f === null) return;
    if (f.at === location) f.shown = true;
    else if (f.shown) setFlash(null);
  }, [f, location]);
  return f !== null && f.at === location ? f.message : null;
}

/**
 * The two things every publish asks (a draft's, or a revert's): the change note, required, and the mode, each
 * explained. `prefix` keeps the fields' ids apart.
 */
export function NoteAndMode({ prefix, note, setNote, noteError, mode, setMode }: {
  prefix: string;
  note: string;
  setNote: (s: string) => void;
  noteError: string | null | undefined;
  mode: 'reject' | 'revoke';
  setMode: (m: 'reject' | 'revoke') => void;
}) {
  const err = `${prefix}-note-err`;
  return (
    <>
      <label className="pol-field">Change note (required)
        <textarea id={`${prefix}-note`} rows={2} value={note} onChange={(e) => setNote(e.target.value)} aria-invalid={noteError ? true : undefined} aria-describedby={noteError ? err : undefined} maxLength={4096} />
      </label>
      <FieldError id={err} message={noteError} />
      <fieldset className="pol-modes">
        <legend>Mode</legend>
        <label className="pol-check"><input type="radio" name={`${prefix}-mode`} value="reject" checked={mode === 'reject'} onChange={() => setMode('reject')} /> <strong>reject</strong> (Xen’s rule): if any running VM violates the new policy, nothing changes and the current version stays.</label>
        <label className="pol-check"><input type="radio" name={`${prefix}-mode`} value="revoke" checked={mode === 'revoke'} onChange={() => setMode('revoke')} /> <strong>revoke</strong>: publish, and isolate exactly the violating VMs until they stop, are relabeled, or a later version finds them fine.</label>
      </fieldset>
    </>
  );
}
