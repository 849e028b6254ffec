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
/** every VM increment the agent sent, in order */
const sentVms: { vm: string; from?: number; reboot: boolean; entries: number }[] = [];
const line = (path: string, byte: number) => formatAsciiLine(pathEntry('file', path, new Uint8Array(32).fill(byte)));
const api = <T = any>(method: string, path: string, body?: unknown) => c.api<T>(method, path, body);
const until = (what: string, f: () => Promise<boolean>) => waitUntil(what, f);

before(async () => {
  c = await startController('h-ima', 'hg-e2e-imalog-');
  await c.publish(readFileSync(new URL('../../examples/demo.yaml', import.meta.url), 'utf8'), 'reject', 'ima log');
  const log = join(c.dir, 'guest-ima.log');
  writeFileSync(log, [line('/usr/bin/bash', 1), line('/usr/lib/libc.so.6', 2), line('/etc/hostname', 3)].join('\n') + '\n');
  driver.define({ name: 'g1', label: 'blue', running: true, ports: ['tapg1'], measure: { imaLog: log } });
  const client = new ControllerClient(c.url, c.agentToken);
  const post = client.postEvidence.bind(client);
  client.postEvidence = (host, request) => {
    for (const v of request.vms) sentVms.push({ vm: v.vm, from: v.from, reboot: v.reboot === true, entries: v.entries.length });
    return post(host, request);
  };
  agent = new Agent({ controller: client, host: 'h-ima', hostLabel: null, driver, enforcer: new DryRunEnforcer(() => {}), stateDir: join(c.dir, 'agent'), socket: null, reportMs: 100, log: () => {} });
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

it('other VMs starting and stopping on the host do not restart the list of a VM measured without a root', async () => {
  const before = sentVms.filter((v) => v.vm === 'g1').length;
  // each of these makes the agent go over the host's VMs again
  driver.define({ name: 'g2', label: 'blue', running: false, ports: [] });
  driver.setRunning('g2', true, ['tapg2']);
  driver.setRunning('g2', false);
  driver.undefine('g2');
  const log = join(c.dir, 'guest-ima.log');
  appendFileSync(log, `${line('/usr/bin/ls', 4)}\n`);
  await until('the new line sent', async () => sentVms.some((v, i) => i >= before && v.vm === 'g1' && v.entries > 0));
  await new Promise((r) => setTimeout(r, 300));
  const g1 = sentVms.filter((v) => v.vm === 'g1');
  assert.ok(g1.length > before);
  assert.deepEqual(g1.filter((v) => v.reboot), [], `g1's list was started over: ${JSON.stringify(g1)}`);
  // the list only ever grew: every increment starts where the one before it ended
  for (let i = 1; i < g1.length; i++) assert.equal(g1[i].from, (g1[i - 1].from ?? 0) + g1[i - 1].entries, JSON.stringify(g1));
});
