/**
 * Measuring what a host can see of a VM, as `ima-ng` entries for PCR 10 (measure-entry.ts has the naming rules):
 *
 * - `measureFile(path)` / `measureImage(path)`: one file or disk image, streamed with large reads. A file that
 *   cannot be read is an IntegrityError `measure_unreadable` naming it.
 * - `measureTree(roots)`: every regular file and symbolic link below the roots, in path order (UTF-8 bytes). Special
 *   files (FIFOs, sockets, devices) are skipped. A file or directory that cannot be read is recorded as an
 *   `unreadable:<path>` entry (fail closed: it never looks like an unchanged file) and reported to `onError`.
 * - `Measurer`: the same first pass, then incremental re-measurement, a "software IMA" for guests without one.
 *   The list only grows, as IMA's does. After the first pass:
 *     · a file whose size, mtime, ctime or inode changed (or that is "racy", measure-state.ts) is hashed again;
 *       it gets a NEW entry when its content (or its kind) differs from the last one recorded for its path — so a
 *       file changed back to an old content gets a new entry, and a rewrite with the very same content does not
 *       (the kernel's IMA also adds no entry whose template hash is already in its list);
 *     · a file or link that disappears, or stops being a regular file or link, gets a `deleted:<path>` entry;
 *     · a new file (a new folder, a rename target) gets its entry; a rename is a `deleted:` of the old path plus
 *       an entry for the new one.
 *   With `watch: true` it follows the tree with one inotify watch per directory (measure-watch.ts) and re-looks
 *   only at the paths events name; `rescan()` finds changes without events (after a restart, against a state
 *   from `loadState()`). Entries go, in order, to `onEntry` (awaited when it returns a promise: a TPM extend),
 *   to `entries()` (an async iterator), and to `list`.
 * - `normalizeDomainXml(xml)` / `measureDomainXml(xml, name)`: a libvirt domain definition (domain-xml.ts).
 *
 * Reading is synchronous for small files, in slices of `sliceMs` between which the event loop runs (see
 * measure-read.ts for why: on this machine it is 2–4× faster than a pool of async reads).
 */
import { realpath, lstatSync, statSync, type BigIntStats } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { IntegrityError, IntegrityErrorCode } from './errors.ts';
import type { ImaEntry } from './ima-entry.ts';
import { pathEntry } from './measure-entry.ts';
import { closeP, errCode, lookSync, streamFd, streamPath, type Look } from './measure-read.ts';
import { RACY_WINDOW_MS, parseState, sameStat, serializeState, type FileState } from './measure-state.ts';
import { isUnder, listTree, sortPaths, type ListedKind } from './measure-tree.ts';
import { TreeWatcher } from './measure-watch.ts';

export { MARK, MEASURE_PCR, ZERO_DIGEST, imaNgEntry, measurementName, parseMeasuredName, pathEntry } from './measure-entry.ts';
export { normalizeDomainXml, measureDomainXml, domainEntryName } from './domain-xml.ts';
export type { FileState } from './measure-state.ts';

function unreadableError(path: string, code: string): IntegrityError {
  return new IntegrityError(IntegrityErrorCode.measureUnreadable, `cannot be measured (${code})`, { file: path });
}

/** SHA-256 of a file or block device (following links), streamed. */
export async function hashFile(path: string): Promise<Uint8Array> {
  const abs = resolve(path);
  try {
    return (await streamPath(abs)).digest;
  } catch (e) {
    throw unreadableError(abs, errCode(e));
  }
}

/** The entry of one file, named by its absolute path. */
export async function measureFile(path: string): Promise<ImaEntry> {
  const abs = resolve(path);
  return pathEntry('file', abs, await hashFile(abs));
}

/** The entry of a disk image (a regular file or a block device): the same streamed hashing as measureFile. */
export const measureImage = measureFile;

