/** `hueguard measure` as a user runs it: a real process on a real temporary tree. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const bin = join(import.meta.dirname, '..', 'bin', 'hueguard');

function hg(args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

function tree(): string {
  const root = mkdtempSync(join(tmpdir(), 'hg-measure-'));
  mkdirSync(join(root, 'vm', 'etc', 'ssh'), { recursive: true });
  writeFileSync(join(root, 'vm', 'etc', 'ssh', 'sshd_config'), 'PermitRootLogin no\n');
  writeFileSync(join(root, 'vm', 'etc', 'hostname'), 'blue-1\n');
  writeFileSync(join(root, 'vm', 'app.bin'), 'v1');
  return root;
}

test('measure prints one ima-ng line per file, in path order, with the files\' sha256; ima replay reads it', () => {
  const root = tree();
  try {
    const r = hg(['measure', join(root, 'vm')]);
    assert.equal(r.code, 0, r.err);
    const lines = r.out.trim().split('\n').map((l) => l.split(' '));
    const expected = [
      [join(root, 'vm', 'app.bin'), sha256('v1')],
      [join(root, 'vm', 'etc', 'hostname'), sha256('blue-1\n')],
      [join(root, 'vm', 'etc', 'ssh', 'sshd_config'), sha256('PermitRootLogin no\n')],
    ];
    assert.deepEqual(lines.map((f) => [f[4], f[3]]), expected.map(([p, d]) => [p, `sha256:${d}`]));
    for (const f of lines) assert.equal(f[2], 'ima-ng');
    const log = join(root, 'log');
    writeFileSync(log, r.out);
    const replay = JSON.parse(hg(['ima', 'replay', log, '--json']).out);
    assert.equal(replay.entries, 3);
    assert.equal(replay.templateHashMismatches, 0);
  } finally {
    rmSync(root, { recursive: true });
  }
});

test('measure --state: the next run prints only what changed, and a deleted file as deleted:', () => {
  const root = tree();
  const state = join(root, 'state.json');
  try {
    assert.equal(hg(['measure', join(root, 'vm'), '--state', state]).code, 0);
    assert.ok(existsSync(state));
    assert.equal(hg(['measure', join(root, 'vm'), '--state', state]).out, '', 'nothing changed');
    writeFileSync(join(root, 'vm', 'app.bin'), 'v2 with new code');
    rmSync(join(root, 'vm', 'etc', 'hostname'));
    const r = hg(['measure', join(root, 'vm'), '--state', state, '--json']);
    const entries = r.out.trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(entries.map((e) => [e.name, e.digest]), [
      [join(root, 'vm', 'app.bin'), `sha256:${sha256('v2 with new code')}`],
      [`deleted:${join(root, 'vm', 'etc', 'hostname')}`, `sha256:${'0'.repeat(64)}`],
    ]);
  } finally {
    rmSync(root, { recursive: true });
  }
});

test('measure --watch prints a changed file\'s new entry as it happens, and saves the state on SIGTERM', async () => {
  const root = tree();
  const state = join(root, 'state.json');
  const child = spawn(process.execPath, [bin, 'measure', join(root, 'vm'), '--watch', '--state', state], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const lines = createInterface({ input: child.stdout });
    const seen: string[] = [];
    const waitFor = (pred: (l: string) => boolean) =>
      new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out; saw:\n${seen.join('\n')}`)), 20_000);
        const on = (l: string) => {
          seen.push(l);
          if (pred(l)) {
            clearTimeout(timer);
            lines.off('line', on);
            resolve(l);
          }
        };
        lines.on('line', on);
      });
    await waitFor((l) => l.endsWith('sshd_config'));
    writeFileSync(join(root, 'vm', 'etc', 'ssh', 'sshd_config'), 'PermitRootLogin yes\n');
    const line = await waitFor((l) => l.includes(sha256('PermitRootLogin yes\n')));
    assert.ok(line.endsWith(join(root, 'vm', 'etc', 'ssh', 'sshd_config')));
    child.kill('SIGTERM');
    const code = await new Promise((resolve) => child.on('close', resolve));
    assert.equal(code, 0);
    assert.ok(existsSync(state));
    assert.equal(hg(['measure', join(root, 'vm'), '--state', state]).out, '', 'the saved state includes the change');
  } finally {
    child.kill('SIGKILL');
    rmSync(root, { recursive: true });
  }
});

test('measure --domain: a running domain\'s live XML has the digest of its definition; a real change does not', () => {
  const root = mkdtempSync(join(tmpdir(), 'hg-domain-'));
  try {
    const inactive = `<domain type='kvm'>
  <name>blue-1</name>
  <memory unit='KiB'>524288</memory>
  <os><type arch='x86_64'>hvm</type><kernel>/var/lib/libvirt/boot/vmlinuz</kernel><cmdline>console=ttyS0</cmdline></os>
  <devices>
    <disk type='file' device='disk'><source file='/var/lib/libvirt/images/blue-1.img'/><target dev='vda' bus='virtio'/></disk>
    <interface type='bridge'><mac address='52:54:00:aa:bb:01'/><source bridge='hg-br0'/><model type='virtio'/></interface>
  </devices>
</domain>`;
    const live = `<domain type="kvm" id="7">
      <!-- running -->
      <name>blue-1</name>
      <memory unit="KiB">524288</memory>
      <os><type arch="x86_64">hvm</type><kernel>/var/lib/libvirt/boot/vmlinuz</kernel><cmdline>console=ttyS0</cmdline></os>
      <devices>
        <disk device="disk" type="file"><source file="/var/lib/libvirt/images/blue-1.img"/><target bus="virtio" dev="vda"/><alias name="virtio-disk0"/></disk>
        <interface type="bridge"><mac address="52:54:00:aa:bb:01"/><source bridge="hg-br0"/><target dev="vnet3"/><model type="virtio"/><alias name="net0"/></interface>
      </devices>
      <seclabel type="dynamic" model="dac" relabel="yes"><label>+64055:+64055</label><imagelabel>+64055:+64055</imagelabel></seclabel>
    </domain>`;
    const changed = inactive.replace('console=ttyS0', 'console=ttyS0 init=/bin/sh');
    const files = { inactive, live, changed };
    for (const [k, v] of Object.entries(files)) writeFileSync(join(root, `${k}.xml`), v);
    const digest = (k: string) => {
      const r = hg(['measure', '--domain', join(root, `${k}.xml`), '--json']);
      assert.equal(r.code, 0, r.err);
      return JSON.parse(r.out).digest;
    };
    assert.equal(digest('live'), digest('inactive'));
    assert.notEqual(digest('changed'), digest('inactive'));
  } finally {
    rmSync(root, { recursive: true });
  }
});
