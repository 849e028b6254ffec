/**
 * The Store: everything the controller keeps, behind one interface with two implementations (SQLite, the embedded
 * default; PostgreSQL) that pass one conformance suite (`conformance.ts`).
 *
 * Rules every implementation keeps:
 * - A method resolves only once its write is durable (SQLite: WAL with synchronous=FULL; PostgreSQL: committed).
 * - `tx(fn)` runs `fn` in one transaction: all of its writes or none. A store error inside leaves nothing half
 *   written (no half-published policy, no plan without its trust transition).
 * - Published policy versions and audit records are append-only: no method edits or deletes them.
 * - The audit log is hash-chained inside the store's transaction, so two controllers on one database never fork it.
 * - `events` carries what changed to every controller on the same database (PostgreSQL: LISTEN/NOTIFY), so that a
 *   change made through one is seen by the clients of another.
 * - The fleet generation (`fleetGeneration`) is a number that every transaction writing fleet state moves on, once:
 *   hosts, VMs, trust records, plans, policy versions, integrity states, attestation keys. A controller that keeps
 *   that state in memory reads it at the start of its transaction and knows, by comparing, whether anyone (another
 *   controller, another part of itself) has changed it since it was loaded. The write that moves it locks it
 *   (PostgreSQL: its row, until the commit), so write fleet tables before other locked rows (the audit head) in a
 *   transaction: every fleet-writing transaction then takes its locks in the same order.
 */
import type { AuditRecordV1, HostV1, PlanV1, ResourceKind, Role, TrustState, TrustTransitionV1 } from '../api/types.ts';

export interface PolicyVersionRecord {
  /** 1, 2, 3…: the store's own version number, immutable once published */
  version: number;
  /** the policy's name and version string as written in it */
  name: string;
  policyVersion: string;
  /** the native YAML text, exactly as published */
  yaml: string;
  note: string;
  actor: string;
  at: string;
}

export interface DraftRecord {
  id: string;
  yaml: string;
  /** the published version it started from, if any */
  base: number | null;
  actor: string;
  updatedAt: string;
}

export interface VmRecord {
  name: string;
  host: string | null;
  /** the label an operator assigned, or the one the agent read from the domain's metadata; null: unlabeled */
  label: string | null;
  running: boolean;
  ports: string[];
  resources: { kind: ResourceKind; id: string }[];
  /** the order of starts on its host (the Chinese Wall replays in this order) */
  startedSeq: number | null;
  /**
   * isolated by a policy update published in `revoke` mode, which found it violating (DESIGN.md §2), until it stops,
   * is relabeled, or a later update no longer finds it violating; absent or null: not
   */
  revoked?: VmRevocation | null;
}

export interface VmRevocation {
  /** the store version of the policy whose update isolated it */
  policyVersion: number;
  /** the violations found (the monitor's codes: wall_conflict, not_authorized, resource_forbidden…) */
  reasons: string[];
}

export interface ResourceLabelRecord {
  kind: ResourceKind;
  id: string;
  label: string;
}

export interface TrustRecord {
  vm: string;
  state: TrustState;
  since: string;
  reason: string;
  /** ISO time of the last fresh evidence, null if none yet */
  lastEvidence: string | null;
}

/**
 * The verifier's state of one VM, kept between evidence increments: a small state rewritten at every increment
 * (replay snapshot, appraiser state, quote clock) and its golden fingerprint (reference values), large and written
 * only when it changes (enrollment, re-enrollment).
 */
export interface IntegrityRecord {
  vm: string;
  /** opaque JSON owned by the trust engine */
  state: unknown;
  /** the golden fingerprint's text (opaque to the store); null: none (or none stored apart from `state`) */
  fingerprint: string | null;
}

/** One VM's integrity state to write with `putIntegrities`, and what goes with it. */
export interface IntegrityWrite {
  vm: string;
  state: unknown;
  /** the fingerprint's text; omitted: the stored one stays (none for a VM without a record yet) */
  fingerprint?: string | null;
  /**
   * the evidence this state comes from: the VM's last evidence from now on (`lastEvidence`), kept with the state
   * (no row of its own); one that failed (not ok, or with failures) is appended to the evidence log as well
   */
  evidence?: Omit<EvidenceRecord, 'vm'>;
}

