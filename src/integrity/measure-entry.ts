/**
 * The entries hueguard's measurers produce: `ima-ng`, sha256 file digests, PCR 10, as the kernel's default template
 * (FORMATS.md). This module fixes the naming conventions every measurer shares:
 *
 * - A regular file is named by its absolute path; its digest is sha256(content), what `sha256sum` prints.
 * - Names are made safe for ascii lists as the kernel does: a space becomes `_`. hueguard also turns every other
 *   control character (0x00–0x1f, 0x7f) into `_`, so that a file name can never break a line of an ascii list.
 * - Whatever is not "a regular file with this content" is named with a marker prefix, so that it can never look like
 *   a file's measurement (a path always starts with `/`, a marker never does):
 *     `symlink:<path>`     digest sha256(the link's target, the exact bytes readlink returns); links are never followed
 *     `deleted:<path>`     digest all zero: the file (or link) is gone, or is no longer a regular file or link
 *     `unreadable:<path>`  digest all zero: the file or directory could not be read (fail closed)
 *   A verifier that looks `/etc/passwd` up in its reference values therefore finds `deleted:/etc/passwd` missing
 *   ("not in policy"), never a matching digest. Excludes that should also cover markers must allow for the prefix,
 *   e.g. `^(symlink:|deleted:|unreadable:)?/tmp/`.
 * - A libvirt domain definition is named `libvirt:/domain/<name>.xml` (domain-xml.ts).
 */
import type { ImaEntry } from './ima-entry.ts';

/** The PCR IMA extends, and so do hueguard's measurers. */
export const MEASURE_PCR = 10;

/** Name prefixes of the entries that are not a regular file's content. */
export const MARK = {
  symlink: 'symlink:',
  deleted: 'deleted:',
  unreadable: 'unreadable:',
} as const;
export type MarkKind = keyof typeof MARK;

/** The digest of a `deleted:` or `unreadable:` entry (each entry gets its own copy). */
export const ZERO_DIGEST: Uint8Array = new Uint8Array(32);

const UNSAFE = /[\x00-\x20\x7f]/;
const UNSAFE_ALL = /[\x00-\x20\x7f]/g;

/** A path (or name) as it appears in an entry: spaces and control characters become `_`. */
export function measurementName(path: string): string {
  return UNSAFE.test(path) ? path.replace(UNSAFE_ALL, '_') : path;
}

/** What an entry name says: the kind of measurement and the path it is about. */
export function parseMeasuredName(name: string): { kind: 'file' | MarkKind; path: string } {
  for (const kind of Object.keys(MARK) as MarkKind[]) {
    if (name.startsWith(MARK[kind])) return { kind, path: name.slice(MARK[kind].length) };
  }
  return { kind: 'file', path: name };
}

// Template data of ima-ng with a sha256 digest: u32 40 | "sha256:" 0x00 | digest[32] | u32 len | name 0x00.
// Built in one reused buffer and hashed by sha1Scratch() below: computeTemplateHash() from ima-entry.ts gives the same
// bytes and hash (the tests check it) but costs ~10 µs an entry through its concatenations, and even a bare
// createHash('sha1') costs 3–6 µs here, mostly in allocating and collecting its native object. A 100,000-file
// tree feels both.
const HEAD = Buffer.from('sha256:\0', 'latin1');
let scratch = Buffer.allocUnsafe(4096);
let view = new DataView(scratch.buffer, scratch.byteOffset, scratch.length);
const W = new Int32Array(80);

/**
 * SHA-1 (FIPS 180-4) of scratch[0, len), padding in place: scratch must have 72 spare bytes after len. Short
 * inputs only (template data of one entry); for anything else node:crypto is the right tool.
 */
