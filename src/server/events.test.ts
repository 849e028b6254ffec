/**
 * The event stream (server-sent events over real HTTP), the audit log's queries (publish, label change, denied
 * admission, sign-in: each with its actor), the OpenAPI document and the health check.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AGENT_HOST, LAB, startServer, type TestServer } from './server.test-support.ts';

/** An open event stream: the events received so far, and a way to wait for one. */
async function openStream(s: TestServer, token: string | { cookie: string }, query = '') {
  const abort = new AbortController();
  const headers: Record<string, string> = typeof token === 'string' ? { authorization: `Bearer ${token}` } : { cookie: token.cookie };
  const r = await fetch(`${s.url}/api/v1/events${query}`, { headers, signal: abort.signal });
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type') ?? '', /^text\/event-stream/);
  const events: { event: string; data: { kind: string; subject: string; at: string } }[] = [];
  let buffer = '';
  let ended = false;
  const waiters: (() => void)[] = [];
  const pump = (async () => {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of r.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let i: number;
        while ((i = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, i);
          buffer = buffer.slice(i + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event && data) events.push({ event, data: JSON.parse(data) });
          for (const w of waiters.splice(0)) w();
        }
      }
    } catch {
      // aborted
    }
    ended = true;
    for (const w of waiters.splice(0)) w();
  })();
  return {
    events,
    get ended() {
      return ended;
    },
    async until(pred: () => boolean, ms = 5000) {
      const deadline = Date.now() + ms;
      while (!pred()) {
        if (ended || Date.now() > deadline) throw new Error(`not seen; events: ${JSON.stringify(events)}`);
        await new Promise<void>((res) => {
          waiters.push(res);
          setTimeout(res, 50);
        });
      }
    },
    close() {
      abort.abort();
      return pump;
    },
    pump,
  };
}