/** A VM's registered attestation key (its vTPM's AK), which verifies the quotes of its evidence. */
export interface AttestationKeyRecord {
  vm: string;
  /** the key as registered: base64 of a PEM public key or of a TPM2B_PUBLIC (`tpm2_createak -u`) */
  ak: string;
  /** hex: the TPM Name (nameAlg ‖ H(TPMT_PUBLIC)) for a TPM2B_PUBLIC; `sha256:` ‖ SHA-256 of the SPKI DER for a PEM key */
  name: string;
  registeredAt: string;
  /** the actor who registered it (`token:NAME`, `user:NAME`) */
  by: string;
}

export interface EvidenceRecord {
  vm: string;
  at: string;
  entries: number;
  ok: boolean;
  /** the failing entries (path, expected, found), as the appraiser reported them */
  failures: unknown[];
}

export type NonceOutcome = 'ok' | 'unknown' | 'replayed' | 'stale';

/** The fleet generation as a transaction sees it (see the module comment). */
export interface FleetGeneration {
  value: number;
  /** this transaction has written fleet state (and moved `value` on, once) */
  written: boolean;
}

/** What `prune` deletes: nothing that is still in use, nothing append-only (audit, trust history, policy versions). */
export interface PruneRequest {
  /** ISO time: nonces and sessions that expired before it go (an expired nonce is refused anyway: now `unknown`) */
  now: string;
  /** ISO time: records of the evidence log older than it go, except each VM's newest */
  evidenceBefore: string;
  /** at most this many rows of each table in one call: call again while a count reaches it */
  limit: number;
}

export interface PruneCounts {
  nonces: number;
  sessions: number;
  evidence: number;
}

export interface TokenRecord {
  id: string;
  name: string;
  role: Role;
  /** an agent token is bound to one host */
  host: string | null;
  /** hex SHA-256 of the secret: the secret itself is never stored */
  hash: string;
  createdAt: string;
  revokedAt: string | null;
}

export interface UserRecord {
  name: string;
  role: Role;
  /** scrypt parameters and hash, `scrypt$N$r$p$salt$hash` */
  passwordHash: string;
}

export interface SessionRecord {
  /** hex SHA-256 of the cookie's secret */
  hash: string;
  user: string;
  role: Role;
  csrf: string;
  expiresAt: string;
}

/** A record to append to the audit log; the store gives it its sequence number and hashes. */
export type AuditInput = Omit<AuditRecordV1, 'seq' | 'hash' | 'prevHash'>;

export interface AuditFilter {
  actor?: string;
  action?: string;
  subject?: string;
  afterSeq?: number;
  beforeSeq?: number;
  /** asc (default): oldest first; desc: newest first (`limit` then counts from the newest) */
  order?: 'asc' | 'desc';
  limit?: number;
}

/** A change, as other controllers on the same database learn of it. */
export interface StoreEvent {
  kind: 'policy' | 'fleet' | 'trust' | 'plan' | 'audit';
  subject: string;
  at: string;
}

export interface Store {
  readonly kind: 'sqlite' | 'postgres';
  /** Run every migration not yet applied, in order, each in its own transaction. */
  migrate(): Promise<void>;
  close(): Promise<void>;
  /** Run `fn` in one transaction; nested calls join the outer one. */
  tx<T>(fn: (s: Store) => Promise<T>): Promise<T>;

  // policies
  publishPolicy(p: Omit<PolicyVersionRecord, 'version'>): Promise<PolicyVersionRecord>;
  policyVersion(version: number): Promise<PolicyVersionRecord | null>;
  latestPolicy(): Promise<PolicyVersionRecord | null>;
  policyHistory(): Promise<PolicyVersionRecord[]>;
  putDraft(d: DraftRecord): Promise<void>;
  draft(id: string): Promise<DraftRecord | null>;
  drafts(): Promise<DraftRecord[]>;
  deleteDraft(id: string): Promise<boolean>;

  // fleet
  putHost(h: HostV1): Promise<void>;
  host(name: string): Promise<HostV1 | null>;
  hosts(): Promise<HostV1[]>;
  putVm(v: VmRecord): Promise<void>;
  vm(name: string): Promise<VmRecord | null>;
  vms(host?: string): Promise<VmRecord[]>;
  deleteVm(name: string): Promise<boolean>;
  putResourceLabel(r: ResourceLabelRecord): Promise<void>;
  deleteResourceLabel(kind: ResourceKind, id: string): Promise<boolean>;
  resourceLabels(): Promise<ResourceLabelRecord[]>;

