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

/** `POST /api/v1/admission`: may this VM start on this host now? */
export interface AdmissionRequestV1 {
  host: string;
  vm: string;
  /** the VM's label, when the agent read one from the domain; the store's otherwise */
  label?: string | null;
  /** its disks and networks; the store's record of them otherwise */
  resources?: VmResourceV1[];
}

/** One VM in an agent's report. */
export interface ReportedVmV1 {
  name: string;
  /** the label in the domain's metadata, if any: used only while the controller has none for the VM */
  label?: string | null;
  running: boolean;
  ports?: string[];
  resources?: VmResourceV1[];
}

/** `PUT /api/v1/hosts/:name/vms`: every VM defined on the host, running ones in the order they started. */
export interface HostInventoryV1 {
  vms: ReportedVmV1[];
}

/** `PUT /api/v1/vms/:name/label` */
export interface VmLabelRequestV1 {
  /** null: unlabeled */
  label: string | null;
  reason?: string;
}

/** `POST /api/v1/vms/:name/nonce`: a fresh nonce for the VM's next quote, usable once, until `expiresAt`. */
export interface NonceV1 {
  /** hex; give it to `tpm2_quote -q` */
  nonce: string;
  expiresAt: string;
}

/** A TPM quote over the VM's PCR 10, against a nonce the controller issued (`NonceV1`). */
export interface QuoteV1 {
  /** TPMS_ATTEST (`tpm2_quote -m`), base64 */
  attest: string;
  /** TPMT_SIGNATURE (`tpm2_quote -s`), base64 */
  signature: string;
  /** the nonce, hex, as issued */
  nonce: string;
  /** the quoted PCR values: base64 of `tpm2_quote -o`, or `{ bank: { pcr: hex } }` */
  pcrs?: string | Record<string, Record<string, string>>;
}

/** `POST /api/v1/vms/:name/evidence`: the entries of the VM's measurement list after those sent before. */
export interface EvidenceRequestV1 {
  /** ascii `ima-ng` lines, as `hueguard measure` prints them */
  entries: string[];
  /** how many entries of the list come before these (409 `evidence_out_of_order`, `details.expected`, if wrong) */
  from?: number;
  /** the VM booted again: its list starts anew (`from` 0) */
  reboot?: boolean;
  quote?: QuoteV1;
}

/** One measurement that failed appraisal. */
export interface EntryFailureV1 {
  /** 1-based number in the VM's list */
  entry: number;
  path: string;
  /** mismatch, unknown, bad-signature… */
  status: string;
  /** the digests the golden fingerprint accepts (empty: the path is not in it) */
  expected: string[];
  found: string;
  alg: string;
}

export interface TrustRecordV1 {
  vm: string;
  state: TrustState;
  since: string | null;
  reason: string;
  /** ISO time of the last fresh, good evidence; null if none yet */
  lastEvidence: string | null;
}

/** The answer to evidence. */
export interface EvidenceAnswerV1 {
  verdict: {
    ok: boolean;
    /** good, attested evidence (what makes a VM trusted) */
    fresh: boolean;
    enrolled: boolean;
    appraised: number;
    waiting: number;
    summary: string;
    failures: EntryFailureV1[];
    quote?: { valid: boolean; failed: string | null; detail: string; covered: number };
  };
  trust: TrustRecordV1;
  /** the new plan version of the VM's host, when this evidence changed it */
  planVersion?: number;
}

/** `GET /api/v1/vms/:name/trust` */
export interface VmTrustV1 extends TrustRecordV1 {
  /** the last evidence received (good or not), with its failing entries */
  evidence: { at: string; entries: number; ok: boolean; failures: EntryFailureV1[] } | null;
}

/** `POST /api/v1/vms/:name/readmit` (an untrusted VM only) */
export interface ReadmitRequestV1 {
  reason: string;
  /** baseline: the list so far is history, carry on; reenroll: the whole list again becomes the fingerprint */
  mode: 'baseline' | 'reenroll';
}

/** One VM's increment in a host's evidence request: the per-VM request (`EvidenceRequestV1`) and the VM's name. */
export interface VmEvidenceV1 extends EvidenceRequestV1 {
  vm: string;
}

/**
 * `POST /api/v1/hosts/:name/evidence`: the increments of the host's VMs for one reporting period (the agent is per
 * host: one request, not one per VM). Each VM at most once; every VM must be on the host.
 */
export interface HostEvidenceRequestV1 {
  vms: VmEvidenceV1[];
}

/** One VM's line of the answer: its answer as the per-VM route gives it, or why its increment was refused. */
export type VmEvidenceResultV1 = ({ vm: string } & EvidenceAnswerV1) | { vm: string; error: ErrorV1 };

