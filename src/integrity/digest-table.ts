/**
 * A runtime policy's `digests` as one flat, byte-keyed hash table: what an ImaScanner (ima-scan.ts) looks paths up
 * in without a JavaScript string or object per entry.
 *
 * Why: a Map of a million paths costs ~1.3 µs a lookup here (a fresh string to hash, then several cache misses
 * through its buckets, entries and key strings) and ~200 bytes a path; here a lookup is one slot and one record,
 * both plain memory that native code can read.
 *
 * Layout (native/ima_scan.cc reads the same):
 * - `slots`: Int32Array of 2·2^k: per slot the key's MurmurHash3 (x86_32, seed 0) and the record's offset in
 *   `arena`, or -1 for an empty slot; linear probing, at most half full.
 * - `arena`: records `u32 name length | name (UTF-8) | u32 count | (u32 length | digest bytes)·count`, little-endian.
 * Digests are the bytes `Buffer.from(hex, 'hex')` gives, as the Appraiser compiles them, so that both compare alike.
 * A key that is not well-formed UTF-16 (a lone surrogate) is left out: no name decoded from a list can equal it.
 */

/** MurmurHash3 x86_32 with seed 0 over b[s..e). */
export function murmur3(b: Uint8Array, s: number, e: number): number {
  const c1 = 0xcc9e2d51;
  const c2 = 0x1b873593;
  let h = 0;
  let i = s;
  for (; i + 4 <= e; i += 4) {
    let k = b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24);
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    h ^= Math.imul(k, c2);
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const rest = e - i;
  if (rest > 0) {
    let k = b[i];
    if (rest > 1) k |= b[i + 1] << 8;
    if (rest > 2) k |= b[i + 2] << 16;
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    h ^= Math.imul(k, c2);
  }
  h ^= e - s;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h | 0;
}

/** What a lookup finds: the name listed with this digest, not listed, or listed with other digests only. */
export const LOOKUP_OK = 0;
export const LOOKUP_UNKNOWN = 1;
export const LOOKUP_MISMATCH = 2;
export type LookupResult = typeof LOOKUP_OK | typeof LOOKUP_UNKNOWN | typeof LOOKUP_MISMATCH;

const isWellFormed = (String.prototype as { isWellFormed?: () => boolean }).isWellFormed;
const wellFormed = (s: string): boolean => (isWellFormed !== undefined ? isWellFormed.call(s) : Buffer.from(s, 'utf8').toString('utf8') === s);

function putU32(b: Uint8Array, o: number, n: number): void {
  b[o] = n & 0xff;
  b[o + 1] = (n >>> 8) & 0xff;
  b[o + 2] = (n >>> 16) & 0xff;
  b[o + 3] = n >>> 24;
}

function getU32(b: Uint8Array, o: number): number {
  return (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16)) + b[o + 3] * 0x1000000;
}

export class DigestTable {
  readonly slots: Int32Array;
  readonly arena: Uint8Array;
  /** names held */
  readonly size: number;
  private readonly mask: number;
  private scratch = new Uint8Array(256);

  private constructor(slots: Int32Array, arena: Uint8Array, size: number) {
    this.slots = slots;
    this.arena = arena;
    this.size = size;
    this.mask = slots.length / 2 - 1;
  }

  /** The table of a digest map (name → hex digests), digests decoded as Buffer.from(hex, 'hex'). */
  static from(map: ReadonlyMap<string, readonly string[]>): DigestTable {
    return DigestTable.fromBytes(new Map([...map].map(([k, v]) => [k, v.map((h) => Buffer.from(h, 'hex'))])));
  }

  /** The table of a compiled digest map (name → digests as bytes), as the Appraiser holds it. */
  static fromBytes(map: ReadonlyMap<string, readonly Uint8Array[]>): DigestTable {
    // one allocation (a name left out leaves room unused)
    let bytes = 0;
    for (const [name, list] of map) {
      bytes += 8 + Buffer.byteLength(name, 'utf8');
      for (const d of list) bytes += 4 + d.length;
    }
    let cap = 2;
    while (cap < map.size * 2) cap *= 2;
    const slots = new Int32Array(cap * 2).fill(-1);
    const arena = Buffer.alloc(bytes);
    const mask = cap - 1;
    let top = 0;
    let size = 0;
    for (const [name, list] of map) {
      if (!wellFormed(name)) continue;
      const at = top;
      const n = arena.write(name, at + 4, 'utf8');
      putU32(arena, at, n);
      const h = murmur3(arena, at + 4, at + 4 + n);
      top = at + 4 + n;
      putU32(arena, top, list.length);
      top += 4;
      for (const d of list) {
        putU32(arena, top, d.length);
        arena.set(d, top + 4);
        top += 4 + d.length;
      }
      let s = h & mask;
      while (slots[2 * s + 1] !== -1) s = (s + 1) & mask;
      slots[2 * s] = h;
      slots[2 * s + 1] = at;
      size++;
    }
    return new DigestTable(slots, top === bytes ? arena : arena.subarray(0, top), size);
  }

  /** Looks up the UTF-8 name b[s..e) with `digest`. */
  lookupBytes(b: Uint8Array, s: number, e: number, digest: Uint8Array): LookupResult {
    const { slots, arena, mask } = this;
    const len = e - s;
    const h = murmur3(b, s, e);
    for (let slot = h & mask, probes = 0; probes <= mask; slot = (slot + 1) & mask, probes++) {
      const at = slots[2 * slot + 1];
      if (at < 0) return LOOKUP_UNKNOWN;
      if (slots[2 * slot] !== h || getU32(arena, at) !== len) continue;
      let p = at + 4;
      let i = s;
      while (i < e && arena[p] === b[i]) i++, p++;
      if (i < e) continue;
      let count = getU32(arena, p);
      p += 4;
      for (; count > 0; count--) {
        const n = getU32(arena, p);
        p += 4;
        if (n === digest.length) {
          let k = 0;
          while (k < n && arena[p + k] === digest[k]) k++;
          if (k === n) return LOOKUP_OK;
        }
        p += n;
      }
      return LOOKUP_MISMATCH;
    }
    return LOOKUP_UNKNOWN;
  }

  /** Looks up a name given as a string. */
  lookup(name: string, digest: Uint8Array): LookupResult {
    if (this.scratch.length < name.length * 3) this.scratch = new Uint8Array(name.length * 3);
    const n = Buffer.from(this.scratch.buffer, 0, this.scratch.length).write(name, 'utf8');
    return this.lookupBytes(this.scratch, 0, n, digest);
  }
}
