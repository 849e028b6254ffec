/**
 * The console's files (`console/`, built by Vite into `console/dist/`): `GET /` the page, `GET /assets/:file` its
 * scripts and styles. The files are read once, at start; only names found then are ever served (no path from the
 * request reaches the file system). Asset names carry their content hash, so they are cached for a year; the page
 * is not cached. A strict Content-Security-Policy: scripts only from this origin, no inline script, no frames.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { ApiError, ApiErrorCode } from '../errors.ts';

const TYPES: Record<string, string> = {
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  svg: 'image/svg+xml',
  png: 'image/png',
  ico: 'image/x-icon',
  woff2: 'font/woff2',
  map: 'application/json',
};

const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  // React sets style properties through the DOM, which a CSP does not govern; the built CSS is a file
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "object-src 'none'",
].join('; ');

/** `console/dist` of this checkout: found upwards from this module (sources in src/server/routes, or dist/chunks). */
export function findConsoleDir(from = dirname(fileURLToPath(import.meta.url))): string | null {
  for (let dir = from, i = 0; i < 6; i++, dir = dirname(dir)) {
    const candidate = join(dir, 'console', 'dist');
    if (existsSync(join(candidate, 'index.html'))) return candidate;
    if (existsSync(join(dir, 'package.json'))) return null;
  }
  return null;
}

function securityHeaders(reply: FastifyReply): FastifyReply {
  return reply
    .header('Content-Security-Policy', CSP)
    .header('X-Content-Type-Options', 'nosniff')
    .header('Referrer-Policy', 'no-referrer')
    .header('X-Frame-Options', 'DENY');
}

const NOT_BUILT = `<!doctype html><meta charset="utf-8"><title>hueguard</title>
<p>The hueguard console has not been built. Run <code>npm run build:console</code> (or <code>npm ci</code>), then reload.
The API is at <a href="/openapi.json">/openapi.json</a>.</p>`;

export function consoleRoutes(app: FastifyInstance, dir: string | null): void {
  const index = dir ? readFileSync(join(dir, 'index.html')) : null;
  const assets = new Map<string, { body: Buffer; type: string }>();
  if (dir && existsSync(join(dir, 'assets'))) {
    for (const f of readdirSync(join(dir, 'assets'))) {
      const ext = f.slice(f.lastIndexOf('.') + 1);
      if (TYPES[ext]) assets.set(f, { body: readFileSync(join(dir, 'assets', f)), type: TYPES[ext] });
    }
  }

  app.get('/', { schema: { summary: 'The console (HTML; its API calls authenticate like any other)', tags: ['console'], produces: ['text/html'] } }, async (_request, reply) => {
    securityHeaders(reply).header('Cache-Control', 'no-cache').type('text/html; charset=utf-8');
    if (index === null) return reply.code(503).send(NOT_BUILT);
    return reply.send(index);
  });

  app.get('/assets/:file', { schema: { summary: 'The console\'s scripts and styles', tags: ['console'], params: { type: 'object', required: ['file'], properties: { file: { type: 'string', maxLength: 200 } } } } }, async (request, reply) => {
    const a = assets.get((request.params as { file: string }).file);
    if (a === undefined) throw new ApiError(ApiErrorCode.notFound, 'no such console file');
    securityHeaders(reply).header('Cache-Control', 'public, max-age=31536000, immutable').type(a.type);
    return reply.send(a.body);
  });
}
