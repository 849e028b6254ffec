/**
 * What the fleet map shows, derived from the fleet store (pure, memoized by the view on the store's arrays and on the
 * filters): each VM's look (its bands: one per color, or the isolated look), the hosts and their VMs in name order,
 * which VMs match the filters, the order of the map's slots and the blocked attempts between VMs on the map.
 */
import type { HostV1, TrustState } from '../../../../src/api/types.ts';
import type { BlockedRow, VmView } from '../../fleet.ts';
import { colorStyle, ISOLATED, NO_COLOR, type ColorStyle } from '../../palette.ts';
import type { PolicyDoc } from '../../policy-doc.ts';
import type { HostGroup } from './layout.ts';

/** VMs the controller knows without a host are drawn in a box of their own. */
export const NO_HOST = '';
export const hostTitle = (h: string) => (h === NO_HOST ? '(no host)' : h);

export interface Prepared {
  vms: VmView[];
  /** per VM: its bands */
  looks: ColorStyle[][];
  /** per VM: its label's colors and its effective ones (what the color filter looks at) */
  colors: string[][];
  /** hosts in name order, each with its VMs (indexes into vms) in name order */
  hosts: { name: string; vms: number[] }[];
  /** every label in use or in the policy, every color of the policy (or in use, without one) */
  labels: string[];
  colorNames: string[];
  styleOf: (color: string) => ColorStyle;
  unlabeled: number;
}

const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export function prepare(vms: VmView[], hosts: HostV1[], doc: PolicyDoc | null): Prepared {
  const policyColors = doc?.colors ?? null;
  const styles = new Map<string, ColorStyle>();
  const styleOf = (c: string) => {
    let s = styles.get(c);
    if (!s) styles.set(c, (s = colorStyle(policyColors, c)));
    return s;
  };
  // one array of bands per distinct look (most VMs share a handful of looks)
  const lookCache = new Map<string, ColorStyle[]>();
  const looks: ColorStyle[][] = new Array(vms.length);
  const colors: string[][] = new Array(vms.length);
  const groups = new Map<string, number[]>();
  for (const h of hosts) groups.set(h.name, []);
  const labelSet = new Set<string>(doc ? Object.keys(doc.labels) : []);
  const colorSet = new Set<string>(policyColors ?? []);
  let unlabeled = 0;
  for (let i = 0; i < vms.length; i++) {
    const v = vms[i];
    const own = doc ? doc.labels[v.label ?? '__UNLABELED__']?.colors ?? [] : [];
    const isolated = v.isolated !== undefined && v.isolated !== '' && v.effectiveColors.length === 0;
    const shown = isolated ? [] : v.effectiveColors.length > 0 ? v.effectiveColors : own;
    const key = isolated ? '\0i' : shown.join('\0');
    let look = lookCache.get(key);
    if (!look) {
      look = isolated ? [ISOLATED] : shown.length === 0 ? [NO_COLOR] : shown.map(styleOf);
      lookCache.set(key, look);
    }
    looks[i] = look;
    colors[i] = v.effectiveColors.length === 0 ? own : own.length === 0 ? v.effectiveColors : [...new Set([...own, ...v.effectiveColors])];
    for (const c of v.effectiveColors) colorSet.add(c);
    if (v.label === null) unlabeled++;
    else labelSet.add(v.label);
    const h = v.host ?? NO_HOST;
    let g = groups.get(h);
    if (!g) groups.set(h, (g = []));
    g.push(i);
  }
  const out = [...groups].map(([name, list]) => ({ name, vms: list.sort((a, b) => byName(vms[a].name, vms[b].name)) }));
  out.sort((a, b) => byName(a.name, b.name));
  const colorNames = policyColors ? [...policyColors, ...[...colorSet].filter((c) => !policyColors.includes(c)).sort(byName)] : [...colorSet].sort(byName);
  return { vms, looks, colors, hosts: out, labels: [...labelSet].sort(byName), colorNames, styleOf, unlabeled };
}