/** The answer to a host's evidence. */
export interface HostEvidenceAnswerV1 {
  host: string;
  /** one per VM of the request, in its order */
  results: VmEvidenceResultV1[];
  /** how many VMs' increments were refused (results with an `error`: nothing of theirs was stored) */
  refused: number;
  /** the host's new plan version, when this evidence (or evidence stored with it) changed it */
  planVersion?: number;
}

/** `POST /api/v1/hosts/:name/nonces` `{vms: [names]}`: a nonce for each VM's next quote. */
export interface HostNoncesV1 {
  nonces: ({ vm: string } & NonceV1)[];
}

/** Frames the host's data plane dropped from one VM's port to another's, since the agent's last report. */
export interface BlockedV1 {
  /** the VMs of the ports (null: a port the plan does not know) */
  from: string | null;
  to: string | null;
  fromPort: string;
  toPort: string;
  packets: number;
  bytes: number;
  /** isolated: either VM is isolated (untrusted, unlabeled…); no_common_color: both have colors, none shared; unknown_port */
  reason: 'isolated' | 'no_common_color' | 'unknown_port';
}

/** `PUT /api/v1/hosts/:name/report`: what the host's agent enforces, and whom it stopped. */
export interface HostReportV1 {
  /** the plan version in force on the host (null: none yet, so every port is dropped) */
  appliedPlan: number | null;
  /** the last plan the agent could not apply, and why (the applied one stays in force); null when none failed */
  planError: { version: number; message: string } | null;
  blocked: BlockedV1[];
}

/** Dropped frames added up per (host, from port, to port) since this controller started (`GET /api/v1/blocked`). */
export interface BlockedTotalV1 extends BlockedV1 {
  host: string;
  firstAt: string;
  lastAt: string;
}

/** A problem in policy text, placed (`422 policy_invalid` lists them in `details.diagnostics`; validate's warnings). */
export interface DiagnosticV1 {
  file: string;
  /** 1-based; 1 when the problem has no place (a missing field) */
  line: number;
  column: number;
  code: string;
  message: string;
  severity: 'error' | 'warning';
  /** where in the model, e.g. ["labels", 3, "walls", 1] */
  path?: (string | number)[];
}

export type AdmissionReason =
  | 'allowed'
  | 'unknown_label'
  | 'unlabeled'
  | 'host_label_unknown'
  | 'not_authorized'
  | 'conflict_set_occupied'
  | 'unknown_resource'
  | 'unlabeled_resource'
  | 'resource_forbidden';

/** The monitor's explanations as they travel (monitor/decisions.ts and chinese-wall.ts compute them). */
export interface AuthorizedAnswerV1 {
  allow: boolean;
  reason: 'host_covers' | 'not_authorized' | 'no_ste_component';
  /** the VM's colors the host label lacks */
  missing: string[];
}

export interface UseAnswerV1 {
  allow: boolean;
  reason: 'color_match' | 'color_mismatch' | 'no_ste_component';
  /** the resource's color */
  color: string;
}

export interface StartAnswerV1 {
  allow: boolean;
  reason: 'no_conflict' | 'conflict_set_occupied' | 'no_chwall_component';
  blockers: { conflictSet: string; wall: string; runningLabel: string; runningWall: string; running: number }[];
}

export interface AdmissionResourceV1 extends VmResourceV1 {
  label: string | null;
  allow: boolean;
  answer?: UseAnswerV1;
  reason?: AdmissionReason;
}

/** The answer to `POST /api/v1/admission` and `POST /api/v1/whatif/start`: the first failing check, and every check. */
export interface AdmissionAnswerV1 {
  allow: boolean;
  reason: AdmissionReason;
  details: {
    message: string;
    host: string;
    hostLabel: string | null;
    vm: string;
    label: string | null;
    policyVersion: number;
    authorized?: AuthorizedAnswerV1;
    start?: StartAnswerV1;
    /** the labels counted on the host, in order (the host label first) */
    running?: string[];
    /** for each blocker of `start`: the running VMs (by name) whose label holds the conflict set (`host` for the host label) */
    standing?: { conflictSet: string; runningLabel: string; vms: string[] }[];
    resources: AdmissionResourceV1[];
  };
}

/** The answer to `POST /api/v1/whatif/share`: may two VMs talk, by policy and now. */
export interface WhatIfShareV1 {
  /** the policy allows it (their labels share a color) */
  allow: boolean;
  /** and enforcement lets them talk right now (both hold a shared color among their effective colors) */
  now: boolean;
  reason: 'common_color' | 'no_common_color' | 'no_ste_component' | 'unknown_label' | 'isolated';
  /** the colors both labels hold */
  colors: string[];
  /** the shared colors they hold right now */
  nowColors: string[];
  message: string;
  vms: { name: string; host: string | null; label: string | null; trust: TrustState; effectiveColors: string[]; isolated?: string }[];
}
