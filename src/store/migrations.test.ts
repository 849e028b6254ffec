import assert from 'node:assert/strict';
import { it } from 'node:test';
import { LATEST_SCHEMA_VERSION, MIGRATIONS, migrationSql } from './migrations.ts';

it('migrations are numbered 1, 2, 3… with distinct names and text for both dialects', () => {
  assert.deepEqual(
    MIGRATIONS.map((m) => m.version),
    MIGRATIONS.map((_, i) => i + 1),
  );
  assert.equal(new Set(MIGRATIONS.map((m) => m.name)).size, MIGRATIONS.length);
  assert.equal(LATEST_SCHEMA_VERSION, MIGRATIONS.length);
  for (const m of MIGRATIONS) {
    for (const d of ['sqlite', 'postgres'] as const) assert.match(migrationSql(m, d), /\S/);
  }
});
