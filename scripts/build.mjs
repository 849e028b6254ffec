// `npm run build`: the CLI as plain JavaScript in dist/ (esbuild, one chunk per lazily loaded command), so that a
// deployed agent or controller does not carry the TypeScript loader (tsx costs ~40 MB of resident memory).
// bin/hueguard runs dist/ when it is newer than every source file, else the sources through tsx.
import { build } from 'esbuild';
import { rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
rmSync(`${root}/dist`, { recursive: true, force: true });
await build({
  entryPoints: { hueguard: `${root}/src/cli/main.ts`, hook: `${root}/src/cli/hook.ts` },
  outdir: `${root}/dist`,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // packages stay in node_modules (native addons, and fastify's own lazy requires)
  packages: 'external',
  // chunks keep their folder depth so that the sources' relative file lookups (examples/, native/) still work
  chunkNames: 'chunks/[name]-[hash]',
  banner: { js: "import { createRequire as __hgRequire } from 'node:module'; const require = __hgRequire(import.meta.url);" },
  logLevel: 'warning',
});
// a plain entry for deployments that run node directly: `node dist/cli.js agent …`
writeFileSync(`${root}/dist/cli.js`, "import { main } from './hueguard.js';\nawait main(process.argv);\n");
writeFileSync(`${root}/dist/BUILT`, `${new Date().toISOString()}\n`);