export interface Filters {
  q: string;
  /** '' any; '=NAME' that label; '-' unlabeled */
  label: string;
  color: string;
  host: string;
  trust: '' | TrustState;
}

export const NO_FILTERS: Filters = { q: '', label: '', color: '', host: '', trust: '' };
export const filtering = (f: Filters) => f.q.trim() !== '' || f.label !== '' || f.color !== '' || f.host !== '' || f.trust !== '';

export interface Shown {
  /** per VM (index into vms): matches the filters */
  match: Uint8Array;
  matched: number;
  /** the host boxes on the map (every host without filters; those with a match with them) */
  groups: HostGroup[];
  /** slot → VM index */
  order: Int32Array;
  slotOf: Map<string, number>;
}

export function applyFilters(p: Prepared, f: Filters): Shown {
  const q = f.q.trim().toLowerCase();
  const label = f.label === '' ? undefined : f.label === '-' ? null : f.label.slice(1);
  const match = new Uint8Array(p.vms.length);
  let matched = 0;
  for (let i = 0; i < p.vms.length; i++) {
    const v = p.vms[i];
    const ok =
      (label === undefined || v.label === label) &&
      (f.trust === '' || v.trust === f.trust) &&
      (f.host === '' || (v.host ?? NO_HOST) === f.host) &&
      (f.color === '' || p.colors[i].includes(f.color)) &&
      (q === '' || v.name.toLowerCase().includes(q) || (v.host ?? '').toLowerCase().includes(q) || (v.label ?? '').toLowerCase().includes(q));
    if (ok) {
      match[i] = 1;
      matched++;
    }
  }
  const on = filtering(f);
  const groups: HostGroup[] = [];
  const kept: number[][] = [];
  let total = 0;
  for (const h of p.hosts) {
    if (on && !h.vms.some((i) => match[i] === 1)) continue;
    groups.push({ name: h.name, count: h.vms.length });
    kept.push(h.vms);
    total += h.vms.length;
  }
  const order = new Int32Array(total);
  const slotOf = new Map<string, number>();
  let s = 0;
  for (const list of kept) for (const i of list) {
    order[s] = i;
    slotOf.set(p.vms[i].name, s++);
  }
  return { match, matched, groups, order, slotOf };
}

export interface Link {
  /** slots */
  from: number;
  to: number;
  packets: number;
  reason: BlockedRow['reason'];
}

/** Blocked attempts between two VMs on the map, added up per (from, to). */
export function linksOf(blocked: BlockedRow[], slotOf: Map<string, number>): Link[] {
  const m = new Map<string, Link>();
  for (const b of blocked) {
    if (b.from === null || b.to === null) continue;
    const from = slotOf.get(b.from);
    const to = slotOf.get(b.to);
    if (from === undefined || to === undefined || from === to) continue;
    const key = `${from} ${to}`;
    const l = m.get(key);
    if (l) {
      l.packets += b.packets;
      if (b.reason === 'isolated') l.reason = 'isolated';
    } else m.set(key, { from, to, packets: b.packets, reason: b.reason });
  }
  return [...m.values()];
}

export const REASON_TEXT: Record<BlockedRow['reason'], string> = {
  no_common_color: 'no common color',
  isolated: 'isolated',
  unknown_port: 'unknown port',
};

/** A VM in words (the status line, the tooltip's text): name, label, colors, trust, host. */
export function describeVm(v: VmView, colors: readonly string[]): string {
  const cs = v.isolated && v.effectiveColors.length === 0 ? `isolated (${v.isolated})` : colors.length ? `colors ${colors.join(', ')}` : 'no color';
  return `${v.name} — label ${v.label ?? '(unlabeled)'}, ${cs}, ${v.trust}, host ${hostTitle(v.host ?? NO_HOST)}`;
}
