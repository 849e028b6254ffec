/**
 * The dry-run enforcer: renders every plan as the `nft -f` transaction the nftables enforcer would run, hands the
 * text to `print` (standard output for `hueguard agent --dry-run`), and enforces nothing. It keeps what it would
 * enforce in memory so that the agent's reconcile and reporting paths behave the same as with nftables.
 */
import type { PlanV1 } from '../api/types.ts';
import { portsOfPlan, type DropCount, type Enforced, type Enforcer } from './enforcer.ts';
import { renderTransaction } from './nftables.ts';

export class DryRunEnforcer implements Enforcer {
  readonly kind = 'dry-run';
  #state: Enforced | null = null;
  #sets: string[] = [];
  readonly #print: (text: string) => void;

  constructor(print: (text: string) => void = (t) => process.stdout.write(t)) {
    this.#print = print;
  }

  async apply(plan: PlanV1): Promise<void> {
    const ports = portsOfPlan(plan);
    this.#print(`# plan ${plan.version} for host ${plan.host} (policy version ${plan.policyVersion})\n${renderTransaction(ports, this.#sets)}`);
    this.#sets = [...new Set([...ports.values()].flat())].map((_, i) => `c${i}`);
    this.#state = { ports: new Map([...ports].map(([p, cs]) => [p, [...cs]])) };
  }

  async current(): Promise<Enforced | null> {
    return this.#state && { ports: new Map([...this.#state.ports].map(([p, cs]) => [p, [...cs]])) };
  }

  async drops(): Promise<DropCount[]> {
    return [];
  }

  async remove(): Promise<void> {
    this.#state = null;
    this.#sets = [];
  }
}
