/**
 * The compiled reference monitor: a policy turned into decision tables.
 *
 * Colors are bit positions; each label's colors are a row of 32-bit words in one flat Uint32Array, so
 * `share(a, b)` is an AND over one word for up to 32 colors (the common case) and over ⌈colors/32⌉ words beyond.
 * Wall types and the walls each label blocks when it starts are kept in CSR form (offsets + one flat array) so
 * that compiling 100,000 labels allocates a handful of arrays, not 100,000.
 *
 * Labels and resources are addressed by index for the hot path; `labelIndex` / `resourceIndex` map names.
 */
import type { Policy } from '../policy/model.ts';
import { UNLABELED } from '../policy/model.ts';
import { MonitorError, MonitorErrorCode } from './errors.ts';

export class CompiledPolicy {
  readonly policy: Policy;
  /** STE component present; without it nothing restricts sharing, resource use or hosts */
  readonly hasSte: boolean;
  /** Chinese Wall component present; without it nothing restricts a start */
  readonly hasChwall: boolean;
  readonly colorNames: readonly string[];
  readonly wallNames: readonly string[];
  readonly labelNames: readonly string[];
  readonly resourceNames: readonly string[];
  /** 32-bit words per color row */
  readonly words: number;
  /** label i's colors: bits of labelColors[i*words .. i*words+words) */
  readonly labelColors: Uint32Array;
  /** label i's colors as indexes, colorFlat[colorStart[i] .. colorStart[i+1]): beyond one word, a label's few
   *  colors are probed in the other's row instead of ANDing whole rows (the rows of 100k labels miss the cache) */
  readonly colorStart: Int32Array;
  readonly colorFlat: Int32Array;
  /** OR of 1 << (color & 31) over label i's colors: labels whose summaries do not meet share no color */
  readonly summary: Uint32Array;
  /** resource i's color index */
  readonly resourceColor: Int32Array;
  /** label i's wall types: wallFlat[wallStart[i] .. wallStart[i+1]) */
  readonly wallStart: Int32Array;
  readonly wallFlat: Int32Array;
  /** the wall types label i blocks when it starts, one entry per conflict set that puts it there (DESIGN §2) */
  readonly blockStart: Int32Array;
  readonly blockFlat: Int32Array;
  /** index of the host (bootstrap) label, -1 if none */
  readonly hostLabel: number;
  /** index of __UNLABELED__, -1 if the policy does not define it */
  readonly unlabeled: number;
  readonly unlabeledResource: number;
  private readonly labelIdx: Map<string, number>;
  private readonly resourceIdx: Map<string, number>;
  private readonly colorIdx: Map<string, number>;
  private readonly wallIdx: Map<string, number>;
  /** conflict sets as wall-index arrays, and the sets each wall type is in */
  readonly conflictWalls: Int32Array[];
  readonly conflictsOfWall: number[][];

  constructor(policy: Policy) {
    this.policy = policy;
    this.hasSte = policy.colors !== null;
    this.hasChwall = policy.walls !== null;
    this.colorNames = policy.colors ?? [];
    this.wallNames = policy.walls ?? [];
    this.labelNames = policy.labels.map((l) => l.name);
    this.resourceNames = policy.resources.map((r) => r.name);
    this.colorIdx = indexOf(this.colorNames);
    this.wallIdx = indexOf(this.wallNames);
    this.labelIdx = indexOf(this.labelNames);
    this.resourceIdx = indexOf(this.resourceNames);

    const L = policy.labels.length;
    const W = Math.max(1, Math.ceil(this.colorNames.length / 32));
    this.words = W;
    this.labelColors = new Uint32Array(L * W);
    this.summary = new Uint32Array(L);
    this.colorStart = new Int32Array(L + 1);
    let colorCount = 0;
    for (const l of policy.labels) colorCount += l.colors.length;
    this.colorFlat = new Int32Array(colorCount);
    let wallCount = 0;
    let ck = 0;
    for (let i = 0; i < L; i++) {
      const l = policy.labels[i];
      this.colorStart[i] = ck;
      for (const c of l.colors) {
        const b = this.color(c);
        this.labelColors[i * W + (b >>> 5)] |= 1 << (b & 31);
        this.summary[i] |= 1 << (b & 31);
        this.colorFlat[ck++] = b;
      }
      wallCount += l.walls.length;
    }
    this.colorStart[L] = ck;
    this.resourceColor = new Int32Array(policy.resources.length);
    policy.resources.forEach((r, i) => (this.resourceColor[i] = this.color(r.color)));

    this.conflictWalls = policy.conflicts.map((c) => Int32Array.from(c.walls, (w) => this.wall(w)));
    this.conflictsOfWall = this.wallNames.map(() => []);
    this.conflictWalls.forEach((ws, ci) => ws.forEach((w) => this.conflictsOfWall[w].push(ci)));

    this.wallStart = new Int32Array(L + 1);
    this.wallFlat = new Int32Array(wallCount);
    this.blockStart = new Int32Array(L + 1);
    const blocks: number[] = [];
    let k = 0;
    const mine = new Set<number>();
    const metSets = new Set<number>();
    for (let i = 0; i < L; i++) {
      this.wallStart[i] = k;
      this.blockStart[i] = blocks.length;
      mine.clear();
      metSets.clear();
      for (const w of policy.labels[i].walls) {
        const wi = this.wall(w);
        this.wallFlat[k++] = wi;
        mine.add(wi);
        for (const ci of this.conflictsOfWall[wi]) metSets.add(ci);
      }
      // For every conflict set C that meets wall(V): block each u ∈ C \ wall(V), once per such C.
      for (const ci of metSets) for (const u of this.conflictWalls[ci]) if (!mine.has(u)) blocks.push(u);
    }
    this.wallStart[L] = k;
    this.blockStart[L] = blocks.length;
    this.blockFlat = Int32Array.from(blocks);

    this.hostLabel = policy.host === null ? -1 : (this.labelIdx.get(policy.host) ?? -1);
    this.unlabeled = this.labelIdx.get(UNLABELED) ?? -1;
    this.unlabeledResource = this.resourceIdx.get(UNLABELED) ?? -1;
  }