function sha1Scratch(len: number): Uint8Array {
  const total = (((len + 8) >>> 6) + 1) * 64;
  scratch[len] = 0x80;
  scratch.fill(0, len + 1, total - 8);
  view.setUint32(total - 8, Math.floor(len / 0x20000000));
  view.setUint32(total - 4, (len << 3) >>> 0);
  let h0 = 0x67452301;
  let h1 = 0xefcdab89 | 0;
  let h2 = 0x98badcfe | 0;
  let h3 = 0x10325476;
  let h4 = 0xc3d2e1f0 | 0;
  for (let off = 0; off < total; off += 64) {
    for (let i = 0; i < 16; i++) W[i] = view.getInt32(off + i * 4);
    for (let i = 16; i < 80; i++) {
      const x = W[i - 3] ^ W[i - 8] ^ W[i - 14] ^ W[i - 16];
      W[i] = (x << 1) | (x >>> 31);
    }
    let a = h0;
    let b = h1;
    let c = h2;
    let d = h3;
    let e = h4;
    let t = 0;
    // the four rounds of 20, each with its own function and constant (0x8f1bbcdc, 0xca62c1d6 as int32)
    for (let i = 0; i < 20; i++) {
      t = (((a << 5) | (a >>> 27)) + ((b & c) | (~b & d)) + e + 0x5a827999 + W[i]) | 0;
      e = d; d = c; c = (b << 30) | (b >>> 2); b = a; a = t; // prettier-ignore
    }
    for (let i = 20; i < 40; i++) {
      t = (((a << 5) | (a >>> 27)) + (b ^ c ^ d) + e + 0x6ed9eba1 + W[i]) | 0;
      e = d; d = c; c = (b << 30) | (b >>> 2); b = a; a = t; // prettier-ignore
    }
    for (let i = 40; i < 60; i++) {
      t = (((a << 5) | (a >>> 27)) + ((b & c) | (b & d) | (c & d)) + e - 0x70e44324 + W[i]) | 0;
      e = d; d = c; c = (b << 30) | (b >>> 2); b = a; a = t; // prettier-ignore
    }
    for (let i = 60; i < 80; i++) {
      t = (((a << 5) | (a >>> 27)) + (b ^ c ^ d) + e - 0x359d3e2a + W[i]) | 0;
      e = d; d = c; c = (b << 30) | (b >>> 2); b = a; a = t; // prettier-ignore
    }
    h0 = (h0 + a) | 0;
    h1 = (h1 + b) | 0;
    h2 = (h2 + c) | 0;
    h3 = (h3 + d) | 0;
    h4 = (h4 + e) | 0;
  }
  // a Buffer (as createHash's digests are) cut from Node's shared pool: no allocation of its own
  const out = Buffer.allocUnsafe(20);
  out.writeInt32BE(h0, 0);
  out.writeInt32BE(h1, 4);
  out.writeInt32BE(h2, 8);
  out.writeInt32BE(h3, 12);
  out.writeInt32BE(h4, 16);
  return out;
}

function templateHashSha256(name: string, digest: Uint8Array): Uint8Array {
  const max = 49 + name.length * 3 + 72; // UTF-8 takes at most 3 bytes per UTF-16 code unit; 72 for the padding
  if (scratch.length < max) {
    scratch = Buffer.allocUnsafe(max);
    view = new DataView(scratch.buffer, scratch.byteOffset, scratch.length);
  }
  scratch.writeUInt32LE(HEAD.length + 32, 0);
  HEAD.copy(scratch, 4);
  scratch.set(digest, 12);
  const n = scratch.write(name, 48, 'utf8');
  scratch.writeUInt32LE(n + 1, 44);
  scratch[48 + n] = 0;
  return sha1Scratch(49 + n);
}

/** An `ima-ng` entry for PCR 10 with a sha256 digest; `name` is used as given (see measurementName). */
export function imaNgEntry(name: string, digest: Uint8Array): ImaEntry {
  if (digest.length !== 32) throw new RangeError(`a sha256 digest has 32 bytes, not ${digest.length}`);
  return {
    pcr: MEASURE_PCR,
    template: 'ima-ng',
    templateHash: templateHashSha256(name, digest),
    digestAlg: 'sha256',
    digest,
    name,
  };
}

/**
 * A regular file's entry whose template hash was computed where the file was read (the native reader, from the
 * same path and digest: measure.test.ts checks both give the same list).
 */
export function fileEntry(path: string, digest: Uint8Array, templateHash: Uint8Array): ImaEntry {
  return { pcr: MEASURE_PCR, template: 'ima-ng', templateHash, digestAlg: 'sha256', digest, name: measurementName(path) };
}

/** The entry for a path: its kind's marker (none for a regular file) + the safe form of the path. */
export function pathEntry(kind: 'file' | MarkKind, path: string, digest: Uint8Array = new Uint8Array(32)): ImaEntry {
  const prefix = kind === 'file' ? '' : MARK[kind];
  return imaNgEntry(prefix + measurementName(path), digest);
}