describe('events, audit, OpenAPI, health', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer({ heartbeatMs: 100 });
    await s.publish(LAB, 'lab 1.0');
    await s.call('PUT', `/api/v1/hosts/${AGENT_HOST}/vms`, { token: s.tokens.agent, body: { vms: [{ name: 'web', running: false, label: 'blue' }] } });
  });
  after(() => s.close());

  test('the console hears label changes and publishes as they happen', async () => {
    const all = await openStream(s, s.tokens.viewer);
    const policyOnly = await openStream(s, s.tokens.viewer, '?kinds=policy');
    assert.equal((await s.call('PUT', '/api/v1/vms/web/label', { token: s.tokens.operator, body: { label: 'vio' } })).status, 200);
    await all.until(() => all.events.some((e) => e.event === 'fleet' && e.data.subject === 'vm/web'));
    await all.until(() => all.events.some((e) => e.event === 'audit' && /vm\.label vm\/web/.test(e.data.subject)));
    const next = LAB.replace('version: "1.0"', 'version: "1.1"\nfrom: { policy: lab, version: "1.0" }');
    assert.equal(await s.publish(next, 'lab 1.1'), 2);
    await all.until(() => all.events.some((e) => e.event === 'policy' && e.data.subject === '2'));
    await policyOnly.until(() => policyOnly.events.some((e) => e.data.subject === '2'));
    assert.ok(policyOnly.events.every((e) => e.event === 'policy'), JSON.stringify(policyOnly.events));
    await all.close();
    await policyOnly.close();
  });

  test('event streams end when the server shuts down', async () => {
    const t = await startServer();
    const stream = await openStream(t, t.tokens.viewer);
    const started = Date.now();
    await t.close();
    await stream.pump;
    assert.ok(stream.ended);
    assert.ok(Date.now() - started < 5000);
  });

  test('the audit log: publishes, label changes, denied admissions and sign-ins, with their actors; filters', async () => {
    await s.call('PUT', '/api/v1/users/carol', { token: s.tokens.admin, body: { role: 'viewer', password: 'a long passphrase' } });
    assert.equal((await s.call('POST', '/api/v1/session', { body: { user: 'carol', password: 'a long passphrase' } })).status, 201);
    assert.equal((await s.call('POST', '/api/v1/session', { body: { user: 'carol', password: 'not it at all' } })).status, 401);
    assert.equal((await s.call('POST', '/api/v1/admission', { token: s.tokens.agent, body: { host: AGENT_HOST, vm: 'x', label: 'nope' } })).json.allow, false);
    const all = (await s.call('GET', '/api/v1/audit', { token: s.tokens.viewer })).json as { seq: number; actor: string; action: string; subject: string; hash: string; prevHash: string }[];
    const seen = all.map((r) => `${r.action} ${r.actor} ${r.subject}`);
    for (const want of [
      'policy.publish token:admin policy/1',
      'policy.publish token:admin policy/2',
      'vm.label token:operator vm/web',
      'user.put token:admin user/carol',
      'session.login user:carol user:carol',
      'session.login_failed user:carol user:carol',
      'admission.deny token:agent h1/x',
    ]) assert.ok(seen.includes(want), `${want} in ${JSON.stringify(seen)}`);
    all.forEach((r, i) => {
      assert.equal(r.seq, i + 1);
      assert.equal(r.prevHash, i === 0 ? '0'.repeat(64) : all[i - 1].hash, 'each record holds the hash of the one before');
    });
    const byActor = (await s.call('GET', '/api/v1/audit?actor=user:carol', { token: s.tokens.viewer })).json;
    assert.deepEqual(byActor.map((r: { action: string }) => r.action), ['session.login', 'session.login_failed']);
    const page = (await s.call('GET', `/api/v1/audit?afterSeq=${all[2].seq}&limit=2`, { token: s.tokens.viewer })).json;
    assert.deepEqual(page.map((r: { seq: number }) => r.seq), [all[3].seq, all[4].seq]);
  });

  test('/openapi.json describes every route from its schemas, with who may call it', async () => {
    const doc = (await s.call('GET', '/openapi.json', { token: s.tokens.agent })).json;
    assert.equal(doc.openapi, '3.1.0');
    const label = doc.paths['/api/v1/vms/{name}/label'].put;
    assert.deepEqual(label['x-roles'], ['operator', 'admin']);
    assert.deepEqual(label.parameters.map((p: { name: string; in: string }) => [p.name, p.in]), [['name', 'path']]);
    assert.deepEqual(label.requestBody.content['application/json'].schema.required, ['label']);
    assert.ok(label.responses['409']);
    const drafts = doc.paths['/api/v1/policy/drafts'].post;
    assert.ok(drafts.requestBody.content['application/yaml'] && drafts.requestBody.content['application/xml']);
    assert.deepEqual(doc.paths['/healthz'].get.security, []);
    assert.equal(doc.paths['/api/v1/admission'].post['x-agent-host'], 'body.host');
    const diff = doc.paths['/api/v1/policy/diff'].get;
    assert.deepEqual(diff.parameters.map((p: { name: string; required: boolean }) => [p.name, p.required]), [['from', true], ['to', false]]);
    const ids = Object.values(doc.paths).flatMap((ops) => Object.values(ops as Record<string, { operationId: string }>).map((o) => o.operationId));
    assert.equal(new Set(ids).size, ids.length, 'operation ids are unique');
  });

  test('/healthz needs no credential', async () => {
    const r = await s.call('GET', '/healthz');
    assert.deepEqual([r.status, r.json], [200, { status: 'ok', store: 'sqlite' }]);
  });
});

describe('a console session\'s event stream', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer({ heartbeatMs: 100, sessionTtlMs: 1_500 });
  });
  after(() => s.close());

  const signIn = async () => {
    const r = await s.call('POST', '/api/v1/session', { body: { token: s.tokens.viewer } });
    assert.equal(r.status, 201, r.text);
    return { cookie: r.headers.get('set-cookie')!.split(';')[0], csrf: r.json.csrfToken as string };
  };

  test('ends when the session expires: a page left open stops hearing the fleet', async () => {
    const { cookie } = await signIn();
    const t0 = Date.now();
    const stream = await openStream(s, { cookie });
    await stream.pump;
    const took = Date.now() - t0;
    assert.ok(took >= 1_000 && took < 4_000, `ended after ${took} ms, the session lasts 1.5 s`);
  });

  test('ends when the session is signed out', async () => {
    const { cookie, csrf } = await signIn();
    const stream = await openStream(s, { cookie });
    const out = await fetch(`${s.url}/api/v1/session`, { method: 'DELETE', headers: { cookie, 'x-csrf-token': csrf } });
    assert.equal(out.status, 204);
    const t0 = Date.now();
    await stream.pump;
    assert.ok(Date.now() - t0 < 1_000, 'the next heartbeat ends it');
  });
});
