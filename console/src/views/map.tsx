/**
 * The fleet map (`#/`): hosts as boxes, each VM a cell in its label's colors (all of them: one band per color, each a
 * hue, a pattern and, in the legend and on hover, a name), so that VMs that may talk look alike; an isolated VM grey
 * and hatched; the trust state of each as a border that is more than a hue; the blocked attempts the agents report as
 * red arrows with their counts, and in a list with the reason in words. Filters by text, label, color, host and trust
 * state; a list of the VMs for the keyboard. Drawn on a canvas (5,000 VMs on 500 hosts stay quick), redrawn whenever
 * the fleet store changes (a VM that turns untrusted shows within the second). Names from the fleet are text only.
 */
import { useDeferredValue, useMemo, useState } from 'react';
import { Link } from 'wouter';
import { useFleet } from '../fleet.ts';
import { MapCanvas } from './map/canvas.tsx';
import { trustIndex } from './map/draw.ts';
import { FilterBar } from './map/filters.tsx';
import { Legend } from './map/legend.tsx';
import { BlockedList, VmList } from './map/lists.tsx';
import { applyFilters, filtering, linksOf, NO_FILTERS, prepare, type Filters } from './map/model.ts';
import './map/map.css';

export function MapView() {
  const fleet = useFleet();
  const [filters, setFilters] = useState<Filters>(NO_FILTERS);
  const [listOpen, setListOpen] = useState(false);
  const q = useDeferredValue(filters.q);
  const doc = fleet.policy?.doc ?? null;

  const p = useMemo(() => prepare(fleet.vms, fleet.hosts, doc), [fleet.vms, fleet.hosts, doc]);
  const trust = useMemo(() => Uint8Array.from(p.vms, (v) => trustIndex(v.trust)), [p]);
  const applied = useMemo(() => ({ ...filters, q }), [filters.label, filters.color, filters.host, filters.trust, q]); // eslint-disable-line react-hooks/exhaustive-deps
  const shown = useMemo(() => applyFilters(p, applied), [p, applied]);
  const links = useMemo(() => linksOf(fleet.blocked, shown.slotOf), [fleet.blocked, shown.slotOf]);

  const total = p.vms.length;
  const hidden = p.hosts.length - shown.groups.length;
  return (
    <div className="map-page">
      <h1>Fleet map</h1>
      <FilterBar p={p} filters={filters} onChange={setFilters} />
      <p className="map-count" role="status" data-shown={shown.matched} data-total={total}>
        {fleet.loaded
          ? <>{shown.matched.toLocaleString('en')} of {total.toLocaleString('en')} VMs shown{filtering(applied) ? ` · ${hidden.toLocaleString('en')} of ${p.hosts.length.toLocaleString('en')} hosts without a match left out` : ` · ${p.hosts.length.toLocaleString('en')} hosts`}</>
          : 'Loading the fleet…'}
      </p>
      {fleet.loaded && (fleet.policy === null || total === 0) && <GettingStarted policy={fleet.policy !== null} />}
      <div className="map-body">
        <section className="map-main" aria-label="Map">
          <MapCanvas p={p} shown={shown} trust={trust} links={links} ready={fleet.loaded} />
          <button type="button" className="map-list-toggle" aria-expanded={listOpen} aria-controls="map-list" onClick={() => setListOpen((o) => !o)}>
            {listOpen ? 'Hide the list of VMs' : 'Show the VMs as a list'}
          </button>
          {listOpen && <VmList p={p} shown={shown} />}
        </section>
        <aside className="map-side">
          <BlockedList blocked={fleet.blocked} />
          <Legend p={p} doc={doc} />
        </aside>
      </div>
    </div>
  );
}

/** What a new controller needs before the map has anything to show. */
function GettingStarted({ policy }: { policy: boolean }) {
  return (
    <section className="panel map-start" aria-labelledby="map-start-title">
      <h2 id="map-start-title">Getting started</h2>
      <ol>
        <li>{policy ? 'A policy is published.' : <>Publish a policy: <Link href="/policy">Policy</Link> → New draft, or import a Xen ACM XML policy.</>}</li>
        <li>
          Connect each host's agent with a token bound to it (as an admin: <code>POST /api/v1/tokens</code>{' '}
          <code>{'{"name":"agent kvm-1","role":"agent","host":"kvm-1"}'}</code>), then on the host{' '}
          <code>hueguard agent --controller URL --token TOKEN --host kvm-1</code>. Its VMs appear here as it reports them.
        </li>
        <li>No hosts at hand? <code>sudo ./bin/hueguard demo</code> runs a lab of VMs with an agent; <code>npm run console:demo</code> a seeded fleet.</li>
      </ol>
    </section>
  );
}
