/**
 * A VM's page (`#/vm/NAME`): its label, colors (the label's, and the effective ones now), host, ports and resources;
 * whom it may talk to now; its trust (state, the last evidence and its failing entries, the history); the blocked
 * attempts involving it; and for operators the re-admission of an untrusted VM and a change of label. The trust
 * parts are read again on each trust event about the VM, so a VM turning untrusted shows within the second.
 */
import { useEffect, useState } from 'react';
import { Link } from 'wouter';
import { ApiError, get, seg } from '../api.ts';
import { onEvent, useFleet, type BlockedRow, type VmView } from '../fleet.ts';
import { labelColors } from '../policy-doc.ts';
import { useSession } from '../session.tsx';
import { ColorChip, ColorChips, TrustBadge, vmHref } from '../ui.tsx';
import { LabelForm } from './vm/label-form.tsx';
import { Peers } from './vm/peers.tsx';
import { HistoryTable, ReadmitForm, TrustPanel, useTrust } from './vm/trust.tsx';
import { When } from './vm/when.tsx';
import './vm/vm.css';

interface ResourceLabel { kind: string; id: string; label: string }

/** The labeled disks and networks, read again when one's label changes. */
function useResourceLabels(): ResourceLabel[] | null {
  const [rows, setRows] = useState<ResourceLabel[] | null>(null);
  useEffect(() => {
    let alive = true;
    const load = () => get<ResourceLabel[]>('/api/v1/resources').then((r) => { if (alive) setRows(r); }, () => {});
    void load();
    const off = onEvent((e) => {
      if (e.kind === 'fleet' && (e.subject.startsWith('disk/') || e.subject.startsWith('network/'))) void load();
    });
    return () => { alive = false; off(); };
  }, []);
  return rows;
}

/** The VM from the live fleet; read on its own when the fleet does not hold it (yet). */
function useVm(name: string): { vm: VmView | null; missing: boolean; error: string | null } {
  const fleet = useFleet();
  const fromFleet = fleet.byName.get(name) ?? null;
  const [direct, setDirect] = useState<VmView | null>(null);
  const [missing, setMissing] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const need = (fleet.loaded || fleet.error !== null) && fromFleet === null;
  useEffect(() => {
    if (!need) return;
    let alive = true;
    get<VmView>(`/api/v1/vms/${seg(name)}`).then(
      (v) => { if (alive) { setDirect(v); setMissing(false); } },
      (e) => {
        if (!alive) return;
        if (e instanceof ApiError && e.status === 404) setMissing(true);
        else setError((e as Error).message);
      },
    );
    return () => { alive = false; };
  }, [need, name]);
  return { vm: fromFleet ?? direct, missing: fromFleet === null && missing, error };
}

