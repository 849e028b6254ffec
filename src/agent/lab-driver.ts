/**
 * The lab driver: the netns lab's VMs (lab.ts) as a host's VMs. Its truth is the lab's state file, which every
 * `hueguard lab` command rewrites (by rename); the driver watches the lab folder and turns each change into events.
 */
import { watch, type FSWatcher } from 'node:fs';
import type { Driver, DriverEvent, VmInfo } from './driver.ts';
import { readLab, type Lab, type LabVm } from './lab.ts';

export class LabDriver implements Driver {
  readonly kind = 'lab';
  readonly #dir: string;
  #watchers: FSWatcher[] = [];

  constructor(dir: string) {
    this.#dir = dir;
  }

  /** The lab's host namespace and bridge (where the enforcer's table goes), or null before `lab up`. */
  lab(): Lab | null {
    return readLab(this.#dir);
  }

  async list(): Promise<VmInfo[]> {
    const lab = readLab(this.#dir);
    return lab ? lab.vms.map(info) : [];
  }

  async get(name: string): Promise<VmInfo | null> {
    return (await this.list()).find((v) => v.name === name) ?? null;
  }

  async watch(listener: (event: DriverEvent) => void): Promise<() => void> {
    let known = new Map((readLab(this.#dir)?.vms ?? []).map((v) => [v.name, v.running]));
    let timer: NodeJS.Timeout | undefined;
    const check = () => {
      timer = undefined;
      let lab: Lab | null;
      try {
        lab = readLab(this.#dir);
      } catch {
        return; // a half-written file: the rename that completes it fires again
      }
      const now = new Map((lab?.vms ?? []).map((v) => [v.name, v.running]));
      for (const [name, running] of now) {
        const was = known.get(name);
        if (was === undefined) listener({ type: 'defined', vm: name });
        if (running && was !== true) listener({ type: 'started', vm: name });
        if (!running && was === true) listener({ type: 'stopped', vm: name });
      }
      for (const [name, running] of known) {
        if (now.has(name)) continue;
        if (running) listener({ type: 'stopped', vm: name });
        listener({ type: 'undefined', vm: name });
      }
      known = now;
    };
    const w = watch(this.#dir, () => {
      timer ??= setTimeout(check, 10);
    });
    this.#watchers.push(w);
    return () => {
      w.close();
      if (timer) clearTimeout(timer);
      this.#watchers = this.#watchers.filter((x) => x !== w);
    };
  }

  async close(): Promise<void> {
    for (const w of this.#watchers) w.close();
    this.#watchers = [];
  }
}

function info(v: LabVm): VmInfo {
  return { name: v.name, label: v.label, running: v.running, ports: v.running ? [v.port] : [], resources: [], measure: { root: v.root, ...(v.vtpm ? { tpm: {} } : {}) } };
}
