/**
 * The SQLite store against the shared conformance suite; and its checkpoints, made by a thread of their own: the
 * WAL stays small while the writer itself never checkpoints, and every commit is in the database once it closes.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { sqliteBackend } from '../../test/support/store-backends.ts';
import { runStoreConformance } from './conformance.ts';
import { SQLITE_FILE, openSqliteStore } from './sqlite.ts';

runStoreConformance('sqlite', sqliteBackend());

test('checkpoints come from their own thread: the WAL stays small under a stream of commits, all of them kept', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hg-ckpt-'));
  try {
    const store = await openSqliteStore({ dir, checkpointMs: 10 });
    const size = (f: string) => {
      try {
        return statSync(join(dir, f)).size;
      } catch {
        return 0;
      }
    };
    let biggest = 0;
    const blob = 'x'.repeat(20_000);
    // ~40 MB through the WAL, one commit each: without checkpoints it would hold all of it
    for (let i = 0; i < 2000; i++) {
      await store.putIntegrity({ vm: `vm-${i % 300}`, state: { i, blob }, fingerprint: null });
      if (i % 100 === 0) {
        biggest = Math.max(biggest, size(`${SQLITE_FILE}-wal`));
        await new Promise((r) => setTimeout(r, 15));
      }
    }
    biggest = Math.max(biggest, size(`${SQLITE_FILE}-wal`));
    assert.ok(biggest < 16 * 1024 * 1024, `the WAL reached ${biggest} bytes`);
    assert.deepEqual((await store.integrity('vm-299'))?.state, { i: 1799, blob });
    await store.close();
    // closed: everything is in the database file (a connection that reads it without the WAL sees the last write)
    const db = new Database(join(dir, SQLITE_FILE), { readonly: true });
    try {
      const row = db.prepare('SELECT state FROM integrity WHERE vm = ?').get('vm-1999') as { state: string } | undefined;
      assert.equal(row, undefined, 'vm-1999 was never written (300 VMs)');
      const last = db.prepare('SELECT state FROM integrity WHERE vm = ?').get('vm-199') as { state: string };
      assert.equal(JSON.parse(last.state).i, 1999);
    } finally {
      db.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
