/**
 * The real agent behind libvirt's qemu hook, as root: a real controller (SQLite, loopback HTTP), a private libvirtd
 * in a test namespace with a bridge (libvirtd.test-support.ts), real QEMU guests under TCG, `hueguard hook qemu`
 * installed as the hook and asking the agent's unix socket, the agent asking the controller's admission.
 *
 * It shows: a guest whose label's conflict set is free starts, is measured at launch (definition, kernel, initrd,
 * disk), turns trusted and gets its colors on its tap; a guest whose conflict set is occupied on the host is
 * refused through the hook, with the reason in libvirt's error; once the first one stops, the second may start.
 */
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { Agent } from '../../src/agent/agent.ts';
import { ControllerClient } from '../../src/agent/controller-client.ts';
import { execTool } from '../../src/agent/exec.ts';
import { hookScript } from '../../src/agent/hook.ts';
import { withLabel } from '../../src/agent/libvirt-xml.ts';
import { domainFactsFromXml, LibvirtDriver } from '../../src/agent/libvirt.ts';
import { libvirtUnavailable, startLibvirtd, type TestLibvirtd } from '../../src/agent/libvirtd.test-support.ts';
import { NftEnforcer } from '../../src/agent/nftables.ts';
import { buildApp, type App } from '../../src/server/app.ts';
import { createToken } from '../../src/server/routes/tokens.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import type { Store } from '../../src/store/store.ts';
import { guestDomainXml, guestKernel, guestUnavailable, writeInitramfs } from '../support/qemu-guest.ts';
import { until as waitUntil } from '../support/until.ts';

const BIN = fileURLToPath(new URL('../../bin/hueguard', import.meta.url));
const why = libvirtUnavailable({ qemu: true }) ?? guestUnavailable();
if (why) console.log(`# SKIP the agent behind libvirt's hook: ${why}`);

const n = process.pid % 10000;
const NETNS = `hga${n}`;
const BRIDGE = `hgabr${n}`;
const HOST = 'kvm-1';
const GREEN = { name: `green-${n}`, tap: `hga${n}g`, label: 'green', disk: 'green-disk' };
const SECRET = { name: `secret-${n}`, tap: `hga${n}s`, label: 'secret', disk: 'secret-disk' };

const POLICY = `policy: e2e
version: "1.0"
colors: [green, secret, infra]
walls: [green-w, secret-w]
conflicts:
  apart: [green-w, secret-w]
host: host
labels:
  host: { colors: [green, secret, infra] }
  green: { colors: [green, infra], walls: [green-w] }
  secret: { colors: [secret, infra], walls: [secret-w] }
resources:
  lab-bridge: { color: infra }
  green-disk: { color: green }
  secret-disk: { color: secret }
`;