/** One pass over files and trees: their entries in path order. */
export async function measureTree(roots: string | string[], opts: { onError?: (e: Error) => void } = {}): Promise<ImaEntry[]> {
  const m = new Measurer({ roots: typeof roots === 'string' ? [roots] : roots, onError: opts.onError });
  try {
    return await m.start();
  } finally {
    await m.close();
  }
}

export interface MeasurerOptions {
  /** files and directories to measure; each is resolved to its real path when the measurer starts */
  roots: string[];
  /** go on watching after the first pass (default false) */
  watch?: boolean;
  /** each new entry, in order; a returned promise is awaited before the next entry is emitted */
  onEntry?: (entry: ImaEntry) => void | Promise<void>;
  /** unreadable files (IntegrityError measure_unreadable), watch errors, onEntry failures; measuring goes on */
  onError?: (error: Error) => void;
  /** the wall clock in ms, to tell racy files (default Date.now) */
  now?: () => number;
  /** events are gathered this long before they are acted on, so one write is one look (default 10 ms) */
  settleMs?: number;
  /** the longest stretch of synchronous reading before the event loop gets a turn (default 8 ms) */
  sliceMs?: number;
  /** whether the watches keep the process alive (default true) */
  persistent?: boolean;
}

/** What a listing or an event says a path is: a listed kind, or gone. */
type Hint = ListedKind | 'absent';

/** The work of one pass or one batch of events. */
interface Work {
  hints: Map<string, Hint>;
  /** stats taken while handling events, so that an unchanged file costs one lstat */
  stats: Map<string, BigIntStats>;
  /** directories that could not be listed, with the errno code */
  unlistable: Map<string, string>;
}
const newWork = (): Work => ({ hints: new Map(), stats: new Map(), unlistable: new Map() });

const yieldToLoop = () => new Promise<void>((r) => setImmediate(r));

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

export class Measurer {
  /** every entry so far, in order; it only grows */
  readonly list: ImaEntry[] = [];
  private files = new Map<string, FileState>();
  private roots: string[] = [];
  private watcher: TreeWatcher | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private dirty = new Map<string, boolean>();
  private timer: NodeJS.Timeout | undefined;
  private waiters: (() => void)[] = [];
  private started = false;
  private closed = false;
  private readonly now: () => number;
  private readonly settleMs: number;
  private readonly sliceMs: number;
  private racyFrom = 0n;

  constructor(private readonly opts: MeasurerOptions) {
    this.now = opts.now ?? Date.now;
    this.settleMs = opts.settleMs ?? 10;
    this.sliceMs = opts.sliceMs ?? 8;
  }

  /** The roots being measured (real paths), once started. */
  get rootPaths(): readonly string[] {
    return this.roots;
  }

  /** What is remembered of each path measured. */
  get state(): ReadonlyMap<string, FileState> {
    return this.files;
  }

  /** The state as JSON (measure-state.ts), for the next run's loadState. */
  saveState(): string {
    return serializeState(this.files);
  }

  /** Start from a saved state instead of nothing: start() then reports only what changed since. */
  loadState(json: string): void {
    if (this.started) throw new Error('loadState() must come before start()');
    this.files = parseState(json);
  }

  /**
   * Resolve the roots, set up the watches (with `watch`), and measure: everything the first time, or what differs
   * from a loaded state. Resolves to the entries of this pass. A root that does not exist or cannot be resolved
   * is an IntegrityError `measure_unreadable`.
   */
  async start(): Promise<ImaEntry[]> {
    if (this.started) throw new Error('a Measurer starts once');
    this.started = true;
    const real = await Promise.all(
      this.opts.roots.map(
        (r) =>
          new Promise<string>((ok, fail) =>
            realpath(resolve(r), (e, p) => (e ? fail(unreadableError(resolve(r), errCode(e))) : ok(p))),
          ),
      ),
    );
    // Drop duplicates and roots inside other roots: each path is measured once.
    const sorted = sortPaths([...new Set(real)]);
    this.roots = sorted.filter((r) => !sorted.some((o) => o !== r && isUnder(r, o)));
    if (this.opts.watch) {
      this.watcher = new TreeWatcher(
        (path, deep) => this.touched(path, deep),
        (e) => this.opts.onError?.(e),
        this.opts.persistent ?? true,
      );
    }
    return this.rescan();
  }

