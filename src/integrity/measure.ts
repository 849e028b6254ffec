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
 * measure-read.ts for why: on this machine it is 2–4× faster than a pool of async reads). With a `looker` (worker
 * threads, src/agent/measure-pool.ts) new files are read and hashed elsewhere, sent as they are listed; this
 * thread still decides, records and emits in path order, so the entries and the state are the same either way.
 */
import { realpath, lstatSync, statSync, type BigIntStats } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { IntegrityError, IntegrityErrorCode } from './errors.ts';
import type { ImaEntry } from './ima-entry.ts';
import { fileEntry, pathEntry } from './measure-entry.ts';
import { closeP, errCode, lookSync, streamFd, streamPath, type Look, type LookHint, type LookStat } from './measure-read.ts';
import { RACY_WINDOW_MS, parseState, sameStat, serializeState, type FileState } from './measure-state.ts';
import { isUnder, listTree, sortPaths, type ListedKind, type ListingSink } from './measure-tree.ts';
import { TreeWatcher } from './measure-watch.ts';

export { MARK, MEASURE_PCR, ZERO_DIGEST, imaNgEntry, measurementName, parseMeasuredName, pathEntry } from './measure-entry.ts';
export { normalizeDomainXml, measureDomainXml, domainEntryName } from './domain-xml.ts';
export type { FileState } from './measure-state.ts';
export { lookMany, packLooks, PackedLookResults, unpackLooks, type Look, type LookHint, type LookStat, type PackedLooks } from './measure-read.ts';

/**
 * Looks at many paths at once, elsewhere: on other threads (src/agent/measure-pool.ts), so that reading and
 * hashing small files, which is mostly syscalls, uses every core. Each result must be what `lookMany` gives for
 * the path (the measurer's own lookSync, a large file as null); null, or a rejection, makes the measurer look at
 * the path itself. The measurer still decides, records and emits, in path order, on its own thread.
 */
export interface Looker {
  look(paths: readonly string[], hints: readonly LookHint[]): Promise<LookResults>;
  /** how many batches it works on at once (threads): the measurer keeps twice as many in flight */
  readonly parallelism: number;
}

/** What a Looker answers: an array, or anything that reads like one (a packed batch decoded on demand). */
export interface LookResults {
  readonly length: number;
  at(i: number): Look | null | undefined;
}

/** Paths per batch handed to a Looker: large enough that a message costs little per file. */
export const LOOK_BATCH = 256;

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
export async function measureTree(roots: string | string[], opts: { onError?: (e: Error) => void; looker?: Looker } = {}): Promise<ImaEntry[]> {
  const m = new Measurer({ roots: typeof roots === 'string' ? [roots] : roots, onError: opts.onError, looker: opts.looker });
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
  /** reads and hashes new files elsewhere (other threads); the results are the same as without it */
  looker?: Looker;
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
  /** looks sent to the Looker (while listing, then ahead of recording): by path, aheadRef(batch, index, hint) */
  ahead?: Map<string, number>;
  batches?: AheadBatch[];
}

