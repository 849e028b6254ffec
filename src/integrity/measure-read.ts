/**
 * Reading what a measurer measures: one path at a time, without following links, and hashing the content.
 *
 * Two paths, chosen by what was measured on this machine (2 cores, files of a few KB):
 * - Small files (≤ SMALL_FILE_MAX) are read synchronously, on the caller's thread, into one reused buffer:
 *   open → fstat → one read → close. A thread-pool round trip costs more than these syscalls, so a pool of 64
 *   async reads in flight hashed 20,000 files in 1.0–2.5 s, and this path in ~0.45 s (sha256sum: ~1.1 s). The
 *   caller (measure.ts) runs it in time slices and yields to the event loop between slices, or has worker
 *   threads run it (lookMany, packed for postMessage by packLooks, read back by PackedLookResults).
 * - Larger files and disk images are streamed: fs.read into two large buffers in turn, the next read in flight in
 *   the thread pool while the main thread hashes the previous chunk, so reading costs nothing next to SHA-256.
 *
 * Opening uses O_NOFOLLOW (a link is measured as a link, never followed), O_NONBLOCK (a FIFO put where a file was
 * cannot hang the reader) and O_NOCTTY. Every failure is classified: gone (ENOENT, ENOTDIR), or unreadable with its
 * errno code, which the measurer records (fail closed).
 */
import * as nodeCrypto from 'node:crypto';
import { createHash } from 'node:crypto';
import {
  close,
  closeSync,
  constants,
  fstat,
  fstatSync,
  lstatSync,
  open,
  openSync,
  read,
  readSync,
  readlinkSync,
  type BigIntStats,
} from 'node:fs';

/** SHA-256 of a buffer in one call (crypto.hash, Node ≥ 20.12), else through a Hash object. */
const oneShot = (nodeCrypto as { hash?: typeof nodeCrypto.hash }).hash;
function sha256OneShot(b: Buffer): Uint8Array {
  return typeof oneShot === 'function' ? oneShot('sha256', b, 'buffer') : createHash('sha256').update(b).digest();
}

/** Files up to this size are read synchronously in one read. */
export const SMALL_FILE_MAX = 1 << 20;
/**
 * The chunk of a streamed read (two are in use per stream): 2–8 MiB hashed a 1 GiB image equally fast here,
 * 0.5 and 16 MiB a little slower.
 */
export const STREAM_CHUNK = 8 << 20;

const OPEN_NOFOLLOW = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY;
const OPEN_FOLLOW = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY;

/** What a look keeps of a stat: what a measurer remembers of a file and compares the next time. */
export interface LookStat {
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  ino: bigint;
}

/** What one look at a path found. */
export type Look =
  | { kind: 'file' | 'symlink'; stat: LookStat; digest: Uint8Array; templateHash?: Uint8Array }
  /** a regular file too large for the synchronous path: the caller streams it (streamFd) and closes fd */
  | { kind: 'large'; fd: number; stat: LookStat }
  | { kind: 'unreadable'; error: string; stat?: LookStat }
  | { kind: 'absent' }
  | { kind: 'dir'; stat: LookStat }
  /** a FIFO, socket or device: never measured */
  | { kind: 'other' };

export function errCode(e: unknown): string {
  return typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'string' ? (e as { code: string }).code : 'EIO';
}
const isGone = (code: string) => code === 'ENOENT' || code === 'ENOTDIR';

const small = Buffer.allocUnsafe(SMALL_FILE_MAX + 1);
const SMALL_MAX_BIG = BigInt(SMALL_FILE_MAX);

function unreadable(path: string, error: string): Look {
  let stat: BigIntStats | undefined;
  try {
    stat = lstatSync(path, { bigint: true, throwIfNoEntry: false });
  } catch {
    stat = undefined;
  }
  return stat === undefined ? { kind: 'unreadable', error } : { kind: 'unreadable', error, stat };
}

/** A symbolic link: its lstat and sha256 of its target's bytes. */
function lookLinkSync(path: string, depth: number): Look {
  let stat: BigIntStats | undefined;
  try {
    stat = lstatSync(path, { bigint: true, throwIfNoEntry: false });
    if (stat === undefined) return { kind: 'absent' };
    if (!stat.isSymbolicLink()) return depth > 0 ? { kind: 'other' } : lookSync(path, 'file', depth + 1);
    const target = readlinkSync(path, { encoding: 'buffer' });
    return { kind: 'symlink', stat, digest: createHash('sha256').update(target).digest() };
  } catch (e) {
    const code = errCode(e);
    return isGone(code) ? { kind: 'absent' } : unreadable(path, code);
  }
}

/**
 * Look at a path synchronously. `hint` is what the directory listing said it was (a link is read as a link); a
 * path that changed kind since is handled as what it is now. Small files are hashed; a larger one comes back open
 * as `large`.
 */
