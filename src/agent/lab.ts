/**
 * The netns lab: "VMs" that are network namespaces, each with one veth port on a bridge, and a root directory of
 * files that the agent measures as the VM's file tree. The bridge lives in its own namespace (the lab's "host"),
 * so that the lab, its nftables table and every test packet stay off the machine's real network: the VM namespaces
 * get an address on the lab subnet and no default route.
 *
 * Everything the lab makes is written to `lab.json` in its state folder first, then made; `labDown` removes what the
 * file names, so a lab that failed halfway is removed the same way.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AgentError } from './errors.ts';
import { execTool } from './exec.ts';

export interface LabVm {
  name: string;
  netns: string;
  ip: string;
  port: string;
  /** null: a VM without a label (the policy's __UNLABELED__, where it has one) */
  label: string | null;
  root: string;
  running: boolean;
  /** the VM has a vTPM (a swtpm the agent runs): its evidence comes with quotes */
  vtpm?: boolean;
}

export interface Lab {
  name: string;
  /** the namespace that holds the bridge (and where the enforcer's table goes) */
  hostNetns: string;
  bridge: string;
  /** the lab subnet as address/prefix */
  subnet: string;
  dir: string;
  vms: LabVm[];
}

export interface LabSpec {
  /** label → count, in the order given */
  vms: { label: string; count: number }[];
  /** the lab's name: prefix of its namespaces and ports (≤ 6 characters) */
  name?: string;
  /** where lab.json and the VMs' root folders go */
  dir: string;
  /** the third octet of 10.77.X.0/24 (tests give each lab its own) */
  subnet?: number;
  /** give every VM a vTPM */
  vtpm?: boolean;
}

const NAME = /^[a-z][a-z0-9]{0,5}$/;
const LABEL = /^[A-Za-z0-9_.:-]{1,64}$/;

/** Parse `blue:2,red:2` (the CLI's --vms). */
export function parseVmSpec(text: string): { label: string; count: number }[] {
  const out: { label: string; count: number }[] = [];
  for (const [i, part] of text.split(',').entries()) {
    const m = /^([^:]+):(\d+)$/.exec(part.trim());
    if (!m || !LABEL.test(m[1]) || Number(m[2]) < 1 || Number(m[2]) > 250) {
      throw new AgentError('bad_argument', `--vms item ${i + 1} ${JSON.stringify(part)}: expected LABEL:COUNT (a label of letters, digits, _.:- and a count 1–250)`);
    }
    out.push({ label: m[1], count: Number(m[2]) });
  }
  const total = out.reduce((n, v) => n + v.count, 0);
  if (total > 250) throw new AgentError('bad_argument', `--vms asks for ${total} VMs; a lab holds at most 250`);
  return out;
}

export function labFile(dir: string): string {
  return join(dir, 'lab.json');
}

export function readLab(dir: string): Lab | null {
  const file = labFile(dir);
  if (!existsSync(file)) return null;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Lab;
  } catch (e) {
    throw new AgentError('bad_argument', `${file}: not a lab state file (${(e as Error).message})`);
  }
}

function writeLab(lab: Lab): void {
  const file = labFile(lab.dir);
  writeFileSync(`${file}.tmp`, JSON.stringify(lab, null, 2) + '\n');
  renameSync(`${file}.tmp`, file);
}

/** A VM's name from its label: lower case, only [a-z0-9-], numbered from 1. */
function vmName(label: string, n: number): string {
  const base = label.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 24) || 'vm';
  return `${base}-${n}`;
}

/** The files every lab VM starts with: what the agent measures as its tree. */
function seedRoot(root: string, vm: LabVm): void {
  for (const d of ['etc', 'usr/bin', 'var/lib/app']) mkdirSync(join(root, d), { recursive: true });
  writeFileSync(join(root, 'etc/hostname'), `${vm.name}\n`);
  writeFileSync(join(root, 'etc/os-release'), 'PRETTY_NAME="hueguard lab VM"\nID=hglab\n');
  writeFileSync(join(root, 'etc/app.conf'), `label=${vm.label ?? ''}\nlisten=${vm.ip}\n`);
  writeFileSync(join(root, 'usr/bin/app'), `#!/bin/sh\n# the application of ${vm.name}\nexec sleep infinity\n`, { mode: 0o755 });
  writeFileSync(join(root, 'var/lib/app/data'), 'application data\n');
}

