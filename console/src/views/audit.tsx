/**
 * The audit timeline (`#/audit`): the hash-chained log newest first, a page at a time ("Load older"), filtered by
 * actor, action and subject (exact matches, on the controller), and searchable within what is loaded. While the
 * view is open, each new record the event stream announces is fetched and put on top (and announced).
 */
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { Link } from 'wouter';
import type { AuditRecordV1 } from '../../../src/api/types.ts';
import { ApiError, get } from '../api.ts';
import { onEvent, useFleet } from '../fleet.ts';
import { vmHref } from '../ui.tsx';
import { FilterForm, type Filters } from './audit/filters.tsx';
import { fieldOf, When } from './vm/when.tsx';
import './audit/audit.css';

export const AUDIT_PAGE = 50;

function query(f: Filters, extra: Record<string, string | number>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(extra)) q.set(k, String(v));
  if (f.actor) q.set('actor', f.actor);
  if (f.action) q.set('action', f.action);
  if (f.subject) q.set('subject', f.subject);
  return `/api/v1/audit?${q}`;
}

/** One line of a record's details, for the summary of its <details>. */
function summary(details: unknown): string {
  if (details === null || details === undefined) return '';
  const s = typeof details === 'object'
    ? Object.entries(details as Record<string, unknown>).map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' · ')
    : JSON.stringify(details);
  return s.length > 120 ? `${s.slice(0, 119)}…` : s;
}

function Subject({ subject }: { subject: string }) {
  if (subject.startsWith('vm/') && subject.length > 3) return <Link href={vmHref(subject.slice(3))}>{subject}</Link>;
  return <>{subject}</>;
}

function Row({ r, fresh }: { r: AuditRecordV1; fresh: boolean }) {
  const text = summary(r.details);
  return (
    <tr className={fresh ? 'fresh' : undefined} data-seq={r.seq}>
      <td className="num">{r.seq}</td>
      <td className="nowrap"><When at={r.at} /></td>
      <td className="au-actor">{r.actor}</td>
      <td className="au-action"><code>{r.action}</code></td>
      <td className="au-subject"><Subject subject={r.subject} /></td>
      <td className="au-details">
        {r.details === null || r.details === undefined ? <span className="muted">—</span> : (
          <details>
            <summary>{text || 'details'}</summary>
            <pre>{JSON.stringify(r.details, null, 2)}</pre>
            <p className="muted au-hash">hash <code>{r.hash}</code></p>
          </details>
        )}
      </td>
    </tr>
  );
}

