/**
 * `hueguard demo` as a user runs it: one process that brings up a controller, a lab and an agent, prints the URL
 * and an admin token, answers on them, and removes everything it made on SIGTERM. Without root it says what it
 * needs and exits.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { nftUnavailable } from '../../src/agent/root.test-support.ts';

const BIN = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '../../bin/hueguard');
const why = nftUnavailable();
if (why) console.log(`# SKIP hueguard demo: ${why}`);

const netnsList = () => spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;

async function runDemo(args: string[], names: string[]): Promise<void> {
  assert.ok(!/^hg-host\b/m.test(netnsList()), 'a lab named hg is already up on this machine');
  const child = spawn(BIN, ['demo', '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  try {
    const end = Date.now() + 60_000;
    while (!/admin token: +\S+/.test(out) || !/try:/.test(out)) {
      if (Date.now() > end || child.exitCode !== null) throw new Error(`demo did not come up:\n${out}\n${err}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const url = /console and API: (http:\/\/\S+?)\/?\n/.exec(out)![1];
    const token = /admin token: +(\S+)/.exec(out)![1];
    const dir = /everything lives in (\S+);/.exec(out)![1];
    assert.ok(existsSync(dir));
    const vms = await (await fetch(`${url}/api/v1/vms`, { headers: { authorization: `Bearer ${token}` } })).json();
    assert.deepEqual((vms as { name: string }[]).map((v) => v.name).sort(), names);
    assert.match(netnsList(), /^hg-host\b/m);
    child.kill('SIGTERM');
    assert.equal(await exited, 0, err);
    assert.ok(!/^hg-/m.test(netnsList()), `namespaces left: ${netnsList()}`);
    assert.ok(!existsSync(dir), `${dir} left behind`);
  } finally {
    // a failed check must not leave the lab behind for the next run: SIGTERM (the demo cleans up), then SIGKILL
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }
}

it('hueguard demo comes up, serves the API with the printed token, and cleans up on SIGTERM', { skip: why ?? false, timeout: 120_000 }, async () => {
  await runDemo(['--vms', 'blue:1,red:1'], ['blue-1', 'red-1']);
});

it('hueguard demo takes a Xen ACM XML policy as well', { skip: why ?? false, timeout: 120_000 }, async () => {
  const xen = join(BIN, '../../../shared/data/xen-acm/gen3_xen-3.2_to_4.1/client_v1-security_policy.xml');
  if (!existsSync(xen)) return void console.log(`# SKIP the Xen demo: ${xen} is not there`);
  await runDemo(['--policy', xen, '--vms', 'dom_HomeBanking:1,dom_Fun:1'], ['dom-fun-1', 'dom-homebanking-1']);
});

it('hueguard demo without root says what it needs and exits 2', { skip: why ?? false }, () => {
  const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', BIN, 'demo'], { encoding: 'utf8', env: { ...process.env, HOME: '/tmp' } });
  assert.equal(r.status, 2, r.stderr + r.stdout);
  assert.match(r.stderr, /needs root/);
});