export async function labUp(spec: LabSpec): Promise<Lab> {
  const name = spec.name ?? 'hg';
  if (!NAME.test(name)) throw new AgentError('bad_argument', `lab name ${JSON.stringify(name)}: 1–6 lower-case letters and digits, starting with a letter`);
  const octet = spec.subnet ?? 77;
  if (!Number.isInteger(octet) || octet < 0 || octet > 255) throw new AgentError('bad_argument', `subnet octet ${octet}: 0–255`);
  if (readLab(spec.dir)) throw new AgentError('bad_argument', `a lab is already up in ${spec.dir}: run \`hueguard lab down\` first`);
  mkdirSync(spec.dir, { recursive: true });
  const lab: Lab = { name, hostNetns: `${name}-host`, bridge: `${name}br0`, subnet: `10.77.${octet}.0/24`, dir: spec.dir, vms: [] };
  writeLab(lab); // first: whatever fails below, `labDown` finds it
  try {
    await execTool('ip', ['netns', 'add', lab.hostNetns]);
    await execTool('ip', ['link', 'add', lab.bridge, 'type', 'bridge'], { netns: lab.hostNetns });
    await execTool('ip', ['link', 'set', lab.bridge, 'up'], { netns: lab.hostNetns });
    await execTool('ip', ['link', 'set', 'lo', 'up'], { netns: lab.hostNetns });
    for (const { label, count } of spec.vms) for (let i = 0; i < count; i++) await addVm(lab, label, undefined, spec.vtpm);
  } catch (e) {
    await labDown(spec.dir).catch(() => {});
    throw e;
  }
  return lab;
}

/** Add one VM of this label to the lab in `dir` (running), named `name` or after its label. */
export async function labAddVm(dir: string, label: string | null, name?: string): Promise<LabVm> {
  const lab = readLab(dir);
  if (!lab) throw new AgentError('bad_argument', `no lab in ${dir}`);
  if (label !== null && !LABEL.test(label)) throw new AgentError('bad_argument', `label ${JSON.stringify(label)}: letters, digits, _.:- (1–64)`);
  if (name !== undefined && (!/^[a-z0-9][a-z0-9-]{0,30}$/.test(name) || lab.vms.some((v) => v.name === name))) {
    throw new AgentError('bad_argument', `VM name ${JSON.stringify(name)}: taken, or not 1–31 of [a-z0-9-]`);
  }
  return addVm(lab, label, name);
}

