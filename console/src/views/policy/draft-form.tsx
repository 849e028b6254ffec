/**
 * The draft as a form: the policy's name and version, colors, wall types, conflict sets, labels (colors, wall
 * types, trust rule), resource labels and the host label. Every field shows its own error next to it (the form's
 * checks and the controller's diagnostics placed by their model path), marked aria-invalid and described by it.
 */
import { useEffect, useState, type ReactNode } from 'react';
import { colorStyle } from '../../palette.ts';
import { FieldError, Swatch } from '../../ui.tsx';
import { newId, type FieldErrors, type FormModel, type LabelRow, type NamedRow, type ResourceRow } from './model.ts';

interface Props {
  model: FormModel;
  onChange: (m: FormModel) => void;
  errors: FieldErrors;
  readOnly: boolean;
}

export const fieldId = (key: string) => `pf-${key.replace(/[^A-Za-z0-9_-]/g, '-')}`;

/** The props that tie a control to its error. */
function bind(errors: FieldErrors, key: string) {
  const id = fieldId(key);
  return { id, 'aria-invalid': errors[key] ? true : undefined, 'aria-describedby': errors[key] ? `${id}-err` : undefined } as const;
}

function Err({ errors, k }: { errors: FieldErrors; k: string }) {
  return <FieldError id={`${fieldId(k)}-err`} message={errors[k]} />;
}

function Section({ title, children, id }: { title: string; children: ReactNode; id: string }) {
  return <section className="pol-form-section" aria-labelledby={id}><h3 id={id}>{title}</h3>{children}</section>;
}

const toggle = (list: readonly string[], id: string, on: boolean) => (on ? (list.includes(id) ? [...list] : [...list, id]) : list.filter((x) => x !== id));

