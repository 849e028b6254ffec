/**
 * Durability across a crash of the process that writes: a child process (test/support/store-crash-writer.ts) writes
 * through the store and prints each write once acknowledged; it is killed with SIGKILL at a random moment, many
 * times over one database. After each kill the store is reopened: every acknowledged write must be there, each
 * transaction whole, and the audit chain must verify. SQLite always; PostgreSQL where a server can be started (the
 * writer is killed, not the server).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { verifyAuditChain } from '../../src/store/audit-chain.ts';
import type { StoreBackend, StoreFixture } from '../../src/store/conformance.ts';
import type { Store } from '../../src/store/store.ts';
import { postgresBackend, sqliteBackend, type PostgresFixture, type SqliteFixture } from '../support/store-backends.ts';

const ROUNDS = 20;
const WRITER = fileURLToPath(new URL('../support/store-crash-writer.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface Acked {
  audit: Map<number, string>;
  policies: Map<number, string>;
  trusts: Set<string>;
  txs: { seq: number; version: number; vm: string }[];
}

/** Run the writer until a random moment 50–300 ms after it is ready, kill it, and return the writes it acknowledged. */
async function writeUntilKilled(target: string[], round: number, into: Acked): Promise<number> {
  const child = spawn(process.execPath, ['--import', 'tsx', WRITER, ...target, '--round', String(round)], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  const ready = new Promise<void>((resolve, reject) => {
    const poll = setInterval(() => {
      if (out.startsWith('ready\n')) {
        clearInterval(poll);
        resolve();
      }
    }, 5);
    exited.then(({ code }) => {
      clearInterval(poll);
      reject(new Error(`the writer exited (${code}) before it was ready:\n${err}`));
    });
  });
  await ready;
  await new Promise((r) => setTimeout(r, 50 + Math.random() * 250));
  child.kill('SIGKILL');
  const { signal } = await exited;
  assert.equal(signal, 'SIGKILL', `the writer stopped by itself:\n${err}`);
  // Only whole lines: a line cut by the kill was not yet acknowledged to us.
  const lines = out.split('\n').slice(1, -1);
  for (const line of lines) {
    const [kind, a, b, c] = line.split(' ');
    if (kind === 'audit') into.audit.set(Number(a), b);
    else if (kind === 'policy') into.policies.set(Number(a), b);
    else if (kind === 'trust') into.trusts.add(a);
    else if (kind === 'tx') into.txs.push({ seq: Number(a), version: Number(b), vm: c });
    else assert.fail(`unexpected line from the writer: ${line}`);
  }
  return lines.length;
}

/** Everything acknowledged so far is in the store, transactions whole, the chain intact. */
async function checkAcked(store: Store, acked: Acked): Promise<void> {
  const audit = await store.audit();
  assert.deepEqual(verifyAuditChain(audit), { ok: true });
  const bySeq = new Map(audit.map((r) => [r.seq, r]));
  for (const [seq, subject] of acked.audit) assert.equal(bySeq.get(seq)?.subject, subject, `acknowledged audit record ${seq} is missing`);
  const policies = new Map((await store.policyHistory()).map((p) => [p.version, p]));
  for (const [version, tag] of acked.policies) assert.equal(policies.get(version)?.policyVersion, tag, `acknowledged policy ${version} is missing`);
  for (const vm of acked.trusts) assert.equal((await store.trust(vm))?.state, 'trusted', `acknowledged trust of ${vm} is missing`);
  for (const t of acked.txs) {
    assert.equal(bySeq.get(t.seq)?.action, 'crash.tx', `transaction's audit record ${t.seq} is missing`);
    assert.ok(policies.has(t.version), `transaction's policy ${t.version} is missing`);
    assert.ok(await store.trust(t.vm), `transaction's trust of ${t.vm} is missing`);
  }
  // Whole transactions only, acknowledged or not: each transaction's audit record comes with its policy and trust,
  // and every trust state with its history.
  const tags = new Set([...policies.values()].map((p) => p.policyVersion));
  for (const r of audit) if (r.action === 'crash.tx') assert.ok(tags.has(r.subject), `half a transaction: ${r.subject}`);
  for (const t of await store.trusts()) assert.equal((await store.trustHistory(t.vm)).length, 1, `trust of ${t.vm} without its history`);
}

function crashSuite<F extends StoreFixture>(name: string, backend: StoreBackend<F>, target: (fx: F) => string[]): void {
  const skip = backend.unavailable?.() ?? null;
  if (skip) {
    console.log(`# store crash test (${name}) skipped: ${skip}`);
    it(`store durability when the writer is killed: ${name}`, { skip }, () => undefined);
    return;
  }
  describe(`store durability when the writer is killed: ${name}`, { timeout: 300_000 }, () => {
    let fx: F;
    before(async () => {
      await backend.setup?.();
      fx = await backend.fresh();
    });
    after(async () => {
      await fx?.destroy();
      await backend.teardown?.();
    });

    it(`${ROUNDS} rounds of SIGKILL at a random moment lose no acknowledged write`, async (t) => {
      const acked: Acked = { audit: new Map(), policies: new Map(), trusts: new Set(), txs: [] };
      let writes = 0;
      for (let round = 1; round <= ROUNDS; round++) {
        writes += await writeUntilKilled(target(fx), round, acked);
        const store = await fx.open();
        try {
          await checkAcked(store, acked);
        } finally {
          await store.close();
        }
      }
      t.diagnostic(`${writes} acknowledged writes (${acked.txs.length} transactions) over ${ROUNDS} kills`);
      assert.ok(writes >= ROUNDS, `too few writes acknowledged (${writes}) for the test to mean much`);
      assert.ok(acked.txs.length > 0 && acked.audit.size > 0 && acked.policies.size > 0 && acked.trusts.size > 0);
    });
  });
}

crashSuite<SqliteFixture>('sqlite', sqliteBackend(), (fx) => ['--sqlite', fx.dir]);
crashSuite<PostgresFixture>('postgres', postgresBackend(), (fx) => ['--postgres', fx.url]);
