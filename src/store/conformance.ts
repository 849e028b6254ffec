/**
 * The Store conformance suite (node:test), written once and run by every backend: `sqlite.test.ts` and
 * `postgres.test.ts` each call `runStoreConformance` with their backend (hono's routers are the model). It checks
 * what `store.ts` promises — each method's behaviour, the transaction rules, the audit chain — against a fresh
 * database per test, tampering with rows through raw SQL where a test needs to.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { AuditRecordV1, PlanV1, TrustTransitionV1 } from '../api/types.ts';
import { GENESIS_HASH, sealAuditRecord, verifyAuditChain } from './audit-chain.ts';
import { StoreErrorCode, isStoreError, type StoreErrorCode as Code } from './errors.ts';
import { LATEST_SCHEMA_VERSION, MIGRATIONS } from './migrations.ts';
import type { AuditInput, DraftRecord, PolicyVersionRecord, SessionRecord, Store, StoreEvent, TokenRecord, TrustRecord, VmRecord } from './store.ts';

/** One empty database. */
export interface StoreFixture {
  /** Open a store on this database; opening again sees everything earlier stores wrote. */
  open(): Promise<Store>;
  /** One SQL statement run directly on the database, bypassing the store: its rows (none for a write). */
  rawExec(sql: string): Promise<Record<string, unknown>[]>;
  /** Remove the database (its stores are closed by then). */
  destroy(): Promise<void>;
}

export interface StoreBackend<F extends StoreFixture = StoreFixture> {
  /** Why the backend cannot run here (the suite is skipped with this reason), or null. */
  unavailable?: () => string | null;
  /** Once before the suite (start a server). */
  setup?(): Promise<void>;
  /** A new, empty database. */
  fresh(): Promise<F>;
  /** Once after the suite (stop the server). */
  teardown?(): Promise<void>;
}

// ---- records ----------------------------------------------------------------------------------------------------

const at = (n: number) => new Date(Date.UTC(2025, 0, 1, 0, 0, n)).toISOString();

const policyInput = (n: number): Omit<PolicyVersionRecord, 'version'> => ({
  name: 'lab',
  policyVersion: `1.${n}`,
  yaml: `name: lab\nversion: "1.${n}"\n# ünïcödé, a tab\tand a CRLF\r\ntrailing   \n`,
  note: `change ${n}`,
  actor: 'alice',
  at: at(n),
});

const vmRecord = (name: string, host: string | null, over: Partial<VmRecord> = {}): VmRecord => ({
  name,
  host,
  label: 'red',
  running: true,
  ports: [`tap-${name}`, `vnet-${name}`],
  resources: [
    { kind: 'disk', id: `/var/lib/images/${name}.qcow2` },
    { kind: 'network', id: 'lab-net' },
  ],
  startedSeq: 7,
  ...over,
});

const trustRecord = (vm: string, state: TrustRecord['state'], n: number): TrustRecord => ({
  vm,
  state,
  since: at(n),
  reason: `reason ${n}`,
  lastEvidence: n % 2 ? at(n) : null,
});

const transition = (vm: string, from: TrustTransitionV1['from'], to: TrustTransitionV1['to'], n: number): TrustTransitionV1 => ({
  vm,
  from,
  to,
  at: at(n),
  reason: `reason ${n}`,
  actor: 'verifier',
});

const planFor = (host: string, version: number, policyVersion = 1): PlanV1 => ({
  host,
  version,
  policyVersion,
  vms: [
    { name: `${host}-a`, ports: ['tap0'], colors: ['red', 'blue'] },
    { name: `${host}-b`, ports: [], colors: [], isolated: 'untrusted' },
  ],
});

const auditInput = (n: number, over: Partial<AuditInput> = {}): AuditInput => ({
  at: at(n),
  actor: n % 2 ? 'alice' : 'bob',
  action: n % 3 ? 'policy.publish' : 'vm.start',
  subject: `subject-${n % 4}`,
  details: { n, nested: { z: [1, 'two', null, { y: true }], a: 'ä' } },
  ...over,
});

const token = (id: string, hash: string, over: Partial<TokenRecord> = {}): TokenRecord => ({
  id,
  name: `token ${id}`,
  role: 'agent',
  host: 'host-1',
  hash,
  createdAt: at(1),
  revokedAt: null,
  ...over,
});

const sessionRecord = (hash: string): SessionRecord => ({ hash, user: 'alice', role: 'operator', csrf: `csrf-${hash}`, expiresAt: at(3600) });

// ---- helpers ----------------------------------------------------------------------------------------------------

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function rejectsWith(p: Promise<unknown>, code: Code): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isStoreError(e, code), `expected StoreError ${code}, got ${String((e as Error)?.stack ?? e)}`);
    return true;
  });
}

const akRecord = (n: number) => ({
  ak: Buffer.from(`-----BEGIN PUBLIC KEY-----\nkey ${n}\n-----END PUBLIC KEY-----\n`).toString('base64'),
  name: `000b${String(n).padStart(2, '0').repeat(32)}`,
  registeredAt: at(n),
  by: n % 2 ? 'token:agent-h1' : 'user:alice',
});

/** A SQL string literal. */
const lit = (s: string) => `'${s.replaceAll("'", "''")}'`;

/** Everything the store holds about the records the tests write, read back through the interface. */
async function snapshot(s: Store) {
  return {
    policies: await s.policyHistory(),
    drafts: await s.drafts(),
    hosts: await s.hosts(),
    vms: await s.vms(),
    labels: await s.resourceLabels(),
    integrity: await s.integrity('vm-1'),
    evidence: await s.lastEvidence('vm-1'),
    trusts: await s.trusts(),
    history: await s.trustHistory('vm-1'),
    ak: await s.attestationKey('vm-1'),
    plan: await s.plan('host-1'),
    audit: await s.audit(),
    tokens: await s.tokens(),
    user: await s.user('alice'),
    session: await s.session('sess-1'),
  };
}

/** One write of every kind (through `s`, which may be inside a transaction). */
async function writeOneOfEverything(s: Store): Promise<void> {
  const p = await s.publishPolicy(policyInput(1));
  await s.putDraft({ id: 'draft-1', yaml: 'name: lab\n', base: p.version, actor: 'alice', updatedAt: at(2) });
  await s.putHost({ name: 'host-1', label: 'rack-a', lastSeen: at(3) });
  await s.putVm(vmRecord('vm-1', 'host-1'));
  await s.putResourceLabel({ kind: 'disk', id: '/img/a.qcow2', label: 'red' });
  await s.putNonce('vm-1', 'nonce-1', at(600));
  await s.putIntegrity({ vm: 'vm-1', state: { next: 12, pcr: 'ab'.repeat(32) }, fingerprint: '{"digests": {"/bin/sh": ["aa"]}}' });
  await s.addEvidence({ vm: 'vm-1', at: at(4), entries: 12, ok: false, failures: [{ path: '/bin/sh', expected: 'aa', found: 'bb' }] });
  await s.putTrust(trustRecord('vm-1', 'untrusted', 5), transition('vm-1', 'unverified', 'untrusted', 5));
  await s.putAttestationKey('vm-1', akRecord(1));
  await s.putPlans([planFor('host-1', 1)]);
  await s.appendAudit(auditInput(1));
  await s.putToken(token('tok-1', 'hash-1'));
  await s.putUser({ name: 'alice', role: 'admin', passwordHash: 'scrypt$16384$8$1$salt$hash' });
  await s.putSession(sessionRecord('sess-1'));
}

