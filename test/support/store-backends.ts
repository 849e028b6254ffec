/**
 * The two Store backends as the conformance suite and the crash test use them: each `fresh()` is a new, empty
 * database (a temp dir for SQLite, a new database on a throwaway server for PostgreSQL) that stores can be opened
 * on, reopened on, and tampered with through raw SQL.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import type { StoreBackend, StoreFixture } from '../../src/store/conformance.ts';
import { openPostgresStore } from '../../src/store/postgres.ts';
import { SQLITE_FILE, openSqliteStore } from '../../src/store/sqlite.ts';
import { postgresUnavailable, startPostgres, type PostgresServer } from './postgres.ts';

export interface SqliteFixture extends StoreFixture {
  dir: string;
}

export function sqliteBackend(): StoreBackend<SqliteFixture> {
  return {
    async fresh() {
      const dir = mkdtempSync(join(tmpdir(), 'hg-sqlite-'));
      return {
        dir,
        open: () => openSqliteStore({ dir }),
        // Its own connection, as someone with the file would: WAL lets it write beside an open store.
        async rawExec(sql) {
          const db = new Database(join(dir, SQLITE_FILE));
          try {
            const st = db.prepare(sql);
            if (st.reader) return st.all() as Record<string, unknown>[];
            st.run();
            return [];
          } finally {
            db.close();
          }
        },
        async destroy() {
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  };
}

export interface PostgresFixture extends StoreFixture {
  url: string;
}

/** A backend on a throwaway server started by `setup` (or HUEGUARD_TEST_POSTGRES_URL's), stopped by `teardown`. */
export function postgresBackend(): StoreBackend<PostgresFixture> {
  let server: PostgresServer | null = null;
  return {
    unavailable: postgresUnavailable,
    async setup() {
      server = await startPostgres();
    },
    async teardown() {
      await server?.stop();
      server = null;
    },
    async fresh() {
      if (!server) throw new Error('postgresBackend: setup() first');
      const s = server;
      const url = await s.createDatabase();
      return {
        url,
        open: () => openPostgresStore({ url }),
        async rawExec(sql) {
          const c = new pg.Client({ connectionString: url });
          await c.connect();
          try {
            return (await c.query(sql)).rows as Record<string, unknown>[];
          } finally {
            await c.end();
          }
        },
        destroy: () => s.dropDatabase(url),
      };
    },
  };
}
