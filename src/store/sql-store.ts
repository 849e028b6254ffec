/**
 * The Store over SQL, shared by both backends: every method's statements, transactions and nesting, migrations and
 * the audit chain are written once here; `sqlite.ts` and `postgres.ts` only supply an `SqlDriver` (how to run a
 * statement, how to open a transaction, how events travel). Statements are written with `?` placeholders in the
 * SQL both databases accept; the PostgreSQL driver numbers them.
 *
 * Transactions. `tx(fn)` opens one on the driver and marks it in an AsyncLocalStorage, so every call made from
 * `fn`'s async context — on the Store passed to `fn` or on this one — joins it; calls from elsewhere do not (SQLite:
 * they wait for it; PostgreSQL: they run on another connection). A nested `tx` is a SAVEPOINT: it commits with the
 * outer transaction, and a throw inside it undoes only its own writes. Every write made inside a transaction is
 * such a savepoint, so a call that fails there (a token whose hash is taken) leaves the transaction usable on both
 * backends alike (PostgreSQL would otherwise refuse every later statement). Calls made concurrently inside one
 * transaction run one at a time on its connection.
 *
 * The fleet generation (store.ts). Every method that writes fleet state runs in a (nested) transaction whose first
 * statement moves the `fleet` counter on — once per top-level transaction: a savepoint that moved it and committed
 * hands that to its parent, one that rolled back takes it back with it.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { AuditRecordV1, HostV1, PlanV1, ResourceKind, TrustTransitionV1 } from '../api/types.ts';
import { sealAuditRecord } from './audit-chain.ts';
import { StoreError, StoreErrorCode } from './errors.ts';
import { LATEST_SCHEMA_VERSION, MIGRATIONS, SCHEMA_MIGRATIONS_SQL, migrationSql } from './migrations.ts';
import { Mutex } from './mutex.ts';
import * as rows from './sql-rows.ts';
import type { Row } from './sql-rows.ts';
import type {
  AttestationKeyRecord,
  AuditFilter,
  AuditInput,
  DraftRecord,
  EvidenceRecord,
  FleetGeneration,
  IntegrityRecord,
  IntegrityWrite,
  NonceOutcome,
  PolicyVersionRecord,
  PruneCounts,
  PruneRequest,
  ResourceLabelRecord,
  SessionRecord,
  Store,
  StoreEvent,
  TokenRecord,
  TrustRecord,
  UserRecord,
  VmRecord,
} from './store.ts';

/** One connection's statements. Drivers turn constraint failures into StoreErrors (conflict, invalidRecord). */
export interface SqlConn {
  /** a statement that returns rows (SELECT, or a write with RETURNING) */
  all(sql: string, params?: readonly unknown[]): Promise<Row[]>;
  /** a statement that returns none; resolves to the number of rows it changed */
  run(sql: string, params?: readonly unknown[]): Promise<number>;
  /** several statements without parameters (migrations, SAVEPOINT…) */
  exec(sql: string): Promise<void>;
}

export interface SqlDriver {
  readonly kind: Store['kind'];
  /** Run `fn`'s statements outside any transaction, each committing on its own, kept out of other callers' transactions. */
  autocommit<T>(fn: (c: SqlConn) => Promise<T>): Promise<T>;
  /** Run `fn` in a new transaction on one connection: COMMIT if it resolves, ROLLBACK if it throws. */
  transaction<T>(fn: (c: SqlConn) => Promise<T>): Promise<T>;
  /** A statement that keeps two processes from migrating at once, run first in each migration's transaction; null if the transaction's own lock does. */
  readonly migrationLock: string | null;
  /**
   * How `publish` sends an event: as a statement in the caller's transaction, which the database delivers at commit
   * (PostgreSQL's NOTIFY); or emitted in this process, which the store does after the commit.
   */
  readonly events: { statement(e: StoreEvent): { sql: string; params: unknown[] } } | { emit(e: StoreEvent): void };
  subscribe(fn: (e: StoreEvent) => void): () => void;
  close(): Promise<void>;
}

/** Hand an event to a listener: one that throws must not take the store down nor keep the others from hearing. */
export function deliverEvent(fn: (e: StoreEvent) => void, e: StoreEvent): void {
  try {
    fn(e);
  } catch {
    // the listener's own failure
  }
}

