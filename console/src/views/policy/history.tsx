/**
 * Every published version (number, change note, actor, time), newest first. Pick two to compare (structure and
 * sharing), open one to read its text, and (admin) revert to it with a change note: the old text becomes a new
 * version, replayed against the fleet like any publish.
 */
import { useEffect, useState, type FormEvent } from 'react';
import { Link, useLocation } from 'wouter';
import { get, post } from '../../api.ts';
import { onEvent, useFleet } from '../../fleet.ts';
import { useSession } from '../../session.tsx';
import { FieldError } from '../../ui.tsx';
import { errorText, NoteAndMode, refusalOf, setFlash, Time, type SharingDiff, type StructuralDiff, type UpdateResult, type VersionSummary, type VersionText } from './common.tsx';
import { SharingDiffView, StructuralDiffView } from './diff.tsx';
import { RefusalView } from './preview.tsx';

function useVersions(): { versions: VersionSummary[] | null; error: string | null } {
  const [versions, setVersions] = useState<VersionSummary[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let alive = true;
    const load = () => get<VersionSummary[]>('/api/v1/policy/versions').then((v) => { if (alive) { setVersions(v); setError(null); } }, (e) => { if (alive) setError(errorText(e)); });
    void load();
    const off = onEvent((e) => { if (e.kind === 'policy' && !e.subject.startsWith('draft/')) void load(); });
    return () => { alive = false; off(); };
  }, []);
  return { versions, error };
}

export function HistoryList() {
  const { versions, error } = useVersions();
  const [picked, setPicked] = useState<number[]>([]);
  const [, navigate] = useLocation();
  const [pickError, setPickError] = useState<string | null>(null);
  const { policy } = useFleet();

  function compare(e: FormEvent) {
    e.preventDefault();
    if (picked.length !== 2) return setPickError('Pick two versions to compare.');
    const [a, b] = [...picked].sort((x, y) => x - y);
    navigate(`/history/diff/${a}/${b}`);
  }

  return (
    <section className="panel" aria-labelledby="pol-history">
      <h2 id="pol-history">History</h2>
      {error && <p role="alert" className="error">{error}</p>}
      {versions === null ? <p className="muted">Loading…</p> : versions.length === 0 ? <p>No version has been published yet.</p> : (
        <form onSubmit={compare} noValidate>
          <table className="pol-table" aria-label="Published versions">
            <thead><tr><th scope="col">Compare</th><th scope="col">Version</th><th scope="col">Policy</th><th scope="col">Change note</th><th scope="col">By</th><th scope="col">At</th></tr></thead>
            <tbody>
              {[...versions].reverse().map((v) => (
                <tr key={v.version} data-version={v.version}>
                  <td>
                    <input type="checkbox" aria-label={`Compare version ${v.version}`} checked={picked.includes(v.version)}
                      onChange={(e) => { setPickError(null); setPicked((p) => (e.target.checked ? [...p.filter((x) => x !== v.version), v.version].slice(-2) : p.filter((x) => x !== v.version))); }} />
                  </td>
                  <td><Link href={`/history/${v.version}`}>v{v.version}</Link>{policy?.version === v.version && <span className="pol-badge"> current</span>}</td>
                  <td><span className="mono">{v.name}</span> {v.policyVersion}</td>
                  <td>{v.note || <span className="muted">—</span>}</td>
                  <td>{v.actor}</td>
                  <td><Time at={v.at} /></td>
                </tr>
              ))}
            </tbody>
          </table>
          <div className="row pol-actions">
            <button type="submit" aria-describedby={pickError ? 'pol-pick-err' : undefined}>Compare selected</button>
            <span className="muted">{picked.length === 0 ? 'Pick two versions.' : `Picked: ${[...picked].sort((a, b) => a - b).map((n) => `v${n}`).join(' and ')}`}</span>
          </div>
          <FieldError id="pol-pick-err" message={pickError} />
        </form>
      )}
    </section>
  );
}

