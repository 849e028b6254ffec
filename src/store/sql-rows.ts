/**
 * Rows ↔ records for the SQL stores: the column lists both backends select and how a row becomes a record. Kept
 * apart from `sql-store.ts` so that file reads as what each method does, not how columns are spelled. Values are
 * normalised here because the drivers differ: PostgreSQL returns BIGINT as a string and BOOLEAN as true/false,
 * SQLite returns numbers and 0/1.
 */
import type { AuditRecordV1, HostV1, PlanV1, ResourceKind, Role, TrustState, TrustTransitionV1 } from '../api/types.ts';
import type {
  DraftRecord,
  EvidenceRecord,
  PolicyVersionRecord,
  ResourceLabelRecord,
  SessionRecord,
  TokenRecord,
  TrustRecord,
  UserRecord,
  VmRecord,
} from './store.ts';

export type Row = Record<string, unknown>;

const str = (v: unknown): string => String(v);
const strOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));
const num = (v: unknown): number => Number(v);
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const bool = (v: unknown): boolean => v === true || v === 1 || v === '1' || v === 't';
const json = (v: unknown): unknown => JSON.parse(String(v));

export const POLICY_COLUMNS = 'version, name, policy_version, yaml, note, actor, at';
export const toPolicy = (r: Row): PolicyVersionRecord => ({
  version: num(r.version),
  name: str(r.name),
  policyVersion: str(r.policy_version),
  yaml: str(r.yaml),
  note: str(r.note),
  actor: str(r.actor),
  at: str(r.at),
});

export const DRAFT_COLUMNS = 'id, yaml, base, actor, updated_at';
export const toDraft = (r: Row): DraftRecord => ({
  id: str(r.id),
  yaml: str(r.yaml),
  base: numOrNull(r.base),
  actor: str(r.actor),
  updatedAt: str(r.updated_at),
});

export const HOST_COLUMNS = 'name, label, last_seen';
export const toHost = (r: Row): HostV1 => ({ name: str(r.name), label: strOrNull(r.label), lastSeen: strOrNull(r.last_seen) });

export const VM_COLUMNS = 'name, host, label, running, ports, resources, started_seq, revoked';
export const toVm = (r: Row): VmRecord => {
  const v: VmRecord = {
    name: str(r.name),
    host: strOrNull(r.host),
    label: strOrNull(r.label),
    running: bool(r.running),
    ports: json(r.ports) as string[],
    resources: json(r.resources) as VmRecord['resources'],
    startedSeq: numOrNull(r.started_seq),
  };
  // present only when set: a record written without it reads back as it was
  if (r.revoked !== null && r.revoked !== undefined) v.revoked = json(r.revoked) as VmRecord['revoked'];
  return v;
};

export const RESOURCE_LABEL_COLUMNS = 'kind, id, label';
export const toResourceLabel = (r: Row): ResourceLabelRecord => ({ kind: str(r.kind) as ResourceKind, id: str(r.id), label: str(r.label) });

export const EVIDENCE_COLUMNS = 'vm, at, entries, ok, failures';
export const toEvidence = (r: Row): EvidenceRecord => ({
  vm: str(r.vm),
  at: str(r.at),
  entries: num(r.entries),
  ok: bool(r.ok),
  failures: json(r.failures) as unknown[],
});

export const TRUST_COLUMNS = 'vm, state, since, reason, last_evidence';
export const toTrust = (r: Row): TrustRecord => ({
  vm: str(r.vm),
  state: str(r.state) as TrustState,
  since: str(r.since),
  reason: str(r.reason),
  lastEvidence: strOrNull(r.last_evidence),
});

export const TRANSITION_COLUMNS = 'vm, from_state, to_state, at, reason, actor';
export const toTransition = (r: Row): TrustTransitionV1 => ({
  vm: str(r.vm),
  from: str(r.from_state) as TrustState,
  to: str(r.to_state) as TrustState,
  at: str(r.at),
  reason: str(r.reason),
  actor: str(r.actor),
});

export const PLAN_COLUMNS = 'host, version, policy_version, vms';
export const toPlan = (r: Row): PlanV1 => ({
  host: str(r.host),
  version: num(r.version),
  policyVersion: num(r.policy_version),
  vms: json(r.vms) as PlanV1['vms'],
});

export const AUDIT_COLUMNS = 'seq, at, actor, action, subject, details, hash, prev_hash';
export const toAudit = (r: Row): AuditRecordV1 => ({
  seq: num(r.seq),
  at: str(r.at),
  actor: str(r.actor),
  action: str(r.action),
  subject: str(r.subject),
  details: json(r.details),
  hash: str(r.hash),
  prevHash: str(r.prev_hash),
});

export const TOKEN_COLUMNS = 'id, name, role, host, hash, created_at, revoked_at';
export const toToken = (r: Row): TokenRecord => ({
  id: str(r.id),
  name: str(r.name),
  role: str(r.role) as Role,
  host: strOrNull(r.host),
  hash: str(r.hash),
  createdAt: str(r.created_at),
  revokedAt: strOrNull(r.revoked_at),
});

export const USER_COLUMNS = 'name, role, password_hash';
export const toUser = (r: Row): UserRecord => ({ name: str(r.name), role: str(r.role) as Role, passwordHash: str(r.password_hash) });

export const SESSION_COLUMNS = 'hash, user_name, role, csrf, expires_at';
export const toSession = (r: Row): SessionRecord => ({
  hash: str(r.hash),
  user: str(r.user_name),
  role: str(r.role) as Role,
  csrf: str(r.csrf),
  expiresAt: str(r.expires_at),
});