async function addVm(lab: Lab, label: string | null, wanted?: string, vtpm?: boolean): Promise<LabVm> {
  const used = new Set(lab.vms.map((v) => v.name));
  const n = Math.max(0, ...lab.vms.map((v) => Number(v.port.slice(lab.name.length + 1)))) + 1;
  if (n > 250) throw new AgentError('bad_argument', `lab ${lab.name} is full (250 VMs)`);
  let i = 1;
  while (used.has(vmName(label ?? 'vm', i))) i++;
  const name = wanted ?? vmName(label ?? 'vm', i);
  const octets = lab.subnet.split('.');
  const vm: LabVm = { name, netns: `${lab.name}-${name}`, ip: `${octets[0]}.${octets[1]}.${octets[2]}.${n + 1}`, port: `${lab.name}v${n}`, label, root: join(lab.dir, 'vms', name, 'root'), running: true, ...(vtpm ? { vtpm: true } : {}) };
  lab.vms.push(vm);
  writeLab(lab); // before making it: `labDown` must find whatever was made
  seedRoot(vm.root, vm);
  await execTool('ip', ['netns', 'add', vm.netns]);
  await execTool('ip', ['link', 'add', vm.port, 'netns', lab.hostNetns, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', vm.netns]);
  await execTool('ip', ['link', 'set', vm.port, 'master', lab.bridge, 'up'], { netns: lab.hostNetns });
  await execTool('sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1'], { netns: vm.netns });
  await execTool('ip', ['addr', 'add', `${vm.ip}/24`, 'dev', 'eth0'], { netns: vm.netns });
  await execTool('ip', ['link', 'set', 'eth0', 'up'], { netns: vm.netns });
  await execTool('ip', ['link', 'set', 'lo', 'up'], { netns: vm.netns });
  return vm;
}

/** Remove one VM from the lab (its namespace, port and root folder). */
export async function labRemoveVm(dir: string, vmName: string): Promise<void> {
  const lab = readLab(dir);
  if (!lab) throw new AgentError('bad_argument', `no lab in ${dir}`);
  const vm = lab.vms.find((v) => v.name === vmName);
  if (!vm) throw new AgentError('bad_argument', `no lab VM named ${JSON.stringify(vmName)}`);
  await execTool('ip', ['netns', 'del', vm.netns]).catch(() => {});
  rmSync(join(lab.dir, 'vms', vm.name), { recursive: true, force: true });
  lab.vms = lab.vms.filter((v) => v !== vm);
  writeLab(lab);
}

/** Remove every namespace, link and folder the lab in `dir` made. Returns false when there was no lab. */
export async function labDown(dir: string): Promise<boolean> {
  const lab = readLab(dir);
  if (!lab) return false;
  const existing = new Set((await execTool('ip', ['netns', 'list']).catch(() => '')).split('\n').map((l) => l.split(' ')[0]));
  // Deleting a namespace deletes its veth end, and with it the peer on the bridge.
  for (const ns of [...lab.vms.map((v) => v.netns), lab.hostNetns]) if (existing.has(ns)) await execTool('ip', ['netns', 'del', ns]);
  rmSync(join(dir, 'vms'), { recursive: true, force: true });
  rmSync(labFile(dir), { force: true });
  return true;
}

/** Start or stop a lab VM: its bridge port goes up or down (a stopped VM sends nothing). */
export async function labSetRunning(dir: string, vmName: string, running: boolean): Promise<LabVm> {
  const lab = readLab(dir);
  if (!lab) throw new AgentError('bad_argument', `no lab in ${dir}`);
  const vm = lab.vms.find((v) => v.name === vmName);
  if (!vm) throw new AgentError('bad_argument', `no lab VM named ${JSON.stringify(vmName)} (there are: ${lab.vms.map((v) => v.name).join(', ')})`);
  await execTool('ip', ['link', 'set', vm.port, running ? 'up' : 'down'], { netns: lab.hostNetns });
  vm.running = running;
  writeLab(lab);
  return vm;
}

/** What `hueguard lab status --json` prints. */
export function labStatus(lab: Lab): Pick<LabVm, 'name' | 'netns' | 'ip' | 'port' | 'label' | 'root' | 'running'>[] {
  return lab.vms.map(({ name, netns, ip, port, label, root, running }) => ({ name, netns, ip, port, label, root, running }));
}

/** Does this namespace have a default route? Lab VMs must not: their test packets stay in the lab. */
export async function hasDefaultRoute(netns: string): Promise<boolean> {
  const v4 = await execTool('ip', ['-4', 'route', 'show', 'default'], { netns });
  const v6 = await execTool('ip', ['-6', 'route', 'show', 'default'], { netns }).catch(() => '');
  return v4.trim() !== '' || v6.trim() !== '';
}

/** One ping from inside a lab VM (refuses to send from a namespace with a default route). */
export async function labPing(vm: LabVm, ip: string, timeoutS = 1): Promise<boolean> {
  if (await hasDefaultRoute(vm.netns)) throw new AgentError('bad_argument', `${vm.netns} has a default route: refusing to send test packets from it`);
  try {
    await execTool('ping', ['-c', '1', '-W', String(timeoutS), '-q', ip], { netns: vm.netns });
    return true;
  } catch {
    return false;
  }
}
