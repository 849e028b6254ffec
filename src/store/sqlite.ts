/**
 * The SQLite store, the embedded default: one file, `hueguard.db`, in the controller's data directory.
 *
 * Durability: a resolved write has reached the disk. The WAL is synced before a write resolves — but not by
 * SQLite inside COMMIT, which would hold this (the only) thread for the sync: the connection commits with
 * synchronous=NORMAL (in WAL mode: the commit's pages are written to the WAL file, not yet synced; checkpoints
 * still sync in the right order, so the database is never corrupted), and then the WAL file is fsynced in libuv's
 * thread pool before the write's promise resolves. Commits made while a sync is under way wait for the next one,
 * which covers them all (group commit at the file level). `syncInThread: false` gives SQLite's own
 * synchronous=FULL instead (a sync in every COMMIT, on this thread). better-sqlite3 is synchronous; the store wraps
 * it in the async interface and runs every call through one mutex per database file in this process. Without it a caller's statement could run on the connection while
 * another caller's transaction is open and become part of it (and be rolled back with it), and a second store on
 * the same file in this process would block the event loop in SQLite's busy wait while the first held the lock.
 * Other processes on the same file wait up to the busy timeout (better-sqlite3's `timeout`, SQLite's busy_timeout);
 * more than one controller belongs on PostgreSQL. One consequence of the mutex: inside `tx(fn)`, `fn` must not wait
 * for a store call started outside its async context (say, by an event handler set up earlier) — that call waits
 * for the transaction to end, and the transaction for it.
 *
 * Tables are STRICT, so a value of the wrong type fails here as it does on PostgreSQL.
 *
 * Checkpoints (copying the WAL back into the database file, and syncing that) run on a worker thread with its own
 * connection, when the writer asks: at most every `checkpointMs` (250 ms), after a commit, the checkpoint takes its
 * turn in the mutex like any call, so no statement of this connection runs meanwhile and the checkpoint copies the
 * whole WAL; the next write then starts the WAL over. This thread stays free for requests while the pages are
 * copied and the database file synced (SQLite's own checkpoints, every 1,000 pages in COMMIT, held it 13–17 ms at
 * a time under bench:controller's load). A checkpoint thread on a timer of its own, without the turn in the mutex
 * (sessions 2–3), never found the writer idle under a steady stream of commits, so the WAL was never started over
 * and grew without bound (137 MB after 20 s of the bench). If the thread cannot start or stops, or with
 * `checkpointMs: false`, the writer checkpoints as SQLite does by default.
 *
 * Events are in-process only: every store open on the same file in this process receives them.
 */
