/**
 * The fleet in memory: what every evidence request, deadline tick, re-admission and inventory change would
 * otherwise read from the store again — the trust engine's fleet (hosts, VMs, trust records, plans) under the
 * compiled current policy, each VM's integrity state (with its fingerprint) and its parsed attestation key.
 *
 * It is right because of the store's fleet generation (store.ts): every transaction that writes fleet state moves
 * that number on, once. `change(fn)` runs `fn` in a store transaction that first reads the generation: equal to
 * the one the memory was loaded or last changed at, the memory is the store's state and `fn` works from it; else
 * (another controller on the same PostgreSQL, a publish, anything that wrote without going through here) the fleet
 * is read again, inside that transaction. After the commit the memory takes the changes `fn` declares and the
 * generation the transaction left. A transaction that rolls back leaves the memory as it was (the store is as it
 * was); one whose commit failed, or that wrote what it did not declare (`reload`), makes the next change read again.
 *
 * A change that writes (evidence, inventory, labels, re-admission, keys) takes the generation's lock first
 * (`Store.lockFleet`), so no other writer — another controller on the same PostgreSQL — can commit between what it
 * read and what it writes. One that mostly reads (the deadline tick: `lock: false`) reads the generation without
 * the lock; if another controller committed before its first write, the generation it moves to is not the one it
 * read plus one, or a write it makes is refused (a plan version that moved), and it is rolled back and run again
 * once on a fresh read (`StaleFleet`). On SQLite writers are serialized anyway (BEGIN IMMEDIATE).
 *
 * Changes run one at a time in this process (a mutex), so the memory is handed from one to the next without a
 * reload. Reads that need no transaction (GET routes) still read the store: the memory serves the writers.
 */
import type { AttestationKey } from '../integrity/tpm-public.ts';
import { CompiledPolicy } from '../monitor/compile.ts';
import { Mutex } from '../store/mutex.ts';
import type { Store } from '../store/store.ts';
import { BoundedMap } from '../trust/bounded-map.ts';
import { makeFleet, type Fleet } from '../trust/model.ts';
import { parseStoredPolicy, type CurrentPolicy, type ServerContext } from './context.ts';

/** A VM's integrity state as the verifier reads it (the trust engine's state, its fingerprint text inside). */
export interface IntegrityEntry {
  state: unknown;
}

export interface FleetView {
  /** the published policy the fleet is computed under; null: none yet (and no fleet) */
  current: CurrentPolicy | null;
  fleet: Fleet | null;
  /** integrity states read so far, by VM (a VM not here is read from the store) */
  integrity: BoundedMap<IntegrityEntry>;
  /** attestation keys read so far, parsed, by VM (null: none registered) */
  aks: Map<string, AttestationKey | null>;
}

/** What a change did, for the memory: only what it declares is taken over. */
export interface FleetChange<T> {
  value: T;
  /** the fleet after the change; omitted: the fleet did not change */
  fleet?: Fleet | null;
  /** integrity states written (null: forget the one held) */
  integrity?: Iterable<readonly [string, IntegrityEntry | null]>;
  /** attestation keys written (undefined: forget the one held) */
  aks?: Iterable<readonly [string, AttestationKey | null | undefined]>;
  /** the change wrote fleet state it does not describe here: read everything again next time */
  reload?: boolean;
}

/** Thrown inside a change whose transaction raced another controller's: rolled back and run again. */
class StaleFleet extends Error {}

/** Memory of integrity states: fingerprint texts up to this many characters in all (besides 1 KiB per VM). */
const INTEGRITY_BUDGET = 64 * 1024 * 1024;

const weighIntegrity = (e: IntegrityEntry) => {
  const f = (e.state as { fingerprint?: unknown } | null)?.fingerprint;
  return 1024 + (typeof f === 'string' ? f.length : 0);
};

/** The engine's fleet as the store holds it (read through `s`, inside the caller's transaction). */
export async function loadEngineFleet(s: Store, policy: CompiledPolicy, policyVersion: number): Promise<Fleet> {
  const [hosts, vms, trust, plans] = await Promise.all([s.hosts(), s.vms(), s.trusts(), s.plans()]);
  return makeFleet({ policy, policyVersion, hosts, vms, trust, plans });
}

