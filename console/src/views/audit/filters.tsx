/**
 * The audit timeline's filters: actor, action and subject, each an exact match on the controller (e.g. actor
 * `user:otto`, action `trust.readmit`, subject `vm/web-1`). Checked before they are sent; the controller's
 * complaint about one is shown next to it.
 */
import { useEffect, useState, type FormEvent } from 'react';
import { FieldError } from '../../ui.tsx';

export interface Filters {
  actor: string;
  action: string;
  subject: string;
}

/** The controller's actions (src/server: every `audit(…)` call), offered in the action field. */
export const ACTIONS = [
  'admission.deny', 'host.label', 'policy.publish', 'policy.revert', 'resource.label', 'resource.unlabel',
  'session.login', 'session.login_failed', 'session.logout', 'token.create', 'token.revoke', 'trust.readmit',
  'trust.transition', 'user.put', 'vm.ak.register', 'vm.ak.replace', 'vm.label',
];

const LIMITS: Record<keyof Filters, number> = { actor: 300, action: 100, subject: 4200 };
const LABELS: Record<keyof Filters, string> = { actor: 'Actor', action: 'Action', subject: 'Subject' };
const HINTS: Record<keyof Filters, string> = { actor: 'e.g. user:otto', action: 'e.g. trust.readmit', subject: 'e.g. vm/NAME' };

export function FilterForm({ applied, errors, knownActions, onApply }: {
  applied: Filters;
  errors: Partial<Filters>;
  knownActions: string[];
  onApply: (f: Filters) => void;
}) {
  const [draft, setDraft] = useState<Filters>(applied);
  const [local, setLocal] = useState<Partial<Filters>>({});
  useEffect(() => setDraft(applied), [applied]);
  const shown = { ...errors, ...local };
  const actions = [...new Set([...ACTIONS, ...knownActions])].sort();

  function submit(e: FormEvent) {
    e.preventDefault();
    const next: Partial<Filters> = {};
    const clean: Filters = { actor: draft.actor.trim(), action: draft.action.trim(), subject: draft.subject.trim() };
    for (const k of Object.keys(LIMITS) as (keyof Filters)[]) {
      if (clean[k].length > LIMITS[k]) next[k] = `At most ${LIMITS[k]} characters.`;
    }
    if (clean.action && !/^\S+$/.test(clean.action)) next.action = 'An action is one word, such as trust.readmit.';
    setLocal(next);
    if (Object.keys(next).length > 0) {
      document.getElementById(`au-${Object.keys(next)[0]}`)?.focus();
      return;
    }
    onApply(clean);
  }

  function clear() {
    const empty = { actor: '', action: '', subject: '' };
    setDraft(empty);
    setLocal({});
    onApply(empty);
  }

  return (
    <form className="au-filters panel" onSubmit={submit} noValidate aria-label="Audit filters">
      {(Object.keys(LABELS) as (keyof Filters)[]).map((k) => (
        <div className="au-field" key={k}>
          <label htmlFor={`au-${k}`}>{LABELS[k]}</label>
          <input
            id={`au-${k}`} value={draft[k]} placeholder={HINTS[k]} autoComplete="off" spellCheck={false}
            list={k === 'action' ? 'au-actions' : undefined}
            onChange={(e) => { setDraft({ ...draft, [k]: e.target.value }); if (local[k]) setLocal({ ...local, [k]: undefined }); }}
            aria-invalid={shown[k] ? true : undefined} aria-describedby={shown[k] ? `au-${k}-error` : undefined}
          />
          <FieldError id={`au-${k}-error`} message={shown[k]} />
        </div>
      ))}
      <datalist id="au-actions">{actions.map((a) => <option key={a} value={a} />)}</datalist>
      <div className="au-buttons">
        <button type="submit" className="primary">Apply filters</button>
        <button type="button" onClick={clear}>Clear</button>
      </div>
      <p className="muted au-note">Each filter matches exactly.</p>
    </form>
  );
}
