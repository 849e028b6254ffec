/**
 * A guest that keeps its own IMA list (shared with its host as a file): the agent forwards its new lines as they
 * are written, the controller enrolls the first measurement and cuts the VM off at the first changed digest. A real
 * controller on loopback; the driver is the simulated one and the enforcer the dry run (no root needed: the data
 * plane is tested elsewhere).
 */
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { Agent } from '../../src/agent/agent.ts';
import { ControllerClient } from '../../src/agent/controller-client.ts';
import { DryRunEnforcer } from '../../src/agent/dry-run.ts';
import { SimDriver } from '../../src/agent/sim-driver.ts';
import { formatAsciiLine } from '../../src/integrity/ima-entry.ts';
import { pathEntry } from '../../src/integrity/measure-entry.ts';
import { startController, type TestController } from '../support/controller.ts';
import { until as waitUntil } from '../support/until.ts';

let c: TestController;
let agent: Agent;
const driver = new SimDriver();
const line = (path: string, byte: number) => formatAsciiLine(pathEntry('file', path, new Uint8Array(32).fill(byte)));
const api = <T = any>(method: string, path: string, body?: unknown) => c.api<T>(method, path, body);
const until = (what: string, f: () => Promise<boolean>) => waitUntil(what, f);

before(async () => {
  c = await startController('h-ima', 'hg-e2e-imalog-');
  await c.publish(readFileSync(new URL('../../examples/demo.yaml', import.meta.url), 'utf8'), 'reject', 'ima log');
  const log = join(c.dir, 'guest-ima.log');
  writeFileSync(log, [line('/usr/bin/bash', 1), line('/usr/lib/libc.so.6', 2), line('/etc/hostname', 3)].join('\n') + '\n');
  driver.define({ name: 'g1', label: 'blue', running: true, ports: ['tapg1'], measure: { imaLog: log } });
  agent = new Agent({ controller: new ControllerClient(c.url, c.agentToken), host: 'h-ima', hostLabel: null, driver, enforcer: new DryRunEnforcer(() => {}), stateDir: join(c.dir, 'agent'), socket: null, reportMs: 100, log: () => {} });
  await agent.start();
});

after(async () => {
  await agent?.stop();
  await c?.close();
});

it('the guest\'s own list is enrolled, followed, and a changed digest in it cuts the VM off', async () => {
  await until('g1 trusted', async () => (await api('GET', '/api/v1/vms/g1/trust').catch(() => ({ state: '' }))).state === 'trusted');
  const history = await api<{ to: string; reason: string }[]>('GET', '/api/v1/vms/g1/trust/history');
  assert.ok(history.some((h) => h.to === 'trusted' && /from 3 entries/.test(h.reason)), JSON.stringify(history));
  // a line half written is not read until its newline comes
  const log = join(c.dir, 'guest-ima.log');
  const changed = line('/usr/bin/bash', 9);
  appendFileSync(log, changed.slice(0, 20));
  await new Promise((r) => setTimeout(r, 300));
  assert.equal((await api('GET', '/api/v1/vms/g1/trust')).state, 'trusted');
  appendFileSync(log, `${changed.slice(20)}\n`);
  await until('g1 untrusted', async () => (await api('GET', '/api/v1/vms/g1/trust')).state === 'untrusted');
  const t = await api<{ evidence: { failures: { path: string }[] } }>('GET', '/api/v1/vms/g1/trust');
  assert.deepEqual(t.evidence.failures.map((f) => f.path), ['/usr/bin/bash']);
  await until('g1 out of the plan\'s colors', async () => agent.plan?.vms.find((v) => v.name === 'g1')?.colors.length === 0);
});
