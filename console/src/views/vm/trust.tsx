/**
 * The trust parts of a VM's page: its state (since when, why), its last evidence with each failing entry (path,
 * expected and found digests), its history of transitions (newest first), and for operators the re-admission of
 * an untrusted VM. All of it re-read whenever the controller says the VM's trust changed (see `useTrust`).
 */
import { useCallback, useEffect, useRef, useState, type FormEvent } from 'react';
import type { EntryFailureV1, ReadmitRequestV1, TrustRecordV1, TrustTransitionV1, VmTrustV1 } from '../../../../src/api/types.ts';
import { ApiError, get, post, seg } from '../../api.ts';
import { onEvent } from '../../fleet.ts';
import { FieldError, TrustBadge } from '../../ui.tsx';
import { fieldOf, When } from './when.tsx';

export interface TrustData {
  trust: VmTrustV1 | null;
  history: TrustTransitionV1[] | null;
  error: string | null;
  reload: () => Promise<void>;
}

/**
 * The VM's trust and history, read again on every trust event about it and whenever `key` changes (the fleet's
 * picture of the VM: its trust state and colors). The answer of the latest read wins.
 */
export function useTrust(name: string, key: string): TrustData {
  const [trust, setTrust] = useState<VmTrustV1 | null>(null);
  const [history, setHistory] = useState<TrustTransitionV1[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const latest = useRef(0);
  const reload = useCallback(async () => {
    const mine = ++latest.current;
    try {
      const [t, h] = await Promise.all([
        get<VmTrustV1>(`/api/v1/vms/${seg(name)}/trust`),
        get<TrustTransitionV1[]>(`/api/v1/vms/${seg(name)}/trust/history`),
      ]);
      if (mine !== latest.current) return;
      setTrust(t);
      setHistory(h);
      setError(null);
    } catch (e) {
      if (mine === latest.current) setError((e as Error).message);
    }
  }, [name]);
  useEffect(() => { void reload(); }, [reload, key]);
  useEffect(() => onEvent((e) => {
    if (e.kind === 'trust' && e.subject === `vm/${name}`) void reload();
  }), [reload, name]);
  return { trust, history, error, reload };
}

function Digest({ hex }: { hex: string }) {
  return <code className="digest">{hex}</code>;
}

export function FailureTable({ failures }: { failures: EntryFailureV1[] }) {
  return (
    <table className="failures">
      <caption>Failing entries of the last evidence</caption>
      <thead>
        <tr><th scope="col">Entry</th><th scope="col">Path</th><th scope="col">Status</th><th scope="col">Expected</th><th scope="col">Found</th><th scope="col">Algorithm</th></tr>
      </thead>
      <tbody>
        {failures.map((f, i) => (
          <tr key={`${f.entry}-${i}`} data-entry={f.entry}>
            <td>#{f.entry}</td>
            <td><code className="path">{f.path}</code></td>
            <td>{f.status}</td>
            <td>{f.expected.length === 0
              ? <span className="muted">not in the fingerprint</span>
              : <ul className="digests">{f.expected.map((d) => <li key={d}><Digest hex={d} /></li>)}</ul>}</td>
            <td>{f.found ? <Digest hex={f.found} /> : <span className="muted">none</span>}</td>
            <td>{f.alg}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function TrustPanel({ data, notice }: { data: TrustData; notice: string | null }) {
  const { trust, error } = data;
  return (
    <section className="panel" aria-labelledby="vm-trust-title">
      <h2 id="vm-trust-title">Trust</h2>
      {error && <p role="alert" className="error">Could not read the VM's trust: {error}</p>}
      {notice && <p role="status" className="notice">{notice}</p>}
      {trust === null ? (error ? null : <p className="muted">Loading…</p>) : (
        <>
          <dl className="facts">
            <dt>State</dt><dd data-testid="trust-state"><TrustBadge state={trust.state} /> since <When at={trust.since} /></dd>
            <dt>Why</dt><dd className="reason">{trust.reason || <span className="muted">—</span>}</dd>
            <dt>Last good evidence</dt><dd><When at={trust.lastEvidence} /></dd>
            <dt>Last evidence</dt>
            <dd>
              {trust.evidence === null ? <span className="muted">none received</span> : (
                <>
                  <When at={trust.evidence.at} />, {trust.evidence.entries} {trust.evidence.entries === 1 ? 'entry' : 'entries'}:{' '}
                  {trust.evidence.ok
                    ? <span className="allow"><span aria-hidden="true">✔ </span>passed appraisal</span>
                    : <span className="deny"><span aria-hidden="true">✘ </span>failed appraisal</span>}
                </>
              )}
            </dd>
          </dl>
          {trust.evidence && trust.evidence.failures.length > 0 && <FailureTable failures={trust.evidence.failures} />}
        </>
      )}
    </section>
  );
}

export function HistoryTable({ history }: { history: TrustTransitionV1[] | null }) {
  return (
    <section className="panel" aria-labelledby="vm-history-title">
      <h2 id="vm-history-title">Trust history</h2>
      {history === null ? <p className="muted">Loading…</p> : history.length === 0 ? <p className="muted">No transitions yet.</p> : (
        <table className="history">
          <thead><tr><th scope="col">From → to</th><th scope="col">When</th><th scope="col">Reason</th><th scope="col">Actor</th></tr></thead>
          <tbody>
            {history.slice().reverse().map((t, i) => (
              <tr key={`${t.at}-${i}`}>
                <td className="nowrap"><TrustBadge state={t.from} /> <span aria-label="to">→</span> <TrustBadge state={t.to} /></td>
                <td className="nowrap"><When at={t.at} /></td>
                <td className="reason">{t.reason}</td>
                <td>{t.actor}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

const MODES: { value: ReadmitRequestV1['mode']; title: string; text: string }[] = [
  {
    value: 'baseline',
    title: 'Baseline: the file was restored',
    text: 'The measurements received so far become history and the fingerprint stays: a file measured again with the bad digest fails again.',
  },
  {
    value: 'reenroll',
    title: 'Re-enroll: the change was an approved update',
    text: 'The verifier starts over without a fingerprint: the agent sends the whole list again, and it becomes the new fingerprint, the changed file included.',
  },
];

/** Operators: an untrusted VM back to unverified, with a reason (trusted again at its next good evidence). */
export function ReadmitForm({ name, onDone }: { name: string; onDone: (r: TrustRecordV1) => void }) {
  const [reason, setReason] = useState('');
  const [mode, setMode] = useState<ReadmitRequestV1['mode']>('baseline');
  const [errors, setErrors] = useState<{ reason?: string; mode?: string; form?: string }>({});
  const [busy, setBusy] = useState(false);
  const reasonRef = useRef<HTMLTextAreaElement>(null);

  async function submit(e: FormEvent) {
    e.preventDefault();
    if (reason.trim() === '') {
      setErrors({ reason: 'Give a reason: it is kept in the trust history and the audit log.' });
      reasonRef.current?.focus();
      return;
    }
    setErrors({});
    setBusy(true);
    try {
      const r = await post<TrustRecordV1>(`/api/v1/vms/${seg(name)}/readmit`, { reason, mode } satisfies ReadmitRequestV1);
      setReason('');
      onDone(r);
    } catch (err) {
      const msg = err instanceof ApiError ? err.message : 'The controller cannot be reached.';
      const f = err instanceof ApiError ? fieldOf(err.field) : undefined;
      if (f === 'reason') setErrors({ reason: msg });
      else if (f === 'mode') setErrors({ mode: msg });
      else setErrors({ form: msg });
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="panel readmit" onSubmit={submit} noValidate aria-labelledby="vm-readmit-title">
      <h2 id="vm-readmit-title">Re-admit</h2>
      <p className="muted">The VM becomes unverified now, and trusted again at its next good evidence.</p>
      <label htmlFor="readmit-reason">Reason</label>
      <textarea
        id="readmit-reason" ref={reasonRef} rows={2} value={reason} maxLength={4096}
        onChange={(e) => { setReason(e.target.value); if (errors.reason) setErrors({ ...errors, reason: undefined }); }}
        aria-invalid={errors.reason ? true : undefined} aria-describedby={errors.reason ? 'readmit-reason-error' : undefined} required
      />
      <FieldError id="readmit-reason-error" message={errors.reason} />
      <fieldset aria-describedby={errors.mode ? 'readmit-mode-error' : undefined}>
        <legend>Mode</legend>
        {MODES.map((m) => (
          <label key={m.value} className="mode">
            <input type="radio" name="readmit-mode" value={m.value} checked={mode === m.value} onChange={() => setMode(m.value)} />
            <span><strong>{m.title}</strong><br /><span className="muted">{m.text}</span></span>
          </label>
        ))}
      </fieldset>
      <FieldError id="readmit-mode-error" message={errors.mode} />
      {errors.form && <p role="alert" className="error">{errors.form}</p>}
      <button type="submit" className="primary" disabled={busy}>{busy ? 'Re-admitting…' : 'Re-admit'}</button>
    </form>
  );
}
