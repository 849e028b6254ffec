/**
 * `hueguard hook qemu DOMAIN OP SUBOP [EXTRA] [--socket PATH]`: libvirt's `qemu` hook (src/agent/hook.ts). Exit 0
 * lets libvirt go on; on `prepare`, exit 1 with one line on stderr aborts the start with that line in libvirt's error.
 * `hueguard hook install [--libvirt-dir DIR] [--socket PATH] [--force]` writes the hook script.
 *
 * libvirt runs the hook at each step of every domain's start and stop, so `bin/hueguard` loads only this file for
 * `hook` (hookMain): the full CLI takes seconds to load on a busy host.
 */
import { Command, CommanderError } from 'commander';
import { existsSync, realpathSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AgentError } from '../agent/errors.ts';
import { installHook, readInput, runQemuHook } from '../agent/hook.ts';
import { DEFAULT_AGENT_SOCKET } from '../agent/hook-protocol.ts';

export interface HookQemuOptions {
  socket?: string;
  timeout?: string;
}

export async function hookQemu(domain: string, op: string, subop: string, extra: string | undefined, o: HookQemuOptions): Promise<number> {
  const socket = o.socket ?? process.env.HUEGUARD_AGENT_SOCKET ?? DEFAULT_AGENT_SOCKET;
  const timeoutMs = o.timeout === undefined ? undefined : Number(o.timeout);
  if (timeoutMs !== undefined && !(Number.isInteger(timeoutMs) && timeoutMs > 0 && timeoutMs <= 600_000)) {
    process.stderr.write(`hueguard: --timeout ${JSON.stringify(o.timeout)}: expected milliseconds, 1–600000\n`);
    return op === 'prepare' ? 1 : 0;
  }
  const xml = await readInput(process.stdin);
  const outcome = await runQemuHook({ domain, op, subop, extra }, xml, { socket, timeoutMs });
  if (outcome.message) process.stderr.write(`${outcome.message}\n`);
  return outcome.exitCode;
}

export interface HookInstallOptions {
  libvirtDir?: string;
  socket?: string;
  force?: boolean;
}

/** The hueguard binary this code runs from, with links resolved (the hook must not depend on libvirt's PATH). */
function hueguardBinary(): string {
  // from src/cli/ or from a built bundle in dist/: the checkout is the nearest folder up that has bin/hueguard
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++, dir = dirname(dir)) {
    const bin = join(dir, 'bin', 'hueguard');
    if (existsSync(bin)) return realpathSync(bin);
  }
  throw new AgentError('not_available', `no bin/hueguard above ${fileURLToPath(import.meta.url)}`);
}

export function hookInstall(o: HookInstallOptions): number {
  const dir = resolve(o.libvirtDir ?? '/etc/libvirt/hooks');
  try {
    const path = installHook(dir, { node: process.execPath, bin: hueguardBinary(), socket: o.socket === undefined ? undefined : resolve(o.socket), force: o.force });
    process.stdout.write(`wrote ${path}; libvirtd looks for hooks when it starts: restart it if it runs\n`);
    return 0;
  } catch (e) {
    if (!(e instanceof AgentError)) throw e;
    process.stderr.write(`hueguard: ${e.message}\n`);
    return 2;
  }
}

/** The `hook` command and its subcommands. */
export function hookCommand(): Command {
  const hook = new Command('hook').description("libvirt's qemu hook: ask the local agent before a domain starts");
  hook
    .command('qemu')
    .description('run as libvirt\'s qemu hook (domain XML on stdin); on prepare, exit 1 unless the agent allows')
    .argument('<domain>')
    .argument('<op>')
    .argument('<subop>')
    .argument('[extra]')
    .allowExcessArguments(true)
    .option('--socket <path>', `the agent's socket (default $HUEGUARD_AGENT_SOCKET, else ${DEFAULT_AGENT_SOCKET})`)
    .option('--timeout <ms>', 'wait this long for the agent (default 5000 on prepare, 1500 otherwise)')
    .action(async (domain: string, op: string, subop: string, extra: string | undefined, o: HookQemuOptions) => {
      process.exitCode = await hookQemu(domain, op, subop, extra, o);
    });
  hook
    .command('install')
    .description('write the qemu hook script that runs this hueguard (mode 755)')
    .option('--libvirt-dir <dir>', "libvirt's hook folder (default /etc/libvirt/hooks)")
    .option('--socket <path>', "the agent's socket, written into the script (libvirt passes the hook no environment)")
    .option('--force', 'replace a hook that hueguard did not write')
    .action((o: HookInstallOptions) => {
      process.exitCode = hookInstall(o);
    });
  return hook;
}

/** `hueguard hook …` without loading the rest of the CLI (bin/hueguard calls this). */
export async function hookMain(argv: string[]): Promise<void> {
  const program = new Command('hueguard').addCommand(hookCommand());
  program.exitOverride();
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (!(e instanceof CommanderError)) throw e;
    // a hook libvirt cannot call correctly must still refuse a start: commander's usage errors exit non-zero
    process.exitCode = e.exitCode === 0 ? 0 : 2;
  }
}
