/**
 * `hueguard demo [--policy FILE] [--vms LABEL:COUNT,…] [--port N]`: one command for the whole picture, as root —
 * a controller on SQLite in a temporary folder, the policy published through the API, a lab of netns VMs, and an
 * agent enforcing with nftables; it prints the console URL and an admin token, runs until Ctrl-C or SIGTERM, and
 * then removes everything it made (the lab, the nftables table, the folder).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isRoot } from '../agent/exec.ts';
import { labDown, labUp, parseVmSpec, type Lab } from '../agent/lab.ts';
import { formatDiagnostic } from '../policy/errors.ts';
import { readPolicy } from '../policy/format.ts';
import { buildApp, type App } from '../server/app.ts';
import { createToken } from '../server/routes/tokens.ts';
import { openSqliteStore } from '../store/sqlite.ts';
import type { Store } from '../store/store.ts';
import { buildAgent, type BuiltAgent } from './agent.ts';
import { CliError } from './errors.ts';

export const DEMO_POLICY = resolve(dirname(fileURLToPath(import.meta.url)), '../../examples/demo.yaml');
const HOST = 'demo-host';

export interface DemoOptions {
  policy?: string;
  vms?: string;
  port?: string;
  /** for tests: resolve instead of waiting for a signal */
  until?: Promise<void>;
  /** for tests: told the URL, tokens and lab once everything is up */
  onReady?: (ready: DemoReady) => void;
}

export interface DemoReady {
  url: string;
  adminToken: string;
  lab: Lab;
  dir: string;
}

async function api(url: string, token: string, method: string, path: string, body?: unknown): Promise<unknown> {
  const res = await fetch(url + path, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = (await res.json().catch(() => null)) as { message?: string; details?: unknown } | null;
  if (!res.ok) throw new CliError(`${method} ${path}: ${res.status} ${json?.message ?? ''}${json?.details ? ` ${JSON.stringify(json.details)}` : ''}`);
  return json;
}

export async function demo(o: DemoOptions): Promise<number> {
  if (!isRoot()) {
    throw new CliError('hueguard demo needs root: it makes network namespaces and veth links (ip netns) and an nftables table. Run it as root (sudo hueguard demo).', 2);
  }
  const policyFile = resolve(o.policy ?? DEMO_POLICY);
  let policyText: string;
  try {
    policyText = readFileSync(policyFile, 'utf8');
  } catch (e) {
    throw new CliError(`cannot read the policy ${policyFile}: ${(e as Error).message}`, 2);
  }
  const read = readPolicy(policyText, policyFile);
  if (!read.policy) throw new CliError(read.diagnostics.map((d) => formatDiagnostic(d)).join('\n'), 1);
  const labels = new Set(read.policy.labels.map((l) => l.name));
  const vms = parseVmSpec(o.vms ?? 'blue:2,red:2');
  for (const v of vms) if (!labels.has(v.label)) throw new CliError(`--vms: the policy has no label ${JSON.stringify(v.label)} (it has: ${[...labels].join(', ')})`);
  const port = o.port === undefined ? 8470 : Number(o.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new CliError(`--port must be 0–65535, not ${o.port}`);

  const dir = mkdtempSync(join(tmpdir(), 'hueguard-demo-'));
  let store: Store | undefined;
  let app: App | undefined;
  let lab: Lab | undefined;
  let built: BuiltAgent | undefined;
  const cleanup = async () => {
    await built?.agent.stop().catch(() => {});
    await built?.enforcer.remove().catch(() => {});
    await built?.driver.close().catch(() => {});
    if (lab) await labDown(lab.dir).catch(() => {});
    await app?.app.close().catch(() => {});
    await store?.close().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    store = await openSqliteStore({ dir: join(dir, 'data') });
    const ctx = { store, now: () => new Date() };
    const admin = (await createToken(ctx, { name: 'admin', role: 'admin', host: null })).secret;
    const agentToken = (await createToken(ctx, { name: `agent ${HOST}`, role: 'agent', host: HOST })).secret;
    app = await buildApp({ store, logger: { level: 'warn' } });
    try {
      await app.app.listen({ host: '127.0.0.1', port });
    } catch (e) {
      throw new CliError(`cannot listen on 127.0.0.1:${port}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message} (give --port)`, 2);
    }
    const url = `http://127.0.0.1:${(app.app.server.address() as AddressInfo).port}`;

    // The policy goes in as a user's would: a draft, then published.
    const draft = (await api(url, admin, 'POST', '/api/v1/policy/drafts', { text: policyText })) as { id: string; name: string };
    await api(url, admin, 'POST', `/api/v1/policy/drafts/${draft.id}/publish`, { note: `hueguard demo: ${policyFile}`, mode: 'reject' });

    lab = await labUp({ vms, dir: join(dir, 'lab') });
    built = await buildAgent({ controller: url, token: agentToken, host: HOST, driver: 'lab', lab: lab.dir, state: join(dir, 'agent'), socket: join(dir, 'agent.sock') }, (l) => process.stderr.write(`${l}\n`));
    await built.agent.start();
    // "up" once the controller knows the lab's VMs (the agent reports them as it starts): the pings printed below
    // then work at once
    const want = lab.vms.map((v) => v.name);
    for (const end = Date.now() + 15_000; Date.now() < end; await new Promise((r) => setTimeout(r, 100))) {
      const known = new Set(((await api(url, admin, 'GET', '/api/v1/vms')) as { name: string }[]).map((v) => v.name));
      if (want.every((n) => known.has(n))) break;
    }

    const out = process.stdout;
    out.write(`hueguard demo is up (everything lives in ${dir}; Ctrl-C removes it)\n`);
    out.write(`  console and API: ${url}/\n  admin token:     ${admin}\n  policy:          ${policyFile}\n`);
    out.write(`  lab:             bridge ${lab.bridge} in namespace ${lab.hostNetns}; nftables table "bridge hueguard" there\n`);
    for (const v of lab.vms) out.write(`    ${v.name.padEnd(10)} ${String(v.label).padEnd(8)} ${v.ip.padEnd(13)} netns ${v.netns.padEnd(14)} root ${v.root}\n`);
    const [a, b] = lab.vms;
    if (a && b) {
      out.write(`  try:  ip netns exec ${a.netns} ping -c1 ${b.ip}\n`);
      out.write(`        echo changed >> ${a.root}/usr/bin/app     # ${a.name} turns untrusted and is cut off\n`);
      out.write(`        curl -s -H "Authorization: Bearer ${admin}" ${url}/api/v1/vms/${a.name}/trust\n`);
    }
    o.onReady?.({ url, adminToken: admin, lab, dir });
    await (o.until ??
      new Promise<void>((done) => {
        const stop = (sig: string) => {
          process.stderr.write(`hueguard demo: ${sig}: removing the lab, the rules and ${dir}\n`);
          done();
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
      }));
  } finally {
    await cleanup();
  }
  return 0;
}

