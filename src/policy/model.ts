/**
 * The policy model: what every format (native YAML, Xen ACM XML) reads into and writes from.
 *
 * Arrays keep the order of the source so that an export reproduces it; names are unique within each kind.
 * `colors` / `walls` are `null` when the policy has no STE / Chinese Wall component at all (Xen's
 * Chinese-Wall-only and STE-only policies): such a component restricts nothing (DESIGN.md §2).
 */

/** What happens to a VM of this label when it turns untrusted. */
export type TrustRule = 'isolate' | 'alert';

/** The label Xen gives every unlabeled VM and resource, where the policy defines it. */
export const UNLABELED = '__UNLABELED__';

export interface ConflictSet {
  name: string;
  /** wall types; of these, at most one may be running on a host at a time */
  walls: string[];
}

/** A VM label: its colors (STE types), its wall types (CHWALL types) and its trust rule. */
export interface Label {
  name: string;
  colors: string[];
  walls: string[];
  onUntrusted: TrustRule;
  /** the label's name in the policy this one updates (Xen's `from=` rename) */
  from?: string;
}

/** A resource label (disk image, network, VLAN): exactly one color. */
export interface ResourceLabel {
  name: string;
  color: string;
  from?: string;
}

/** The policy this one updates (Xen's `<FromPolicy>`). */
export interface FromPolicy {
  name: string;
  version: string;
}

export interface Policy {
  name: string;
  version: string;
  /** STE types; null = no STE component */
  colors: string[] | null;
  /** Chinese Wall types; null = no Chinese Wall component */
  walls: string[] | null;
  conflicts: ConflictSet[];
  /** the bootstrap (host) label's name; null only for a policy with neither component (Xen's NULL policy) */
  host: string | null;
  labels: Label[];
  resources: ResourceLabel[];
  from?: FromPolicy;
  /** facts kept for a faithful Xen export; they change no decision */
  meta?: PolicyMeta;
}

export interface PolicyMeta {
  /** Xen's PolicyHeader/Date */
  date?: string;
  /** Xen's PolicyHeader/PolicyUrl */
  url?: string;
  /** which component Xen marked `priority="PrimaryPolicyComponent"` */
  primary?: 'ste' | 'chwall';
}

/** A path into the model, e.g. ['labels', 3, 'walls', 1]: how diagnostics name the place of a problem. */
export type ModelPath = ReadonlyArray<string | number>;
