/**
 * The Chinese Wall state of one host: reference counts per wall type, exactly as Xen's ACM keeps them.
 *
 * Starting V is denied if any t ∈ wall(V) has blocked[t] > 0; otherwise, for every conflict set C that meets
 * wall(V), blocked[u] += 1 for each u ∈ C \ wall(V), and running[t] += 1 for t ∈ wall(V). Stopping undoes
 * exactly that (DESIGN.md §2). The running labels are counted too, only to explain a denial.
 */
import type { CompiledPolicy } from './compile.ts';
import { MonitorError, MonitorErrorCode } from './errors.ts';

/** Why a start is refused: the wall type of the starting label, the conflict set, and the running label. */
export interface WallBlocker {
  conflictSet: string;
  /** the starting label's wall type that is blocked */
  wall: string;
  /** the running label whose wall types block it, and how many of its VMs run */
  runningLabel: string;
  runningWall: string;
  running: number;
}

export interface StartAnswer {
  allow: boolean;
  reason: 'no_conflict' | 'conflict_set_occupied' | 'no_chwall_component';
  blockers: WallBlocker[];
}

export class WallState {
  readonly policy: CompiledPolicy;
  readonly running: Int32Array;
  readonly blocked: Int32Array;
  /** label index → number of running VMs with that label */
  readonly runningLabels = new Map<number, number>();

  constructor(policy: CompiledPolicy) {
    this.policy = policy;
    this.running = new Int32Array(policy.wallNames.length);
    this.blocked = new Int32Array(policy.wallNames.length);
  }

  /** May a VM of this label start now? The hot path: no allocation when allowed. */
  mayStart(label: number): boolean {
    const p = this.policy;
    for (let k = p.wallStart[label]; k < p.wallStart[label + 1]; k++) if (this.blocked[p.wallFlat[k]] > 0) return false;
    return true;
  }

  /** May a VM of this label start now, and why not. */
  check(label: number): StartAnswer {
    if (!this.policy.hasChwall) return { allow: true, reason: 'no_chwall_component', blockers: [] };
    if (this.mayStart(label)) return { allow: true, reason: 'no_conflict', blockers: [] };
    return { allow: false, reason: 'conflict_set_occupied', blockers: this.blockersOf(label) };
  }

  /** Start a VM if the wall allows it; the state changes only when allowed. */
  start(label: number): StartAnswer {
    const answer = this.check(label);
    if (answer.allow) this.admit(label);
    return answer;
  }

  /** Count a VM as running without checking: for replaying VMs that are known to run. */
  admit(label: number): void {
    const p = this.policy;
    for (let k = p.wallStart[label]; k < p.wallStart[label + 1]; k++) this.running[p.wallFlat[k]]++;
    for (let k = p.blockStart[label]; k < p.blockStart[label + 1]; k++) this.blocked[p.blockFlat[k]]++;
    this.runningLabels.set(label, (this.runningLabels.get(label) ?? 0) + 1);
  }

  /** Stop a running VM of this label: undoes exactly what its start did. */
  stop(label: number): void {
    const n = this.runningLabels.get(label) ?? 0;
    if (n === 0) {
      throw new MonitorError(MonitorErrorCode.notRunning, `no VM with label "${this.policy.labelNames[label]}" is running on this host`);
    }
    if (n === 1) this.runningLabels.delete(label);
    else this.runningLabels.set(label, n - 1);
    const p = this.policy;
    for (let k = p.wallStart[label]; k < p.wallStart[label + 1]; k++) this.running[p.wallFlat[k]]--;
    for (let k = p.blockStart[label]; k < p.blockStart[label + 1]; k++) this.blocked[p.blockFlat[k]]--;
  }

  /** Every (conflict set, running label) that blocks one of this label's wall types. */
  private blockersOf(label: number): WallBlocker[] {
    const p = this.policy;
    const out: WallBlocker[] = [];
    const mine = new Set<number>();
    for (let k = p.wallStart[label]; k < p.wallStart[label + 1]; k++) mine.add(p.wallFlat[k]);
    for (const t of mine) {
      if (this.blocked[t] === 0) continue;
      for (const ci of p.conflictsOfWall[t]) {
        for (const [other, count] of this.runningLabels) {
          const theirs = new Set<number>();
          for (let k = p.wallStart[other]; k < p.wallStart[other + 1]; k++) theirs.add(p.wallFlat[k]);
          if (theirs.has(t)) continue;
          for (const u of p.conflictWalls[ci]) {
            if (theirs.has(u)) {
              out.push({
                conflictSet: p.policy.conflicts[ci].name,
                wall: p.wallNames[t],
                runningLabel: p.labelNames[other],
                runningWall: p.wallNames[u],
                running: count,
              });
              break;
            }
          }
        }
      }
    }
    return out;
  }
}
