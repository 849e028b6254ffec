/**
 * A guest that keeps its own IMA list (shared with its host as a file): the agent forwards its new lines as they
 * are written, the controller enrolls the first measurement and cuts the VM off at the first changed digest. A real
 * controller on loopback; the driver is the simulated one and the enforcer the dry run (no root needed: the data
 * plane is tested elsewhere).
 */
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { Agent } from '../../src/agent/agent.ts';
import { ControllerClient } from '../../src/agent/controller-client.ts';
import { DryRunEnforcer } from '../../src/agent/dry-run.ts';
import { SimDriver } from '../../src/agent/sim-driver.ts';
import { formatAsciiLine } from '../../src/integrity/ima-entry.ts';
import { pathEntry } from '../../src/integrity/measure-entry.ts';
import { buildApp, type App } from '../../src/server/app.ts';
import { createToken } from '../../src/server/routes/tokens.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import type { Store } from '../../src/store/store.ts';

let dir: string;
let store: Store;
let app: App;
let url: string;
let admin: string;
let agent: Agent;
const driver = new SimDriver();
const line = (path: string, byte: number) => formatAsciiLine(pathEntry('file', path, new Uint8Array(32).fill(byte)));
const api = async <T = any>(method: string, path: string, body?: unknown): Promise<T> => {
  const r = await fetch(url + path, { method, headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`);
  return r.json() as Promise<T>;
};
const until = async (what: string, f: () => Promise<boolean>) => {
  const end = Date.now() + 15_000;
  while (!(await f())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hg-e2e-imalog-'));
  store = await openSqliteStore({ dir: join(dir, 'data') });
  const ctx = { store, now: () => new Date() };
  admin = (await createToken(ctx, { name: 'admin', role: 'admin', host: null })).secret;
  const token = (await createToken(ctx, { name: 'agent', role: 'agent', host: 'h-ima' })).secret;
  app = await buildApp({ store, rateLimit: false });
  await app.app.listen({ host: '127.0.0.1', port: 0 });
  url = `http://127.0.0.1:${(app.app.server.address() as AddressInfo).port}`;
  const d = await api<{ id: string }>('POST', '/api/v1/policy/drafts', { text: readFileSync(new URL('../../examples/demo.yaml', import.meta.url), 'utf8') });
  await api('POST', `/api/v1/policy/drafts/${d.id}/publish`, { note: 'ima log', mode: 'reject' });
  const log = join(dir, 'guest-ima.log');
  writeFileSync(log, [line('/usr/bin/bash', 1), line('/usr/lib/libc.so.6', 2), line('/etc/hostname', 3)].join('\n') + '\n');
  driver.define({ name: 'g1', label: 'blue', running: true, ports: ['tapg1'], measure: { imaLog: log } });
  agent = new Agent({ controller: new ControllerClient(url, token), host: 'h-ima', hostLabel: null, driver, enforcer: new DryRunEnforcer(() => {}), stateDir: join(dir, 'agent'), socket: null, reportMs: 100, log: () => {} });
  await agent.start();
});

after(async () => {
  await agent?.stop();
  await app?.app.close();
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

it('the guest\'s own list is enrolled, followed, and a changed digest in it cuts the VM off', async () => {
  await until('g1 trusted', async () => (await api('GET', '/api/v1/vms/g1/trust').catch(() => ({ state: '' }))).state === 'trusted');
  const history = await api<{ to: string; reason: string }[]>('GET', '/api/v1/vms/g1/trust/history');
  assert.ok(history.some((h) => h.to === 'trusted' && /from 3 entries/.test(h.reason)), JSON.stringify(history));
  // a line half written is not read until its newline comes
  const log = join(dir, 'guest-ima.log');
  const changed = line('/usr/bin/bash', 9);
  appendFileSync(log, changed.slice(0, 20));
  await new Promise((r) => setTimeout(r, 300));
  assert.equal((await api('GET', '/api/v1/vms/g1/trust')).state, 'trusted');
  appendFileSync(log, `${changed.slice(20)}\n`);
  await until('g1 untrusted', async () => (await api('GET', '/api/v1/vms/g1/trust')).state === 'untrusted');
  const t = await api<{ evidence: { failures: { path: string }[] } }>('GET', '/api/v1/vms/g1/trust');
  assert.deepEqual(t.evidence.failures.map((f) => f.path), ['/usr/bin/bash']);
  await until('g1 out of the plan\'s colors', async () => agent.plan?.vms.find((v) => v.name === 'g1')?.colors.length === 0);
});
