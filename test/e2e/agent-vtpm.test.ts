/**
 * Lab VMs with a vTPM, as root: the agent runs a swtpm per VM, extends PCR 10 with every entry, registers the AK
 * and sends each increment with a quote over the controller's nonce. The controller must find the quotes valid
 * (the VMs turn trusted only on attested evidence), and a changed file still cuts its VM off.
 */
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Agent } from '../../src/agent/agent.ts';
import { ControllerClient } from '../../src/agent/controller-client.ts';
import { LabDriver } from '../../src/agent/lab-driver.ts';
import { labDown, labPing, labUp, type Lab } from '../../src/agent/lab.ts';
import { NftEnforcer } from '../../src/agent/nftables.ts';
import { nftUnavailable } from '../../src/agent/root.test-support.ts';
import { vmTpmMissing } from '../../src/agent/vm-tpm.ts';
import { startController, type TestController } from '../support/controller.ts';
import { until as waitUntil } from '../support/until.ts';

const why = nftUnavailable() ?? vmTpmMissing();
if (why) console.log(`# SKIP agent with vTPMs: ${why}`);

describe('lab VMs with a vTPM: quoted evidence end to end', { skip: why ?? false }, () => {
  let c: TestController;
  let lab: Lab;
  let agent: Agent;
  let driver: LabDriver;
  let enforcer: NftEnforcer;
  const logs: string[] = [];
  const api = <T = any>(method: string, path: string, body?: unknown) => c.api<T>(method, path, body);
  const until = (what: string, f: () => Promise<boolean>, ms = 30_000) => waitUntil(what, f, { ms, everyMs: 100, context: () => logs.join('\n') });

  before(async () => {
    c = await startController('tpm-host', 'hg-e2e-vtpm-');
    await c.publish(readFileSync(new URL('../../examples/demo.yaml', import.meta.url), 'utf8'), 'reject', 'vtpm');
    lab = await labUp({ name: `t${process.pid % 10000}`, dir: join(c.dir, 'lab'), subnet: 40 + (process.pid % 20), vtpm: true, vms: [{ label: 'blue', count: 2 }] });
    driver = new LabDriver(lab.dir);
    enforcer = new NftEnforcer({ netns: lab.hostNetns });
    agent = new Agent({ controller: new ControllerClient(c.url, c.agentToken), host: 'tpm-host', hostLabel: null, driver, enforcer, stateDir: join(c.dir, 'agent'), socket: null, log: (l) => logs.push(l) });
    await agent.start();
  });

  after(async () => {
    await agent?.stop();
    await driver?.close();
    await enforcer?.remove().catch(() => {});
    if (lab) await labDown(lab.dir);
    await c?.close();
  });

  it('both VMs turn trusted on quoted evidence, and talk', async () => {
    await until('both trusted', async () => (await Promise.all(lab.vms.map((v) => api('GET', `/api/v1/vms/${v.name}/trust`).catch(() => ({ state: 'unknown' }))))).every((t) => t.state === 'trusted'));
    const history = await api<{ reason: string }[]>('GET', `/api/v1/vms/blue-1/trust/history`);
    assert.ok(history.some((h) => /quote|attested|covers|valid/i.test(h.reason)), `a quote was checked: ${JSON.stringify(history)}`);
    await until('colored', async () => (agent.plan?.vms.filter((v) => v.colors.length > 0).length ?? 0) === 2);
    assert.equal(await labPing(lab.vms[0], lab.vms[1].ip), true);
  });

  it('a changed file under a quote cuts the VM off', async () => {
    appendFileSync(join(lab.vms[0].root, 'usr/bin/app'), '# changed\n');
    await until('blue-1 untrusted', async () => (await api('GET', '/api/v1/vms/blue-1/trust')).state === 'untrusted');
    await until('blue-1 isolated', async () => agent.plan?.vms.find((v) => v.name === 'blue-1')?.colors.length === 0);
    assert.equal(await labPing(lab.vms[1], lab.vms[0].ip), false);
  });
});
