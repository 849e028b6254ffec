/**
 * `hueguard agent --controller URL --token TOKEN [--host NAME] [--host-label LABEL] [--driver lab|libvirt]
 * [--lab DIR] [--libvirt URI] [--enforcer nftables|dry-run] [--netns NS] [--state DIR] [--socket PATH]`:
 * the host agent (src/agent/agent.ts), until SIGINT or SIGTERM. The rules it enforced stay in the kernel when it stops.
 */
import os from 'node:os';
import v8 from 'node:v8';
import { resolve } from 'node:path';
import { Agent } from '../agent/agent.ts';
import { ControllerClient } from '../agent/controller-client.ts';
import type { Driver } from '../agent/driver.ts';
import { DryRunEnforcer } from '../agent/dry-run.ts';
import type { Enforcer } from '../agent/enforcer.ts';
import { isRoot } from '../agent/exec.ts';
import { DEFAULT_AGENT_SOCKET } from '../agent/hook-protocol.ts';
import { LabDriver } from '../agent/lab-driver.ts';
import { NftEnforcer } from '../agent/nftables.ts';
import { CliError } from './errors.ts';

export interface AgentCliOptions {
  controller: string;
  token?: string;
  host?: string;
  hostLabel?: string;
  driver?: string;
  lab?: string;
  libvirt?: string;
  enforcer?: string;
  netns?: string;
  state?: string;
  socket?: string;
}

export const DEFAULT_LAB_DIR = '/run/hueguard/lab';

export interface BuiltAgent {
  agent: Agent;
  driver: Driver;
  enforcer: Enforcer;
}

/** Everything `hueguard agent` wires together (also used by `hueguard demo`). */
export async function buildAgent(o: AgentCliOptions, log?: (line: string) => void): Promise<BuiltAgent> {
  const token = o.token ?? process.env.HUEGUARD_AGENT_TOKEN;
  if (!token) throw new CliError('give --token (or HUEGUARD_AGENT_TOKEN): an agent token bound to this host');
  try {
    new URL(o.controller);
  } catch {
    throw new CliError(`--controller ${JSON.stringify(o.controller)} is not a URL`);
  }
  const kind = o.driver ?? 'lab';
  let driver: Driver;
  let netns = o.netns;
  let domainFacts: ConstructorParameters<typeof Agent>[0]['domainFacts'];
  if (kind === 'lab') {
    const lab = new LabDriver(resolve(o.lab ?? DEFAULT_LAB_DIR));
    netns ??= lab.lab()?.hostNetns;
    if (netns === undefined) throw new CliError(`no lab in ${resolve(o.lab ?? DEFAULT_LAB_DIR)}: run \`hueguard lab up\` first, or give --lab DIR`);
    driver = lab;
  } else if (kind === 'libvirt') {
    const { LibvirtDriver, domainFactsFromXml } = await import('../agent/libvirt.ts');
    driver = new LibvirtDriver(o.libvirt ?? 'qemu:///system');
    domainFacts = domainFactsFromXml;
  } else throw new CliError(`--driver must be lab or libvirt, not ${JSON.stringify(kind)}`);
  const enforcerKind = o.enforcer ?? 'nftables';
  let enforcer: Enforcer;
  if (enforcerKind === 'dry-run') enforcer = new DryRunEnforcer();
  else if (enforcerKind === 'nftables') {
    if (!isRoot()) throw new CliError('the nftables enforcer needs root (or give --enforcer dry-run)');
    enforcer = new NftEnforcer({ netns });
  } else throw new CliError(`--enforcer must be nftables or dry-run, not ${JSON.stringify(enforcerKind)}`);
  const host = o.host ?? os.hostname();
  const agent = new Agent({
    controller: new ControllerClient(o.controller, token),
    host,
    hostLabel: o.hostLabel ?? null,
    driver,
    enforcer,
    stateDir: resolve(o.state ?? `/var/lib/hueguard/agent-${host}`),
    socket: o.socket === 'none' ? null : resolve(o.socket ?? process.env.HUEGUARD_AGENT_SOCKET ?? DEFAULT_AGENT_SOCKET),
    domainFacts,
    log,
  });
  return { agent, driver, enforcer };
}

export async function agentCommand(o: AgentCliOptions): Promise<number> {
  // An agent lives on every host: a small young generation keeps it small (its allocations are short-lived and few)
  v8.setFlagsFromString('--max-semi-space-size=1');
  const { agent, driver } = await buildAgent(o);
  await agent.start();
  process.stdout.write(`hueguard agent for host ${agent.status().host} (${driver.kind}) following ${o.controller}\n`);
  await new Promise<void>((done) => {
    const stop = (signal: string) => {
      process.stderr.write(`hueguard agent: ${signal}: stopping (the rules stay in force)\n`);
      done();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  await agent.stop();
  await driver.close();
  return 0;
}
