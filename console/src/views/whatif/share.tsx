/**
 * "May these two VMs talk?": the policy's answer for their labels (the colors they share, or none) and whether they
 * may now (enforcement fails closed: an untrusted or unverified VM holds no color). Asked again by itself when
 * either VM's trust, label or colors change while the answer is shown.
 */
import { useEffect, useRef, useState, type FormEvent } from 'react';
import { Link } from 'wouter';
import { ApiError, post } from '../../api.ts';
import { useFleet, type VmView } from '../../fleet.ts';
import { ColorChips, TrustBadge, vmHref } from '../../ui.tsx';
import { Field, pickVm, Verdict, VmInput } from './fields.tsx';
import type { ShareAnswer } from './types.ts';

type Errors = { a?: string; b?: string; form?: string };

const vmKey = (v: VmView | undefined) => v ? `${v.trust}|${v.label ?? ''}|${v.effectiveColors.join(',')}|${v.isolated ?? ''}` : '-';

export function ShareQuestion() {
  const fleet = useFleet();
  const [a, setA] = useState('');
  const [b, setB] = useState('');
  const [errors, setErrors] = useState<Errors>({});
  const [busy, setBusy] = useState(false);
  const [answer, setAnswer] = useState<{ a: string; b: string; res: ShareAnswer } | null>(null);
  const asked = useRef(0);

  async function ask(x: string, y: string, quiet = false) {
    const mine = ++asked.current;
    if (!quiet) setBusy(true);
    try {
      const res = await post<ShareAnswer>('/api/v1/whatif/share', { a: x, b: y });
      if (mine === asked.current) { setAnswer({ a: x, b: y, res }); setErrors({}); }
    } catch (err) {
      if (mine !== asked.current) return;
      const msg = err instanceof ApiError ? err.message : 'The controller cannot be reached.';
      const d = err instanceof ApiError ? (err.details as { vm?: unknown; field?: unknown } | null) : null;
      const f = err instanceof ApiError ? err.field : undefined;
      if (f === 'body.a' || (d?.vm !== undefined && d.vm === x)) setErrors({ a: msg });
      else if (f === 'body.b' || (d?.vm !== undefined && d.vm === y)) setErrors({ b: msg });
      else setErrors({ form: msg });
      if (!quiet) setAnswer(null);
    } finally {
      if (!quiet) setBusy(false);
    }
  }

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
    void ask((pa as { vm: string }).vm, (pb as { vm: string }).vm);
  }

  // the answer follows the fleet: ask again when either VM (or the policy) changes
  const key = answer ? `${fleet.policy?.version ?? 0}|${vmKey(fleet.byName.get(answer.a))}|${vmKey(fleet.byName.get(answer.b))}` : '';
  const lastKey = useRef('');
  useEffect(() => {
    if (!answer) { lastKey.current = ''; return; }
    if (lastKey.current !== '' && lastKey.current !== key) void ask(answer.a, answer.b, true);
    lastKey.current = key;
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key]);

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
        {answer && <ShareResult a={answer.a} b={answer.b} res={answer.res} />}
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