  /** Look at everything again, without relying on events; resolves to the new entries. */
  rescan(): Promise<ImaEntry[]> {
    if (!this.started) return Promise.reject(new Error('start() first'));
    return this.run(() => this.fullPass());
  }

  /** Resolves once no event is waiting and no pass is running. */
  async idle(): Promise<void> {
    for (;;) {
      if (this.timer !== undefined) {
        await new Promise((r) => setTimeout(r, this.settleMs + 1));
        continue;
      }
      const q = this.queue;
      await q;
      if (q === this.queue && this.timer === undefined) return;
    }
  }

  /** Every entry, from the first, then each new one as it comes; ends when the measurer is closed. */
  entries(): AsyncIterableIterator<ImaEntry> {
    let i = 0;
    let stopped = false;
    const iter: AsyncIterableIterator<ImaEntry> = {
      [Symbol.asyncIterator]: () => iter,
      next: async () => {
        while (!stopped && i >= this.list.length && !this.closed) await new Promise<void>((r) => this.waiters.push(r));
        if (!stopped && i < this.list.length) return { value: this.list[i++], done: false };
        return { value: undefined, done: true };
      },
      return: async () => {
        stopped = true;
        this.wake();
        return { value: undefined, done: true };
      },
    };
    return iter;
  }

  /** Stop watching, let the running pass finish, end the iterators. */
  async close(): Promise<void> {
    this.watcher?.close();
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.dirty.clear();
    await this.queue;
    this.closed = true;
    this.wake();
  }

  // -------------------------------------------------------------------------------------------------------------

  /** Run passes one at a time; resolves to the entries the pass emitted. */
  private run(task: () => Promise<void>): Promise<ImaEntry[]> {
    const p = this.queue.then(async () => {
      const from = this.list.length;
      await task();
      return this.list.slice(from);
    });
    this.queue = p.catch((e: unknown) => this.opts.onError?.(e as Error));
    return p;
  }

  private wake(): void {
    if (this.waiters.length === 0) return;
    const w = this.waiters;
    this.waiters = [];
    for (const r of w) r();
  }

