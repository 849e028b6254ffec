/**
 * One draft: edited in a form or as YAML (two tabs over the same text), checked before it is sent, saved (the
 * controller's 422 diagnostics placed on the fields and lines they name; the draft on the controller stays as it
 * was), validated against the published version, previewed on the live fleet and published.
 *
 * Unsaved work is kept in this browser (localStorage, by draft id) as it is typed: a reload, or a session that
 * ends (sign-in is shown over the page, which stays as it is), loses nothing.
 */
import { useCallback, useEffect, useMemo, useRef, useState, type FormEvent, type KeyboardEvent } from 'react';
import { useLocation } from 'wouter';
import { ApiError, del, get, post, put, seg } from '../../api.ts';
import { onEvent } from '../../fleet.ts';
import { useSession } from '../../session.tsx';
import { DiagnosticList, diagnosticsOf, errorText, localKey, setFlash, Time, type Draft, type Refusal } from './common.tsx';
import { DraftForm, fieldId } from './draft-form.tsx';
import { checkForm, fieldOfPath, fieldValue, formFromText, parseYaml, textFromForm, TextProblem, type DiagnosticV1, type FieldErrors, type FormModel } from './model.ts';
import { PreviewPanel } from './preview.tsx';
import { YamlEditor, type YamlEditorHandle } from './yaml-editor.tsx';

type Tab = 'form' | 'yaml';

interface Stored { text: string; savedAt: string; base: string }

function readStored(id: string): Stored | null {
  try {
    const s = JSON.parse(localStorage.getItem(localKey(id)) ?? 'null') as Stored | null;
    return s && typeof s.text === 'string' ? s : null;
  } catch {
    return null;
  }
}

/** The text's own YAML problem (before anything is sent), as a diagnostic at its line. */
function yamlProblemOf(text: string): DiagnosticV1 | null {
  try {
    parseYaml(text);
    return null;
  } catch (e) {
    if (e instanceof TextProblem) return { file: '', line: e.line, column: e.column, code: 'yaml_syntax', message: `${e.message} (found before sending)`, severity: 'error' };
    return { file: '', line: 1, column: 1, code: 'yaml_syntax', message: String((e as Error).message), severity: 'error' };
  }
}

/** The controller's diagnostics as form errors (by model path), and those the form has no place for. */
function placeDiagnostics(m: FormModel, diags: readonly DiagnosticV1[]): { fields: FieldErrors; unplaced: DiagnosticV1[] } {
  const fields: FieldErrors = {};
  const unplaced: DiagnosticV1[] = [];
  for (const d of diags) {
    const k = fieldOfPath(m, d.path);
    if (k === null) unplaced.push(d);
    else fields[k] = fields[k] ? `${fields[k]} ${d.message} (${d.code})` : `${d.message} (${d.code})`;
  }
  return { fields, unplaced };
}