import { mkdirSync, realpathSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { StoreError, StoreErrorCode } from './errors.ts';
import { Mutex } from './mutex.ts';
import type { Row } from './sql-rows.ts';
import { SqlStore, deliverEvent, type SqlConn, type SqlDriver } from './sql-store.ts';
import type { Store, StoreEvent } from './store.ts';

/** The checkpointing thread: plain CommonJS (no loader needed), given the file and better-sqlite3's path. */
const CHECKPOINTER = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.module);
const db = new Database(workerData.file, { timeout: 0 });
db.pragma('synchronous = FULL');
parentPort.on('message', (m) => {
  if (m === 'stop') {
    db.close();
    parentPort.close();
    return;
  }
  try {
    const [r] = db.pragma('wal_checkpoint(PASSIVE)');
    parentPort.postMessage({ id: m, ok: true, busy: r.busy, log: r.log, checkpointed: r.checkpointed });
  } catch (e) {
    parentPort.postMessage({ id: m, ok: false, error: String(e && e.message || e) });
  }
});
`;

/** Checkpoints on a worker thread, one when asked (see the module comment); `onLost` when the thread fails or ends. */
class Checkpointer {
  private readonly worker: Worker;
  private readonly waiting = new Map<number, (ok: boolean) => void>();
  private seq = 0;
  private stopped = false;
  private readonly done: Promise<void>;

  constructor(file: string, onLost: () => void) {
    const module = createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(CHECKPOINTER, { eval: true, workerData: { file, module } });
    this.worker.unref();
    this.worker.on('message', (m: { id: number; ok: boolean }) => {
      this.waiting.get(m.id)?.(m.ok);
      this.waiting.delete(m.id);
      if (this.waiting.size === 0) this.worker.unref();
    });
    this.done = new Promise((resolve) => {
      this.worker.on('error', () => undefined);
      this.worker.on('exit', () => {
        for (const settle of this.waiting.values()) settle(false);
        this.waiting.clear();
        if (!this.stopped) onLost();
        resolve();
      });
    });
  }

  /** One checkpoint; false if it failed (the WAL then stays as it is, and the next one tries again). */
  run(): Promise<boolean> {
    const id = ++this.seq;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      // held while a checkpoint is under way (a caller waits for it in the mutex), else unreferenced
      this.worker.ref();
      this.worker.postMessage(id);
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    // held by the thread while it finishes (unreferenced, it would not keep a closing process waiting for it)
    this.worker.ref();
    this.worker.postMessage('stop');
    const timeout = new Promise<void>((resolve) => setTimeout(resolve, 2000).unref());
    await Promise.race([this.done, timeout]);
    await this.worker.terminate();
  }
}

/** How often the writer has the WAL checkpointed by the thread, at most (see the module comment). */
const CHECKPOINT_MS = 250;

export interface SqliteStoreOptions {
  /** the data directory; created if missing */
  dir: string;
  /** how long a write waits for another process's lock before failing (default 5000 ms) */
  busyTimeoutMs?: number;
  /** sync the WAL off this thread after commits (default true); false: SQLite's synchronous=FULL, in each COMMIT */
  syncInThread?: boolean;
  /** have a thread checkpoint the WAL at most this often (default 250 ms); false: the writer does, SQLite's default */
  checkpointMs?: number | false;
}

/**
 * Syncs of the WAL file in libuv's thread pool (see the module comment). `sync()` resolves once a sync that began
 * after the call has finished: a caller whose commit came while one was under way waits for the next, which all
 * such callers share. The file is kept open: SQLite starts a WAL over by writing its header again, in the same
 * file, and removes it only once everything is in the database file, synced.
 */
class WalSync {
  private running: Promise<void> | null = null;
  private queued: Promise<void> | null = null;
  private handle: Promise<FileHandle | null> | null = null;

  constructor(private readonly path: string) {}

  sync(): Promise<void> {
    if (this.running === null) {
      const p = this.once().finally(() => {
        if (this.running === p) this.running = null;
      });
      this.running = p;
      return p;
    }
    this.queued ??= this.running
      .catch(() => undefined)
      .then(() => {
        this.queued = null;
        return this.sync();
      });
    return this.queued;
  }

  private async once(): Promise<void> {
    this.handle ??= open(this.path, 'r').catch((e: NodeJS.ErrnoException) => {
      this.handle = null;
      // no WAL file (yet): nothing of it to sync
      if (e.code === 'ENOENT') return null;
      throw e;
    });
    const h = await this.handle;
    if (h === null) return;
    try {
      await h.sync();
    } catch (e) {
      // a handle that failed is not used again
      this.handle = null;
      await h.close().catch(() => undefined);
      throw e;
    }
  }

  async close(): Promise<void> {
    const h = await this.handle?.catch(() => null);
    this.handle = null;
    await h?.close().catch(() => undefined);
  }
}

export const SQLITE_FILE = 'hueguard.db';

/** What all stores on one file in this process share: the mutex and the event listeners. */
interface Shared {
  mutex: Mutex;
  listeners: Set<(e: StoreEvent) => void>;
  users: number;
}
const sharedByFile = new Map<string, Shared>();

function acquireShared(file: string): Shared {
  let s = sharedByFile.get(file);
  if (!s) sharedByFile.set(file, (s = { mutex: new Mutex(), listeners: new Set(), users: 0 }));
  s.users++;
  return s;
}

function releaseShared(file: string, s: Shared): void {
  if (--s.users === 0) sharedByFile.delete(file);
}

/** SQLite's constraint failures as the store's error codes (both backends throw the same). */
function translate(e: unknown): unknown {
  const code = (e as { code?: unknown }).code;
  if (typeof code !== 'string' || !code.startsWith('SQLITE_CONSTRAINT')) return e;
  const message = (e as Error).message;
  if (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
    return new StoreError(StoreErrorCode.conflict, message, { sqlite: code }, { cause: e });
  }
  return new StoreError(StoreErrorCode.invalidRecord, message, { sqlite: code }, { cause: e });
}

function guarded<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (e) {
    return Promise.reject(translate(e));
  }
}

/** SQLite binds no booleans (0/1, as the schema keeps them) and no undefined. */
const bind = (params: readonly unknown[]): unknown[] => params.map((p) => (p === true ? 1 : p === false ? 0 : p === undefined ? null : p));

class SqliteDriver implements SqlDriver {
  readonly kind = 'sqlite' as const;
  /** BEGIN IMMEDIATE already takes the database's write lock. */
  readonly migrationLock = null;
  readonly events: { emit(e: StoreEvent): void };
  private readonly statements = new Map<string, Database.Statement>();
  private readonly conn: SqlConn;
  /** this store's listeners, removed from the shared set when it closes */
  private readonly mine = new Set<(e: StoreEvent) => void>();

  /** the WAL's syncs off this thread; null: SQLite syncs in COMMIT (synchronous=FULL) */
  private readonly wal: WalSync | null;
  /** this connection wrote since the last sync was asked for */
  private dirty = false;
  /** the checkpointing thread; null: the writer checkpoints (SQLite's default) */
  private checkpointer: Checkpointer | null = null;
  private readonly checkpointMs: number;
  /** when the last checkpoint was asked for (performance.now()) */
  private lastCheckpoint = 0;
  private checkpointQueued = false;

  constructor(
    private readonly db: Database.Database,
    private readonly file: string,
    private readonly shared: Shared,
    syncInThread: boolean,
    checkpointMs: number | false,
  ) {
    this.wal = syncInThread ? new WalSync(`${file}-wal`) : null;
    this.db.pragma(syncInThread ? 'synchronous = NORMAL' : 'synchronous = FULL');
    this.checkpointMs = checkpointMs === false ? 0 : checkpointMs;
    if (checkpointMs !== false) {
      try {
        this.checkpointer = new Checkpointer(file, () => this.checkpointLost());
        this.db.pragma('wal_autocheckpoint = 0');
      } catch {
        this.checkpointLost();
      }
    }
    this.conn = {
      all: (sql, params = []) =>
        guarded(() => {
          const st = this.statement(sql);
          if (!st.reader) this.dirty = true;
          return st.all(...bind(params)) as Row[];
        }),
      run: (sql, params = []) =>
        guarded(() => {
          this.dirty = true;
          return this.statement(sql).run(...bind(params)).changes;
        }),
      exec: (sql) =>
        guarded(() => {
          this.dirty = true;
          this.db.exec(sql);
        }),
    };
    this.events = {
      emit: (e) => {
        // Delivered after the current call returns, as PostgreSQL's notifications are.
        for (const fn of [...this.shared.listeners]) setImmediate(() => deliverEvent(fn, e));
      },
    };
  }

  private statement(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (!s) this.statements.set(sql, (s = this.db.prepare(sql)));
    return s;
  }

  /** Whether this connection wrote since last asked (and forget it): a sync is then due before answering. */
  private wrote(): boolean {
    const d = this.dirty;
    this.dirty = false;
    return d;
  }

  /** After a write, once it is committed: the WAL synced (off this thread), so the write is durable. */
  private async durable<T>(result: T, wrote: boolean): Promise<T> {
    if (wrote) this.checkpointSoon();
    if (wrote && this.wal !== null) await this.wal.sync();
    return result;
  }

  /**
   * After a commit: a checkpoint by the thread, when the last was asked for `checkpointMs` ago, queued in the mutex
   * (the calls already waiting go first; those that come later wait for it). See the module comment.
   */
  private checkpointSoon(): void {
    const c = this.checkpointer;
    if (c === null || this.checkpointQueued || performance.now() - this.lastCheckpoint < this.checkpointMs) return;
    this.checkpointQueued = true;
    void this.shared.mutex
      .run(async () => {
        this.lastCheckpoint = performance.now();
        this.checkpointQueued = false;
        if (this.checkpointer === c && this.db.open) await c.run();
      })
      .catch(() => undefined);
  }

  /** The checkpointing thread is gone: the writer checkpoints again, as SQLite does by default. */
  private checkpointLost(): void {
    this.checkpointer = null;
    if (this.db.open) this.db.pragma('wal_autocheckpoint = 1000');
  }

  async autocommit<T>(fn: (c: SqlConn) => Promise<T>): Promise<T> {
    let wrote = false;
    const result = await this.shared.mutex.run(async () => {
      try {
        return await fn(this.conn);
      } finally {
        wrote = this.wrote();
      }
    });
    return this.durable(result, wrote);
  }

  async transaction<T>(fn: (c: SqlConn) => Promise<T>): Promise<T> {
    let wrote = false;
    const result = await this.shared.mutex.run(async () => {
      this.wrote();
      // IMMEDIATE: take the write lock now, so a transaction that reads then writes never fails half-way on it.
      await guarded(() => void this.db.exec('BEGIN IMMEDIATE'));
      try {
        const r = await fn(this.conn);
        await guarded(() => void this.db.exec('COMMIT'));
        wrote = this.wrote();
        return r;
      } catch (e) {
        this.wrote();
        // Some errors (disk full, I/O) end the transaction themselves.
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw e;
      }
    });
    // The next transaction may begin meanwhile: its commit is covered by this sync or the next.
    return this.durable(result, wrote);
  }

  subscribe(fn: (e: StoreEvent) => void): () => void {
    // A wrapper per call, so subscribing one function twice gives two independent subscriptions.
    const listener = (e: StoreEvent) => fn(e);
    this.shared.listeners.add(listener);
    this.mine.add(listener);
    return () => {
      this.shared.listeners.delete(listener);
      this.mine.delete(listener);
    };
  }

  async close(): Promise<void> {
    // Through the mutex: calls already queued finish first (a checkpoint among them).
    const c = this.checkpointer;
    this.checkpointer = null;
    await this.shared.mutex.run(async () => {
      await c?.stop();
      this.db.close();
    });
    await this.wal?.close();
    for (const fn of this.mine) this.shared.listeners.delete(fn);
    releaseShared(this.file, this.shared);
  }
}

/** Open (creating if needed) the store in `dir`, migrated to the newest schema; rejects a newer schema than known. */
export async function openSqliteStore(opts: SqliteStoreOptions): Promise<Store> {
  mkdirSync(opts.dir, { recursive: true });
  const file = join(realpathSync(opts.dir), SQLITE_FILE);
  const db = new Database(file, { timeout: opts.busyTimeoutMs ?? 5000 });
  let shared: Shared | undefined;
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('foreign_keys = ON');
    shared = acquireShared(file);
  } catch (e) {
    db.close();
    throw e;
  }
  const store = new SqlStore(new SqliteDriver(db, file, shared, opts.syncInThread ?? true, opts.checkpointMs ?? CHECKPOINT_MS));
  try {
    await store.migrate();
  } catch (e) {
    await store.close();
    throw e;
  }
  return store;
}