export function DraftForm({ model: m, onChange, errors, readOnly }: Props) {
  const [focus, setFocus] = useState<string | null>(null);
  useEffect(() => {
    if (focus) { document.getElementById(focus)?.focus(); setFocus(null); }
  }, [focus]);
  const set = (patch: Partial<FormModel>) => onChange({ ...m, ...patch });
  const colorNames = m.colors ?? [];
  const palette = colorNames.map((c) => c.name);
  const setLabel = (id: string, patch: Partial<LabelRow>) => set({ labels: m.labels.map((l) => (l.id === id ? { ...l, ...patch } : l)) });
  const setRes = (id: string, patch: Partial<ResourceRow>) => set({ resources: m.resources.map((r) => (r.id === id ? { ...r, ...patch } : r)) });

  /** a named list (colors, wall types): rename in place, remove (and from every label), add */
  function NamedList({ kind, rows, what }: { kind: 'colors' | 'walls'; rows: NamedRow[]; what: string }) {
    return (
      <>
        <ul className="pol-named">
          {rows.map((r, i) => (
            <li key={r.id}>
              {kind === 'colors' && <Swatch style={colorStyle(palette, r.name)} />}
              <input {...bind(errors, `${kind}.${r.id}`)} aria-label={`${what} ${i + 1}`} value={r.name} onChange={(e) => set({ [kind]: rows.map((x) => (x.id === r.id ? { ...x, name: e.target.value } : x)) } as Partial<FormModel>)} />
              <button type="button" onClick={() => {
                const rest = rows.filter((x) => x.id !== r.id);
                if (kind === 'colors') {
                  set({ colors: rest, labels: m.labels.map((l) => ({ ...l, colors: l.colors.filter((c) => c !== r.id) })), resources: m.resources.map((x) => (x.color === r.id ? { ...x, color: '' } : x)) });
                } else {
                  set({ walls: rest, labels: m.labels.map((l) => ({ ...l, walls: l.walls.filter((w) => w !== r.id) })), conflicts: m.conflicts.map((k) => ({ ...k, walls: k.walls.filter((w) => w !== r.id) })) });
                }
              }}>Remove {what.toLowerCase()} {r.name || i + 1}</button>
              <Err errors={errors} k={`${kind}.${r.id}`} />
            </li>
          ))}
        </ul>
        <button type="button" onClick={() => {
          const id = newId(kind === 'colors' ? 'c' : 'w');
          set({ [kind]: [...rows, { id, name: '' }] } as Partial<FormModel>);
          setFocus(fieldId(`${kind}.${id}`));
        }}>Add {what.toLowerCase()}</button>
      </>
    );
  }

  return (
    <fieldset className="pol-form" disabled={readOnly}>
      <legend className="pol-sr">Draft policy</legend>
      <Section title="Policy" id="pf-h-policy">
        <div className="row">
          <label className="pol-field">Name <input {...bind(errors, 'policy')} value={m.policy} onChange={(e) => set({ policy: e.target.value })} /><Err errors={errors} k="policy" /></label>
          <label className="pol-field">Version <input {...bind(errors, 'version')} value={m.version} onChange={(e) => set({ version: e.target.value })} size={8} /><Err errors={errors} k="version" /></label>
        </div>
        <label className="pol-check"><input type="checkbox" checked={m.from !== null} onChange={(e) => set({ from: e.target.checked ? { policy: m.policy, version: '' } : null })} /> Updates an earlier policy (Xen’s FromPolicy: required to follow the published version)</label>
        {m.from && (
          <div className="row">
            <label className="pol-field">Updates policy <input {...bind(errors, 'from.policy')} value={m.from.policy} onChange={(e) => set({ from: { ...m.from!, policy: e.target.value } })} /><Err errors={errors} k="from.policy" /></label>
            <label className="pol-field">Updates version <input {...bind(errors, 'from.version')} value={m.from.version} onChange={(e) => set({ from: { ...m.from!, version: e.target.value } })} size={8} /><Err errors={errors} k="from.version" /></label>
          </div>
        )}
      </Section>

      <Section title="Colors" id="pf-h-colors">
        <label className="pol-check"><input type="checkbox" checked={m.colors !== null} onChange={(e) => set(e.target.checked ? { colors: [] } : { colors: null, labels: m.labels.map((l) => ({ ...l, colors: [] })), resources: m.resources.map((r) => ({ ...r, color: '' })) })} /> This policy has colors (without them it restricts no sharing)</label>
        {m.colors && NamedList({ kind: 'colors', rows: m.colors, what: 'Color' })}
        <Err errors={errors} k="colors" />
      </Section>

      <Section title="Wall types" id="pf-h-walls">
        <label className="pol-check"><input type="checkbox" checked={m.walls !== null} onChange={(e) => set(e.target.checked ? { walls: [] } : { walls: null, conflicts: [], labels: m.labels.map((l) => ({ ...l, walls: [] })) })} /> This policy has wall types (without them it restricts no start)</label>
        {m.walls && NamedList({ kind: 'walls', rows: m.walls, what: 'Wall type' })}
        <Err errors={errors} k="walls" />
      </Section>

      {m.walls && (
        <Section title="Conflict sets" id="pf-h-conflicts">
          <p className="muted pol-hint">Of the wall types in one set, at most one may run on a host at a time.</p>
          {m.conflicts.map((k, i) => (
            <fieldset key={k.id} className="pol-row-box">
              <legend>Conflict set {k.name || `#${i + 1}`}</legend>
              <label className="pol-field">Name <input {...bind(errors, `conflicts.${k.id}.name`)} value={k.name} onChange={(e) => set({ conflicts: m.conflicts.map((x) => (x.id === k.id ? { ...x, name: e.target.value } : x)) })} /><Err errors={errors} k={`conflicts.${k.id}.name`} /></label>
              <div role="group" aria-label={`Wall types of conflict set ${k.name || i + 1}`} className="pol-checks" {...(errors[`conflicts.${k.id}.walls`] ? { 'aria-describedby': `${fieldId(`conflicts.${k.id}.walls`)}-err` } : {})}>
                {m.walls!.map((w) => (
                  <label key={w.id} className="pol-check"><input type="checkbox" checked={k.walls.includes(w.id)} onChange={(e) => set({ conflicts: m.conflicts.map((x) => (x.id === k.id ? { ...x, walls: toggle(x.walls, w.id, e.target.checked) } : x)) })} /> {w.name || '(unnamed)'}</label>
                ))}
              </div>
              <Err errors={errors} k={`conflicts.${k.id}.walls`} />
              <button type="button" onClick={() => set({ conflicts: m.conflicts.filter((x) => x.id !== k.id) })}>Remove conflict set {k.name || i + 1}</button>
            </fieldset>
          ))}
          <button type="button" onClick={() => { const id = newId('k'); set({ conflicts: [...m.conflicts, { id, name: '', walls: [] }] }); setFocus(fieldId(`conflicts.${id}.name`)); }}>Add conflict set</button>
        </Section>
      )}

      <Section title="Labels" id="pf-h-labels">
        <div className="pol-label-grid">
        {m.labels.map((l, i) => {
          const unknownColors = l.colors.filter((c) => c.startsWith('?'));
          const unknownWalls = l.walls.filter((w) => w.startsWith('?'));
          const title = l.name || `#${i + 1}`;
          return (
            <fieldset key={l.id} className="pol-row-box" data-label-row={l.name}>
              <legend>Label {title}</legend>
              <div className="row">
                <label className="pol-field">Name <input {...bind(errors, `labels.${l.id}.name`)} value={l.name} onChange={(e) => setLabel(l.id, { name: e.target.value })} /><Err errors={errors} k={`labels.${l.id}.name`} /></label>
                <label className="pol-field">When a VM of it turns untrusted
                  <select {...bind(errors, `labels.${l.id}.onUntrusted`)} value={l.onUntrusted} onChange={(e) => setLabel(l.id, { onUntrusted: e.target.value as LabelRow['onUntrusted'] })}>
                    <option value="">isolate (the default)</option>
                    <option value="isolate">isolate</option>
                    <option value="alert">alert only</option>
                  </select>
                  <Err errors={errors} k={`labels.${l.id}.onUntrusted`} />
                </label>
                <label className="pol-field">Renamed from (optional) <input {...bind(errors, `labels.${l.id}.from`)} value={l.from} onChange={(e) => setLabel(l.id, { from: e.target.value })} /><Err errors={errors} k={`labels.${l.id}.from`} /></label>
              </div>
              {m.colors && (
                <fieldset className="pol-checks" {...bind(errors, `labels.${l.id}.colors`)}>
                  <legend>Colors of {title}</legend>
                  {m.colors.map((c) => (
                    <label key={c.id} className="pol-check"><input type="checkbox" checked={l.colors.includes(c.id)} onChange={(e) => setLabel(l.id, { colors: toggle(l.colors, c.id, e.target.checked) })} /> <Swatch style={colorStyle(palette, c.name)} /> {c.name || '(unnamed)'}</label>
                  ))}
                  {unknownColors.map((c) => (
                    <label key={c} className="pol-check error"><input type="checkbox" checked onChange={() => setLabel(l.id, { colors: l.colors.filter((x) => x !== c) })} /> {c.slice(1)} (not a color)</label>
                  ))}
                  <Err errors={errors} k={`labels.${l.id}.colors`} />
                </fieldset>
              )}
              {m.walls && (
                <fieldset className="pol-checks" {...bind(errors, `labels.${l.id}.walls`)}>
                  <legend>Wall types of {title}</legend>
                  {m.walls.map((w) => (
                    <label key={w.id} className="pol-check"><input type="checkbox" checked={l.walls.includes(w.id)} onChange={(e) => setLabel(l.id, { walls: toggle(l.walls, w.id, e.target.checked) })} /> {w.name || '(unnamed)'}</label>
                  ))}
                  {unknownWalls.map((w) => (
                    <label key={w} className="pol-check error"><input type="checkbox" checked onChange={() => setLabel(l.id, { walls: l.walls.filter((x) => x !== w) })} /> {w.slice(1)} (not a wall type)</label>
                  ))}
                  <Err errors={errors} k={`labels.${l.id}.walls`} />
                </fieldset>
              )}
              <button type="button" onClick={() => set({ labels: m.labels.filter((x) => x.id !== l.id), host: m.host === l.id ? '' : m.host })}>Remove label {title}</button>
            </fieldset>
          );
        })}
        </div>
        <button type="button" onClick={() => { const id = newId('l'); set({ labels: [...m.labels, { id, name: '', colors: [], walls: [], onUntrusted: '', from: '' }] }); setFocus(fieldId(`labels.${id}.name`)); }}>Add label</button>
      </Section>

      <Section title="Host label" id="pf-h-host">
        <label className="pol-field">The bootstrap label: a host may run a VM only if the VM’s colors are all this label’s
          <select {...bind(errors, 'host')} value={m.host} onChange={(e) => set({ host: e.target.value })}>
            <option value="">(none)</option>
            {m.labels.map((l, i) => <option key={l.id} value={l.id}>{l.name || `label #${i + 1}`}</option>)}
            {m.host.startsWith('?') && <option value={m.host}>{m.host.slice(1)} (not a label)</option>}
          </select>
          <Err errors={errors} k="host" />
        </label>
      </Section>

      <Section title="Resource labels" id="pf-h-resources">
        <p className="muted pol-hint">Disks, networks, VLANs: exactly one color each; a VM may use one iff it has that color.</p>
        <ul className="pol-named">
          {m.resources.map((r, i) => (
            <li key={r.id}>
              <label className="pol-field">Resource label {i + 1} <input {...bind(errors, `resources.${r.id}.name`)} value={r.name} onChange={(e) => setRes(r.id, { name: e.target.value })} /><Err errors={errors} k={`resources.${r.id}.name`} /></label>
              <label className="pol-field">Color of {r.name || `resource label ${i + 1}`}
                <select {...bind(errors, `resources.${r.id}.color`)} value={r.color} onChange={(e) => setRes(r.id, { color: e.target.value })}>
                  <option value="">(choose a color)</option>
                  {colorNames.map((c) => <option key={c.id} value={c.id}>{c.name || '(unnamed)'}</option>)}
                  {r.color.startsWith('?') && <option value={r.color}>{r.color.slice(1)} (not a color)</option>}
                </select>
                <Err errors={errors} k={`resources.${r.id}.color`} />
              </label>
              <button type="button" onClick={() => set({ resources: m.resources.filter((x) => x.id !== r.id) })}>Remove resource label {r.name || i + 1}</button>
            </li>
          ))}
        </ul>
        <button type="button" onClick={() => { const id = newId('r'); set({ resources: [...m.resources, { id, name: '', color: '', from: '' }] }); setFocus(fieldId(`resources.${id}.name`)); }}>Add resource label</button>
      </Section>
    </fieldset>
  );
}
