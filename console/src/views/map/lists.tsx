/**
 * The map in rows, for the keyboard and for screen readers: the VMs that match the filters (host by host, as the map
 * orders them; the first 200, so that a fleet of thousands stays quick: the filters narrow it), and the blocked
 * attempts the agents reported, newest first, each row linking to the VMs involved.
 */
import { Link } from 'wouter';
import type { BlockedRow } from '../../fleet.ts';
import { ColorChips, TrustBadge, vmHref } from '../../ui.tsx';
import { hostTitle, NO_HOST, REASON_TEXT, type Prepared, type Shown } from './model.ts';

export const LIST_CAP = 200;
export const BLOCKED_CAP = 100;

export function VmList({ p, shown }: { p: Prepared; shown: Shown }) {
  const rows: number[] = [];
  for (let s = 0; s < shown.order.length && rows.length < LIST_CAP; s++) if (shown.match[shown.order[s]] === 1) rows.push(shown.order[s]);
  return (
    <div className="map-list" id="map-list">
      <table>
        <caption>
          VMs that match the filters{shown.matched > rows.length ? `: the first ${rows.length} of ${shown.matched.toLocaleString('en')} (narrow them with the filters)` : ` (${shown.matched})`}
        </caption>
        <thead><tr><th scope="col">VM</th><th scope="col">Host</th><th scope="col">Label</th><th scope="col">Colors</th><th scope="col">Trust</th></tr></thead>
        <tbody>
          {rows.map((i) => {
            const v = p.vms[i];
            return (
              <tr key={v.name} data-vm={v.name} data-trust={v.trust}>
                <td><Link href={vmHref(v.name)}>{v.name}</Link></td>
                <td>{hostTitle(v.host ?? NO_HOST)}</td>
                <td>{v.label ?? <span className="muted">(unlabeled)</span>}</td>
                <td><ColorChips colors={p.colors[i]} isolated={v.effectiveColors.length === 0 ? v.isolated : undefined} /></td>
                <td><TrustBadge state={v.trust} /></td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

function End({ vm, port }: { vm: string | null; port: string }) {
  if (vm === null) return <span className="muted">port {port} (no VM)</span>;
  return <Link href={vmHref(vm)}>{vm}</Link>;
}

export function BlockedList({ blocked }: { blocked: BlockedRow[] }) {
  const rows = [...blocked].sort((a, b) => (a.lastAt < b.lastAt ? 1 : a.lastAt > b.lastAt ? -1 : b.packets - a.packets)).slice(0, BLOCKED_CAP);
  return (
    <section className="map-blocked" aria-labelledby="map-blocked-title">
      <h2 id="map-blocked-title">Blocked attempts</h2>
      {blocked.length === 0 ? (
        <p className="muted">No agent has reported a blocked attempt.</p>
      ) : (
        <div className="map-blocked-scroll">
          <table>
            <caption className="muted map-small">
              {blocked.length > rows.length ? `The newest ${rows.length} of ${blocked.length}` : `${blocked.length}`} reported by the agents; red arrows on the map
            </caption>
            <thead><tr><th scope="col">From</th><th scope="col">To</th><th scope="col">Host</th><th scope="col">Packets</th><th scope="col">Reason</th></tr></thead>
            <tbody>
              {rows.map((b) => (
                <tr key={`${b.host}\0${b.fromPort}\0${b.toPort}`} data-from={b.from ?? ''} data-to={b.to ?? ''} data-reason={b.reason}>
                  <td><End vm={b.from} port={b.fromPort} /></td>
                  <td><End vm={b.to} port={b.toPort} /></td>
                  <td>{b.host}</td>
                  <td className="num">{b.packets.toLocaleString('en')}</td>
                  <td>{REASON_TEXT[b.reason]}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