export function DraftEditor({ id }: { id: string }) {
  const { can } = useSession();
  const admin = can('admin');
  const [, navigate] = useLocation();
  const [draft, setDraft] = useState<Draft | null>(null);
  const [gone, setGone] = useState<string | null>(null);
  const [tab, setTab] = useState<Tab>('form');
  const [text, setText] = useState('');
  const [form, setForm] = useState<FormModel | null>(null);
  const [formDirty, setFormDirty] = useState(false);
  const [clientErrors, setClientErrors] = useState<FieldErrors>({});
  /** the controller's answer to the last save, for the text it was about */
  const [server, setServer] = useState<{ text: string; diags: DiagnosticV1[]; fields: FieldErrors; unplaced: DiagnosticV1[] } | null>(null);
  const [status, setStatus] = useState<{ kind: 'ok' | 'error' | 'info'; text: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const [restored, setRestored] = useState<Stored | null>(null);
  const [validation, setValidation] = useState<{ valid: boolean; refusals: Refusal[]; diagnostics: DiagnosticV1[]; current: number | null } | null>(null);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const editor = useRef<YamlEditorHandle>(null);
  const saving = useRef(false);
  const heading = useRef<HTMLHeadingElement>(null);
  const loadedOnce = useRef(false);

  /** take a text into the editor: the form when it reads, the YAML tab otherwise */
  const take = useCallback((t: string, preferTab?: Tab) => {
    setText(t);
    setFormDirty(false);
    setClientErrors({});
    try {
      setForm(formFromText(t));
      if (preferTab) setTab(preferTab);
    } catch {
      setForm(null);
      setTab('yaml');
    }
  }, []);

  const load = useCallback(async (initial: boolean) => {
    try {
      const d = await get<Draft>(`/api/v1/policy/drafts/${seg(id)}`);
      setDraft(d);
      setGone(null);
      if (initial) {
        const stored = readStored(id);
        if (stored && stored.text !== d.yaml) {
          setRestored(stored);
          take(stored.text, 'form');
        } else {
          take(d.yaml, 'form');
        }
      }
      return d;
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) setGone('This draft does not exist (any more): it was published or deleted.');
      else setStatus({ kind: 'error', text: errorText(e) });
      return null;
    }
  }, [id, take]);

  useEffect(() => { void load(true); }, [load]);
  // once loaded, the keyboard starts at the draft (not at the top of the page it came from)
  useEffect(() => {
    if (draft !== null && !loadedOnce.current) {
      loadedOnce.current = true;
      heading.current?.focus();
    }
  }, [draft]);

  // the text as it stands (the form's, when it was edited)
  const current = useMemo(() => (formDirty && form ? textFromForm(form) : text), [formDirty, form, text]);
  const dirty = draft !== null && current !== draft.yaml;

  // keep unsaved work in this browser; forget it once saved
  useEffect(() => {
    if (draft === null) return;
    if (dirty) localStorage.setItem(localKey(id), JSON.stringify({ text: current, savedAt: new Date().toISOString(), base: draft.updatedAt } satisfies Stored));
    else localStorage.removeItem(localKey(id));
  }, [current, dirty, draft, id]);

  // someone else saved, published or deleted this draft: follow when nothing here is unsaved
  const dirtyRef = useRef(dirty);
  dirtyRef.current = dirty;
  const savedRef = useRef<string | null>(null);
  savedRef.current = draft?.yaml ?? null;
  useEffect(() => onEvent((e) => {
    if (e.kind !== 'policy' || e.subject !== `draft/${id}` || saving.current) return;
    void (async () => {
      const before = savedRef.current;
      const d = await load(false);
      if (d && d.yaml === before) return;
      if (d && !dirtyRef.current) take(d.yaml);
      else if (d && dirtyRef.current) setStatus({ kind: 'info', text: 'This draft was changed elsewhere; saving here replaces that change.' });
    })();
  }), [id, load, take]);

  const yamlProblem = useMemo(() => (tab === 'yaml' ? yamlProblemOf(text) : null), [tab, text]);
  const yamlDiags = useMemo(() => {
    const out: DiagnosticV1[] = [];
    if (yamlProblem) out.push(yamlProblem);
    if (server && server.text === text) out.push(...server.diags);
    else if (server) out.push(...server.diags.map((d) => ({ ...d, message: `${d.message} (from the last save; the text changed since)` })));
    return out.sort((a, b) => a.line - b.line || a.column - b.column);
  }, [yamlProblem, server, text]);

  // the saved draft's colors, in its order: how the preview draws them
  const savedPalette = useMemo(() => {
    try {
      return draft ? (formFromText(draft.yaml).colors?.map((c) => c.name) ?? null) : null;
    } catch {
      return null;
    }
  }, [draft]);

  const formErrors = useMemo(() => ({ ...(server?.fields ?? {}), ...clientErrors }), [server, clientErrors]);

  function focusFirstError(errs: FieldErrors) {
    const first = Object.keys(errs)[0];
    if (first) requestAnimationFrame(() => document.getElementById(fieldId(first))?.focus());
  }

  function switchTab(to: Tab) {
    if (to === tab) return;
    setStatus(null);
    if (to === 'yaml') {
      if (form && formDirty) {
        const errs = checkForm(form);
        if (Object.keys(errs).length > 0) {
          setClientErrors(errs);
          setStatus({ kind: 'error', text: `The form has ${Object.keys(errs).length} problem${Object.keys(errs).length === 1 ? '' : 's'} (shown next to the fields): fix them to see it as YAML.` });
          focusFirstError(errs);
          return;
        }
        setText(textFromForm(form));
        setFormDirty(false);
      }
      setTab('yaml');
      return;
    }
    try {
      const m = formFromText(text);
      setForm(m);
      setFormDirty(false);
      setClientErrors({});
      if (server && server.text === text) setServer({ ...server, ...placeDiagnostics(m, server.diags) });
      setTab('form');
    } catch (e) {
      const at = e instanceof TextProblem ? ` at line ${e.line}, column ${e.column}` : '';
      setStatus({ kind: 'error', text: `The YAML does not read${at}: fix it to use the form.` });
      if (e instanceof TextProblem) editor.current?.goTo(e.line, e.column);
    }
  }

  async function save(e?: FormEvent) {
    e?.preventDefault();
    if (!admin || draft === null || busy) return;
    setStatus(null);
    setValidation(null);
    let sending = text;
    if (tab === 'form' && form) {
      const errs = checkForm(form);
      setClientErrors(errs);
      if (Object.keys(errs).length > 0) {
        setStatus({ kind: 'error', text: `Not saved: ${Object.keys(errs).length} problem${Object.keys(errs).length === 1 ? '' : 's'} in the form, shown next to the fields.` });
        focusFirstError(errs);
        return;
      }
      if (formDirty) sending = textFromForm(form);
    } else {
      const p = yamlProblemOf(text);
      if (p) {
        setStatus({ kind: 'error', text: `Not saved: the YAML does not read at line ${p.line}, column ${p.column}.` });
        editor.current?.goTo(p.line, p.column);
        return;
      }
    }
    setBusy(true);
    saving.current = true;
    try {
      const d = await put<Draft>(`/api/v1/policy/drafts/${seg(id)}`, { text: sending });
      setDraft(d);
      setText(d.yaml);
      setFormDirty(false);
      setServer(null);
      setRestored(null);
      localStorage.removeItem(localKey(id));
      setStatus({ kind: 'ok', text: `Saved ${d.name} ${d.policyVersion}.${d.warnings?.length ? ` ${d.warnings.length} warning${d.warnings.length === 1 ? '' : 's'}.` : ''}` });
    } catch (err) {
      const diags = diagnosticsOf(err);
      if (diags) {
        // the text stays as typed: the form's (if it was edited) becomes the YAML the diagnostics are about
        setText(sending);
        setFormDirty(false);
        const placed = tab === 'form' && form ? placeDiagnostics(form, diags) : { fields: {}, unplaced: diags };
        setServer({ text: sending, diags, ...placed });
        const n = diags.filter((x) => x.severity === 'error').length;
        setStatus({ kind: 'error', text: `Not saved: the controller found ${n} error${n === 1 ? '' : 's'} (${err instanceof ApiError ? err.message : ''}); the saved draft is unchanged.` });
        if (tab === 'yaml') {
          const first = diags.find((x) => x.severity === 'error') ?? diags[0];
          if (first) editor.current?.goTo(first.line, first.column);
        } else focusFirstError(placed.fields);
      } else {
        setStatus({ kind: 'error', text: `Not saved: ${errorText(err)}` });
      }
    } finally {
      setBusy(false);
      setTimeout(() => { saving.current = false; }, 500);
    }
  }

  async function validate() {
    setStatus(null);
    if (dirty) return setStatus({ kind: 'info', text: 'Save first: the controller validates the saved draft.' });
    try {
      setValidation(await post(`/api/v1/policy/drafts/${seg(id)}/validate`));
    } catch (err) {
      setStatus({ kind: 'error', text: errorText(err) });
    }
  }

  async function remove() {
    try {
      await del(`/api/v1/policy/drafts/${seg(id)}`);
      localStorage.removeItem(localKey(id));
      setFlash(`Draft ${id} deleted.`);
      navigate('/');
    } catch (err) {
      setStatus({ kind: 'error', text: errorText(err) });
    }
  }

  function discard() {
    if (!draft) return;
    localStorage.removeItem(localKey(id));
    setRestored(null);
    setServer(null);
    take(draft.yaml);
    setStatus({ kind: 'info', text: 'Unsaved changes discarded.' });
  }

  /** the tabs follow the ARIA pattern: arrow keys move between them */
  function tabKeys(e: KeyboardEvent<HTMLButtonElement>) {
    if (e.key !== 'ArrowLeft' && e.key !== 'ArrowRight' && e.key !== 'Home' && e.key !== 'End') return;
    e.preventDefault();
    const to: Tab = e.key === 'Home' ? 'form' : e.key === 'End' ? 'yaml' : tab === 'form' ? 'yaml' : 'form';
    switchTab(to);
    requestAnimationFrame(() => document.getElementById(`pol-tab-${to}`)?.focus());
  }

  if (gone) return <section className="panel"><h2>Draft {id}</h2><p role="alert">{gone}</p></section>;
  if (draft === null) return <section className="panel"><h2>Draft {id}</h2>{status ? <p role="alert" className="error">{status.text}</p> : <p className="muted">Loading…</p>}</section>;

  return (
    <>
      <section className="panel" aria-labelledby="pol-draft-title">
        <h2 id="pol-draft-title" ref={heading} tabIndex={-1}>Draft <span className="mono">{draft.name}</span> {draft.policyVersion} <span className="muted">({id})</span></h2>
        <p className="muted">
          {draft.base === null ? 'Not based on a published version' : `Based on version ${draft.base}`}; last saved by {draft.actor}, <Time at={draft.updatedAt} />.
          {!admin && ' Read only: only an admin edits drafts.'}
        </p>
        {restored && (
          <p className="notice" role="status">
            Unsaved changes kept in this browser (<Time at={restored.savedAt} />) were restored.{' '}
            {admin && <button type="button" onClick={discard}>Discard them</button>}
          </p>
        )}
        {draft.warnings && draft.warnings.length > 0 && <DiagnosticList diagnostics={draft.warnings} title="Warnings about the saved draft:" />}

        <form onSubmit={(e) => void save(e)} aria-label="Edit draft" noValidate>
          <div role="tablist" aria-label="Edit as" className="tabs">
            {(['form', 'yaml'] as const).map((t) => (
              <button key={t} id={`pol-tab-${t}`} type="button" role="tab" aria-selected={tab === t} aria-controls={`pol-panel-${t}`} tabIndex={tab === t ? 0 : -1} onClick={() => switchTab(t)} onKeyDown={tabKeys}>
                {t === 'form' ? 'Form' : 'YAML'}
              </button>
            ))}
          </div>
          <div role="tabpanel" id={`pol-panel-${tab}`} aria-labelledby={`pol-tab-${tab}`}>
            {tab === 'form' && form ? (
              <>
                {formDirty && <p className="muted pol-hint">Saving from the form writes the YAML afresh (comments in it are not kept).</p>}
                {server && server.unplaced.length > 0 && <DiagnosticList diagnostics={server.unplaced} title="The controller also found (see the YAML tab for their lines):" />}
                <DraftForm model={form} onChange={(m) => {
                  // the controller's word on a field holds until that field is edited
                  if (server && Object.keys(server.fields).some((k) => fieldValue(m, k) !== fieldValue(form, k))) {
                    setServer({ ...server, fields: Object.fromEntries(Object.entries(server.fields).filter(([k]) => fieldValue(m, k) === fieldValue(form, k))) });
                  }
                  setForm(m);
                  setFormDirty(true);
                  // once the form has said what is wrong, it says so as the fields are fixed
                  if (Object.keys(clientErrors).length) {
                    const errs = checkForm(m);
                    setClientErrors(errs);
                    if (Object.keys(errs).length === 0) setStatus(null);
                  }
                }} errors={formErrors} readOnly={!admin} />
              </>
            ) : (
              <YamlEditor ref={editor} id="pol-yaml" label="Policy text (native YAML)" value={text} onChange={(t) => setText(t)} diagnostics={yamlDiags} readOnly={!admin} />
            )}
          </div>
          <div className="row pol-actions pol-sticky">
            {admin && <button type="submit" className="primary" disabled={busy}>{busy ? 'Saving…' : 'Save draft'}</button>}
            <button type="button" onClick={() => void validate()}>Validate</button>
            {admin && dirty && <button type="button" onClick={discard}>Discard unsaved changes</button>}
            {admin && !confirmDelete && <button type="button" className="danger" onClick={() => setConfirmDelete(true)}>Delete draft</button>}
            {admin && confirmDelete && (
              <span role="group" aria-label="Confirm delete">
                Delete this draft? <button type="button" className="danger" onClick={() => void remove()}>Yes, delete it</button>{' '}
                <button type="button" onClick={() => setConfirmDelete(false)}>Keep it</button>
              </span>
            )}
            <span className="muted" data-dirty={dirty ? 'yes' : 'no'}>{dirty ? 'Unsaved changes (kept in this browser)' : 'All changes saved'}</span>
          </div>
          <div role="status" aria-live="polite">
            {status && <p className={status.kind === 'error' ? 'error' : status.kind === 'ok' ? 'pol-ok' : 'notice'}>{status.text}</p>}
          </div>
        </form>

        {validation && (
          <div className="pol-validation" role="region" aria-label="Validation">
            {validation.valid
              ? <p className="pol-ok">Valid: it may follow {validation.current === null ? 'as the first version' : `version ${validation.current}`}.</p>
              : <><p className="error">It may not follow version {validation.current}:</p><ul>{validation.refusals.map((r, i) => <li key={i}><span className="mono">{r.code}</span>: {r.message}</li>)}</ul></>}
            <DiagnosticList diagnostics={validation.diagnostics} title="Warnings:" />
          </div>
        )}
      </section>
      <PreviewPanel draftId={id} dirty={dirty} revision={draft.updatedAt} palette={savedPalette} onPublished={(v) => {
        localStorage.removeItem(localKey(id));
        setFlash(`Published version ${v}.`);
        navigate('/');
      }} />
    </>
  );
}
