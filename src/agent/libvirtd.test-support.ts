/**
 * A private libvirtd for tests (and virtlogd beside it), started by hand as DESIGN.md §5 says, in its own mount
 * namespace: its sockets, state, domain definitions, logs and hooks are folders of a temporary directory bound over
 * /run/libvirt, /etc/libvirt/qemu, /etc/libvirt/hooks, /var/lib/libvirt and /var/log/libvirt. So it neither sees
 * nor disturbs a libvirtd the machine already runs, nor another test's, and its hooks are the test's own.
 * Optionally inside a network namespace, so that guests' taps land on a bridge there.
 *
 * Clients reach it through `?socket=` in the URI. `stop()` destroys its guests, stops the daemons and removes the
 * directory; guests still running after that (libvirtd leaves QEMU running when it dies) are killed by the pid
 * files libvirt wrote, and only those.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execTool, isRoot } from './exec.ts';

const TOOLS = ['libvirtd', 'virtlogd', 'virsh', 'unshare', 'mount', 'ip'];
const BINDS: [string, string][] = [
  ['run', '/run/libvirt'],
  ['etc-qemu', '/etc/libvirt/qemu'],
  ['hooks', '/etc/libvirt/hooks'],
  ['lib', '/var/lib/libvirt'],
  ['log', '/var/log/libvirt'],
];

// A fixed script (our own paths as arguments, nothing from libvirt): bind the folders, start virtlogd, become libvirtd.
const START = `set -e
d=$1; shift
while [ $# -gt 0 ]; do mount --bind "$d/$1" "$2"; shift 2; done
virtlogd -d -p "$d/virtlogd.pid" || [ -S "$d/run/virtlogd-sock" ]
exec libvirtd -p "$d/libvirtd.pid"
`;

const has = (tool: string) => spawnSync('sh', ['-c', 'command -v "$1"', 'sh', tool], { stdio: 'ignore' }).status === 0;

/** Why a private libvirtd cannot run here (the test skips, printing it), or null. `qemu`: real guests too. */
export function libvirtUnavailable(o: { qemu?: boolean } = {}): string | null {
  if (!isRoot()) return 'needs root (a private libvirtd in its own mount namespace)';
  for (const tool of TOOLS) if (!has(tool)) return `${tool} is not installed (libvirt-daemon-system, libvirt-clients)`;
  if (o.qemu && !has('qemu-system-x86_64')) return 'qemu-system-x86_64 is not installed (qemu-system-x86)';
  return null;
}

