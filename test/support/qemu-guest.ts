/**
 * Real guests for tests under QEMU's software emulation (DESIGN.md §5): Debian's kernel, fetched with
 * `apt-get download` and unpacked (never installed), and a busybox initramfs that loads the virtio network modules,
 * puts the address from the kernel command line on eth0 and says so on the serial console.
 *
 * The kernel and its few modules are kept under `.cache/guest-kernel/` in the checkout (ignored by git), so reruns
 * neither download nor unpack again. The initramfs is written by this file (cpio "newc"), so no cpio tool is needed.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execTool } from '../../src/agent/exec.ts';

const CACHE = fileURLToPath(new URL('../../.cache/guest-kernel/', import.meta.url));
/** in load order (DESIGN.md §5) */
export const GUEST_MODULES = ['virtio_ring', 'virtio', 'virtio_pci_modern_dev', 'virtio_pci_legacy_dev', 'virtio_pci', 'failover', 'net_failover', 'virtio_net'];
const KERNEL_PACKAGE = /^linux-image-6\.1\.0-\d+-amd64$/;
export const GUEST_UP = 'hueguard-guest-up';

export interface GuestKernel {
  /** the Debian package it came from */
  package: string;
  vmlinuz: string;
  /** module name → .ko file */
  modules: Map<string, string>;
}

function kernelIn(dir: string, pkg: string): GuestKernel | null {
  const vmlinuz = join(dir, 'vmlinuz');
  const modules = new Map(GUEST_MODULES.map((m) => [m, join(dir, `${m}.ko`)]));
  if (!existsSync(vmlinuz) || [...modules.values()].some((f) => !existsSync(f))) return null;
  return { package: pkg, vmlinuz, modules };
}

/** Run a tool in `cwd` (execTool has no cwd), failing with its stderr. */
function run(cmd: string, args: string[], cwd: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'], timeout: timeoutMs });
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', reject);
    child.on('close', (code, signal) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')}: ${err.trim() || signal || `exit ${code}`}`))));
  });
}

/** `dpkg-deb --fsys-tarfile DEB | tar -x -C DIR` without a shell. */
function unpack(deb: string, dir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const dpkg = spawn('dpkg-deb', ['--fsys-tarfile', deb], { stdio: ['ignore', 'pipe', 'inherit'] });
    const tar = spawn('tar', ['-x', '-C', dir, '--wildcards', './boot/vmlinuz-*', './lib/modules/*/kernel/drivers/virtio/*', './lib/modules/*/kernel/drivers/net/*', './lib/modules/*/kernel/net/core/*'], {
      stdio: ['pipe', 'ignore', 'inherit'],
    });
    dpkg.stdout.pipe(tar.stdin);
    let failed = '';
    dpkg.on('close', (code) => {
      if (code !== 0) failed ||= `dpkg-deb exited ${code}`;
    });
    tar.on('close', (code) => (failed || code !== 0 ? reject(new Error(failed || `tar exited ${code}`)) : resolve()));
  });
}

