/**
 * The PostgreSQL store: for several controllers on one database. Statements outside a transaction run on a
 * `pg.Pool`; a transaction holds one pooled client from BEGIN to COMMIT. A resolved write is committed (the server's
 * synchronous_commit decides how durable that is; its default waits for the WAL flush).
 *
 * Events travel by LISTEN/NOTIFY: `publish` is a NOTIFY in the caller's transaction (delivered at its commit, not
 * at all if it rolls back), and a dedicated client LISTENs, so every store on the database — this one included —
 * hears every controller's events. If that client's connection drops, it reconnects every second; events sent
 * while it was away are lost, as NOTIFY gives no replay.
 */
import pg from 'pg';
import { StoreError, StoreErrorCode } from './errors.ts';
import type { Row } from './sql-rows.ts';
import { SqlStore, deliverEvent, type SqlConn, type SqlDriver } from './sql-store.ts';
import type { Store, StoreEvent } from './store.ts';

export interface PostgresStoreOptions {
  /** a connection string, `postgresql://user@host:port/database` */
  url: string;
  /** connections in the pool (default 10), plus one for LISTEN */
  poolSize?: number;
  /** the NOTIFY channel (default `hueguard_events`): controllers that should hear each other use the same one */
  channel?: string;
}

export const DEFAULT_CHANNEL = 'hueguard_events';

/** Key of the advisory lock held while migrating ('hueg'), so two controllers starting together migrate once. */
const MIGRATION_LOCK_KEY = 0x68756567;

/** `?` placeholders (the store's shared SQL) as PostgreSQL's `$1, $2…`; the SQL never holds a literal `?`. */
const numberedCache = new Map<string, string>();
function numbered(sql: string): string {
  let out = numberedCache.get(sql);
  if (out === undefined) {
    let n = 0;
    out = sql.replace(/\?/g, () => `$${++n}`);
    numberedCache.set(sql, out);
  }
  return out;
}

/** PostgreSQL's constraint and value errors as the store's error codes (both backends throw the same). */
function translate(e: unknown): unknown {
  if (!(e instanceof pg.DatabaseError) || !e.code) return e;
  if (e.code === '23505') return new StoreError(StoreErrorCode.conflict, e.message, { postgres: e.code, constraint: e.constraint }, { cause: e });
  // 23: integrity constraint violations; 22: data exceptions (a value the column's type refuses)
  if (e.code.startsWith('23') || e.code.startsWith('22')) {
    return new StoreError(StoreErrorCode.invalidRecord, e.message, { postgres: e.code, constraint: e.constraint }, { cause: e });
  }
  return e;
}

interface Queryable {
  query(text: string, values?: unknown[]): Promise<pg.QueryResult>;
}

function connOf(q: Queryable): SqlConn {
  return {
    async all(sql, params = []) {
      try {
        return (await q.query(numbered(sql), [...params])).rows as Row[];
      } catch (e) {
        throw translate(e);
      }
    },
    async run(sql, params = []) {
      try {
        return (await q.query(numbered(sql), [...params])).rowCount ?? 0;
      } catch (e) {
        throw translate(e);
      }
    },
    async exec(sql) {
      try {
        await q.query(sql);
      } catch (e) {
        throw translate(e);
      }
    },
  };
}

/** The LISTEN connection: started once the store is migrated, reconnecting when its connection drops. */
class Listener {
  private client: pg.Client | null = null;
  private retry: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    private readonly url: string,
    private readonly channel: string,
    private readonly onEvent: (e: StoreEvent) => void,
  ) {}

  async start(): Promise<void> {
    const c = new pg.Client({ connectionString: this.url });
    c.on('notification', (m) => {
      if (m.channel !== this.channel || !m.payload) return;
      let e: StoreEvent;
      try {
        e = JSON.parse(m.payload) as StoreEvent;
      } catch {
        return; // not one of ours
      }
      this.onEvent(e);
    });
    c.on('error', () => this.lost(c));
    c.on('end', () => this.lost(c));
    try {
      await c.connect();
      await c.query(`LISTEN ${this.channel}`);
    } catch (e) {
      await c.end().catch(() => undefined);
      throw e;
    }
    if (this.stopped) {
      await c.end().catch(() => undefined);
      return;
    }
    this.client = c;
  }

  private lost(c: pg.Client): void {
    if (this.stopped || this.client !== c) return;
    this.client = null;
    c.end().catch(() => undefined);
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    this.retry = setTimeout(() => {
      this.retry = null;
      this.start().catch(() => {
        if (!this.stopped) this.scheduleRetry();
      });
    }, 1000);
    this.retry.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
    const c = this.client;
    this.client = null;
    await c?.end().catch(() => undefined);
  }
}

class PostgresDriver implements SqlDriver {
  readonly kind = 'postgres' as const;
  readonly migrationLock = `SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`;
  readonly events: { statement(e: StoreEvent): { sql: string; params: unknown[] } };
  readonly listener: Listener;
  private readonly listeners = new Set<(e: StoreEvent) => void>();
  private readonly poolConn: SqlConn;

  constructor(
    private readonly pool: pg.Pool,
    url: string,
    channel: string,
  ) {
    this.poolConn = connOf(pool);
    this.events = { statement: (e) => ({ sql: 'SELECT pg_notify(?, ?)', params: [channel, JSON.stringify(e)] }) };
    this.listener = new Listener(url, channel, (e) => {
      for (const fn of [...this.listeners]) deliverEvent(fn, e);
    });
  }

  autocommit<T>(fn: (c: SqlConn) => Promise<T>): Promise<T> {
    return fn(this.poolConn);
  }

  async transaction<T>(fn: (c: SqlConn) => Promise<T>): Promise<T> {
    const client = await this.pool.connect().catch((e: unknown) => Promise.reject(translate(e)));
    // A client whose ROLLBACK failed is in an unknown state: the pool must drop it, not hand it out again.
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      try {
        const result = await fn(connOf(client));
        // COMMIT of a transaction that an earlier (caught) error aborted answers ROLLBACK, not an error.
        const done = await client.query('COMMIT');
        if (done.command !== 'COMMIT') throw new Error('the transaction was aborted by an earlier error and rolled back');
        return result;
      } catch (e) {
        await client.query('ROLLBACK').catch((r: Error) => (broken = r));
        throw e;
      }
    } catch (e) {
      throw translate(e);
    } finally {
      client.release(broken);
    }
  }

  subscribe(fn: (e: StoreEvent) => void): () => void {
    const listener = (e: StoreEvent) => fn(e);
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.listeners.clear();
    await this.listener.stop();
    await this.pool.end();
  }
}

/** Open the store on `url`, migrated to the newest schema and listening for events; rejects a newer schema than known. */
export async function openPostgresStore(opts: PostgresStoreOptions): Promise<Store> {
  const channel = opts.channel ?? DEFAULT_CHANNEL;
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(channel)) throw new Error(`bad NOTIFY channel name ${JSON.stringify(channel)}`);
  const pool = new pg.Pool({ connectionString: opts.url, max: opts.poolSize ?? 10 });
  // An idle client's connection dropping is reported here; the pool discards it, and the next query reconnects.
  pool.on('error', () => undefined);
  const driver = new PostgresDriver(pool, opts.url, channel);
  const store = new SqlStore(driver);
  try {
    await store.migrate();
    await driver.listener.start();
  } catch (e) {
    await store.close();
    throw e;
  }
  return store;
}
