/**
 * A real controller for tests: a fresh SQLite store in a temp dir, the API listening on 127.0.0.1 on a free port,
 * a token of every role (the agent's bound to host `h1`), and `call` for requests over real HTTP.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Role } from '../api/types.ts';
import { openSqliteStore } from '../store/sqlite.ts';
import type { Store } from '../store/store.ts';
import { buildApp, type AppOptions } from './app.ts';
import type { ServerContext } from './context.ts';
import { createToken } from './routes/tokens.ts';
import type { FastifyInstance } from 'fastify';

export const AGENT_HOST = 'h1';

/** A small policy: two colors that never share, a conflict set between their walls, a multi-color VIO label. */
export const LAB = `policy: lab
version: "1.0"
colors: [blue, red, green]
walls: [blue-w, red-w]
conflicts:
  rb: [blue-w, red-w]     # never side by side on one host
host: host
labels:
  host: { colors: [blue, red, green] }
  blue: { colors: [blue], walls: [blue-w] }
  red:  { colors: [red], walls: [red-w] }
  vio:  { colors: [blue, green], onUntrusted: alert }
resources:
  blue-disk: { color: blue }
  red-net:   { color: red }
`;

/** LAB's successor: vio loses blue (a VIO VM on a blue disk violates it), red is renamed crimson. */
export const LAB_V2 = `policy: lab
version: "1.1"
from: { policy: lab, version: "1.0" }
colors: [blue, red, green]
walls: [blue-w, red-w]
conflicts:
  rb: [blue-w, red-w]
host: host
labels:
  host:    { colors: [blue, red, green] }
  blue:    { colors: [blue], walls: [blue-w] }
  crimson: { colors: [red], walls: [red-w], from: red }
  vio:     { colors: [green], onUntrusted: alert }
resources:
  blue-disk: { color: blue }
  red-net:   { color: red }
`;

export interface Answer {
  status: number;
  headers: Headers;
  text: string;
  json: any;
}

export interface CallOptions {
  token?: string;
  body?: unknown;
  /** a raw body with this content type (policy text) */
  raw?: { type: string; text: string };
  headers?: Record<string, string>;
}

export interface TestServer {
  dir: string;
  url: string;
  store: Store;
  app: FastifyInstance;
  ctx: ServerContext;
  tokens: Record<Role, string>;
  call(method: string, path: string, opts?: CallOptions): Promise<Answer>;
  /** create a draft from YAML and publish it (as admin); returns the version number */
  publish(yaml: string, note?: string, mode?: 'reject' | 'revoke'): Promise<number>;
  close(): Promise<void>;
}

export async function call(base: string, method: string, path: string, opts: CallOptions = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
  let body: string | undefined;
  if (opts.raw) {
    headers['content-type'] = opts.raw.type;
    body = opts.raw.text;
  } else if (opts.body !== undefined) {
    headers['content-type'] ??= 'application/json';
    body = typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
  }
  const r = await fetch(base + path, { method, headers, body });
  const text = await r.text();
  let json: unknown;
  try {
    json = text === '' ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: r.status, headers: r.headers, text, json };
}

/** Start a controller: on a fresh SQLite store, or on the store `open` gives (PostgreSQL). */
export async function startServer(opts: Partial<AppOptions> & { open?: () => Promise<Store> } = {}): Promise<TestServer> {
  const dir = mkdtempSync(join(tmpdir(), 'hg-server-'));
  const { open, ...appOptions } = opts;
  const store = open ? await open() : await openSqliteStore({ dir });
  // a console build of two files, so that the console's routes answer as they do when it is built
  mkdirSync(join(dir, 'console', 'assets'), { recursive: true });
  writeFileSync(join(dir, 'console', 'index.html'), '<!doctype html><title>hueguard</title><script type="module" src="/assets/app-test.js"></script>');
  writeFileSync(join(dir, 'console', 'assets', 'app-test.js'), 'document.title = "hueguard";');
  const { app, ctx } = await buildApp({ store, consoleDir: join(dir, 'console'), ...appOptions });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const tokens = {} as Record<Role, string>;
  for (const role of ['viewer', 'operator', 'admin', 'agent'] as const) {
    tokens[role] = (await createToken(ctx, { name: role, role, host: role === 'agent' ? AGENT_HOST : null })).secret;
  }
  const s: TestServer = {
    dir, url, store, app, ctx, tokens,
    call: (method, path, o) => call(url, method, path, o),
    async publish(yaml, note = 'test', mode = 'reject') {
      const d = await s.call('POST', '/api/v1/policy/drafts', { token: tokens.admin, raw: { type: 'application/yaml', text: yaml } });
      if (d.status !== 201) throw new Error(`draft: ${d.status} ${d.text}`);
      const p = await s.call('POST', `/api/v1/policy/drafts/${d.json.id}/publish`, { token: tokens.admin, body: { note, mode } });
      if (p.status !== 201) throw new Error(`publish: ${p.status} ${p.text}`);
      return p.json.version.version;
    },
    async close() {
      await app.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return s;
}
