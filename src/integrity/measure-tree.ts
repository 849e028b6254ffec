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
 * List the tree below the directory `root` (not the root itself), `concurrency` directories at a time, into a
 * new Map or into `into`.
 * `onDir(dir)` is called for each directory (the root included) just before it is read, so that a watch set up
 * there misses nothing that the listing does not show. A directory that vanishes while listed is skipped.
 */
export interface ListOptions {
  onDir?: (dir: string) => void;
  concurrency?: number;
}
export function listTree(root: string, opts?: ListOptions): Promise<Listing>;
export function listTree<S extends ListingSink>(root: string, opts: ListOptions & { into: S }): Promise<Listing<S>>;
export function listTree(root: string, opts: ListOptions & { into?: ListingSink } = {}): Promise<Listing<ListingSink>> {
  const limit = Math.max(1, opts.concurrency ?? 8);
  const listing: Listing<ListingSink> = { entries: opts.into ?? new Map<string, ListedKind>(), unlistable: new Map() };
  const queue: [string, number][] = [[root, 0]];
  let active = 0;
  return new Promise((resolve) => {
    const pump = () => {
      while (active < limit && queue.length > 0) {
        const [dir, depth] = queue.pop() as [string, number];
        if (depth > MAX_TREE_DEPTH) {
          // deeper than any real tree: a bind mount of a parent inside the tree, most likely
          listing.unlistable.set(dir, 'ELOOP');
          continue;
        }
        active++;
        opts.onDir?.(dir);
        readdir(dir, { withFileTypes: true }, (err, ents) => {
          active--;
          if (err) {
            const code = errCode(err);
            if (code !== 'ENOENT' && code !== 'ENOTDIR') listing.unlistable.set(dir, code);
          } else {
            for (const e of ents) {
              const path = joinPath(dir, e.name);
              const kind = kindOf(e, path);
              if (kind === 'dir') queue.push([path, depth + 1]);
              else listing.entries.set(path, kind);
            }
          }
          pump();
          if (active === 0 && queue.length === 0) resolve(listing);
        });
      }
    };
    pump();
  });
}
