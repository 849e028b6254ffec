/**
 * The fleet through the API: agents' inventory (start order, labels kept), label assignment (checked against the
 * policy and the running state, audited), resource labels, admission (authorization, the Chinese Wall with the host
 * label first and the running VMs in start order, disks and networks; denials audited), and decisions in exactly
 * the shapes of `hueguard decide`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CompiledPolicy } from '../monitor/compile.ts';
import { answerLine } from '../cli/decide.ts';
import { readPolicy } from '../policy/format.ts';
import { AGENT_HOST, LAB, startServer, type TestServer } from './server.test-support.ts';

describe('fleet, labels, admission, decisions', () => {
  let s: TestServer;
  const admit = (body: unknown, token = s.tokens.agent) => s.call('POST', '/api/v1/admission', { token, body });

  before(async () => {
    s = await startServer();
    await s.publish(LAB);
  });
  after(() => s.close());

  test('an agent reports its host and VMs; starts are numbered in order, a known label is kept', async () => {
    const agent = s.tokens.agent;
    assert.equal((await s.call('PUT', `/api/v1/hosts/${AGENT_HOST}`, { token: agent, body: { label: 'host' } })).status, 200);
    let r = await s.call('PUT', `/api/v1/hosts/${AGENT_HOST}/vms`, { token: agent, body: { vms: [
      { name: 'web', label: 'blue', running: true, ports: ['tap-web'], resources: [{ kind: 'disk', id: '/img/web.qcow2' }] },
      { name: 'idle', label: 'red', running: false },
    ] } });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.map((v: { name: string; running: boolean }) => [v.name, v.running]), [['idle', false], ['web', true]]);
    const web = r.json.find((v: { name: string }) => v.name === 'web');
    assert.deepEqual([web.host, web.label, web.ports, web.trust, web.effectiveColors], [AGENT_HOST, 'blue', ['tap-web'], 'unverified', []]);
    assert.match(web.isolated, /unverified/);
    const [rec] = await s.store.vms(AGENT_HOST).then((vs) => vs.filter((v) => v.name === 'web'));
    assert.equal(rec.startedSeq, 1);
    // the agent reads another label from the domain later: the controller's stays; vio2 starts second
    r = await s.call('PUT', `/api/v1/hosts/${AGENT_HOST}/vms`, { token: agent, body: { vms: [
      { name: 'web', label: 'red', running: true, ports: ['tap-web'], resources: [{ kind: 'disk', id: '/img/web.qcow2' }] },
      { name: 'vio2', label: 'vio', running: true },
    ] } });
    assert.equal(r.status, 200);
    const vms = await s.store.vms(AGENT_HOST);
    assert.deepEqual(vms.map((v) => [v.name, v.label, v.startedSeq]), [['vio2', 'vio', 2], ['web', 'blue', 1]], 'idle is forgotten; web keeps its start number');
    const dup = await s.call('PUT', `/api/v1/hosts/${AGENT_HOST}/vms`, { token: agent, body: { vms: [{ name: 'a', running: true }, { name: 'a', running: false }] } });
    assert.equal(dup.status, 400);
    assert.equal(dup.json.details.field, 'body.vms[1].name');
    assert.equal((await s.call('GET', `/api/v1/hosts/${AGENT_HOST}`, { token: s.tokens.viewer })).json.label, 'host');
  });

  test('admission: allowed, and every kind of denial, each denial audited', async () => {
    let r = await admit({ host: AGENT_HOST, vm: 'web2', label: 'blue' });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.allow, true);
    assert.equal(r.json.reason, 'allowed');
    assert.deepEqual(r.json.details.running, ['host', 'blue', 'vio'], 'the host label first, then the labels of the running VMs in start order (web, vio2)');

    r = await admit({ host: AGENT_HOST, vm: 'db', label: 'red' });
    assert.equal(r.json.allow, false);
    assert.equal(r.json.reason, 'conflict_set_occupied');
    assert.equal(r.json.details.start.blockers[0].runningLabel, 'blue');

    // the store's label and resources are used when the request gives none
    r = await admit({ host: AGENT_HOST, vm: 'web' });
    assert.equal(r.json.reason, 'unlabeled_resource', 'its disk is unlabeled, and LAB has no __UNLABELED__ resource label');
    assert.equal((await s.call('PUT', `/api/v1/resources/disk/${encodeURIComponent('/img/web.qcow2')}`, { token: s.tokens.operator, body: { label: 'blue-disk' } })).status, 200);
    r = await admit({ host: AGENT_HOST, vm: 'web' });
    assert.equal(r.json.allow, true, 'web is not counted against itself');
    assert.deepEqual(r.json.details.resources.map((x: { id: string; label: string | null }) => [x.id, x.label]), [['/img/web.qcow2', 'blue-disk']]);

    r = await admit({ host: AGENT_HOST, vm: 'x', label: 'nope' });
    assert.equal(r.json.reason, 'unknown_label');
    r = await admit({ host: AGENT_HOST, vm: 'x', label: null });
    assert.equal(r.json.reason, 'unlabeled', 'LAB has no __UNLABELED__');

    await s.call('PUT', '/api/v1/resources/network/net-red', { token: s.tokens.operator, body: { label: 'red-net' } });
    r = await admit({ host: AGENT_HOST, vm: 'x', label: 'vio', resources: [{ kind: 'network', id: 'net-red' }, { kind: 'disk', id: '/img/none' }] });
    assert.equal(r.json.reason, 'resource_forbidden');
    assert.deepEqual(r.json.details.resources.map((x: { reason?: string }) => x.reason), ['resource_forbidden', 'unlabeled_resource']);

    // a host label that cannot run blue-only VMs
    await s.call('PUT', '/api/v1/hosts/h9', { token: s.tokens.admin, body: { label: 'red' } });
    r = await admit({ host: 'h9', vm: 'y', label: 'blue' }, s.tokens.operator);
    assert.equal(r.json.reason, 'not_authorized');
    assert.deepEqual(r.json.details.authorized.missing, ['blue']);

    const denied = (await s.call('GET', '/api/v1/audit?action=admission.deny', { token: s.tokens.viewer })).json;
    assert.deepEqual(denied.map((d: { subject: string; details: { reason: string } }) => [d.subject, d.details.reason]), [
      ['h1/db', 'conflict_set_occupied'],
      ['h1/web', 'unlabeled_resource'],
      ['h1/x', 'unknown_label'],
      ['h1/x', 'unlabeled'],
      ['h1/x', 'resource_forbidden'],
      ['h9/y', 'not_authorized'],
    ]);
    assert.equal(denied[0].actor, 'token:agent');
  });

  test('label assignment: checked against the policy and what runs, audited with the reason', async () => {
    const op = s.tokens.operator;
    let r = await s.call('PUT', '/api/v1/vms/web/label', { token: op, body: { label: 'nope' } });
    assert.equal(r.status, 422);
    assert.equal(r.json.code, 'unknown_label');
    r = await s.call('PUT', '/api/v1/vms/ghost/label', { token: op, body: { label: 'blue' } });
    assert.equal(r.status, 404);
    // put a second blue VM beside web, so that web cannot become red (the conflict set rb)
    await s.call('PUT', `/api/v1/hosts/${AGENT_HOST}/vms`, { token: s.tokens.agent, body: { vms: [
      { name: 'web', running: true, resources: [{ kind: 'disk', id: '/img/web.qcow2' }] },
      { name: 'vio2', running: true },
      { name: 'blue2', label: 'blue', running: true },
    ] } });
    r = await s.call('PUT', '/api/v1/vms/web/label', { token: op, body: { label: 'red', reason: 'try' } });
    assert.equal(r.status, 409, r.text);
    assert.equal(r.json.code, 'label_conflict');
    assert.equal(r.json.details.reason, 'conflict_set_occupied');
    assert.equal((await s.call('GET', '/api/v1/vms/web', { token: op })).json.label, 'blue');
    r = await s.call('PUT', '/api/v1/vms/web/label', { token: op, body: { label: 'vio', reason: 'needs green' } });
    assert.equal(r.status, 200, r.text);
    const [rec] = (await s.call('GET', '/api/v1/audit?action=vm.label', { token: op })).json;
    assert.deepEqual([rec.actor, rec.subject, rec.details], ['token:operator', 'vm/web', { from: 'blue', to: 'vio', reason: 'needs green', host: AGENT_HOST }]);
  });

  test('resource labels: a policy resource label only, not one a running VM cannot use; changes audited', async () => {
    const op = s.tokens.operator;
    const disk = `/api/v1/resources/disk/${encodeURIComponent('/img/web.qcow2')}`;
    assert.equal((await s.call('PUT', disk, { token: op, body: { label: 'nope' } })).json.code, 'unknown_label');
    let r = await s.call('PUT', disk, { token: op, body: { label: 'blue-disk' } });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { kind: 'disk', id: '/img/web.qcow2', label: 'blue-disk' });
    assert.equal((await s.call('GET', '/api/v1/audit?action=resource.label&subject=disk//img/web.qcow2', { token: op })).json.length, 1, 'the same label again is no change');
    r = await s.call('PUT', disk, { token: op, body: { label: 'red-net', reason: 'wrong' } });
    assert.equal(r.status, 409, 'web (vio: blue, green) runs on it');
    assert.equal(r.json.details.vms[0].vm, 'web');
    r = await s.call('DELETE', disk, { token: op });
    assert.equal(r.status, 409, 'unlabeled, and LAB has no __UNLABELED__ resource label');
    const list = (await s.call('GET', '/api/v1/resources', { token: s.tokens.viewer })).json;
    assert.ok(list.some((x: { id: string; label: string }) => x.id === '/img/web.qcow2' && x.label === 'blue-disk'));
    assert.equal((await s.call('DELETE', '/api/v1/resources/network/net-red', { token: op })).status, 204);
    assert.equal((await s.call('DELETE', '/api/v1/resources/network/net-red', { token: op })).status, 404);
    const actions = (await s.call('GET', '/api/v1/audit', { token: op })).json.map((a: { action: string; subject: string }) => `${a.action} ${a.subject}`);
    assert.ok(actions.includes('resource.label disk//img/web.qcow2'));
    assert.ok(actions.includes('resource.unlabel network/net-red'));
  });

  test('decide answers one query or a batch exactly as `hueguard decide` does', async () => {
    const queries = [
      { op: 'share', a: 'blue', b: 'vio' },
      { op: 'share', a: 'blue', b: 'red' },
      { op: 'use', vm: 'vio', resource: 'red-net' },
      { op: 'authorized', host: 'host', vm: 'vio' },
      { op: 'start', vm: 'red', running: ['host', 'blue'] },
      { op: 'share', a: 'blue', b: 'nope' },
      { op: 'use', vm: 'blue', resource: 'nope' },
    ];
    const r = await s.call('POST', '/api/v1/decide', { token: s.tokens.viewer, body: { queries } });
    assert.equal(r.status, 200, r.text);
    const p = new CompiledPolicy(readPolicy(LAB).policy!);
    const cli = queries.map((q) => {
      const a = answerLine(p, JSON.stringify(q), 1) as { error?: { code: string; message: string } };
      return a.error ? { error: { code: a.error.code, message: a.error.message.replace(/^line 1: /, '') } } : a;
    });
    assert.deepEqual(r.json.answers, cli);
    for (const [i, q] of queries.entries()) {
      const one = await s.call('POST', '/api/v1/decide', { token: s.tokens.viewer, body: q });
      assert.deepEqual(one.json, cli[i]);
    }
    const metrics = (await s.call('GET', '/metrics', { token: s.tokens.viewer })).text;
    assert.match(metrics, /^hueguard_decisions_total\{op="share",answer="allow"\} 2$/m);
    assert.match(metrics, /^hueguard_decisions_total\{op="share",answer="error"\} 2$/m);
    assert.match(metrics, /^hueguard_admissions_total\{answer="deny"\} 6$/m);
    assert.match(metrics, /^hueguard_policy_version 1$/m);
    assert.match(metrics, /^hueguard_http_request_duration_seconds_bucket\{method="POST",route="\/api\/v1\/decide",code="200",le="\+Inf"\} \d+$/m);
  });
});
