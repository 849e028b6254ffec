/**
 * Watching a tree: one inotify watch per directory (a non-recursive `fs.watch`), reporting the paths touched.
 *
 * Not `fs.watch(root, { recursive: true })`: on Linux, Node 20 implements that in JavaScript with a watch and a
 * statSync per *file* (100,000 files = 100,000 inotify watches and a blocking stat of each at start), re-reads a whole
 * directory synchronously on every event in it, and — checked on this machine — never again reports an in-place
 * write to a file that was once replaced by a rename (the way editors and package managers save), because its
 * per-file watch stays on the replaced inode. A watch on each directory sees every change to the entries in it,
 * whatever inode they have, and costs one watch per directory.
 *
 * The watcher knows nothing of files: it reports `(path, deep)`, `path` being the entry an event names, `deep`
 * when the event named no entry (then the directory itself must be listed again). The measurer decides what
 * changed. When a watched directory is removed or moved, the event from its own watch names the directory's own
 * base name, so the directory itself is reported too.
 */
import { lstatSync, watch, type FSWatcher } from 'node:fs';
import { basename } from 'node:path';
import { isUnder, joinPath } from './measure-tree.ts';

interface Watched {
  watcher: FSWatcher;
  /** the inode this watch is on: a directory replaced by another one under the same path must be watched anew */
  ino: bigint;
}

export class TreeWatcher {
  private readonly dirs = new Map<string, Watched>();
  private closed = false;

  constructor(
    private readonly onPath: (path: string, deep: boolean) => void,
    private readonly onError: (e: Error) => void,
    private readonly persistent = true,
  ) {}

  /** The inode of the directory watched at `dir`, if one is. */
  inode(dir: string): bigint | undefined {
    return this.dirs.get(dir)?.ino;
  }

  get size(): number {
    return this.dirs.size;
  }

  /** Watch `dir` (once; anew if another directory now stands at that path). Errors go to onError. */
  add(dir: string): void {
    if (this.closed) return;
    let ino: bigint;
    try {
      const st = lstatSync(dir, { bigint: true, throwIfNoEntry: false });
      if (st === undefined || !st.isDirectory()) return;
      ino = st.ino;
    } catch (e) {
      this.onError(e as Error);
      return;
    }
    const known = this.dirs.get(dir);
    if (known !== undefined) {
      if (known.ino === ino) return;
      known.watcher.close();
    }
    try {
      const base = basename(dir);
      const watcher = watch(dir, { persistent: this.persistent }, (_event, name) => {
        if (this.closed) return;
        if (name === null || name === undefined || name === '') {
          this.onPath(dir, true);
          return;
        }
        const file = typeof name === 'string' ? name : String(name);
        this.onPath(joinPath(dir, file), false);
        if (file === base) this.onPath(dir, false); // the directory itself was moved or deleted
      });
      watcher.on('error', (e) => {
        // the directory is gone or cannot be watched any more: let the measurer look at it again
        this.unwatch(dir);
        this.onError(e);
        this.onPath(dir, true);
      });
      this.dirs.set(dir, { watcher, ino });
    } catch (e) {
      // ENOSPC: out of inotify watches (fs.inotify.max_user_watches); ENOENT: gone already
      this.dirs.delete(dir);
      const err = e as NodeJS.ErrnoException;
      if (err.code !== 'ENOENT') this.onError(err);
    }
  }

  private unwatch(dir: string): void {
    const w = this.dirs.get(dir);
    if (w === undefined) return;
    this.dirs.delete(dir);
    w.watcher.close();
  }

  /** Stop watching `path` and every directory below it (it was removed, replaced or moved away). */
  removeUnder(path: string): void {
    for (const dir of [...this.dirs.keys()]) if (isUnder(dir, path)) this.unwatch(dir);
  }

  close(): void {
    this.closed = true;
    for (const dir of [...this.dirs.keys()]) this.unwatch(dir);
  }
}
