/**
 * VMs as the API shows them (`VmV1`): the store's record, its trust state, and the colors enforcement gives it now
 * (the trust engine's `effectiveColors`: fail closed, with the reason when it has none).
 */
import type { HostV1, VmV1 } from '../api/types.ts';
import type { TrustRecord, VmRecord } from '../store/store.ts';
import { effectiveColors } from '../trust/effective-colors.ts';
import type { CurrentPolicy } from './context.ts';

export type VmViewV1 = VmV1 & { isolated?: string };

export function vmView(v: VmRecord, trust: TrustRecord | undefined, host: HostV1 | undefined, policy: CurrentPolicy | null): VmViewV1 {
  const state = trust?.state ?? 'unverified';
  const base = { name: v.name, host: v.host, label: v.label, running: v.running, ports: v.ports, resources: v.resources, trust: state };
  if (policy === null) return { ...base, effectiveColors: [], isolated: 'no policy is published' };
  const e = effectiveColors(policy.compiled, v, state, host);
  return { ...base, effectiveColors: e.colors, ...(e.isolated === undefined ? {} : { isolated: e.isolated }) };
}

/** Views of many VMs, with one read of hosts and trust. */
export async function vmViews(
  vms: readonly VmRecord[],
  load: { hosts: () => Promise<HostV1[]>; trusts: () => Promise<TrustRecord[]> },
  policy: CurrentPolicy | null,
): Promise<VmViewV1[]> {
  const [hosts, trusts] = await Promise.all([load.hosts(), load.trusts()]);
  const h = new Map(hosts.map((x) => [x.name, x]));
  const t = new Map(trusts.map((x) => [x.vm, x]));
  return vms.map((v) => vmView(v, t.get(v.name), v.host === null ? undefined : h.get(v.host), policy));
}
