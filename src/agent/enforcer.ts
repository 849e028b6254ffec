/**
 * The `Enforcer`: what turns a host's plan into the data plane. One interface, two implementations (nftables, dry
 * run), one conformance suite (enforcer-conformance.ts). A plan is applied whole or not at all; the last good
 * ruleset stays in force when an apply fails.
 */
import type { PlanV1 } from '../api/types.ts';
import { AgentError } from './errors.ts';

/** What the data plane holds: each managed port and the colors it is a member of (none = talks to no one). */
export interface Enforced {
  ports: Map<string, string[]>;
}

/** Frames dropped in the kernel from one bridge port to another, counted since the table was made. */
export interface DropCount {
  from: string;
  to: string;
  packets: number;
  bytes: number;
}

export interface Enforcer {
  readonly kind: string;
  /** Apply a plan atomically. Throws `AgentError` (`bad_plan`, `enforce_failed`) and changes nothing on failure. */
  apply(plan: PlanV1): Promise<void>;
  /** Read back what the data plane enforces now (null: nothing of ours is installed). */
  current(): Promise<Enforced | null>;
  /** The kernel's per-pair drop counters. */
  drops(): Promise<DropCount[]>;
  /** Remove everything this enforcer installed (used by `lab down` and tests; an agent that stops leaves it). */
  remove(): Promise<void>;
}

/** Linux interface names: at most 15 bytes; we also keep to characters nft and the shell-free exec pass as is. */
const PORT = /^[A-Za-z0-9_.:@+-]{1,15}$/;

/** The port → colors table a plan asks for. Validates every name first: a bad plan changes nothing. */
export function portsOfPlan(plan: PlanV1): Map<string, string[]> {
  const ports = new Map<string, string[]>();
  plan.vms.forEach((vm, i) => {
    vm.ports.forEach((port, j) => {
      if (typeof port !== 'string' || !PORT.test(port)) {
        throw new AgentError('bad_plan', `plan ${plan.version} vms[${i}].ports[${j}]: ${JSON.stringify(port)} is not a Linux interface name`, {
          field: `vms[${i}].ports[${j}]`,
        });
      }
      if (ports.has(port)) {
        throw new AgentError('bad_plan', `plan ${plan.version} vms[${i}].ports[${j}]: port ${port} appears twice`, { field: `vms[${i}].ports[${j}]` });
      }
      vm.colors.forEach((c, k) => {
        if (typeof c !== 'string' || c.length === 0 || c.length > 256) {
          throw new AgentError('bad_plan', `plan ${plan.version} vms[${i}].colors[${k}]: not a color name`, { field: `vms[${i}].colors[${k}]` });
        }
      });
      ports.set(port, [...new Set(vm.colors)].sort());
    });
  });
  return ports;
}

/** Two enforced states are equal when every port has the same colors. */
export function sameEnforced(a: Enforced | null, b: Enforced | null): boolean {
  if (!a || !b) return a === b;
  if (a.ports.size !== b.ports.size) return false;
  for (const [port, colors] of a.ports) {
    const other = b.ports.get(port);
    if (!other || other.length !== colors.length || other.some((c, i) => c !== colors[i])) return false;
  }
  return true;
}