describe('the agent behind libvirt\'s qemu hook', { skip: why ?? false }, () => {
  let work = '';
  let store: Store;
  let app: App;
  let url = '';
  let admin = '';
  let daemon: TestLibvirtd | null = null;
  let driver: LibvirtDriver | null = null;
  let agent: Agent | null = null;
  let enforcer: NftEnforcer | null = null;
  let netnsMade = false;
  const logs: string[] = [];

  async function api<T = any>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(url + path, { method, headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return (text ? JSON.parse(text) : null) as T;
  }
  const until = (what: string, pred: () => Promise<boolean> | boolean, ms = 30_000) =>
    waitUntil(what, pred, {
      ms,
      everyMs: 100,
      context: async () => {
        const vms = await api('GET', `/api/v1/vms/${GREEN.name}/trust/history`).catch((e) => String(e));
        return `agent: ${logs.join('\n')}\nstatus: ${JSON.stringify(agent?.status())}\nvms: ${JSON.stringify(vms)}`;
      },
    });
  const virsh = (args: string[]) => daemon!.virsh('qemu', args, 120_000);
  const domainXml = (g: typeof GREEN) => withLabel(guestDomainXml({ ...g, bridge: BRIDGE, work }), g.label);

  before(async () => {
    const kernel = await guestKernel();
    work = mkdtempSync('/tmp/hg-agent-qemu-');
    chmodSync(work, 0o755);
    copyFileSync(kernel.vmlinuz, join(work, 'vmlinuz'));
    chmodSync(join(work, 'vmlinuz'), 0o644);
    writeInitramfs(kernel, join(work, 'initrd.cpio'));
    for (const g of [GREEN, SECRET]) writeFileSync(join(work, `${g.name}.img`), Buffer.alloc(1 << 20), { mode: 0o644 });

    store = await openSqliteStore({ dir: join(work, 'data') });
    const ctx = { store, now: () => new Date() };
    admin = (await createToken(ctx, { name: 'admin', role: 'admin', host: null })).secret;
    const agentToken = (await createToken(ctx, { name: 'agent', role: 'agent', host: HOST })).secret;
    app = await buildApp({ store, rateLimit: false });
    await app.app.listen({ host: '127.0.0.1', port: 0 });
    url = `http://127.0.0.1:${(app.app.server.address() as AddressInfo).port}`;
    const d = await api<{ id: string }>('POST', '/api/v1/policy/drafts', { text: POLICY });
    await api('POST', `/api/v1/policy/drafts/${d.id}/publish`, { note: 'e2e', mode: 'reject' });
    await api('PUT', `/api/v1/resources/network/${encodeURIComponent(BRIDGE)}`, { label: 'lab-bridge' });
    for (const g of [GREEN, SECRET]) await api('PUT', `/api/v1/resources/disk/${encodeURIComponent(`${work}/${g.name}.img`)}`, { label: g.disk });

    await execTool('ip', ['netns', 'add', NETNS]);
    netnsMade = true;
    await execTool('ip', ['link', 'set', 'lo', 'up'], { netns: NETNS });
    await execTool('ip', ['link', 'add', BRIDGE, 'type', 'bridge'], { netns: NETNS });
    await execTool('ip', ['link', 'set', BRIDGE, 'up'], { netns: NETNS });

    const socket = join(work, 'agent.sock');
    daemon = await startLibvirtd({ netns: NETNS, hooks: { qemu: hookScript({ node: process.execPath, bin: BIN, socket }) } });
    driver = new LibvirtDriver(daemon.uri('qemu'), { resyncMs: 0 });
    enforcer = new NftEnforcer({ netns: NETNS });
    agent = new Agent({ controller: new ControllerClient(url, agentToken), host: HOST, hostLabel: null, driver, enforcer, stateDir: join(work, 'agent'), socket, domainFacts: domainFactsFromXml, log: (l) => logs.push(l) });
    await agent.start();
    for (const g of [GREEN, SECRET]) {
      writeFileSync(join(work, `${g.name}.xml`), domainXml(g));
      await virsh(['define', '--file', join(work, `${g.name}.xml`)]);
    }
  });

  after(async () => {
    await agent?.stop().catch(() => {});
    await driver?.close().catch(() => {});
    await daemon?.stop().catch((e) => console.log(`# libvirtd stop: ${(e as Error).message}`));
    await enforcer?.remove().catch(() => {});
    if (netnsMade) await execTool('ip', ['netns', 'delete', NETNS]).catch(() => {});
    await app?.app.close();
    await store?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('a guest whose conflict set is free starts, is measured at launch, turns trusted and gets its colors on its tap', async () => {
    await virsh(['start', '--domain', GREEN.name]);
    await until('green trusted', async () => (await api<{ state: string }>('GET', `/api/v1/vms/${GREEN.name}/trust`)).state === 'trusted');
    const history = await api<{ to: string; reason: string }[]>('GET', `/api/v1/vms/${GREEN.name}/trust/history`);
    // the definition, the kernel, the initrd and the disk, all in the first increment
    assert.ok(history.some((h) => h.to === 'trusted' && /from 4 entries/.test(h.reason)), JSON.stringify(history));
    await until('green\'s tap colored', () => JSON.stringify(agent!.plan?.vms.find((v) => v.name === GREEN.name)?.ports) === JSON.stringify([GREEN.tap]) && agent!.plan!.vms.find((v) => v.name === GREEN.name)!.colors.length === 2);
    assert.deepEqual((await enforcer!.current())?.ports.get(GREEN.tap), ['green', 'infra']);
  });

  it('a guest whose conflict set is occupied on the host is refused through the hook, with the reason', async () => {
    await assert.rejects(virsh(['start', '--domain', SECRET.name]), (e: Error) => {
      assert.match(e.message, /Hook script execution failed/);
      assert.match(e.message, /conflict set "apart"|conflict_set_occupied|apart/);
      return true;
    });
    assert.equal((await driver!.get(SECRET.name))?.running, false);
    const denied = await api<{ action: string; subject: string }[] | { records: { action: string; subject: string }[] }>('GET', '/api/v1/audit');
    const records = Array.isArray(denied) ? denied : denied.records;
    assert.ok(records.some((r) => /admission/.test(r.action) && r.subject.includes(SECRET.name)), 'the denied admission is in the audit log');
  });

  it('once the first guest stops, the second may start (the host\'s Chinese Wall follows stops)', async () => {
    await virsh(['destroy', '--domain', GREEN.name]);
    await until('green stopped in the controller', async () => (await api<{ name: string; running: boolean }[]>('GET', '/api/v1/vms')).some((v) => v.name === GREEN.name && !v.running));
    await virsh(['start', '--domain', SECRET.name]);
    await until('secret running', async () => (await driver!.get(SECRET.name))?.running === true);
    await virsh(['destroy', '--domain', SECRET.name]);
  });
});