/** An open transaction (or savepoint) as the calls inside it see it. */
interface TxContext {
  conn: SqlConn;
  /** serialises the calls made concurrently inside this transaction */
  lock: Mutex;
  /** false once committed or rolled back: a late callback in its async context must not use it */
  open: boolean;
  parent?: TxContext;
  /** events published inside, emitted after the commit (local events only) */
  events: StoreEvent[];
  /** numbers savepoint names within the top-level transaction */
  savepoints: { next: number };
  /** the fleet generation this transaction (or savepoint) moved the counter to, if it did */
  fleetBumped?: number;
}

/** Rows per multi-row statement (each row's values are bound parameters: well under either database's limit). */
const CHUNK = 100;

function chunks<T>(list: readonly T[], n = CHUNK): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < list.length; i += n) out.push(list.slice(i, i + n));
  return out;
}

/** `(?, ?), (?, ?)…`: `rows` groups of `width` placeholders. */
const placeholders = (rows: number, width: number) => Array.from({ length: rows }, () => `(${Array(width).fill('?').join(', ')})`).join(', ');

export class SqlStore implements Store {
  readonly kind: Store['kind'];
  private readonly als = new AsyncLocalStorage<TxContext>();
  private closed = false;

  constructor(private readonly driver: SqlDriver) {
    this.kind = driver.kind;
  }

  // ---- transactions -------------------------------------------------------------------------------------------

  /** The innermost transaction still open in the caller's async context. */
  private current(): TxContext | undefined {
    let c = this.als.getStore();
    while (c && !c.open) c = c.parent;
    return c;
  }

  private checkOpen(): void {
    if (this.closed) throw new StoreError(StoreErrorCode.closed, `the ${this.kind} store is closed`);
  }

  /** Run statements on the caller's transaction, or outside any. */
  private async use<T>(fn: (c: SqlConn) => Promise<T>): Promise<T> {
    this.checkOpen();
    const ctx = this.current();
    return ctx ? ctx.lock.run(() => fn(ctx.conn)) : this.driver.autocommit(fn);
  }

  private all(sql: string, params: readonly unknown[] = []): Promise<Row[]> {
    return this.use((c) => c.all(sql, params));
  }

  /** One read-only statement. */
  private async one(sql: string, params: readonly unknown[] = []): Promise<Row | null> {
    return (await this.all(sql, params))[0] ?? null;
  }

  private run(sql: string, params: readonly unknown[] = []): Promise<number> {
    return this.use((c) => c.run(sql, params));
  }

  /** One write: inside a transaction it is a savepoint, so its failure leaves the transaction usable. */
  private write(sql: string, params: readonly unknown[]): Promise<number> {
    return this.current() ? this.tx(() => this.run(sql, params)) : this.run(sql, params);
  }

  /** One write of fleet state (see fleetTx). */
  private fleetWrite(sql: string, params: readonly unknown[]): Promise<number> {
    return this.fleetTx(() => this.run(sql, params));
  }

  async tx<T>(fn: (s: Store) => Promise<T>): Promise<T> {
    this.checkOpen();
    const parent = this.current();
    if (parent) return parent.lock.run(() => this.savepoint(parent, fn));
    let ctx: TxContext | undefined;
    const result = await this.driver.transaction(async (conn) => {
      ctx = { conn, lock: new Mutex(), open: true, events: [], savepoints: { next: 1 } };
      try {
        return await this.als.run(ctx, () => fn(this));
      } finally {
        await this.settle(ctx);
      }
    });
    if (ctx && 'emit' in this.driver.events) for (const e of ctx.events) this.driver.events.emit(e);
    return result;
  }

  /**
   * Close a transaction to new calls, then let the calls `fn` started but did not await finish inside it, before
   * COMMIT or ROLLBACK: none may run on the connection after it (on SQLite, outside the mutex).
   */
  private async settle(ctx: TxContext): Promise<void> {
    ctx.open = false;
    await ctx.lock.run(() => undefined);
  }

  private async savepoint<T>(parent: TxContext, fn: (s: Store) => Promise<T>): Promise<T> {
    const name = `hg_sp_${parent.savepoints.next++}`;
    await parent.conn.exec(`SAVEPOINT ${name}`);
    const ctx: TxContext = { conn: parent.conn, lock: new Mutex(), open: true, parent, events: [], savepoints: parent.savepoints };
    let result: T;
    try {
      result = await this.als.run(ctx, () => fn(this));
    } catch (e) {
      await this.settle(ctx);
      await parent.conn.exec(`ROLLBACK TO SAVEPOINT ${name}`);
      await parent.conn.exec(`RELEASE SAVEPOINT ${name}`);
      throw e;
    }
    await this.settle(ctx);
    await parent.conn.exec(`RELEASE SAVEPOINT ${name}`);
    parent.events.push(...ctx.events);
    if (ctx.fleetBumped !== undefined) parent.fleetBumped ??= ctx.fleetBumped;
    return result;
  }

