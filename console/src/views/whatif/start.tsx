/**
 * "May this VM start on this host now?": the admission answer without starting anything (nothing is recorded):
 * host authorization (the colors the host's label lacks), the Chinese Wall (each conflict set held on the host, by
 * which running label and which running VMs), and each disk and network. Asked again by itself when the VMs on
 * that host, the VM or the policy change while the answer is shown.
 */
import { useMemo, useState, type FormEvent } from 'react';
import { Link } from 'wouter';
import { useFleet } from '../../fleet.ts';
import { labelColors } from '../../policy-doc.ts';
import { ColorChips, vmHref } from '../../ui.tsx';
import { Field, pickVm, Verdict, VmInput } from './fields.tsx';
import { useLiveQuestion } from './live-question.ts';
import type { StartAnswer } from './types.ts';

type Errors = { vm?: string; host?: string; form?: string };

const REASONS: Record<string, string> = {
  allowed: 'allowed',
  unknown_label: 'its label is not in the policy',
  unlabeled: 'it is unlabeled',
  host_label_unknown: 'the host’s label is not in the policy',
  not_authorized: 'the host is not authorized for its colors',
  conflict_set_occupied: 'a conflict set is held on the host',
  unknown_resource: 'a resource label is not in the policy',
  unlabeled_resource: 'a resource is unlabeled',
  resource_forbidden: 'a resource’s color is not its own',
};

export function StartQuestion() {
  const fleet = useFleet();
  const [vm, setVm] = useState('');
  const [host, setHost] = useState('');
  const hosts = useMemo(() => fleet.hosts.map((h) => h.name).sort(), [fleet.hosts]);
  // the answer follows the fleet: the VMs on that host (who runs, with which label), the VM itself, the policy
  const { answer, errors, setErrors, busy, ask } = useLiveQuestion<{ vm: string; host: string }, StartAnswer, Errors>({
    path: '/api/v1/whatif/start',
    errorsOf: (msg, err) => {
      const d = err?.details as { vm?: unknown; host?: unknown } | null | undefined;
      if (err?.field === 'body.vm' || d?.vm !== undefined) return { vm: msg };
      if (err?.field === 'body.host' || d?.host !== undefined) return { host: msg };
      return { form: msg };
    },
    follow: (q) => {
      const on = fleet.vms.filter((v) => v.host === q.host || v.name === q.vm).map((v) => `${v.name}:${v.label ?? ''}:${v.running ? 1 : 0}:${v.host ?? ''}`);
      return `${fleet.policy?.version ?? 0}|${fleet.hosts.find((h) => h.name === q.host)?.label ?? ''}|${on.join(',')}`;
    },
    followDeps: [fleet.vms, fleet.hosts, fleet.policy],
  });

  function submit(e: FormEvent) {
    e.preventDefault();
    const pv = pickVm(vm, fleet.byName);
    const next: Errors = {};
    if ('error' in pv) next.vm = pv.error;
    if (host === '') next.host = 'Pick a host.';
    else if (!hosts.includes(host)) next.host = `No host named “${host}” in the fleet.`;
    setErrors(next);
    if (next.vm || next.host) {
      document.getElementById(next.vm ? 'wi-start-vm' : 'wi-start-host')?.focus();
      return;
    }
    void ask({ vm: (pv as { vm: string }).vm, host });
  }

  return (
    <section className="panel wi-question" aria-labelledby="wi-start-title">
      <h2 id="wi-start-title">May this VM start on this host now?</h2>
      <form onSubmit={submit} noValidate className="wi-form" aria-labelledby="wi-start-title">
        <Field id="wi-start-vm" label="VM" error={errors.vm}>
          <VmInput id="wi-start-vm" value={vm} onChange={(v) => { setVm(v); if (errors.vm) setErrors({ ...errors, vm: undefined }); }} error={errors.vm} />
        </Field>
        <Field id="wi-start-host" label="Host" error={errors.host}>
          <select
            id="wi-start-host" value={host} onChange={(e) => { setHost(e.target.value); if (errors.host) setErrors({ ...errors, host: undefined }); }}
            aria-invalid={errors.host ? true : undefined} aria-describedby={errors.host ? 'wi-start-host-error' : undefined}
          >
            <option value="">Choose a host…</option>
            {hosts.map((h) => <option key={h} value={h}>{h}</option>)}
          </select>
        </Field>
        <button type="submit" className="primary" disabled={busy}>{busy ? 'Asking…' : 'Ask'}</button>
      </form>
      {errors.form && <p role="alert" className="error">{errors.form}</p>}
      <div aria-live="polite" className="wi-answer-slot">
        {answer && <StartResult vm={answer.q.vm} host={answer.q.host} res={answer.res} />}
      </div>
    </section>
  );
}

