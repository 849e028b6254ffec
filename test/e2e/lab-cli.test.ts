/** `hueguard lab up | status --json | stop | start | down` as a user types them, as root. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { nftUnavailable } from '../../src/agent/root.test-support.ts';

const BIN = fileURLToPath(new URL('../../bin/hueguard', import.meta.url));
const why = nftUnavailable();
if (why) console.log(`# SKIP hueguard lab: ${why}`);

it('lab up, status --json, stop, start, down', { skip: why ?? false, timeout: 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'hg-lab-cli-'));
  const name = `c${process.pid % 10000}`;
  const hg = (...args: string[]) => spawnSync(BIN, [...args, '--dir', dir], { encoding: 'utf8' });
  try {
    const up = hg('lab', 'up', '--vms', 'blue:2,red:1', '--name', name);
    assert.equal(up.status, 0, up.stderr);
    const status = hg('lab', 'status', '--json');
    assert.equal(status.status, 0, status.stderr);
    const vms = JSON.parse(status.stdout) as Record<string, unknown>[];
    assert.deepEqual(vms.map((v) => [v.name, v.label, v.netns]), [['blue-1', 'blue', `${name}-blue-1`], ['blue-2', 'blue', `${name}-blue-2`], ['red-1', 'red', `${name}-red-1`]]);
    for (const v of vms) for (const k of ['name', 'netns', 'ip', 'port', 'label', 'root']) assert.ok(typeof v[k] === 'string' && v[k] !== '', `${k} of ${JSON.stringify(v)}`);
    assert.equal(hg('lab', 'stop', 'red-1').status, 0);
    assert.equal((JSON.parse(hg('lab', 'status', '--json').stdout) as { name: string; running: boolean }[]).find((v) => v.name === 'red-1')?.running, false);
    assert.equal(hg('lab', 'start', 'red-1').status, 0);
    const bad = hg('lab', 'stop', 'nobody');
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /no lab VM named "nobody"/);
    assert.match(hg('lab', 'up', '--vms', 'blue:x').stderr, /--vms item 1 "blue:x"/);
    assert.equal(hg('lab', 'down').status, 0);
    assert.deepEqual(JSON.parse(hg('lab', 'status', '--json').stdout), []);
    assert.ok(!spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.includes(`${name}-`));
  } finally {
    hg('lab', 'down');
    rmSync(dir, { recursive: true, force: true });
  }
});