  // ---- the fleet generation -----------------------------------------------------------------------------------

  /** The generation this transaction moved the counter to, if it (or a committed savepoint of it) did. */
  private bumpedIn(ctx: TxContext | undefined): number | undefined {
    for (let c = ctx; c !== undefined; c = c.parent) if (c.fleetBumped !== undefined) return c.fleetBumped;
    return undefined;
  }

  /** Run a write of fleet state: in a (nested) transaction that moves the fleet generation on first, once per transaction. */
  private fleetTx<T>(fn: () => Promise<T>): Promise<T> {
    return this.tx(async () => {
      const ctx = this.current();
      if (ctx !== undefined && this.bumpedIn(ctx) === undefined) {
        const [row] = await this.use((c) => c.all(`UPDATE counters SET value = value + 1 WHERE name = 'fleet' RETURNING value`));
        ctx.fleetBumped = Number(row.value);
      }
      return fn();
    });
  }

  async lockFleet(): Promise<FleetGeneration> {
    return this.fleetTx(() => this.fleetGeneration());
  }

  async fleetGeneration(): Promise<FleetGeneration> {
    const row = await this.one(`SELECT value FROM counters WHERE name = 'fleet'`);
    return { value: Number(row?.value ?? 0), written: this.bumpedIn(this.current()) !== undefined };
  }

  // ---- schema -------------------------------------------------------------------------------------------------

  async migrate(): Promise<void> {
    const lock = async () => {
      if (this.driver.migrationLock) await this.all(this.driver.migrationLock);
    };
    await this.tx(async () => {
      await lock();
      await this.use((c) => c.exec(SCHEMA_MIGRATIONS_SQL));
    });
    const applied = new Set((await this.all('SELECT version FROM schema_migrations')).map((r) => Number(r.version)));
    const newest = Math.max(0, ...applied);
    if (newest > LATEST_SCHEMA_VERSION) {
      throw new StoreError(
        StoreErrorCode.schemaTooNew,
        `the database's schema is version ${newest}, newer than the ${LATEST_SCHEMA_VERSION} this hueguard knows: upgrade hueguard`,
        { schema: newest, known: LATEST_SCHEMA_VERSION },
      );
    }
    for (const m of MIGRATIONS) {
      if (applied.has(m.version)) continue;
      await this.tx(async () => {
        await lock();
        // Another controller may have applied it while this one waited for the lock.
        if (await this.one('SELECT version FROM schema_migrations WHERE version = ?', [m.version])) return;
        await this.use((c) => c.exec(migrationSql(m, this.kind)));
        await this.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)', [m.version, m.name, new Date().toISOString()]);
      });
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.driver.close();
  }

  // ---- policies -----------------------------------------------------------------------------------------------

  publishPolicy(p: Omit<PolicyVersionRecord, 'version'>): Promise<PolicyVersionRecord> {
    return this.fleetTx(async () => {
      // The counter row's lock orders concurrent publishers (PostgreSQL); SQLite's write lock already does.
      const row = await this.use((c) => c.all(`UPDATE counters SET value = value + 1 WHERE name = 'policy' RETURNING value`));
      const record: PolicyVersionRecord = {
        version: Number(row[0].value),
        name: p.name,
        policyVersion: p.policyVersion,
        yaml: p.yaml,
        note: p.note,
        actor: p.actor,
        at: p.at,
      };
      await this.run(`INSERT INTO policy_versions (${rows.POLICY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)`, [
        record.version,
        record.name,
        record.policyVersion,
        record.yaml,
        record.note,
        record.actor,
        record.at,
      ]);
      return record;
    });
  }

  async policyVersion(version: number): Promise<PolicyVersionRecord | null> {
    const r = await this.one(`SELECT ${rows.POLICY_COLUMNS} FROM policy_versions WHERE version = ?`, [version]);
    return r && rows.toPolicy(r);
  }

