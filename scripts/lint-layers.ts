/**
 * The layer rule of DESIGN.md §3: the pure core (policy, monitor, integrity, trust) imports nothing but itself,
 * the standard library and its chosen dependencies, and does no network or process I/O of its own.
 * Within the core, imports go downward only: policy ← monitor ← trust, integrity ← trust. The trust engine may also
 * use the API's wire types (src/api: plain types, no code of the controller or the agent), which DESIGN.md §3 does
 * not bar, so that trust states and plans are declared once.
 *
 * Run: `node --import tsx scripts/lint-layers.ts [ROOT]` (exit 1 and one line per offence).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** What each core package may import from the core. */
const CORE: Record<string, string[]> = {
  policy: ['policy'],
  monitor: ['policy', 'monitor'],
  integrity: ['integrity'],
  trust: ['policy', 'monitor', 'integrity', 'trust', 'api'],
};
/** The core's chosen third-party dependencies (and, for tests only, the test tools). */
const ALLOWED_PACKAGES = ['yaml', 'ajv', 'saxes'];
const TEST_PACKAGES = ['fast-check'];
/** Built-ins the core may not use: it takes time, randomness and I/O as arguments. `integrity` may read files. */
const FORBIDDEN_BUILTINS = ['net', 'http', 'https', 'http2', 'child_process', 'dgram', 'cluster', 'worker_threads', 'tls', 'dns'];
const FS_BUILTINS = ['fs', 'fs/promises'];

const isTestFile = (f: string) => /\.(test|arbitrary|test-support)\.ts$/.test(f);

function* tsFiles(dir: string, pattern = /\.ts$/): Generator<string> {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) yield* tsFiles(p, pattern);
    else if (pattern.test(p)) yield p;
  }
}

/** Module specifiers of static imports/exports, dynamic imports and requires. */
export function importsOf(source: string): string[] {
  const out: string[] = [];
  // Statements start a line; the clause before `from` holds only names, braces, commas, `*`, `as` and `type`
  // (never a quote or a parenthesis), so text inside strings and templates is not mistaken for an import.
  const re = /^[ \t]*(?:import|export)\s+(?:type\s+)?(?:[\w*{}\s,$]+?\s*from\s*)?['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)|\brequire\(\s*['"]([^'"]+)['"]\s*\)/gm;
  for (const m of source.matchAll(re)) out.push(m[1] ?? m[2] ?? m[3]);
  return out;
}

/** Every offence under `srcRoot` (the folder holding policy/, monitor/, …), as `FILE: message`. */
export function checkLayers(srcRoot: string): string[] {
  const problems: string[] = [];
  for (const pkg of Object.keys(CORE)) {
    const dir = join(srcRoot, pkg);
    let exists = false;
    try {
      exists = statSync(dir).isDirectory();
    } catch {
      exists = false;
    }
    if (!exists) continue;
    for (const file of tsFiles(dir)) {
      const rel = relative(srcRoot, file);
      const test = isTestFile(file);
      for (const spec of importsOf(readFileSync(file, 'utf8'))) {
        if (spec.startsWith('.')) {
          const target = relative(srcRoot, resolve(dirname(file), spec));
          const top = target.split(sep)[0];
          if (target.startsWith('..') || !CORE[pkg].includes(top)) {
            problems.push(`${rel}: imports "${spec}" (${target}): ${pkg} may import only ${CORE[pkg].join(', ')}`);
          }
          continue;
        }
        const builtin = spec.startsWith('node:') ? spec.slice(5) : null;
        if (builtin !== null) {
          if (FORBIDDEN_BUILTINS.includes(builtin) && !test) problems.push(`${rel}: imports "${spec}": the pure core does no network or process I/O`);
          if (FS_BUILTINS.includes(builtin) && pkg !== 'integrity' && !test) problems.push(`${rel}: imports "${spec}": only integrity (measuring) may read files`);
          continue;
        }
        const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0];
        if (!ALLOWED_PACKAGES.includes(name) && !(test && TEST_PACKAGES.includes(name))) {
          problems.push(`${rel}: imports package "${name}", which is not among the core's dependencies (${ALLOWED_PACKAGES.join(', ')})`);
        }
      }
    }
  }
  return problems;
}

/**
 * The console talks only to the HTTP API (DESIGN.md §3): of the repository's own code it may import the API's wire
 * types (src/api) and nothing else — never the controller, the store or the core.
 */
export function checkConsole(consoleSrc: string, srcRoot: string): string[] {
  const problems: string[] = [];
  let exists = false;
  try {
    exists = statSync(consoleSrc).isDirectory();
  } catch {
    exists = false;
  }
  if (!exists) return problems;
  for (const file of tsFiles(consoleSrc, /\.tsx?$/)) {
    for (const spec of importsOf(readFileSync(file, 'utf8'))) {
      if (!spec.startsWith('.')) continue;
      const target = resolve(dirname(file), spec);
      if (!relative(consoleSrc, target).startsWith('..')) continue;
      const inSrc = relative(srcRoot, target);
      if (inSrc.startsWith('..') || inSrc.split(sep)[0] !== 'api') {
        problems.push(`${relative(dirname(srcRoot), file)}: imports "${spec}": the console may import only the API's wire types (src/api)`);
      }
    }
  }
  return problems;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = resolve(process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '..', 'src'));
  const problems = [...checkLayers(root), ...checkConsole(join(dirname(root), 'console', 'src'), root)];
  for (const p of problems) console.error(`lint-layers: ${p}`);
  if (problems.length > 0) process.exit(1);
  console.log(`lint-layers: the pure core (${Object.keys(CORE).join(', ')}) imports only what it may; the console only src/api`);
}
