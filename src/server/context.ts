/**
 * What every route of the controller works with: the store, the clock, the metrics, the published policy (compiled
 * once per version), the rate limiters, and two helpers that every change goes through — `audit` (the hash-chained
 * log, with the actor) and `notify` (the event that other controllers and the console's stream see).
 */
import type { AuditRecordV1 } from '../api/types.ts';
import { CompiledPolicy } from '../monitor/compile.ts';
import { readPolicy } from '../policy/format.ts';
import type { Policy } from '../policy/model.ts';
import type { PolicyVersionRecord, Store, StoreEvent } from '../store/store.ts';
import type { TokenCache } from './auth.ts';
import { ApiError, ApiErrorCode } from './errors.ts';
import type { FleetState } from './fleet-state.ts';
import type { EvidenceIngest } from './ingest.ts';
import type { Metrics } from './metrics.ts';
import type { RateLimiter } from './rate-limit.ts';

export interface CurrentPolicy {
  record: PolicyVersionRecord;
  policy: Policy;
  compiled: CompiledPolicy;
}

/** Parse a stored (hence valid) policy version. */
export function parseStoredPolicy(record: Pick<PolicyVersionRecord, 'yaml' | 'version'>): Policy {
  const r = readPolicy(record.yaml, `version ${record.version}`);
  if (r.policy === null) {
    throw new ApiError(ApiErrorCode.internal, `published policy version ${record.version} does not read back`, { diagnostics: r.diagnostics });
  }
  return r.policy;
}

/**
 * The published policy, compiled once per version. Forgotten on every `policy` event, which every controller on
 * the same database receives, so a publish through one is used by all.
 */
export class PolicyCache {
  private cached: Promise<CurrentPolicy | null> | undefined;
  /** what `cached` resolved to, once it has */
  private resolved: CurrentPolicy | null | undefined;
  private generation = 0;
  /** the version `set` last installed */
  private known = 0;

  constructor(private readonly store: Store) {}

  /** The current policy, or null when none was published yet. */
  current(): Promise<CurrentPolicy | null> {
    if (this.cached === undefined) {
      const gen = this.generation;
      const p = this.load();
      this.cached = p;
      this.resolved = undefined;
      // A failed load, or one overtaken by an invalidation, is not kept.
      p.then(
        (v) => {
          if (gen !== this.generation) {
            if (this.cached === p) this.cached = undefined;
          } else if (this.cached === p) this.resolved = v;
        },
        () => this.cached === p && (this.cached = undefined),
      );
    }
    return this.cached;
  }

  /**
   * The current policy if it is loaded already, without waiting (undefined: not loaded). For callers inside a
   * store transaction: a load under way may be waiting for that very transaction to end (SQLite's one connection).
   */
  peek(): CurrentPolicy | null | undefined {
    return this.resolved;
  }

  /** The current policy; a 409 `no_policy` when there is none. */
  async require(): Promise<CurrentPolicy> {
    const c = await this.current();
    if (c === null) throw new ApiError(ApiErrorCode.noPolicy, 'no policy has been published yet');
    return c;
  }

  /** Use this version from now on (after publishing it). */
  set(record: PolicyVersionRecord, policy: Policy): void {
    this.generation++;
    this.known = record.version;
    this.resolved = { record, policy, compiled: new CompiledPolicy(policy) };
    this.cached = Promise.resolve(this.resolved);
  }

  /** Use this policy, read and compiled already (the fleet state read a newer version than this cache held). */
  install(current: CurrentPolicy): void {
    if (current.record.version < this.known) return;
    this.generation++;
    this.known = current.record.version;
    this.resolved = current;
    this.cached = Promise.resolve(current);
  }

  /** A controller published `version`: forget the compiled policy unless it is that version already. */
  published(version: number): void {
    if (version !== this.known) this.invalidate();
  }

  invalidate(): void {
    this.generation++;
    this.cached = undefined;
    this.resolved = undefined;
  }

  private async load(): Promise<CurrentPolicy | null> {
    const record = await this.store.latestPolicy();
    if (record === null) return null;
    const policy = parseStoredPolicy(record);
    return { record, policy, compiled: new CompiledPolicy(policy) };
  }
}

export interface ServerContext {
  store: Store;
  now: () => Date;
  metrics: Metrics;
  policies: PolicyCache;
  /** per-credential limit; null: none */
  limiter: RateLimiter | null;
  /** per-address limit on sign-in; null: none */
  loginLimiter: RateLimiter | null;
  sessionTtlMs: number;
  /** set the cookie's Secure flag (the server speaks TLS) */
  secureCookies: boolean;
  /** a running VM without fresh evidence for longer than this becomes unreachable (at the next tick) */
  deadlineMs: number;
  /** how long an issued nonce may be used */
  nonceTtlMs: number;
  /** how long `GET /api/v1/hosts/:name/plan?after=N` waits for a newer plan before answering 204 */
  planWaitMs: number;
  /** the fleet in memory, for the writers that run often (fleet-state.ts) */
  fleet: FleetState;
  /** evidence, appraised and stored in groups (ingest.ts) */
  ingest: EvidenceIngest;
  /** evidence records older than this are pruned (each VM's newest is kept) */
  evidenceRetentionMs: number;
  /** API tokens looked up lately (auth.ts) */
  tokenCache: TokenCache;
}

/** ISO time now. */
export function nowIso(ctx: Pick<ServerContext, 'now'>): string {
  return ctx.now().toISOString();
}

/** Append to the audit log (through `s`, so that it joins the caller's transaction), and tell the event streams. */
export async function audit(
  ctx: Pick<ServerContext, 'now'>,
  s: Store,
  actor: string,
  action: string,
  subject: string,
  details: unknown = null,
): Promise<AuditRecordV1> {
  const at = nowIso(ctx);
  const r = await s.appendAudit({ at, actor, action, subject, details });
  await s.publish({ kind: 'audit', subject: `${r.seq} ${action} ${subject}`, at });
  return r;
}

/**
 * Tell every controller on this database (and so every event stream) that something changed. Through `s` inside a
 * transaction: the event then goes out at its commit, and not at all if it rolls back.
 */
export async function notify(ctx: Pick<ServerContext, 'now' | 'store'>, kind: StoreEvent['kind'], subject: string, s: Store = ctx.store): Promise<void> {
  await s.publish({ kind, subject, at: nowIso(ctx) });
}
