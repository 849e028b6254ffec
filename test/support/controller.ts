/**
 * A real controller for end-to-end tests: SQLite in a temp folder, HTTP on loopback, an admin token, an agent token
 * for one host, the API called as the admin, and a policy published through the API as a user would.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp, type App } from '../../src/server/app.ts';
import { createToken } from '../../src/server/routes/tokens.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import type { Store } from '../../src/store/store.ts';

export interface TestController {
  dir: string;
  store: Store;
  app: App;
  url: string;
  admin: string;
  agentToken: string;
  /** the API as the admin; throws on any answer ≥ 400, with the body */
  api<T = any>(method: string, path: string, body?: unknown): Promise<T>;
  /** a draft from this text, then published */
  publish(text: string, mode: 'reject' | 'revoke', note: string): Promise<void>;
  /** the controller goes away (its HTTP server closes; the store stays) … */
  down(): Promise<void>;
  /** … and comes back on the same port and store */
  up(): Promise<void>;
  close(): Promise<void>;
}

export async function startController(agentHost: string, prefix = 'hg-e2e-'): Promise<TestController> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const store = await openSqliteStore({ dir: join(dir, 'data') });
  const ctx = { store, now: () => new Date() };
  const admin = (await createToken(ctx, { name: 'admin', role: 'admin', host: null })).secret;
  const agentToken = (await createToken(ctx, { name: 'agent', role: 'agent', host: agentHost })).secret;
  const c: TestController = {
    dir,
    store,
    app: await buildApp({ store, rateLimit: false }),
    url: '',
    admin,
    agentToken,
    async api(method, path, body) {
      const res = await fetch(c.url + path, { method, headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
      const text = await res.text();
      if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
      return text ? JSON.parse(text) : null;
    },
    async publish(text, mode, note) {
      const d = await c.api<{ id: string }>('POST', '/api/v1/policy/drafts', { text });
      await c.api('POST', `/api/v1/policy/drafts/${d.id}/publish`, { note, mode });
    },
    async down() {
      await c.app.app.close();
    },
    async up() {
      c.app = await buildApp({ store, rateLimit: false });
      await c.app.app.listen({ host: '127.0.0.1', port: Number(new URL(c.url).port) });
    },
    async close() {
      await c.app.app.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await c.app.app.listen({ host: '127.0.0.1', port: 0 });
  c.url = `http://127.0.0.1:${(c.app.app.server.address() as AddressInfo).port}`;
  return c;
}