  async latestPolicy(): Promise<PolicyVersionRecord | null> {
    const r = await this.one(`SELECT ${rows.POLICY_COLUMNS} FROM policy_versions ORDER BY version DESC LIMIT 1`);
    return r && rows.toPolicy(r);
  }

  async policyHistory(): Promise<PolicyVersionRecord[]> {
    return (await this.all(`SELECT ${rows.POLICY_COLUMNS} FROM policy_versions ORDER BY version`)).map(rows.toPolicy);
  }

  async putDraft(d: DraftRecord): Promise<void> {
    await this.write(
      `INSERT INTO drafts (${rows.DRAFT_COLUMNS}) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET yaml = excluded.yaml, base = excluded.base, actor = excluded.actor, updated_at = excluded.updated_at`,
      [d.id, d.yaml, d.base, d.actor, d.updatedAt],
    );
  }

  async draft(id: string): Promise<DraftRecord | null> {
    const r = await this.one(`SELECT ${rows.DRAFT_COLUMNS} FROM drafts WHERE id = ?`, [id]);
    return r && rows.toDraft(r);
  }

  async drafts(): Promise<DraftRecord[]> {
    return (await this.all(`SELECT ${rows.DRAFT_COLUMNS} FROM drafts ORDER BY id`)).map(rows.toDraft);
  }

  async deleteDraft(id: string): Promise<boolean> {
    return (await this.write('DELETE FROM drafts WHERE id = ?', [id])) > 0;
  }

  // ---- fleet --------------------------------------------------------------------------------------------------

  async putHost(h: HostV1): Promise<void> {
    await this.fleetWrite(
      `INSERT INTO hosts (${rows.HOST_COLUMNS}) VALUES (?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET label = excluded.label, last_seen = excluded.last_seen`,
      [h.name, h.label, h.lastSeen],
    );
  }

  async host(name: string): Promise<HostV1 | null> {
    const r = await this.one(`SELECT ${rows.HOST_COLUMNS} FROM hosts WHERE name = ?`, [name]);
    return r && rows.toHost(r);
  }

  async hosts(): Promise<HostV1[]> {
    return (await this.all(`SELECT ${rows.HOST_COLUMNS} FROM hosts ORDER BY name`)).map(rows.toHost);
  }

  async putVm(v: VmRecord): Promise<void> {
    await this.fleetWrite(
      `INSERT INTO vms (${rows.VM_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET host = excluded.host, label = excluded.label, running = excluded.running,
         ports = excluded.ports, resources = excluded.resources, started_seq = excluded.started_seq, revoked = excluded.revoked`,
      [v.name, v.host, v.label, v.running, JSON.stringify(v.ports), JSON.stringify(v.resources), v.startedSeq, v.revoked ? JSON.stringify(v.revoked) : null],
    );
  }

  async vm(name: string): Promise<VmRecord | null> {
    const r = await this.one(`SELECT ${rows.VM_COLUMNS} FROM vms WHERE name = ?`, [name]);
    return r && rows.toVm(r);
  }

  async vms(host?: string): Promise<VmRecord[]> {
    const found =
      host === undefined
        ? await this.all(`SELECT ${rows.VM_COLUMNS} FROM vms ORDER BY name`)
        : await this.all(`SELECT ${rows.VM_COLUMNS} FROM vms WHERE host = ? ORDER BY name`, [host]);
    return found.map(rows.toVm);
  }

  async deleteVm(name: string): Promise<boolean> {
    return (await this.fleetWrite('DELETE FROM vms WHERE name = ?', [name])) > 0;
  }

  async putResourceLabel(r: ResourceLabelRecord): Promise<void> {
    await this.write(
      `INSERT INTO resource_labels (${rows.RESOURCE_LABEL_COLUMNS}) VALUES (?, ?, ?)
       ON CONFLICT (kind, id) DO UPDATE SET label = excluded.label`,
      [r.kind, r.id, r.label],
    );
  }

  async deleteResourceLabel(kind: ResourceKind, id: string): Promise<boolean> {
    return (await this.write('DELETE FROM resource_labels WHERE kind = ? AND id = ?', [kind, id])) > 0;
  }

  async resourceLabels(): Promise<ResourceLabelRecord[]> {
    return (await this.all(`SELECT ${rows.RESOURCE_LABEL_COLUMNS} FROM resource_labels ORDER BY kind, id`)).map(rows.toResourceLabel);
  }

