/**
 * "May these two VMs talk?": the policy's answer for their labels (the colors they share, or none) and whether they
 * may now (enforcement fails closed: an untrusted or unverified VM holds no color). Asked again by itself when
 * either VM's trust, label or colors change while the answer is shown.
 */
import { useState, type FormEvent } from 'react';
import { Link } from 'wouter';
import { useFleet, type VmView } from '../../fleet.ts';
import { ColorChips, TrustBadge, vmHref } from '../../ui.tsx';
import { Field, pickVm, Verdict, VmInput } from './fields.tsx';
import { useLiveQuestion } from './live-question.ts';
import type { ShareAnswer } from './types.ts';

type Errors = { a?: string; b?: string; form?: string };

const vmKey = (v: VmView | undefined) => v ? `${v.trust}|${v.label ?? ''}|${v.effectiveColors.join(',')}|${v.isolated ?? ''}` : '-';

export function ShareQuestion() {
  const fleet = useFleet();
  const [a, setA] = useState('');
  const [b, setB] = useState('');
  // the answer follows the fleet: asked again when either VM (or the policy) changes
  const { answer, errors, setErrors, busy, ask } = useLiveQuestion<{ a: string; b: string }, ShareAnswer, Errors>({
    path: '/api/v1/whatif/share',
    errorsOf: (msg, err, q) => {
      const d = err?.details as { vm?: unknown } | null | undefined;
      if (err?.field === 'body.a' || (d?.vm !== undefined && d.vm === q.a)) return { a: msg };
      if (err?.field === 'body.b' || (d?.vm !== undefined && d.vm === q.b)) return { b: msg };
      return { form: msg };
    },
    follow: (q) => `${fleet.policy?.version ?? 0}|${vmKey(fleet.byName.get(q.a))}|${vmKey(fleet.byName.get(q.b))}`,
    followDeps: [fleet.revision],
  });

  function submit(e: FormEvent) {
    e.preventDefault();
    const pa = pickVm(a, fleet.byName);
    const pb = pickVm(b, fleet.byName);
    const next: Errors = {};
    if ('error' in pa) next.a = pa.error;
    if ('error' in pb) next.b = pb.error;
    else if ('vm' in pa && pa.vm === pb.vm) next.b = 'Pick a second VM, not the same one.';
    setErrors(next);
    if (next.a || next.b) {
      document.getElementById(next.a ? 'wi-share-a' : 'wi-share-b')?.focus();
      return;
    }
    void ask({ a: (pa as { vm: string }).vm, b: (pb as { vm: string }).vm });
  }

  return (
    <section className="panel wi-question" aria-labelledby="wi-share-title">
      <h2 id="wi-share-title">May these two VMs talk?</h2>
      <form onSubmit={submit} noValidate className="wi-form" aria-labelledby="wi-share-title">
        <Field id="wi-share-a" label="First VM" error={errors.a}>
          <VmInput id="wi-share-a" value={a} onChange={(v) => { setA(v); if (errors.a) setErrors({ ...errors, a: undefined }); }} error={errors.a} />
        </Field>
        <Field id="wi-share-b" label="Second VM" error={errors.b}>
          <VmInput id="wi-share-b" value={b} onChange={(v) => { setB(v); if (errors.b) setErrors({ ...errors, b: undefined }); }} error={errors.b} />
        </Field>
        <button type="submit" className="primary" disabled={busy}>{busy ? 'Asking…' : 'Ask'}</button>
      </form>
      {errors.form && <p role="alert" className="error">{errors.form}</p>}
      <div aria-live="polite" className="wi-answer-slot">
        {answer && <ShareResult a={answer.q.a} b={answer.q.b} res={answer.res} />}
      </div>
    </section>
  );
}

function ShareResult({ a, b, res }: { a: string; b: string; res: ShareAnswer }) {
  return (
    <div className="wi-answer" data-testid="share-answer" aria-label={`Answer for ${a} and ${b}`} role="region">
      <Verdict ok={res.allow}>
        {res.allow ? 'Allowed' : 'Not allowed'} by the policy: <strong>{a}</strong> and <strong>{b}</strong>
      </Verdict>
      <p data-testid="share-colors">
        {res.reason === 'no_ste_component' ? 'The policy has no colors: it restricts no sharing.'
          : res.reason === 'unknown_label' ? <>Their labels: <span className="muted">the policy cannot judge (see below)</span></>
          : res.colors.length > 0 ? <>Matching colors: <ColorChips colors={res.colors} /></>
          : <>Matching colors: <strong>no common color</strong></>}
      </p>
      {res.allow && (
        <Verdict ok={res.now}>
          {res.now ? <>They may talk <strong>now</strong>{res.nowColors.length > 0 && <>, through <ColorChips colors={res.nowColors} /></>}</> : <>But <strong>not now</strong></>}
        </Verdict>
      )}
      <p className="wi-message" data-testid="share-message">{res.message}</p>
      <table className="wi-vms">
        <thead><tr><th scope="col">VM</th><th scope="col">Host</th><th scope="col">Label</th><th scope="col">Trust</th><th scope="col">Effective colors now</th></tr></thead>
        <tbody>
          {res.vms.map((v) => (
            <tr key={v.name}>
              <td><Link href={vmHref(v.name)}>{v.name}</Link></td>
              <td>{v.host ?? <span className="muted">none</span>}</td>
              <td>{v.label ?? <span className="muted">(unlabeled)</span>}</td>
              <td><TrustBadge state={v.trust} /></td>
              <td><ColorChips colors={v.effectiveColors} isolated={v.isolated} /></td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
