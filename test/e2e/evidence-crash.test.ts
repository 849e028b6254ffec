/**
 * Group-committed evidence survives a crash of the controller: `hueguard serve` runs as its own process, agents
 * (one token per host) send their VMs' increments — batched per host, and per VM — as fast as it answers, now and
 * then an increment that fails appraisal; at a random moment the controller is killed with SIGKILL. Many times
 * over one database, restarting the controller each time. After each kill the store is opened directly and:
 * every increment that was answered is there (each VM's list position is where the answers left it, or one
 * unanswered increment further), every VM answered untrusted is untrusted, every trust transition has its audit
 * record and the audit chain verifies, each host's plan says what its VMs' trust says. SQLite always; PostgreSQL
 * where a server can be started.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { formatAsciiLine } from '../../src/integrity/ima-entry.ts';
import { pathEntry } from '../../src/integrity/measure-entry.ts';
import { verifyAuditChain } from '../../src/store/audit-chain.ts';
import type { StoreBackend, StoreFixture } from '../../src/store/conformance.ts';
import type { Store } from '../../src/store/store.ts';
import { postgresBackend, sqliteBackend, type PostgresFixture, type SqliteFixture } from '../support/store-backends.ts';

const ROUNDS = 8;
const HOSTS = 4;
const PER_HOST = 5;
const ADMIN = 'hg_evidence-crash-admin-0123456789';
const BIN = fileURLToPath(new URL('../../bin/hueguard', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

const POLICY = `policy: crash
version: "1"
colors: [blue, red]
walls: []
host: host
labels:
  host: { colors: [blue, red] }
  blue: { colors: [blue] }
  red:  { colors: [red], onUntrusted: alert }
`;

const sha = (s: string) => createHash('sha256').update(s).digest();
const line = (path: string, content = 'v1') => formatAsciiLine(pathEntry('file', path, sha(`${path} ${content}`)));
const FILES = ['/usr/bin/a', '/usr/bin/b', '/etc/conf', '/usr/lib/x.so'];
const hostName = (h: number) => `ch${h}`;
const vmName = (h: number, i: number) => `ch${h}-v${i}`;
const labelOf = (i: number) => (i % 2 ? 'red' : 'blue');

interface Server {
  child: ChildProcess;
  url: string;
  exited: Promise<void>;
  stderr: () => string;
}

async function serve(args: string[]): Promise<Server> {
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', ...args], {
    cwd: ROOT,
    env: { ...process.env, HUEGUARD_ADMIN_TOKEN: ADMIN },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${err}`)), 60_000);
    exited.then(() => reject(new Error(`serve exited before it listened: ${err}`)));
    createInterface({ input: child.stdout! }).on('line', (l) => {
      const m = /listening on (http:\/\/\S+) /.exec(l);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
  });
  return { child, url, exited, stderr: () => err };
}

async function call(url: string, token: string, method: string, path: string, body?: unknown, raw?: string) {
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (raw !== undefined) headers['content-type'] = 'application/yaml';
  else if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(url + path, { method, headers, body: raw ?? (body === undefined ? undefined : JSON.stringify(body)) });
  const text = await r.text();
  return { status: r.status, json: text ? JSON.parse(text) : undefined, text };
}

/** What the agents were told: per VM, its list position after its last answered increment, and its state then. */
interface Acked {
  from: Map<string, number>;
  /** the size of the increment in flight when the controller died (it may or may not have been stored) */
  inflight: Map<string, number>;
  untrusted: Set<string>;
}

interface Agents {
  /** settles once every agent has stopped (the controller is gone) */
  all: Promise<unknown>;
  stop(): void;
  answered(): number;
}