  // ---- evidence and trust -------------------------------------------------------------------------------------

  /** A nonce is issued once: putting the same (vm, nonce) again is a conflict, never a reset of its use. */
  async putNonce(vm: string, nonce: string, expiresAt: string): Promise<void> {
    await this.write('INSERT INTO nonces (vm, nonce, expires_at) VALUES (?, ?, ?)', [vm, nonce, expiresAt]);
  }

  useNonce(vm: string, nonce: string, now: string): Promise<NonceOutcome> {
    return this.tx(async () => {
      const r = await this.one('SELECT expires_at, used_at FROM nonces WHERE vm = ? AND nonce = ?', [vm, nonce]);
      if (!r) return 'unknown';
      if (r.used_at !== null) return 'replayed';
      // Valid up to and including expiresAt; a time that does not parse fails closed.
      if (!(Date.parse(now) <= Date.parse(String(r.expires_at)))) return 'stale';
      // `used_at IS NULL` again: on PostgreSQL a concurrent use may have won since the SELECT.
      const changed = await this.run('UPDATE nonces SET used_at = ? WHERE vm = ? AND nonce = ? AND used_at IS NULL', [now, vm, nonce]);
      return changed === 1 ? 'ok' : 'replayed';
    });
  }

  async integrity(vm: string): Promise<IntegrityRecord | null> {
    const r = await this.one('SELECT i.vm, i.state, f.fingerprint FROM integrity i LEFT JOIN fingerprints f ON f.vm = i.vm WHERE i.vm = ?', [vm]);
    return r && { vm: String(r.vm), state: JSON.parse(String(r.state)), fingerprint: r.fingerprint === null || r.fingerprint === undefined ? null : String(r.fingerprint) };
  }

  async putIntegrity(r: IntegrityRecord): Promise<void> {
    await this.putIntegrities([{ vm: r.vm, state: r.state, fingerprint: r.fingerprint }]);
  }

  /** Fingerprints set (a text) or cleared (null), in the caller's transaction (fingerprints: migration 5). */
  private async putFingerprints(list: readonly { vm: string; fingerprint: string | null }[]): Promise<void> {
    const set = list.filter((x) => x.fingerprint !== null);
    const cleared = list.filter((x) => x.fingerprint === null).map((x) => x.vm);
    for (const part of chunks(set)) {
      await this.run(
        `INSERT INTO fingerprints (vm, fingerprint) VALUES ${placeholders(part.length, 2)} ON CONFLICT (vm) DO UPDATE SET fingerprint = excluded.fingerprint`,
        part.flatMap((x) => [x.vm, x.fingerprint]),
      );
    }
    for (const part of chunks(cleared)) await this.run(`DELETE FROM fingerprints WHERE vm IN (${part.map(() => '?').join(', ')})`, part);
  }

  async putIntegrities(writes: readonly IntegrityWrite[]): Promise<void> {
    if (writes.length === 0) return;
    // the last state of each VM (one statement may not change a row twice on PostgreSQL); every failed evidence
    const last = new Map<string, { w: IntegrityWrite; fingerprint?: string | null; evidence?: string }>();
    const failed: EvidenceRecord[] = [];
    for (const w of writes) {
      const prev = last.get(w.vm);
      const e = w.evidence;
      last.set(w.vm, {
        w,
        fingerprint: w.fingerprint !== undefined ? w.fingerprint : prev?.fingerprint,
        evidence: e !== undefined ? JSON.stringify({ at: e.at, entries: e.entries, ok: e.ok, failures: e.failures }) : prev?.evidence,
      });
      if (e !== undefined && (!e.ok || e.failures.length > 0)) failed.push({ vm: w.vm, ...e });
    }
    const all = [...last.values()];
    const fingerprints = all.flatMap((x) => (x.fingerprint === undefined ? [] : [{ vm: x.w.vm, fingerprint: x.fingerprint }]));
    await this.fleetTx(async () => {
      for (const part of chunks(all)) {
        await this.run(
          `INSERT INTO integrity (vm, state, last_evidence) VALUES ${placeholders(part.length, 3)}
           ON CONFLICT (vm) DO UPDATE SET state = excluded.state, last_evidence = COALESCE(excluded.last_evidence, integrity.last_evidence)`,
          part.flatMap((x) => [x.w.vm, JSON.stringify(x.w.state ?? null), x.evidence ?? null]),
        );
      }
      await this.putFingerprints(fingerprints);
      for (const part of chunks(failed)) {
        await this.run(
          `INSERT INTO evidence (${rows.EVIDENCE_COLUMNS}) VALUES ${placeholders(part.length, 5)}`,
          part.flatMap((e) => [e.vm, e.at, e.entries, e.ok, JSON.stringify(e.failures)]),
        );
      }
    });
  }

