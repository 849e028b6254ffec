/**
 * fast-check arbitraries for policies: random but always VALID policies (`validatePolicy(p)` is empty), queries
 * over them, and successor policies for update tests.
 *
 * What they cover, on purpose:
 * - no STE component (`colors: null`) and no Chinese Wall component (`walls: null`), each sometimes;
 * - up to 70 colors, so that color bitsets cross the 32-bit word boundary (and colors ≥ 32 are really used);
 * - conflict sets that overlap (one wall type in several sets), and labels that hold types of several sets but
 *   never two types of one set;
 * - labels with no colors, with many colors (Xen's VIO), a host label that covers every color or only some;
 * - `__UNLABELED__` as a label and as a resource label, sometimes;
 * - label and resource order shuffled, so nothing depends on the host being first.
 */
import fc from 'fast-check';
import { UNLABELED, type ConflictSet, type Label, type Policy, type ResourceLabel, type TrustRule } from './model.ts';

export interface ArbPolicyOptions {
  /** most colors (STE types); default 70, past two 32-bit words */
  maxColors?: number;
  /** most wall types; default 8 (few, so that conflicts happen) */
  maxWalls?: number;
  /** most conflict sets; default 4 */
  maxConflicts?: number;
  /** most ordinary labels besides the host label and __UNLABELED__; default 10 */
  maxLabels?: number;
  /** most resource labels besides __UNLABELED__; default 6 */
  maxResources?: number;
  /** STE component: present sometimes (default), always or never */
  ste?: 'sometimes' | 'always' | 'never';
  /** Chinese Wall component: present sometimes (default), always or never */
  chwall?: 'sometimes' | 'always' | 'never';
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const trustRule: fc.Arbitrary<TrustRule> = fc.constantFrom('isolate', 'alert');

/** How many items a component has, or null for no component at all. */
function componentSize(mode: 'sometimes' | 'always' | 'never', size: fc.Arbitrary<number>): fc.Arbitrary<number | null> {
  if (mode === 'never') return fc.constant(null);
  if (mode === 'always') return size;
  return fc.option(size, { nil: null, freq: 5 });
}

/** A label's colors: usually a few (so that labels often share nothing), sometimes many. */
function arbColorsOf(colors: readonly string[] | null): fc.Arbitrary<string[]> {
  if (colors === null || colors.length === 0) return fc.constant([]);
  return fc.oneof(
    { arbitrary: fc.uniqueArray(fc.constantFrom(...colors), { maxLength: 4 }), weight: 4 },
    { arbitrary: fc.shuffledSubarray([...colors]), weight: 1 },
  );
}

/** Candidate wall types for a label (filtered afterwards so that it never holds two types of one set). */
function arbWallsOf(walls: readonly string[] | null): fc.Arbitrary<string[]> {
  if (walls === null || walls.length === 0) return fc.constant([]);
  return fc.uniqueArray(fc.constantFrom(...walls), { maxLength: 3 });
}

/** Keep the candidates in order, dropping any that shares a conflict set with one already kept. */
export function fitWalls(candidates: readonly string[], conflicts: readonly ConflictSet[]): string[] {
  const kept: string[] = [];
  for (const w of candidates) {
    if (kept.includes(w)) continue;
    const clash = conflicts.some((c) => c.walls.includes(w) && kept.some((k) => c.walls.includes(k)));
    if (!clash) kept.push(w);
  }
  return kept;
}

/** Conflict sets over the wall types: each of 1..4 types, possibly overlapping other sets. */
function arbConflicts(walls: readonly string[] | null, max: number): fc.Arbitrary<ConflictSet[]> {
  if (walls === null || walls.length === 0) return fc.constant([]);
  return fc
    .array(fc.uniqueArray(fc.constantFrom(...walls), { minLength: 1, maxLength: Math.min(4, walls.length) }), { maxLength: max })
    .map((sets) => sets.map((ws, i) => ({ name: `cs${i}`, walls: ws })));
}

interface LabelDraft {
  colors: string[];
  walls: string[];
  onUntrusted: TrustRule;
}
const arbLabelDraft = (colors: readonly string[] | null, walls: readonly string[] | null) =>
  fc.record({ colors: arbColorsOf(colors), walls: arbWallsOf(walls), onUntrusted: trustRule });

/** A random valid policy. */
export function arbPolicy(opts: ArbPolicyOptions = {}): fc.Arbitrary<Policy> {
  const maxColors = opts.maxColors ?? 70;
  const maxWalls = opts.maxWalls ?? 8;
  const maxConflicts = opts.maxConflicts ?? 4;
  const maxLabels = opts.maxLabels ?? 10;
  const maxResources = opts.maxResources ?? 6;
  // Few colors most of the time; many (crossing 32 and 64) often enough to exercise multi-word rows.
  const colorCount = fc.oneof(
    { arbitrary: fc.integer({ min: 0, max: Math.min(6, maxColors) }), weight: 3 },
    { arbitrary: fc.integer({ min: Math.min(30, maxColors), max: maxColors }), weight: 2 },
  );
  const wallCount = fc.integer({ min: 0, max: maxWalls });
  return fc
    .record({
      nColors: componentSize(opts.ste ?? 'sometimes', colorCount),
      nWalls: componentSize(opts.chwall ?? 'sometimes', wallCount),
    })
    .chain(({ nColors, nWalls }) => {
      const colors = nColors === null ? null : range(nColors).map((i) => `c${i}`);
      const walls = nWalls === null ? null : range(nWalls).map((i) => `w${i}`);
      const hasColors = colors !== null && colors.length > 0;
      return fc.record({
        name: fc.constantFrom('acme', 'xm-test', 'pol.v'),
        version: fc.constantFrom('1.0', '1.4', '2.0', '3.11'),
        colors: fc.constant(colors),
        walls: fc.constant(walls),
        conflicts: arbConflicts(walls, maxConflicts),
        labels: fc.array(arbLabelDraft(colors, walls), { maxLength: maxLabels }),
        host: arbLabelDraft(colors, walls),
        /** the host label holds every color (Xen's SystemManagement), or only its random ones */
        hostCoversAll: fc.boolean(),
        unlabeled: fc.option(arbLabelDraft(colors, walls), { nil: null, freq: 2 }),
        resources: hasColors
          ? fc.array(fc.constantFrom(...colors!), { maxLength: maxResources })
          : fc.constant<string[]>([]),
        unlabeledResource: hasColors ? fc.option(fc.constantFrom(...colors!), { nil: null, freq: 2 }) : fc.constant(null),
        labelOrder: fc.nat(),
        resourceOrder: fc.nat(),
      });
    })
    .chain((d) => {
      const mk = (name: string, l: LabelDraft): Label => ({
        name,
        colors: l.colors,
        walls: fitWalls(l.walls, d.conflicts),
        onUntrusted: l.onUntrusted,
      });
      const hostName = d.name === 'xm-test' ? 'SystemManagement' : 'host';
      const host = mk(hostName, d.hostCoversAll && d.colors ? { ...d.host, colors: [...d.colors] } : d.host);
      const labels: Label[] = [host, ...d.labels.map((l, i) => mk(`L${i}`, l))];
      if (d.unlabeled) labels.push(mk(UNLABELED, d.unlabeled));
      const resources: ResourceLabel[] = d.resources.map((color, i) => ({ name: `r${i}`, color }));
      if (d.unlabeledResource !== null) resources.push({ name: UNLABELED, color: d.unlabeledResource });
      return fc.record({
        labels: fc.shuffledSubarray(labels, { minLength: labels.length }),
        resources: fc.shuffledSubarray(resources, { minLength: resources.length }),
      }).map(({ labels: ls, resources: rs }): Policy => ({
        name: d.name,
        version: d.version,
        colors: d.colors,
        walls: d.walls,
        conflicts: d.conflicts,
        host: hostName,
        labels: ls,
        resources: rs,
      }));
    });
}

/** One step of a host's life: start a VM of a label, or stop one of the running VMs (`pick` modulo their count). */
export type WallOp = { kind: 'start'; label: string } | { kind: 'stop'; pick: number };

export interface Queries {
  /** label pairs for share */
  pairs: [string, string][];
  /** (label, resource label) pairs for use; empty when the policy has no resource labels */
  uses: [string, string][];
  /** (host label, VM label) pairs for authorized: any label may stand as a host label */
  auths: [string, string][];
  /** a host's start/stop sequence */
  ops: WallOp[];
}

export const arbLabelName = (p: Policy): fc.Arbitrary<string> => fc.constantFrom(...p.labels.map((l) => l.name));

/** start/stop sequences; starts are twice as likely as stops, so hosts fill up. */
export function arbWallOps(p: Policy, maxLength = 30): fc.Arbitrary<WallOp[]> {
  const start = arbLabelName(p).map((label): WallOp => ({ kind: 'start', label }));
  const stop = fc.nat().map((pick): WallOp => ({ kind: 'stop', pick }));
  return fc.array(fc.oneof({ arbitrary: start, weight: 2 }, { arbitrary: stop, weight: 1 }), { maxLength });
}

/** Random queries over a policy that has at least one label. */
export function arbQueries(p: Policy): fc.Arbitrary<Queries> {
  const label = arbLabelName(p);
  const res = p.resources.length > 0 ? fc.constantFrom(...p.resources.map((r) => r.name)) : null;
  return fc.record({
    pairs: fc.array(fc.tuple(label, label), { maxLength: 20 }),
    uses: res === null ? fc.constant<[string, string][]>([]) : fc.array(fc.tuple(label, res), { maxLength: 20 }),
    auths: fc.array(fc.tuple(fc.oneof(fc.constant(p.host ?? p.labels[0].name), label), label), { maxLength: 20 }),
    ops: arbWallOps(p),
  });
}

/** A policy together with queries over it. */
export const arbPolicyAndQueries = (opts?: ArbPolicyOptions) =>
  arbPolicy(opts).chain((policy) => arbQueries(policy).map((q) => ({ policy, ...q })));

type Fate = 'keep' | 'remove' | 'rename' | 'recolor' | 'rewall';

/**
 * A valid successor of `p` for update tests: names `p` in `from`, has a greater version, and removes, renames
 * (Xen's `from=`), recolors or rewalls labels and resource labels, changes the color and wall type lists, the
 * conflict sets and the host label, and adds labels. Renamed items get a fresh name (`NAME'`), or a label the name
 * of another old label that gives it up.
 */
export function arbSuccessor(p: Policy): fc.Arbitrary<Policy> {
  const fate: fc.Arbitrary<Fate> = fc.constantFrom('keep', 'keep', 'keep', 'remove', 'rename', 'recolor', 'rewall');
  // ('' only keeps constantFrom non-empty: dropping it drops nothing)
  return fc
    .record({
      dropColors: p.colors === null ? fc.constant<string[]>([]) : fc.uniqueArray(fc.constantFrom('', ...p.colors), { maxLength: 2 }),
      addColors: fc.nat(2),
      toggleSte: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
      dropWalls: p.walls === null ? fc.constant<string[]>([]) : fc.uniqueArray(fc.constantFrom('', ...p.walls), { maxLength: 2 }),
      addWalls: fc.nat(2),
      toggleChwall: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
      keepConflicts: fc.boolean(),
      bump: fc.constantFrom('minor', 'major'),
      rename: fc.boolean(),
    })
    .chain((u) => {
      let colors: string[] | null = p.colors === null ? null : p.colors.filter((c) => !u.dropColors.includes(c));
      if (colors !== null) colors.push(...range(u.addColors).map((i) => `n${i}`));
      if (u.toggleSte) colors = colors === null ? ['n0', 'n1', ...(p.colors ?? [])] : null;
      let walls: string[] | null = p.walls === null ? null : p.walls.filter((w) => !u.dropWalls.includes(w));
      if (walls !== null) walls.push(...range(u.addWalls).map((i) => `nw${i}`));
      if (u.toggleChwall) walls = walls === null ? ['nw0', 'nw1'] : null;
      const oldConflicts: ConflictSet[] =
        walls === null ? [] : p.conflicts.map((c) => ({ name: c.name, walls: c.walls.filter((w) => walls!.includes(w)) })).filter((c) => c.walls.length > 0);
      return fc.record({
        colors: fc.constant(colors),
        walls: fc.constant(walls),
        conflicts: u.keepConflicts ? fc.constant(oldConflicts) : arbConflicts(walls, 4),
        labels: fc.tuple(...p.labels.map(() => fc.record({ fate, draft: arbLabelDraft(colors, walls), steal: fc.boolean() }))),
        added: fc.array(arbLabelDraft(colors, walls), { maxLength: 3 }),
        resources: fc.tuple(
          ...p.resources.map(() =>
            fc.record({ fate, color: colors !== null && colors.length > 0 ? fc.constantFrom(...colors) : fc.constant('') }),
          ),
        ),
        bump: fc.constant(u.bump),
        rename: fc.constant(u.rename),
      });
    })
    .map((d) => {
      const colorSet = new Set(d.colors ?? []);
      const wallSet = new Set(d.walls ?? []);
      const labels: Label[] = [];
      let host: string | null = null;
      // A rename may take the name of another old label that is removed or renamed itself (Xen allows it: the
      // VMs of that other label do not inherit the name); otherwise it gets a fresh name.
      const freed = p.labels.filter((l, i) => d.labels[i].fate === 'remove' || d.labels[i].fate === 'rename').map((l) => l.name);
      p.labels.forEach((l, i) => {
        const { fate: f, draft, steal } = d.labels[i];
        if (f === 'remove') return;
        const stolen = f === 'rename' && steal ? freed.find((n) => n !== l.name) : undefined;
        if (stolen !== undefined) freed.splice(freed.indexOf(stolen), 1);
        const name = f === 'rename' ? (stolen ?? `${l.name}'`) : l.name;
        const colorsOf = f === 'recolor' ? draft.colors : l.colors.filter((c) => colorSet.has(c));
        const wallsOf = f === 'rewall' ? draft.walls : l.walls.filter((w) => wallSet.has(w));
        const n: Label = { name, colors: colorsOf, walls: fitWalls(wallsOf, d.conflicts), onUntrusted: l.onUntrusted };
        if (f === 'rename') n.from = l.name;
        labels.push(n);
        if (l.name === p.host) host = name;
      });
      d.added.forEach((a, i) => labels.push({ name: `N${i}`, colors: a.colors, walls: fitWalls(a.walls, d.conflicts), onUntrusted: a.onUntrusted }));
      if (host === null) {
        // The host label was removed: another label becomes the host label (or a new one).
        if (labels.length === 0) labels.push({ name: 'host2', colors: [...(d.colors ?? [])], walls: [], onUntrusted: 'isolate' });
        host = labels[0].name;
      }
      const resources: ResourceLabel[] = [];
      if (d.colors !== null && d.colors.length > 0) {
        p.resources.forEach((r, i) => {
          const { fate: f, color } = d.resources[i];
          if (f === 'remove') return;
          const name = f === 'rename' ? `${r.name}'` : r.name;
          const keepColor = colorSet.has(r.color) && f !== 'recolor';
          const n: ResourceLabel = { name, color: keepColor ? r.color : color };
          if (f === 'rename') n.from = r.name;
          resources.push(n);
        });
      }
      const [major, minor] = p.version.split('.').map(Number);
      const version = d.bump === 'major' ? `${major + 1}.0` : `${major}.${(minor ?? 0) + 1}`;
      return {
        name: d.rename ? `${p.name}-next` : p.name,
        version,
        colors: d.colors,
        walls: d.walls,
        conflicts: d.conflicts,
        host,
        labels,
        resources,
        from: { name: p.name, version: p.version },
      } satisfies Policy;
    });
}