export function AuditView() {
  const fleet = useFleet();
  const [filters, setFilters] = useState<Filters>({ actor: '', action: '', subject: '' });
  const [records, setRecords] = useState<AuditRecordV1[] | null>(null);
  const [more, setMore] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [fieldErrors, setFieldErrors] = useState<Partial<Filters>>({});
  const [find, setFind] = useState('');
  const [fresh, setFresh] = useState<Set<number>>(new Set());
  const [announce, setAnnounce] = useState('');
  // what the live part needs without re-subscribing: the newest seq shown, and the filters of the loaded list
  const newest = useRef<number | null>(null);
  const loadedFor = useRef<Filters | null>(null);
  const generation = useRef(0);
  const pulling = useRef<ReturnType<typeof setTimeout> | null>(null);

  useEffect(() => { document.title = 'Audit · hueguard'; }, []);

  // the first page, whenever the filters change
  useEffect(() => {
    const mine = ++generation.current;
    setBusy(true);
    setRecords(null);
    setFresh(new Set());
    loadedFor.current = null;
    newest.current = null;
    get<AuditRecordV1[]>(query(filters, { order: 'desc', limit: AUDIT_PAGE })).then((rows) => {
      if (mine !== generation.current) return;
      setRecords(rows);
      setMore(rows.length === AUDIT_PAGE);
      setError(null);
      setFieldErrors({});
      newest.current = rows.length > 0 ? rows[0].seq : 0;
      loadedFor.current = filters;
    }, (e) => {
      if (mine !== generation.current) return;
      const f = e instanceof ApiError ? fieldOf(e.field) : undefined;
      if (f === 'actor' || f === 'action' || f === 'subject') setFieldErrors({ [f]: (e as Error).message });
      else setError((e as Error).message);
      setRecords([]);
    }).finally(() => { if (mine === generation.current) setBusy(false); });
  }, [filters]);

  async function older() {
    if (!records || records.length === 0) return;
    const mine = generation.current;
    setBusy(true);
    try {
      const rows = await get<AuditRecordV1[]>(query(filters, { order: 'desc', limit: AUDIT_PAGE, beforeSeq: records[records.length - 1].seq }));
      if (mine !== generation.current) return;
      setRecords((prev) => [...(prev ?? []), ...rows]);
      setMore(rows.length === AUDIT_PAGE);
    } catch (e) {
      if (mine === generation.current) setError((e as Error).message);
    } finally {
      if (mine === generation.current) setBusy(false);
    }
  }

  // the records after the newest shown (with the same filters), put on top
  const pullNew = useCallback(async () => {
    const f = loadedFor.current;
    const after = newest.current;
    if (f === null || after === null) return; // the first page is still on its way: it will hold them
    const mine = generation.current;
    try {
      const rows = await get<AuditRecordV1[]>(query(f, { order: 'asc', afterSeq: after, limit: 1000 }));
      if (mine !== generation.current || rows.length === 0) return;
      const top = rows.filter((r) => r.seq > (newest.current ?? 0)).reverse();
      if (top.length === 0) return;
      newest.current = top[0].seq;
      setRecords((prev) => [...top, ...(prev ?? [])]);
      setFresh(new Set(top.map((r) => r.seq)));
      setAnnounce(top.length === 1 ? `New audit record: ${top[0].action} ${top[0].subject} by ${top[0].actor}` : `${top.length} new audit records`);
    } catch { /* the next event, or reconnection, tries again */ }
  }, []);

  const schedule = useCallback(() => {
    if (pulling.current !== null) return;
    pulling.current = setTimeout(() => { pulling.current = null; void pullNew(); }, 50);
  }, [pullNew]);

  useEffect(() => {
    const off = onEvent((e) => {
      if (e.kind !== 'audit') return;
      // "SEQ ACTION SUBJECT": skip what the filters would not show anyway
      const m = /^(\d+) (\S+) ([\s\S]*)$/.exec(e.subject);
      const f = loadedFor.current;
      if (m && f) {
        if (newest.current !== null && Number(m[1]) <= newest.current) return;
        if (f.action && m[2] !== f.action) return;
        if (f.subject && m[3] !== f.subject) return;
      }
      schedule();
    });
    return () => {
      off();
      if (pulling.current !== null) clearTimeout(pulling.current);
      pulling.current = null;
    };
  }, [schedule]);

  // what happened while the event stream was down
  useEffect(() => { if (fleet.live) schedule(); }, [fleet.live, schedule]);

  const shown = useMemo(() => {
    if (records === null) return null;
    const needle = find.trim().toLowerCase();
    if (needle === '') return records;
    return records.filter((r) => `${r.seq}\n${r.actor}\n${r.action}\n${r.subject}\n${JSON.stringify(r.details)}`.toLowerCase().includes(needle));
  }, [records, find]);

  const knownActions = useMemo(() => [...new Set((records ?? []).map((r) => r.action))], [records]);

  return (
    <div className="audit">
      <h1>Audit</h1>
      <FilterForm
        applied={filters}
        errors={fieldErrors}
        knownActions={knownActions}
        onApply={(f) => setFilters(f)}
      />
      <div className="au-find">
        <label htmlFor="au-find">Find in the loaded records</label>
        <input id="au-find" type="search" value={find} onChange={(e) => setFind(e.target.value)} placeholder="any text" />
        {records !== null && <span className="muted" data-testid="au-count">{shown!.length === records.length ? `${records.length} records loaded` : `${shown!.length} of ${records.length} loaded records`}</span>}
      </div>
      <p role="status" aria-live="polite" className="au-announce" data-testid="au-announce">{announce}</p>
      {error && <p role="alert" className="error">The controller answered: {error}</p>}
      {shown === null ? <p className="muted">Loading…</p> : shown.length === 0 ? <p className="muted">No records{find.trim() || filters.actor || filters.action || filters.subject ? ' match' : ''}.</p> : (
        <table className="au-table">
          <caption className="sr-only">Audit records, newest first</caption>
          <thead>
            <tr><th scope="col">#</th><th scope="col">When</th><th scope="col">Actor</th><th scope="col">Action</th><th scope="col">Subject</th><th scope="col">Details</th></tr>
          </thead>
          <tbody>
            {shown.map((r) => <Row key={r.seq} r={r} fresh={fresh.has(r.seq)} />)}
          </tbody>
        </table>
      )}
      {records !== null && (more
        ? <button type="button" onClick={() => void older()} disabled={busy}>{busy ? 'Loading…' : 'Load older'}</button>
        : records.length > 0 && <p className="muted">The first record is loaded: nothing older.</p>)}
    </div>
  );
}
