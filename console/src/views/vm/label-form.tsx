/**
 * Operators: give the VM another label of the published policy, with a reason. A running VM takes it only if it
 * could start with it where it runs; the controller's refusal (409, with the admission answer) is shown next to
 * the label.
 */
import { useState, type FormEvent } from 'react';
import type { VmLabelRequestV1 } from '../../../../src/api/types.ts';
import { ApiError, put, seg } from '../../api.ts';
import { useFleet, type VmView } from '../../fleet.ts';
import { labelColors } from '../../policy-doc.ts';
import { ColorChips, FieldError } from '../../ui.tsx';
import { fieldOf } from './when.tsx';

const UNLABELED = '';

export function LabelForm({ vm }: { vm: VmView }) {
  const { policy } = useFleet();
  const [label, setLabel] = useState<string>(vm.label ?? UNLABELED);
  const [reason, setReason] = useState('');
  const [errors, setErrors] = useState<{ label?: string; reason?: string; form?: string }>({});
  const [done, setDone] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  if (policy === null) return null;
  const labels = Object.keys(policy.doc.labels).filter((l) => l !== '__UNLABELED__').sort();
  if (vm.label !== null && !labels.includes(vm.label)) labels.unshift(vm.label);
  const chosen = label === UNLABELED ? null : label;

  async function submit(e: FormEvent) {
    e.preventDefault();
    setDone(null);
    if (chosen === vm.label) {
      setErrors({ label: `It already has ${chosen === null ? 'no label' : `label “${chosen}”`}: choose another.` });
      return;
    }
    if (reason.length > 4096) {
      setErrors({ reason: 'Keep the reason under 4096 characters.' });
      return;
    }
    setErrors({});
    setBusy(true);
    try {
      await put(`/api/v1/vms/${seg(vm.name)}/label`, { label: chosen, reason } satisfies VmLabelRequestV1);
      setDone(`Label changed to ${chosen === null ? '(unlabeled)' : `“${chosen}”`}.`);
      setReason('');
    } catch (err) {
      const msg = err instanceof ApiError ? err.message : 'The controller cannot be reached.';
      const f = err instanceof ApiError ? fieldOf(err.field) : undefined;
      if (f === 'reason') setErrors({ reason: msg });
      else if (f === 'label' || (err instanceof ApiError && (err.code === 'label_conflict' || err.code === 'unknown_label'))) setErrors({ label: msg });
      else setErrors({ form: msg });
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="panel label-form" onSubmit={submit} noValidate aria-labelledby="vm-label-title">
      <h2 id="vm-label-title">Change label</h2>
      <label htmlFor="vm-new-label">Label</label>
      <select
        id="vm-new-label" value={label} onChange={(e) => { setLabel(e.target.value); setErrors({}); setDone(null); }}
        aria-invalid={errors.label ? true : undefined} aria-describedby={errors.label ? 'vm-new-label-error' : 'vm-new-label-colors'}
      >
        <option value={UNLABELED}>(unlabeled)</option>
        {labels.map((l) => <option key={l} value={l}>{l}</option>)}
      </select>
      <FieldError id="vm-new-label-error" message={errors.label} />
      <p id="vm-new-label-colors" className="muted">Colors of this label: <ColorChips colors={labelColors(policy.doc, chosen)} /></p>
      <label htmlFor="vm-label-reason">Reason (kept in the audit log)</label>
      <input
        id="vm-label-reason" value={reason} onChange={(e) => setReason(e.target.value)}
        aria-invalid={errors.reason ? true : undefined} aria-describedby={errors.reason ? 'vm-label-reason-error' : undefined}
      />
      <FieldError id="vm-label-reason-error" message={errors.reason} />
      {errors.form && <p role="alert" className="error">{errors.form}</p>}
      {done && <p role="status" className="notice">{done}</p>}
      <button type="submit" disabled={busy}>{busy ? 'Changing…' : 'Change label'}</button>
    </form>
  );
}