/** Collects a store's events; `until` waits for one that matches. */
function collect(s: Store) {
  const seen: StoreEvent[] = [];
  const waiters: { match: (e: StoreEvent) => boolean; resolve: () => void }[] = [];
  const unsubscribe = s.subscribe((e) => {
    seen.push(e);
    for (const w of [...waiters]) if (w.match(e)) w.resolve();
  });
  return {
    seen,
    unsubscribe,
    until(match: (e: StoreEvent) => boolean, ms = 5000): Promise<void> {
      if (seen.some(match)) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no matching event within ${ms} ms; saw ${JSON.stringify(seen)}`)), ms);
        waiters.push({ match, resolve: () => (clearTimeout(timer), resolve()) });
      });
    },
  };
}

// ---- the suite ----------------------------------------------------------------------------------------------------

/** Register the conformance tests for one backend. */
export function runStoreConformance<F extends StoreFixture>(name: string, backend: StoreBackend<F>): void {
  const skip = backend.unavailable?.() ?? null;
  if (skip) {
    // One skipped test (a skipped suite counts as none), with the reason printed.
    console.log(`# store conformance (${name}) skipped: ${skip}`);
    it(`Store conformance: ${name}`, { skip }, () => undefined);
    return;
  }

  describe(`Store conformance: ${name}`, { timeout: 120_000 }, () => {
    before(async () => {
      await backend.setup?.();
    });
    after(async () => {
      await backend.teardown?.();
    });

    /** A fresh database and a store on it; every store opened through `fx.open` is closed afterwards. */
    async function withStore(fn: (s: Store, fx: F) => Promise<void>): Promise<void> {
      const base = await backend.fresh();
      const opened: Store[] = [];
      const fx = Object.assign(Object.create(null), base, {
        open: async () => {
          const s = await base.open();
          opened.push(s);
          return s;
        },
      }) as F;
      try {
        await fn(await fx.open(), fx);
      } finally {
        for (const s of opened) await s.close().catch(() => undefined);
        await base.destroy();
      }
    }

    describe('schema', () => {
      it('opening migrates to the newest schema; migrating again changes nothing', () =>
        withStore(async (s, fx) => {
          const applied = () => fx.rawExec('SELECT version, name, applied_at FROM schema_migrations ORDER BY version');
          const first = await applied();
          assert.deepEqual(
            first.map((r) => [Number(r.version), r.name]),
            MIGRATIONS.map((m) => [m.version, m.name]),
          );
          await s.migrate();
          await s.migrate();
          assert.deepEqual(await applied(), first);
          await s.close();
          const again = await fx.open();
          await again.migrate();
          assert.deepEqual(await applied(), first);
        }));

      it('refuses to open a database whose schema is newer than it knows', () =>
        withStore(async (s, fx) => {
          await fx.rawExec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (${LATEST_SCHEMA_VERSION + 1}, 'from the future', ${lit(at(1))})`);
          await rejectsWith(s.migrate(), StoreErrorCode.schemaTooNew);
          await s.close();
          await rejectsWith(fx.open(), StoreErrorCode.schemaTooNew);
        }));

      it('close and reopen keeps everything', () =>
        withStore(async (s, fx) => {
          await writeOneOfEverything(s);
          const before = await snapshot(s);
          await s.close();
          const reopened = await fx.open();
          assert.deepEqual(await snapshot(reopened), before);
          assert.equal(await reopened.useNonce('vm-1', 'nonce-1', at(10)), 'ok');
          assert.deepEqual(verifyAuditChain(await reopened.audit()), { ok: true });
        }));

      it('a closed store refuses calls', () =>
        withStore(async (s) => {
          await s.close();
          await rejectsWith(s.hosts(), StoreErrorCode.closed);
          await rejectsWith(s.putHost({ name: 'h', label: null, lastSeen: null }), StoreErrorCode.closed);
          await rejectsWith(
            s.tx(async () => 1),
            StoreErrorCode.closed,
          );
          await s.close(); // closing twice is harmless
        }));
    });

    describe('policies', () => {
      it('publishing numbers versions 1, 2, 3 and reads them back exactly', () =>
        withStore(async (s) => {
          assert.equal(await s.latestPolicy(), null);
          assert.deepEqual(await s.policyHistory(), []);
          const published = [];
          for (const n of [1, 2, 3]) published.push(await s.publishPolicy(policyInput(n)));
          assert.deepEqual(
            published,
            [1, 2, 3].map((n) => ({ version: n, ...policyInput(n) })),
          );
          assert.deepEqual(await s.policyVersion(2), published[1]);
          assert.deepEqual(await s.latestPolicy(), published[2]);
          assert.deepEqual(await s.policyHistory(), published);
          assert.equal(await s.policyVersion(4), null);
          assert.equal(await s.policyVersion(0), null);
        }));

      it('published versions are immutable: later publishing and changes to returned objects leave them as they were', () =>
        withStore(async (s) => {
          const first = await s.publishPolicy(policyInput(1));
          const copy = structuredClone(first);
          first.yaml = 'changed';
          (await s.policyVersion(1))!.note = 'changed too';
          await s.publishPolicy({ ...policyInput(1), yaml: 'a second one' });
          assert.deepEqual(await s.policyVersion(1), copy);
        }));

      it('concurrent publishers take distinct, consecutive numbers', () =>
        withStore(async (s) => {
          const versions = await Promise.all(Array.from({ length: 12 }, (_, i) => s.publishPolicy(policyInput(i)).then((p) => p.version)));
          assert.deepEqual(
            versions.sort((a, b) => a - b),
            Array.from({ length: 12 }, (_, i) => i + 1),
          );
          assert.equal((await s.policyHistory()).length, 12);
        }));

      it('drafts: put, replace, list, delete; a draft starts from a published version or none', () =>
        withStore(async (s) => {
          await s.publishPolicy(policyInput(1));
          const a: DraftRecord = { id: 'b-draft', yaml: 'x: 1\n', base: 1, actor: 'alice', updatedAt: at(1) };
          const b: DraftRecord = { id: 'a-draft', yaml: 'y: 2\n', base: null, actor: 'bob', updatedAt: at(2) };
          await s.putDraft(a);
          await s.putDraft(b);
          assert.deepEqual(await s.draft('b-draft'), a);
          assert.deepEqual(await s.drafts(), [b, a]);
          const a2 = { ...a, yaml: 'x: 2\n', updatedAt: at(3) };
          await s.putDraft(a2);
          assert.deepEqual(await s.draft('b-draft'), a2);
          assert.equal(await s.deleteDraft('b-draft'), true);
          assert.equal(await s.deleteDraft('b-draft'), false);
          assert.equal(await s.draft('b-draft'), null);
          assert.deepEqual(await s.drafts(), [b]);
          await rejectsWith(s.putDraft({ ...a, base: 99 }), StoreErrorCode.invalidRecord);
        }));
    });

    describe('fleet', () => {
      it('a VM isolated by a revoke keeps its mark until it is written without one', () =>
        withStore(async (s) => {
          const revoked = { policyVersion: 4, reasons: ['wall_conflict', 'resource_forbidden'] };
          await s.putVm(vmRecord('vm-1', 'host-1', { revoked }));
          await s.putVm(vmRecord('vm-2', 'host-1'));
          assert.deepEqual(await s.vm('vm-1'), vmRecord('vm-1', 'host-1', { revoked }));
          assert.deepEqual(await s.vm('vm-2'), vmRecord('vm-2', 'host-1'), 'none: no field');
          await s.putVm(vmRecord('vm-1', 'host-1', { revoked: null }));
          assert.deepEqual(await s.vm('vm-1'), vmRecord('vm-1', 'host-1'));
        }));

      it('hosts: put, replace, list in name order', () =>
        withStore(async (s) => {
          assert.equal(await s.host('h1'), null);
          await s.putHost({ name: 'h2', label: null, lastSeen: null });
          await s.putHost({ name: 'h1', label: 'rack-a', lastSeen: at(1) });
          await s.putHost({ name: 'H0', label: 'rack-b', lastSeen: at(2) });
          assert.deepEqual(await s.host('h2'), { name: 'h2', label: null, lastSeen: null });
          await s.putHost({ name: 'h2', label: 'rack-c', lastSeen: at(3) });
          assert.deepEqual(
            (await s.hosts()).map((h) => [h.name, h.label, h.lastSeen]),
            [
              ['H0', 'rack-b', at(2)],
              ['h1', 'rack-a', at(1)],
              ['h2', 'rack-c', at(3)],
            ],
          );
        }));

      it('VMs: put, replace, list (all or one host), delete', () =>
        withStore(async (s) => {
          const a = vmRecord('vm-a', 'h1');
          const b = vmRecord('vm-b', 'h2', { label: null, running: false, ports: [], resources: [], startedSeq: null });
          const c = vmRecord('vm-c', null);
          for (const v of [c, b, a]) await s.putVm(v);
          assert.deepEqual(await s.vm('vm-a'), a);
          assert.deepEqual(await s.vm('vm-b'), b);
          assert.deepEqual(await s.vms(), [a, b, c]);
          assert.deepEqual(await s.vms('h2'), [b]);
          assert.deepEqual(await s.vms('nowhere'), []);
          const moved = { ...a, host: 'h2', running: false, startedSeq: 9 };
          await s.putVm(moved);
          assert.deepEqual(await s.vms('h2'), [moved, b]);
          assert.equal(await s.deleteVm('vm-a'), true);
          assert.equal(await s.deleteVm('vm-a'), false);
          assert.equal(await s.vm('vm-a'), null);
        }));

      it('resource labels: keyed by kind and id, replace, delete', () =>
        withStore(async (s) => {
          await s.putResourceLabel({ kind: 'network', id: 'lab', label: 'blue' });
          await s.putResourceLabel({ kind: 'disk', id: 'lab', label: 'red' });
          await s.putResourceLabel({ kind: 'disk', id: '/img/a', label: 'red' });
          await s.putResourceLabel({ kind: 'disk', id: '/img/a', label: 'green' });
          assert.deepEqual(await s.resourceLabels(), [
            { kind: 'disk', id: '/img/a', label: 'green' },
            { kind: 'disk', id: 'lab', label: 'red' },
            { kind: 'network', id: 'lab', label: 'blue' },
          ]);
          assert.equal(await s.deleteResourceLabel('disk', 'lab'), true);
          assert.equal(await s.deleteResourceLabel('disk', 'lab'), false);
          assert.deepEqual(
            (await s.resourceLabels()).map((r) => `${r.kind}:${r.id}`),
            ['disk:/img/a', 'network:lab'],
          );
          await rejectsWith(s.putResourceLabel({ kind: 'tape' as 'disk', id: 'x', label: 'red' }), StoreErrorCode.invalidRecord);
        }));
    });

    describe('evidence and trust', () => {
      it('nonces: ok once, then replayed; stale after expiry; unknown if never issued for that VM', () =>
        withStore(async (s) => {
          await s.putNonce('vm-1', 'n1', at(60));
          await s.putNonce('vm-1', 'n2', at(60));
          await s.putNonce('vm-1', 'n3', at(60));
          assert.equal(await s.useNonce('vm-2', 'n1', at(10)), 'unknown');
          assert.equal(await s.useNonce('vm-1', 'never', at(10)), 'unknown');
          assert.equal(await s.useNonce('vm-1', 'n1', at(10)), 'ok');
          assert.equal(await s.useNonce('vm-1', 'n1', at(11)), 'replayed');
          assert.equal(await s.useNonce('vm-1', 'n2', at(61)), 'stale');
          assert.equal(await s.useNonce('vm-1', 'n3', at(60)), 'ok', 'valid up to and including its expiry');
          assert.equal(await s.useNonce('vm-1', 'n3', 'not a time'), 'replayed');
          await s.putNonce('vm-1', 'n4', at(60));
          assert.equal(await s.useNonce('vm-1', 'n4', 'not a time'), 'stale', 'an unreadable time fails closed');
          // Issuing a used nonce again must not make it usable again.
          await rejectsWith(s.putNonce('vm-1', 'n1', at(120)), StoreErrorCode.conflict);
          assert.equal(await s.useNonce('vm-1', 'n1', at(12)), 'replayed');
        }));

      it('a nonce used by concurrent callers is ok for exactly one', () =>
        withStore(async (s) => {
          await s.putNonce('vm-1', 'n', at(60));
          const outcomes = await Promise.all(Array.from({ length: 8 }, () => s.useNonce('vm-1', 'n', at(1))));
          assert.deepEqual(outcomes.sort(), ['ok', ...Array(7).fill('replayed')]);
        }));

      it('integrity state: none, put, replace; the fingerprint apart', () =>
        withStore(async (s) => {
          assert.equal(await s.integrity('vm-1'), null);
          const state = { replay: { next: 3, pcrs: { sha1: '00'.repeat(20), sha256: 'ff'.repeat(32) } }, keys: [], unicode: '✓' };
          await s.putIntegrity({ vm: 'vm-1', state, fingerprint: null });
          assert.deepEqual(await s.integrity('vm-1'), { vm: 'vm-1', state, fingerprint: null });
          const fingerprint = `{"digests": {"/usr/bin/ä": ["${'ab'.repeat(32)}"]}}\n`;
          await s.putIntegrity({ vm: 'vm-1', state: [1, 2, 3], fingerprint });
          assert.deepEqual(await s.integrity('vm-1'), { vm: 'vm-1', state: [1, 2, 3], fingerprint });
        }));

      it('putIntegrities writes many states, keeps or sets each fingerprint; a VM named twice takes the last', () =>
        withStore(async (s) => {
          await s.putIntegrity({ vm: 'vm-1', state: { n: 1 }, fingerprint: 'fp-1' });
          await s.putIntegrities([]);
          const many = Array.from({ length: 250 }, (_, i) => ({ vm: `vm-${i}`, state: { n: i, tag: 'bulk' } }));
          await s.putIntegrities([...many, { vm: 'vm-7', state: { n: 'last' } }, { vm: 'vm-8', state: { n: 8 }, fingerprint: 'fp-8' }, { vm: 'vm-8', state: { n: 'eight' } }]);
          assert.deepEqual(await s.integrity('vm-1'), { vm: 'vm-1', state: { n: 1, tag: 'bulk' }, fingerprint: 'fp-1' }, 'the fingerprint stays');
          assert.deepEqual(await s.integrity('vm-0'), { vm: 'vm-0', state: { n: 0, tag: 'bulk' }, fingerprint: null });
          assert.deepEqual(await s.integrity('vm-7'), { vm: 'vm-7', state: { n: 'last' }, fingerprint: null });
          assert.deepEqual(await s.integrity('vm-8'), { vm: 'vm-8', state: { n: 'eight' }, fingerprint: 'fp-8' }, 'set by the first, kept by the second');
          assert.deepEqual(await s.integrity('vm-249'), { vm: 'vm-249', state: { n: 249, tag: 'bulk' }, fingerprint: null });
          await s.putIntegrities([{ vm: 'vm-1', state: { n: 2 }, fingerprint: null }]);
          assert.deepEqual(await s.integrity('vm-1'), { vm: 'vm-1', state: { n: 2 }, fingerprint: null }, 'a fingerprint dropped');
          await assert.rejects(
            s.tx(async (t) => {
              await t.putIntegrities([{ vm: 'vm-1', state: 'gone' }, { vm: 'vm-new', state: 'gone' }]);
              throw new Error('undo');
            }),
            /undo/,
          );
          assert.deepEqual((await s.integrity('vm-1'))?.state, { n: 2 });
          assert.equal(await s.integrity('vm-new'), null);
        }));

      it('evidence written with the state is the VM\'s last; failed evidence goes to the log too, which prune ages out', () =>
        withStore(async (s) => {
          const good = (n: number, entries = n) => ({ at: at(n), entries, ok: true, failures: [] });
          const bad = (n: number) => ({ at: at(n), entries: 1, ok: false, failures: [{ path: `/bin/${n}`, expected: ['aa'], found: 'bb' }] });
          await s.addEvidence({ vm: 'vm-1', ...bad(0) });
          assert.deepEqual(await s.lastEvidence('vm-1'), { vm: 'vm-1', ...bad(0) }, 'the log, while nothing is kept with a state');
          await s.putIntegrities([
            { vm: 'vm-1', state: 1, evidence: good(1) },
            { vm: 'vm-2', state: 1, evidence: good(2) },
            { vm: 'vm-1', state: 2, evidence: good(3, 7) },
          ]);
          assert.deepEqual(await s.lastEvidence('vm-1'), { vm: 'vm-1', ...good(3, 7) });
          assert.deepEqual((await s.integrity('vm-1'))?.state, 2);
          await s.putIntegrities([{ vm: 'vm-1', state: 3, evidence: bad(4) }, { vm: 'vm-3', state: 1, evidence: bad(5) }, { vm: 'vm-3', state: 2, evidence: bad(6) }]);
          assert.deepEqual(await s.lastEvidence('vm-1'), { vm: 'vm-1', ...bad(4) });
          assert.deepEqual(await s.lastEvidence('vm-3'), { vm: 'vm-3', ...bad(6) });
          // a state written without evidence keeps the last evidence; so does putIntegrity
          await s.putIntegrities([{ vm: 'vm-1', state: 4 }]);
          await s.putIntegrity({ vm: 'vm-2', state: 9, fingerprint: null });
          assert.deepEqual(await s.lastEvidence('vm-1'), { vm: 'vm-1', ...bad(4) });
          assert.deepEqual(await s.lastEvidence('vm-2'), { vm: 'vm-2', ...good(2) });
          // the log: vm-1 [bad 0, bad 4], vm-3 [bad 5, bad 6]: all but each VM's newest age out; the last evidence stays
          const pruned = await s.prune({ now: at(0), evidenceBefore: at(100), limit: 100 });
          assert.equal(pruned.evidence, 2);
          assert.deepEqual(await s.lastEvidence('vm-3'), { vm: 'vm-3', ...bad(6) });
          assert.deepEqual(await s.lastEvidence('vm-2'), { vm: 'vm-2', ...good(2) });
        }));

      it('putTrust writes the state and its transition together; history keeps every transition in order', () =>
        withStore(async (s) => {
          assert.equal(await s.trust('vm-1'), null);
          assert.deepEqual(await s.trustHistory('vm-1'), []);
          const t1 = transition('vm-1', 'unverified', 'trusted', 1);
          const t2 = transition('vm-1', 'trusted', 'untrusted', 2);
          await s.putTrust(trustRecord('vm-1', 'trusted', 1), t1);
          await s.putTrust(trustRecord('vm-0', 'unreachable', 3), transition('vm-0', 'unverified', 'unreachable', 3));
          await s.putTrust(trustRecord('vm-1', 'untrusted', 2), t2);
          assert.deepEqual(await s.trust('vm-1'), trustRecord('vm-1', 'untrusted', 2));
          assert.deepEqual(await s.trustHistory('vm-1'), [t1, t2]);
          assert.deepEqual(
            (await s.trusts()).map((t) => [t.vm, t.state]),
            [
              ['vm-0', 'unreachable'],
              ['vm-1', 'untrusted'],
            ],
          );
        }));

      it('putTrust is all or nothing: a transition the store refuses leaves the state as it was', () =>
        withStore(async (s) => {
          await s.putTrust(trustRecord('vm-1', 'trusted', 1), transition('vm-1', 'unverified', 'trusted', 1));
          const bad = { ...transition('vm-1', 'trusted', 'untrusted', 2), from: 'bogus' as 'trusted' };
          await rejectsWith(s.putTrust(trustRecord('vm-1', 'untrusted', 2), bad), StoreErrorCode.invalidRecord);
          assert.deepEqual(await s.trust('vm-1'), trustRecord('vm-1', 'trusted', 1));
          assert.equal((await s.trustHistory('vm-1')).length, 1);
          // A transition that is not the record's own is refused before anything is written.
          await rejectsWith(s.putTrust(trustRecord('vm-1', 'untrusted', 2), transition('vm-2', 'trusted', 'untrusted', 2)), StoreErrorCode.invalidRecord);
          await rejectsWith(s.putTrust(trustRecord('vm-1', 'untrusted', 2), transition('vm-1', 'trusted', 'trusted', 2)), StoreErrorCode.invalidRecord);
          assert.deepEqual(await s.trust('vm-1'), trustRecord('vm-1', 'trusted', 1));
        }));
    });

    describe('trust freshness and attestation keys', () => {
      it('touchTrust moves only lastEvidence of an existing record: no transition, nothing for an unknown VM', () =>
        withStore(async (s) => {
          assert.equal(await s.touchTrust('vm-1', at(9)), false);
          assert.equal(await s.trust('vm-1'), null);
          assert.deepEqual(await s.trusts(), []);
          const t1 = transition('vm-1', 'unverified', 'trusted', 2);
          await s.putTrust(trustRecord('vm-1', 'trusted', 2), t1);
          await s.putTrust(trustRecord('vm-2', 'trusted', 3), transition('vm-2', 'unverified', 'trusted', 3));
          assert.equal(await s.touchTrust('vm-1', at(9)), true);
          assert.deepEqual(await s.trust('vm-1'), { ...trustRecord('vm-1', 'trusted', 2), lastEvidence: at(9) });
          assert.deepEqual(await s.trust('vm-2'), trustRecord('vm-2', 'trusted', 3), 'other VMs unchanged');
          assert.deepEqual(await s.trustHistory('vm-1'), [t1]);
          assert.equal(await s.touchTrust('vm-1', at(11)), true);
          assert.equal((await s.trust('vm-1'))?.lastEvidence, at(11));
          // inside a transaction it shares the transaction's fate
          await assert.rejects(
            s.tx(async (t) => {
              assert.equal(await t.touchTrust('vm-1', at(20)), true);
              assert.equal((await t.trust('vm-1'))?.lastEvidence, at(20));
              throw new Error('undo');
            }),
            /undo/,
          );
          assert.equal((await s.trust('vm-1'))?.lastEvidence, at(11));
          // a later transition writes the record whole again
          const t2 = transition('vm-1', 'trusted', 'untrusted', 12);
          await s.putTrust(trustRecord('vm-1', 'untrusted', 12), t2);
          assert.deepEqual(await s.trust('vm-1'), trustRecord('vm-1', 'untrusted', 12));
          assert.deepEqual(await s.trustHistory('vm-1'), [t1, t2]);
        }));

      it('touchTrusts moves lastEvidence of many records at once, skipping VMs without one; no transitions', () =>
        withStore(async (s) => {
          assert.equal(await s.touchTrusts([]), 0);
          for (let i = 0; i < 150; i++) await s.putTrust(trustRecord(`vm-${i}`, 'trusted', 2), transition(`vm-${i}`, 'unverified', 'trusted', 2));
          const touches = Array.from({ length: 150 }, (_, i) => ({ vm: `vm-${i}`, lastEvidence: i % 2 ? at(20) : at(21) }));
          assert.equal(await s.touchTrusts([...touches, { vm: 'nobody', lastEvidence: at(20) }, { vm: 'vm-3', lastEvidence: at(30) }]), 150);
          assert.equal((await s.trust('vm-0'))?.lastEvidence, at(21));
          assert.equal((await s.trust('vm-1'))?.lastEvidence, at(20));
          assert.equal((await s.trust('vm-3'))?.lastEvidence, at(30), 'a VM named twice: the last');
          assert.deepEqual(await s.trust('vm-5'), { ...trustRecord('vm-5', 'trusted', 2), lastEvidence: at(20) });
          assert.equal(await s.trust('nobody'), null);
          assert.equal((await s.trustHistory('vm-5')).length, 1);
        }));

      it('attestation keys: none, put, read back exactly, replace, per VM; rolled back with their transaction', () =>
        withStore(async (s, fx) => {
          assert.equal(await s.attestationKey('vm-1'), null);
          await s.putAttestationKey('vm-1', akRecord(1));
          await s.putAttestationKey('vm-2', akRecord(2));
          assert.deepEqual(await s.attestationKey('vm-1'), { vm: 'vm-1', ...akRecord(1) });
          assert.deepEqual(await s.attestationKey('vm-2'), { vm: 'vm-2', ...akRecord(2) });
          await s.putAttestationKey('vm-1', akRecord(3));
          assert.deepEqual(await s.attestationKey('vm-1'), { vm: 'vm-1', ...akRecord(3) });
          assert.deepEqual(await s.attestationKey('vm-2'), { vm: 'vm-2', ...akRecord(2) });
          await assert.rejects(
            s.tx(async (t) => {
              await t.putAttestationKey('vm-1', akRecord(4));
              await t.putAttestationKey('vm-3', akRecord(5));
              throw new Error('undo');
            }),
            /undo/,
          );
          assert.deepEqual(await s.attestationKey('vm-1'), { vm: 'vm-1', ...akRecord(3) });
          assert.equal(await s.attestationKey('vm-3'), null);
          await s.close();
          const reopened = await fx.open();
          assert.deepEqual(await reopened.attestationKey('vm-1'), { vm: 'vm-1', ...akRecord(3) });
        }));

      it('migration 3 carries a trusted VM\'s last good evidence over to its record', () =>
        withStore(async (s, fx) => {
          // as a database written before migration 3 holds it: the good evidence only in the evidence table
          await s.putTrust(trustRecord('vm-1', 'trusted', 2), transition('vm-1', 'unverified', 'trusted', 2)); // lastEvidence null
          await s.putTrust(trustRecord('vm-2', 'trusted', 3), transition('vm-2', 'unverified', 'trusted', 3)); // lastEvidence at(3)
          await s.putTrust(trustRecord('vm-3', 'untrusted', 4), transition('vm-3', 'unverified', 'untrusted', 4));
          await s.addEvidence({ vm: 'vm-1', at: at(7), entries: 1, ok: true, failures: [] });
          await s.addEvidence({ vm: 'vm-2', at: at(8), entries: 1, ok: true, failures: [] });
          await s.addEvidence({ vm: 'vm-2', at: at(9), entries: 1, ok: false, failures: [] }); // the last one failed
          await s.addEvidence({ vm: 'vm-3', at: at(9), entries: 1, ok: true, failures: [] }); // not trusted
          await s.close();
          const v3 = MIGRATIONS.find((m) => m.version === 3);
          assert.ok(v3 !== undefined);
          await fx.rawExec('DELETE FROM schema_migrations WHERE version = 3');
          const again = await fx.open();
          assert.equal((await again.trust('vm-1'))?.lastEvidence, at(7));
          assert.equal((await again.trust('vm-2'))?.lastEvidence, at(3));
          assert.equal((await again.trust('vm-3'))?.lastEvidence, null);
        }));

      it('migration 5 moves the fingerprints kept in the integrity rows to a table of their own', () =>
        withStore(async (s, fx) => {
          await s.putIntegrities([
            { vm: 'vm-1', state: { n: 1 }, evidence: { at: at(5), entries: 3, ok: true, failures: [] } },
            { vm: 'vm-2', state: { n: 2 } },
          ]);
          await s.close();
          // as a database written before migration 5 holds it: the fingerprint a column of the integrity row
          await fx.rawExec('DROP TABLE fingerprints');
          await fx.rawExec('ALTER TABLE integrity ADD COLUMN fingerprint TEXT');
          await fx.rawExec(`UPDATE integrity SET fingerprint = ${lit('{"digests": {"/bin/sh": ["aa"]}}')} WHERE vm = ${lit('vm-1')}`);
          await fx.rawExec('DELETE FROM schema_migrations WHERE version = 5');
          const again = await fx.open();
          assert.deepEqual(await again.integrity('vm-1'), { vm: 'vm-1', state: { n: 1 }, fingerprint: '{"digests": {"/bin/sh": ["aa"]}}' });
          assert.deepEqual(await again.integrity('vm-2'), { vm: 'vm-2', state: { n: 2 }, fingerprint: null });
          assert.deepEqual(await again.lastEvidence('vm-1'), { vm: 'vm-1', at: at(5), entries: 3, ok: true, failures: [] });
          // and the state is written without it from now on: the fingerprint stays until replaced or cleared
          await again.putIntegrities([{ vm: 'vm-1', state: { n: 3 } }]);
          assert.equal((await again.integrity('vm-1'))?.fingerprint, '{"digests": {"/bin/sh": ["aa"]}}');
          await again.putIntegrity({ vm: 'vm-1', state: { n: 4 }, fingerprint: null });
          assert.deepEqual(await again.integrity('vm-1'), { vm: 'vm-1', state: { n: 4 }, fingerprint: null });
        }));
    });

    describe('plans', () => {
      it('plans() lists every host\'s current plan, by host', () =>
        withStore(async (s) => {
          assert.deepEqual(await s.plans(), []);
          await s.putPlans([planFor('host-b', 1), planFor('host-a', 1)]);
          await s.putPlans([planFor('host-b', 2, 3)]);
          assert.deepEqual(await s.plans(), [planFor('host-a', 1), planFor('host-b', 2, 3)]);
        }));

      it('each host’s version must be its current one plus one (1 for a new host)', () =>
        withStore(async (s) => {
          assert.equal(await s.plan('h1'), null);
          await rejectsWith(s.putPlans([planFor('h1', 2)]), StoreErrorCode.planVersionConflict);
          await s.putPlans([planFor('h1', 1)]);
          assert.deepEqual(await s.plan('h1'), planFor('h1', 1));
          await rejectsWith(s.putPlans([planFor('h1', 1)]), StoreErrorCode.planVersionConflict);
          await rejectsWith(s.putPlans([planFor('h1', 3)]), StoreErrorCode.planVersionConflict);
          await s.putPlans([planFor('h1', 2, 5)]);
          assert.deepEqual(await s.plan('h1'), planFor('h1', 2, 5));
          await s.putPlans([]);
          await assert.rejects(s.putPlans([planFor('h1', 4)]), (e: unknown) => {
            assert.ok(isStoreError(e, StoreErrorCode.planVersionConflict));
            assert.deepEqual(e.details, { host: 'h1', version: 4, current: 2 });
            return true;
          });
        }));

      it('a batch with one bad version writes nothing', () =>
        withStore(async (s) => {
          await s.putPlans([planFor('a', 1), planFor('c', 1)]);
          await rejectsWith(s.putPlans([planFor('a', 2), planFor('b', 1), planFor('c', 5)]), StoreErrorCode.planVersionConflict);
          assert.deepEqual(await s.plan('a'), planFor('a', 1));
          assert.equal(await s.plan('b'), null);
          assert.deepEqual(await s.plan('c'), planFor('c', 1));
          await s.putPlans([planFor('a', 2), planFor('b', 1), planFor('c', 2)]);
          assert.equal((await s.plan('c'))!.version, 2);
        }));

      it('of concurrent writers of one host’s next version, exactly one succeeds', () =>
        withStore(async (s) => {
          await s.putPlans([planFor('h', 1)]);
          const results = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => s.putPlans([planFor('h', 2, i)])));
          assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
          for (const r of results) if (r.status === 'rejected') assert.ok(isStoreError(r.reason, StoreErrorCode.planVersionConflict));
          assert.equal((await s.plan('h'))!.version, 2);
        }));
    });

    describe('the fleet generation', () => {
      it('every write of fleet state moves it on, once per transaction; other writes do not; a rollback takes it back', () =>
        withStore(async (s) => {
          const g = async () => (await s.fleetGeneration()).value;
          const g0 = await g();
          assert.deepEqual(await s.fleetGeneration(), { value: g0, written: false });
          const moves: [string, () => Promise<unknown>][] = [
            ['publishPolicy', () => s.publishPolicy(policyInput(1))],
            ['putHost', () => s.putHost({ name: 'host-1', label: null, lastSeen: null })],
            ['putVm', () => s.putVm(vmRecord('vm-1', 'host-1'))],
            ['deleteVm', () => s.deleteVm('vm-1')],
            ['putTrust', () => s.putTrust(trustRecord('vm-1', 'trusted', 1), transition('vm-1', 'unverified', 'trusted', 1))],
            ['touchTrust', () => s.touchTrust('vm-1', at(5))],
            ['touchTrusts', () => s.touchTrusts([{ vm: 'vm-1', lastEvidence: at(6) }])],
            ['putIntegrity', () => s.putIntegrity({ vm: 'vm-1', state: 1, fingerprint: null })],
            ['putIntegrities', () => s.putIntegrities([{ vm: 'vm-1', state: 2 }])],
            ['putAttestationKey', () => s.putAttestationKey('vm-1', akRecord(1))],
            ['putPlans', () => s.putPlans([planFor('host-1', 1)])],
          ];
          let expected = g0;
          for (const [what, write] of moves) {
            await write();
            assert.equal(await g(), ++expected, what);
          }
          const still: [string, () => Promise<unknown>][] = [
            ['appendAudit', () => s.appendAudit(auditInput(1))],
            ['putNonce', () => s.putNonce('vm-1', 'n', at(60))],
            ['useNonce', () => s.useNonce('vm-1', 'n', at(1))],
            ['addEvidence', () => s.addEvidence({ vm: 'vm-1', at: at(1), entries: 1, ok: true, failures: [] })],
            ['putDraft', () => s.putDraft({ id: 'd', yaml: 'x', base: null, actor: 'a', updatedAt: at(1) })],
            ['putResourceLabel', () => s.putResourceLabel({ kind: 'disk', id: 'x', label: 'red' })],
            ['putToken', () => s.putToken(token('tok-1', 'hash-1'))],
            ['putSession', () => s.putSession(sessionRecord('sess-1'))],
            ['prune', () => s.prune({ now: at(0), evidenceBefore: at(0), limit: 10 })],
          ];
          for (const [what, write] of still) {
            await write();
            assert.equal(await g(), expected, what);
          }
          // many fleet writes in one transaction: one step, seen as written inside it
          const inside = await s.tx(async (t) => {
            assert.deepEqual(await t.fleetGeneration(), { value: expected, written: false });
            await t.putHost({ name: 'host-2', label: null, lastSeen: null });
            await t.putVm(vmRecord('vm-2', 'host-2'));
            await t.tx(async (u) => u.putTrust(trustRecord('vm-2', 'trusted', 1), transition('vm-2', 'unverified', 'trusted', 1)));
            return t.fleetGeneration();
          });
          assert.deepEqual(inside, { value: expected + 1, written: true });
          assert.equal(await g(), ++expected);
          // rolled back: as if it never moved
          await assert.rejects(
            s.tx(async (t) => {
              await t.putHost({ name: 'host-3', label: null, lastSeen: null });
              throw new Error('undo');
            }),
            /undo/,
          );
          assert.equal(await g(), expected);
          // a savepoint that moved it and rolled back takes it back; the transaction moves it again at its next write
          const after = await s.tx(async (t) => {
            await assert.rejects(
              t.tx(async (u) => {
                await u.putHost({ name: 'host-4', label: null, lastSeen: null });
                throw new Error('undo');
              }),
              /undo/,
            );
            assert.deepEqual(await t.fleetGeneration(), { value: expected, written: false });
            await t.putHost({ name: 'host-5', label: null, lastSeen: null });
            return t.fleetGeneration();
          });
          assert.deepEqual(after, { value: expected + 1, written: true });
          assert.equal(await g(), ++expected);
        }));

      it('lockFleet moves it first, once: the transaction\'s later fleet writes do not move it again', () =>
        withStore(async (s) => {
          const g0 = (await s.fleetGeneration()).value;
          const seen = await s.tx(async (t) => {
            const locked = await t.lockFleet();
            await t.putHost({ name: 'host-1', label: null, lastSeen: null });
            const again = await t.lockFleet();
            return [locked, again, await t.fleetGeneration()];
          });
          assert.deepEqual(seen, [{ value: g0 + 1, written: true }, { value: g0 + 1, written: true }, { value: g0 + 1, written: true }]);
          assert.equal((await s.fleetGeneration()).value, g0 + 1);
          await assert.rejects(
            s.tx(async (t) => {
              await t.lockFleet();
              throw new Error('undo');
            }),
            /undo/,
          );
          assert.equal((await s.fleetGeneration()).value, g0 + 1, 'rolled back with its transaction');
        }));

      it('another store on the same database sees it move', () =>
        withStore(async (s, fx) => {
          const other = await fx.open();
          const g0 = (await other.fleetGeneration()).value;
          await s.putHost({ name: 'host-1', label: null, lastSeen: null });
          assert.equal((await other.fleetGeneration()).value, g0 + 1);
          await other.putVm(vmRecord('vm-1', 'host-1'));
          assert.equal((await s.fleetGeneration()).value, g0 + 2);
        }));
    });

    describe('retention', () => {
      it('prune deletes expired nonces and sessions and old evidence (each VM\'s newest kept), at most `limit` a table', () =>
        withStore(async (s) => {
          for (let i = 0; i < 5; i++) await s.putNonce('vm-1', `old-${i}`, at(10 + i));
          await s.putNonce('vm-1', 'fresh', at(100));
          await s.putNonce('vm-1', 'used-fresh', at(100));
          assert.equal(await s.useNonce('vm-1', 'used-fresh', at(1)), 'ok');
          assert.equal(await s.useNonce('vm-1', 'old-0', at(1)), 'ok');
          await s.putSession({ ...sessionRecord('gone'), expiresAt: at(20) });
          await s.putSession({ ...sessionRecord('kept'), expiresAt: at(100) });
          for (let i = 0; i < 4; i++) await s.addEvidence({ vm: 'vm-1', at: at(i), entries: i, ok: false, failures: [] });
          await s.addEvidence({ vm: 'vm-2', at: at(1), entries: 1, ok: false, failures: [] });
          await s.addEvidence({ vm: 'vm-3', at: at(60), entries: 1, ok: false, failures: [] });
          await s.addEvidence({ vm: 'vm-3', at: at(70), entries: 2, ok: false, failures: [] });
          let r = await s.prune({ now: at(50), evidenceBefore: at(50), limit: 2 });
          assert.deepEqual(r, { nonces: 2, sessions: 1, evidence: 2 });
          r = await s.prune({ now: at(50), evidenceBefore: at(50), limit: 2 });
          assert.deepEqual(r, { nonces: 2, sessions: 0, evidence: 1 });
          r = await s.prune({ now: at(50), evidenceBefore: at(50), limit: 2 });
          assert.deepEqual(r, { nonces: 1, sessions: 0, evidence: 0 });
          // what is left: unexpired nonces (a used one still answers replayed), the kept session, each VM's newest
          assert.equal(await s.useNonce('vm-1', 'used-fresh', at(51)), 'replayed');
          assert.equal(await s.useNonce('vm-1', 'fresh', at(51)), 'ok');
          assert.equal(await s.useNonce('vm-1', 'old-1', at(51)), 'unknown');
          assert.equal(await s.session('gone'), null);
          assert.equal((await s.session('kept'))?.user, 'alice');
          assert.deepEqual(await s.lastEvidence('vm-1'), { vm: 'vm-1', at: at(3), entries: 3, ok: false, failures: [] });
          assert.deepEqual(await s.lastEvidence('vm-2'), { vm: 'vm-2', at: at(1), entries: 1, ok: false, failures: [] });
          assert.deepEqual(await s.lastEvidence('vm-3'), { vm: 'vm-3', at: at(70), entries: 2, ok: false, failures: [] });
          // vm-3's older record is after the cutoff: still there, gone once the cutoff passes it
          assert.deepEqual(await s.prune({ now: at(50), evidenceBefore: at(65), limit: 10 }), { nonces: 0, sessions: 0, evidence: 1 });
          assert.deepEqual(await s.lastEvidence('vm-3'), { vm: 'vm-3', at: at(70), entries: 2, ok: false, failures: [] });
        }));
    });

    describe('transactions', () => {
      it('commit: the value is returned and every write is there', () =>
        withStore(async (s) => {
          const value = await s.tx(async (t) => {
            await writeOneOfEverything(t);
            return 42;
          });
          assert.equal(value, 42);
          const after = await snapshot(s);
          assert.equal(after.policies.length, 1);
          assert.equal(after.audit.length, 1);
          assert.equal(after.tokens.length, 1);
        }));

      it('a throw rolls everything back: every table, the policy counter and the audit chain', () =>
        withStore(async (s) => {
          const empty = await snapshot(s);
          await assert.rejects(
            s.tx(async (t) => {
              await writeOneOfEverything(t);
              assert.equal((await t.hosts()).length, 1, 'the transaction sees its own writes');
              throw new Error('boom');
            }),
            /boom/,
          );
          assert.deepEqual(await snapshot(s), empty);
          assert.equal(await s.useNonce('vm-1', 'nonce-1', at(10)), 'unknown');
          assert.equal((await s.publishPolicy(policyInput(1))).version, 1);
          const a = await s.appendAudit(auditInput(1));
          assert.equal(a.seq, 1);
          assert.equal(a.prevHash, GENESIS_HASH);
        }));

      it('a store error inside rolls back too', () =>
        withStore(async (s) => {
          await s.putPlans([planFor('h', 1)]);
          await rejectsWith(
            s.tx(async (t) => {
              await t.putHost({ name: 'h', label: null, lastSeen: null });
              await t.appendAudit(auditInput(1));
              await t.putPlans([planFor('h', 3)]);
            }),
            StoreErrorCode.planVersionConflict,
          );
          assert.deepEqual(await s.hosts(), []);
          assert.deepEqual(await s.audit(), []);
        }));

      it('nested transactions join the outer one; a nested throw undoes only its own writes', () =>
        withStore(async (s) => {
          await s.tx(async (t) => {
            await t.putHost({ name: 'outer', label: null, lastSeen: null });
            await t.tx(async (u) => {
              await u.putHost({ name: 'inner-kept', label: null, lastSeen: null });
              await u.tx(async (v) => v.appendAudit(auditInput(1)));
            });
            await assert.rejects(
              t.tx(async (u) => {
                await u.putHost({ name: 'inner-undone', label: null, lastSeen: null });
                await u.appendAudit(auditInput(2));
                throw new Error('inner');
              }),
              /inner/,
            );
            await t.appendAudit(auditInput(3));
          });
          assert.deepEqual(
            (await s.hosts()).map((h) => h.name),
            ['inner-kept', 'outer'],
          );
          const audit = await s.audit();
          assert.deepEqual(
            audit.map((r) => [r.seq, r.at]),
            [
              [1, at(1)],
              [2, at(3)],
            ],
          );
          assert.deepEqual(verifyAuditChain(audit), { ok: true });

          await assert.rejects(
            s.tx(async (t) => {
              await t.tx(async (u) => u.putHost({ name: 'committed-inner', label: null, lastSeen: null }));
              throw new Error('outer');
            }),
            /outer/,
          );
          assert.equal(await s.host('committed-inner'), null, 'an inner commit is undone by the outer rollback');
        }));

      it('a call that fails inside a transaction leaves the transaction usable', () =>
        withStore(async (s) => {
          await s.putToken(token('t1', 'hash-1'));
          await s.tx(async (t) => {
            await rejectsWith(t.putToken(token('t2', 'hash-1')), StoreErrorCode.conflict);
            await rejectsWith(t.putPlans([planFor('h', 2)]), StoreErrorCode.planVersionConflict);
            await t.putHost({ name: 'after-the-failures', label: null, lastSeen: null });
          });
          assert.deepEqual(
            (await s.hosts()).map((h) => h.name),
            ['after-the-failures'],
          );
          assert.deepEqual(
            (await s.tokens()).map((t) => t.id),
            ['t1'],
          );
        }));

      it('calls on the store itself from inside fn join the transaction', () =>
        withStore(async (s) => {
          await assert.rejects(
            s.tx(async () => {
              await s.putHost({ name: 'h', label: null, lastSeen: null });
              assert.equal((await s.hosts()).length, 1);
              throw new Error('undo');
            }),
            /undo/,
          );
          assert.deepEqual(await s.hosts(), []);
        }));

      it('calls inside one transaction may run concurrently (Promise.all)', () =>
        withStore(async (s) => {
          await s.tx(async (t) => {
            await Promise.all([
              ...Array.from({ length: 10 }, (_, i) => t.appendAudit(auditInput(i))),
              ...Array.from({ length: 5 }, (_, i) => t.putHost({ name: `h${i}`, label: null, lastSeen: null })),
              t.tx(async (u) => u.publishPolicy(policyInput(1))),
            ]);
          });
          const audit = await s.audit();
          assert.deepEqual(
            audit.map((r) => r.seq),
            Array.from({ length: 10 }, (_, i) => i + 1),
          );
          assert.deepEqual(verifyAuditChain(audit), { ok: true });
          assert.equal((await s.hosts()).length, 5);
        }));

      it('calls fn started but did not await finish inside the transaction, and share its fate', () =>
        withStore(async (s) => {
          let stray: Promise<unknown>[] = [];
          await s.tx(async (t) => {
            stray = [t.putHost({ name: 'late', label: null, lastSeen: null }), t.appendAudit(auditInput(1))];
          });
          await Promise.all(stray);
          assert.deepEqual(
            (await s.hosts()).map((h) => h.name),
            ['late'],
          );
          await assert.rejects(
            s.tx(async (t) => {
              stray = [t.putHost({ name: 'undone', label: null, lastSeen: null }), t.appendAudit(auditInput(2))];
              throw new Error('undo');
            }),
            /undo/,
          );
          await Promise.all(stray);
          assert.equal(await s.host('undone'), null);
          assert.equal((await s.audit()).length, 1);
        }));

      it('other callers do not interleave with an open transaction: they neither see nor join it', () =>
        withStore(async (s) => {
          let inside!: () => void;
          const entered = new Promise<void>((r) => (inside = r));
          const a = s.tx(async (t) => {
            await t.putHost({ name: 'uncommitted', label: null, lastSeen: null });
            await t.appendAudit(auditInput(1));
            inside();
            await sleep(100);
            throw new Error('rolled back');
          });
          await entered;
          // Another caller, while the transaction is open and waiting.
          const b = (async () => {
            await s.putHost({ name: 'other', label: null, lastSeen: null });
            const seen = (await s.hosts()).map((h) => h.name);
            const appended = await s.appendAudit(auditInput(2));
            return { seen, appended };
          })();
          await assert.rejects(a, /rolled back/);
          const { seen, appended } = await b;
          assert.deepEqual(seen, ['other'], 'the other caller saw only committed data');
          assert.deepEqual(
            (await s.hosts()).map((h) => h.name),
            ['other'],
            'its write was not rolled back with the transaction',
          );
          assert.equal(appended.seq, 1);
          assert.deepEqual(verifyAuditChain(await s.audit()), { ok: true });
        }));

      it('many concurrent callers: one unbroken audit chain and distinct policy numbers', () =>
        withStore(async (s) => {
          await Promise.all([
            ...Array.from({ length: 30 }, (_, i) => s.appendAudit(auditInput(i))),
            ...Array.from({ length: 5 }, (_, i) => s.publishPolicy(policyInput(i))),
            ...Array.from({ length: 5 }, (_, i) => s.tx(async (t) => t.appendAudit(auditInput(100 + i)))),
          ]);
          const audit = await s.audit();
          assert.equal(audit.length, 35);
          assert.deepEqual(verifyAuditChain(audit), { ok: true });
          assert.deepEqual(
            (await s.policyHistory()).map((p) => p.version),
            [1, 2, 3, 4, 5],
          );
        }));

      it('two stores on one database append to one chain, never a fork', () =>
        withStore(async (s, fx) => {
          const other = await fx.open();
          await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? s : other).appendAudit(auditInput(i))));
          const audit = await other.audit();
          assert.deepEqual(
            audit.map((r) => r.seq),
            Array.from({ length: 40 }, (_, i) => i + 1),
          );
          assert.deepEqual(verifyAuditChain(audit), { ok: true });
          assert.deepEqual(await s.audit(), audit);
        }));
    });

    describe('audit', () => {
      it('append gives seq 1, 2, 3… chained from the genesis hash, and reads back exactly', () =>
        withStore(async (s) => {
          const appended: AuditRecordV1[] = [];
          for (let n = 1; n <= 5; n++) appended.push(await s.appendAudit(auditInput(n)));
          assert.deepEqual(
            appended.map((r) => r.seq),
            [1, 2, 3, 4, 5],
          );
          assert.equal(appended[0].prevHash, GENESIS_HASH);
          for (let i = 1; i < 5; i++) assert.equal(appended[i].prevHash, appended[i - 1].hash);
          for (const r of appended) assert.match(r.hash, /^[0-9a-f]{64}$/);
          assert.deepEqual(await s.audit(), appended);
          assert.deepEqual(appended[0].details, auditInput(1).details);
          assert.deepEqual(verifyAuditChain(appended), { ok: true });
        }));

      it('details are kept as JSON reads them back (undefined → null), and still verify', () =>
        withStore(async (s) => {
          const r = await s.appendAudit({ ...auditInput(1), details: undefined });
          assert.equal(r.details, null);
          const r2 = await s.appendAudit({ ...auditInput(2), details: { keep: 1, drop: undefined, list: [undefined, 2] } });
          assert.deepEqual(r2.details, { keep: 1, list: [null, 2] });
          const read = await s.audit();
          assert.deepEqual(read, [r, r2]);
          assert.deepEqual(verifyAuditChain(read), { ok: true });
        }));

      it('filters: actor, action, subject, afterSeq, beforeSeq, limit, newest first', () =>
        withStore(async (s) => {
          for (let n = 1; n <= 12; n++) await s.appendAudit(auditInput(n));
          const seqs = async (f: Parameters<Store['audit']>[0]) => (await s.audit(f)).map((r) => r.seq);
          assert.deepEqual(await seqs({ actor: 'alice' }), [1, 3, 5, 7, 9, 11]);
          assert.deepEqual(await seqs({ action: 'vm.start' }), [3, 6, 9, 12]);
          assert.deepEqual(await seqs({ subject: 'subject-1' }), [1, 5, 9]);
          assert.deepEqual(await seqs({ actor: 'alice', action: 'vm.start' }), [3, 9]);
          assert.deepEqual(await seqs({ afterSeq: 9 }), [10, 11, 12]);
          assert.deepEqual(await seqs({ afterSeq: 2, limit: 3 }), [3, 4, 5]);
          assert.deepEqual(await seqs({ limit: 0 }), []);
          assert.deepEqual(await seqs({ actor: 'nobody' }), []);
          assert.deepEqual(await seqs({ order: 'desc', limit: 3 }), [12, 11, 10]);
          assert.deepEqual(await seqs({ order: 'desc', beforeSeq: 10, limit: 2 }), [9, 8]);
          assert.deepEqual(await seqs({ order: 'desc', actor: 'alice', beforeSeq: 7 }), [5, 3, 1]);
          assert.deepEqual(await seqs({ beforeSeq: 4 }), [1, 2, 3]);
          assert.deepEqual(verifyAuditChain(await s.audit({ afterSeq: 4 }), { partial: true }), { ok: true });
        }));

      /** Five records, tampered with by `tamper`, must fail verification as `problem` at `seq`. */
      async function detects(tamper: (fx: F, records: AuditRecordV1[], s: Store) => Promise<void>, problem: string, seq: number) {
        await withStore(async (s, fx) => {
          const records: AuditRecordV1[] = [];
          for (let n = 1; n <= 5; n++) records.push(await s.appendAudit(auditInput(n)));
          await tamper(fx, records, s);
          const verdict = verifyAuditChain(await s.audit());
          assert.equal(verdict.ok, false, 'tampering went unnoticed');
          if (verdict.ok) return;
          assert.deepEqual([verdict.problem, verdict.seq], [problem, seq], verdict.message);
        });
      }

      it('tamper: an edited record (content changed in SQL) is found as edited', () =>
        detects((fx) => fx.rawExec(`UPDATE audit SET details = '{"n":3,"forged":true}' WHERE seq = 3`).then(() => undefined), 'edited', 3));

      it('tamper: an edited record given a fresh hash is found as edited', () =>
        detects(
          async (fx, records) => {
            const forged = sealAuditRecord({ ...records[2], actor: 'mallory' }, 3, records[1].hash);
            await fx.rawExec(`UPDATE audit SET actor = 'mallory', hash = ${lit(forged.hash)} WHERE seq = 3`);
          },
          'edited',
          3,
        ));

      it('tamper: a deleted record is found as deleted', () =>
        detects((fx) => fx.rawExec('DELETE FROM audit WHERE seq = 3').then(() => undefined), 'deleted', 3));

      it('tamper: the last record deleted shows as deleted at the next append', () =>
        detects(
          async (fx, _records, s) => {
            await fx.rawExec('DELETE FROM audit WHERE seq = 5');
            await s.appendAudit(auditInput(6));
          },
          'deleted',
          5,
        ));

      it('tamper: an inserted record (later ones renumbered) is found as inserted', () =>
        detects(
          async (fx, records) => {
            const forged = sealAuditRecord(auditInput(99, { actor: 'mallory' }), 3, records[1].hash);
            await fx.rawExec('UPDATE audit SET seq = seq + 1000 WHERE seq >= 3');
            await fx.rawExec('UPDATE audit SET seq = seq - 999 WHERE seq >= 1000');
            await fx.rawExec(
              `INSERT INTO audit (seq, at, actor, action, subject, details, hash, prev_hash) VALUES (3, ${lit(forged.at)}, ${lit(forged.actor)}, ` +
                `${lit(forged.action)}, ${lit(forged.subject)}, ${lit(JSON.stringify(forged.details))}, ${lit(forged.hash)}, ${lit(forged.prevHash)})`,
            );
          },
          'inserted',
          3,
        ));

      it('tamper: two records swapped are found as reordered', () =>
        detects(
          async (fx) => {
            await fx.rawExec('UPDATE audit SET seq = 0 WHERE seq = 3');
            await fx.rawExec('UPDATE audit SET seq = 3 WHERE seq = 4');
            await fx.rawExec('UPDATE audit SET seq = 4 WHERE seq = 0');
          },
          'reordered',
          3,
        ));
    });

    describe('access', () => {
      it('tokens: put, find by hash, list, revoke once; revocation is final', () =>
        withStore(async (s) => {
          const a = token('tok-a', 'hash-a');
          const b = token('tok-b', 'hash-b', { role: 'operator', host: null, createdAt: at(2) });
          await s.putToken(b);
          await s.putToken(a);
          assert.deepEqual(await s.tokenByHash('hash-a'), a);
          assert.equal(await s.tokenByHash('nope'), null);
          assert.deepEqual(await s.tokens(), [a, b]);
          assert.equal(await s.revokeToken('tok-a', at(10)), true);
          assert.equal(await s.revokeToken('tok-a', at(11)), false);
          assert.equal(await s.revokeToken('unknown', at(11)), false);
          assert.deepEqual(await s.tokenByHash('hash-a'), { ...a, revokedAt: at(10) });
          await s.putToken({ ...a, name: 'renamed' });
          assert.deepEqual(await s.tokenByHash('hash-a'), { ...a, name: 'renamed', revokedAt: at(10) });
          await rejectsWith(s.putToken(token('tok-c', 'hash-b')), StoreErrorCode.conflict);
          await rejectsWith(s.putToken(token('tok-d', 'hash-d', { role: 'root' as 'admin' })), StoreErrorCode.invalidRecord);
        }));

      it('users: put, replace, find', () =>
        withStore(async (s) => {
          assert.equal(await s.user('alice'), null);
          await s.putUser({ name: 'alice', role: 'viewer', passwordHash: 'scrypt$1' });
          await s.putUser({ name: 'alice', role: 'admin', passwordHash: 'scrypt$2' });
          assert.deepEqual(await s.user('alice'), { name: 'alice', role: 'admin', passwordHash: 'scrypt$2' });
        }));

      it('sessions: put, find, delete', () =>
        withStore(async (s) => {
          await s.putSession(sessionRecord('s1'));
          await s.putSession(sessionRecord('s2'));
          assert.deepEqual(await s.session('s1'), sessionRecord('s1'));
          await s.deleteSession('s1');
          await s.deleteSession('s1');
          assert.equal(await s.session('s1'), null);
          assert.deepEqual(await s.session('s2'), sessionRecord('s2'));
        }));
    });

    describe('events', () => {
      const ev = (subject: string): StoreEvent => ({ kind: 'policy', subject, at: at(1) });

      it('a subscriber hears the store’s own events until it unsubscribes', () =>
        withStore(async (s) => {
          const c = collect(s);
          await s.publish(ev('one'));
          await c.until((e) => e.subject === 'one');
          assert.deepEqual(c.seen, [ev('one')]);
          c.unsubscribe();
          const d = collect(s);
          await s.publish(ev('two'));
          await d.until((e) => e.subject === 'two');
          assert.deepEqual(c.seen, [ev('one')]);
          d.unsubscribe();
        }));

      it('events published in a transaction go out at its commit, and not at all if it (or a savepoint) rolls back', () =>
        withStore(async (s) => {
          const c = collect(s);
          await s.tx(async (t) => {
            await t.publish(ev('committed'));
            await t.tx(async (u) => u.publish(ev('committed-inner'))).catch(() => undefined);
            await t.tx(async (u) => {
              await u.publish(ev('undone-inner'));
              throw new Error('undo');
            }).catch(() => undefined);
          });
          await s.tx(async (t) => {
            await t.publish(ev('undone'));
            throw new Error('undo');
          }).catch(() => undefined);
          await s.publish(ev('marker'));
          await c.until((e) => e.subject === 'marker');
          assert.deepEqual(
            c.seen.map((e) => e.subject),
            ['committed', 'committed-inner', 'marker'],
          );
          c.unsubscribe();
        }));

      it('another store on the same database hears them', () =>
        withStore(async (s, fx) => {
          const other = await fx.open();
          const c = collect(other);
          await s.publish(ev('from-the-first'));
          await c.until((e) => e.subject === 'from-the-first');
          const mine = collect(s);
          await other.publish(ev('from-the-second'));
          await mine.until((e) => e.subject === 'from-the-second');
          c.unsubscribe();
          mine.unsubscribe();
        }));
    });
  });
}
