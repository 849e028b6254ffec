/**
 * The `hueguard` command as a user runs it: a real process from bin/hueguard, on the real Xen policies and on
 * native YAML, checking output, exit codes and the decide stream.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync, openSync, ftruncateSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const root = join(import.meta.dirname, '..');
const bin = join(root, 'bin', 'hueguard');
const xen = join(root, '..', 'shared', 'data', 'xen-acm');
const gen3 = join(xen, 'gen3_xen-3.2_to_4.1');
const tmp = mkdtempSync(join(tmpdir(), 'hg-cli-'));

function hg(args: string[], input?: string) {
  const r = spawnSync(process.execPath, [bin, ...args], { input, encoding: 'utf8', cwd: tmp, timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function xenPolicyFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...xenPolicyFiles(p));
    else if (name.endsWith('security_policy.xml')) out.push(p);
  }
  return out.sort();
}

function write(name: string, text: string): string {
  const p = join(tmp, name);
  writeFileSync(p, text);
  return p;
}

const lab = `
policy: lab
version: "1.0"
colors: [blue, red, green]
walls: [blue-w, red-w]
conflicts:
  rb: [blue-w, red-w]
host: host
labels:
  host: { colors: [blue, red, green] }
  blue: { colors: [blue], walls: [blue-w] }
  red: { colors: [red], walls: [red-w] }
  vio: { colors: [blue, green], onUntrusted: alert }
resources:
  blue-disk: { color: blue }
`;

test('policy check accepts every real Xen policy (gen1 label templates found beside their policy)', () => {
  const files = xenPolicyFiles(xen);
  assert.ok(files.length >= 15, `found ${files.length} Xen policies`);
  const r = hg(['policy', 'check', ...files]);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out.trim().split('\n').length, files.length);
  // gen1: the labels come from the template beside the policy.
  const chwallSte = files.find((f) => f.endsWith('gen1_xen-3.0.0/chwall_ste/chwall_ste-security_policy.xml'))!;
  const template = readFileSync(chwallSte.replace('security_policy', 'security_label_template'), 'utf8');
  const labels = (template.match(/<VirtualMachineLabel>/g) ?? []).length;
  assert.match(hg(['policy', 'check', chwallSte]).out, new RegExp(`${labels} labels, .*host label dom_SystemManagement`));
});

test('policy check prints FILE:LINE:COLUMN: code: message for each problem and exits 1', () => {
  const bad = write('bad.yaml', lab.replace('blue: { colors: [blue], walls: [blue-w] }', 'blue: { colors: [blue, purple], walls: [blue-w, red-w] }'));
  const r = hg(['policy', 'check', bad]);
  assert.equal(r.code, 1);
  const lines = r.err.trim().split('\n');
  assert.ok(lines.some((l) => l.startsWith(`${bad}:11:`) && l.includes('unknown_color') && l.includes('purple')), r.err);
  assert.ok(lines.some((l) => l.startsWith(`${bad}:11:`) && l.includes('label_in_conflict')), r.err);
  for (const l of lines) assert.match(l, /^.+:\d+:\d+: [a-z_]+: .+/);
});

test('a 50 MB policy is refused without being read, and nothing is written', () => {
  const big = join(tmp, 'big.yaml');
  const fd = openSync(big, 'w');
  ftruncateSync(fd, 50 * 1024 * 1024);
  closeSync(fd);
  const r = hg(['policy', 'import', big, '-o', join(tmp, 'never.yaml')]);
  assert.equal(r.code, 1);
  assert.match(r.err, /input_too_large/);
  assert.throws(() => statSync(join(tmp, 'never.yaml')));
});

test('import → export → xmllint → import again gives the same policy (xm-test)', (t) => {
  if (spawnSync('xmllint', ['--version']).error) return t.skip('xmllint not installed: apt-get install libxml2-utils');
  const yaml = join(tmp, 'xm-test.yaml');
  assert.equal(hg(['policy', 'import', join(gen3, 'xm-test-security_policy.xml'), '-o', yaml]).code, 0);
  const exported = join(tmp, 'xm-test-security_policy.xml');
  assert.equal(hg(['policy', 'export', yaml, '--format', 'xen-acm', '-o', exported]).code, 0);
  const lint = spawnSync('xmllint', ['--noout', '--schema', join(gen3, 'security_policy.xsd'), exported], { encoding: 'utf8' });
  assert.equal(lint.status, 0, lint.stderr);
  const again = hg(['policy', 'import', exported]);
  assert.equal(again.code, 0, again.err);
  assert.equal(again.out, readFileSync(yaml, 'utf8'));
});

test('policy explain says which colors two labels share, or that they share none', () => {
  const p = write('lab.yaml', lab);
  const yes = hg(['policy', 'explain', p, 'blue', 'vio']);
  assert.equal(yes.code, 0);
  assert.match(yes.out, /ALLOW: they share the color blue/);
  const no = hg(['policy', 'explain', p, 'blue', 'red', '--json']);
  assert.deepEqual(JSON.parse(no.out), { a: 'blue', b: 'red', allow: false, reason: 'no_common_color', colors: [] });
  const unknown = hg(['policy', 'explain', p, 'blue', 'nobody']);
  assert.equal(unknown.code, 1);
  assert.match(unknown.err, /unknown_label/);
});

test('decide answers every query in order, with errors on their own line', () => {
  const p = write('lab-decide.yaml', lab);
  const queries = [
    { op: 'share', a: 'blue', b: 'vio' },
    { op: 'share', a: 'blue', b: 'red' },
    { op: 'use', vm: 'red', resource: 'blue-disk' },
    { op: 'authorized', host: 'host', vm: 'vio' },
    { op: 'start', vm: 'red', running: ['blue'] },
    { op: 'share', a: 'blue', b: 'ghost' },
    { op: 'fly' },
  ];
  const input = queries.map((q) => JSON.stringify(q)).join('\n') + '\n{not json\n';
  const r = hg(['decide', '--policy', p], input);
  assert.equal(r.code, 0, r.err);
  const answers = r.out.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(answers.length, queries.length + 1);
  assert.equal(answers[0].allow, true);
  assert.deepEqual(answers[0].colors, ['blue']);
  assert.equal(answers[1].allow, false);
  assert.equal(answers[2].allow, false);
  assert.equal(answers[3].allow, true);
  assert.equal(answers[4].allow, false);
  assert.equal(answers[4].blockers[0].conflictSet, 'rb');
  assert.equal(answers[4].blockers[0].runningLabel, 'blue');
  assert.equal(answers[5].error.code, 'unknown_label');
  assert.equal(answers[6].error.code, 'unknown_op');
  assert.equal(answers[7].error.code, 'bad_query');
});

test('decide answers each line before the next one is written (it flushes as it goes)', async () => {
  const p = write('lab-stream.yaml', lab);
  const child = spawn(process.execPath, [bin, 'decide', '--policy', p], { cwd: tmp, stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout });
  const next = () => new Promise<string>((resolve) => lines.once('line', resolve));
  for (const [a, b, allow] of [['blue', 'vio', true], ['red', 'vio', false], ['host', 'red', true]] as const) {
    const answer = next();
    child.stdin.write(JSON.stringify({ op: 'share', a, b }) + '\n');
    assert.equal(JSON.parse(await answer).allow, allow);
  }
  child.stdin.end();
  const code = await new Promise((resolve) => child.on('close', resolve));
  assert.equal(code, 0);
});

test('policy update: reject refuses a violating update (exit 1), revoke applies it and isolates the violator', () => {
  const oldP = write('old.yaml', lab);
  const newP = write('new.yaml', lab.replace('version: "1.0"', 'version: "1.1"\nfrom: { policy: lab, version: "1.0" }').replace('vio: { colors: [blue, green], onUntrusted: alert }', 'vio: { colors: [green], onUntrusted: alert }').replace('blue: { colors: [blue], walls: [blue-w] }', 'blue: { colors: [red], walls: [blue-w] }'));
  const state = write('state.json', JSON.stringify({
    hosts: [{ name: 'h1', vms: [{ name: 'b1', label: 'blue', resources: ['blue-disk'] }, { name: 'v1', label: 'vio' }] }],
    flows: [{ a: 'b1', b: 'v1' }],
  }));
  const reject = hg(['policy', 'update', oldP, newP, '--running', state, '--mode', 'reject', '--json']);
  assert.equal(reject.code, 1, reject.err);
  const rj = JSON.parse(reject.out);
  assert.equal(rj.accepted, false);
  assert.deepEqual(rj.violations.map((v: { code: string }) => v.code).sort(), ['flow_forbidden', 'resource_forbidden']);
  const revoke = hg(['policy', 'update', oldP, newP, '--running', state, '--mode', 'revoke', '--json']);
  assert.equal(revoke.code, 0, revoke.err);
  const rv = JSON.parse(revoke.out);
  assert.deepEqual(rv.isolate.map((i: { vm: string }) => i.vm), ['b1']);
  assert.deepEqual(rv.closedFlows, [{ a: 'b1', b: 'v1' }]);
  const badState = write('bad-state.json', '{"hosts": [{"name": "h1", "vms": [{"name": "x", "lable": "blue"}]}]}');
  const bad = hg(['policy', 'update', oldP, newP, '--running', badState, '--mode', 'reject']);
  assert.equal(bad.code, 1);
  assert.match(bad.err, /bad-state\.json: hosts\[0\]\.vms\[0\]: must NOT have additional properties "lable"/);
});

test('policy diff lists renamed labels and lost sharing (xm-test → xm-test-update)', () => {
  const r = hg(['policy', 'diff', join(gen3, 'xm-test-security_policy.xml'), join(gen3, 'xm-test-update-security_policy.xml')]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /~ label green renamed to GREEN/);
  assert.match(r.out, /- label blue/);
  assert.match(r.out, /- share blue <-> blue/);
  assert.match(r.out, /\+ label __UNLABELED__/);
});
