/**
 * The map's filters, ordinary labelled form controls: a text search (VM name, host or label), and one choice each of
 * label, color, host and trust state. VMs that miss them are drawn faint, hosts without a match are left out.
 */
import { useId } from 'react';
import type { TrustState } from '../../../../src/api/types.ts';
import { TRUST_STATES } from '../../fleet.ts';
import { filtering, hostTitle, NO_FILTERS, type Filters, type Prepared } from './model.ts';

export function FilterBar({ p, filters, onChange }: { p: Prepared; filters: Filters; onChange: (f: Filters) => void }) {
  const set = (patch: Partial<Filters>) => onChange({ ...filters, ...patch });
  const id = useId();
  return (
    <form className="map-filters" role="search" aria-label="Filter the map" onSubmit={(e) => e.preventDefault()}>
      <div className="map-filter">
        <label htmlFor={`${id}-search`}>Search</label>
        <input id={`${id}-search`} type="search" value={filters.q} placeholder="VM, host or label" onChange={(e) => set({ q: e.target.value })} />
      </div>
      <div className="map-filter">
        <label htmlFor={`${id}-label`}>Label</label>
        <select id={`${id}-label`} value={filters.label} onChange={(e) => set({ label: e.target.value })}>
          <option value="">any label</option>
          {p.unlabeled > 0 && <option value="-">(unlabeled)</option>}
          {p.labels.map((l) => <option key={l} value={`=${l}`}>{l}</option>)}
        </select>
      </div>
      <div className="map-filter">
        <label htmlFor={`${id}-color`}>Color</label>
        <select id={`${id}-color`} value={filters.color} onChange={(e) => set({ color: e.target.value })}>
          <option value="">any color</option>
          {p.colorNames.map((c) => <option key={c} value={c}>{c}</option>)}
        </select>
      </div>
      <div className="map-filter">
        <label htmlFor={`${id}-host`}>Host</label>
        <select id={`${id}-host`} value={filters.host} onChange={(e) => set({ host: e.target.value })}>
          <option value="">any host</option>
          {p.hosts.map((h) => <option key={h.name} value={h.name}>{hostTitle(h.name)}</option>)}
        </select>
      </div>
      <div className="map-filter">
        <label htmlFor={`${id}-trust`}>Trust</label>
        <select id={`${id}-trust`} value={filters.trust} onChange={(e) => set({ trust: e.target.value as '' | TrustState })}>
          <option value="">any trust state</option>
          {TRUST_STATES.map((t) => <option key={t} value={t}>{t}</option>)}
        </select>
      </div>
      <button type="button" onClick={() => onChange(NO_FILTERS)} disabled={!filtering(filters)}>Clear filters</button>
    </form>
  );
}
