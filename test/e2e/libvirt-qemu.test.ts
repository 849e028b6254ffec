/**
 * libvirt with real QEMU guests under software emulation (no KVM here), as root: a private libvirtd
 * (libvirtd.test-support.ts) inside a test network namespace that holds a bridge, with `hueguard hook qemu` installed
 * as its qemu hook, asking a stub agent (test/support/hook-agent-stub.ts) that answers from a table.
 *
 * It shows: a labelled guest the hook allows starts, boots, is reachable on the bridge from inside the namespace,
 * and its tap is in the driver's ports; a start the hook denies fails with the hook's reason in libvirt's error,
 * and so does a start with no agent to ask; the driver sees the real guest's start and stop.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { DriverEvent } from '../../src/agent/driver.ts';
import { execTool } from '../../src/agent/exec.ts';
import { hookScript } from '../../src/agent/hook.ts';
import type { HookAnswerV1 } from '../../src/agent/hook-protocol.ts';
import { readLabel, withLabel } from '../../src/agent/libvirt-xml.ts';
import { LibvirtDriver } from '../../src/agent/libvirt.ts';
import { libvirtUnavailable, startLibvirtd, type TestLibvirtd } from '../../src/agent/libvirtd.test-support.ts';
import { ALLOW, startHookAgentStub, type HookAgentStub } from '../support/hook-agent-stub.ts';
import { GUEST_UP, guestDomainXml, guestKernel, guestUnavailable, writeInitramfs } from '../support/qemu-guest.ts';
import { until as waitUntil } from '../support/until.ts';

const BIN = fileURLToPath(new URL('../../bin/hueguard', import.meta.url));
const noPing = () => (spawnSync('sh', ['-c', 'command -v ping'], { stdio: 'ignore' }).status === 0 ? null : 'ping is not installed (iputils-ping)');
const why = libvirtUnavailable({ qemu: true }) ?? guestUnavailable() ?? noPing();
if (why) console.log(`# SKIP libvirt with real QEMU guests: ${why}`);

const n = process.pid % 10000;
const subnet = `10.78.${20 + (process.pid % 200)}`;
const NETNS = `hgq${n}`;
const BRIDGE = `hgqbr${n}`;
const BLUE = { name: `hg-e2e-blue-${n}`, tap: `hgq${n}b`, ip: `${subnet}.2` };
const RED = { name: `hg-e2e-red-${n}`, tap: `hgq${n}r`, ip: `${subnet}.3` };
const DENY: HookAnswerV1 = { allow: false, reason: 'conflict_set_occupied', message: 'hueguard: conflict set soft-drinks is occupied on this host (coke-db runs)' };

describe('libvirt with real QEMU guests', { skip: why ?? false }, () => {
  let work = '';
  let daemon: TestLibvirtd | null = null;
  let agent: HookAgentStub | null = null;
  let driver: LibvirtDriver | null = null;
  let netnsMade = false;
  let unwatch = () => {};
  const answers = new Map<string, HookAnswerV1>();
  const events: DriverEvent[] = [];

  const until = (pred: () => boolean | Promise<boolean>, what: string, ms: number) =>
    waitUntil(what, pred, { ms, everyMs: 100, context: () => `events ${JSON.stringify(events)}\n${daemon?.log().slice(-1500) ?? ''}` });
  const sawEvent = (type: DriverEvent['type'], vm: string) => () => events.some((e) => e.type === type && e.vm === vm);
  const virsh = (args: string[]) => daemon!.virsh('qemu', args, 120_000);
  const hookOps = (vm: string) => agent!.requests.filter((r) => r.domain === vm).map((r) => r.op);

  const domainXml = (g: { name: string; tap: string; ip: string }, label: string): string =>
    withLabel(guestDomainXml({ ...g, ip: `${g.ip}/24`, bridge: BRIDGE, work }), label);

  before(async () => {
    const kernel = await guestKernel();
    // QEMU runs as libvirt-qemu: the folder must be reachable, the files readable
    work = mkdtempSync('/tmp/hg-qemu-');
    chmodSync(work, 0o755);
    copyFileSync(kernel.vmlinuz, join(work, 'vmlinuz'));
    chmodSync(join(work, 'vmlinuz'), 0o644);
    writeInitramfs(kernel, join(work, 'initrd.cpio'));
    for (const g of [BLUE, RED]) writeFileSync(join(work, `${g.name}.img`), Buffer.alloc(1 << 20), { mode: 0o644 });

    await execTool('ip', ['netns', 'add', NETNS]);
    netnsMade = true;
    await execTool('ip', ['link', 'set', 'lo', 'up'], { netns: NETNS });
    await execTool('ip', ['link', 'add', BRIDGE, 'type', 'bridge'], { netns: NETNS });
    await execTool('ip', ['addr', 'add', `${subnet}.1/24`, 'dev', BRIDGE], { netns: NETNS });
    await execTool('ip', ['link', 'set', BRIDGE, 'up'], { netns: NETNS });

    agent = await startHookAgentStub(join(work, 'agent.sock'), (r) => answers.get(r.domain) ?? ALLOW);
    daemon = await startLibvirtd({ netns: NETNS, hooks: { qemu: hookScript({ node: process.execPath, bin: BIN, socket: agent.socket }) } });
    driver = new LibvirtDriver(daemon.uri('qemu'), { resyncMs: 0 });
    unwatch = await driver.watch((e) => events.push(e));
    for (const [g, label] of [[BLUE, 'blue'], [RED, 'red']] as const) {
      const file = join(work, `${g.name}.xml`);
      writeFileSync(file, domainXml(g, label));
      await virsh(['define', '--file', file]);
    }
  });

  after(async () => {
    unwatch();
    await driver?.close().catch(() => {});
    await daemon?.stop().catch((e) => console.log(`# libvirtd stop: ${(e as Error).message}`));
    await agent?.close().catch(() => {});
    if (netnsMade) await execTool('ip', ['netns', 'delete', NETNS]).catch((e) => console.log(`# netns delete: ${(e as Error).message}`));
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('a labelled guest the hook allows starts and boots; its tap is on the bridge and in the driver\'s ports', async () => {
    await until(sawEvent('defined', BLUE.name), 'defined event', 10_000);
    await virsh(['start', '--domain', BLUE.name]);
    await until(sawEvent('started', BLUE.name), 'started event', 20_000);

    const vm = await driver!.get(BLUE.name);
    assert.equal(vm?.running, true);
    assert.equal(vm?.label, 'blue');
    assert.deepEqual(vm?.ports, [BLUE.tap]);
    assert.deepEqual(vm?.resources, [{ kind: 'disk', id: `${work}/${BLUE.name}.img` }, { kind: 'network', id: BRIDGE }]);
    assert.deepEqual(vm?.measure.images, [`${work}/vmlinuz`, `${work}/initrd.cpio`, `${work}/${BLUE.name}.img`]);
    assert.match(await execTool('ip', ['-o', 'link', 'show', BLUE.tap], { netns: NETNS }), new RegExp(`master ${BRIDGE}`));
    assert.equal((await driver!.list()).find((v) => v.running)?.name, BLUE.name);

    // the hook asked before the start and told the agent of each step, with the definition and its label
    assert.deepEqual(hookOps(BLUE.name), ['prepare', 'start', 'started']);
    const prepare = agent!.requests.find((r) => r.domain === BLUE.name && r.op === 'prepare')!;
    assert.equal(prepare.subop, 'begin');
    assert.equal(readLabel(prepare.xml), 'blue');

    // a real guest: its init says so on the serial console, and it answers on the bridge from inside the namespace
    const console = join(work, `${BLUE.name}.console`);
    await until(() => existsSync(console) && readFileSync(console, 'utf8').includes(GUEST_UP), 'the guest reaching userspace', 120_000);
    await until(
      () => execTool('ping', ['-c', '1', '-W', '1', BLUE.ip], { netns: NETNS, timeoutMs: 5000 }).then(() => true, () => false),
      `a ping to the guest at ${BLUE.ip}`,
      30_000,
    );
    // the test namespace leads nowhere else
    assert.doesNotMatch(await execTool('ip', ['route', 'show'], { netns: NETNS }), /default/);
  });

  it('a start the hook denies fails with the hook\'s reason in libvirt\'s error, and QEMU never runs', async () => {
    answers.set(RED.name, DENY);
    await assert.rejects(virsh(['start', '--domain', RED.name]), (e: Error) => {
      assert.match(e.message, /Hook script execution failed/);
      assert.ok(e.message.includes(DENY.message), e.message);
      return true;
    });
    const vm = await driver!.get(RED.name);
    assert.equal(vm?.running, false);
    assert.deepEqual(vm?.ports, []);
    assert.equal(hookOps(RED.name)[0], 'prepare');
    assert.ok(!hookOps(RED.name).includes('start'), JSON.stringify(hookOps(RED.name)));
    await new Promise((r) => setTimeout(r, 500));
    assert.ok(!sawEvent('started', RED.name)(), 'no started event');
  });

  it('with no agent to ask, a start is refused too', async () => {
    answers.delete(RED.name);
    await agent!.close();
    try {
      await assert.rejects(virsh(['start', '--domain', RED.name]), /no answer from the agent at .*agent\.sock \(ENOENT\): refusing to start domain/);
    } finally {
      await agent!.reopen();
    }
    assert.equal((await driver!.get(RED.name))?.running, false);
  });

  it('the driver sees the real guest stop, and the hook tells the agent', async () => {
    await virsh(['destroy', '--domain', BLUE.name]);
    await until(sawEvent('stopped', BLUE.name), 'stopped event', 20_000);
    const vm = await driver!.get(BLUE.name);
    assert.equal(vm?.running, false);
    assert.deepEqual(vm?.ports, []);
    await until(() => hookOps(BLUE.name).includes('release'), 'the release notice', 10_000);
    assert.deepEqual(hookOps(BLUE.name), ['prepare', 'start', 'started', 'stopped', 'release']);
  });
});
