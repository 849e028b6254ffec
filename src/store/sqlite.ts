/**
 * The SQLite store, the embedded default: one file, `hueguard.db`, in the controller's data directory.
 *
 * Durability: WAL with synchronous=FULL, so a resolved write has reached the disk (the WAL is synced at each
 * commit). better-sqlite3 is synchronous; the store wraps it in the async interface and runs every call through one
 * mutex per database file in this process. Without it a caller's statement could run on the connection while
 * another caller's transaction is open and become part of it (and be rolled back with it), and a second store on
 * the same file in this process would block the event loop in SQLite's busy wait while the first held the lock.
 * Other processes on the same file wait up to the busy timeout (better-sqlite3's `timeout`, SQLite's busy_timeout);
 * more than one controller belongs on PostgreSQL. One consequence of the mutex: inside `tx(fn)`, `fn` must not wait
 * for a store call started outside its async context (say, by an event handler set up earlier) — that call waits
 * for the transaction to end, and the transaction for it.
 *
 * Tables are STRICT, so a value of the wrong type fails here as it does on PostgreSQL.
 *
 * Events are in-process only: every store open on the same file in this process receives them.
 */
import { mkdirSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { StoreError, StoreErrorCode } from './errors.ts';
import { Mutex } from './mutex.ts';
import type { Row } from './sql-rows.ts';
import { SqlStore, deliverEvent, type SqlConn, type SqlDriver } from './sql-store.ts';
import type { Store, StoreEvent } from './store.ts';

export interface SqliteStoreOptions {
  /** the data directory; created if missing */
  dir: string;
  /** how long a write waits for another process's lock before failing (default 5000 ms) */
  busyTimeoutMs?: number;
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

  constructor(
    private readonly db: Database.Database,
    private readonly file: string,
    private readonly shared: Shared,
  ) {
    this.conn = {
      all: (sql, params = []) => guarded(() => this.statement(sql).all(...bind(params)) as Row[]),
      run: (sql, params = []) => guarded(() => this.statement(sql).run(...bind(params)).changes),
      exec: (sql) => guarded(() => void this.db.exec(sql)),
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

  autocommit<T>(fn: (c: SqlConn) => Promise<T>): Promise<T> {
    return this.shared.mutex.run(() => fn(this.conn));
  }

  transaction<T>(fn: (c: SqlConn) => Promise<T>): Promise<T> {
    return this.shared.mutex.run(async () => {
      // IMMEDIATE: take the write lock now, so a transaction that reads then writes never fails half-way on it.
      await this.conn.exec('BEGIN IMMEDIATE');
      try {
        const result = await fn(this.conn);
        await this.conn.exec('COMMIT');
        return result;
      } catch (e) {
        // Some errors (disk full, I/O) end the transaction themselves.
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw e;
      }
    });
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
    // Through the mutex: calls already queued finish first.
    await this.shared.mutex.run(() => this.db.close());
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
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    shared = acquireShared(file);
  } catch (e) {
    db.close();
    throw e;
  }
  const store = new SqlStore(new SqliteDriver(db, file, shared));
  try {
    await store.migrate();
  } catch (e) {
    await store.close();
    throw e;
  }
  return store;
}
