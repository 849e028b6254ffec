/**
 * libvirt's qemu hook against a stub agent on a unix socket: only a clear allow lets a domain start; no agent, no
 * answer in time, garbage and errors deny with one line for libvirt's error; notices never fail. Then the command
 * itself and the script `hook install` writes, as libvirt runs them.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { hookScript, installHook, runQemuHook } from './hook.ts';
import type { HookRequestV1 } from './hook-protocol.ts';

const BIN = fileURLToPath(new URL('../../bin/hueguard', import.meta.url));
const XML = `<domain type='qemu'><name>vm'1</name></domain>`;

type Reply = (req: HookRequestV1, res: http.ServerResponse) => void;

/** A stub agent: answers each request with `reply`, records what it got. */
async function stubAgent(dir: string, name: string, reply: Reply): Promise<{ socket: string; seen: HookRequestV1[]; close(): Promise<void> }> {
  const socket = join(dir, name);
  const seen: HookRequestV1[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (d: string) => (body += d));
    req.on('end', () => {
      assert.equal(req.method, 'POST');
      assert.equal(req.url, '/v1/hook');
      const r = JSON.parse(body) as HookRequestV1;
      seen.push(r);
      reply(r, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  return {
    socket,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const json = (v: unknown, status = 200): Reply => (_req, res) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(v));

function run(args: string[], input: string): Promise<{ code: number | null; stderr: string; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('close', (code) => resolve({ code, stderr, ms: Date.now() - t0 }));
    child.stdin.end(input);
  });
}

describe('qemu hook', () => {
  let dir: string;
  const stubs: { close(): Promise<void> }[] = [];
  const stub = async (name: string, reply: Reply) => {
    const s = await stubAgent(dir, name, reply);
    stubs.push(s);
    return s;
  };
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'hg-hook-'));
  });
  after(async () => {
    for (const s of stubs) await s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('prepare: a clear allow starts the domain; the agent gets the arguments and the XML as libvirt gave them', async () => {
    const s = await stub('allow.sock', json({ allow: true, reason: 'allowed', message: 'ok' }));
    const out = await runQemuHook({ domain: "vm'1; rm -rf /", op: 'prepare', subop: 'begin', extra: '-' }, XML, { socket: s.socket });
    assert.deepEqual(out, { exitCode: 0, message: null, answer: { allow: true, reason: 'allowed', message: 'ok' } });
    assert.deepEqual(s.seen, [{ domain: "vm'1; rm -rf /", op: 'prepare', subop: 'begin', xml: XML }]);
  });

  it('prepare: a denial exits 1 with the agent\'s message on one line', async () => {
    const s = await stub('deny.sock', json({ allow: false, reason: 'conflict_set_occupied', message: 'hueguard: conflict set soft-drinks\nis occupied by coke-db' }));
    const out = await runQemuHook({ domain: 'pepsi', op: 'prepare', subop: 'begin' }, XML, { socket: s.socket });
    assert.equal(out.exitCode, 1);
    assert.equal(out.message, 'hueguard: conflict set soft-drinks is occupied by coke-db');
    const bare = await stub('deny-bare.sock', json({ allow: false, reason: 'not_authorized', message: '' }));
    assert.equal((await runQemuHook({ domain: 'x', op: 'prepare', subop: 'begin' }, XML, { socket: bare.socket })).message, 'hueguard: domain "x" may not start (not_authorized)');
  });

  it('prepare: garbage, a half answer, a string "true" and an HTTP error all deny', async () => {
    const cases: [string, Reply, RegExp][] = [
      ['garbage.sock', (_r, res) => res.end('allow'), /not JSON/],
      ['half.sock', json({ allow: true }), /without allow, reason and message/],
      ['string.sock', json({ allow: 'true', reason: 'allowed', message: '' }), /without allow/],
      ['null.sock', json(null), /without allow/],
      ['500.sock', json({ allow: true, reason: 'allowed', message: '' }, 500), /HTTP 500/],
      ['huge.sock', (_r, res) => res.end(JSON.stringify({ allow: true, reason: 'allowed', message: 'x'.repeat(100_000) })), /larger than/],
    ];
    for (const [name, reply, why] of cases) {
      const s = await stub(name, reply);
      const out = await runQemuHook({ domain: 'd', op: 'prepare', subop: 'begin' }, XML, { socket: s.socket });
      assert.equal(out.exitCode, 1, name);
      assert.match(out.message ?? '', why, name);
      assert.match(out.message ?? '', /refusing to start domain "d"/, name);
    }
  });

  it('prepare: no agent, or one that does not answer in time, denies', async () => {
    const none = await runQemuHook({ domain: 'd', op: 'prepare', subop: 'begin' }, XML, { socket: join(dir, 'nobody.sock') });
    assert.equal(none.exitCode, 1);
    assert.match(none.message!, /no answer from the agent at .*nobody\.sock \(ENOENT\): refusing to start domain "d"/);
    const hung = await stub('hung.sock', () => {});
    const t0 = Date.now();
    const slow = await runQemuHook({ domain: 'd', op: 'prepare', subop: 'begin' }, XML, { socket: hung.socket, timeoutMs: 300 });
    assert.ok(Date.now() - t0 < 2000, 'bounded');
    assert.equal(slow.exitCode, 1);
    assert.match(slow.message!, /no answer within 300 ms/);
  });

  it('prepare: XML larger than any domain denies without asking', async () => {
    const s = await stub('big.sock', json({ allow: true, reason: 'allowed', message: '' }));
    const out = await runQemuHook({ domain: 'd', op: 'prepare', subop: 'begin' }, null, { socket: s.socket });
    assert.equal(out.exitCode, 1);
    assert.match(out.message!, /larger than/);
    assert.equal(s.seen.length, 0);
  });

  it('other operations are notices: sent, and never a failure, agent or not', async () => {
    const s = await stub('notice.sock', json({ allow: true, reason: 'allowed', message: '' }));
    for (const op of ['start', 'started', 'stopped', 'release', 'migrate', 'reconnect']) {
      assert.equal((await runQemuHook({ domain: 'd', op, subop: 'begin' }, XML, { socket: s.socket })).exitCode, 0);
    }
    assert.deepEqual(s.seen.map((r) => r.op), ['start', 'started', 'stopped', 'release', 'migrate', 'reconnect']);
    // a denial answered to a notice does not fail the domain either
    const deny = await stub('notice-deny.sock', json({ allow: false, reason: 'x', message: 'no' }));
    assert.equal((await runQemuHook({ domain: 'd', op: 'started', subop: 'begin' }, XML, { socket: deny.socket })).exitCode, 0);
    assert.equal((await runQemuHook({ domain: 'd', op: 'stopped', subop: 'end' }, XML, { socket: join(dir, 'nobody.sock') })).exitCode, 0);
    const hung = await stub('notice-hung.sock', () => {});
    const t0 = Date.now();
    assert.equal((await runQemuHook({ domain: 'd', op: 'release', subop: 'end' }, XML, { socket: hung.socket, timeoutMs: 200 })).exitCode, 0);
    assert.ok(Date.now() - t0 < 2000);
  });

  it('`hueguard hook qemu` exits 1 with the reason on stderr, or 0, reading the XML from stdin', async () => {
    const s = await stub('cli.sock', (r, res) =>
      json(r.domain === 'red-1' ? { allow: false, reason: 'conflict_set_occupied', message: 'hueguard: red-1 conflicts with blue-1' } : { allow: true, reason: 'allowed', message: '' })(r, res),
    );
    const deny = await run([BIN, 'hook', 'qemu', '--socket', s.socket, '--', 'red-1', 'prepare', 'begin', '-'], XML);
    assert.equal(deny.code, 1, deny.stderr);
    assert.equal(deny.stderr, 'hueguard: red-1 conflicts with blue-1\n');
    // the socket from the environment (libvirt passes none, but a person running it may)
    const allow = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [BIN, 'hook', 'qemu', 'blue-1', 'prepare', 'begin', '-'], { stdio: ['pipe', 'ignore', 'pipe'], env: { ...process.env, HUEGUARD_AGENT_SOCKET: s.socket } });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      child.on('close', (code) => resolve({ code, stderr }));
      child.stdin.end(XML);
    });
    assert.equal(allow.code, 0, allow.stderr);
    assert.deepEqual(s.seen.map((r) => [r.domain, r.op, r.xml]), [['red-1', 'prepare', XML], ['blue-1', 'prepare', XML]]);
  });

  it('the installed script passes libvirt\'s arguments through untouched, with the socket written in', async () => {
    // a stand-in for the hueguard binary that prints the arguments it got
    const echo = join(dir, "echo it's.mjs");
    writeFileSync(echo, 'process.stdout.write(JSON.stringify(process.argv.slice(2)))');
    const socket = join(dir, "a b'c.sock");
    const script = hookScript({ node: process.execPath, bin: echo, socket });
    const args = ['$(touch /tmp/hg-pwned)', "it's; rm -rf /", 'prepare', 'begin', '-'];
    const out = await new Promise<string>((resolve) => {
      const child = spawn('sh', ['-c', script, 'qemu', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
      let o = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (o += d));
      child.on('close', () => resolve(o));
    });
    assert.deepEqual(JSON.parse(out), ['hook', 'qemu', '--socket', socket, '--', ...args]);
    assert.throws(() => hookScript({ node: 'node', bin: echo }), /absolute/);
    assert.throws(() => hookScript({ node: process.execPath, bin: echo, socket: '/a\nb' }), /one line/);
  });

  it('hook install writes an executable script, replaces its own, and refuses to replace another one', async () => {
    const hooks = join(dir, 'hooks');
    const path = installHook(hooks, { node: process.execPath, bin: BIN, socket: '/run/hg/agent.sock' });
    assert.equal(path, join(hooks, 'qemu'));
    assert.equal(statSync(path).mode & 0o777, 0o755);
    assert.match(readFileSync(path, 'utf8'), /^#!\/bin\/sh\n[\s\S]*exec '.+' '.+bin\/hueguard' hook qemu --socket '\/run\/hg\/agent\.sock' -- "\$@"\n$/);
    installHook(hooks, { node: process.execPath, bin: BIN });
    assert.doesNotMatch(readFileSync(path, 'utf8'), /--socket/);
    writeFileSync(path, '#!/bin/sh\nexit 0\n');
    assert.throws(() => installHook(hooks, { node: process.execPath, bin: BIN }), /not written by hueguard: give --force/);
    installHook(hooks, { node: process.execPath, bin: BIN, force: true });
    assert.match(readFileSync(path, 'utf8'), /hueguard hook install/);
  });

  it('the installed hook, run as libvirt runs it, answers through the real command', async () => {
    const s = await stub('real.sock', json({ allow: false, reason: 'not_authorized', message: 'hueguard: VM is not authorized to run' }));
    const hooks = join(dir, 'real-hooks');
    const path = installHook(hooks, { node: process.execPath, bin: BIN, socket: s.socket });
    const out = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      // libvirt's environment for hooks: PATH, HOME and LC_ALL only
      const child = spawn(path, ['vm1', 'prepare', 'begin', '-'], { stdio: ['pipe', 'ignore', 'pipe'], env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root', LC_ALL: 'C' } });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      child.on('close', (code) => resolve({ code, stderr }));
      child.stdin.end(XML);
    });
    assert.equal(out.code, 1);
    assert.equal(out.stderr, 'hueguard: VM is not authorized to run\n');
  });
});