  async addEvidence(e: EvidenceRecord): Promise<void> {
    await this.write(`INSERT INTO evidence (${rows.EVIDENCE_COLUMNS}) VALUES (?, ?, ?, ?, ?)`, [e.vm, e.at, e.entries, e.ok, JSON.stringify(e.failures)]);
  }

  /** The VM's last evidence: kept with its integrity state, else the log's newest (by order of arrival, not by `at`). */
  async lastEvidence(vm: string): Promise<EvidenceRecord | null> {
    const kept = await this.one('SELECT last_evidence FROM integrity WHERE vm = ?', [vm]);
    if (kept !== null && kept.last_evidence !== null && kept.last_evidence !== undefined) {
      const e = JSON.parse(String(kept.last_evidence)) as Omit<EvidenceRecord, 'vm'>;
      return { vm, at: e.at, entries: e.entries, ok: e.ok, failures: e.failures };
    }
    const r = await this.one(`SELECT ${rows.EVIDENCE_COLUMNS} FROM evidence WHERE vm = ? ORDER BY id DESC LIMIT 1`, [vm]);
    return r && rows.toEvidence(r);
  }

  async trust(vm: string): Promise<TrustRecord | null> {
    const r = await this.one(`SELECT ${rows.TRUST_COLUMNS} FROM trust WHERE vm = ?`, [vm]);
    return r && rows.toTrust(r);
  }

  async trusts(): Promise<TrustRecord[]> {
    return (await this.all(`SELECT ${rows.TRUST_COLUMNS} FROM trust ORDER BY vm`)).map(rows.toTrust);
  }

  /** The transition must be the record's: same VM, and `to` is the state being set. */
  async putTrust(r: TrustRecord, t: TrustTransitionV1): Promise<void> {
    if (t.vm !== r.vm || t.to !== r.state) {
      throw new StoreError(StoreErrorCode.invalidRecord, `trust transition ${t.vm} → ${t.to} does not match the state set for ${r.vm} (${r.state})`, {
        vm: r.vm,
        state: r.state,
        transition: t,
      });
    }
    await this.fleetTx(async () => {
      await this.run(
        `INSERT INTO trust (${rows.TRUST_COLUMNS}) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (vm) DO UPDATE SET state = excluded.state, since = excluded.since, reason = excluded.reason,
           last_evidence = excluded.last_evidence`,
        [r.vm, r.state, r.since, r.reason, r.lastEvidence],
      );
      await this.run(`INSERT INTO trust_history (${rows.TRANSITION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)`, [t.vm, t.from, t.to, t.at, t.reason, t.actor]);
    });
  }

  async touchTrust(vm: string, lastEvidence: string): Promise<boolean> {
    return (await this.fleetWrite('UPDATE trust SET last_evidence = ? WHERE vm = ?', [lastEvidence, vm])) > 0;
  }

  async touchTrusts(touches: readonly { vm: string; lastEvidence: string }[]): Promise<number> {
    if (touches.length === 0) return 0;
    // by time (a group of evidence shares one), the last of each VM
    const byTime = new Map<string, Set<string>>();
    const last = new Map(touches.map((t) => [t.vm, t.lastEvidence]));
    for (const [vm, time] of last) {
      let set = byTime.get(time);
      if (set === undefined) byTime.set(time, (set = new Set()));
      set.add(vm);
    }
    return this.fleetTx(async () => {
      let changed = 0;
      for (const [time, vms] of byTime) {
        for (const part of chunks([...vms])) {
          changed += await this.run(`UPDATE trust SET last_evidence = ? WHERE vm IN (${part.map(() => '?').join(', ')})`, [time, ...part]);
        }
      }
      return changed;
    });
  }

  async putAttestationKey(vm: string, rec: Omit<AttestationKeyRecord, 'vm'>): Promise<void> {
    await this.fleetWrite(
      `INSERT INTO attestation_keys (vm, ak, name, registered_at, registered_by) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (vm) DO UPDATE SET ak = excluded.ak, name = excluded.name, registered_at = excluded.registered_at,
         registered_by = excluded.registered_by`,
      [vm, rec.ak, rec.name, rec.registeredAt, rec.by],
    );
  }

