/**
 * What a measurer remembers of each path it measured, and its JSON form (the CLI's `--state FILE`).
 *
 * A file is hashed again only when its size, mtime, ctime or inode differ from what is remembered, or when it is
 * `racy`. ctime is compared too because mtime can be set back by anyone who can write the file (`touch -r`), ctime
 * cannot. `racy` is git's "racily clean" problem: file timestamps advance in clock ticks, so a file written again
 * within the tick in which it was hashed keeps the same stat; a file whose ctime was less than RACY_WINDOW_MS
 * before the hashing started is therefore hashed again at the next look, whatever its stat says.
 *
 *   { "format": "hueguard-measure-state", "version": 1,
 *     "files": { "/abs/path": { "kind": "file", "size": 12, "mtimeNs": "1700000000123456789",
 *                               "ctimeNs": "…", "ino": "1234", "digest": "<64 hex>", "racy": true }, … } }
 *
 * `kind` is `file`, `symlink` or `unreadable` (then `error` holds the errno code, and `dir: true` marks a directory
 * that could not be listed). Nanoseconds and inodes are decimal strings: they do not fit a JSON number.
 */
import { IntegrityError, IntegrityErrorCode } from './errors.ts';

export const STATE_FORMAT = 'hueguard-measure-state';
export const RACY_WINDOW_MS = 2000;

export interface FileState {
  kind: 'file' | 'symlink' | 'unreadable';
  size: number;
  mtimeNs: bigint;
  ctimeNs: bigint;
  ino: bigint;
  /** sha256 of the content (file), of the target (symlink); all zero when unreadable */
  digest: Uint8Array;
  /** hash again at the next look even if the stat is the same */
  racy?: boolean;
  /** unreadable: the errno code */
  error?: string;
  /** unreadable: a directory that could not be listed */
  dir?: boolean;
}

/** What a stat must match for a remembered file to count as unchanged. */
export interface StatLike {
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  ino: bigint;
}

export function sameStat(s: FileState, st: StatLike): boolean {
  return BigInt(s.size) === st.size && s.mtimeNs === st.mtimeNs && s.ctimeNs === st.ctimeNs && s.ino === st.ino;
}

export function serializeState(files: Map<string, FileState>): string {
  const out: Record<string, unknown> = {};
  for (const [path, s] of files) {
    const o: Record<string, unknown> = {
      kind: s.kind,
      size: s.size,
      mtimeNs: s.mtimeNs.toString(),
      ctimeNs: s.ctimeNs.toString(),
      ino: s.ino.toString(),
      digest: Buffer.from(s.digest).toString('hex'),
    };
    if (s.racy) o.racy = true;
    if (s.error !== undefined) o.error = s.error;
    if (s.dir) o.dir = true;
    out[path] = o;
  }
  return JSON.stringify({ format: STATE_FORMAT, version: 1, files: out });
}

function bad(message: string, field?: string): never {
  throw new IntegrityError(IntegrityErrorCode.measureBadState, message, field === undefined ? {} : { field });
}

const DEC = /^\d{1,30}$/;
const HEX64 = /^[0-9a-f]{64}$/;

/** Read a state back; anything out of shape is a `measure_bad_state` error naming the field. */
export function parseState(json: string): Map<string, FileState> {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch (e) {
    bad(`not JSON: ${(e as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) bad('not a JSON object');
  const d = doc as Record<string, unknown>;
  if (d.format !== STATE_FORMAT) bad(`format is not "${STATE_FORMAT}"`, 'format');
  if (d.version !== 1) bad(`version ${JSON.stringify(d.version)} is not supported (1 is)`, 'version');
  if (typeof d.files !== 'object' || d.files === null || Array.isArray(d.files)) bad('files is not an object', 'files');
  const files = new Map<string, FileState>();
  for (const [path, v] of Object.entries(d.files as Record<string, unknown>)) {
    const f = (name: string) => `files["${path}"].${name}`;
    if (!path.startsWith('/')) bad('a path is not absolute', `files["${path}"]`);
    if (typeof v !== 'object' || v === null) bad('not an object', `files["${path}"]`);
    const o = v as Record<string, unknown>;
    if (o.kind !== 'file' && o.kind !== 'symlink' && o.kind !== 'unreadable') bad('kind is not file, symlink or unreadable', f('kind'));
    if (typeof o.size !== 'number' || !Number.isSafeInteger(o.size) || o.size < 0) bad('size is not a size', f('size'));
    for (const k of ['mtimeNs', 'ctimeNs', 'ino']) if (typeof o[k] !== 'string' || !DEC.test(o[k] as string)) bad('not a decimal string', f(k));
    if (typeof o.digest !== 'string' || !HEX64.test(o.digest)) bad('not 64 lowercase hex digits', f('digest'));
    if (o.racy !== undefined && typeof o.racy !== 'boolean') bad('not a boolean', f('racy'));
    if (o.dir !== undefined && typeof o.dir !== 'boolean') bad('not a boolean', f('dir'));
    if (o.error !== undefined && typeof o.error !== 'string') bad('not a string', f('error'));
    const s: FileState = {
      kind: o.kind,
      size: o.size,
      mtimeNs: BigInt(o.mtimeNs as string),
      ctimeNs: BigInt(o.ctimeNs as string),
      ino: BigInt(o.ino as string),
      digest: Buffer.from(o.digest, 'hex'),
    };
    if (o.racy === true) s.racy = true;
    if (typeof o.error === 'string') s.error = o.error;
    if (o.dir === true) s.dir = true;
    files.set(path, s);
  }
  return files;
}