/** The agents: each host sends batched increments, and one VM per host per-VM increments, until the server dies. */
function startAgents(url: string, tokens: string[], acked: Acked, round: number): Agents {
  let answered = 0;
  let alive = true;
  let seq = 0;
  const next = (vm: string) => {
    // the first increment enrolls the VM's fingerprint: every file, as it should be
    if ((acked.from.get(vm) ?? 0) === 0) return FILES.map((f) => line(f));
    const n = 1 + (seq++ % 2);
    // now and then (not for the same VM twice) a changed file: a failed appraisal, a verdict stored with the rest
    const bad = !acked.untrusted.has(vm) && seq % 37 === 0;
    return Array.from({ length: n }, (_, k) => line(FILES[(seq + k) % FILES.length], bad && k === 0 ? `tampered ${round}` : 'v1'));
  };
  const host = async (h: number) => {
    const vms = Array.from({ length: PER_HOST - 1 }, (_, i) => vmName(h, i));
    while (alive) {
      const items = vms.map((vm) => ({ vm, entries: next(vm), from: acked.from.get(vm) ?? 0 }));
      for (const it of items) acked.inflight.set(it.vm, it.entries.length);
      let r;
      try {
        r = await call(url, tokens[h], 'POST', `/api/v1/hosts/${hostName(h)}/evidence`, { vms: items });
      } catch {
        return; // the controller is gone: what is in flight stays in `inflight`
      }
      assert.equal(r.status, 200, r.text);
      answered++;
      r.json.results.forEach((x: { vm: string; error?: unknown; trust?: { state: string } }, i: number) => {
        acked.inflight.delete(x.vm);
        if (x.error) assert.fail(`refused: ${JSON.stringify(x)}`);
        acked.from.set(x.vm, (acked.from.get(x.vm) ?? 0) + items[i].entries.length);
        if (x.trust?.state === 'untrusted') acked.untrusted.add(x.vm);
      });
    }
  };
  const single = async (h: number) => {
    const vm = vmName(h, PER_HOST - 1);
    while (alive) {
      const entries = next(vm);
      acked.inflight.set(vm, entries.length);
      let r;
      try {
        r = await call(url, tokens[h], 'POST', `/api/v1/vms/${vm}/evidence`, { entries, from: acked.from.get(vm) ?? 0 });
      } catch {
        return;
      }
      assert.equal(r.status, 200, r.text);
      answered++;
      acked.inflight.delete(vm);
      acked.from.set(vm, (acked.from.get(vm) ?? 0) + entries.length);
      if (r.json.trust.state === 'untrusted') acked.untrusted.add(vm);
    }
  };
  const all = Promise.all(Array.from({ length: HOSTS }, (_, h) => [host(h), single(h)]).flat());
  return { all, stop: () => void (alive = false), answered: () => answered };
}

/** The store after a kill: everything answered is there, whole. */
async function check(store: Store, acked: Acked): Promise<void> {
  assert.deepEqual(verifyAuditChain(await store.audit()), { ok: true });
  const transitions = (await store.audit({ action: 'trust.transition' })).map((r) => r.subject);
  for (let h = 0; h < HOSTS; h++) {
    const plan = await store.plan(hostName(h));
    assert.ok(plan !== null, `host ${hostName(h)} has a plan`);
    for (let i = 0; i < PER_HOST; i++) {
      const vm = vmName(h, i);
      const st = (await store.integrity(vm))?.state as { replay: { next: number }; waiting: string[] } | undefined;
      const at = st === undefined ? 0 : st.replay.next + st.waiting.length;
      const want = acked.from.get(vm) ?? 0;
      const maybe = want + (acked.inflight.get(vm) ?? 0);
      assert.ok(at === want || at === maybe, `${vm}: the store is at entry ${at}; answered up to ${want}${maybe !== want ? ` (or ${maybe} with the one in flight)` : ''}`);
      const trust = await store.trust(vm);
      if (acked.untrusted.has(vm)) assert.equal(trust?.state, 'untrusted', `${vm} was answered untrusted`);
      // every transition of its history has its audit record, and the plan says what its trust says
      const moved = (await store.trustHistory(vm)).filter((t) => t.from !== t.to).length;
      assert.equal(transitions.filter((s) => s === `vm/${vm}`).length, moved, `${vm}: each transition audited`);
      const entry: { name: string; colors: string[] } | undefined = plan.vms.find((v) => v.name === vm);
      assert.ok(entry !== undefined, `${vm} is in its host's plan`);
      // unverified: none; untrusted: none under `blue` (isolate), its colors under `red` (alert)
      const isolates = trust === null || trust.state === 'unverified' || (labelOf(i) === 'blue' && trust.state !== 'trusted');
      assert.equal(entry.colors.length === 0, isolates, `${vm} (${trust?.state}): plan ${JSON.stringify(entry)}`);
    }
  }
}