  async attestationKey(vm: string): Promise<AttestationKeyRecord | null> {
    const r = await this.one('SELECT vm, ak, name, registered_at, registered_by FROM attestation_keys WHERE vm = ?', [vm]);
    return r && { vm: String(r.vm), ak: String(r.ak), name: String(r.name), registeredAt: String(r.registered_at), by: String(r.registered_by) };
  }

  async trustHistory(vm: string): Promise<TrustTransitionV1[]> {
    return (await this.all(`SELECT ${rows.TRANSITION_COLUMNS} FROM trust_history WHERE vm = ? ORDER BY id`, [vm])).map(rows.toTransition);
  }

  // ---- plans --------------------------------------------------------------------------------------------------

  async putPlans(plans: PlanV1[]): Promise<void> {
    if (plans.length === 0) return;
    await this.fleetTx(async () => {
      for (const p of plans) {
        const vms = JSON.stringify(p.vms);
        // The version test is in the write itself, so two controllers racing on one host cannot both succeed.
        const changed =
          p.version === 1
            ? await this.run(`INSERT INTO plans (${rows.PLAN_COLUMNS}) VALUES (?, ?, ?, ?) ON CONFLICT (host) DO NOTHING`, [p.host, 1, p.policyVersion, vms])
            : await this.run('UPDATE plans SET version = ?, policy_version = ?, vms = ? WHERE host = ? AND version = ?', [
                p.version,
                p.policyVersion,
                vms,
                p.host,
                p.version - 1,
              ]);
        if (changed !== 1) {
          const current = Number((await this.one('SELECT version FROM plans WHERE host = ?', [p.host]))?.version ?? 0);
          throw new StoreError(
            StoreErrorCode.planVersionConflict,
            `plan version ${p.version} for host ${p.host} does not follow its current version ${current}`,
            { host: p.host, version: p.version, current },
          );
        }
      }
    });
  }

  async plan(host: string): Promise<PlanV1 | null> {
    const r = await this.one(`SELECT ${rows.PLAN_COLUMNS} FROM plans WHERE host = ?`, [host]);
    return r && rows.toPlan(r);
  }

  async plans(): Promise<PlanV1[]> {
    return (await this.all(`SELECT ${rows.PLAN_COLUMNS} FROM plans ORDER BY host`)).map(rows.toPlan);
  }

  // ---- retention ----------------------------------------------------------------------------------------------

  /**
   * Times are compared as text: the controller writes them as `toISOString` does (UTC, fixed width), whose text
   * order is time order.
   */
  prune(p: PruneRequest): Promise<PruneCounts> {
    const limit = Math.max(0, Math.floor(p.limit));
    return this.tx(async () => {
      const nonces = await this.run('DELETE FROM nonces WHERE (vm, nonce) IN (SELECT vm, nonce FROM nonces WHERE expires_at < ? LIMIT ?)', [p.now, limit]);
      const sessions = await this.run('DELETE FROM sessions WHERE hash IN (SELECT hash FROM sessions WHERE expires_at < ? LIMIT ?)', [p.now, limit]);
      const evidence = await this.run(
        `DELETE FROM evidence WHERE id IN (
           SELECT e.id FROM evidence e WHERE e.at < ? AND e.id < (SELECT MAX(x.id) FROM evidence x WHERE x.vm = e.vm) LIMIT ?)`,
        [p.evidenceBefore, limit],
      );
      return { nonces, sessions, evidence };
    });
  }

  // ---- audit --------------------------------------------------------------------------------------------------

