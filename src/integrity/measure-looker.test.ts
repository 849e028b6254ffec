/**
 * The measurer with a Looker (looks made ahead, elsewhere) must give what it gives without one: the same entries in
 * the same order, the same errors, the same saved state. Lookers here run in this thread (src/agent's worker pool
 * has its own test): answering out of order, through the packed form workers send, failing, answering null, and
 * with the tree changing between the listing and the looks.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { LOOK_BATCH, lookMany, Measurer, packLooks, unpackLooks, type Look, type LookHint, type Looker } from './measure.ts';
import { lookPacked } from './measure-read.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
/** A clock far from the files' ctimes, so that which files are racy does not depend on how long a run takes. */
const NOW = () => Date.now() + 86_400_000;

interface Run {
  entries: string[];
  errors: string[];
  state: string;
}

async function measure(roots: string[], looker?: Looker, state?: string): Promise<Run> {
  const errors: string[] = [];
  const m = new Measurer({ roots, looker, now: NOW, onError: (e) => errors.push(e.message) });
  if (state !== undefined) m.loadState(state);
  const list = await m.start();
  await m.close();
  return {
    entries: list.map((e) => `${e.pcr} ${hex(e.templateHash)} ${e.template} ${e.digestAlg}:${hex(e.digest)} ${e.name}`),
    errors,
    state: m.saveState(),
  };
}