function StartResult({ vm, host, res }: { vm: string; host: string; res: StartAnswer }) {
  const { policy } = useFleet();
  const d = res.details;
  return (
    <div className="wi-answer" data-testid="start-answer" role="region" aria-label={`Answer for ${vm} on ${host}`}>
      <Verdict ok={res.allow}>
        {res.allow ? 'May start' : 'May not start'}: <strong>{vm}</strong> on <strong>{host}</strong> now
        {!res.allow && <> — {REASONS[res.reason] ?? res.reason}</>}
      </Verdict>
      <p className="wi-message" data-testid="start-message">{d.message}</p>
      <dl className="wi-facts">
        <dt>VM’s label</dt>
        <dd>{d.label ?? <span className="muted">(unlabeled)</span>} {d.label !== null && <ColorChips colors={labelColors(policy?.doc ?? null, d.label)} />}</dd>
        <dt>Host’s label</dt>
        <dd>{d.hostLabel ?? <span className="muted">none</span>}</dd>
        {d.authorized && (
          <>
            <dt>Host authorization</dt>
            <dd data-testid="start-authorized">
              {d.authorized.allow
                ? <span className="allow"><span aria-hidden="true">✔ </span>the host’s label holds every color of the VM’s</span>
                : <span className="deny"><span aria-hidden="true">✘ </span>the host’s label lacks <ColorChips colors={d.authorized.missing} /></span>}
            </dd>
          </>
        )}
        {d.start && (
          <>
            <dt>Conflict sets</dt>
            <dd data-testid="start-conflicts">
              {d.start.allow
                ? <span className="allow"><span aria-hidden="true">✔ </span>{d.start.reason === 'no_chwall_component' ? 'the policy has no conflict sets' : 'no conflict set stands in the way'}</span>
                : (
                  <ul className="wi-standing">
                    {(d.standing ?? d.start.blockers.map((x) => ({ conflictSet: x.conflictSet, runningLabel: x.runningLabel, vms: [] as string[] }))).map((s, i) => (
                      <li key={`${s.conflictSet}-${s.runningLabel}-${i}`} data-conflict-set={s.conflictSet}>
                        <span className="deny"><span aria-hidden="true">✘ </span>conflict set <strong>{s.conflictSet}</strong></span> is held by running label <strong>{s.runningLabel}</strong>
                        {s.vms.length > 0 && (
                          <>
                            {' '}— in the way:{' '}
                            {s.vms.map((n, j) => (
                              <span key={`${n}-${j}`}>
                                {j > 0 && ', '}
                                {n === 'host' ? <em>the host’s own label</em> : <Link href={vmHref(n)}>{n}</Link>}
                              </span>
                            ))}
                          </>
                        )}
                      </li>
                    ))}
                  </ul>
                )}
            </dd>
          </>
        )}
        {d.running && (
          <>
            <dt>Labels on the host</dt>
            <dd className="muted">{d.running.length === 0 ? 'none' : d.running.join(', ')}</dd>
          </>
        )}
      </dl>
      {d.resources.length > 0 && (
        <table className="wi-resources">
          <caption>Its disks and networks</caption>
          <thead><tr><th scope="col">Kind</th><th scope="col">Id</th><th scope="col">Resource label</th><th scope="col">Answer</th></tr></thead>
          <tbody>
            {d.resources.map((r, i) => (
              <tr key={`${r.kind}/${r.id}/${i}`}>
                <td>{r.kind}</td>
                <td><code className="wi-id">{r.id}</code></td>
                <td>{r.label ?? <span className="muted">unlabeled</span>}{r.answer && <> <ColorChips colors={[r.answer.color]} /></>}</td>
                {r.allow || r.reason
                  ? <td className={r.allow ? 'allow' : 'deny'}><span aria-hidden="true">{r.allow ? '✔ ' : '✘ '}</span>{r.allow ? 'may use' : `refused: ${REASONS[r.reason!] ?? r.reason}`}</td>
                  : <td className="muted">not checked</td>}
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
