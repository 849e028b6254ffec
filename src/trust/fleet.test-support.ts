/** Policies and fleets for the trust engine's tests. */
import { compilePolicy, type CompiledPolicy } from '../monitor/compile.ts';
import { readPolicy } from '../policy/format.ts';
import { applyPolicy } from './engine.ts';
import { makeFleet, type Fleet, type FleetHost, type FleetVm, type TrustRecord, type TrustState } from './model.ts';

export const T0 = Date.parse('2025-01-01T00:00:00.000Z');

export function policyFrom(yaml: string): CompiledPolicy {
  const r = readPolicy(yaml);
  if (r.policy === null) throw new Error(`test policy does not read: ${JSON.stringify(r.diagnostics)}`);
  return compilePolicy(r.policy);
}

/** DESIGN.md's example, with a pepsi-only host label and an __UNLABELED__ label (see NO_UNLABELED for one without). */
export const ACME = `
policy: acme
version: "1"
colors: [pepsi, coke, infra]
walls: []
host: infra-host
labels:
  infra-host: { colors: [pepsi, coke, infra] }
  pepsi-host: { colors: [pepsi] }
  pepsi-web:  { colors: [pepsi] }
  coke-db:    { colors: [coke], onUntrusted: isolate }
  vio:        { colors: [pepsi, coke], onUntrusted: alert }
  __UNLABELED__: { colors: [infra] }
`;

export const NO_UNLABELED = ACME.replace(/^ {2}__UNLABELED__.*$/m, '');

export const vm = (name: string, host: string | null, label: string | null, extra: Partial<FleetVm> = {}): FleetVm => ({
  name,
  host,
  label,
  running: true,
  ports: [`tap-${name}`],
  ...extra,
});

export const trust = (vmName: string, state: TrustState, at = T0): TrustRecord => ({
  vm: vmName,
  state,
  since: new Date(at).toISOString(),
  reason: 'test',
  lastEvidence: state === 'trusted' ? new Date(at).toISOString() : null,
});

/**
 * A fleet of `hosts` hosts (`h0000`…) × `perHost` VMs (`h0000-v00`…), labels cycling pepsi-web, coke-db, vio, all
 * trusted at T0, with every host's first plan computed.
 */
export function bigFleet(hosts: number, perHost: number, policy = policyFrom(ACME)): Fleet {
  const labels = ['pepsi-web', 'coke-db', 'vio'];
  const hs: FleetHost[] = [];
  const vms: FleetVm[] = [];
  const tr: TrustRecord[] = [];
  for (let h = 0; h < hosts; h++) {
    const host = `h${String(h).padStart(4, '0')}`;
    hs.push({ name: host, label: null });
    for (let i = 0; i < perHost; i++) {
      const name = `${host}-v${String(i).padStart(2, '0')}`;
      vms.push(vm(name, host, labels[(h + i) % labels.length]));
      tr.push(trust(name, 'trusted'));
    }
  }
  const f = makeFleet({ policy, policyVersion: 1, hosts: hs, vms, trust: tr });
  return applyPolicy(f, policy, 1).fleet;
}
