/**
 * A map that keeps the entries set last, up to a budget of weight (a fingerprint's size, say): the oldest set goes
 * first, never the one just set. For the caches that hold a large fleet's state in memory: the controller's
 * integrity states (server/fleet-state.ts), the verifier's parsed fingerprints and live appraisers (evidence.ts).
 */
export class BoundedMap<V> {
  private readonly map = new Map<string, { value: V; weight: number }>();
  private total = 0;
  constructor(
    private readonly budget: number,
    private readonly weigh: (v: V) => number,
  ) {}

  get(k: string): V | undefined {
    return this.map.get(k)?.value;
  }

  /** The entry, removed from the map. */
  take(k: string): V | undefined {
    const e = this.map.get(k);
    if (e === undefined) return undefined;
    this.delete(k);
    return e.value;
  }

  /** Set (or set again: it becomes the newest), then evict the oldest while over budget. */
  set(k: string, value: V): void {
    this.delete(k);
    const weight = this.weigh(value);
    this.map.set(k, { value, weight });
    this.total += weight;
    // Only when over budget: iterating a Map that keeps deleting and re-adding entries first walks over the holes
    // its deletions left (until it rehashes), which made every set cost O(size).
    if (this.total <= this.budget) return;
    for (const [key, e] of this.map) {
      if (this.total <= this.budget || key === k) break;
      this.map.delete(key);
      this.total -= e.weight;
    }
  }

  delete(k: string): void {
    const e = this.map.get(k);
    if (e === undefined) return;
    this.map.delete(k);
    this.total -= e.weight;
  }

  get size(): number {
    return this.map.size;
  }
}