export class FleetState {
  private view: FleetView | null = null;
  private generation = -1;
  private readonly lock = new Mutex();
  /** how many times the fleet was read whole (metrics, tests) */
  loads = 0;

  constructor(private readonly ctx: Pick<ServerContext, 'store' | 'policies' | 'metrics'>) {}

  /** Forget everything: the next change reads the fleet again. */
  invalidate(): void {
    this.view = null;
    this.generation = -1;
  }

  /**
   * Run `fn` in one store transaction with the fleet as the store holds it (see the module comment); `fn` returns
   * its value and what it changed. Changes run one at a time.
   */
  change<T>(fn: (s: Store, view: FleetView) => Promise<FleetChange<T>>, opts: { lock?: boolean } = {}): Promise<T> {
    const lock = opts.lock ?? true;
    return this.lock.run(async () => {
      try {
        return await this.attempt(fn, lock);
      } catch (e) {
        if (!(e instanceof StaleFleet)) throw e;
        this.invalidate();
        return this.attempt(fn, lock);
      }
    });
  }

  private async attempt<T>(fn: (s: Store, view: FleetView) => Promise<FleetChange<T>>, lock: boolean): Promise<T> {
    let view: FleetView | null = null;
    let read = -1;
    let left = -1;
    let change: FleetChange<T> | null = null;
    try {
      await this.ctx.store.tx(async (s) => {
        const g = lock ? await s.lockFleet() : await s.fleetGeneration();
        read = lock ? g.value - 1 : g.value;
        view = this.view !== null && this.generation === read ? this.view : await this.load(s);
        change = await fn(s, view);
        const after = await s.fleetGeneration();
        if (after.written && after.value !== read + 1) throw new StaleFleet(`the fleet changed under this transaction (generation ${read} → ${after.value})`);
        left = after.written ? after.value : read;
      });
    } catch (e) {
      // Without the lock, a write refused because another controller wrote first is a stale read: again, on a fresh one.
      if (!lock && !(e instanceof StaleFleet) && left < 0 && read >= 0 && (await this.moved(read))) throw new StaleFleet(String(e));
      // Rolled back (the store is as it was at `read`): a fleet read in the transaction is still good. If the
      // commit itself failed, `left` is set and nothing is known.
      if (left < 0 && view !== null && read >= 0 && !(e instanceof StaleFleet)) {
        this.view = view;
        this.generation = read;
      } else this.invalidate();
      throw e;
    }
    const c = change as FleetChange<T> | null;
    const v = view as FleetView | null;
    if (c === null || v === null) throw new Error('unreachable: a change committed without running');
    if (c.reload) {
      this.invalidate();
      return c.value;
    }
    if (c.fleet !== undefined) v.fleet = c.fleet;
    for (const [vm, e] of c.integrity ?? []) {
      if (e === null) v.integrity.delete(vm);
      else v.integrity.set(vm, e);
    }
    for (const [vm, k] of c.aks ?? []) {
      if (k === undefined) v.aks.delete(vm);
      else v.aks.set(vm, k);
    }
    this.view = v;
    this.generation = left;
    return c.value;
  }

  /** Whether the generation has moved on from `read` (another writer committed since). */
  private async moved(read: number): Promise<boolean> {
    try {
      return (await this.ctx.store.fleetGeneration()).value !== read;
    } catch {
      return false;
    }
  }

  /** Everything read again through `s`: the current policy (compiled again only if its version changed) and the fleet. */
  private async load(s: Store): Promise<FleetView> {
    this.loads++;
    this.ctx.metrics.fleetLoads.inc();
    const latest = await s.latestPolicy();
    let current: CurrentPolicy | null = null;
    if (latest !== null) {
      // not `current()`: a load it started may be waiting for this very transaction (SQLite's one connection)
      const cached = this.ctx.policies.peek();
      if (cached !== undefined && cached !== null && cached.record.version === latest.version) current = cached;
      else {
        const policy = parseStoredPolicy(latest);
        current = { record: latest, policy, compiled: new CompiledPolicy(policy) };
        this.ctx.policies.install(current);
      }
    }
    const fleet = current === null ? null : await loadEngineFleet(s, current.compiled, current.record.version);
    return { current, fleet, integrity: new BoundedMap(INTEGRITY_BUDGET, weighIntegrity), aks: new Map() };
  }
}