/** A run without what a rebuilt tree changes anyway (timestamps, inodes). */
function contentOnly(r: Run): Run {
  const files = JSON.parse(r.state).files as Record<string, Record<string, unknown>>;
  const kept = Object.entries(files).map(([p, f]) => [p, f.kind, f.size, f.digest, f.error ?? null, f.dir ?? null, f.racy ?? null]);
  return { entries: r.entries, errors: r.errors, state: JSON.stringify(kept) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** lookMany in this thread, answering after a random delay (so batches finish out of order). */
function shuffled(parallelism = 3): Looker & { calls: number } {
  const l = {
    parallelism,
    calls: 0,
    async look(paths: readonly string[], hints: readonly LookHint[]) {
      l.calls++;
      const r = lookMany(paths, hints);
      await sleep(Math.random() * 4);
      return r;
    },
  };
  return l;
}

/** Through the packed form the worker threads send (NUL-joined paths, hint letters, two buffers). */
const packed: Looker = {
  parallelism: 2,
  async look(paths, hints) {
    const p = lookPacked(paths.join('\0'), hints.map((h) => (h === 'symlink' ? 's' : 'f')).join(''));
    // what postMessage does to transferred buffers: the receiver gets them, not a view of the sender's memory
    return unpackLooks({ meta: p.meta.slice(0), digests: p.digests.slice(0), errors: structuredClone(p.errors) });
  },
};

describe('a Looker gives what the measurer alone gives', () => {
  let dir: string;
  let socketServer: Server | undefined;
  before(() => {
    dir = realpathSync(mkdtempSync(join(tmpdir(), 'hg-looker-')));
    // more than a few batches, over nested folders, with everything a listing can hold
    for (let i = 0; i < 5 * LOOK_BATCH; i++) {
      const d = join(dir, `d${i % 7}`, `e${i % 3}`);
      mkdirSync(d, { recursive: true });
      writeFileSync(join(d, `f${i}`), randomBytes(i % 97));
    }
    writeFileSync(join(dir, 'large'), randomBytes((1 << 20) + 5)); // streamed by the measurer's own thread
    writeFileSync(join(dir, 'empty'), '');
    writeFileSync(join(dir, 'with space\tand tab'), 'x');
    writeFileSync(join(dir, 'é-\u{1F600}'), 'unicode');
    writeFileSync(Buffer.concat([Buffer.from(`${dir}/d1/`), Buffer.from([0x62, 0xff])]), 'not UTF-8'); // unreadable
    symlinkSync('f1', join(dir, 'd1/e1/link'));
    symlinkSync('/etc/shadow', join(dir, 'outside'));
    symlinkSync('nowhere', join(dir, 'dangling'));
    symlinkSync('d2', join(dir, 'dirlink'));
    execFileSync('mkfifo', [join(dir, 'fifo')]);
  });
  after(async () => {
    await new Promise<void>((r) => (socketServer ? socketServer.close(() => r()) : r()));
    rmSync(dir, { recursive: true, force: true });
  });

  test('out of order, and through the packed form', async () => {
    const alone = await measure([dir]);
    assert.ok(alone.entries.length > 5 * LOOK_BATCH);
    assert.equal(alone.errors.length, 1); // the name that is not UTF-8
    const l = shuffled();
    assert.deepEqual(await measure([dir], l), alone);
    assert.ok(l.calls >= 5, `${l.calls} batches`);
    assert.deepEqual(await measure([dir], packed), alone);
  });

  test('a looker that fails, answers short or answers null: the measurer looks itself', async () => {
    const alone = await measure([dir]);
    let n = 0;
    const flaky: Looker = {
      parallelism: 2,
      async look(paths, hints) {
        n++;
        if (n % 3 === 0) throw new Error('worker died');
        if (n % 3 === 1) return lookMany(paths, hints).slice(1); // wrong length: ignored as a whole
        return lookMany(paths, hints).map((x, i) => (i % 2 === 0 ? null : x));
      },
    };
    assert.deepEqual(await measure([dir], flaky), alone);
    assert.ok(n >= 5);
  });

  test('again from a saved state: remembered files are compared here, changed and new ones looked at ahead', async () => {
    const first = await measure([dir]);
    writeFileSync(join(dir, 'd3/e0/f3'), 'changed');
    writeFileSync(join(dir, 'new'), 'new');
    const alone = await measure([dir], undefined, first.state);
    assert.deepEqual(alone.entries.map((e) => e.split(' ').pop()), [join(dir, 'd3/e0/f3'), join(dir, 'new')]);
    assert.deepEqual(await measure([dir], shuffled(), first.state), alone);
    // a state in which everything is racy: every file is looked at again, ahead
    const racy = JSON.parse(first.state);
    for (const f of Object.values(racy.files) as { racy?: boolean }[]) f.racy = true;
    const racyAlone = await measure([dir], undefined, JSON.stringify(racy));
    const l = shuffled();
    assert.deepEqual(await measure([dir], l, JSON.stringify(racy)), racyAlone);
    assert.ok(l.calls >= 5);
  });

  test('files that vanish or change kind between the listing and the looks', async () => {
    const d = realpathSync(mkdtempSync(join(tmpdir(), 'hg-looker-race-')));
    try {
      const build = async () => {
        for (let i = 0; i < 3 * LOOK_BATCH; i++) writeFileSync(join(d, `f${String(i).padStart(4, '0')}`), `${i}`);
      };
      /** What happens to the tree once listed: a looker's first call (or, alone, the first look) runs it. */
      const race = async () => {
        unlinkSync(join(d, 'f0003')); // gone: no entry (it was never measured)
        unlinkSync(join(d, 'f0400'));
        unlinkSync(join(d, 'f0500'));
        mkdirSync(join(d, 'f0500')); // now a directory: not a file any more
        unlinkSync(join(d, 'f0600'));
        symlinkSync('f0001', join(d, 'f0600')); // now a link: measured as one
        unlinkSync(join(d, 'f0700'));
        socketServer = createServer();
        await new Promise<void>((r) => socketServer?.listen(join(d, 'f0700'), () => r())); // a socket: cannot be opened (ENXIO)
      };
      let raceFailed: unknown;
      const withRace = (inner: Looker): Looker => {
        let raced: Promise<void> | undefined;
        return {
          parallelism: inner.parallelism,
          async look(paths, hints) {
            // a failed race would only make the measurer look itself: remembered, so that the test fails
            await (raced ??= race().catch((e: unknown) => void (raceFailed = e)));
            return inner.look(paths, hints);
          },
        };
      };
      /** No looker at all cannot be raced at the same point: a looker that answers null makes the measurer look. */
      const itself: Looker = { parallelism: 1, look: async (paths) => paths.map(() => null) };

      const undo = async () => {
        await new Promise<void>((r) => (socketServer ? socketServer.close(() => r()) : r()));
        socketServer = undefined;
        rmSync(d, { recursive: true, force: true });
        mkdirSync(d);
        await build();
      };
      await undo();
      const reference = await measure([d], withRace(itself));
      await undo();
      const ahead = await measure([d], withRace(shuffled()));
      await undo();
      const viaPacked = await measure([d], withRace(packed));
      assert.equal(raceFailed, undefined);
      // each run had its own copy of the tree: the same content, other timestamps and inodes
      assert.deepEqual(contentOnly(ahead), contentOnly(reference));
      assert.deepEqual(contentOnly(viaPacked), contentOnly(reference));
      const names = reference.entries.map((e) => e.split(' ').pop());
      assert.equal(names.length, 3 * LOOK_BATCH - 3);
      for (const gone of ['f0003', 'f0400', 'f0500']) assert.ok(!names.some((n) => n?.endsWith(gone)), gone);
      assert.ok(names.includes(`symlink:${join(d, 'f0600')}`));
      assert.ok(names.includes(`unreadable:${join(d, 'f0700')}`));
      assert.deepEqual(reference.errors.map((e) => e.includes('ENXIO')), [true]);
    } finally {
      await new Promise<void>((r) => (socketServer ? socketServer.close(() => r()) : r()));
      socketServer = undefined;
      rmSync(d, { recursive: true, force: true });
    }
  });
});

describe('packing looks', () => {
  test('every kind survives packLooks → unpackLooks', () => {
    const stat = { size: 5n, mtimeNs: 2n ** 63n + 7n, ctimeNs: 1_700_000_000_123_456_789n, ino: 2n ** 64n - 1n };
    const looks: (Look | null)[] = [
      { kind: 'file', stat, digest: Buffer.alloc(32, 1) },
      { kind: 'symlink', stat, digest: Buffer.alloc(32, 2) },
      { kind: 'unreadable', error: 'EACCES', stat },
      { kind: 'unreadable', error: 'EIO' },
      { kind: 'absent' },
      { kind: 'dir', stat },
      { kind: 'other' },
      null,
    ];
    const back = unpackLooks(packLooks([...looks, { kind: 'large', fd: 99, stat }]));
    assert.deepEqual(back, [...looks, null]);
    assert.ok(Buffer.isBuffer((back[0] as { digest: Uint8Array }).digest), 'digests are Buffers, as on the sequential path');
    assert.deepEqual(unpackLooks(packLooks([])), []);
    assert.deepEqual(unpackLooks(lookPacked('', '')), []);
  });
});
