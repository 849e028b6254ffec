/**
 * The SQLite store against the shared conformance suite; and its checkpoints: the WAL stays small under a steady
 * stream of commits, and every commit is in the database once it closes.
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

test('the WAL stays small under a steady stream of concurrent commits (checkpoints take their turn), all of them kept', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hg-ckpt-'));
  try {
    const store = await openSqliteStore({ dir });
    const size = (f: string) => {
      try {
        return statSync(join(dir, f)).size;
      } catch {
        return 0;
      }
    };
    let biggest = 0;
    const blob = 'x'.repeat(20_000);
    // ~60 MB through the WAL, one commit each, four writers at once and no pause (a controller under load): without
    // checkpoints that start the WAL over it would hold all of it (a checkpoint thread on its own timer let it grow)
    let i = 0;
    const writer = async () => {
      while (i < 3000) {
        const n = i++;
        await store.putIntegrity({ vm: `vm-${n % 300}`, state: { i: n, blob }, fingerprint: null });
        if (n % 100 === 0) biggest = Math.max(biggest, size(`${SQLITE_FILE}-wal`));
      }
    };
    await Promise.all([writer(), writer(), writer(), writer()]);
    biggest = Math.max(biggest, size(`${SQLITE_FILE}-wal`));
    assert.ok(biggest < 16 * 1024 * 1024, `the WAL reached ${biggest} bytes`);
    assert.deepEqual((await store.integrity('vm-299'))?.state, { i: 2999, blob });
    await store.close();
    // closed: everything is in the database file (a connection that reads it without the WAL sees the last write)
    const db = new Database(join(dir, SQLITE_FILE), { readonly: true });
    try {
      const row = db.prepare('SELECT state FROM integrity WHERE vm = ?').get('vm-2999') as { state: string } | undefined;
      assert.equal(row, undefined, 'vm-2999 was never written (300 VMs)');
      const last = db.prepare('SELECT state FROM integrity WHERE vm = ?').get('vm-199') as { state: string };
      assert.equal(JSON.parse(last.state).i, 2899);
    } finally {
      db.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