  appendAudit(input: AuditInput): Promise<AuditRecordV1> {
    return this.tx(async () => {
      // Advancing the head first takes its row lock (PostgreSQL), so the read of the previous hash and the append
      // happen with no other appender in between; RETURNING gives the new seq and the still-unchanged hash.
      const [head] = await this.use((c) => c.all('UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash'));
      const record = sealAuditRecord(input, Number(head.seq), String(head.hash));
      await this.run(`INSERT INTO audit (${rows.AUDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, [
        record.seq,
        record.at,
        record.actor,
        record.action,
        record.subject,
        JSON.stringify(record.details),
        record.hash,
        record.prevHash,
      ]);
      await this.run('UPDATE audit_head SET hash = ? WHERE id = 1', [record.hash]);
      return record;
    });
  }

  /** Records in seq order (or newest first), each filter an exact match; `limit` counts from the first in that order. */
  async audit(filter: AuditFilter = {}): Promise<AuditRecordV1[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    for (const key of ['actor', 'action', 'subject'] as const) {
      if (filter[key] !== undefined) {
        where.push(`${key} = ?`);
        params.push(filter[key]);
      }
    }
    if (filter.afterSeq !== undefined) {
      where.push('seq > ?');
      params.push(filter.afterSeq);
    }
    if (filter.beforeSeq !== undefined) {
      where.push('seq < ?');
      params.push(filter.beforeSeq);
    }
    let sql = `SELECT ${rows.AUDIT_COLUMNS} FROM audit${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY seq${filter.order === 'desc' ? ' DESC' : ''}`;
    if (filter.limit !== undefined) {
      sql += ' LIMIT ?';
      params.push(Math.max(0, Math.floor(filter.limit)));
    }
    return (await this.all(sql, params)).map(rows.toAudit);
  }

  // ---- access -------------------------------------------------------------------------------------------------

  /** Insert or replace by id; a revocation is final (putting the token again keeps its revokedAt). */
  async putToken(t: TokenRecord): Promise<void> {
    await this.write(
      `INSERT INTO tokens (${rows.TOKEN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET name = excluded.name, role = excluded.role, host = excluded.host, hash = excluded.hash,
         created_at = excluded.created_at, revoked_at = COALESCE(tokens.revoked_at, excluded.revoked_at)`,
      [t.id, t.name, t.role, t.host, t.hash, t.createdAt, t.revokedAt],
    );
  }

  async tokenByHash(hash: string): Promise<TokenRecord | null> {
    const r = await this.one(`SELECT ${rows.TOKEN_COLUMNS} FROM tokens WHERE hash = ?`, [hash]);
    return r && rows.toToken(r);
  }

  async tokens(): Promise<TokenRecord[]> {
    return (await this.all(`SELECT ${rows.TOKEN_COLUMNS} FROM tokens ORDER BY created_at, id`)).map(rows.toToken);
  }

  /** True if this call revoked it; false if it is unknown or was revoked already (its first revokedAt stays). */
  async revokeToken(id: string, at: string): Promise<boolean> {
    return (await this.write('UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL', [at, id])) > 0;
  }

  async putUser(u: UserRecord): Promise<void> {
    await this.write(
      `INSERT INTO users (${rows.USER_COLUMNS}) VALUES (?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET role = excluded.role, password_hash = excluded.password_hash`,
      [u.name, u.role, u.passwordHash],
    );
  }

  async user(name: string): Promise<UserRecord | null> {
    const r = await this.one(`SELECT ${rows.USER_COLUMNS} FROM users WHERE name = ?`, [name]);
    return r && rows.toUser(r);
  }

  async putSession(s: SessionRecord): Promise<void> {
    await this.write(
      `INSERT INTO sessions (${rows.SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (hash) DO UPDATE SET user_name = excluded.user_name, role = excluded.role, csrf = excluded.csrf,
         expires_at = excluded.expires_at`,
      [s.hash, s.user, s.role, s.csrf, s.expiresAt],
    );
  }

  /** The session as stored, expired or not: the caller compares expiresAt with its clock. */
  async session(hash: string): Promise<SessionRecord | null> {
    const r = await this.one(`SELECT ${rows.SESSION_COLUMNS} FROM sessions WHERE hash = ?`, [hash]);
    return r && rows.toSession(r);
  }

  async deleteSession(hash: string): Promise<void> {
    await this.write('DELETE FROM sessions WHERE hash = ?', [hash]);
  }

  // ---- events -------------------------------------------------------------------------------------------------

  /** Inside a transaction the event goes out at its commit, and not at all if it rolls back. */
  async publish(e: StoreEvent): Promise<void> {
    this.checkOpen();
    const event: StoreEvent = { kind: e.kind, subject: e.subject, at: e.at };
    const events = this.driver.events;
    if ('statement' in events) {
      const { sql, params } = events.statement(event);
      await this.use((c) => c.all(sql, params));
      return;
    }
    const ctx = this.current();
    if (ctx) ctx.events.push(event);
    else events.emit(event);
  }

  subscribe(fn: (e: StoreEvent) => void): () => void {
    return this.driver.subscribe(fn);
  }
}