/** A batch of looks sent to a Looker; the racy threshold was taken before it was sent, so before its reads. */
interface AheadBatch {
  racyFrom: bigint;
  looks: Promise<LookResults | null>;
  /** the results once in (null: the looker failed) */
  done: LookResults | null | undefined;
}
// one small integer per path, not an object: 100,000 paths are 100,000 objects fewer for the collector
const aheadRef = (batch: number, i: number, hint: LookHint): number => (batch * LOOK_BATCH + i) * 2 + (hint === 'symlink' ? 1 : 0);
const refHint = (ref: number): LookHint => (ref & 1 ? 'symlink' : 'file');
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
    const looker = this.opts.looker;
    // with a Looker, files are sent to it as they are listed: reading them overlaps the rest of the listing
    const sink = looker === undefined ? work.hints : this.aheadSink(looker, work);
    const listing = await listTree(dir, w === undefined ? { into: sink } : { onDir: (d) => w.add(d), into: sink });
    if (sink !== work.hints) (sink as ReturnType<Measurer['aheadSink']>).flush();
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
    const looker = this.opts.looker;
    if (looker !== undefined && (paths.length > LOOK_BATCH || work.ahead !== undefined)) return this.applyWith(looker, work, paths);
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
   * apply() with the looks made by a Looker: those sent while listing, and the rest sent here, batch by batch,
   * ahead of recording. Only paths that step() would look at without a stat first are sent (new, racy or
   * unreadable ones): a remembered file costs one lstat here.
   */
  private async applyWith(looker: Looker, work: Work, paths: string[]): Promise<void> {
    const window = Math.max(2, 2 * looker.parallelism) * LOOK_BATCH;
    let sent = 0;
    const sendUpTo = (end: number): void => {
      for (; sent < end; ) {
        const to = Math.min(end, sent + LOOK_BATCH);
        const ps: string[] = [];
        const hints: LookHint[] = [];
        for (let i = sent; i < to; i++) {
          const p = paths[i];
          const h = this.lookAhead(p, work.hints.get(p) as Hint, work.unlistable.size === 0 ? undefined : work.unlistable.get(p));
          const ref = work.ahead?.get(p);
          if (h !== undefined && (ref === undefined || refHint(ref) !== h)) {
            ps.push(p);
            hints.push(h);
          }
        }
        if (ps.length > 0) this.sendAhead(looker, work, ps, hints);
        sent = to;
      }
    };
    let sliceEnd = performance.now() + this.sliceMs;
    this.racyFrom = this.racyThreshold();
    for (let i = 0; i < paths.length; i++) {
      if ((i & 15) === 15 && performance.now() > sliceEnd) {
        await yieldToLoop();
        sliceEnd = performance.now() + this.sliceMs;
        this.racyFrom = this.racyThreshold();
      }
      const p = paths[i];
      const hint = work.hints.get(p) as Hint;
      const st = work.stats.size === 0 ? undefined : work.stats.get(p);
      const unlistable = work.unlistable.size === 0 ? undefined : work.unlistable.get(p);
      // keep `window` paths ahead sent (those the listing did not send), so the looker works while this thread records
      if (sent < paths.length && sent + LOOK_BATCH <= i + window) sendUpTo(Math.min(paths.length, sent + LOOK_BATCH));
      const ref = work.ahead?.get(p);
      let pending: void | Promise<void>;
      // the look made ahead stands for the one step() would make, if the path is still what it was sent as
      if (ref !== undefined && unlistable === undefined && hint === refHint(ref)) {
        const batch = (work.batches as AheadBatch[])[Math.floor(ref / (2 * LOOK_BATCH))];
        const looks = batch.done !== undefined ? batch.done : await batch.looks;
        const pre = looks?.at((ref >> 1) % LOOK_BATCH);
        // null: the looker failed, or left this one (a large file) to this thread
        pending = pre == null ? this.step(p, hint, st, unlistable) : this.step(p, hint, st, unlistable, pre, batch.racyFrom);
      } else pending = this.step(p, hint, st, unlistable);
      if (pending !== undefined) await pending;
    }
  }

  /** Send paths to the Looker; the racy threshold is taken first, so before any of their reads. */
  private sendAhead(looker: Looker, work: Work, paths: string[], hints: LookHint[]): void {
    const batch: AheadBatch = { racyFrom: this.racyThreshold(), looks: Promise.resolve(null), done: undefined };
    const n = paths.length;
    batch.looks = looker.look(paths, hints).then(
      (r) => (batch.done = r.length === n ? r : null),
      () => (batch.done = null), // the looker failed: this thread looks at them itself
    );
    const batches = (work.batches ??= []);
    const ahead = (work.ahead ??= new Map());
    const b = batches.push(batch) - 1;
    for (let i = 0; i < n; i++) ahead.set(paths[i], aheadRef(b, i, hints[i]));
  }

  /** A listing sink that also sends what step() will look at to the Looker, LOOK_BATCH paths at a time. */
  private aheadSink(looker: Looker, work: Work): ListingSink & { flush(): void } {
    let paths: string[] = [];
    let hints: LookHint[] = [];
    const flush = (): void => {
      if (paths.length === 0) return;
      this.sendAhead(looker, work, paths, hints);
      paths = [];
      hints = [];
    };
    return {
      set: (path: string, kind: ListedKind) => {
        work.hints.set(path, kind);
        const h = this.lookAhead(path, kind, undefined);
        if (h === undefined) return;
        paths.push(path);
        hints.push(h);
        if (paths.length === LOOK_BATCH) flush();
      },
      flush,
    };
  }

  /** The hint to look at `p` with when step() would look at it straight away (no stat to compare first). */
  private lookAhead(p: string, hint: Hint, unlistable: string | undefined): LookHint | undefined {
    if (unlistable !== undefined || (hint !== 'file' && hint !== 'symlink')) return undefined;
    const prev = this.files.get(p);
    if (prev !== undefined && prev.kind !== 'unreadable' && prev.racy !== true) return undefined;
    return hint;
  }

  /**
   * A file whose ctime is at or after this (ns since the epoch) may have been written again within the clock tick
   * it was hashed in. Taken once per slice, before the slice's reads: an earlier threshold only marks more files.
   */
  private racyThreshold(): bigint {
    return BigInt(Math.floor(this.now() - RACY_WINDOW_MS)) * 1_000_000n;
  }

  /**
   * One path: compare with what is remembered, hash if it may have changed, emit an entry if it did. `pre`: the
   * look made ahead (applyWith, only where lookAhead said so), with the racy threshold taken before it.
   */
  private step(p: string, hint: Hint, st: BigIntStats | undefined, unlistable: string | undefined, pre?: Look, preRacyFrom = this.racyFrom): void | Promise<void> {
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
    if (pre !== undefined) return this.record(p, prev, pre, preRacyFrom);
    const look = lookSync(p, hint === 'symlink' ? 'symlink' : 'file');
    if (look.kind === 'large') return this.streamLarge(p, prev, look.fd, look.stat, this.racyFrom);
    return this.record(p, prev, look, this.racyFrom);
  }

  private async streamLarge(p: string, prev: FileState | undefined, fd: number, stat: LookStat, racyFrom: bigint): Promise<void> {
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
        // a file's template hash may come with its look (computed where it was read: see PackedLooks)
        return this.emit(look.templateHash !== undefined && look.kind === 'file' ? fileEntry(p, look.digest, look.templateHash) : pathEntry(look.kind, p, look.digest));
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