function crashSuite<F extends StoreFixture>(name: string, backend: StoreBackend<F>, target: (fx: F) => string[]): void {
  const skip = backend.unavailable?.() ?? null;
  if (skip) {
    it(`group-committed evidence when the controller is killed: ${name}`, { skip }, () => undefined);
    return;
  }
  describe(`group-committed evidence when the controller is killed: ${name}`, { timeout: 600_000 }, () => {
    let fx: F;
    before(async () => {
      await backend.setup?.();
      fx = await backend.fresh();
    });
    after(async () => {
      await fx?.destroy();
      await backend.teardown?.();
    });

    it(`${ROUNDS} rounds of SIGKILL during evidence lose no answered increment and leave no half transition`, async (t) => {
      // set-up through the first controller: the policy, the hosts' agents and inventories
      let s = await serve(target(fx));
      const d = await call(s.url, ADMIN, 'POST', '/api/v1/policy/drafts', undefined, POLICY);
      assert.equal(d.status, 201, d.text);
      assert.equal((await call(s.url, ADMIN, 'POST', `/api/v1/policy/drafts/${d.json.id}/publish`, { note: 'crash test' })).status, 201);
      const tokens: string[] = [];
      for (let h = 0; h < HOSTS; h++) {
        const tk = await call(s.url, ADMIN, 'POST', '/api/v1/tokens', { name: `agent-${h}`, role: 'agent', host: hostName(h) });
        tokens.push(tk.json.secret);
        const vms = Array.from({ length: PER_HOST }, (_, i) => ({ name: vmName(h, i), label: labelOf(i), running: true, ports: [`tap-${h}-${i}`] }));
        assert.equal((await call(s.url, tokens[h], 'PUT', `/api/v1/hosts/${hostName(h)}/vms`, { vms })).status, 200);
      }
      const acked: Acked = { from: new Map(), inflight: new Map(), untrusted: new Set() };
      let answered = 0;
      for (let round = 1; round <= ROUNDS; round++) {
        if (round > 1) s = await serve(target(fx));
        const agents = startAgents(s.url, tokens, acked, round);
        await new Promise((r) => setTimeout(r, 300 + Math.random() * 700));
        s.child.kill('SIGKILL');
        await s.exited;
        agents.stop();
        await agents.all;
        answered += agents.answered();
        const store = await fx.open();
        try {
          await check(store, acked);
          // the agents resume from where the store is (an increment in flight may have been stored)
          for (const [vm] of acked.inflight) {
            const st = (await store.integrity(vm))?.state as { replay: { next: number }; waiting: string[] } | undefined;
            acked.from.set(vm, st === undefined ? 0 : st.replay.next + st.waiting.length);
            if ((await store.trust(vm))?.state === 'untrusted') acked.untrusted.add(vm);
          }
          acked.inflight.clear();
        } finally {
          await store.close();
        }
      }
      t.diagnostic(`${answered} answered evidence requests over ${ROUNDS} kills; ${acked.untrusted.size} VMs made untrusted`);
      assert.ok(answered >= ROUNDS * 5, `too few answered requests (${answered}) for the test to mean much`);
      assert.ok(acked.untrusted.size > 0, 'some evidence failed appraisal');
    });
  });
}

crashSuite<SqliteFixture>('sqlite', sqliteBackend(), (fx) => ['--data', fx.dir]);
crashSuite<PostgresFixture>('postgres', postgresBackend(), (fx) => ['--postgres', fx.url]);
