/**
 * `hueguard serve` as a user runs it: a real process on a SQLite data directory, spoken to over HTTP with the admin
 * token it prints on first start; stopped with SIGTERM (exit 0) and started again on the same data; then
 * `hueguard audit verify` on that directory, before and after someone edits or deletes an audit record in the
 * SQLite file behind its back.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import Database from 'better-sqlite3';

const root = join(import.meta.dirname, '..', '..');
const bin = join(root, 'bin', 'hueguard');
const tmp = mkdtempSync(join(tmpdir(), 'hg-serve-'));
const data = join(tmp, 'data');

const LAB = `policy: lab
version: "1.0"
colors: [blue, red]
walls: [blue-w, red-w]
conflicts:
  rb: [blue-w, red-w]
host: host
labels:
  host: { colors: [blue, red] }
  blue: { colors: [blue], walls: [blue-w] }
  red:  { colors: [red], walls: [red-w] }
`;

interface Server {
  child: ChildProcess;
  url: string;
  token: string | null;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** Start `hueguard serve` and wait for the line with its URL (and the token line, on a first start). */
async function serve(args: string[], env: Record<string, string> = {}): Promise<Server> {
  const child = spawn(process.execPath, [bin, 'serve', ...args], { cwd: tmp, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  const lines = createInterface({ input: child.stdout! });
  let url = '';
  let token: string | null = null;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${err}`)), 30_000);
    exited.then((code) => reject(new Error(`serve exited ${code}: ${err}`)));
    lines.on('line', (line) => {
      const m = /listening on (https?:\/\/\S+) \((.*)\)$/.exec(line);
      const t = /^admin token .*: (hg_[\w-]+)$/.exec(line);
      if (t) token = t[1];
      if (m) {
        url = m[1];
        // the token line, when there is one, follows at once
        setTimeout(() => {
          clearTimeout(timer);
          resolve();
        }, 200);
      }
    });
  });
  return { child, url, token, stderr: () => err, exited };
}

async function api(s: Server, token: string, method: string, path: string, body?: unknown, type = 'application/json') {
  const r = await fetch(s.url + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': type }) },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, json: text ? JSON.parse(text) : undefined, text };
}

function verify(dir: string) {
  const r = spawnSync(process.execPath, [bin, 'audit', 'verify', '--data', dir], { encoding: 'utf8', cwd: tmp, timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('hueguard serve', () => {
  let token = '';
  after(() => rmSync(tmp, { recursive: true, force: true }));

  test('first start: 127.0.0.1, an admin token printed once; it answers Bearer; SIGTERM stops it cleanly', async () => {
    const s = await serve(['--data', data, '--port', '0']);
    try {
      assert.match(s.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.ok(s.token, 'the admin token is printed on first start');
      token = s.token!;
      assert.equal((await fetch(`${s.url}/healthz`)).status, 200);
      assert.equal((await fetch(`${s.url}/api/v1/hosts`)).status, 401);
      const me = await api(s, token, 'GET', '/api/v1/session');
      assert.deepEqual([me.json.role, me.json.actor], ['admin', 'token:admin']);

      // a publish, a label change, a denied admission and a sign-in: the audit log's kinds of record
      const d = await api(s, token, 'POST', '/api/v1/policy/drafts', LAB, 'application/yaml');
      assert.equal(d.status, 201, d.text);
      assert.equal((await api(s, token, 'POST', `/api/v1/policy/drafts/${d.json.id}/publish`, { note: 'first' })).status, 201);
      assert.equal((await api(s, token, 'PUT', '/api/v1/hosts/h1/vms', { vms: [{ name: 'web', running: true, label: 'blue' }] })).status, 200);
      assert.equal((await api(s, token, 'PUT', '/api/v1/vms/web/label', { label: 'red', reason: 'moves to red' })).status, 200);
      assert.equal((await api(s, token, 'POST', '/api/v1/admission', { host: 'h1', vm: 'db', label: 'blue' })).json.allow, false);
      const login = await fetch(`${s.url}/api/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }) });
      assert.equal(login.status, 201);
      const audit = (await api(s, token, 'GET', '/api/v1/audit')).json.map((r: { action: string }) => r.action);
      assert.deepEqual(audit, ['policy.publish', 'vm.label', 'admission.deny', 'session.login']);
    } finally {
      s.child.kill('SIGTERM');
    }
    assert.equal(await s.exited, 0);
    assert.match(s.stderr(), /SIGTERM: shutting down/);
  });

  test('a second start prints no token, and the first one still works; HUEGUARD_ADMIN_TOKEN is taken', async () => {
    const envToken = 'hg_from-the-environment-0123456789';
    const s = await serve(['--data', data, '--port', '0', '--host', '127.0.0.1'], { HUEGUARD_ADMIN_TOKEN: envToken });
    try {
      assert.equal(s.token, null);
      assert.equal((await api(s, token, 'GET', '/api/v1/policy')).json.version, 1);
      assert.equal((await api(s, envToken, 'GET', '/api/v1/session')).json.role, 'admin');
    } finally {
      s.child.kill('SIGINT');
    }
    assert.equal(await s.exited, 0);
  });

  test('audit verify: OK on the untouched log', () => {
    const r = verify(data);
    assert.equal(r.code, 0, r.out + r.err);
    assert.match(r.out, /^OK: 4 audit records, the chain is intact \(head [0-9a-f]{64}\)$/m);
  });

  test('audit verify names an edited record and exits 1', () => {
    const dir = join(tmp, 'edited');
    cpSync(data, dir, { recursive: true });
    const db = new Database(join(dir, 'hueguard.db'));
    db.prepare("UPDATE audit SET actor = 'token:nobody' WHERE seq = 3").run();
    db.close();
    const r = verify(dir);
    assert.equal(r.code, 1, r.out + r.err);
    assert.match(r.out, /^NOT OK: record 3 edited: /m);
  });

  test('audit verify names a deleted record and exits 1', () => {
    const dir = join(tmp, 'deleted');
    cpSync(data, dir, { recursive: true });
    const db = new Database(join(dir, 'hueguard.db'));
    db.prepare('DELETE FROM audit WHERE seq = 2').run();
    db.close();
    const r = verify(dir);
    assert.equal(r.code, 1, r.out + r.err);
    assert.match(r.out, /^NOT OK: record 2 deleted: /m);
  });

  test('audit verify on a directory without a store says so (exit 2) and creates nothing', () => {
    const r = verify(join(tmp, 'nothing-here'));
    assert.equal(r.code, 2);
    assert.match(r.err, /no hueguard store/);
    assert.equal(existsSync(join(tmp, 'nothing-here')), false);
  });

  test('TLS with --tls-cert and --tls-key: https, and the session cookie is Secure', { skip: spawnSync('openssl', ['version']).status !== 0 && 'no openssl' }, async () => {
    const cert = join(tmp, 'cert.pem');
    const key = join(tmp, 'key.pem');
    const gen = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert,
      '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { encoding: 'utf8' });
    assert.equal(gen.status, 0, gen.stderr);
    const s = await serve(['--data', data, '--port', '0', '--tls-cert', cert, '--tls-key', key]);
    try {
      assert.match(s.url, /^https:\/\/127\.0\.0\.1:\d+$/);
      const answer = await new Promise<{ status: number; cookie: string; body: string }>((resolve, reject) => {
        const req = request(`${s.url}/api/v1/session`, { method: 'POST', ca: readFileSync(cert), headers: { 'content-type': 'application/json' } }, (res) => {
          let body = '';
          res.on('data', (d) => (body += d));
          res.on('end', () => resolve({ status: res.statusCode!, cookie: String(res.headers['set-cookie'] ?? ''), body }));
        });
        req.on('error', reject);
        req.end(JSON.stringify({ token }));
      });
      assert.equal(answer.status, 201, answer.body);
      assert.match(answer.cookie, /; HttpOnly; SameSite=Strict; Max-Age=\d+; Secure$/);
    } finally {
      s.child.kill('SIGTERM');
    }
    assert.equal(await s.exited, 0);
  });

  test('serve refuses a bad port and a busy one', async () => {
    let r = spawnSync(process.execPath, [bin, 'serve', '--data', data, '--port', '99999'], { encoding: 'utf8', cwd: tmp });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--port must be a number/);
    const s = await serve(['--data', join(tmp, 'other'), '--port', '0']);
    try {
      const port = new URL(s.url).port;
      r = spawnSync(process.execPath, [bin, 'serve', '--data', join(tmp, 'third'), '--port', port], { encoding: 'utf8', cwd: tmp, timeout: 30_000 });
      assert.equal(r.status, 2);
      assert.match(r.stderr, /cannot listen on 127\.0\.0\.1:\d+: EADDRINUSE/);
    } finally {
      s.child.kill('SIGTERM');
    }
    assert.equal(await s.exited, 0);
  });
});