export function lookSync(path: string, hint: 'file' | 'symlink' | undefined, depth = 0): Look {
  if (hint === 'symlink') return lookLinkSync(path, depth);
  let fd: number;
  try {
    fd = openSync(path, OPEN_NOFOLLOW);
  } catch (e) {
    const code = errCode(e);
    if (isGone(code)) return { kind: 'absent' };
    if (code === 'ELOOP' && depth === 0) return lookLinkSync(path, depth + 1); // it is a link (now)
    return unreadable(path, code);
  }
  let keepOpen = false;
  try {
    const stat = fstatSync(fd, { bigint: true });
    if (stat.isDirectory()) return { kind: 'dir', stat };
    if (!stat.isFile()) return { kind: 'other' };
    if (stat.size > SMALL_MAX_BIG) {
      keepOpen = true;
      return { kind: 'large', fd, stat };
    }
    // One read, unless the file grew past the buffer since fstat; a short read of a regular file means its end.
    const first = readSync(fd, small, 0, small.length, 0);
    // the usual case, hashed in one call: crypto.hash skips the Hash object (~5 µs a file less here)
    if (first < small.length) return { kind: 'file', stat, digest: sha256OneShot(small.subarray(0, first)) };
    const h = createHash('sha256');
    h.update(small);
    for (let pos = first; ; ) {
      const n = readSync(fd, small, 0, small.length, pos);
      if (n > 0) h.update(small.subarray(0, n));
      if (n < small.length) break;
      pos += n;
    }
    return { kind: 'file', stat, digest: h.digest() };
  } catch (e) {
    return unreadable(path, errCode(e));
  } finally {
    if (!keepOpen) closeSync(fd);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Many looks at once, on another thread (src/agent/measure-pool.ts runs lookMany in worker threads)

/** What a listing says a path is, for lookSync: a link is read as a link. */
export type LookHint = 'file' | 'symlink';

/**
 * lookSync on each path. A large file is not streamed here but closed and given as null: the caller looks at it
 * again on its own thread, where streaming overlaps reading and hashing.
 */
export function lookMany(paths: readonly string[], hints: readonly LookHint[]): (Look | null)[] {
  const out: (Look | null)[] = new Array(paths.length);
  for (let i = 0; i < paths.length; i++) {
    const look = lookSync(paths[i], hints[i]);
    if (look.kind === 'large') {
      closeSync(look.fd);
      out[i] = null;
    } else out[i] = look;
  }
  return out;
}

/**
 * Looks packed for postMessage, two buffers to transfer (no structured clone of an object per file): per look a
 * 40-byte record (kind, whether there is a stat, size, mtimeNs, ctimeNs, ino) and a 32-byte digest; errno codes
 * of unreadable files aside.
 */
export interface PackedLooks {
  meta: ArrayBuffer;
  digests: ArrayBuffer;
  /**
   * 20 bytes per look: a file's `ima-ng` template hash, computed with the look (the native reader does; see
   * native/ima_scan.cc), so that the measurer's thread need not
   */
  templates?: ArrayBuffer;
  /** index → errno code, for the unreadable ones */
  errors: Record<number, string>;
}
const PACKED_KINDS = ['file', 'symlink', 'unreadable', 'absent', 'dir', 'other', 'again'] as const;
const KIND_CODE: Record<string, number> = Object.fromEntries(PACKED_KINDS.map((k, i) => [k, i]));
const META = 40;

export function packLooks(looks: readonly (Look | null)[]): PackedLooks {
  const meta = new ArrayBuffer(looks.length * META);
  const digests = new Uint8Array(looks.length * 32);
  const dv = new DataView(meta);
  const errors: Record<number, string> = {};
  for (let i = 0; i < looks.length; i++) {
    const l = looks[i];
    const o = i * META;
    dv.setUint8(o, KIND_CODE[l === null || l.kind === 'large' ? 'again' : l.kind]);
    const st = l !== null && 'stat' in l ? l.stat : undefined;
    if (st !== undefined) {
      dv.setUint8(o + 1, 1);
      dv.setBigUint64(o + 8, st.size);
      dv.setBigUint64(o + 16, st.mtimeNs);
      dv.setBigUint64(o + 24, st.ctimeNs);
      dv.setBigUint64(o + 32, st.ino);
    }
    if (l?.kind === 'file' || l?.kind === 'symlink') digests.set(l.digest, i * 32);
    else if (l?.kind === 'unreadable') errors[i] = l.error;
  }
  return { meta, digests: digests.buffer, errors };
}

/**
 * What a worker thread does with a batch (src/agent/measure-pool.ts): the paths joined by NUL (a path cannot hold
 * one), one hint character per path (`f`, or `s` for a link), looked at and packed.
 */
export function lookPacked(paths: string, hints: string): PackedLooks {
  const ps = hints.length === 0 ? [] : paths.split('\0');
  const hs: LookHint[] = new Array(ps.length);
  for (let i = 0; i < ps.length; i++) hs[i] = hints.charCodeAt(i) === 115 /* s */ ? 'symlink' : 'file';
  return packLooks(lookMany(ps, hs));
}

/**
 * Packed looks read one at a time, when the measurer gets to each path: decoding all at once would make objects
 * that wait (and age) until then.
 */
export class PackedLookResults {
  readonly length: number;
  private readonly dv: DataView;
  constructor(private readonly p: PackedLooks) {
    this.dv = new DataView(p.meta);
    this.length = p.meta.byteLength / META;
  }

  at(i: number): Look | null | undefined {
    if (!(i >= 0 && i < this.length)) return undefined;
    const dv = this.dv;
    const o = i * META;
    const kind = PACKED_KINDS[dv.getUint8(o)];
    const stat: LookStat | undefined =
      dv.getUint8(o + 1) === 1
        ? { size: dv.getBigUint64(o + 8), mtimeNs: dv.getBigUint64(o + 16), ctimeNs: dv.getBigUint64(o + 24), ino: dv.getBigUint64(o + 32) }
        : undefined;
    switch (kind) {
      case 'file':
        // a Buffer, as node:crypto's digests are on the sequential path: entries compare equal either way
        return this.p.templates === undefined
          ? { kind, stat: stat as LookStat, digest: Buffer.from(this.p.digests, i * 32, 32) }
          : { kind, stat: stat as LookStat, digest: Buffer.from(this.p.digests, i * 32, 32), templateHash: Buffer.from(this.p.templates, i * 20, 20) };
      case 'symlink':
        return { kind, stat: stat as LookStat, digest: Buffer.from(this.p.digests, i * 32, 32) };
      case 'unreadable': {
        const error = this.p.errors[i] ?? 'EIO';
        return stat === undefined ? { kind, error } : { kind, error, stat };
      }
      case 'dir':
        return { kind, stat: stat as LookStat };
      case 'absent':
      case 'other':
        return { kind };
      default:
        return null;
    }
  }
}

export function unpackLooks(p: PackedLooks): (Look | null)[] {
  const r = new PackedLookResults(p);
  return Array.from({ length: r.length }, (_, i) => r.at(i) as Look | null);
}

// ---------------------------------------------------------------------------------------------------------------
// Streaming

const spare: Buffer[] = [];
const takeBuffer = () => spare.pop() ?? Buffer.allocUnsafe(STREAM_CHUNK);
const giveBack = (b: Buffer) => {
  if (spare.length < 4) spare.push(b);
};

function readAt(fd: number, buf: Buffer, pos: number): Promise<number> {
  return new Promise((resolve, reject) => read(fd, buf, 0, buf.length, pos, (e, n) => (e ? reject(e) : resolve(n))));
}

/**
 * SHA-256 of everything readable from fd, from offset 0 to its end: the next chunk is read while the previous one
 * is hashed. Does not close fd.
 */
export async function streamFd(fd: number): Promise<Uint8Array> {
  const h = createHash('sha256');
  let cur = takeBuffer();
  let next = takeBuffer();
  try {
    let pos = 0;
    let pending = readAt(fd, cur, 0);
    for (;;) {
      const n = await pending;
      if (n === 0) break;
      pos += n;
      pending = readAt(fd, next, pos); // in flight while cur is hashed
      h.update(n === cur.length ? cur : cur.subarray(0, n));
      [cur, next] = [next, cur];
    }
    return h.digest();
  } finally {
    giveBack(cur);
    giveBack(next);
  }
}

const openP = (path: string, flags: number) =>
  new Promise<number>((resolve, reject) => open(path, flags, (e, fd) => (e ? reject(e) : resolve(fd))));
const fstatP = (fd: number) =>
  new Promise<BigIntStats>((resolve, reject) => fstat(fd, { bigint: true }, (e, s) => (e ? reject(e) : resolve(s as BigIntStats))));
export const closeP = (fd: number) => new Promise<void>((resolve) => close(fd, () => resolve()));

/**
 * Stream a regular file or a block device (a disk image, or a volume holding one), following links: the operator
 * named it. Rejects with the errno code (as `code`) when it cannot be opened or read, or is of another kind.
 */
export async function streamPath(path: string): Promise<{ digest: Uint8Array; stat: BigIntStats }> {
  const fd = await openP(path, OPEN_FOLLOW);
  try {
    const stat = await fstatP(fd);
    if (!stat.isFile() && !stat.isBlockDevice()) {
      throw Object.assign(new Error(stat.isDirectory() ? 'is a directory' : 'not a regular file or block device'), {
        code: stat.isDirectory() ? 'EISDIR' : 'EINVAL',
      });
    }
    return { digest: await streamFd(fd), stat };
  } finally {
    await closeP(fd);
  }
}
