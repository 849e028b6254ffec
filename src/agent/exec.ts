/**
 * Running the host's tools (ip, nft, virsh) without a shell: arguments go to execve as they are, so a VM or
 * port name can never become a command. Failures carry the tool's own message.
 */
import { spawn } from 'node:child_process';
import { AgentError, type AgentErrorCode } from './errors.ts';

export interface ExecOptions {
  input?: string;
  /** run inside this network namespace (through `ip netns exec`) */
  netns?: string;
  /** the error code of a non-zero exit */
  code?: AgentErrorCode;
  timeoutMs?: number;
}

export function execTool(cmd: string, args: string[], options: ExecOptions = {}): Promise<string> {
  const [file, argv] = options.netns ? ['ip', ['netns', 'exec', options.netns, cmd, ...args]] : [cmd, args];
  return new Promise((resolve, reject) => {
    const child = spawn(file, argv, { stdio: ['pipe', 'pipe', 'pipe'], timeout: options.timeoutMs ?? 30_000 });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', (e) => reject(new AgentError('not_available', `cannot run ${file}: ${e.message}`)));
    child.on('close', (status, signal) => {
      if (status === 0) resolve(out);
      else reject(new AgentError(options.code ?? 'driver_failed', `${cmd} ${args.join(' ')}: ${err.trim() || (signal ? `killed by ${signal}` : `exit ${status}`)}`));
    });
    child.stdin.on('error', () => {}); // a tool that exits before reading its input is reported by its exit status
    child.stdin.end(options.input ?? '');
  });
}

/** Is this process root (needed for namespaces, nft, libvirt)? */
export const isRoot = (): boolean => typeof process.getuid === 'function' && process.getuid() === 0;
