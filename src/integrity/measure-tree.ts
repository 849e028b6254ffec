/**
 * Listing a directory tree for measuring: every non-directory below a root with the kind its directory entry gives
 * (no stat per file), symbolic links listed but never followed, directories that cannot be listed reported. And the
 * one order every list of paths is put in: the bytes of the UTF-8 path, as `LC_ALL=C sort` orders them.
 */
import { lstatSync, readdir, type Dirent } from 'node:fs';
import { errCode } from './measure-read.ts';

/** What a directory entry is, as far as measuring goes. `unreadable`: a name that is not valid UTF-8 (see below). */
export type ListedKind = 'file' | 'symlink' | 'other' | 'unreadable';

/** Where a listing puts what it finds (a Map of a wider value type will do). */
export interface ListingSink {
  set(path: string, kind: ListedKind): unknown;
}

export interface Listing<S extends ListingSink = Map<string, ListedKind>> {
  /** every non-directory below the root */
  entries: S;
  /** directories that could not be listed, with the errno code */
  unlistable: Map<string, string>;
}

/** `dir/name`, without doubling the slash of `/`. */
export function joinPath(dir: string, name: string): string {
  return dir.endsWith('/') ? dir + name : `${dir}/${name}`;
}

/** Whether `path` is `root` or below it. */
export function isUnder(path: string, root: string): boolean {
  if (root === '/') return path.startsWith('/');
  return path === root || (path.startsWith(root) && path.charCodeAt(root.length) === 47 /* / */);
}

const HIGH = /[\ud800-\uffff]/;

/** UTF-8 byte order. UTF-16 code-unit order differs only where a surrogate meets U+E000–U+FFFF. */
function compareUtf8(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) {
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x - y;
  }
  return a.length - b.length;
}

/** Sort paths in place by their UTF-8 bytes (the plain, fast sort when no path needs the slower comparison). */
export function sortPaths(paths: string[]): string[] {
  return paths.some((p) => HIGH.test(p)) ? paths.sort(compareUtf8) : paths.sort();
}

/**
 * Node decodes file names as UTF-8 and puts U+FFFD where a name is not valid UTF-8; such a name cannot be opened
 * again, so it must not silently drop out of the measurement: it is listed `unreadable` unless it really exists.
 */
function kindOf(e: Dirent, path: string): ListedKind | 'dir' {
  if (e.name.includes('\ufffd')) {
    try {
      if (lstatSync(path, { throwIfNoEntry: false }) === undefined) return 'unreadable';
    } catch {
      return 'unreadable';
    }
  }
  if (e.isDirectory()) return 'dir';
  if (e.isSymbolicLink()) return 'symlink';
  if (e.isFile()) return 'file';
  return 'other';
}

/** Directories deeper than this below a root are not listed but reported unlistable (ELOOP). */
export const MAX_TREE_DEPTH = 256;

/**
 * List the tree below the directory `root` (not the root itself) into a new Map or into `into`. Directories are
 * visited depth first in path order (a measurer with a Looker starts reading files as they are listed, and then
 * records them in path order: the closer the two orders, the less it waits), each directory's subdirectories
 * read ahead, `concurrency` reads at a time. Files within one directory come in the order readdir gives.
 * `onDir(dir)` is called for each directory (the root included) just before it is read, so that a watch set up
 * there misses nothing that the listing does not show. A directory that vanishes while listed is skipped.
 */
export interface ListOptions {
  onDir?: (dir: string) => void;
  concurrency?: number;
}
export function listTree(root: string, opts?: ListOptions): Promise<Listing>;
export function listTree<S extends ListingSink>(root: string, opts: ListOptions & { into: S }): Promise<Listing<S>>;
export async function listTree(root: string, opts: ListOptions & { into?: ListingSink } = {}): Promise<Listing<ListingSink>> {
  const limit = Math.max(1, opts.concurrency ?? 8);
  const listing: Listing<ListingSink> = { entries: opts.into ?? new Map<string, ListedKind>(), unlistable: new Map() };
  type Read = Dirent[] | { error: string };
  interface Dir {
    path: string;
    depth: number;
    read?: Promise<Read>;
  }
  // reads are started in the order asked for, `limit` at a time
  const waiting: { dir: Dir; resolve: (r: Read) => void }[] = [];
  let active = 0;
  const pump = (): void => {
    while (active < limit && waiting.length > 0) {
      const { dir, resolve } = waiting.shift() as (typeof waiting)[number];
      active++;
      opts.onDir?.(dir.path);
      readdir(dir.path, { withFileTypes: true }, (err, ents) => {
        active--;
        resolve(err ? { error: errCode(err) } : ents);
        pump();
      });
    }
  };
  const ask = (dir: Dir): void => {
    dir.read = new Promise((resolve) => waiting.push({ dir, resolve }));
    pump();
  };
  // depth first: the next directory to visit is on top
  const first: Dir = { path: root, depth: 0 };
  ask(first);
  const stack: Dir[] = [first];
  while (stack.length > 0) {
    const dir = stack.pop() as Dir;
    const r = await (dir.read as Promise<Read>);
    if (!Array.isArray(r)) {
      if (r.error !== 'ENOENT' && r.error !== 'ENOTDIR') listing.unlistable.set(dir.path, r.error);
      continue;
    }
    const subdirs: Dir[] = [];
    for (const e of r) {
      const path = joinPath(dir.path, e.name);
      const kind = kindOf(e, path);
      if (kind !== 'dir') listing.entries.set(path, kind);
      else if (dir.depth + 1 > MAX_TREE_DEPTH) {
        // deeper than any real tree: a bind mount of a parent inside the tree, most likely
        listing.unlistable.set(path, 'ELOOP');
      } else subdirs.push({ path, depth: dir.depth + 1 });
    }
    if (subdirs.length === 0) continue;
    // in path order: a directory's contents sort as its name followed by '/'
    const keys = sortPaths(subdirs.map((d) => `${d.path}/`));
    const byKey = new Map(subdirs.map((d) => [`${d.path}/`, d]));
    const ordered = keys.map((k) => byKey.get(k) as Dir);
    for (const d of ordered) ask(d);
    for (let i = ordered.length - 1; i >= 0; i--) stack.push(ordered[i]);
  }
  return listing;
}