/** Debian's current 6.1 kernel with the guest's modules: from the cache, or downloaded and unpacked into it. */
export async function guestKernel(): Promise<GuestKernel> {
  mkdirSync(CACHE, { recursive: true });
  for (const pkg of readdirSync(CACHE).filter((n) => KERNEL_PACKAGE.test(n)).sort().reverse()) {
    const k = kernelIn(join(CACHE, pkg), pkg);
    if (k) return k;
  }
  const depends = await execTool('apt-cache', ['depends', 'linux-image-amd64'], { timeoutMs: 60_000 });
  const pkg = /Depends: (linux-image-6\.1\.0-\d+-amd64)\s*$/m.exec(depends)?.[1];
  if (!pkg) throw new Error(`apt-cache depends linux-image-amd64 names no linux-image-6.1.0-*-amd64 (run apt-get update?):\n${depends}`);
  const work = mkdtempSync(join(CACHE, '.fetch-'));
  try {
    await run('apt-get', ['download', '-q', pkg], work, 300_000);
    const deb = readdirSync(work).find((n) => n.endsWith('.deb'));
    if (!deb) throw new Error(`apt-get download ${pkg} left no .deb`);
    const x = join(work, 'x');
    mkdirSync(x);
    await unpack(join(work, deb), x);
    const out = join(work, 'kit');
    mkdirSync(out);
    const boot = readdirSync(join(x, 'boot')).find((n) => n.startsWith('vmlinuz-'));
    if (!boot) throw new Error(`${deb} holds no /boot/vmlinuz-*`);
    copyFileSync(join(x, 'boot', boot), join(out, 'vmlinuz'));
    const [release] = readdirSync(join(x, 'lib', 'modules'));
    const found = new Map<string, string>();
    const walk = (d: string) => {
      for (const n of readdirSync(d)) {
        const p = join(d, n);
        if (statSync(p).isDirectory()) walk(p);
        else if (n.endsWith('.ko')) found.set(n.slice(0, -3), p);
      }
    };
    walk(join(x, 'lib', 'modules', release, 'kernel'));
    for (const m of GUEST_MODULES) {
      const f = found.get(m);
      if (!f) throw new Error(`${deb} has no ${m}.ko (compressed modules are not handled)`);
      copyFileSync(f, join(out, `${m}.ko`));
    }
    rmSync(join(CACHE, pkg), { recursive: true, force: true });
    renameSync(out, join(CACHE, pkg));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const k = kernelIn(join(CACHE, pkg), pkg);
  if (!k) throw new Error(`the kernel cache ${join(CACHE, pkg)} is incomplete`);
  return k;
}

// ---- initramfs ----

interface CpioEntry {
  name: string;
  mode: number;
  data?: Buffer;
  rdev?: [number, number];
}

/** A cpio archive in the "newc" format the kernel unpacks as its initramfs. */
export function newcArchive(entries: CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  const pad = (n: number) => Buffer.alloc((4 - (n % 4)) % 4);
  const hex = (n: number) => n.toString(16).padStart(8, '0');
  let ino = 1;
  for (const e of [...entries, { name: 'TRAILER!!!', mode: 0 }] as CpioEntry[]) {
    const data = e.data ?? Buffer.alloc(0);
    const name = Buffer.from(`${e.name}\0`);
    const fields = [e.name === 'TRAILER!!!' ? 0 : ino++, e.mode, 0, 0, 1, 0, data.length, 0, 0, e.rdev?.[0] ?? 0, e.rdev?.[1] ?? 0, name.length, 0];
    const header = Buffer.from(`070701${fields.map(hex).join('')}`);
    parts.push(header, name, pad(header.length + name.length), data, pad(data.length));
  }
  return Buffer.concat(parts);
}

const INIT = `#!/bin/busybox sh
B=/bin/busybox
$B mount -t proc proc /proc
$B mount -t sysfs sys /sys
for m in ${GUEST_MODULES.join(' ')}; do $B insmod /lib/modules/$m.ko; done
ip=
for a in $($B cat /proc/cmdline); do case $a in hg_ip=*) ip=\${a#hg_ip=};; esac; done
$B ip link set lo up
$B ip link set eth0 up
[ -n "$ip" ] && $B ip addr add "$ip" dev eth0
echo ${GUEST_UP} "$ip" > /dev/ttyS0
exec $B sleep 2147483647
`;

/** Write an initramfs (busybox, the modules, an init that brings eth0 up with `hg_ip=ADDR/PREFIX`) to `file`. */
export function writeInitramfs(kernel: GuestKernel, file: string): void {
  const dir = (name: string): CpioEntry => ({ name, mode: 0o040755 });
  const entries: CpioEntry[] = [
    dir('bin'),
    dir('dev'),
    { name: 'dev/console', mode: 0o020600, rdev: [5, 1] },
    { name: 'dev/ttyS0', mode: 0o020600, rdev: [4, 64] },
    dir('proc'),
    dir('sys'),
    dir('lib'),
    dir('lib/modules'),
    { name: 'bin/busybox', mode: 0o100755, data: readFileSync('/bin/busybox') },
    { name: 'init', mode: 0o100755, data: Buffer.from(INIT) },
    ...[...kernel.modules].map(([m, f]) => ({ name: `lib/modules/${m}.ko`, mode: 0o100644, data: readFileSync(f) })),
  ];
  writeFileSync(file, newcArchive(entries), { mode: 0o644 });
}

/** Why real guests cannot run here, or null: QEMU and a static busybox are needed (KVM is not). */
export function guestUnavailable(): string | null {
  if (!existsSync('/usr/bin/qemu-system-x86_64')) return 'qemu-system-x86_64 is not installed (qemu-system-x86)';
  if (!existsSync('/bin/busybox')) return 'busybox is not installed (busybox-static)';
  // the initramfs has no libc: a dynamically linked busybox names its loader
  if (readFileSync('/bin/busybox').subarray(0, 4096).includes('ld-linux')) return '/bin/busybox is not statically linked (install busybox-static)';
  if (!existsSync('/usr/bin/dpkg-deb') && !existsSync(CACHE)) return 'dpkg-deb is missing and no kernel is cached';
  return null;
}

/**
 * The domain of a test guest: the kernel and initrd in `work` (as `vmlinuz`, `initrd.cpio`), a 1 MiB raw disk
 * `work/NAME.img`, one virtio interface on `bridge` with tap `tap`, the serial console to `work/NAME.console`.
 * `ip` (address/prefix) is given to the guest's init on its command line.
 */
export function guestDomainXml(g: { name: string; tap: string; bridge: string; work: string; ip?: string }): string {
  return `<domain type='qemu'>
  <name>${g.name}</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>${g.work}/vmlinuz</kernel>
    <initrd>${g.work}/initrd.cpio</initrd>
    <cmdline>console=ttyS0 quiet panic=-1${g.ip ? ` hg_ip=${g.ip}` : ''}</cmdline>
  </os>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='${g.work}/${g.name}.img'/><target dev='vda' bus='virtio'/></disk>
    <interface type='bridge'><source bridge='${g.bridge}'/><target dev='${g.tap}'/><model type='virtio'/></interface>
    <serial type='file'><source path='${g.work}/${g.name}.console'/></serial>
    <memballoon model='none'/>
  </devices>
</domain>
`;
}
