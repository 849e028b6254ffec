/**
 * The lab driver against a real lab (namespaces, veth, a bridge): the driver conformance suite, and what
 * `hueguard lab` promises — every VM in its namespace with its port on the bridge, and `lab down` removes it all.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { runDriverConformance } from './driver-conformance.ts';
import { execTool } from './exec.ts';
import { LabDriver } from './lab-driver.ts';
import { labAddVm, labDown, labRemoveVm, labSetRunning, labUp, parseVmSpec, readLab } from './lab.ts';
import { nftUnavailable } from './root.test-support.ts';

const why = nftUnavailable();
let dir = '';
runDriverConformance('lab', {
  unavailable: () => why,
  async setup() {
    dir = mkdtempSync(join(tmpdir(), 'hg-labdrv-'));
    await labUp({ name: `d${process.pid % 10000}`, dir, subnet: 150 + (process.pid % 50), vms: [] });
    return {
      driver: new LabDriver(dir),
      startsRunning: true,
      define: async (name, label) => void (await labAddVm(dir, label, name)),
      start: async (name) => void (await labSetRunning(dir, name, true)),
      stop: async (name) => void (await labSetRunning(dir, name, false)),
      undefine: (name) => labRemoveVm(dir, name),
    };
  },
  async teardown() {
    await labDown(dir);
    rmSync(dir, { recursive: true, force: true });
  },
});

it('parses --vms and names the place of a mistake', () => {
  assert.deepEqual(parseVmSpec('blue:2,red:1'), [{ label: 'blue', count: 2 }, { label: 'red', count: 1 }]);
  assert.throws(() => parseVmSpec('blue:2,red'), /--vms item 2 "red"/);
  assert.throws(() => parseVmSpec('blue:0'), /item 1/);
  assert.throws(() => parseVmSpec('a b:1'), /item 1/);
  assert.throws(() => parseVmSpec('blue:200,red:100'), /at most 250/);
});

it('lab up makes each VM a namespace with its port on the bridge; lab down removes everything', { skip: why ?? false }, async () => {
  const d = mkdtempSync(join(tmpdir(), 'hg-lab-'));
  const name = `u${process.pid % 10000}`;
  try {
    const lab = await labUp({ name, dir: d, subnet: 100 + (process.pid % 50), vms: parseVmSpec('blue:2,red:1') });
    assert.deepEqual(lab.vms.map((v) => [v.name, v.label]), [['blue-1', 'blue'], ['blue-2', 'blue'], ['red-1', 'red']]);
    const netns = (await execTool('ip', ['netns', 'list'])).split('\n').map((l) => l.split(' ')[0]);
    for (const v of lab.vms) {
      assert.ok(netns.includes(v.netns), v.netns);
      assert.match(await execTool('ip', ['-o', 'addr', 'show', 'dev', 'eth0'], { netns: v.netns }), new RegExp(`inet ${v.ip.replaceAll('.', '\\.')}/24`));
      assert.match(await execTool('ip', ['-o', 'link', 'show', v.port], { netns: lab.hostNetns }), new RegExp(`master ${lab.bridge}`));
      assert.ok(existsSync(join(v.root, 'etc/hostname')));
    }
    await assert.rejects(labUp({ name, dir: d, vms: [] }), /already up/);
    assert.equal(await labDown(d), true);
    const after = (await execTool('ip', ['netns', 'list'])).split('\n').map((l) => l.split(' ')[0]);
    for (const ns of [...lab.vms.map((v) => v.netns), lab.hostNetns]) assert.ok(!after.includes(ns), `${ns} still there`);
    assert.equal(readLab(d), null);
    assert.equal(await labDown(d), false);
  } finally {
    await labDown(d).catch(() => {});
    rmSync(d, { recursive: true, force: true });
  }
});
