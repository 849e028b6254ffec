/**
 * The measurer against real files in temp dirs, real inotify watches and an independent digest (`sha256sum`).
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  mkdirSync,
  mkdtempSync,
  readlinkSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  truncateSync,
  unlinkSync,
  utimesSync,
  chmodSync,
  writeFileSync,
  openSync,
  writeSync,
  closeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { computeTemplateHash, type ImaEntry } from './ima-entry.ts';
import { isIntegrityError } from './errors.ts';
import {
  MARK,
  Measurer,
  ZERO_DIGEST,
  hashFile,
  imaNgEntry,
  measureFile,
  measureImage,
  measureTree,
  measurementName,
  parseMeasuredName,
} from './measure.ts';
import { parseState } from './measure-state.ts';
import { MAX_TREE_DEPTH } from './measure-tree.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const sha256 = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');
const byBytes = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

/** sha256sum's digests of these files (one process for all). */
function sha256sum(files: string[]): Map<string, string> {
  const out = execFileSync('sha256sum', ['--', ...files], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const m = new Map<string, string>();
  for (const line of out.split('\n')) {
    if (line === '') continue;
    assert.ok(!line.startsWith('\\'), `sha256sum escaped a name: ${line}`);
    m.set(line.slice(66), line.slice(0, 64));
  }
  return m;
}

function tempDir(tag: string): string {
  return realpathSync(mkdtempSync(join(tmpdir(), `hg-measure-${tag}-`)));
}

/** Wait, bounded, until `cond` holds (the watcher works asynchronously). */
async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Let late events arrive and be handled, so that "no further entry" can be asserted. */
async function settled(m: Measurer): Promise<void> {
  await m.idle();
  await new Promise((r) => setTimeout(r, 60));
  await m.idle();
}

/** Run fn, then set p's atime and mtime back exactly (to the nanosecond: `touch -r`, as an intruder would). */
function keepingMtime(p: string, fn: () => void): void {
  const ref = `${p}.timeref`;
  writeFileSync(ref, '');
  execFileSync('touch', ['-r', p, ref]);
  fn();
  execFileSync('touch', ['-r', ref, p]);
  unlinkSync(ref);
}

function assertWellFormed(e: ImaEntry): void {
  assert.equal(e.template, 'ima-ng');
  assert.equal(e.pcr, 10);
  assert.equal(e.digestAlg, 'sha256');
  assert.equal(e.digest.length, 32);
  assert.equal(hex(e.templateHash), hex(computeTemplateHash(e)), `template hash of ${e.name}`);
}

describe('entries', () => {
  test('imaNgEntry template hashes equal computeTemplateHash, whatever the name (and SHA-1 block boundary)', () => {
    const names = ['', 'boot_aggregate', '/usr/bin/bash', '/x/\u{1F600}/y', 'a'.repeat(5000), 'é'.repeat(3000)];
    for (let n = 0; n < 300; n++) names.push('n'.repeat(n), 'é'.repeat(n >> 1));
    for (const name of names) assertWellFormed(imaNgEntry(name, randomBytes(32)));
  });

  test('names: spaces and control characters become _, markers parse back', () => {
    assert.equal(measurementName('/a b/c\td\ne\x7f'), '/a_b/c_d_e_');
    assert.equal(measurementName('/plain/é'), '/plain/é');
    assert.deepEqual(parseMeasuredName('deleted:/etc/passwd'), { kind: 'deleted', path: '/etc/passwd' });
    assert.deepEqual(parseMeasuredName('symlink:/lib'), { kind: 'symlink', path: '/lib' });
    assert.deepEqual(parseMeasuredName('/etc/passwd'), { kind: 'file', path: '/etc/passwd' });
  });
});

describe('measuring a tree once', () => {
  let dir: string;
  before(() => {
    dir = tempDir('tree');
    mkdirSync(join(dir, 'etc/ssh'), { recursive: true });
    mkdirSync(join(dir, 'usr/lib/x86_64'), { recursive: true });
    mkdirSync(join(dir, 'a-b'));
    mkdirSync(join(dir, 'empty-dir'));
    writeFileSync(join(dir, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\n');
    writeFileSync(join(dir, 'etc/ssh/sshd_config'), 'PermitRootLogin no\n');
    writeFileSync(join(dir, 'etc/empty'), '');
    writeFileSync(join(dir, 'usr/lib/x86_64/libc.so.6'), randomBytes(3 << 20)); // > 1 MiB: the streamed path
    writeFileSync(join(dir, 'usr/lib/x86_64/big-but-small.so'), randomBytes((1 << 20) - 1));
    writeFileSync(join(dir, 'a-b/x'), 'dash sorts before slash');
    writeFileSync(join(dir, 'a'), 'a file named a');
    writeFileSync(join(dir, 'with space'), 'spaces');
    writeFileSync(join(dir, 'é-unicode'), 'unicode');
    writeFileSync(join(dir, '\u{1F600}'), 'astral');
    writeFileSync(join(dir, '\uFFFD-real'), 'a real U+FFFD in a name');
    symlinkSync('libc.so.6', join(dir, 'usr/lib/x86_64/libc.so'));
    symlinkSync('/etc/shadow', join(dir, 'etc/outside')); // never followed out of the tree
    symlinkSync('usr/lib', join(dir, 'lib')); // a link to a directory: not descended
    symlinkSync('nowhere', join(dir, 'dangling'));
    execFileSync('mkfifo', [join(dir, 'etc/fifo')]); // special: skipped (and must not block the reader)
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('every regular file and link, in byte order of the path, with sha256sum digests', async () => {
    const list = await measureTree(dir);
    const files = ['etc/passwd', 'etc/ssh/sshd_config', 'etc/empty', 'usr/lib/x86_64/libc.so.6', 'usr/lib/x86_64/big-but-small.so',
      'a-b/x', 'a', 'with space', 'é-unicode', '\u{1F600}', '\uFFFD-real'].map((f) => join(dir, f));
    const links = ['usr/lib/x86_64/libc.so', 'etc/outside', 'lib', 'dangling'].map((f) => join(dir, f));
    const sums = sha256sum(files);
    const expected = [
      ...files.map((p) => ({ path: p, name: measurementName(p), digest: sums.get(p) as string })),
      ...links.map((p) => ({ path: p, name: MARK.symlink + measurementName(p), digest: sha256(readlinkSync(p, { encoding: 'buffer' })) })),
    ].sort((x, y) => byBytes(x.path, y.path));
    assert.deepEqual(
      list.map((e) => [e.name, hex(e.digest)]),
      expected.map((x) => [x.name, x.digest]),
    );
    for (const e of list) assertWellFormed(e);
    // byte order, not UTF-16 order: the astral character (F0 9F…) sorts after U+FFFD (EF BF BD)
    const names = list.map((e) => e.name);
    assert.ok(names.indexOf(join(dir, '\uFFFD-real')) < names.indexOf(join(dir, '\u{1F600}')));
    assert.ok(names.indexOf(join(dir, 'a')) < names.indexOf(join(dir, 'a-b/x')));
    assert.ok(!names.some((n) => n.includes('fifo')), 'a FIFO is skipped');
  });

  test('a file root, and a root given twice or inside another, are measured once', async () => {
    const list = await measureTree([join(dir, 'etc/passwd'), join(dir, 'etc'), `${dir}/etc/../etc/passwd`]);
    assert.deepEqual(list.map((e) => e.name), [
      join(dir, 'etc/empty'), MARK.symlink + join(dir, 'etc/outside'), join(dir, 'etc/passwd'), join(dir, 'etc/ssh/sshd_config'),
    ]);
  });

  test('a name that is not UTF-8 cannot be read back: it is recorded unreadable, never skipped', async () => {
    const d = tempDir('badname');
    try {
      writeFileSync(Buffer.concat([Buffer.from(`${d}/`), Buffer.from([0x66, 0xff, 0x66])]), 'hidden?');
      writeFileSync(join(d, 'ok'), 'ok');
      const errors: Error[] = [];
      const list = await measureTree(d, { onError: (e) => errors.push(e) });
      assert.deepEqual(list.map((e) => e.name), [MARK.unreadable + join(d, 'f\uFFFDf'), join(d, 'ok')]);
      assert.equal(hex(list[0].digest), hex(ZERO_DIGEST));
      assert.equal(errors.length, 1);
      assert.ok(isIntegrityError(errors[0]) && errors[0].code === 'measure_unreadable' && errors[0].place.file === join(d, 'f\uFFFDf'));
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });

  test('a tree deeper than MAX_TREE_DEPTH (a bind-mount loop, say) stops there, unreadable', async () => {
    const d = tempDir('deep');
    try {
      const deepest = join(d, ...Array.from({ length: MAX_TREE_DEPTH + 2 }, () => 'd'));
      mkdirSync(deepest, { recursive: true });
      writeFileSync(join(deepest, 'f'), 'deep');
      writeFileSync(join(d, 'top'), 'top');
      const list = await measureTree(d, { onError: () => {} });
      const stop = join(d, ...Array.from({ length: MAX_TREE_DEPTH + 1 }, () => 'd'));
      assert.deepEqual(list.map((e) => e.name), [MARK.unreadable + stop, join(d, 'top')]);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });

  test('a missing root or file is an IntegrityError naming it', async () => {
    const missing = join(dir, 'no/such');
    await assert.rejects(measureTree(missing), (e: unknown) => isIntegrityError(e) && e.code === 'measure_unreadable' && e.place.file === missing);
    await assert.rejects(measureFile(missing), (e: unknown) => isIntegrityError(e) && e.code === 'measure_unreadable' && e.message.includes(missing));
    await assert.rejects(measureFile(join(dir, 'etc')), (e: unknown) => isIntegrityError(e) && e.message.includes('EISDIR'));
  });
});

describe('disk images', () => {
  test('a 64 MiB image: the streamed digest equals sha256sum', async () => {
    const d = tempDir('image');
    try {
      const img = join(d, 'disk.img');
      const fd = openSync(img, 'w');
      for (let i = 0; i < 64; i++) writeSync(fd, randomBytes(1 << 20));
      writeSync(fd, Buffer.from('an odd tail, not a multiple of the chunk'));
      closeSync(fd);
      const e = await measureImage(img);
      assert.equal(hex(e.digest), sha256sum([img]).get(img));
      assert.equal(e.name, img);
      assertWellFormed(e);
      assert.equal(hex(await hashFile(img)), hex(e.digest));
      // sparse: a hole reads as zeros
      const sparse = join(d, 'sparse.img');
      writeFileSync(sparse, '');
      truncateSync(sparse, 20 << 20);
      assert.equal(hex((await measureImage(sparse)).digest), sha256(Buffer.alloc(20 << 20)));
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
});

describe('watching a tree', () => {
  let dir: string;
  let m: Measurer;
  const seen: ImaEntry[] = [];
  const errors: Error[] = [];
  before(async () => {
    dir = tempDir('watch');
    mkdirSync(join(dir, 'etc'), { recursive: true });
    mkdirSync(join(dir, 'var/lib'), { recursive: true });
    writeFileSync(join(dir, 'etc/hosts'), '127.0.0.1 localhost\n');
    writeFileSync(join(dir, 'etc/motd'), 'hello\n');
    writeFileSync(join(dir, 'var/lib/data'), 'data v1');
    m = new Measurer({ roots: [dir], watch: true, settleMs: 5, onEntry: (e) => void seen.push(e), onError: (e) => errors.push(e) });
    const first = await m.start();
    assert.equal(first.length, 3);
  });
  after(async () => {
    await m.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Run a change and return exactly the entries it produced. */
  async function change(what: string, fn: () => void, expect: number): Promise<ImaEntry[]> {
    const from = m.list.length;
    fn();
    await until(() => m.list.length >= from + expect, what);
    await settled(m);
    const got = m.list.slice(from);
    assert.equal(got.length, expect, `${what}: ${got.map((e) => e.name).join(', ')}`);
    for (const e of got) assertWellFormed(e);
    return got;
  }

  test('changing one file: exactly one new entry, with the new digest', async () => {
    const [e] = await change('a write', () => writeFileSync(join(dir, 'etc/hosts'), '10.0.0.1 evil\n'), 1);
    assert.equal(e.name, join(dir, 'etc/hosts'));
    assert.equal(hex(e.digest), sha256('10.0.0.1 evil\n'));
    assert.equal(seen[seen.length - 1], e, 'onEntry saw it too');
  });

  test('a rewrite with the same content adds nothing; changing back to an old content adds an entry', async () => {
    await change('same content', () => writeFileSync(join(dir, 'etc/hosts'), '10.0.0.1 evil\n'), 0);
    const [e] = await change('back to the original', () => writeFileSync(join(dir, 'etc/hosts'), '127.0.0.1 localhost\n'), 1);
    assert.equal(hex(e.digest), sha256('127.0.0.1 localhost\n'));
  });

  test('touching or chmod-ing a file hashes it again but adds nothing: its content did not change', async () => {
    const p = join(dir, 'etc/hosts');
    await change('touch', () => utimesSync(p, new Date(), new Date(Date.now() + 5000)), 0);
    await change('chmod', () => chmodSync(p, 0o600), 0);
  });

  test('a same-size change with the mtime set back is still seen (ctime)', async () => {
    const p = join(dir, 'etc/motd');
    const before = statSync(p, { bigint: true });
    const [e] = await change('forged mtime', () => keepingMtime(p, () => writeFileSync(p, 'HELLO\n')), 1);
    const now = statSync(p, { bigint: true });
    assert.deepEqual([now.size, now.mtimeNs, now.ino], [before.size, before.mtimeNs, before.ino]);
    assert.equal(hex(e.digest), sha256('HELLO\n'));
  });

  test('a new file in a new nested folder', async () => {
    const [e] = await change('mkdir -p + write', () => {
      mkdirSync(join(dir, 'opt/new/deeper'), { recursive: true });
      writeFileSync(join(dir, 'opt/new/deeper/tool'), '#!/bin/sh\necho pwned\n');
    }, 1);
    assert.equal(e.name, join(dir, 'opt/new/deeper/tool'));
    assert.equal(hex(e.digest), sha256('#!/bin/sh\necho pwned\n'));
    // and the new folder is watched: a later change there is seen
    const [e2] = await change('write in the new folder', () => writeFileSync(join(dir, 'opt/new/deeper/tool'), 'v2'), 1);
    assert.equal(hex(e2.digest), sha256('v2'));
  });

  test('renaming a file: deleted: for the old path, an entry for the new one', async () => {
    const got = await change('rename', () => renameSync(join(dir, 'etc/motd'), join(dir, 'etc/motd.old')), 2);
    assert.deepEqual(got.map((e) => [e.name, hex(e.digest)]), [
      [MARK.deleted + join(dir, 'etc/motd'), hex(ZERO_DIGEST)],
      [join(dir, 'etc/motd.old'), sha256('HELLO\n')],
    ]);
  });

  test('deleting a file: a deleted: entry with a zero digest', async () => {
    const [e] = await change('unlink', () => unlinkSync(join(dir, 'etc/motd.old')), 1);
    assert.equal(e.name, MARK.deleted + join(dir, 'etc/motd.old'));
    assert.equal(hex(e.digest), hex(ZERO_DIGEST));
  });

  test('replacing a file by rename, then writing it in place: both seen', async () => {
    const p = join(dir, 'var/lib/data');
    const [e1] = await change('atomic replace', () => {
      writeFileSync(`${p}.tmp`, 'data v2');
      renameSync(`${p}.tmp`, p);
    }, 1);
    assert.deepEqual([e1.name, hex(e1.digest)], [p, sha256('data v2')]);
    const [e2] = await change('in-place write after the replace', () => writeFileSync(p, 'data v3, longer'), 1);
    assert.equal(hex(e2.digest), sha256('data v3, longer'));
  });

  test('a symlink, and a file turned into a symlink', async () => {
    const [e] = await change('ln -s', () => symlinkSync('../etc/hosts', join(dir, 'var/hosts')), 1);
    assert.deepEqual([e.name, hex(e.digest)], [MARK.symlink + join(dir, 'var/hosts'), sha256('../etc/hosts')]);
    const [e2] = await change('file → link', () => {
      unlinkSync(join(dir, 'var/lib/data'));
      symlinkSync('/etc/passwd', join(dir, 'var/lib/data'));
    }, 1);
    assert.deepEqual([e2.name, hex(e2.digest)], [MARK.symlink + join(dir, 'var/lib/data'), sha256('/etc/passwd')]);
  });

  test('moving a folder: its files deleted under the old path, measured under the new', async () => {
    const got = await change('mv opt/new opt/moved', () => renameSync(join(dir, 'opt/new'), join(dir, 'opt/moved')), 2);
    assert.deepEqual(got.map((e) => [e.name, hex(e.digest)]), [
      [join(dir, 'opt/moved/deeper/tool'), sha256('v2')],
      [MARK.deleted + join(dir, 'opt/new/deeper/tool'), hex(ZERO_DIGEST)],
    ]);
    const [e] = await change('write in the moved folder', () => writeFileSync(join(dir, 'opt/moved/deeper/tool'), 'v3'), 1);
    assert.equal(e.name, join(dir, 'opt/moved/deeper/tool'));
  });

  test('removing a folder tree', async () => {
    mkdirSync(join(dir, 'tmp/a/b'), { recursive: true });
    await change('two files', () => {
      writeFileSync(join(dir, 'tmp/a/one'), '1');
      writeFileSync(join(dir, 'tmp/a/b/two'), '2');
    }, 2);
    const got = await change('rm -r', () => rmSync(join(dir, 'tmp'), { recursive: true }), 2);
    assert.deepEqual(got.map((e) => e.name), [MARK.deleted + join(dir, 'tmp/a/b/two'), MARK.deleted + join(dir, 'tmp/a/one')]);
  });

  test('entries() replays the list from the start, then follows it', async () => {
    const it = m.entries();
    const firstOnes: ImaEntry[] = [];
    for (let i = 0; i < m.list.length; i++) firstOnes.push((await it.next()).value as ImaEntry);
    assert.deepEqual(firstOnes, m.list);
    const next = it.next();
    writeFileSync(join(dir, 'etc/hosts'), 'iterated');
    const got = await next;
    assert.equal(hex((got.value as ImaEntry).digest), sha256('iterated'));
    await it.return?.();
    await settled(m);
  });

  test('the list only grew, and no watch error came', () => {
    assert.deepEqual(seen, m.list);
    assert.deepEqual(errors, []);
  });
});

describe('rescan and saved state', () => {
  test('a restart from a saved state finds exactly the offline changes', async () => {
    const dir = tempDir('state');
    try {
      mkdirSync(join(dir, 'bin'));
      for (const f of ['keep', 'change', 'remove', 'same-content']) writeFileSync(join(dir, 'bin', f), `${f} v1`);
      const m1 = new Measurer({ roots: [dir] });
      assert.equal((await m1.start()).length, 4);
      const saved = m1.saveState();
      await m1.close();
      assert.equal(parseState(saved).size, 4);

      // offline: change, delete, add, rewrite with identical content, add a folder
      writeFileSync(join(dir, 'bin/change'), 'change v2');
      unlinkSync(join(dir, 'bin/remove'));
      writeFileSync(join(dir, 'bin/added'), 'added');
      writeFileSync(join(dir, 'bin/same-content'), 'same-content v1');
      mkdirSync(join(dir, 'new/dir'), { recursive: true });
      writeFileSync(join(dir, 'new/dir/f'), 'f');

      const m2 = new Measurer({ roots: [dir] });
      m2.loadState(saved);
      const got = await m2.start();
      assert.deepEqual(got.map((e) => [e.name, hex(e.digest)]), [
        [join(dir, 'bin/added'), sha256('added')],
        [join(dir, 'bin/change'), sha256('change v2')],
        [MARK.deleted + join(dir, 'bin/remove'), hex(ZERO_DIGEST)],
        [join(dir, 'new/dir/f'), sha256('f')],
      ]);
      // nothing changed since: a rescan finds nothing, even for files hashed moments ago ("racy" ones are re-read)
      assert.deepEqual(await m2.rescan(), []);
      // a change that keeps size, mtime and inode: found through ctime
      const p = join(dir, 'bin/keep');
      const st = statSync(p, { bigint: true });
      keepingMtime(p, () => writeFileSync(p, 'KEEP v1'));
      assert.equal(statSync(p, { bigint: true }).mtimeNs, st.mtimeNs);
      assert.deepEqual((await m2.rescan()).map((e) => e.name), [p]);
      await m2.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a racy file is hashed again even when its stat did not change', async () => {
    const dir = tempDir('racy');
    try {
      const p = join(dir, 'f');
      writeFileSync(p, 'aaaa');
      const st = statSync(p);
      // A clock that says "now" is the file's ctime: it was hashed within its own timestamp tick.
      const m = new Measurer({ roots: [dir], now: () => st.ctimeMs });
      await m.start();
      assert.equal(m.state.get(p)?.racy, true);
      // A second write within the same clock tick leaves size, mtime, ctime and inode as they were. Simulated:
      // write, then put the new timestamps into the saved state, as if they had not moved.
      writeFileSync(p, 'bbbb');
      const s2 = statSync(p, { bigint: true });
      const state = JSON.parse(m.saveState());
      state.files[p].mtimeNs = s2.mtimeNs.toString();
      state.files[p].ctimeNs = s2.ctimeNs.toString();
      assert.equal(state.files[p].ino, s2.ino.toString());
      const m2 = new Measurer({ roots: [dir], now: () => Number(s2.ctimeMs) });
      m2.loadState(JSON.stringify(state));
      const got = await m2.start();
      assert.deepEqual(got.map((e) => hex(e.digest)), [sha256('bbbb')]);
      // the same state without the racy mark: the change would go unseen, which is what `racy` is for
      state.files[p].racy = false;
      const m3 = new Measurer({ roots: [dir] });
      m3.loadState(JSON.stringify(state));
      assert.deepEqual(await m3.start(), []);
      for (const x of [m, m2, m3]) await x.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a state that is not ours is refused with measure_bad_state', () => {
    const m = new Measurer({ roots: ['/'] });
    for (const bad of ['nope', '{}', '{"format":"hueguard-measure-state","version":2,"files":{}}',
      '{"format":"hueguard-measure-state","version":1,"files":{"/a":{"kind":"file","size":1,"mtimeNs":"1","ctimeNs":"1","ino":"1","digest":"zz"}}}']) {
      assert.throws(() => m.loadState(bad), (e: unknown) => isIntegrityError(e) && e.code === 'measure_bad_state');
    }
  });

  test('onEntry promises are awaited in order (a TPM extend)', async () => {
    const dir = tempDir('order');
    try {
      for (let i = 0; i < 5; i++) writeFileSync(join(dir, `f${i}`), `${i}`);
      const log: string[] = [];
      const m = new Measurer({
        roots: [dir],
        onEntry: async (e) => {
          log.push(`start ${e.name}`);
          await new Promise((r) => setTimeout(r, 2));
          log.push(`end ${e.name}`);
        },
      });
      await m.start();
      const expected = [0, 1, 2, 3, 4].flatMap((i) => [`start ${join(dir, `f${i}`)}`, `end ${join(dir, `f${i}`)}`]);
      assert.deepEqual(log, expected);
      await m.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
