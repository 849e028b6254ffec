/** The layer lint must catch what it exists to catch: a real offence in a scratch tree, and none in ours. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkConsole, checkLayers } from '../scripts/lint-layers.ts';

function scratch(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'hg-lint-'));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

test('the repository itself passes the layer rule', () => {
  assert.deepEqual(checkLayers(join(import.meta.dirname, '..', 'src')), []);
});

test('an upward import from the core to the server is refused', () => {
  const root = scratch({ 'policy/a.ts': "import { x } from '../server/app.ts';\n", 'server/app.ts': 'export const x = 1;\n' });
  try {
    const problems = checkLayers(root);
    assert.equal(problems.length, 1);
    assert.match(problems[0], /policy[/\\]a\.ts: imports "\.\.\/server\/app\.ts"/);
  } finally {
    rmSync(root, { recursive: true });
  }
});

test('policy may not import the monitor (imports go downward only)', () => {
  const root = scratch({ 'policy/a.ts': "export * from '../monitor/b.ts';\n", 'monitor/b.ts': 'export const b = 1;\n' });
  try {
    assert.equal(checkLayers(root).length, 1);
  } finally {
    rmSync(root, { recursive: true });
  }
});

test('unlisted packages, network and file I/O are refused in the core; fast-check only in tests', () => {
  const root = scratch({
    'monitor/a.ts': "import express from 'express';\nimport { createServer } from 'node:http';\nimport { readFileSync } from 'node:fs';\nconst m = await import('fast-check');\n",
    'monitor/a.test.ts': "import fc from 'fast-check';\nimport { readFileSync } from 'node:fs';\n",
    'integrity/m.ts': "import { createReadStream } from 'node:fs';\nimport { createHash } from 'node:crypto';\n",
  });
  try {
    const problems = checkLayers(root);
    assert.equal(problems.length, 4, problems.join('\n'));
    assert.ok(problems.every((p) => p.startsWith('monitor/a.ts')));
  } finally {
    rmSync(root, { recursive: true });
  }
});

test('the console may import the API\'s wire types, and nothing else of the repository', () => {
  const root = scratch({
    'console/src/ok.tsx': "import type { VmV1 } from '../../src/api/types.ts';\nimport { x } from './local.ts';\n",
    'console/src/local.ts': 'export const x = 1;\n',
    'console/src/bad.tsx': "import { buildApp } from '../../src/server/app.ts';\n",
    'src/api/types.ts': 'export type VmV1 = {};\n',
    'src/server/app.ts': 'export const buildApp = 1;\n',
  });
  try {
    const problems = checkConsole(join(root, 'console', 'src'), join(root, 'src'));
    assert.equal(problems.length, 1, problems.join('\n'));
    assert.match(problems[0], /bad\.tsx: imports "\.\.\/\.\.\/src\/server\/app\.ts"/);
  } finally {
    rmSync(root, { recursive: true });
  }
  assert.deepEqual(checkConsole(join(import.meta.dirname, '..', 'console', 'src'), join(import.meta.dirname, '..', 'src')), []);
});
