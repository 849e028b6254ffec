/**
 * Worker threads that read and hash files for the measurer (src/integrity/measure.ts, its `looker` option), so
 * that a first pass over a tree of small files uses every core: per file it is mostly syscalls (open, fstat, read,
 * close) and SHA-256, which libuv's pool of async fs calls makes slower, not faster (four round trips a file).
 * Each worker runs the measurer's own `lookMany` (measure-read.ts) on a batch of paths and sends the results back
 * packed into two transferred buffers; the measurer records and emits them in path order on its own thread.
 *
 * Where the native addon is built (native/, `lookPacked`), a worker hands each batch to it: one call opens, reads
 * and hashes every small file of the batch (~2.5× less CPU a file than node:fs here), and leaves what it cannot
 * answer exactly (links, large files, errors) to the measurer, which looks at those itself.
 *
 * Starting: a worker loads only measure-read, without the parent's flags (see howToLoad): with tsx's ESM loader
 * (`--import tsx`) a worker took 0.5–0.8 s to start here, as it starts a loader thread of its own. Workers start
 * when the pool is made; until one is ready, batches are looked at on the calling thread, which would only wait.
 * They keep the process alive only while they have work. A worker that fails fails its batches, which the
 * measurer then reads itself.
 */
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { lookMany, PackedLookResults, type LookHint, type Looker, type LookResults, type PackedLooks } from '../integrity/measure.ts';
import { nativeAddonPath } from './ima-native.ts';

type FromWorker = { type: 'ready' } | ({ type: 'looks'; id: number } & PackedLooks) | { type: 'error'; id: number; message: string };

/**
 * The worker: plain JS, so that it needs no TypeScript of its own. Its first message says how to load
 * measure-read: compiled JS to run (`code`), tsx's require hook and the .ts file, or a URL to import; then it
 * lookPacked's each batch.
 */
const WORKER = `
const { parentPort } = require('node:worker_threads');
const fail = (id, e) => parentPort.postMessage({ type: 'error', id, message: String((e && e.stack) || e) });
let read;
let native;
parentPort.on('message', async (m) => {
  if (read === undefined) {
    try {
      if (m.native) {
        try {
          native = require(m.native);
          if (native.abi !== 3 || typeof native.lookPacked !== 'function') native = undefined;
        } catch {
          native = undefined;
        }
      }
      if (m.code !== undefined) {
        const module = { exports: {} };
        new Function('exports', 'require', 'module', m.code)(module.exports, require, module);
        read = module.exports;
      } else if (m.tsxCjs !== undefined) {
        require(m.tsxCjs).register();
        read = require(m.file);
      } else read = await import(m.url);
      parentPort.postMessage({ type: 'ready' });
    } catch (e) {
      fail(-1, e);
    }
    return;
  }
  try {
    const p = (native ?? read).lookPacked(m.paths, m.hints);
    const transfer = p.templates ? [p.meta, p.digests, p.templates] : [p.meta, p.digests];
    parentPort.postMessage({ type: 'looks', id: m.id, meta: p.meta, digests: p.digests, templates: p.templates, errors: p.errors }, transfer);
  } catch (e) {
    fail(m.id, e);
  }
});
`;

const TS = import.meta.url.endsWith('.ts');
const READ_URL = new URL(`../integrity/measure-read${TS ? '.ts' : '.js'}`, import.meta.url);

type Load = ({ code: string } | { tsxCjs: string; file: string } | { url: string }) & { native?: string | null };
let loading: Promise<Load> | undefined;

/**
 * How workers load measure-read, found once per process. Compiled JS: they import it. Under tsx: the main thread
 * compiles it once with esbuild (tsx's own compiler, already installed with it), so that a worker starts in
 * ~0.05 s of CPU; without esbuild, each worker registers tsx's require hook (~0.2 s of CPU each here).
 */
function howToLoad(): Promise<Load> {
  loading ??= (async (): Promise<Load> => {
    if (!TS) return { url: READ_URL.href };
    const file = fileURLToPath(READ_URL);
    try {
      const spec = 'esbuild';
      const esbuild = (await import(spec)) as { transform(src: string, o: Record<string, string>): Promise<{ code: string }> };
      const code = (await esbuild.transform(await readFile(file, 'utf8'), { loader: 'ts', format: 'cjs', target: 'node20' })).code;
      return { code };
    } catch {
      return { tsxCjs: fileURLToPath(import.meta.resolve('tsx/cjs/api')), file };
    }
  })();
  return loading;
}

