/**
 * Wire types of the HTTP API v1, shared by the controller, the agent and the console. The controller and the agent
 * never import each other: this module is all they share. Every type is plain JSON (no Dates, no bigints).
 */

export type Role = 'viewer' | 'operator' | 'admin' | 'agent';
export const ROLES: readonly Role[] = ['viewer', 'operator', 'admin', 'agent'];

export type TrustState = 'unverified' | 'trusted' | 'untrusted' | 'unreachable';

/** An error answer: a stable code (see server/errors.ts), a message, and details such as the field at fault. */
export interface ErrorV1 {
  code: string;
  message: string;
  details?: unknown;
}

export interface HostV1 {
  name: string;
  /** the host's label; the policy's bootstrap label when null */
  label: string | null;
  /** ISO time of the agent's last report, null if none yet */
  lastSeen: string | null;
}

export type ResourceKind = 'disk' | 'network';

export interface VmResourceV1 {
  kind: ResourceKind;
  /** an image path, or a network name */
  id: string;
}

export interface VmV1 {
  name: string;
  host: string | null;
  /** null: unlabeled (the policy's __UNLABELED__, where it has one) */
  label: string | null;
  running: boolean;
  /** bridge ports (tap or veth names) of the VM's interfaces */
  ports: string[];
  resources: VmResourceV1[];
  trust: TrustState;
  /** the colors enforcement uses now: the label's while trusted (or alert-only), none once isolated */
  effectiveColors: string[];
}

export interface TrustTransitionV1 {
  vm: string;
  from: TrustState;
  to: TrustState;
  at: string;
  /** why: the failing entries' summary, a deadline missed, an operator's re-admission reason */
  reason: string;
  actor: string;
}

/** What one host must enforce (DESIGN.md §1): a new version whenever any of it changes. */
export interface PlanV1 {
  host: string;
  version: number;
  /** the published policy version the plan was computed from */
  policyVersion: number;
  vms: PlanVmV1[];
}

export interface PlanVmV1 {
  name: string;
  ports: string[];
  /** effective colors: empty when isolated (or unlabeled without __UNLABELED__) */
  colors: string[];
  /** why it has no colors, when it has none */
  isolated?: string;
}

export interface AuditRecordV1 {
  seq: number;
  at: string;
  actor: string;
  action: string;
  subject: string;
  details: unknown;
  /** hex SHA-256 of the previous record's hash and this record's canonical content */
  hash: string;
  prevHash: string;
}
