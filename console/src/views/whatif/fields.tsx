/**
 * The pickers of the what-if questions: a VM by name (typed, with the fleet's names offered by a datalist) and a
 * host (a select). Checked before anything is sent: the VM must be one the fleet holds.
 */
import type { ReactNode } from 'react';
import type { VmView } from '../../fleet.ts';
import { FieldError } from '../../ui.tsx';

export const VM_LIST = 'whatif-vm-names';

/** The fleet's VM names, offered to every VM field of the view (`list={VM_LIST}`). */
export function VmNames({ vms }: { vms: VmView[] }) {
  return (
    <datalist id={VM_LIST}>
      {vms.map((v) => <option key={v.name} value={v.name}>{`${v.label ?? '(unlabeled)'} on ${v.host ?? 'no host'}`}</option>)}
    </datalist>
  );
}

/** The VM a typed name means, or why it means none. */
export function pickVm(typed: string, byName: Map<string, VmView>): { vm: string } | { error: string } {
  if (typed.trim() === '') return { error: 'Pick a VM.' };
  if (byName.has(typed)) return { vm: typed };
  if (byName.has(typed.trim())) return { vm: typed.trim() };
  return { error: `No VM named “${typed.trim()}” in the fleet.` };
}

export function Field({ id, label, error, children, hint }: { id: string; label: string; error?: string; children: ReactNode; hint?: ReactNode }) {
  return (
    <div className="wi-field">
      <label htmlFor={id}>{label}</label>
      {children}
      {hint && <span className="muted wi-hint">{hint}</span>}
      <FieldError id={`${id}-error`} message={error} />
    </div>
  );
}

export function VmInput({ id, value, onChange, error }: { id: string; value: string; onChange: (v: string) => void; error?: string }) {
  return (
    <input
      id={id} list={VM_LIST} value={value} autoComplete="off" spellCheck={false} placeholder="VM name"
      onChange={(e) => onChange(e.target.value)}
      aria-invalid={error ? true : undefined} aria-describedby={error ? `${id}-error` : undefined}
    />
  );
}

/** An answer's verdict: a word and a sign, never only a color. */
export function Verdict({ ok, children }: { ok: boolean; children: ReactNode }) {
  return (
    <p className={`wi-verdict ${ok ? 'allow' : 'deny'}`} data-verdict={ok ? 'allow' : 'deny'}>
      <span aria-hidden="true" className="wi-sign">{ok ? '✔' : '✘'}</span> {children}
    </p>
  );
}
