/**
 * Policies through the API on a real SQLite store: drafts (422 with every diagnostic; an invalid text changes
 * nothing), validation, a preview against the live fleet, publish in reject mode (refused: nothing changes) and in
 * revoke mode, history, diff, revert, and the import of a real Xen ACM policy.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LAB, LAB_V2, startServer, type TestServer } from './server.test-support.ts';

const xen = join(import.meta.dirname, '..', '..', '..', 'shared', 'data', 'xen-acm');

describe('policy lifecycle', () => {
  let s: TestServer;
  let admin: string;
  const yaml = (text: string) => ({ type: 'application/yaml', text });
  const auditOf = async (action: string) => (await s.call('GET', `/api/v1/audit?action=${action}`, { token: admin })).json as { actor: string; details: Record<string, unknown> }[];

  before(async () => {
    s = await startServer();
    admin = s.tokens.admin;
  });
  after(() => s.close());

  test('nothing is published at first', async () => {
    assert.equal((await s.call('GET', '/api/v1/policy', { token: admin })).status, 404);
    const d = await s.call('POST', '/api/v1/decide', { token: admin, body: { op: 'share', a: 'a', b: 'b' } });
    assert.equal(d.status, 409);
    assert.equal(d.json.code, 'no_policy');
  });

  test('a draft with errors is refused with every diagnostic, and nothing is stored', async () => {
    const bad = LAB.replace('blue: { colors: [blue], walls: [blue-w] }', 'blue: { colors: [blue, purple], walls: [blue-w, red-w] }');
    const r = await s.call('POST', '/api/v1/policy/drafts', { token: admin, raw: yaml(bad) });
    assert.equal(r.status, 422, r.text);
    assert.equal(r.json.code, 'policy_invalid');
    const diags = r.json.details.diagnostics as { file: string; line: number; column: number; code: string; message: string }[];
    const codes = diags.map((d) => d.code).sort();
    assert.deepEqual(codes, ['label_in_conflict', 'unknown_color']);
    const purple = diags.find((d) => d.code === 'unknown_color')!;
    assert.equal(purple.line, 10);
    assert.equal(purple.column, bad.split('\n')[9].indexOf('purple') + 1);
    for (const d of diags) for (const k of ['file', 'line', 'column', 'code', 'message']) assert.ok(k in d, `${k} in ${JSON.stringify(d)}`);
    const syntax = await s.call('POST', '/api/v1/policy/drafts', { token: admin, body: { text: 'policy: [unclosed' } });
    assert.equal(syntax.status, 422);
    assert.equal(syntax.json.details.diagnostics[0].code, 'yaml_syntax');
    assert.deepEqual((await s.call('GET', '/api/v1/policy/drafts', { token: admin })).json, []);
  });

  test('the first publish: preview, then a new version with the note in the audit log', async () => {
    const d = await s.call('POST', '/api/v1/policy/drafts', { token: admin, raw: yaml(LAB) });
    assert.equal(d.status, 201, d.text);
    assert.equal(d.json.yaml, LAB, 'YAML is kept as written, comments and all');
    assert.equal(d.json.base, null);
    const pv = await s.call('GET', `/api/v1/policy/drafts/${d.json.id}/preview`, { token: s.tokens.operator });
    assert.equal(pv.status, 200);
    assert.equal(pv.json.kind, 'first');
    assert.ok(pv.json.sharing.gained.some(([a, b]: string[]) => a === 'blue' && b === 'vio'));
    const p = await s.call('POST', `/api/v1/policy/drafts/${d.json.id}/publish`, { token: admin, body: { note: 'lab 1.0' } });
    assert.equal(p.status, 201, p.text);
    assert.equal(p.json.version.version, 1);
    assert.equal(p.json.version.note, 'lab 1.0');
    assert.equal(p.json.version.actor, 'token:admin');
    assert.equal((await s.call('GET', `/api/v1/policy/drafts/${d.json.id}`, { token: admin })).status, 404, 'a published draft is gone');
    const cur = await s.call('GET', '/api/v1/policy', { token: s.tokens.viewer });
    assert.equal(cur.json.yaml, LAB);
    const [rec] = await auditOf('policy.publish');
    assert.equal(rec.actor, 'token:admin');
    assert.equal(rec.details.note, 'lab 1.0');
  });

  test('the fleet', async () => {
    const inv = (host: string, vms: unknown[]) => s.call('PUT', `/api/v1/hosts/${host}/vms`, { token: admin, body: { vms } });
    assert.equal((await s.call('PUT', '/api/v1/hosts/h1', { token: admin, body: { label: 'host' } })).status, 200);
    assert.equal((await inv('h1', [
      { name: 'web', label: 'blue', running: true, resources: [{ kind: 'disk', id: '/img/web.qcow2' }] },
      { name: 'vio1', label: 'vio', running: true, resources: [{ kind: 'disk', id: '/img/vio.qcow2' }] },
    ])).status, 200);
    assert.equal((await inv('h2', [{ name: 'cache', label: 'red', running: true, resources: [{ kind: 'network', id: 'net0' }] }])).status, 200);
    for (const [kind, id, label] of [['disk', '/img/web.qcow2', 'blue-disk'], ['disk', '/img/vio.qcow2', 'blue-disk'], ['network', 'net0', 'red-net']]) {
      const r = await s.call('PUT', `/api/v1/resources/${kind}/${encodeURIComponent(id)}`, { token: s.tokens.operator, body: { label } });
      assert.equal(r.status, 200, r.text);
    }
  });

  let v2: string;
  test('a preview names who loses a peer, the violators under reject, the VMs revoke isolates, and the renames', async () => {
    const d = await s.call('POST', '/api/v1/policy/drafts', { token: admin, raw: yaml(LAB_V2) });
    assert.equal(d.status, 201, d.text);
    v2 = d.json.id;
    assert.equal(d.json.base, 1);
    const pv = (await s.call('GET', `/api/v1/policy/drafts/${v2}/preview`, { token: s.tokens.operator })).json;
    assert.equal(pv.kind, 'publish');
    assert.equal(pv.current, 1);
    assert.deepEqual(pv.refusals, []);
    assert.ok(pv.sharing.lost.some((p: string[]) => p.includes('blue') && p.includes('vio')), JSON.stringify(pv.sharing));
    assert.deepEqual(pv.violations.map((v: { vm: string; code: string }) => [v.vm, v.code]), [['vio1', 'resource_forbidden']]);
    assert.equal(pv.reject.accepted, false);
    assert.equal(pv.revoke.accepted, true);
    assert.deepEqual(pv.revoke.isolate, [{ vm: 'vio1', host: 'h1', reasons: ['resource_forbidden'] }]);
    assert.deepEqual(pv.relabeled, [{ vm: 'cache', from: 'red', to: 'crimson' }]);
    assert.deepEqual(pv.diff.labels.renamed, [{ from: 'red', to: 'crimson' }]);
    // the fleet's view: which running VMs gain or lose colors (a renamed label that keeps its colors is listed too)
    assert.deepEqual(pv.colors, [
      { vm: 'cache', host: 'h2', label: 'red', to: 'crimson', gained: [], lost: [] },
      { vm: 'vio1', host: 'h1', label: 'vio', to: 'vio', gained: [], lost: ['blue'] },
    ]);
    // viewers may not ask for it: it replays the whole fleet
    assert.equal((await s.call('GET', `/api/v1/policy/drafts/${v2}/preview`, { token: s.tokens.viewer })).status, 403);
    const val = (await s.call('POST', `/api/v1/policy/drafts/${v2}/validate`, { token: s.tokens.viewer })).json;
    assert.deepEqual([val.valid, val.refusals, val.current], [true, [], 1]);
  });

  test('a reject-mode publish with violations is refused and changes nothing', async () => {
    const auditBefore = (await s.call('GET', '/api/v1/audit', { token: admin })).json.length;
    const r = await s.call('POST', `/api/v1/policy/drafts/${v2}/publish`, { token: admin, body: { note: 'try', mode: 'reject' } });
    assert.equal(r.status, 409, r.text);
    assert.equal(r.json.code, 'policy_update_refused');
    assert.equal(r.json.details.violations[0].vm, 'vio1');
    assert.equal((await s.call('GET', '/api/v1/policy', { token: admin })).json.version, 1);
    assert.equal((await s.call('GET', '/api/v1/policy/versions', { token: admin })).json.length, 1);
    assert.equal((await s.call('GET', '/api/v1/vms/cache', { token: admin })).json.label, 'red', 'no rename was applied');
    assert.equal((await s.call('GET', `/api/v1/policy/drafts/${v2}`, { token: admin })).status, 200, 'the draft stays');
    assert.equal((await s.call('GET', '/api/v1/audit', { token: admin })).json.length, auditBefore);
  });

  test('a draft that does not follow the current version is refused in either mode', async () => {
    const d = await s.call('POST', '/api/v1/policy/drafts', { token: admin, raw: yaml(LAB.replace('"1.0"', '"2.0"')) });
    const val = (await s.call('POST', `/api/v1/policy/drafts/${d.json.id}/validate`, { token: admin })).json;
    assert.equal(val.valid, false);
    assert.equal(val.refusals[0].code, 'version_prevents_update');
    const r = await s.call('POST', `/api/v1/policy/drafts/${d.json.id}/publish`, { token: admin, body: { note: 'x', mode: 'revoke' } });
    assert.equal(r.status, 409);
    assert.equal(r.json.details.refusals[0].code, 'version_prevents_update');
    await s.call('DELETE', `/api/v1/policy/drafts/${d.json.id}`, { token: admin });
  });

  test('a revoke-mode publish applies: a new immutable version, renames carried to the fleet, violators named', async () => {
    const r = await s.call('POST', `/api/v1/policy/drafts/${v2}/publish`, { token: admin, body: { note: 'vio loses blue; red is crimson', mode: 'revoke' } });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.version.version, 2);
    assert.deepEqual(r.json.result.isolate, [{ vm: 'vio1', host: 'h1', reasons: ['resource_forbidden'] }]);
    assert.equal((await s.call('GET', '/api/v1/vms/cache', { token: admin })).json.label, 'crimson');
    const rec = (await auditOf('policy.publish')).at(-1)!;
    assert.equal(rec.details.mode, 'revoke');
    assert.equal(rec.details.note, 'vio loses blue; red is crimson');
    assert.deepEqual(rec.details.isolate, [{ vm: 'vio1', host: 'h1', reasons: ['resource_forbidden'] }]);
    const dec = await s.call('POST', '/api/v1/decide', { token: s.tokens.viewer, body: { op: 'share', a: 'blue', b: 'vio' } });
    assert.equal(dec.json.allow, false, 'decisions use the new version at once');
    // the violator is isolated: no colors in its host's plan, and the plan says why; the others are not
    const plan = (await s.call('GET', '/api/v1/hosts/h1/plan', { token: admin })).json;
    assert.equal(plan.policyVersion, 2);
    const vio1 = plan.vms.find((v: { name: string }) => v.name === 'vio1');
    assert.deepEqual(vio1.colors, []);
    assert.equal(vio1.isolated, 'isolated by the revoke of policy version 2: resource_forbidden');
    assert.doesNotMatch(plan.vms.find((v: { name: string }) => v.name === 'web').isolated ?? '', /revoke/);
    assert.equal((await s.call('GET', '/api/v1/vms/vio1', { token: admin })).json.isolated, vio1.isolated);
  });

  test('history, one version, diff', async () => {
    const h = (await s.call('GET', '/api/v1/policy/versions', { token: s.tokens.viewer })).json;
    assert.deepEqual(h.map((v: { version: number; policyVersion: string }) => [v.version, v.policyVersion]), [[1, '1.0'], [2, '1.1']]);
    assert.equal(h[0].yaml, undefined, 'the list has no text');
    assert.equal((await s.call('GET', '/api/v1/policy/versions/2', { token: s.tokens.viewer })).json.yaml, LAB_V2);
    assert.equal((await s.call('GET', '/api/v1/policy/versions/9', { token: s.tokens.viewer })).status, 404);
    const d = (await s.call('GET', '/api/v1/policy/diff?from=1&to=2', { token: s.tokens.viewer })).json;
    assert.deepEqual([d.from, d.to], [1, 2]);
    assert.deepEqual(d.diff.labels.renamed, [{ from: 'red', to: 'crimson' }]);
    assert.deepEqual(d.diff.labels.changed.find((c: { name: string }) => c.name === 'vio').colors, { added: [], removed: ['blue'] });
    assert.ok(d.sharing.lost.some((p: string[]) => p.includes('blue') && p.includes('vio')));
    const latest = (await s.call('GET', '/api/v1/policy/diff?from=1', { token: s.tokens.viewer })).json;
    assert.equal(latest.to, 2);
  });

  test('revert publishes the old text as a new version, undoing the renames, and is audited', async () => {
    const r = await s.call('POST', '/api/v1/policy/revert', { token: admin, body: { to: 1, note: 'back to 1.0' } });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.version.version, 3);
    assert.equal(r.json.version.policyVersion, '1.0');
    assert.equal(r.json.result.kind, 'revert');
    assert.equal((await s.call('GET', '/api/v1/policy', { token: admin })).json.yaml, LAB);
    assert.equal((await s.call('GET', '/api/v1/vms/cache', { token: admin })).json.label, 'red', 'crimson is red again');
    // vio1 fits version 1 again: no longer isolated by the revoke (only by what else holds, here: no evidence yet)
    const vio1 = (await s.call('GET', '/api/v1/hosts/h1/plan', { token: admin })).json.vms.find((v: { name: string }) => v.name === 'vio1');
    assert.match(vio1.isolated, /^unverified/);
    const rec = (await auditOf('policy.revert')).at(-1)!;
    assert.deepEqual([rec.actor, rec.details.note, rec.details.revertTo, rec.details.version], ['token:admin', 'back to 1.0', 1, 3]);
    assert.equal((await s.call('GET', '/api/v1/policy/versions/1', { token: admin })).json.yaml, LAB, 'version 1 is untouched');
    assert.equal((await s.call('POST', '/api/v1/policy/revert', { token: admin, body: { to: 7, note: 'x' } })).status, 404);
  });

  test('a revert that running VMs violate is refused in reject mode', async () => {
    // move web (blue) off its blue disk onto red's network: v1 lets that pass for red only
    const strict = LAB.replace('"1.0"', '"1.5"').replace('version: "1.5"', 'version: "1.5"\nfrom: { policy: lab, version: "1.0" }')
      .replace('vio:  { colors: [blue, green], onUntrusted: alert }', 'vio:  { colors: [blue, green], onUntrusted: alert }\n  spare: { colors: [green] }');
    assert.equal(await s.publish(strict, 'add spare'), 4);
    const inv = await s.call('PUT', '/api/v1/hosts/h2/vms', { token: admin, body: { vms: [{ name: 'cache', running: true }, { name: 'extra', label: 'spare', running: true }] } });
    assert.equal(inv.status, 200);
    const r = await s.call('POST', '/api/v1/policy/revert', { token: admin, body: { to: 1, note: 'drop spare' } });
    assert.equal(r.status, 409, r.text);
    assert.deepEqual(r.json.details.violations.map((v: { vm: string; code: string }) => [v.vm, v.code]), [['extra', 'label_removed']]);
    assert.equal((await s.call('GET', '/api/v1/policy', { token: admin })).json.version, 4);
  });

  test('PUT replaces a draft; an invalid replacement leaves it as it was', async () => {
    const put = await s.call('PUT', '/api/v1/policy/drafts/mine', { token: admin, body: { text: LAB } });
    assert.equal(put.status, 200, put.text);
    const bad = await s.call('PUT', '/api/v1/policy/drafts/mine', { token: admin, body: { text: LAB.replace('host: host', 'host: nowhere') } });
    assert.equal(bad.status, 422);
    assert.equal(bad.json.details.diagnostics[0].code, 'missing_bootstrap');
    assert.equal((await s.call('GET', '/api/v1/policy/drafts/mine', { token: admin })).json.yaml, LAB);
    assert.equal((await s.call('DELETE', '/api/v1/policy/drafts/mine', { token: admin })).status, 204);
    assert.equal((await s.call('DELETE', '/api/v1/policy/drafts/mine', { token: admin })).status, 404);
  });

  test('import: a real Xen ACM policy becomes a native YAML draft; other text is refused', async () => {
    const text = readFileSync(join(xen, 'gen3_xen-3.2_to_4.1', 'xm-test-security_policy.xml'), 'utf8');
    const r = await s.call('POST', '/api/v1/policy/import', { token: admin, raw: { type: 'application/xml', text } });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.format, 'xen-acm');
    assert.match(r.json.yaml, /^policy: /);
    const d = await s.call('GET', `/api/v1/policy/drafts/${r.json.id}`, { token: admin });
    assert.equal(d.json.name, r.json.name);
    const viaJson = await s.call('POST', '/api/v1/policy/import', { token: admin, body: { text } });
    assert.equal(viaJson.status, 201);
    const notXen = await s.call('POST', '/api/v1/policy/import', { token: admin, raw: yaml(LAB) });
    assert.equal(notXen.status, 422);
    assert.equal(notXen.json.details.diagnostics[0].code, 'unknown_format');
    const broken = await s.call('POST', '/api/v1/policy/import', { token: admin, raw: { type: 'application/xml', text: text.slice(0, 400) } });
    assert.equal(broken.status, 422);
    assert.equal(broken.json.details.diagnostics[0].code, 'xml_syntax');
  });
});

describe('a VM a revoke isolates', () => {
  test('stays isolated while it keeps running where it runs; stopped (or relabeled) it starts clean', async () => {
    const s = await startServer({ rateLimit: false, tickMs: false });
    try {
      await s.publish(LAB);
      const inv = (vms: unknown[]) => s.call('PUT', '/api/v1/hosts/h1/vms', { token: s.tokens.agent, body: { vms } });
      const vio = { name: 'vio1', label: 'vio', running: true, resources: [{ kind: 'disk', id: '/img/vio.qcow2' }] };
      const web = { name: 'web', label: 'blue', running: true };
      assert.equal((await inv([web, vio])).status, 200);
      assert.equal((await s.call('PUT', `/api/v1/resources/disk/${encodeURIComponent('/img/vio.qcow2')}`, { token: s.tokens.operator, body: { label: 'blue-disk' } })).status, 200);
      assert.equal(await s.publish(LAB_V2, 'vio loses blue', 'revoke'), 2);
      const isolated = async () => (await s.call('GET', '/api/v1/vms/vio1', { token: s.tokens.viewer })).json.isolated as string;
      assert.match(await isolated(), /revoke of policy version 2/);
      assert.equal((await inv([web, vio])).status, 200, 'reported again, still running');
      assert.match(await isolated(), /revoke of policy version 2/);
      assert.equal((await inv([web, { ...vio, running: false }])).status, 200, 'stopped');
      assert.doesNotMatch(await isolated(), /revoke/);
      assert.equal((await inv([web, vio])).status, 200, 'started again');
      assert.doesNotMatch(await isolated(), /revoke/);
    } finally {
      await s.close();
    }
  });
});
