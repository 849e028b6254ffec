/**
 * A real controller (SQLite in a temp folder, HTTP on loopback, the built console served at `/`) holding a fleet
 * put there the way agents and operators put it: through the HTTP API only. Each host's agent token reports the
 * host and its VMs (with the labels in their definitions), sends each VM's first measurement (enrolled: `trusted`) and, on request, a changed one
 * (`untrusted`, with the failing path) or drop counters. Users `ada` (admin), `otto` (operator) and `vera` (viewer)
 * sign in with PASSWORD. The console tests and `npm run bench:console` use it.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BlockedV1 } from '../../src/api/types.ts';
import { formatAsciiLine } from '../../src/integrity/ima-entry.ts';
import { pathEntry } from '../../src/integrity/measure-entry.ts';
import { buildApp, type App } from '../../src/server/app.ts';
import { createToken } from '../../src/server/routes/tokens.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import type { Store } from '../../src/store/store.ts';

export const PASSWORD = 'correct-horse-battery';
export const USERS = { admin: 'ada', operator: 'otto', viewer: 'vera' } as const;

/** Eight colors, labels of one and of several colors, two conflict sets, resource labels. */
export const FLEET_POLICY = `policy: seeded
version: "1.0"
colors: [blue, red, green, amber, teal, violet, slate, gold]
walls: [bank-a, bank-b, oil-a, oil-b]
conflicts:
  banks: [bank-a, bank-b]
  oil: [oil-a, oil-b]
host: hypervisor
labels:
  hypervisor: { colors: [blue, red, green, amber, teal, violet, slate, gold] }
  web:        { colors: [blue] }
  db:         { colors: [red] }
  cache:      { colors: [green] }
  gateway:    { colors: [blue, red] }
  bank-a-app: { colors: [amber], walls: [bank-a] }
  bank-b-app: { colors: [teal], walls: [bank-b] }
  oil-a-app:  { colors: [violet], walls: [oil-a], onUntrusted: alert }
  oil-b-app:  { colors: [slate], walls: [oil-b] }
  vault:      { colors: [gold] }
resources:
  web-disk: { color: blue }
  db-disk:  { color: red }
`;

/** Labels handed out in turn; bank-b and oil-b only where their rivals do not run (the Chinese Wall would refuse). */
const ROTATION = ['web', 'db', 'cache', 'gateway', 'bank-a-app', 'oil-a-app', 'web', 'db', 'vault', 'cache'];

export const hostName = (h: number) => `host-${String(h).padStart(3, '0')}`;
export const vmName = (h: number, i: number) => `vm-${String(h).padStart(3, '0')}-${String(i).padStart(2, '0')}`;

const sha = (s: string) => new Uint8Array(createHash('sha256').update(s).digest());
const line = (path: string, content: string) => formatAsciiLine(pathEntry('file', path, sha(content)));
/** A VM's first measurement: three files. */
const FIRST = (vm: string) => [line('/usr/bin/app', `app of ${vm}`), line('/usr/lib/libc.so', 'libc'), line('/etc/app.conf', `conf of ${vm}`)];

export interface SeededFleetOptions {
  hosts: number;
  vmsPerHost: number;
  /** send every VM's first measurement (trusted); default true */
  enroll?: boolean;
  /** a VM without fresh evidence for this long turns unreachable (default: an hour, so that tests do not race it) */
  deadlineMs?: number;
  tickMs?: number | false;
  /** the label of VM i on host h (default: ROTATION; the last host runs bank-b/oil-b, the rivals of the first's) */
  labelOf?: (h: number, i: number) => string | null;
  sessionTtlMs?: number;
  /** the port to listen on (default: any free one) */
  port?: number;
  /** the built console to serve (default: HUEGUARD_CONSOLE_OUT, else console/dist) */
  consoleDir?: string;
}

export interface SeededFleet {
  url: string;
  dir: string;
  store: Store;
  app: App;
  admin: string;
  hosts: string[];
  vms: { name: string; host: string; label: string | null }[];
  /** the API as the admin (or with `token`); throws on any answer ≥ 400, with the body */
  api<T = any>(method: string, path: string, body?: unknown, token?: string): Promise<T>;
  agentToken(host: string): string;
  /** the VM's agent sends a changed /usr/bin/app: the VM turns untrusted */
  tamper(vm: string): Promise<void>;
  /** the host's agent reports dropped frames */
  report(host: string, blocked: BlockedV1[]): Promise<void>;
  close(): Promise<void>;
}