export function VersionDiff({ from, to }: { from: number; to: number }) {
  const [d, setD] = useState<{ from: number; to: number; diff: StructuralDiff; sharing: SharingDiff } | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    setD(null);
    get<{ from: number; to: number; diff: StructuralDiff; sharing: SharingDiff }>(`/api/v1/policy/diff?from=${from}&to=${to}`).then(setD, (e) => setError(errorText(e)));
  }, [from, to]);
  return (
    <section className="panel" aria-labelledby="pol-diff-title">
      <h2 id="pol-diff-title">From v{from} to v{to}</h2>
      <p><Link href="/history">← History</Link> · <Link href={`/history/${from}`}>v{from}</Link> · <Link href={`/history/${to}`}>v{to}</Link></p>
      {error && <p role="alert" className="error">{error}</p>}
      {d === null ? (!error && <p className="muted">Loading…</p>) : (
        <>
          <h3>Structure</h3>
          <StructuralDiffView diff={d.diff} />
          <h3>Sharing</h3>
          <SharingDiffView sharing={d.sharing} />
        </>
      )}
    </section>
  );
}

export function VersionPage({ n }: { n: number }) {
  const { can } = useSession();
  const { policy } = useFleet();
  const [, navigate] = useLocation();
  const [v, setV] = useState<VersionText | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [note, setNote] = useState('');
  const [mode, setMode] = useState<'reject' | 'revoke'>('reject');
  const [noteError, setNoteError] = useState<string | null>(null);
  const [refusal, setRefusal] = useState<{ message: string; result: UpdateResult | null } | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    setV(null);
    setError(null);
    get<VersionText>(`/api/v1/policy/versions/${n}`).then(setV, (e) => setError(errorText(e)));
  }, [n]);

  async function revert(e: FormEvent) {
    e.preventDefault();
    setRefusal(null);
    setNoteError(null);
    if (note.trim() === '') return setNoteError('Write a change note: why go back to this version?');
    setBusy(true);
    try {
      const r = await post<{ version: { version: number } }>('/api/v1/policy/revert', { to: n, note: note.trim(), mode });
      setFlash(`Reverted to version ${n}: published as version ${r.version.version}.`);
      navigate('/');
    } catch (err) {
      setRefusal({ message: errorText(err), result: refusalOf(err) });
    } finally {
      setBusy(false);
    }
  }

  const isCurrent = policy?.version === n;
  return (
    <section className="panel" aria-labelledby="pol-version-title">
      <h2 id="pol-version-title">Version {n}</h2>
      <p><Link href="/history">← History</Link>{n > 1 && <> · <Link href={`/history/diff/${n - 1}/${n}`}>changes from v{n - 1}</Link></>}</p>
      {error && <p role="alert" className="error">{error}</p>}
      {v && (
        <>
          <dl className="pol-meta">
            <dt>Policy</dt><dd><span className="mono">{v.name}</span> {v.policyVersion}</dd>
            <dt>Change note</dt><dd>{v.note || <span className="muted">none</span>}</dd>
            <dt>By</dt><dd>{v.actor}</dd>
            <dt>At</dt><dd><Time at={v.at} /></dd>
          </dl>
          <h3>Text</h3>
          <pre className="pol-text" aria-label={`Text of version ${n}`} tabIndex={0}>{v.yaml}</pre>
          {can('admin') && !isCurrent && (
            <form className="pol-publish" onSubmit={(e) => void revert(e)} aria-labelledby="pol-revert-title" noValidate>
              <h3 id="pol-revert-title">Revert to version {n}</h3>
              <p className="muted">Publishes this text again as a new version, replayed against the running VMs like any publish.</p>
              <NoteAndMode prefix="pol-revert" note={note} setNote={setNote} noteError={noteError} mode={mode} setMode={setMode} />
              <button type="submit" className="danger" disabled={busy}>{busy ? 'Reverting…' : `Revert to version ${n}`}</button>
              {refusal && <RefusalView message={refusal.message} result={refusal.result} />}
            </form>
          )}
          {isCurrent && <p className="muted">This is the published version.</p>}
        </>
      )}
    </section>
  );
}
