#!/usr/bin/env node
// Finds every *.test.ts under src/ and test/ (Node 20's --test takes no globs) and runs them with node:test
// through tsx. Extra arguments narrow the set: `npm test -- monitor` runs the files whose path contains "monitor".
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
const filters = process.argv.slice(2);

function* walk(dir) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) yield* walk(p);
    else if (name.endsWith('.test.ts')) yield relative(root, p);
  }
}

const files = ['src', 'test'].flatMap((d) => [...walk(join(root, d))]).filter((f) => filters.every((x) => f.includes(x))).sort();
if (files.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`);
  process.exit(1);
}
// The spec reporter for people; a TAP copy to read the totals from, printed last as `N passed, N failed, N skipped`.
const tap = join(mkdtempSync(join(tmpdir(), 'hg-test-')), 'results.tap');
const r = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-reporter-destination=stdout', '--test-reporter=tap', `--test-reporter-destination=${tap}`, ...files],
  { cwd: root, stdio: 'inherit' },
);
let summary = '';
try {
  const text = readFileSync(tap, 'utf8');
  const count = (k) => Number(new RegExp(`^# ${k} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
  summary = `${count('pass')} passed, ${count('fail') + count('cancelled')} failed, ${count('skipped') + count('todo')} skipped`;
} catch {
  summary = '0 passed, 1 failed';
}
console.log(summary);
process.exit(r.status ?? 1);
