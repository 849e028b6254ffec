/**
 * Whom a VM may talk to now: the other running VMs holding one of its effective colors, grouped by color (each a
 * link to its page), and how many running VMs it may not reach. Computed from the live fleet, so it follows trust
 * changes on either side.
 */
import { useMemo, useState } from 'react';
import { Link } from 'wouter';
import type { VmView } from '../../fleet.ts';
import { ColorChip, TrustBadge, vmHref } from '../../ui.tsx';

const SHOWN = 24;

function ColorGroup({ color, vms }: { color: string; vms: VmView[] }) {
  const [all, setAll] = useState(false);
  const shown = all ? vms : vms.slice(0, SHOWN);
  return (
    <li className="peer-group" data-color={color}>
      <ColorChip color={color} /> <span className="muted">{vms.length === 0 ? 'no other running VM holds it now' : `${vms.length} VM${vms.length === 1 ? '' : 's'}`}</span>
      {vms.length > 0 && (
        <ul className="peers" aria-label={`VMs that share ${color}`}>
          {shown.map((v) => (
            <li key={v.name}>
              <Link href={vmHref(v.name)}>{v.name}</Link> <span className="muted">{v.label ?? '(unlabeled)'} on {v.host ?? 'no host'}</span>
            </li>
          ))}
          {vms.length > SHOWN && (
            <li><button type="button" className="link" onClick={() => setAll(!all)}>{all ? 'Show fewer' : `Show all ${vms.length}`}</button></li>
          )}
        </ul>
      )}
    </li>
  );
}

export function Peers({ vm, vms }: { vm: VmView; vms: VmView[] }) {
  const { groups, peers, others } = useMemo(() => {
    const mine = new Set(vm.effectiveColors);
    const groups = new Map<string, VmView[]>(vm.effectiveColors.map((c) => [c, []]));
    const peers = new Set<string>();
    let others = 0;
    for (const o of vms) {
      if (o.name === vm.name || !o.running) continue;
      let shares = false;
      for (const c of o.effectiveColors) {
        if (mine.has(c)) {
          groups.get(c)!.push(o);
          shares = true;
        }
      }
      if (shares) peers.add(o.name);
      else others++;
    }
    for (const g of groups.values()) g.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return { groups, peers, others };
  }, [vm, vms]);

  return (
    <section className="panel" aria-labelledby="vm-peers-title">
      <h2 id="vm-peers-title">May talk to now</h2>
      {!vm.running && <p className="notice">It is not running: it talks to no one until it starts.</p>}
      {vm.effectiveColors.length === 0 ? (
        <p className="deny" data-testid="no-peers">
          <span aria-hidden="true">✘ </span>No VM: it holds no color now{vm.isolated ? ` (${vm.isolated})` : ''}.
          {vm.trust !== 'trusted' && <> Its trust: <TrustBadge state={vm.trust} /></>}
        </p>
      ) : (
        <>
          <p>{peers.size} running VM{peers.size === 1 ? '' : 's'} share a color with it now.</p>
          <ul className="peer-groups">
            {[...groups].map(([c, g]) => <ColorGroup key={c} color={c} vms={g} />)}
          </ul>
        </>
      )}
      <p className="muted" data-testid="may-not">
        It may not talk to {others} other running VM{others === 1 ? '' : 's'}.
      </p>
    </section>
  );
}
