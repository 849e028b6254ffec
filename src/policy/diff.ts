/**
 * The structural difference between two versions of a policy: what was added, removed, renamed or changed.
 *
 * Labels and resource labels are matched across versions through Xen's renames first (`from`), then by name.
 * Which label pairs gain or lose sharing, and which running VMs would violate, is the reference monitor's part
 * (`monitor/update.ts`), which builds on this.
 */
import type { Policy } from './model.ts';

export interface ListChange {
  added: string[];
  removed: string[];
}

export interface LabelChange {
  name: string;
  /** the old name, when renamed */
  from?: string;
  colors: ListChange;
  walls: ListChange;
  onUntrusted?: { from: string; to: string };
}

export interface ResourceChange {
  name: string;
  from?: string;
  color?: { from: string; to: string };
}

export interface StructuralDiff {
  name?: { from: string; to: string };
  version?: { from: string; to: string };
  host?: { from: string | null; to: string | null };
  colors: ListChange;
  walls: ListChange;
  conflicts: ListChange & { changed: { name: string; walls: ListChange }[] };
  labels: ListChange & { changed: LabelChange[]; renamed: { from: string; to: string }[] };
  resources: ListChange & { changed: ResourceChange[]; renamed: { from: string; to: string }[] };
}

/** old name → new name for items present in both versions (renamed via `from`, or kept by name). */
export function matchNames(
  oldItems: ReadonlyArray<{ name: string }>,
  newItems: ReadonlyArray<{ name: string; from?: string }>,
): Map<string, string> {
  const oldNames = new Set(oldItems.map((i) => i.name));
  const map = new Map<string, string>();
  const claimed = new Set<string>();
  for (const n of newItems) {
    if (n.from !== undefined && oldNames.has(n.from) && !map.has(n.from)) {
      map.set(n.from, n.name);
      claimed.add(n.name);
    }
  }
  for (const n of newItems) {
    if (!claimed.has(n.name) && n.from === undefined && oldNames.has(n.name) && !map.has(n.name)) map.set(n.name, n.name);
  }
  return map;
}

function listChange(a: readonly string[] | null, b: readonly string[] | null): ListChange {
  const sa = new Set(a ?? []);
  const sb = new Set(b ?? []);
  return { added: [...sb].filter((x) => !sa.has(x)), removed: [...sa].filter((x) => !sb.has(x)) };
}

const empty = (c: ListChange) => c.added.length === 0 && c.removed.length === 0;

/** What changed from `a` to `b`. Pure. */
export function structuralDiff(a: Policy, b: Policy): StructuralDiff {
  const d: StructuralDiff = {
    colors: listChange(a.colors, b.colors),
    walls: listChange(a.walls, b.walls),
    conflicts: { ...listChange(a.conflicts.map((c) => c.name), b.conflicts.map((c) => c.name)), changed: [] },
    labels: { added: [], removed: [], changed: [], renamed: [] },
    resources: { added: [], removed: [], changed: [], renamed: [] },
  };
  if (a.name !== b.name) d.name = { from: a.name, to: b.name };
  if (a.version !== b.version) d.version = { from: a.version, to: b.version };

  const oldConflicts = new Map(a.conflicts.map((c) => [c.name, c]));
  for (const c of b.conflicts) {
    const o = oldConflicts.get(c.name);
    if (o) {
      const walls = listChange(o.walls, c.walls);
      if (!empty(walls)) d.conflicts.changed.push({ name: c.name, walls });
    }
  }

  const labelMap = matchNames(a.labels, b.labels);
  const newByName = new Map(b.labels.map((l) => [l.name, l]));
  const mappedNew = new Set(labelMap.values());
  for (const l of a.labels) {
    const to = labelMap.get(l.name);
    if (to === undefined) {
      d.labels.removed.push(l.name);
      continue;
    }
    if (to !== l.name) d.labels.renamed.push({ from: l.name, to });
    const n = newByName.get(to)!;
    const ch: LabelChange = { name: to, colors: listChange(l.colors, n.colors), walls: listChange(l.walls, n.walls) };
    if (to !== l.name) ch.from = l.name;
    if (l.onUntrusted !== n.onUntrusted) ch.onUntrusted = { from: l.onUntrusted, to: n.onUntrusted };
    if (!empty(ch.colors) || !empty(ch.walls) || ch.onUntrusted) d.labels.changed.push(ch);
  }
  d.labels.added = b.labels.filter((l) => !mappedNew.has(l.name)).map((l) => l.name);

  const resMap = matchNames(a.resources, b.resources);
  const newRes = new Map(b.resources.map((r) => [r.name, r]));
  const mappedRes = new Set(resMap.values());
  for (const r of a.resources) {
    const to = resMap.get(r.name);
    if (to === undefined) {
      d.resources.removed.push(r.name);
      continue;
    }
    if (to !== r.name) d.resources.renamed.push({ from: r.name, to });
    const n = newRes.get(to)!;
    if (n.color !== r.color) d.resources.changed.push({ name: to, ...(to !== r.name ? { from: r.name } : {}), color: { from: r.color, to: n.color } });
  }
  d.resources.added = b.resources.filter((r) => !mappedRes.has(r.name)).map((r) => r.name);

  const hostFrom = a.host === null ? null : (labelMap.get(a.host) ?? a.host);
  if (hostFrom !== b.host) d.host = { from: a.host, to: b.host };
  return d;
}
