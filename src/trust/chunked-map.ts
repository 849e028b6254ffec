/**
 * An immutable map from names to values whose update copies a small part of it, not all of it.
 *
 * Why: the engine returns a new fleet for every verdict, and copying a `Map` of 10,000 trust records costs
 * 1.5–2.3 ms here, most of a verdict's budget (< 10 ms from verdict to plan). Entries are spread over
 * buckets by a hash of the key (about 8 entries a bucket); `with()` copies only the buckets it touches and the
 * bucket array. Copying the array moves pointers (a 1,024-bucket array of 10,000 entries in about a microsecond); a
 * bucket is a flat array `[key, value, key, value…]` searched from the start, so copying one is a `slice` (a Map
 * would be rebuilt entry by entry, and allocate as it grows): small buckets keep both a verdict and a group of a
 * hundred verdicts (the controller's evidence, a hundred buckets) cheap. It is a `ReadonlyMap`, so
 * code that only reads a fleet cannot tell it from a `Map`. Iteration goes bucket by bucket: its order is
 * deterministic but not the order of insertion.
 */

/** FNV-1a over UTF-16 code units. */
function hash(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The power of two at or above n / 8 (at least 16): small buckets, see the module comment. */
function bucketsFor(n: number): number {
  let b = 16;
  while (b * 8 < n) b *= 2;
  return b;
}

/** A bucket: keys at even positions, each followed by its value. */
type Bucket = unknown[];

/** Where `key` is in `b` (its even position), or -1. */
function indexIn(b: readonly unknown[], key: string): number {
  for (let i = 0; i < b.length; i += 2) if (b[i] === key) return i;
  return -1;
}

export class ChunkedMap<V> implements ReadonlyMap<string, V> {
  private constructor(
    private readonly buckets: readonly (readonly unknown[])[],
    readonly size: number,
  ) {}

  /** A map of these entries (a later entry of the same key wins). */
  static from<V>(entries: Iterable<readonly [string, V]>): ChunkedMap<V> {
    const list = [...entries];
    const n = bucketsFor(list.length);
    const buckets: Bucket[] = Array.from({ length: n }, () => []);
    let size = 0;
    for (const [k, v] of list) {
      const b = buckets[hash(k) & (n - 1)];
      const i = indexIn(b, k);
      if (i >= 0) b[i + 1] = v;
      else {
        b.push(k, v);
        size++;
      }
    }
    return new ChunkedMap(buckets, size);
  }

  /** `m` itself when it is a ChunkedMap, else a ChunkedMap of its entries. */
  static of<V>(m: ReadonlyMap<string, V>): ChunkedMap<V> {
    return m instanceof ChunkedMap ? (m as ChunkedMap<V>) : ChunkedMap.from(m);
  }

  get(key: string): V | undefined {
    const b = this.buckets[hash(key) & (this.buckets.length - 1)];
    const i = indexIn(b, key);
    return i >= 0 ? (b[i + 1] as V) : undefined;
  }

  has(key: string): boolean {
    return indexIn(this.buckets[hash(key) & (this.buckets.length - 1)], key) >= 0;
  }

  /** A new map with these entries set and these keys removed; this one is unchanged. */
  with(set: Iterable<readonly [string, V]>, remove: Iterable<string> = []): ChunkedMap<V> {
    const n = this.buckets.length;
    const buckets = this.buckets.slice() as Bucket[];
    const copied = new Set<number>();
    const bucket = (key: string): Bucket => {
      const i = hash(key) & (n - 1);
      if (!copied.has(i)) {
        copied.add(i);
        buckets[i] = buckets[i].slice();
      }
      return buckets[i];
    };
    let size = this.size;
    for (const [k, v] of set) {
      const b = bucket(k);
      const i = indexIn(b, k);
      if (i >= 0) b[i + 1] = v;
      else {
        b.push(k, v);
        size++;
      }
    }
    for (const k of remove) {
      const b = bucket(k);
      const i = indexIn(b, k);
      if (i >= 0) {
        b.splice(i, 2);
        size--;
      }
    }
    const next = new ChunkedMap<V>(buckets, size);
    // grown far past what the bucket count suits: spread it again
    return bucketsFor(size) > 2 * n ? ChunkedMap.from(next) : next;
  }

  *entries(): MapIterator<[string, V]> {
    for (const b of this.buckets) for (let i = 0; i < b.length; i += 2) yield [b[i] as string, b[i + 1] as V];
  }

  *keys(): MapIterator<string> {
    for (const b of this.buckets) for (let i = 0; i < b.length; i += 2) yield b[i] as string;
  }

  *values(): MapIterator<V> {
    for (const b of this.buckets) for (let i = 0; i < b.length; i += 2) yield b[i + 1] as V;
  }

  [Symbol.iterator](): MapIterator<[string, V]> {
    return this.entries();
  }

  forEach(fn: (value: V, key: string, map: ReadonlyMap<string, V>) => void, thisArg?: unknown): void {
    for (const b of this.buckets) for (let i = 0; i < b.length; i += 2) fn.call(thisArg, b[i + 1] as V, b[i] as string, this);
  }
}
