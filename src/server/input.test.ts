/**
 * Bad input: every endpoint that takes a body, a path parameter or a query checks it against its schema and answers
 * 400 `invalid_parameter` naming the field (no silent coercion, no silently dropped fields); malformed JSON is 400,
 * an unknown content type 415, an oversized body 413 — and none of them changes anything.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AGENT_HOST, LAB, startServer, type CallOptions, type TestServer } from './server.test-support.ts';

describe('bad input', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer({ rateLimit: false, loginRateLimit: false });
    await s.publish(LAB);
    await s.call('PUT', `/api/v1/hosts/${AGENT_HOST}/vms`, { token: s.tokens.admin, body: { vms: [{ name: 'web', running: true, label: 'blue' }] } });
  });
  after(() => s.close());

  /** [method, path, body, the field the 400 must name] */
  const CASES: [string, string, unknown, string][] = [
    ['POST', '/api/v1/session', { user: 'alice' }, 'body.password'],
    ['POST', '/api/v1/session', { token: 5 }, 'body.token'],
    ['POST', '/api/v1/session', { token: 'x', extra: 1 }, 'body.extra'],
    ['POST', '/api/v1/policy/drafts', {}, 'body.text'],
    ['POST', '/api/v1/policy/drafts', { text: 5 }, 'body.text'],
    ['POST', '/api/v1/policy/drafts', { text: '' }, 'body.text'],
    ['PUT', '/api/v1/policy/drafts/not%20an%20id', { text: LAB }, 'params.id'],
    ['GET', '/api/v1/policy/drafts/not%20an%20id', undefined, 'params.id'],
    ['POST', '/api/v1/policy/drafts/x/publish', {}, 'body.note'],
    ['POST', '/api/v1/policy/drafts/x/publish', { note: 5 }, 'body.note'],
    ['POST', '/api/v1/policy/drafts/x/publish', { note: 'n', mode: 'sideways' }, 'body.mode'],
    ['POST', '/api/v1/policy/revert', { to: '1', note: 'n' }, 'body.to'],
    ['POST', '/api/v1/policy/revert', { to: 0, note: 'n' }, 'body.to'],
    ['POST', '/api/v1/policy/revert', { to: 1 }, 'body.note'],
    ['GET', '/api/v1/policy/versions/abc', undefined, 'params.n'],
    ['GET', '/api/v1/policy/diff', undefined, 'query.from'],
    ['GET', '/api/v1/policy/diff?from=x', undefined, 'query.from'],
    ['GET', '/api/v1/policy/diff?from=1&too=2', undefined, 'query.too'],
    ['POST', '/api/v1/policy/import', { labels: 'x' }, 'body.text'],
    ['PUT', `/api/v1/hosts/${AGENT_HOST}`, {}, 'body.label'],
    ['PUT', `/api/v1/hosts/${AGENT_HOST}`, { label: 5 }, 'body.label'],
    ['PUT', `/api/v1/hosts/${AGENT_HOST}/vms`, { vms: [{ name: 'a' }] }, 'body.vms[0].running'],
    ['PUT', `/api/v1/hosts/${AGENT_HOST}/vms`, { vms: [{ name: 'a', running: 'yes' }] }, 'body.vms[0].running'],
    ['PUT', `/api/v1/hosts/${AGENT_HOST}/vms`, { vms: [{ name: 'a', running: true, resources: [{ kind: 'tape', id: 'x' }] }] }, 'body.vms[0].resources[0].kind'],
    ['PUT', `/api/v1/hosts/${AGENT_HOST}/vms`, { vms: [], extra: 1 }, 'body.extra'],
    ['PUT', `/api/v1/hosts/${AGENT_HOST}/vms`, { vms: [{ name: 'a', running: true, ports: ['bad port'] }] }, 'body.vms[0].ports[0]'],
    ['GET', '/api/v1/vms?host=', undefined, 'query.host'],
    ['PUT', '/api/v1/vms/web/label', {}, 'body.label'],
    ['PUT', '/api/v1/vms/web/label', { label: 3 }, 'body.label'],
    ['PUT', '/api/v1/vms/web/label', { label: 'blue', reason: ['x'] }, 'body.reason'],
    ['PUT', '/api/v1/resources/tape/x', { label: 'blue-disk' }, 'params.kind'],
    ['PUT', '/api/v1/resources/disk/x', {}, 'body.label'],
    ['DELETE', '/api/v1/resources/tape/x', undefined, 'params.kind'],
    ['POST', '/api/v1/admission', { host: AGENT_HOST }, 'body.vm'],
    ['POST', '/api/v1/admission', { host: AGENT_HOST, vm: 'x', resources: [{ kind: 'disk' }] }, 'body.resources[0].id'],
    ['POST', '/api/v1/decide', { op: 'share', a: 'blue' }, 'body.b'],
    ['POST', '/api/v1/decide', { op: 'fly' }, 'body.op'],
    ['POST', '/api/v1/decide', { op: 'start', vm: 'blue', running: [1] }, 'body.running[0]'],
    ['POST', '/api/v1/decide', { queries: [{ op: 'share', a: 'x', b: 'y' }, { op: 'use', vm: 'x' }] }, 'body.queries[1].resource'],
    ['POST', '/api/v1/decide', { queries: 'all' }, 'body.queries'],
    ['GET', '/api/v1/audit?limit=0', undefined, 'query.limit'],
    ['GET', '/api/v1/audit?afterSeq=-1', undefined, 'query.afterSeq'],
    ['GET', '/api/v1/events?kinds=bogus', undefined, 'query.kinds'],
    ['POST', '/api/v1/tokens', { name: 'x', role: 'agent' }, 'body.host'],
    ['POST', '/api/v1/tokens', { name: 'x', role: 'god' }, 'body.role'],
    ['POST', '/api/v1/tokens', { name: 'x/y', role: 'viewer' }, 'body.name'],
    ['DELETE', '/api/v1/tokens/a%20b', undefined, 'params.id'],
    ['PUT', '/api/v1/users/bob', { role: 'viewer', password: 'short' }, 'body.password'],
    ['PUT', '/api/v1/users/bob', { role: 'agent', password: 'long enough pass' }, 'body.role'],
  ];

  test('every endpoint answers 400 naming the field', async () => {
    const auditBefore = (await s.call('GET', '/api/v1/audit', { token: s.tokens.admin })).json.length;
    for (const [method, path, body, field] of CASES) {
      const r = await s.call(method, path, { token: s.tokens.admin, body });
      const what = `${method} ${path} ${JSON.stringify(body)}: ${r.status} ${r.text}`;
      assert.equal(r.status, 400, what);
      assert.equal(r.json.code, 'invalid_parameter', what);
      assert.equal(r.json.details.field, field, what);
      assert.ok(r.json.message.startsWith(field), what);
    }
    assert.equal((await s.call('GET', '/api/v1/audit', { token: s.tokens.admin })).json.length, auditBefore, 'nothing was audited');
    assert.equal((await s.call('GET', '/api/v1/vms/web', { token: s.tokens.admin })).json.label, 'blue');
    assert.equal((await s.call('GET', '/api/v1/tokens', { token: s.tokens.admin })).json.length, 4);
  });

  test('malformed JSON is 400, an unknown content type 415', async () => {
    const opts = (headers: Record<string, string>, body: string): CallOptions => ({ token: s.tokens.operator, headers, body });
    let r = await s.call('PUT', '/api/v1/vms/web/label', opts({ 'content-type': 'application/json' }, '{"label":'));
    assert.equal(r.status, 400);
    assert.equal(r.json.code, 'invalid_body');
    r = await s.call('PUT', '/api/v1/vms/web/label', opts({ 'content-type': 'application/x-www-form-urlencoded' }, 'label=red'));
    assert.equal(r.status, 415);
    assert.equal(r.json.code, 'unsupported_media_type');
    r = await s.call('PUT', '/api/v1/vms/web/label', opts({ 'content-type': 'text/plain' }, 'red'));
    assert.equal(r.status, 400, 'text is not an object');
  });

  test('oversized bodies are 413: 1 MiB by default, the policy limit (16 MiB) for policy text', async () => {
    const big = { label: 'blue', reason: 'x'.repeat(1024 * 1024) };
    let r = await s.call('PUT', '/api/v1/vms/web/label', { token: s.tokens.operator, body: big });
    assert.equal(r.status, 413);
    assert.equal(r.json.code, 'body_too_large');
    // a 2 MiB policy is fine for the draft routes (it fails validation for its own reasons, not its size)
    const padded = LAB + '#'.repeat(2 * 1024 * 1024) + '\n';
    r = await s.call('POST', '/api/v1/policy/drafts', { token: s.tokens.admin, raw: { type: 'application/yaml', text: padded } });
    assert.equal(r.status, 201, r.text.slice(0, 200));
    r = await s.call('POST', '/api/v1/policy/drafts', { token: s.tokens.admin, raw: { type: 'application/yaml', text: '#'.repeat(17 * 1024 * 1024) } });
    assert.equal(r.status, 413);
    assert.equal((await s.call('GET', '/api/v1/policy/drafts', { token: s.tokens.admin })).json.length, 1);
  });

  test('an unauthenticated oversized body is refused before it is read', async () => {
    const r = await s.call('PUT', '/api/v1/vms/web/label', { body: { label: 'x'.repeat(4 * 1024 * 1024) } });
    assert.equal(r.status, 401);
  });
});
