/**
 * The published policy at a glance: its version and change note, every color (with the labels and resource labels
 * holding it), the labels (colors, wall types, trust rule), the conflict sets, the resource labels and the host
 * label; the drafts in progress; for the admin, a new draft from this version and a Xen import.
 */
import { useEffect, useState } from 'react';
import { Link, useLocation } from 'wouter';
import { get, post, seg } from '../../api.ts';
import { onEvent, useFleet } from '../../fleet.ts';
import { colorStyle } from '../../palette.ts';
import type { PolicyDoc } from '../../policy-doc.ts';
import { useSession } from '../../session.tsx';
import { ColorChip, Swatch } from '../../ui.tsx';
import { errorText, Time, type Draft, type DraftSummary } from './common.tsx';
import { EMPTY_POLICY, followUpText } from './model.ts';

type DraftRow = DraftSummary & { name?: string; policyVersion?: string };

/** The drafts on the controller, kept current by the draft events. */
export function useDrafts(): { drafts: DraftRow[] | null; error: string | null } {
  const [drafts, setDrafts] = useState<DraftRow[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let alive = true;
    let timer: ReturnType<typeof setTimeout> | null = null;
    const load = async () => {
      try {
        const list = await get<DraftSummary[]>('/api/v1/policy/drafts');
        // each draft's name and version (there are a handful: drafts are work in progress)
        const named = await Promise.all(list.slice(0, 50).map(async (d): Promise<DraftRow> => {
          try {
            const full = await get<Draft>(`/api/v1/policy/drafts/${seg(d.id)}`);
            return { ...d, name: full.name, policyVersion: full.policyVersion };
          } catch {
            return d;
          }
        }));
        if (alive) { setDrafts([...named, ...list.slice(50)]); setError(null); }
      } catch (e) {
        if (alive) setError(errorText(e));
      }
    };
    void load();
    const off = onEvent((e) => {
      if (e.kind !== 'policy') return;
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => void load(), 150);
    });
    return () => { alive = false; off(); if (timer) clearTimeout(timer); };
  }, []);
  return { drafts, error };
}