export async function startSeededFleet(o: SeededFleetOptions): Promise<SeededFleet> {
  const dir = mkdtempSync(join(tmpdir(), 'hg-console-'));
  const store = await openSqliteStore({ dir: join(dir, 'data') });
  const admin = (await createToken({ store, now: () => new Date() }, { name: 'admin', role: 'admin', host: null })).secret;
  const app = await buildApp({
    store, rateLimit: false, loginRateLimit: false, deadlineMs: o.deadlineMs ?? 3_600_000, tickMs: o.tickMs ?? 1_000,
    ...(o.sessionTtlMs ? { sessionTtlMs: o.sessionTtlMs } : {}),
    ...(o.consoleDir ?? process.env.HUEGUARD_CONSOLE_OUT ? { consoleDir: o.consoleDir ?? process.env.HUEGUARD_CONSOLE_OUT } : {}),
  });
  // the port asked for, else (taken) any free one
  await app.app.listen({ host: '127.0.0.1', port: o.port ?? 0 }).catch(() => app.app.listen({ host: '127.0.0.1', port: 0 }));
  const url = `http://127.0.0.1:${(app.app.server.address() as AddressInfo).port}`;
  const tokens = new Map<string, string>();
  const sent = new Map<string, number>();

  async function api<T>(method: string, path: string, body?: unknown, token = admin): Promise<T> {
    const res = await fetch(url + path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return (text ? JSON.parse(text) : null) as T;
  }

  const d = await api<{ id: string }>('POST', '/api/v1/policy/drafts', { text: FLEET_POLICY });
  await api('POST', `/api/v1/policy/drafts/${d.id}/publish`, { note: 'first policy', mode: 'reject' });
  for (const [role, user] of Object.entries(USERS)) await api('PUT', `/api/v1/users/${user}`, { role, password: PASSWORD });

  const labelOf = o.labelOf ?? ((h: number, i: number) => {
    const l = ROTATION[i % ROTATION.length];
    if (h === o.hosts - 1 && o.hosts > 1) return l === 'bank-a-app' ? 'bank-b-app' : l === 'oil-a-app' ? 'oil-b-app' : l;
    return l;
  });
  const hosts: string[] = [];
  const vms: SeededFleet['vms'] = [];
  const enroll = o.enroll ?? true;
  // hosts in parallel, a few at a time (each is a handful of requests)
  const one = async (h: number) => {
    const host = hostName(h);
    const t = await api<{ secret: string }>('POST', '/api/v1/tokens', { name: `agent-${host}`, role: 'agent', host });
    tokens.set(host, t.secret);
    await api('PUT', `/api/v1/hosts/${host}`, { label: null }, t.secret);
    const mine = Array.from({ length: o.vmsPerHost }, (_, i) => ({ name: vmName(h, i), label: labelOf(h, i), running: true, ports: [`tap${h}x${i}`] }));
    await api('PUT', `/api/v1/hosts/${host}/vms`, { vms: mine }, t.secret);
    if (enroll) {
      await api('POST', `/api/v1/hosts/${host}/evidence`, { vms: mine.map((v) => ({ vm: v.name, entries: FIRST(v.name), from: 0 })) }, t.secret);
      for (const v of mine) sent.set(v.name, 3);
    }
    hosts.push(host);
    for (const v of mine) vms.push({ name: v.name, host, label: v.label });
  };
  const queue = Array.from({ length: o.hosts }, (_, h) => h);
  await Promise.all(Array.from({ length: 8 }, async () => {
    for (let h = queue.shift(); h !== undefined; h = queue.shift()) await one(h);
  }));
  hosts.sort();
  vms.sort((a, b) => (a.name < b.name ? -1 : 1));

  const f: SeededFleet = {
    url, dir, store, app, admin, hosts, vms, api,
    agentToken: (host) => tokens.get(host)!,
    async tamper(vm) {
      const host = vms.find((v) => v.name === vm)!.host;
      const from = sent.get(vm) ?? 0;
      await api('POST', `/api/v1/hosts/${host}/evidence`, { vms: [{ vm, entries: [line('/usr/bin/app', 'a rootkit')], from }] }, tokens.get(host));
      sent.set(vm, from + 1);
    },
    async report(host, blocked) {
      await api('PUT', `/api/v1/hosts/${host}/report`, { appliedPlan: null, planError: null, blocked }, tokens.get(host));
    },
    async close() {
      await app.app.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return f;
}
