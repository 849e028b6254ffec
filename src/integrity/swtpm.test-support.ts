/**
 * A real software TPM for tests: swtpm (TPM 2.0) on free loopback ports with a temporary state, started with
 * `startup-clear` so it is ready for commands, and stopped (state removed) by `stop()`. As in
 * ../shared/tools/swtpm-quote.sh. `startSwtpm()` resolves to null when swtpm or tpm2-tools are not installed,
 * so a test can skip with the reason in `swtpmMissing`.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Swtpm {
  /** for tpm2-tools' -T / TPM2TOOLS_TCTI */
  tcti: string;
  port: number;
  /** flush transient objects and sessions (needed after commands that load keys: there is no resource manager) */
  flush(): Promise<void>;
  stop(): Promise<void>;
}

/** Why startSwtpm() resolved to null, if it did. */
export let swtpmMissing = '';

function installed(cmd: string, args: string[]): boolean {
  const r = spawnSync(cmd, args, { stdio: 'ignore' });
  return r.error === undefined;
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/**
 * Two consecutive loopback ports nobody listens on right now: the swtpm TCTI finds the control channel at the
 * server port + 1.
 */
async function freePortPair(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = 20000 + 2 * Math.floor(Math.random() * 20000);
    if ((await canListen(port)) && (await canListen(port + 1))) return port;
  }
  throw new Error('no two free consecutive loopback ports');
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = createConnection({ host: '127.0.0.1', port });
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

function exited(p: ChildProcess): Promise<void> {
  return p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : new Promise((r) => p.once('exit', () => r()));
}

export async function startSwtpm(): Promise<Swtpm | null> {
  if (!installed('swtpm', ['--version'])) {
    swtpmMissing = 'swtpm is not installed (apt-get install swtpm swtpm-tools)';
    return null;
  }
  if (!installed('tpm2_pcrread', ['--version'])) {
    swtpmMissing = 'tpm2-tools are not installed (apt-get install tpm2-tools libtss2-tcti-swtpm0)';
    return null;
  }
  for (let attempt = 1; ; attempt++) {
    const port = await freePortPair();
    const ctrl = port + 1;
    const state = mkdtempSync(join(tmpdir(), 'hg-swtpm-'));
    const proc = spawn(
      'swtpm',
      [
        'socket', '--tpm2', '--tpmstate', `dir=${state}`,
        '--server', `type=tcp,port=${port},bindaddr=127.0.0.1`,
        '--ctrl', `type=tcp,port=${ctrl},bindaddr=127.0.0.1`,
        '--flags', 'not-need-init,startup-clear',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    proc.stderr?.on('data', (d) => (stderr += String(d)));
    const cleanup = async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      await exited(proc);
      rmSync(state, { recursive: true, force: true });
    };
    // ready once the control port accepts a connection (bounded; no fixed sleep)
    const deadline = Date.now() + 5000;
    let ready = false;
    while (!ready && Date.now() < deadline && proc.exitCode === null) {
      ready = await canConnect(ctrl);
      if (!ready) await new Promise((r) => setTimeout(r, 10));
    }
    if (!ready) {
      await cleanup();
      if (attempt < 3) continue; // a port taken between freePort() and swtpm's bind
      throw new Error(`swtpm did not start: ${stderr.trim() || 'no output'}`);
    }
    const tcti = `swtpm:host=127.0.0.1,port=${port}`;
    const tool = (args: string[]) =>
      new Promise<void>((resolve) => execFile('tpm2_flushcontext', ['-T', tcti, ...args], () => resolve()));
    return {
      tcti,
      port,
      flush: async () => {
        await tool(['-t']);
        await tool(['-s']);
      },
      stop: cleanup,
    };
  }
}
