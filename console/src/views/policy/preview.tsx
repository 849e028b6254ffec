/**
 * A draft on the live fleet (operators and admins): which label pairs gain or lose sharing, which running VMs gain
 * or lose colors (and so peers), which would violate it (reject refuses the publish), which revoke would isolate
 * and why. Then, for the admin, publish with a change note and a mode; a refusal is shown with its violations.
 */
import { useState, type FormEvent } from 'react';
import { post, seg, get } from '../../api.ts';
import { useSession } from '../../session.tsx';
import { useFleet } from '../../fleet.ts';
import { colorStyle } from '../../palette.ts';
import { Swatch } from '../../ui.tsx';
import { errorText, NoteAndMode, REASON, refusalOf, VmLink, type Isolation, type Preview, type UpdateResult, type Violation } from './common.tsx';
import { StructuralDiffView, SharingDiffView } from './diff.tsx';

export function ViolationTable({ violations, caption }: { violations: readonly Violation[]; caption: string }) {
  return (
    <table className="pol-table">
      <caption>{caption}</caption>
      <thead><tr><th scope="col">VM</th><th scope="col">Host</th><th scope="col">Why</th></tr></thead>
      <tbody>
        {violations.map((v, i) => (
          <tr key={`${v.vm}-${v.code}-${i}`} data-vm={v.vm}>
            <td><VmLink name={v.vm} />{v.peer ? <> ↔ <VmLink name={v.peer} /></> : null}</td>
            <td className="mono">{v.host}</td>
            <td><span className="mono">{v.code}</span>: {v.message}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function IsolateTable({ isolate, caption }: { isolate: readonly Isolation[]; caption: string }) {
  return (
    <table className="pol-table">
      <caption>{caption}</caption>
      <thead><tr><th scope="col">VM</th><th scope="col">Host</th><th scope="col">Reasons</th></tr></thead>
      <tbody>
        {isolate.map((x) => (
          <tr key={x.vm} data-vm={x.vm}>
            <td><VmLink name={x.vm} /></td>
            <td className="mono">{x.host}</td>
            <td>{x.reasons.map((r) => <span key={r} className="pol-reason"><span className="mono">{r}</span> — {REASON[r] ?? r}</span>)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** An update's refusal: identity refusals and the violations. */
export function RefusalView({ result, message }: { result: UpdateResult | null; message: string }) {
  return (
    <div role="alert" className="pol-refusal">
      <p className="error">{message}</p>
      {result && result.refusals.length > 0 && <ul>{result.refusals.map((r, i) => <li key={i}><span className="mono">{r.code}</span>: {r.message}</li>)}</ul>}
      {result && result.violations.length > 0 && <ViolationTable violations={result.violations} caption={`Running VMs that violate it (${result.violations.length})`} />}
    </div>
  );
}

/** A color as the policy that has it draws it (the draft's for gained colors, the published one's for lost). */
function Chip({ palette, color }: { palette: readonly string[] | null; color: string }) {
  return <span className="chip" data-color={color}><Swatch style={colorStyle(palette, color)} />{color}</span>;
}

function PreviewView({ p, palette }: { p: Preview; palette: readonly string[] | null }) {
  const published = useFleet().policy?.doc.colors ?? null;
  const peers = p.colors;
  return (
    <div className="pol-preview" data-testid="preview">
      <p className="pol-verdicts">
        <span className={p.reject.accepted ? 'allow' : 'deny'}>Reject mode: {p.reject.accepted ? 'would be accepted' : p.refusals.length ? 'refused (identity)' : `refused — ${p.violations.length} running VM${p.violations.length === 1 ? '' : 's'} would violate it`}</span>
        {' · '}
        <span className={p.revoke.accepted ? 'allow' : 'deny'}>Revoke mode: {p.revoke.accepted ? `would be accepted, isolating ${p.revoke.isolate.length} VM${p.revoke.isolate.length === 1 ? '' : 's'}` : 'refused (identity)'}</span>
      </p>
      {p.refusals.length > 0 && (
        <>
          <h4>Refused whatever the mode</h4>
          <ul>{p.refusals.map((r, i) => <li key={i}><span className="mono">{r.code}</span>: {r.message}</li>)}</ul>
        </>
      )}
      <h4>What changes in the policy</h4>
      <StructuralDiffView diff={p.diff} />
      <SharingDiffView sharing={p.sharing} />
      <h4>Running VMs whose colors change ({peers.length})</h4>
      {peers.length === 0 ? <p className="muted">None: no running VM gains or loses a peer.</p> : (
        <table className="pol-table" aria-label="Running VMs whose colors change">
          <thead><tr><th scope="col">VM</th><th scope="col">Host</th><th scope="col">Label</th><th scope="col">Gains peers of</th><th scope="col">Loses peers of</th></tr></thead>
          <tbody>
            {peers.map((c) => (
              <tr key={c.vm} data-vm={c.vm}>
                <td><VmLink name={c.vm} /></td>
                <td className="mono">{c.host}</td>
                <td className="mono">{c.label}{c.to !== c.label ? (c.to === null ? ' → (removed)' : ` → ${c.to}`) : ''}</td>
                <td>{c.gained.length ? c.gained.map((x) => <Chip key={x} palette={palette} color={x} />) : <span className="muted">—</span>}</td>
                <td>{c.lost.length ? c.lost.map((x) => <Chip key={x} palette={published} color={x} />) : <span className="muted">—</span>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {p.relabeled.length > 0 && (
        <><h4>Relabeled by renames ({p.relabeled.length})</h4><ul>{p.relabeled.map((r) => <li key={r.vm}><VmLink name={r.vm} />: {r.from} → {r.to}</li>)}</ul></>
      )}
      <h4>Violations (reject refuses the publish) ({p.violations.length})</h4>
      {p.violations.length === 0 ? <p className="muted">No running VM violates it.</p> : <ViolationTable violations={p.violations} caption="Running VMs that would violate it" />}
      <h4>Revoke would isolate ({p.revoke.isolate.length})</h4>
      {p.revoke.isolate.length === 0 ? <p className="muted">No VM would be isolated.</p> : <IsolateTable isolate={p.revoke.isolate} caption="VMs revoke would isolate (no colors until they stop, are relabeled, or a later publish finds them fine)" />}
      {p.unmanaged.length > 0 && (
        <><h4>Left out of the replay ({p.unmanaged.length})</h4><ul>{p.unmanaged.map((u) => <li key={u.vm}><VmLink name={u.vm} /> on {u.host}{u.reason ? `: ${u.reason}` : ''}</li>)}</ul></>
      )}
    </div>
  );
}

export function PreviewPanel({ draftId, dirty, revision, palette, onPublished }: {
  draftId: string;
  dirty: boolean;
  /** the saved draft's time: a preview of an earlier save is stale */
  revision: string;
  palette: readonly string[] | null;
  onPublished: (version: number) => void;
}) {
  const { can } = useSession();
  const [preview, setPreview] = useState<Preview | null>(null);
  const [previewOf, setPreviewOf] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);
  const [note, setNote] = useState('');
  const [mode, setMode] = useState<'reject' | 'revoke'>('reject');
  const [noteError, setNoteError] = useState<string | null>(null);
  const [refusal, setRefusal] = useState<{ message: string; result: UpdateResult | null } | null>(null);
  const [publishing, setPublishing] = useState(false);

  if (!can('operator')) return null;

  async function load() {
    setError(null);
    setRefusal(null);
    if (dirty) return setError('Save first: the preview is of the saved draft.');
    setLoading(true);
    try {
      const of = revision;
      setPreview(await get<Preview>(`/api/v1/policy/drafts/${seg(draftId)}/preview`));
      setPreviewOf(of);
    } catch (e) {
      setError(errorText(e));
    } finally {
      setLoading(false);
    }
  }

  async function publish(e: FormEvent) {
    e.preventDefault();
    setRefusal(null);
    setNoteError(null);
    if (note.trim() === '') return setNoteError('Write a change note: it goes to the audit log with the new version.');
    if (note.length > 4096) return setNoteError('The change note is longer than 4096 characters.');
    if (dirty) return setRefusal({ message: 'Save first: the saved draft is what is published.', result: null });
    if (previewOf !== revision) return setRefusal({ message: 'The draft was saved since this preview: preview again before publishing.', result: null });
    setPublishing(true);
    try {
      const r = await post<{ version: { version: number } }>(`/api/v1/policy/drafts/${seg(draftId)}/publish`, { note: note.trim(), mode });
      onPublished(r.version.version);
    } catch (err) {
      const field = err instanceof Error && 'field' in err ? (err as { field?: string }).field : undefined;
      if (field === 'body.note') setNoteError(errorText(err));
      else setRefusal({ message: errorText(err), result: refusalOf(err) });
    } finally {
      setPublishing(false);
    }
  }

  const stale = preview !== null && (dirty || previewOf !== revision);
  return (
    <section className="panel" aria-labelledby="pol-preview-title">
      <h2 id="pol-preview-title">Preview on the live fleet</h2>
      <p className="muted">What publishing the saved draft would do to the running VMs now.</p>
      <button type="button" onClick={() => void load()} disabled={loading}>{loading ? 'Replaying…' : preview ? 'Preview again' : 'Preview on the live fleet'}</button>
      {error && <p role="alert" className="error">{error}</p>}
      {stale && <p className="notice">The draft changed since this preview: {dirty ? 'save and preview again' : 'preview again'}.</p>}
      {preview && <PreviewView p={preview} palette={palette} />}
      {preview && can('admin') && (
        <form className="pol-publish" onSubmit={(e) => void publish(e)} aria-labelledby="pol-publish-title" noValidate>
          <h3 id="pol-publish-title">Publish</h3>
          <NoteAndMode prefix="pol" note={note} setNote={setNote} noteError={noteError} mode={mode} setMode={setMode} />
          <button type="submit" className="primary" disabled={publishing}>{publishing ? 'Publishing…' : `Publish (${mode})`}</button>
          {refusal && <RefusalView message={refusal.message} result={refusal.result} />}
        </form>
      )}
    </section>
  );
}
