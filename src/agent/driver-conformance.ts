/**
 * The Driver conformance suite (node:test), written once and run by every driver: the simulated one
 * (`sim-driver.test.ts`), the netns lab (`lab-driver.test.ts`, as root) and libvirt (`libvirt.test.ts`, against a
 * real libvirtd). Each fixture makes, starts and stops VMs its own way; the suite checks what `driver.ts` promises.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Driver, DriverEvent } from './driver.ts';

export interface DriverFixture {
  driver: Driver;
  /** Define a VM with this label (null: none); it is not running afterwards unless `startsRunning`. */
  define(name: string, label: string | null): Promise<void>;
  start(name: string): Promise<void>;
  stop(name: string): Promise<void>;
  undefine(name: string): Promise<void>;
  /** a new VM is running as soon as it is defined (the lab) */
  startsRunning?: boolean;
}

export interface DriverBackend {
  unavailable(): string | null;
  setup(): Promise<DriverFixture>;
  teardown(): Promise<void>;
}

/** Wait until `pred` holds over the events seen so far (drivers report asynchronously). */
async function until(events: DriverEvent[], pred: (e: DriverEvent) => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!events.some(pred)) {
    if (Date.now() > end) throw new Error(`no ${what} event within ${ms} ms; saw ${JSON.stringify(events)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function runDriverConformance(name: string, backend: DriverBackend): void {
  const why = backend.unavailable();
  if (why) console.log(`# SKIP driver conformance (${name}): ${why}`);
  describe(`Driver conformance: ${name}`, { skip: why ?? false }, () => {
    let f: DriverFixture;
    const events: DriverEvent[] = [];
    let unwatch: () => void = () => {};
    before(async () => {
      f = await backend.setup();
      unwatch = await f.driver.watch((e) => events.push(e));
    });
    after(async () => {
      unwatch();
      await f?.driver.close();
      await backend.teardown();
    });

    it('lists a defined VM with the label its definition carries', async () => {
      await f.define('conf-a', 'blue');
      const vm = await f.driver.get('conf-a');
      assert.ok(vm, 'get finds it');
      assert.equal(vm.name, 'conf-a');
      assert.equal(vm.label, 'blue');
      assert.ok((await f.driver.list()).some((v) => v.name === 'conf-a'));
      await until(events, (e) => e.vm === 'conf-a' && (e.type === 'defined' || e.type === 'started'), 'defined');
    });

    it('a VM without a label lists with label null', async () => {
      await f.define('conf-n', null);
      assert.equal((await f.driver.get('conf-n'))?.label, null);
    });

    it('start and stop are events, and a running VM has its bridge ports', async () => {
      if (!f.startsRunning) {
        assert.equal((await f.driver.get('conf-a'))?.running, false);
        await f.start('conf-a');
      }
      await until(events, (e) => e.vm === 'conf-a' && e.type === 'started', 'started');
      const up = await f.driver.get('conf-a');
      assert.equal(up?.running, true);
      assert.ok(up!.ports.length >= 1, `ports: ${JSON.stringify(up!.ports)}`);
      for (const p of up!.ports) assert.match(p, /^[A-Za-z0-9_.:@+-]{1,15}$/);
      await f.stop('conf-a');
      await until(events, (e) => e.vm === 'conf-a' && e.type === 'stopped', 'stopped');
      assert.equal((await f.driver.get('conf-a'))?.running, false);
    });

    it('undefining is an event and the VM is gone', async () => {
      await f.undefine('conf-n');
      await until(events, (e) => e.vm === 'conf-n' && e.type === 'undefined', 'undefined');
      assert.equal(await f.driver.get('conf-n'), null);
      assert.ok(!(await f.driver.list()).some((v) => v.name === 'conf-n'));
    });

    it('get of an unknown VM is null', async () => {
      assert.equal(await f.driver.get('no-such-vm-here'), null);
    });
  });
}