export interface TestLibvirtd {
  /** the private directory (mode 755, so that QEMU, running as libvirt-qemu, can reach files under it) */
  dir: string;
  socket: string;
  netns: string | null;
  /** `qemu+unix:///system?socket=…` or `test+unix:///default?socket=…` */
  uri(driver: 'qemu' | 'test'): string;
  virsh(driver: 'qemu' | 'test', args: string[], timeoutMs?: number): Promise<string>;
  /** what libvirtd and the mount script printed */
  log(): string;
  /** stop and start libvirtd again (same directory, same hooks); the test driver's state is lost */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

async function waitFor(what: string, ms: number, check: () => Promise<boolean> | boolean, alive: () => string | null): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const dead = alive();
    if (dead) throw new Error(`${what}: ${dead}`);
    if (await check()) return;
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function killPid(pid: number, ms = 5000): Promise<void> {
  if (!pidAlive(pid)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const end = Date.now() + ms;
  while (pidAlive(pid) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  if (pidAlive(pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
}

const readPid = (file: string): number | null => {
  try {
    const n = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(n) && n > 1 ? n : null;
  } catch {
    return null;
  }
};

/**
 * Start a private libvirtd. `hooks` (file name → script) are written to its hook folder first: libvirtd looks for
 * hooks only when it starts. `keepTestState`: keep the test driver's domains between connections (see holdTestState).
 */
export async function startLibvirtd(o: { netns?: string; hooks?: Record<string, string>; keepTestState?: boolean } = {}): Promise<TestLibvirtd> {
  const dir = mkdtempSync('/tmp/hg-libvirtd-');
  chmodSync(dir, 0o755);
  for (const [sub] of BINDS) mkdirSync(join(dir, sub), { mode: 0o755 });
  for (const [name, text] of Object.entries(o.hooks ?? {})) writeFileSync(join(dir, 'hooks', name), text, { mode: 0o755 });
  for (const [, target] of BINDS) mkdirSync(target, { recursive: true });
  const socket = join(dir, 'run', 'libvirt-sock');
  const logFile = join(dir, 'libvirtd.log');
  const uri = (driver: 'qemu' | 'test') => (driver === 'qemu' ? `qemu+unix:///system?socket=${socket}` : `test+unix:///default?socket=${socket}`);
  const virsh = (driver: 'qemu' | 'test', args: string[], timeoutMs = 30_000) => execTool('virsh', ['-q', '-c', uri(driver), ...args], { timeoutMs });

  let child: ChildProcess | null = null;
  let exited: string | null = null;
  const launch = async () => {
    rmSync(socket, { force: true });
    const out = openSync(logFile, 'a');
    const argv = ['--mount', '--propagation', 'private', 'sh', '-c', START, 'sh', dir, ...BINDS.flat()];
    const [cmd, args] = o.netns ? ['ip', ['netns', 'exec', o.netns, 'unshare', ...argv]] : ['unshare', argv];
    exited = null;
    const c = spawn(cmd, args, { stdio: ['ignore', out, out] });
    closeSync(out);
    child = c;
    c.on('exit', (code, signal) => {
      if (child === c) exited = `libvirtd exited (${signal ?? code}): ${readFileSync(logFile, 'utf8').slice(-1500)}`;
    });
    await waitFor('libvirtd', 20_000, async () => existsSync(socket) && (await virsh('test', ['version'], 5000).then(() => true, () => false)), () => exited);
    if (o.keepTestState) await holdTestState();
  };
  // The daemon frees the test driver's state when its last connection to it closes: one connection held open keeps
  // it. It holds once a domain defined by one virsh call is still there for the next.
  let keeper: ChildProcess | null = null;
  const holdTestState = async () => {
    keeper = spawn('virsh', ['-q', '-c', uri('test'), 'event', '--all', '--loop'], { stdio: 'ignore' });
    const marker = join(dir, 'keeper.xml');
    writeFileSync(marker, "<domain type='test'><name>hg-keeper</name><memory>1024</memory><os><type>hvm</type></os></domain>");
    await waitFor('holding the test driver\'s state', 20_000, async () => {
      await virsh('test', ['define', '--file', marker], 5000).catch(() => {});
      return (await virsh('test', ['list', '--all', '--name'], 5000).catch(() => '')).split('\n').includes('hg-keeper');
    }, () => (keeper?.exitCode !== null ? 'virsh event exited' : exited));
    await virsh('test', ['undefine', '--domain', 'hg-keeper'], 5000);
  };
  const dropKeeper = () => {
    if (keeper && keeper.exitCode === null) keeper.kill('SIGKILL');
    keeper = null;
  };
  const stopDaemons = async (destroyGuests: boolean) => {
    dropKeeper();
    const qemuRun = join(dir, 'run', 'qemu');
    const guestPidFiles = () => (existsSync(qemuRun) ? readdirSync(qemuRun).filter((n) => n.endsWith('.pid')) : []);
    // (asking the qemu driver costs its start-up probe: only where guests ran)
    if (destroyGuests && child && !exited && guestPidFiles().length > 0) {
      try {
        const ids = (await virsh('qemu', ['list', '--uuid'], 20_000)).split('\n').filter((l) => l.trim() !== '');
        for (const id of ids) await virsh('qemu', ['destroy', '--domain', id.trim()], 20_000).catch(() => {});
      } catch {
        // no qemu driver here, or libvirtd is gone: the pid files below still name the guests
      }
    }
    const c = child as ChildProcess | null;
    if (c?.pid !== undefined && !exited) await killPid(c.pid);
    const vl = readPid(join(dir, 'virtlogd.pid'));
    if (vl) await killPid(vl);
    // QEMU outlives a killed libvirtd: stop those this libvirtd started
    for (const f of guestPidFiles()) {
      const pid = readPid(join(qemuRun, f));
      if (pid) await killPid(pid, 2000);
    }
    child = null;
  };

  try {
    await launch();
  } catch (e) {
    await stopDaemons(false);
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    dir,
    socket,
    netns: o.netns ?? null,
    uri,
    virsh,
    log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
    async restart() {
      // libvirtd only: virtlogd and the guests go on, and libvirtd finds them again
      dropKeeper();
      const c = child as ChildProcess | null;
      if (c?.pid !== undefined && !exited) await killPid(c.pid);
      child = null;
      await launch();
    },
    async stop() {
      await stopDaemons(true);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
