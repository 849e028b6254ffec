/**
 * `hueguard lab up --vms blue:2,red:2 [--dir DIR] [--name N]`, `hueguard lab status [--json]`, `hueguard lab down`,
 * `hueguard lab start|stop VM`: the netns lab (src/agent/lab.ts). Needs root.
 */
import { resolve } from 'node:path';
import { isRoot } from '../agent/exec.ts';
import { labDown, labSetRunning, labStatus, labUp, parseVmSpec, readLab } from '../agent/lab.ts';
import { DEFAULT_LAB_DIR } from './agent.ts';
import { CliError } from './errors.ts';

const dirOf = (o: { dir?: string }) => resolve(o.dir ?? DEFAULT_LAB_DIR);

function needRoot(): void {
  if (!isRoot()) throw new CliError('the lab makes network namespaces and veth links: run it as root');
}

export async function labUpCommand(o: { vms: string; dir?: string; name?: string; vtpm?: boolean }): Promise<number> {
  needRoot();
  const lab = await labUp({ vms: parseVmSpec(o.vms), dir: dirOf(o), name: o.name, vtpm: o.vtpm });
  process.stdout.write(`lab ${lab.name} up: ${lab.vms.length} VMs on bridge ${lab.bridge} in namespace ${lab.hostNetns} (${lab.dir})\n`);
  for (const v of lab.vms) process.stdout.write(`  ${v.name.padEnd(12)} ${String(v.label).padEnd(12)} ${v.ip.padEnd(15)} port ${v.port}  netns ${v.netns}\n`);
  return 0;
}

export async function labStatusCommand(o: { dir?: string; json?: boolean }): Promise<number> {
  const lab = readLab(dirOf(o));
  if (o.json) {
    process.stdout.write(`${JSON.stringify(lab ? labStatus(lab) : [])}\n`);
    return 0;
  }
  if (!lab) {
    process.stdout.write(`no lab in ${dirOf(o)}\n`);
    return 0;
  }
  process.stdout.write(`lab ${lab.name}: bridge ${lab.bridge} in ${lab.hostNetns}, ${lab.vms.length} VMs\n`);
  for (const v of labStatus(lab)) process.stdout.write(`  ${v.name.padEnd(12)} ${String(v.label).padEnd(12)} ${v.ip.padEnd(15)} ${v.port.padEnd(10)} ${v.running ? 'running' : 'stopped'}\n`);
  return 0;
}

export async function labDownCommand(o: { dir?: string }): Promise<number> {
  needRoot();
  const had = await labDown(dirOf(o));
  process.stdout.write(had ? `lab in ${dirOf(o)} removed\n` : `no lab in ${dirOf(o)}\n`);
  return 0;
}

export async function labRunCommand(vm: string, running: boolean, o: { dir?: string }): Promise<number> {
  needRoot();
  const v = await labSetRunning(dirOf(o), vm, running);
  process.stdout.write(`${v.name} ${running ? 'started' : 'stopped'}\n`);
  return 0;
}