function Overview({ vm, resources }: { vm: VmView; resources: ResourceLabel[] | null }) {
  const { policy } = useFleet();
  const own = labelColors(policy?.doc ?? null, vm.label);
  const resourceLabel = (kind: string, id: string) => resources?.find((r) => r.kind === kind && r.id === id)?.label ?? null;
  return (
    <section className="panel" aria-labelledby="vm-overview-title">
      <h2 id="vm-overview-title">Overview</h2>
      <dl className="facts">
        <dt>Host</dt><dd data-testid="vm-host">{vm.host ?? <span className="muted">none</span>}</dd>
        <dt>Label</dt><dd data-testid="vm-label">{vm.label ?? <span className="muted">(unlabeled)</span>}</dd>
        <dt>Its label's colors</dt><dd data-testid="vm-label-colors"><ColorChips colors={own} /></dd>
        <dt>Effective colors now</dt><dd data-testid="vm-effective-colors"><ColorChips colors={vm.effectiveColors} isolated={vm.isolated} /></dd>
        <dt>Running</dt><dd>{vm.running ? 'yes' : 'no'}</dd>
        <dt>Ports</dt><dd>{vm.ports.length === 0 ? <span className="muted">none</span> : vm.ports.map((p) => <code key={p} className="port">{p}</code>)}</dd>
      </dl>
      <h3>Resources</h3>
      {vm.resources.length === 0 ? <p className="muted">It uses no disk or network the controller knows of.</p> : (
        <table className="resources">
          <thead><tr><th scope="col">Kind</th><th scope="col">Id</th><th scope="col">Resource label</th></tr></thead>
          <tbody>
            {vm.resources.map((r) => {
              const l = resourceLabel(r.kind, r.id);
              const color = l === null ? null : policy?.doc.resources[l]?.color ?? null;
              return (
                <tr key={`${r.kind}/${r.id}`}>
                  <td>{r.kind}</td>
                  <td><code className="path">{r.id}</code></td>
                  <td>{resources === null ? '…' : l === null ? <span className="muted">unlabeled</span> : <>{l} {color && <ColorChip color={color} />}</>}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </section>
  );
}

function Blocked({ name, rows }: { name: string; rows: BlockedRow[] }) {
  const mine = rows.filter((b) => b.from === name || b.to === name);
  const who = (n: string | null, port: string) => n === null ? <span className="muted">port {port}</span> : n === name ? <strong>{n}</strong> : <Link href={vmHref(n)}>{n}</Link>;
  return (
    <section className="panel" aria-labelledby="vm-blocked-title">
      <h2 id="vm-blocked-title">Blocked attempts</h2>
      {mine.length === 0 ? <p className="muted">No host has reported dropped frames to or from it.</p> : (
        <table className="blocked">
          <thead><tr><th scope="col">From → to</th><th scope="col">Host</th><th scope="col">Why</th><th scope="col">Packets</th><th scope="col">Bytes</th><th scope="col">Last</th></tr></thead>
          <tbody>
            {mine.map((b, i) => (
              <tr key={`${b.host}-${b.fromPort}-${b.toPort}-${i}`}>
                <td>{who(b.from, b.fromPort)} → {who(b.to, b.toPort)}</td>
                <td>{b.host}</td>
                <td>{b.reason.replaceAll('_', ' ')}</td>
                <td>{b.packets}</td>
                <td>{b.bytes}</td>
                <td><When at={b.lastAt} /></td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function Page({ name }: { name: string }) {
  const fleet = useFleet();
  const { can } = useSession();
  const { vm, missing, error } = useVm(name);
  const resources = useResourceLabels();
  const [notice, setNotice] = useState<string | null>(null);
  const data = useTrust(name, vm ? `${vm.trust}|${vm.effectiveColors.join(',')}|${vm.isolated ?? ''}|${vm.label ?? ''}` : '');

  useEffect(() => { document.title = `${name} · hueguard`; }, [name]);
  // a re-admission's notice is old news once the VM is untrusted again
  const current = data.trust?.state ?? vm?.trust;
  useEffect(() => { if (current === 'untrusted') setNotice(null); }, [current]);

  if (missing) return <><h1>{name}</h1><p role="alert" className="error">No VM named “{name}” in the fleet.</p><p><Link href="/">Back to the fleet map</Link></p></>;
  if (vm === null) return <><h1>{name}</h1>{error ? <p role="alert" className="error">{error}</p> : <p className="muted">Loading…</p>}</>;

  // the fresher of the two pictures: the trust read answers right after the event, the fleet may lag (or lead)
  const state = data.trust?.state ?? vm.trust;
  const operator = can('operator');
  return (
    <div className="vm-page">
      <header className="vm-head">
        <h1><span className="vm-name">{vm.name}</span> <TrustBadge state={vm.trust} /></h1>
        <p className="muted">
          {vm.label ?? '(unlabeled)'} on {vm.host ?? 'no host'} · {vm.running ? 'running' : 'not running'} ·{' '}
          <ColorChips colors={vm.effectiveColors} isolated={vm.isolated} />
        </p>
      </header>
      <div className="vm-grid">
        <div className="vm-col">
          <Overview vm={vm} resources={resources} />
          <Peers vm={vm} vms={fleet.vms} />
          <Blocked name={name} rows={fleet.blocked} />
        </div>
        <div className="vm-col">
          <TrustPanel data={data} notice={notice} />
          {operator && state === 'untrusted' && (
            <ReadmitForm
              name={name}
              onDone={(r) => {
                setNotice(`Re-admitted: ${r.state} now${r.state === 'unverified' ? ', trusted again at its next good evidence' : ''}.`);
                void data.reload();
              }}
            />
          )}
          {!operator && state === 'untrusted' && <p className="muted">An operator may re-admit it.</p>}
          <HistoryTable history={data.history} />
          {operator && <LabelForm vm={vm} />}
        </div>
      </div>
    </div>
  );
}

export function VmPage({ name }: { name: string }) {
  // a fresh page (and fresh forms) for each VM
  return <Page key={name} name={name} />;
}