function ColorsPanel({ doc }: { doc: PolicyDoc }) {
  if (doc.colors === null) return <p className="muted">This policy has no colors (no STE component): it restricts no sharing.</p>;
  const labels = Object.entries(doc.labels);
  const resources = Object.entries(doc.resources);
  return (
    <table className="pol-table" aria-label="Colors">
      <thead><tr><th scope="col">Color</th><th scope="col">Labels holding it</th><th scope="col">Resource labels</th></tr></thead>
      <tbody>
        {doc.colors.map((c) => {
          const holders = labels.filter(([, l]) => l.colors.includes(c)).map(([n]) => n);
          const res = resources.filter(([, r]) => r.color === c).map(([n]) => n);
          return (
            <tr key={c} data-color={c}>
              <th scope="row"><span className="chip"><Swatch style={colorStyle(doc.colors, c)} />{c}</span></th>
              <td>{holders.length ? holders.map((n) => <span key={n} className="pol-tag">{n}</span>) : <span className="muted">no label</span>}</td>
              <td>{res.length ? res.map((n) => <span key={n} className="pol-tag">{n}</span>) : <span className="muted">—</span>}</td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

function LabelsPanel({ doc }: { doc: PolicyDoc }) {
  return (
    <table className="pol-table" aria-label="Labels">
      <thead><tr><th scope="col">Label</th><th scope="col">Colors</th><th scope="col">Wall types</th><th scope="col">When untrusted</th></tr></thead>
      <tbody>
        {Object.entries(doc.labels).map(([name, l]) => (
          <tr key={name} data-label={name}>
            <th scope="row"><span className="mono">{name}</span>{name === doc.host && <span className="pol-badge"> host label</span>}{l.from && <span className="muted"> (was {l.from})</span>}</th>
            <td>{l.colors.length ? l.colors.map((c) => <ColorChip key={c} color={c} />) : <span className="muted">no color</span>}</td>
            <td>{l.walls.length ? l.walls.map((w) => <span key={w} className="pol-tag">{w}</span>) : <span className="muted">—</span>}</td>
            <td>{l.onUntrusted === 'alert' ? <span>alert only</span> : <span>isolate{l.onUntrusted ? '' : <span className="muted"> (default)</span>}</span>}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function ConflictsPanel({ doc }: { doc: PolicyDoc }) {
  if (doc.walls === null) return <p className="muted">This policy has no wall types (no Chinese Wall component): it restricts no start.</p>;
  const sets = Object.entries(doc.conflicts);
  if (sets.length === 0) return <p className="muted">No conflict sets: wall types {doc.walls.join(', ')} never exclude each other.</p>;
  return (
    <ul className="pol-conflicts" aria-label="Conflict sets">
      {sets.map(([name, walls]) => (
        <li key={name} data-conflict={name}>
          <strong className="mono">{name}</strong>: never side by side on one host —{' '}
          {walls.map((w) => {
            const holders = Object.entries(doc.labels).filter(([, l]) => l.walls.includes(w)).map(([n]) => n);
            return <span key={w} className="pol-tag" title={holders.length ? `held by ${holders.join(', ')}` : 'held by no label'}>{w}{holders.length > 0 && <span className="muted"> ({holders.join(', ')})</span>}</span>;
          })}
        </li>
      ))}
    </ul>
  );
}

function ResourcesPanel({ doc }: { doc: PolicyDoc }) {
  const res = Object.entries(doc.resources);
  if (res.length === 0) return <p className="muted">No resource labels.</p>;
  return (
    <table className="pol-table" aria-label="Resource labels">
      <thead><tr><th scope="col">Resource label</th><th scope="col">Color</th></tr></thead>
      <tbody>{res.map(([n, r]) => <tr key={n}><th scope="row" className="mono">{n}</th><td><ColorChip color={r.color} /></td></tr>)}</tbody>
    </table>
  );
}

export function DraftList() {
  const { drafts, error } = useDrafts();
  return (
    <section className="panel" aria-labelledby="pol-drafts">
      <h2 id="pol-drafts">Drafts</h2>
      {error && <p role="alert" className="error">{error}</p>}
      {drafts === null ? <p className="muted">Loading drafts…</p> : drafts.length === 0 ? <p className="muted">No drafts.</p> : (
        <ul className="pol-list">
          {drafts.map((d) => (
            <li key={d.id}>
              <Link href={`/drafts/${encodeURIComponent(d.id)}`}>{d.name ? `${d.name} ${d.policyVersion}` : `draft ${d.id}`}</Link>{' '}
              <span className="muted">(draft {d.id}, {d.base === null ? 'no base' : `based on version ${d.base}`}, by {d.actor}, <Time at={d.updatedAt} />)</span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

export function Overview() {
  const { policy, loaded } = useFleet();
  const { can } = useSession();
  const [, navigate] = useLocation();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const admin = can('admin');

  async function newDraft() {
    setBusy(true);
    setError(null);
    try {
      const d = await post<Draft>('/api/v1/policy/drafts', { text: policy ? followUpText(policy.text) : EMPTY_POLICY });
      navigate(`/drafts/${encodeURIComponent(d.id)}`);
    } catch (e) {
      setError(errorText(e));
    } finally {
      setBusy(false);
    }
  }

  return (
    <>
      <section className="panel" aria-labelledby="pol-current">
        <h2 id="pol-current">Published policy</h2>
        {!loaded ? <p className="muted">Loading…</p> : policy === null ? <p>No policy has been published yet.</p> : (
          <dl className="pol-meta" data-version={policy.version}>
            <dt>Version</dt><dd><strong>v{policy.version}</strong></dd>
            <dt>Policy</dt><dd><span className="mono">{policy.doc.policy}</span> {policy.doc.version}{policy.doc.from && <span className="muted"> (updates {policy.doc.from.policy} {policy.doc.from.version})</span>}</dd>
            <dt>Change note</dt><dd>{policy.note || <span className="muted">none</span>}</dd>
            <dt>By</dt><dd>{policy.actor}</dd>
            <dt>At</dt><dd><Time at={policy.at} /></dd>
            <dt>Host label</dt><dd>{policy.doc.host === null ? <span className="muted">none (the policy restricts nothing)</span> : <span className="mono">{policy.doc.host}</span>}</dd>
          </dl>
        )}
        {admin && (
          <div className="row pol-actions">
            <button type="button" className="primary" onClick={() => void newDraft()} disabled={busy}>{policy ? 'New draft from this version' : 'New draft'}</button>
            <Link href="/import" className="pol-button">Import Xen ACM XML</Link>
          </div>
        )}
        {error && <p role="alert" className="error">{error}</p>}
      </section>
      {policy && (
        <>
          <section className="panel" aria-labelledby="pol-colors"><h2 id="pol-colors">Colors</h2><ColorsPanel doc={policy.doc} /></section>
          <section className="panel" aria-labelledby="pol-labels"><h2 id="pol-labels">Labels</h2><LabelsPanel doc={policy.doc} /></section>
          <div className="row">
            <section className="panel pol-col" aria-labelledby="pol-conf"><h2 id="pol-conf">Conflict sets</h2><ConflictsPanel doc={policy.doc} /></section>
            <section className="panel pol-col" aria-labelledby="pol-res"><h2 id="pol-res">Resource labels</h2><ResourcesPanel doc={policy.doc} /></section>
          </div>
        </>
      )}
      <DraftList />
    </>
  );
}
