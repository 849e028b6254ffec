/**
 * The live fleet as the reference monitor sees it: the store's hosts, VMs and resource labels, turned into the
 * `RunningState` a policy update is replayed against (every running VM per host, in start order) and into the
 * labels an admission is decided from.
 *
 * The store may hold facts the policy cannot judge (a VM reported with a label the policy lacks, a host label it
 * does not define, an unlabeled VM or disk without `__UNLABELED__`). Such VMs are left out of the replay and listed
 * as `unmanaged`, with the reason: the monitor's transaction judges only what the current policy can name.
 */
import type { HostV1, ResourceKind } from '../api/types.ts';
import type { CompiledPolicy } from '../monitor/compile.ts';
import type { RunningHost, RunningState } from '../monitor/update.ts';
import { UNLABELED } from '../policy/model.ts';
import type { ResourceLabelRecord, Store, VmRecord } from '../store/store.ts';

export interface Fleet {
  hosts: HostV1[];
  vms: VmRecord[];
  resourceLabels: ResourceLabelRecord[];
}

export async function loadFleet(s: Store): Promise<Fleet> {
  const [hosts, vms, resourceLabels] = await Promise.all([s.hosts(), s.vms(), s.resourceLabels()]);
  return { hosts, vms, resourceLabels };
}

const resourceKey = (kind: ResourceKind, id: string) => `${kind}\u0000${id}`;

/** (kind, id) → the resource label an operator gave it. */
export function resourceLabelMap(labels: readonly ResourceLabelRecord[]): Map<string, string> {
  return new Map(labels.map((r) => [resourceKey(r.kind, r.id), r.label]));
}

export function resourceLabelOf(map: Map<string, string>, kind: ResourceKind, id: string): string | null {
  return map.get(resourceKey(kind, id)) ?? null;
}

/** Running VMs in the order they started (a VM with no start number last, then by name). */
export function inStartOrder(vms: readonly VmRecord[]): VmRecord[] {
  return vms
    .filter((v) => v.running)
    .sort((a, b) => (a.startedSeq ?? Infinity) - (b.startedSeq ?? Infinity) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export type UnmanagedReason = 'host_label_unknown' | 'label_unknown' | 'unlabeled' | 'resource_label_unknown' | 'resource_unlabeled';

export interface Unmanaged {
  host: string;
  vm: string;
  reason: UnmanagedReason;
  message: string;
  /** the disk or network at fault */
  resource?: { kind: ResourceKind; id: string };
}

/**
 * The running state of the fleet under `base` (the policy it is judged by: the current one). Host labels, VM
 * labels and resource labels the base policy does not define are left out, each with a reason in `unmanaged`;
 * a VM that uses such a resource is replayed without it.
 */
export function runningState(base: CompiledPolicy, fleet: Fleet): { state: RunningState; unmanaged: Unmanaged[] } {
  const unmanaged: Unmanaged[] = [];
  const resources = resourceLabelMap(fleet.resourceLabels);
  const hostRecords = new Map(fleet.hosts.map((h) => [h.name, h]));
  const byHost = new Map<string, VmRecord[]>();
  for (const v of inStartOrder(fleet.vms)) {
    if (v.host === null) continue;
    const list = byHost.get(v.host);
    if (list === undefined) byHost.set(v.host, [v]);
    else list.push(v);
  }
  const hosts: RunningHost[] = [];
  for (const [name, vms] of [...byHost].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const label = hostRecords.get(name)?.label ?? null;
    if (label !== null && base.labelIndex(label) < 0) {
      for (const v of vms) {
        unmanaged.push({ host: name, vm: v.name, reason: 'host_label_unknown', message: `host "${name}" has label "${label}", which the policy does not define` });
      }
      continue;
    }
    const host: RunningHost = { name, ...(label === null ? {} : { label }), vms: [] };
    for (const v of vms) {
      if (v.label === null && base.unlabeled < 0) {
        unmanaged.push({ host: name, vm: v.name, reason: 'unlabeled', message: `VM "${v.name}" is unlabeled and the policy has no ${UNLABELED} label` });
        continue;
      }
      if (v.label !== null && base.labelIndex(v.label) < 0) {
        unmanaged.push({ host: name, vm: v.name, reason: 'label_unknown', message: `VM "${v.name}" has label "${v.label}", which the policy does not define` });
        continue;
      }
      const used: string[] = [];
      for (const r of v.resources) {
        const rl = resourceLabelOf(resources, r.kind, r.id) ?? (base.unlabeledResource >= 0 ? UNLABELED : null);
        if (rl === null) {
          unmanaged.push({ host: name, vm: v.name, resource: r, reason: 'resource_unlabeled', message: `${r.kind} "${r.id}" of VM "${v.name}" is unlabeled and the policy has no ${UNLABELED} resource label` });
        } else if (base.resourceIndex(rl) < 0) {
          unmanaged.push({ host: name, vm: v.name, resource: r, reason: 'resource_label_unknown', message: `${r.kind} "${r.id}" of VM "${v.name}" has resource label "${rl}", which the policy does not define` });
        } else used.push(rl);
      }
      host.vms.push({ name: v.name, label: v.label, ...(used.length > 0 ? { resources: used } : {}) });
    }
    hosts.push(host);
  }
  return { state: { hosts }, unmanaged };
}