interface Pending {
  resolve: (looks: LookResults) => void;
  reject: (e: Error) => void;
  lane: Lane;
}

interface Lane {
  worker: Worker;
  /** it has loaded measure-read and takes batches */
  ready: boolean;
  /** batches sent and not answered */
  busy: number;
  dead: boolean;
}

export interface MeasurePoolOptions {
  /** worker threads (default: the cores available) */
  threads?: number;
  /** read with the native addon where it is built (default true; HUEGUARD_NATIVE=0 turns it off too) */
  native?: boolean;
}

export class MeasurePool implements Looker {
  readonly parallelism: number;
  /** the addon the workers read with, if any */
  readonly native: string | null;
  private readonly lanes: Lane[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private closed = false;

  constructor(opts: MeasurePoolOptions = {}) {
    this.parallelism = Math.max(1, opts.threads ?? availableParallelism());
    this.native = opts.native === false ? null : nativeAddonPath();
    const load = howToLoad();
    for (let i = 0; i < this.parallelism; i++) {
      // none of the parent's flags: `--import tsx` would start tsx's loader thread in each worker again, and
      // `--input-type=module` would make the CommonJS above fail
      const worker = new Worker(WORKER, { eval: true, execArgv: [] });
      const lane: Lane = { worker, ready: false, busy: 0, dead: false };
      worker.on('message', (m: FromWorker) => this.answer(lane, m));
      worker.on('error', (e) => this.fail(lane, e));
      worker.on('exit', (code) => this.fail(lane, new Error(`measure worker exited with code ${code}`)));
      worker.unref(); // referenced only while it has work (see look); after on('message'), which refs it again
      this.lanes.push(lane);
      load.then(
        (l) => worker.postMessage({ ...l, native: this.native }),
        (e: Error) => this.fail(lane, e),
      );
    }
  }

  /**
   * lookMany on the paths in a worker thread (the least busy one). While no worker has started yet, on the calling
   * thread: it would only wait (starting one takes 0.1–0.5 s here, under tsx and load).
   */
  look(paths: readonly string[], hints: readonly LookHint[]): Promise<LookResults> {
    let lane: Lane | undefined;
    let starting = false;
    for (const l of this.lanes) {
      if (l.dead) continue;
      if (!l.ready) starting = true;
      else if (lane === undefined || l.busy < lane.busy) lane = l;
    }
    if (this.closed || (lane === undefined && !starting)) return Promise.reject(new Error('the measure pool is closed or has no worker left'));
    if (lane === undefined) return Promise.resolve(lookMany(paths, hints));
    const id = this.nextId++;
    const msg = { id, paths: paths.join('\0'), hints: hints.map((h) => (h === 'symlink' ? 's' : 'f')).join('') };
    const chosen = lane;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, lane: chosen });
      if (chosen.busy++ === 0) chosen.worker.ref();
      chosen.worker.postMessage(msg);
    });
  }

  /** Stop the workers; batches still pending are rejected. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.lanes.map((l) => l.worker.terminate()));
  }

  private settle(lane: Lane, id: number): Pending | undefined {
    const p = this.pending.get(id);
    if (p === undefined || p.lane !== lane) return undefined;
    this.pending.delete(id);
    if (--lane.busy === 0) lane.worker.unref();
    return p;
  }

  private answer(lane: Lane, m: FromWorker): void {
    if (m.type === 'ready') {
      lane.ready = true;
      return;
    }
    if (m.type === 'looks') {
      this.settle(lane, m.id)?.resolve(new PackedLookResults(m));
      return;
    }
    const e = new Error(`measure worker: ${m.message}`);
    if (m.id === -1) this.fail(lane, e);
    else this.settle(lane, m.id)?.reject(e);
  }

  /** A worker that cannot go on: its batches fail (the measurer reads them itself), the others carry on. */
  private fail(lane: Lane, e: Error): void {
    if (lane.dead) return;
    lane.dead = true;
    for (const [id, p] of this.pending) {
      if (p.lane !== lane) continue;
      this.pending.delete(id);
      p.reject(e);
    }
    lane.busy = 0;
    lane.worker.unref();
    if (!this.closed) void lane.worker.terminate();
  }
}
