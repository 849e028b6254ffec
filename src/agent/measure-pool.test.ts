/**
 * The measurer with its looks made in worker threads (MeasurePool) against the measurer alone, on real trees:
 * the same entries in the same order, the same errors and the same saved state; files vanishing or changing
 * kind during the walk; a pool that stops halfway; a pool that does not keep the process alive.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { computeTemplateHash } from '../integrity/ima-entry.ts';
import { LOOK_BATCH, Measurer, pathEntry, type Looker } from '../integrity/measure.ts';
import { lookPacked, unpackLooks } from '../integrity/measure-read.ts';
import { nativeImaAddon, nativeImaStatus } from './ima-native.ts';
import { MeasurePool } from './measure-pool.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const NOW = () => Date.now() + 86_400_000; // nothing racy: the state does not depend on how long a run takes

interface Run {
  entries: string[];
  errors: string[];
  state: string;
}

async function measure(roots: string[], looker?: Looker): Promise<Run> {
  const errors: string[] = [];
  const m = new Measurer({ roots, looker, now: NOW, onError: (e) => errors.push(e.message) });
  const list = await m.start();
  await m.close();
  return { entries: list.map((e) => `${hex(e.templateHash)} ${hex(e.digest)} ${e.name}`), errors, state: m.saveState() };
}

describe('MeasurePool', () => {
  let dir: string;
  let pool: MeasurePool;
  before(() => {
    pool = new MeasurePool({ threads: 2 });
    dir = realpathSync(mkdtempSync(join(tmpdir(), 'hg-pool-')));
    for (let i = 0; i < 6 * LOOK_BATCH; i++) {
      const d = join(dir, `a${i % 5}`, `b${i % 4}`);
      mkdirSync(d, { recursive: true });
      writeFileSync(join(d, `f${i}`), randomBytes(i % 300));
    }
    writeFileSync(join(dir, 'large'), randomBytes((1 << 20) + 1));
    writeFileSync(join(dir, 'name with space'), 's');
    writeFileSync(join(dir, 'tab\tnewline\ndel\x7f'), 'control characters become _');
    writeFileSync(join(dir, 'empty'), '');
    writeFileSync(join(dir, 'exactly-1MiB'), randomBytes(1 << 20));
    writeFileSync(Buffer.concat([Buffer.from(`${dir}/a2/`), Buffer.from([0xc3, 0x28])]), 'not UTF-8');
    symlinkSync('f1', join(dir, 'a1/b1/link'));
    symlinkSync('/etc/passwd', join(dir, 'outside'));
    symlinkSync('missing', join(dir, 'dangling'));
    execFileSync('mkfifo', [join(dir, 'fifo')]);
  });
  after(async () => {
    await pool.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('gives what the measurer alone gives: entries, errors, state', async () => {
    const alone = await measure([dir]);
    assert.ok(alone.entries.length > 6 * LOOK_BATCH);
    assert.equal(alone.errors.length, 1);
    let calls = 0;
    const counting: Looker = { parallelism: pool.parallelism, look: (p, h) => (calls++, pool.look(p, h)) };
    assert.deepEqual(await measure([dir], counting), alone);
    assert.ok(calls >= 6, `${calls} batches went to the workers`);
    // several roots, one inside another, and a file root
    const roots = [join(dir, 'a1'), dir, join(dir, 'a3/b3'), join(dir, 'large')];
    assert.deepEqual(await measure(roots, pool), await measure(roots));
  });

  test('the native reader gives what measure-read gives, with each file\'s template hash, and leaves the rest to the measurer', (t) => {
    const addon = nativeImaAddon();
    if (addon === null) {
      if (process.env.CI) assert.fail(`in CI the native addon must load: ${nativeImaStatus().detail}`);
      return t.skip(`the native addon is not loaded: ${nativeImaStatus().detail}`);
    }
    assert.notEqual(pool.native, null, 'the pool reads with the addon');
    const paths = execFileSync('find', [dir, '-mindepth', '1'], { encoding: 'utf8' }).split('\n').filter(Boolean).sort();
    paths.push(join(dir, 'gone'), join(dir, 'f1/under-a-file'));
    const hints = paths.map((p) => (p.endsWith('link') || p.endsWith('outside') || p.endsWith('dangling') ? 's' : 'f')).join('');
    const js = unpackLooks(lookPacked(paths.join('\0'), hints));
    const packed = addon.lookPacked(paths.join('\0'), hints);
    const nat = unpackLooks(packed);
    let files = 0;
    for (let i = 0; i < paths.length; i++) {
      const n = nat[i];
      const j = js[i];
      if (n === null) {
        // left to the measurer: links, files over 1 MiB, errors
        assert.ok(hints[i] === 's' || (j !== null && j.kind === 'file' && j.stat.size > 1n << 20n) || j === null || j.kind === 'unreadable' || j.kind === 'symlink', `${paths[i]}: ${JSON.stringify(j, (_k, v) => (typeof v === 'bigint' ? String(v) : v))}`);
        continue;
      }
      if (n.kind === 'file') {
        files++;
        const { templateHash, ...rest } = n;
        assert.deepEqual(rest, j, paths[i]);
        assert.equal(hex(templateHash!), hex(computeTemplateHash(pathEntry('file', paths[i], n.digest))), paths[i]);
      } else assert.deepEqual(n, j, paths[i]);
    }
    assert.ok(files >= 6 * LOOK_BATCH, `${files} files answered natively`);
    assert.equal(nat[paths.indexOf(join(dir, 'exactly-1MiB'))]?.kind, 'file', 'a file of exactly 1 MiB is a small file');
    assert.equal(nat[paths.indexOf(join(dir, 'large'))], null, 'a larger one is streamed by the measurer');
    assert.equal(nat[paths.indexOf(join(dir, 'gone'))]?.kind, 'absent');
    assert.equal(nat[paths.indexOf(join(dir, 'fifo'))]?.kind, 'other');
  });

  test('a pool closed halfway: the measurer reads the rest itself', async () => {
    const alone = await measure([dir]);
    const p = new MeasurePool({ threads: 2 });
    let calls = 0;
    const closing: Looker = {
      parallelism: 2,
      look(paths, hints) {
        if (++calls === 3) void p.close();
        return p.look(paths, hints);
      },
    };
    assert.deepEqual(await measure([dir], closing), alone);
    await assert.rejects(p.look(['/etc/hostname'], ['file']), /closed/);
  });

  test('files deleted while the workers read them: every entry is right, every file kept is there', async () => {
    const d = realpathSync(mkdtempSync(join(tmpdir(), 'hg-pool-race-')));
    try {
      const files: string[] = [];
      for (let i = 0; i < 12 * LOOK_BATCH; i++) {
        const p = join(d, `d${i % 10}`, `f${i}`);
        if (i < 10) mkdirSync(join(d, `d${i}`));
        writeFileSync(p, `content ${i}`);
        files.push(p);
      }
      const deleted = new Set<string>();
      let stop = false;
      // delete every 7th file, from the end, while the pass runs (the workers read in path order from the start)
      const deleting = (async () => {
        for (let i = files.length - 1; i >= 0 && !stop; i -= 7) {
          unlinkSync(files[i]);
          deleted.add(files[i]);
          if (i % 70 === 0) await new Promise((r) => setImmediate(r));
        }
      })();
      const m = new Measurer({ roots: [d], looker: pool });
      const list = await m.start();
      stop = true;
      await deleting;
      await m.close();
      const byName = new Map(list.map((e) => [e.name, hex(e.digest)]));
      assert.equal(byName.size, list.length, 'one entry per file');
      for (const f of files) {
        const want = createHash('sha256').update(`content ${files.indexOf(f)}`).digest('hex');
        if (byName.has(f)) assert.equal(byName.get(f), want, f);
        else assert.ok(deleted.has(f), `${f} was not deleted, yet has no entry`);
      }
      assert.deepEqual(list.map((e) => e.name), [...list.map((e) => e.name)].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
      assert.ok(list.every((e) => !e.name.includes(':')), 'nothing but files (a deleted file is not an error)');
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });

  test('files replaced between the listing and the looks, as the measurer alone sees them', async () => {
    const d = realpathSync(mkdtempSync(join(tmpdir(), 'hg-pool-kind-')));
    try {
      const build = () => {
        rmSync(d, { recursive: true, force: true });
        mkdirSync(d);
        for (let i = 0; i < 3 * LOOK_BATCH; i++) writeFileSync(join(d, `f${String(i).padStart(4, '0')}`), `${i}`);
      };
      const race = () => {
        unlinkSync(join(d, 'f0010'));
        unlinkSync(join(d, 'f0300'));
        mkdirSync(join(d, 'f0300'));
        unlinkSync(join(d, 'f0500'));
        symlinkSync('f0000', join(d, 'f0500'));
        writeFileSync(join(d, 'f0600'), 'rewritten');
      };
      const racing = (inner: Looker): Looker => {
        let done = false;
        return {
          parallelism: inner.parallelism,
          look(paths, hints) {
            if (!done) race();
            done = true;
            return inner.look(paths, hints);
          },
        };
      };
      build();
      // the measurer alone, raced at the same point: a looker that answers null makes it look itself
      const reference = await measure([d], racing({ parallelism: 1, look: async (paths) => paths.map(() => null) }));
      build();
      const pooled = await measure([d], racing(pool));
      // the same content both times (timestamps and inodes differ: the states are not compared)
      assert.deepEqual([pooled.entries, pooled.errors], [reference.entries, reference.errors]);
      assert.equal(reference.entries.length, 3 * LOOK_BATCH - 2);
      assert.ok(reference.entries.some((e) => e.endsWith(` symlink:${join(d, 'f0500')}`)));
      const f600 = reference.entries.find((e) => e.endsWith(` ${join(d, 'f0600')}`));
      assert.equal(f600?.split(' ')[1], createHash('sha256').update(readFileSync(join(d, 'f0600'))).digest('hex'));
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });

  test('an idle pool does not keep the process alive', () => {
    const src = `import { MeasurePool } from ${JSON.stringify(new URL('./measure-pool.ts', import.meta.url).href)};
const p = new MeasurePool({ threads: 2 });
const r = await p.look(['/etc/hostname', '/nonexistent'], ['file', 'file']);
new MeasurePool({ threads: 1 }); // never used
console.log(r.map((x) => x && x.kind).join(','));`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', src], { encoding: 'utf8', timeout: 20_000, cwd: join(import.meta.dirname, '..', '..') });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'file,absent');
  });
});
