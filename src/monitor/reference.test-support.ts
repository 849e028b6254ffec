/**
 * A PLAIN reference monitor, written straight from DESIGN.md §2 and independently of src/monitor (it imports
 * nothing from there): names, `Set`s and `Map`s, no indexes, no bitsets, no precomputed tables. Slow and obvious,
 * so that the compiled monitor can be checked against it.
 *
 * - share(A,B): STE colors intersect. mayUse(V,R): R's color is among V's colors. authorized(host,V):
 *   colors(V) ⊆ colors(host). A policy without an STE component restricts none of the three.
 * - Chinese Wall, per host: running[t] and blocked[t] per wall type name. Starting V is denied if some
 *   t ∈ wall(V) has blocked[t] > 0; otherwise for every conflict set C that meets wall(V), blocked[u] += 1 for
 *   each u ∈ C \ wall(V), and running[t] += 1 for t ∈ wall(V). Stopping undoes exactly that. A policy without a
 *   Chinese Wall component restricts no start.
 * - Renames (Xen's `from=`): an old label X becomes the new label whose `from` is X; failing that, the new label
 *   named X if that one is not itself renamed from something.
 */
import type { Label, Policy, ResourceLabel } from '../policy/model.ts';

export function plainLabel(p: Policy, name: string): Label {
  const l = p.labels.find((x) => x.name === name);
  if (!l) throw new Error(`plain: no label "${name}"`);
  return l;
}

export function plainResource(p: Policy, name: string): ResourceLabel {
  const r = p.resources.find((x) => x.name === name);
  if (!r) throw new Error(`plain: no resource label "${name}"`);
  return r;
}

/** colors(A) ∩ colors(B) as a Set (empty for a policy without STE: it has no colors). */
export function plainCommonColors(p: Policy, a: string, b: string): Set<string> {
  const cb = new Set(plainLabel(p, b).colors);
  return new Set(plainLabel(p, a).colors.filter((c) => cb.has(c)));
}

export function plainShare(p: Policy, a: string, b: string): boolean {
  if (p.colors === null) return true;
  return plainCommonColors(p, a, b).size > 0;
}

export function plainUse(p: Policy, vm: string, resource: string): boolean {
  if (p.colors === null) return true;
  return new Set(plainLabel(p, vm).colors).has(plainResource(p, resource).color);
}

/** The VM's colors its host label lacks (empty when authorized). */
export function plainMissing(p: Policy, host: string, vm: string): Set<string> {
  if (p.colors === null) return new Set();
  const hostColors = new Set(plainLabel(p, host).colors);
  return new Set(plainLabel(p, vm).colors.filter((c) => !hostColors.has(c)));
}

export function plainAuthorized(p: Policy, host: string, vm: string): boolean {
  return plainMissing(p, host, vm).size === 0;
}

const bump = (m: Map<string, number>, k: string, d: number) => {
  const n = (m.get(k) ?? 0) + d;
  if (n === 0) m.delete(k);
  else m.set(k, n);
};

/** One host's Chinese Wall state, by type name. Counters that are 0 are absent from the maps. */
export class PlainHost {
  readonly running = new Map<string, number>();
  readonly blocked = new Map<string, number>();
  /** label name → running VMs of that label */
  readonly labels = new Map<string, number>();

  constructor(readonly policy: Policy) {}

  /** The wall types a start of this label blocks, once per conflict set that meets the label. */
  private blocks(label: string): string[] {
    const mine = new Set(plainLabel(this.policy, label).walls);
    const out: string[] = [];
    for (const c of this.policy.conflicts) {
      if (!c.walls.some((w) => mine.has(w))) continue;
      for (const u of c.walls) if (!mine.has(u)) out.push(u);
    }
    return out;
  }

  mayStart(label: string): boolean {
    if (this.policy.walls === null) return true;
    return plainLabel(this.policy, label).walls.every((t) => (this.blocked.get(t) ?? 0) === 0);
  }

  /** Count a VM of this label as running, unchecked (the host's own label, as Xen's Dom0). */
  admit(label: string): void {
    for (const u of this.blocks(label)) bump(this.blocked, u, +1);
    for (const t of plainLabel(this.policy, label).walls) bump(this.running, t, +1);
    bump(this.labels, label, +1);
  }

  /** Start a VM of this label if allowed; returns whether it started. */
  start(label: string): boolean {
    if (!this.mayStart(label)) return false;
    for (const u of this.blocks(label)) bump(this.blocked, u, +1);
    for (const t of plainLabel(this.policy, label).walls) bump(this.running, t, +1);
    bump(this.labels, label, +1);
    return true;
  }

  stop(label: string): void {
    if (!this.labels.has(label)) throw new Error(`plain: no VM of label "${label}" runs`);
    for (const u of this.blocks(label)) bump(this.blocked, u, -1);
    for (const t of plainLabel(this.policy, label).walls) bump(this.running, t, -1);
    bump(this.labels, label, -1);
  }
}

/** Old name → new name for kept or renamed items (labels or resource labels), from Xen's `from=` rule. */
export function plainRenames(
  oldItems: ReadonlyArray<{ name: string }>,
  newItems: ReadonlyArray<{ name: string; from?: string }>,
): Map<string, string> {
  const out = new Map<string, string>();
  for (const o of oldItems) {
    const renamed = newItems.find((n) => n.from === o.name);
    const same = newItems.find((n) => n.name === o.name && n.from === undefined);
    if (renamed) out.set(o.name, renamed.name);
    else if (same) out.set(o.name, same.name);
  }
  return out;
}

/** Unordered pair key (a pair of one label with itself included). */
export const pairKey = (a: string, b: string) => (a < b ? `${a}\u0000${b}` : `${b}\u0000${a}`);

/**
 * Label pairs gaining or losing sharing from `oldP` to `newP`, over ALL pairs (self pairs included): gained in
 * new names (sharing now, and not before or one side is new), lost in old names (sharing before, and not now or
 * one side is gone).
 */
export function plainSharingDiff(oldP: Policy, newP: Policy): { gained: Set<string>; lost: Set<string> } {
  const toNew = plainRenames(oldP.labels, newP.labels);
  const toOld = new Map([...toNew].map(([o, n]) => [n, o]));
  const gained = new Set<string>();
  const lost = new Set<string>();
  for (const a of newP.labels) {
    for (const b of newP.labels) {
      if (!plainShare(newP, a.name, b.name)) continue;
      const oa = toOld.get(a.name);
      const ob = toOld.get(b.name);
      if (oa === undefined || ob === undefined || !plainShare(oldP, oa, ob)) gained.add(pairKey(a.name, b.name));
    }
  }
  for (const a of oldP.labels) {
    for (const b of oldP.labels) {
      if (!plainShare(oldP, a.name, b.name)) continue;
      const na = toNew.get(a.name);
      const nb = toNew.get(b.name);
      if (na === undefined || nb === undefined || !plainShare(newP, na, nb)) lost.add(pairKey(a.name, b.name));
    }
  }
  return { gained, lost };
}