  // evidence and trust
  /** Remember a nonce issued for a VM, valid until `expiresAt`. */
  putNonce(vm: string, nonce: string, expiresAt: string): Promise<void>;
  /** Use a nonce once: `replayed` the second time, `stale` after it expired, `unknown` if never issued for this VM. */
  useNonce(vm: string, nonce: string, now: string): Promise<NonceOutcome>;
  integrity(vm: string): Promise<IntegrityRecord | null>;
  /** Write a VM's state and fingerprint. */
  putIntegrity(r: IntegrityRecord): Promise<void>;
  /**
   * Write many VMs' states at once (the group commit of evidence), each with its fingerprint and evidence when
   * given (see IntegrityWrite). A VM named twice: its last state and fingerprint, each of its evidence records.
   */
  putIntegrities(writes: readonly IntegrityWrite[]): Promise<void>;
  /** Append an evidence record to the log. */
  addEvidence(e: EvidenceRecord): Promise<void>;
  /** The VM's last evidence: the one written with its integrity state, else the newest of the log. */
  lastEvidence(vm: string): Promise<EvidenceRecord | null>;
  trust(vm: string): Promise<TrustRecord | null>;
  trusts(): Promise<TrustRecord[]>;
  /** Set a VM's trust and append the transition to its history (one transaction). */
  putTrust(r: TrustRecord, t: TrustTransitionV1): Promise<void>;
  /**
   * Record fresh evidence for a VM whose state does not change: sets only the `lastEvidence` of its existing trust
   * record (no transition, no history). False if the VM has no trust record.
   */
  touchTrust(vm: string, lastEvidence: string): Promise<boolean>;
  /** `touchTrust` for many VMs at once; the number of records changed (VMs without a record are skipped). */
  touchTrusts(touches: readonly { vm: string; lastEvidence: string }[]): Promise<number>;
  trustHistory(vm: string): Promise<TrustTransitionV1[]>;
  /** Register (or replace) a VM's attestation key; the caller decides whether a replacement is allowed. */
  putAttestationKey(vm: string, rec: Omit<AttestationKeyRecord, 'vm'>): Promise<void>;
  attestationKey(vm: string): Promise<AttestationKeyRecord | null>;

  // plans
  /** Store new plans; each host's version must be one more than its current one, or the whole call fails. */
  putPlans(plans: PlanV1[]): Promise<void>;
  plan(host: string): Promise<PlanV1 | null>;
  /** Every host's current plan, by host. */
  plans(): Promise<PlanV1[]>;

  /** The fleet generation (see the module comment): in a transaction, as it sees it. */
  fleetGeneration(): Promise<FleetGeneration>;
  /**
   * Move the fleet generation on now, as the first fleet write of this transaction would (nothing if it did
   * already), taking its lock until the commit: a writer that reads fleet state first and writes after calls this
   * first, so that no other writer's commit can come between its reads and its writes. The generation after.
   */
  lockFleet(): Promise<FleetGeneration>;
  /** Delete what has expired or aged out (see PruneRequest), in one transaction. */
  prune(p: PruneRequest): Promise<PruneCounts>;

  // audit
  appendAudit(r: AuditInput): Promise<AuditRecordV1>;
  audit(filter?: AuditFilter): Promise<AuditRecordV1[]>;

  // access
  putToken(t: TokenRecord): Promise<void>;
  tokenByHash(hash: string): Promise<TokenRecord | null>;
  tokens(): Promise<TokenRecord[]>;
  revokeToken(id: string, at: string): Promise<boolean>;
  putUser(u: UserRecord): Promise<void>;
  user(name: string): Promise<UserRecord | null>;
  putSession(s: SessionRecord): Promise<void>;
  session(hash: string): Promise<SessionRecord | null>;
  deleteSession(hash: string): Promise<void>;

  // events between controllers
  publish(e: StoreEvent): Promise<void>;
  subscribe(fn: (e: StoreEvent) => void): () => void;
}
