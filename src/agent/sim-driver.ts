/**
 * A simulated driver: VMs held in memory, changed by the test that owns it. For unit tests of the agent's own code
 * (the real drivers are tested by the same conformance suite against a real libvirtd and real namespaces).
 */
import type { Driver, DriverEvent, VmInfo } from './driver.ts';

export class SimDriver implements Driver {
  readonly kind = 'sim';
  readonly vms = new Map<string, VmInfo>();
  #listeners = new Set<(e: DriverEvent) => void>();

  #emit(e: DriverEvent): void {
    for (const l of this.#listeners) queueMicrotask(() => l(e));
  }

  define(vm: Partial<VmInfo> & { name: string }): void {
    const fresh = !this.vms.has(vm.name);
    this.vms.set(vm.name, { label: null, running: false, ports: [], resources: [], measure: {}, ...vm });
    if (fresh) this.#emit({ type: 'defined', vm: vm.name });
  }

  setRunning(name: string, running: boolean, ports: string[] = []): void {
    const vm = this.vms.get(name);
    if (!vm) throw new Error(`no VM ${name}`);
    vm.running = running;
    vm.ports = running ? ports : [];
    this.#emit({ type: running ? 'started' : 'stopped', vm: name });
  }

  undefine(name: string): void {
    if (this.vms.delete(name)) this.#emit({ type: 'undefined', vm: name });
  }

  async list(): Promise<VmInfo[]> {
    return [...this.vms.values()].map((v) => structuredClone(v));
  }

  async get(name: string): Promise<VmInfo | null> {
    const v = this.vms.get(name);
    return v ? structuredClone(v) : null;
  }

  async watch(listener: (event: DriverEvent) => void): Promise<() => void> {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.#listeners.clear();
  }
}