  private color(name: string): number {
    const i = this.colorIdx.get(name);
    if (i === undefined) throw new MonitorError(MonitorErrorCode.badState, `color "${name}" is not declared (validate the policy first)`);
    return i;
  }

  private wall(name: string): number {
    const i = this.wallIdx.get(name);
    if (i === undefined) throw new MonitorError(MonitorErrorCode.badState, `wall type "${name}" is not declared (validate the policy first)`);
    return i;
  }

  /** Label index by name, or -1. */
  labelIndex(name: string): number {
    return this.labelIdx.get(name) ?? -1;
  }

  /** Label index by name; throws `unknown_label`. */
  label(name: string): number {
    const i = this.labelIdx.get(name);
    if (i === undefined) throw new MonitorError(MonitorErrorCode.unknownLabel, `unknown label "${name}"`, { label: name });
    return i;
  }

  /** Resource label index by name; throws `unknown_resource`. */
  resource(name: string): number {
    const i = this.resourceIdx.get(name);
    if (i === undefined) throw new MonitorError(MonitorErrorCode.unknownResource, `unknown resource label "${name}"`, { resource: name });
    return i;
  }

  resourceIndex(name: string): number {
    return this.resourceIdx.get(name) ?? -1;
  }

  colorIndex(name: string): number {
    return this.colorIdx.get(name) ?? -1;
  }

  wallIndex(name: string): number {
    return this.wallIdx.get(name) ?? -1;
  }

  /** share(A,B): their colors intersect (always, without an STE component). The hot path. */
  share(a: number, b: number): boolean {
    if (!this.hasSte) return true;
    const W = this.words;
    const c = this.labelColors;
    if (W === 1) return (c[a] & c[b]) !== 0;
    if ((this.summary[a] & this.summary[b]) === 0) return false;
    const ob = b * W;
    const f = this.colorFlat;
    for (let k = this.colorStart[a], end = this.colorStart[a + 1]; k < end; k++) {
      const ci = f[k];
      if ((c[ob + (ci >>> 5)] & (1 << (ci & 31))) !== 0) return true;
    }
    return false;
  }

  /** mayUse(V,R): the resource's color is among V's colors. */
  use(vm: number, resource: number): boolean {
    if (!this.hasSte) return true;
    const b = this.resourceColor[resource];
    return (this.labelColors[vm * this.words + (b >>> 5)] & (1 << (b & 31))) !== 0;
  }

  /** authorized(host,V): colors(V) ⊆ colors(host). */
  authorized(host: number, vm: number): boolean {
    if (!this.hasSte) return true;
    const W = this.words;
    const c = this.labelColors;
    const oh = host * W;
    const ov = vm * W;
    for (let w = 0; w < W; w++) if ((c[ov + w] & ~c[oh + w]) !== 0) return false;
    return true;
  }

  /** The color names of label i. */
  colorsOf(label: number): string[] {
    return this.policy.labels[label].colors;
  }

  /** The color names common to labels a and b, in policy order. */
  commonColors(a: number, b: number): string[] {
    const out: string[] = [];
    const W = this.words;
    for (let ci = 0; ci < this.colorNames.length; ci++) {
      const w = ci >>> 5;
      const bit = 1 << (ci & 31);
      if ((this.labelColors[a * W + w] & bit) !== 0 && (this.labelColors[b * W + w] & bit) !== 0) out.push(this.colorNames[ci]);
    }
    return out;
  }
}

function indexOf(names: readonly string[]): Map<string, number> {
  const m = new Map<string, number>();
  names.forEach((n, i) => m.set(n, i));
  return m;
}

/** Compile a validated policy into decision tables. */
export function compilePolicy(policy: Policy): CompiledPolicy {
  return new CompiledPolicy(policy);
}
