/**
 * The VM `Driver`: what the agent knows of the VMs on its host. One interface, three implementations (libvirt,
 * the netns lab, a simulated one for unit tests), one conformance suite (driver-conformance.ts).
 */
import type { VmResourceV1 } from '../api/types.ts';

/** What the agent measures of a VM (the integrity issue's measurer does the hashing). */
export interface MeasureTargets {
  /** a folder measured as the VM's file tree, watched for changes (lab VMs) */
  root?: string;
  /** the domain definition, measured normalised (libvirt) */
  domainXml?: string;
  /** kernel, initrd and disk images, measured at launch */
  images?: string[];
  /** the guest's own IMA list, where it provides one */
  imaLog?: string;
  /**
   * a (v)TPM the host can quote: every entry extends its PCR 10 and each increment carries a quote over the
   * controller's nonce. `{}`: the agent runs a swtpm for the VM (lab VMs); `{ tcti }`: a TPM reachable there.
   */
  tpm?: { tcti?: string };
}

export interface VmInfo {
  name: string;
  /** the label the VM's definition carries (hueguard's namespace in libvirt's `<metadata>`), null if none */
  label: string | null;
  running: boolean;
  /** bridge ports of its interfaces (tap or veth names), while running */
  ports: string[];
  /** its disks and networks, for their resource labels */
  resources: VmResourceV1[];
  measure: MeasureTargets;
}

export type DriverEventType = 'defined' | 'undefined' | 'started' | 'stopped' | 'migrated';

export interface DriverEvent {
  type: DriverEventType;
  vm: string;
}

export interface Driver {
  readonly kind: string;
  /** Every VM defined on the host, running ones first in the order they started when the driver knows it. */
  list(): Promise<VmInfo[]>;
  /** One VM, or null. */
  get(name: string): Promise<VmInfo | null>;
  /** Follow lifecycle events until the returned function is called. */
  watch(listener: (event: DriverEvent) => void): Promise<() => void>;
  close(): Promise<void>;
}