  /** An event named `path`: remember it, and act on everything gathered once events settle. */
  private touched(path: string, deep: boolean): void {
    if (this.closed) return;
    let wanted = false;
    for (const root of this.roots) {
      if (isUnder(path, root)) wanted = true;
      // a deep event on a directory holding a root (a file root's folder): look at that root again
      else if (deep && isUnder(root, path)) this.dirty.set(root, true);
    }
    if (wanted) this.dirty.set(path, deep || (this.dirty.get(path) ?? false));
    if (this.timer === undefined && this.dirty.size > 0) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        void this.run(() => {
          const batch = this.dirty;
          this.dirty = new Map();
          return this.eventPass(batch);
        });
      }, this.settleMs);
    }
  }

  /** Everything below the roots, and every remembered path there. */
  private async fullPass(): Promise<void> {
    const work = newWork();
    for (const root of this.roots) {
      let st: BigIntStats | undefined;
      try {
        st = statSync(root, { bigint: true, throwIfNoEntry: false });
      } catch (e) {
        // it exists but cannot be looked at: unreadable, and so is everything measured below it
        work.hints.set(root, 'unreadable');
        work.unlistable.set(root, errCode(e));
      }
      if (st?.isDirectory()) {
        await this.listInto(root, work);
      } else if (st !== undefined) {
        work.hints.set(root, 'file');
        this.watcher?.add(dirname(root));
      }
      // what is remembered below the root but was not listed is gone (or can no longer be read: fail closed)
      for (const p of this.files.keys()) if (isUnder(p, root) && !work.hints.has(p)) work.hints.set(p, 'absent');
    }
    await this.apply(work);
  }

  /** List a directory into the work (watching what it holds) and mark remembered paths below it not listed. */
  private async listInto(dir: string, work: Work): Promise<void> {
    const w = this.watcher;
    const listing = await listTree(dir, w === undefined ? { into: work.hints } : { onDir: (d) => w.add(d), into: work.hints });
    for (const [d, code] of listing.unlistable) {
      work.hints.set(d, 'unreadable');
      work.unlistable.set(d, code);
    }
    this.goneBelow(dir, work);
  }

  /** Every remembered path below `path` that the work does not list is gone. */
  private goneBelow(path: string, work: Work): void {
    for (const p of this.files.keys()) {
      if (p !== path && isUnder(p, path) && !work.hints.has(p)) work.hints.set(p, 'absent');
    }
  }

  /** The paths events named since the last batch: look at each (a new or replaced directory is listed). */
  private async eventPass(batch: Map<string, boolean>): Promise<void> {
    const work = newWork();
    const w = this.watcher;
    for (const [p, deep] of batch) {
      let st: BigIntStats | undefined;
      try {
        st = lstatSync(p, { bigint: true, throwIfNoEntry: false });
      } catch {
        work.hints.set(p, 'file'); // cannot even stat it: lookSync records why
        continue;
      }
      if (st === undefined) {
        // gone: a file, or a directory with everything below it
        w?.removeUnder(p);
        work.hints.set(p, 'absent');
        const was = this.files.get(p);
        if (was === undefined || was.dir === true) this.goneBelow(p, work);
        continue;
      }
      if (st.isDirectory()) {
        if (this.files.has(p) && this.files.get(p)?.dir !== true) work.hints.set(p, 'absent'); // was a file
        const known = w?.inode(p);
        if (known === st.ino && !deep) continue; // a directory already watched: its entries report themselves
        if (known !== undefined && known !== st.ino) w?.removeUnder(p);
        await this.listInto(p, work);
        continue;
      }
      if (w?.inode(p) !== undefined) {
        // a directory replaced by something else
        w.removeUnder(p);
        this.goneBelow(p, work);
      }
      work.hints.set(p, st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : 'other');
      work.stats.set(p, st);
    }
    await this.apply(work);
  }

  /** Look at every path of the work in path order, in slices, emitting entries as they come. */
  private async apply(work: Work): Promise<void> {
    const paths = sortPaths([...work.hints.keys()]);
    let sliceEnd = performance.now() + this.sliceMs;
    this.racyFrom = this.racyThreshold();
    for (let i = 0; i < paths.length; i++) {
      if ((i & 15) === 15 && performance.now() > sliceEnd) {
        await yieldToLoop();
        sliceEnd = performance.now() + this.sliceMs;
        this.racyFrom = this.racyThreshold();
      }
      const p = paths[i];
      const st = work.stats.size === 0 ? undefined : work.stats.get(p);
      const unlistable = work.unlistable.size === 0 ? undefined : work.unlistable.get(p);
      const pending = this.step(p, work.hints.get(p) as Hint, st, unlistable);
      if (pending !== undefined) await pending;
    }
  }

  /**
   * A file whose ctime is at or after this (ns since the epoch) may have been written again within the clock tick
   * it was hashed in. Taken once per slice, before the slice's reads: an earlier threshold only marks more files.
   */
  private racyThreshold(): bigint {
    return BigInt(Math.floor(this.now() - RACY_WINDOW_MS)) * 1_000_000n;
  }

  /** One path: compare with what is remembered, hash if it may have changed, emit an entry if it did. */
  private step(p: string, hint: Hint, st: BigIntStats | undefined, unlistable: string | undefined): void | Promise<void> {
    const prev = this.files.get(p);
    if (unlistable !== undefined) {
      this.files.set(p, {
        kind: 'unreadable', size: 0, mtimeNs: 0n, ctimeNs: 0n, ino: 0n, digest: new Uint8Array(32), error: unlistable, dir: true,
      });
      if (prev?.kind === 'unreadable') return;
      this.opts.onError?.(unreadableError(p, unlistable));
      return this.emit(pathEntry('unreadable', p));
    }
    if (hint === 'absent' || hint === 'other') return this.gone(p, prev);
    if (hint === 'unreadable') return this.record(p, prev, { kind: 'unreadable', error: 'EILSEQ' }, 0n);
    if (prev !== undefined && prev.kind !== 'unreadable' && prev.racy !== true) {
      let now = st;
      if (now === undefined) {
        try {
          now = lstatSync(p, { bigint: true, throwIfNoEntry: false });
          if (now === undefined) return this.gone(p, prev);
        } catch {
          now = undefined;
        }
      }
      if (now !== undefined && sameStat(prev, now) && (prev.kind === 'symlink') === now.isSymbolicLink()) return;
    }
    const look = lookSync(p, hint === 'symlink' ? 'symlink' : 'file');
    if (look.kind === 'large') return this.streamLarge(p, prev, look.fd, look.stat, this.racyFrom);
    return this.record(p, prev, look, this.racyFrom);
  }

  private async streamLarge(p: string, prev: FileState | undefined, fd: number, stat: BigIntStats, racyFrom: bigint): Promise<void> {
    let look: Look;
    try {
      look = { kind: 'file', stat, digest: await streamFd(fd) };
    } catch (e) {
      look = { kind: 'unreadable', error: errCode(e), stat };
    } finally {
      await closeP(fd);
    }
    await this.record(p, prev, look, racyFrom);
  }

  /** Remember what a look found, and emit an entry when the path's content or kind changed. */
  private record(p: string, prev: FileState | undefined, look: Look, racyFrom: bigint): void | Promise<void> {
    switch (look.kind) {
      case 'absent':
      case 'other':
      case 'dir': // a directory now: what it holds comes from its own listing
        return this.gone(p, prev);
      case 'large':
        throw new Error('unreachable: large files are streamed first');
      case 'unreadable': {
        const s = look.stat;
        this.files.set(p, {
          kind: 'unreadable',
          size: s === undefined ? 0 : Number(s.size),
          mtimeNs: s?.mtimeNs ?? 0n,
          ctimeNs: s?.ctimeNs ?? 0n,
          ino: s?.ino ?? 0n,
          digest: new Uint8Array(32),
          error: look.error,
        });
        if (prev?.kind === 'unreadable') return;
        this.opts.onError?.(unreadableError(p, look.error));
        return this.emit(pathEntry('unreadable', p));
      }
      case 'file':
      case 'symlink': {
        const s = look.stat;
        const next: FileState = {
          kind: look.kind, size: Number(s.size), mtimeNs: s.mtimeNs, ctimeNs: s.ctimeNs, ino: s.ino, digest: look.digest,
        };
        if (s.ctimeNs >= racyFrom) next.racy = true;
        this.files.set(p, next);
        if (prev !== undefined && prev.kind === next.kind && sameBytes(prev.digest, next.digest)) return;
        return this.emit(pathEntry(look.kind, p, look.digest));
      }
    }
  }

  private gone(p: string, prev: FileState | undefined): void | Promise<void> {
    if (prev === undefined) return;
    this.files.delete(p);
    if (prev.dir === true) return; // a directory that could not be listed: what it holds speaks for itself
    return this.emit(pathEntry('deleted', p));
  }

  private emit(entry: ImaEntry): void | Promise<void> {
    this.list.push(entry);
    this.wake();
    const cb = this.opts.onEntry;
    if (cb === undefined) return;
    const fail = (e: unknown) => this.opts.onError?.(e instanceof Error ? e : new Error(String(e)));
    try {
      const r = cb(entry);
      if (r !== undefined && typeof (r as Promise<void>).then === 'function') return (r as Promise<void>).then(undefined, fail);
    } catch (e) {
      fail(e);
    }
  }
}
