/**
 * Access control over real HTTP: EVERY route, with every role and with no credential, against a table written here
 * from the role descriptions (not copied from access.ts): viewers read; operators also label VMs, disks and
 * networks and ask admission; admins also write policy and manage tokens and users; an agent reports and fetches for
 * its own host only. Also: agent host binding, cookie sessions with CSRF, expiry, sign-in, the rate limit.
 */
import { generateKeyPairSync } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROLES, type Role } from '../api/types.ts';
import { ACCESS } from './access.ts';
import { AGENT_HOST, LAB, startServer, type Answer, type TestServer } from './server.test-support.ts';

type Who = Role | 'none';
const WHO: Who[] = [...ROLES, 'none'];

const READERS: Role[] = ['viewer', 'operator', 'admin'];
const EVERYONE: Role[] = ['viewer', 'operator', 'admin', 'agent'];

/** One route: who may call it, and how to make a request that succeeds for them (fresh fixtures per call). */
interface Case {
  route: string;
  allowed: Role[] | 'public';
  request: (s: TestServer) => Promise<{ path: string; body?: unknown; raw?: { type: string; text: string } }>;
}

let n = 0;
/** An attestation key for the matrix (a PEM public key, base64). */
const MATRIX_AK = Buffer.from(
  generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }) as string,
).toString('base64');
const fresh = (p: string) => `${p}${++n}`;

async function newDraft(s: TestServer): Promise<string> {
  const next = LAB.replace('version: "1.0"', `version: "1.${++n}"\nfrom: { policy: lab, version: "1.0" }`);
  const r = await s.call('POST', '/api/v1/policy/drafts', { token: s.tokens.admin, raw: { type: 'application/yaml', text: next } });
  assert.equal(r.status, 201, r.text);
  return r.json.id;
}

const CASES: Case[] = [
  { route: 'GET /healthz', allowed: 'public', request: async () => ({ path: '/healthz' }) },
  { route: 'POST /api/v1/session', allowed: 'public', request: async (s) => ({ path: '/api/v1/session', body: { token: s.tokens.viewer } }) },
  { route: 'GET /api/v1/session', allowed: EVERYONE, request: async () => ({ path: '/api/v1/session' }) },
  { route: 'DELETE /api/v1/session', allowed: EVERYONE, request: async () => ({ path: '/api/v1/session' }) },
  { route: 'GET /openapi.json', allowed: EVERYONE, request: async () => ({ path: '/openapi.json' }) },
  { route: 'GET /metrics', allowed: READERS, request: async () => ({ path: '/metrics' }) },

  { route: 'GET /api/v1/policy', allowed: READERS, request: async () => ({ path: '/api/v1/policy' }) },
  { route: 'GET /api/v1/policy/versions', allowed: READERS, request: async () => ({ path: '/api/v1/policy/versions' }) },
  { route: 'GET /api/v1/policy/versions/:n', allowed: READERS, request: async () => ({ path: '/api/v1/policy/versions/1' }) },
  { route: 'GET /api/v1/policy/diff', allowed: READERS, request: async () => ({ path: '/api/v1/policy/diff?from=1&to=1' }) },
  { route: 'GET /api/v1/policy/drafts', allowed: READERS, request: async () => ({ path: '/api/v1/policy/drafts' }) },
  { route: 'GET /api/v1/policy/drafts/:id', allowed: READERS, request: async (s) => ({ path: `/api/v1/policy/drafts/${await newDraft(s)}` }) },
  { route: 'GET /api/v1/policy/drafts/:id/preview', allowed: ['operator', 'admin'], request: async (s) => ({ path: `/api/v1/policy/drafts/${await newDraft(s)}/preview` }) },
  { route: 'POST /api/v1/policy/drafts/:id/validate', allowed: READERS, request: async (s) => ({ path: `/api/v1/policy/drafts/${await newDraft(s)}/validate` }) },
  { route: 'POST /api/v1/policy/drafts', allowed: ['admin'], request: async () => ({ path: '/api/v1/policy/drafts', raw: { type: 'application/yaml', text: LAB } }) },
  { route: 'PUT /api/v1/policy/drafts/:id', allowed: ['admin'], request: async () => ({ path: `/api/v1/policy/drafts/${fresh('d')}`, body: { text: LAB } }) },
  { route: 'DELETE /api/v1/policy/drafts/:id', allowed: ['admin'], request: async (s) => ({ path: `/api/v1/policy/drafts/${await newDraft(s)}` }) },
  {
    route: 'POST /api/v1/policy/drafts/:id/publish',
    allowed: ['admin'],
    request: async (s) => {
      // A draft that follows whatever is current now, so that each publish is accepted.
      const cur = (await s.call('GET', '/api/v1/policy', { token: s.tokens.admin })).json;
      const v = `${cur.policyVersion.split('.')[0]}.${Number(cur.policyVersion.split('.')[1]) + 1}`;
      const text = LAB.replace('version: "1.0"', `version: "${v}"\nfrom: { policy: lab, version: "${cur.policyVersion}" }`);
      const d = await s.call('POST', '/api/v1/policy/drafts', { token: s.tokens.admin, raw: { type: 'application/yaml', text } });
      return { path: `/api/v1/policy/drafts/${d.json.id}/publish`, body: { note: 'matrix' } };
    },
  },
  { route: 'POST /api/v1/policy/revert', allowed: ['admin'], request: async () => ({ path: '/api/v1/policy/revert', body: { to: 1, note: 'matrix' } }) },
  { route: 'POST /api/v1/policy/import', allowed: ['admin'], request: async () => ({ path: '/api/v1/policy/import', raw: { type: 'application/xml', text: XEN } }) },

  { route: 'GET /api/v1/hosts', allowed: READERS, request: async () => ({ path: '/api/v1/hosts' }) },
  { route: 'GET /api/v1/hosts/:name', allowed: EVERYONE, request: async () => ({ path: `/api/v1/hosts/${AGENT_HOST}` }) },
  { route: 'GET /api/v1/hosts/:name/vms', allowed: EVERYONE, request: async () => ({ path: `/api/v1/hosts/${AGENT_HOST}/vms` }) },
  { route: 'PUT /api/v1/hosts/:name', allowed: ['admin', 'agent'], request: async () => ({ path: `/api/v1/hosts/${AGENT_HOST}`, body: { label: 'host' } }) },
  {
    route: 'PUT /api/v1/hosts/:name/vms',
    allowed: ['admin', 'agent'],
    request: async () => ({ path: `/api/v1/hosts/${AGENT_HOST}/vms`, body: { vms: [{ name: 'web', running: true, label: 'blue' }] } }),
  },
  { route: 'GET /api/v1/vms', allowed: READERS, request: async () => ({ path: '/api/v1/vms' }) },
  { route: 'GET /api/v1/vms/:name', allowed: READERS, request: async () => ({ path: '/api/v1/vms/web' }) },
  { route: 'PUT /api/v1/vms/:name/label', allowed: ['operator', 'admin'], request: async () => ({ path: '/api/v1/vms/web/label', body: { label: n++ % 2 ? 'vio' : 'blue', reason: 'matrix' } }) },
  { route: 'GET /api/v1/resources', allowed: READERS, request: async () => ({ path: '/api/v1/resources' }) },
  { route: 'PUT /api/v1/resources/:kind/:id', allowed: ['operator', 'admin'], request: async () => ({ path: `/api/v1/resources/disk/${encodeURIComponent('/img/a.qcow2')}`, body: { label: 'blue-disk' } }) },
  {
    route: 'DELETE /api/v1/resources/:kind/:id',
    allowed: ['operator', 'admin'],
    request: async (s) => {
      const id = encodeURIComponent(`/img/${fresh('x')}.qcow2`);
      assert.equal((await s.call('PUT', `/api/v1/resources/disk/${id}`, { token: s.tokens.admin, body: { label: 'blue-disk' } })).status, 200);
      return { path: `/api/v1/resources/disk/${id}` };
    },
  },
  { route: 'POST /api/v1/vms/:name/nonce', allowed: ['operator', 'admin', 'agent'], request: async () => ({ path: '/api/v1/vms/web/nonce' }) },
  // an empty increment: appraises nothing, changes nothing (the agent of web's host only)
  { route: 'POST /api/v1/vms/:name/evidence', allowed: ['agent'], request: async () => ({ path: '/api/v1/vms/web/evidence', body: { entries: [] } }) },
  { route: 'POST /api/v1/hosts/:name/nonces', allowed: ['operator', 'admin', 'agent'], request: async () => ({ path: `/api/v1/hosts/${AGENT_HOST}/nonces`, body: { vms: ['web'] } }) },
  // the same for every VM of the host, in one request (the host's agent only)
  { route: 'POST /api/v1/hosts/:name/evidence', allowed: ['agent'], request: async () => ({ path: `/api/v1/hosts/${AGENT_HOST}/evidence`, body: { vms: [{ vm: 'web', entries: [] }] } }) },
  // the same key every time: registered once, then a no-op for every caller allowed to register
  { route: 'PUT /api/v1/vms/:name/ak', allowed: ['operator', 'admin', 'agent'], request: async () => ({ path: '/api/v1/vms/web/ak', body: { ak: MATRIX_AK } }) },
  { route: 'GET /api/v1/vms/:name/trust', allowed: READERS, request: async () => ({ path: '/api/v1/vms/web/trust' }) },
  { route: 'GET /api/v1/vms/:name/trust/history', allowed: READERS, request: async () => ({ path: '/api/v1/vms/web/trust/history' }) },
  {
    route: 'POST /api/v1/vms/:name/readmit',
    allowed: ['operator', 'admin'],
    request: async (s) => {
      // make it untrusted first (the store directly: this test is about who may call the route)
      const t = await s.store.trust('web');
      const at = new Date().toISOString();
      await s.store.putTrust(
        { vm: 'web', state: 'untrusted', since: at, reason: 'matrix', lastEvidence: null },
        { vm: 'web', from: t?.state ?? 'unverified', to: 'untrusted', at, reason: 'matrix', actor: 'test' },
      );
      return { path: '/api/v1/vms/web/readmit', body: { reason: 'matrix', mode: 'baseline' } };
    },
  },
  // the agent's report of its data plane; reading it: everyone (the host's own agent too)
  { route: 'PUT /api/v1/hosts/:name/report', allowed: ['agent'], request: async () => ({ path: `/api/v1/hosts/${AGENT_HOST}/report`, body: { appliedPlan: null, planError: null, blocked: [] } }) },
  { route: 'GET /api/v1/hosts/:name/report', allowed: EVERYONE, request: async () => ({ path: `/api/v1/hosts/${AGENT_HOST}/report` }) },
  { route: 'GET /api/v1/blocked', allowed: READERS, request: async () => ({ path: '/api/v1/blocked' }) },
  { route: 'GET /api/v1/hosts/:name/plan', allowed: EVERYONE, request: async () => ({ path: `/api/v1/hosts/${AGENT_HOST}/plan` }) },
  { route: 'POST /api/v1/admission', allowed: ['operator', 'admin', 'agent'], request: async () => ({ path: '/api/v1/admission', body: { host: AGENT_HOST, vm: 'new', label: 'blue' } }) },
  { route: 'POST /api/v1/decide', allowed: READERS, request: async () => ({ path: '/api/v1/decide', body: { op: 'share', a: 'blue', b: 'vio' } }) },
  { route: 'POST /api/v1/whatif/share', allowed: READERS, request: async () => ({ path: '/api/v1/whatif/share', body: { a: 'web', b: 'web' } }) },
  { route: 'POST /api/v1/whatif/start', allowed: READERS, request: async () => ({ path: '/api/v1/whatif/start', body: { vm: 'web', host: AGENT_HOST } }) },
  { route: 'GET /', allowed: 'public', request: async () => ({ path: '/' }) },
  { route: 'GET /assets/:file', allowed: 'public', request: async () => ({ path: '/assets/app-test.js' }) },
  { route: 'GET /api/v1/audit', allowed: READERS, request: async () => ({ path: '/api/v1/audit?limit=5' }) },
  { route: 'GET /api/v1/events', allowed: READERS, request: async () => ({ path: '/api/v1/events' }) },
  { route: 'GET /api/v1/tokens', allowed: ['admin'], request: async () => ({ path: '/api/v1/tokens' }) },
  { route: 'POST /api/v1/tokens', allowed: ['admin'], request: async () => ({ path: '/api/v1/tokens', body: { name: fresh('t'), role: 'viewer' } }) },
  {
    route: 'DELETE /api/v1/tokens/:id',
    allowed: ['admin'],
    request: async (s) => {
      const t = await s.call('POST', '/api/v1/tokens', { token: s.tokens.admin, body: { name: fresh('t'), role: 'viewer' } });
      return { path: `/api/v1/tokens/${t.json.id}` };
    },
  },
  { route: 'PUT /api/v1/users/:name', allowed: ['admin'], request: async () => ({ path: `/api/v1/users/${fresh('u')}`, body: { role: 'viewer', password: 'correct horse battery' } }) },
];

/** A real Xen ACM policy (gen3, Xen 3.2–4.1). */
const XEN = readFileSync(join(import.meta.dirname, '..', '..', '..', 'shared', 'data', 'xen-acm', 'gen3_xen-3.2_to_4.1', 'xm-test-security_policy.xml'), 'utf8');

/** Send the case's request as `who`; the event stream is read up to its status only. */
async function send(s: TestServer, c: Case, who: Who): Promise<Answer> {
  const [method] = c.route.split(' ');
  const req = await c.request(s);
  const token = who === 'none' ? undefined : s.tokens[who];
  if (c.route === 'GET /api/v1/events') {
    const abort = new AbortController();
    const r = await fetch(s.url + req.path, { headers: token ? { authorization: `Bearer ${token}` } : {}, signal: abort.signal });
    const text = r.ok ? '' : await r.text();
    abort.abort();
    return { status: r.status, headers: r.headers, text, json: text ? JSON.parse(text) : undefined };
  }
  return s.call(method, req.path, { token, body: req.body, raw: req.raw });
}

describe('the role matrix', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer({ rateLimit: false });
    await s.publish(LAB, 'the first version');
    const inv = await s.call('PUT', `/api/v1/hosts/${AGENT_HOST}/vms`, { token: s.tokens.agent, body: { vms: [{ name: 'web', running: true, label: 'blue' }] } });
    assert.equal(inv.status, 200, inv.text);
  });
  after(() => s.close());

  test('the table here covers every route the server has, and nothing else', async () => {
    const doc = (await s.call('GET', '/openapi.json', { token: s.tokens.viewer })).json;
    const served = Object.entries(doc.paths as Record<string, Record<string, unknown>>)
      .flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p.replace(/\{(\w+)\}/g, ':$1')}`))
      .sort();
    assert.deepEqual(CASES.map((c) => c.route).sort(), served);
    assert.deepEqual(Object.keys(ACCESS).sort(), served);
  });

  for (const c of CASES) {
    test(c.route, async () => {
      for (const who of WHO) {
        const r = await send(s, c, who);
        const label = `${c.route} as ${who}: ${r.status} ${r.text.slice(0, 300)}`;
        if (c.allowed === 'public') {
          assert.ok(r.status >= 200 && r.status < 300, label);
        } else if (who === 'none') {
          assert.equal(r.status, 401, label);
          assert.equal(r.json.code, 'unauthenticated', label);
        } else if (c.allowed.includes(who)) {
          assert.ok(r.status >= 200 && r.status < 300, label);
        } else {
          assert.equal(r.status, 403, label);
          assert.equal(r.json.code, 'forbidden', label);
        }
      }
    });
  }

  test('an agent token touches its own host only', async () => {
    const other = 'h2';
    const agent = s.tokens.agent;
    const refused: [string, string, unknown?][] = [
      ['GET', `/api/v1/hosts/${other}`],
      ['GET', `/api/v1/hosts/${other}/vms`],
      ['PUT', `/api/v1/hosts/${other}`, { label: 'host' }],
      ['PUT', `/api/v1/hosts/${other}/vms`, { vms: [] }],
      ['POST', '/api/v1/admission', { host: other, vm: 'x', label: 'blue' }],
      ['GET', `/api/v1/hosts/${other}/plan`],
      ['POST', '/api/v1/vms/other-vm/evidence', { entries: [] }],
      ['POST', `/api/v1/hosts/${other}/evidence`, { vms: [{ vm: 'other-vm', entries: [] }] }],
      ['POST', `/api/v1/hosts/${other}/nonces`, { vms: ['other-vm'] }],
      ['POST', '/api/v1/vms/other-vm/nonce'],
      ['POST', '/api/v1/vms/no-such-vm/evidence', { entries: [] }],
    ];
    // a VM on another host (registered by the admin)
    assert.equal((await s.call('PUT', `/api/v1/hosts/${other}/vms`, { token: s.tokens.admin, body: { vms: [{ name: 'other-vm', running: true, label: 'blue' }] } })).status, 200);
    for (const [method, path, body] of refused) {
      const r = await s.call(method, path, { token: agent, body });
      assert.equal(r.status, 403, `${method} ${path}: ${r.text}`);
      assert.equal(r.json.code, 'forbidden');
      assert.match(r.json.message, /bound to host "h1"/);
    }
    assert.equal((await s.call('GET', '/api/v1/vms/other-vm/trust', { token: s.tokens.viewer })).json.evidence, null, 'no evidence was taken for other-vm');
    // and its own host works
    assert.equal((await s.call('PUT', `/api/v1/hosts/${AGENT_HOST}`, { token: agent, body: { label: 'host' } })).status, 200);
  });

  test('an unknown, malformed or revoked token is 401', async () => {
    for (const authorization of ['Bearer hg_nope', 'Basic abc', 'Bearer', 'bearer  ']) {
      const r = await s.call('GET', '/api/v1/hosts', { headers: { authorization } });
      assert.equal(r.status, 401, authorization);
      assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="hueguard"');
    }
    const t = await s.call('POST', '/api/v1/tokens', { token: s.tokens.admin, body: { name: 'short-lived', role: 'viewer' } });
    assert.equal((await s.call('GET', '/api/v1/hosts', { token: t.json.secret })).status, 200);
    assert.equal((await s.call('DELETE', `/api/v1/tokens/${t.json.id}`, { token: s.tokens.admin })).status, 204);
    assert.equal((await s.call('GET', '/api/v1/hosts', { token: t.json.secret })).status, 401);
    const list = (await s.call('GET', '/api/v1/tokens', { token: s.tokens.admin })).json;
    assert.ok(list.every((x: Record<string, unknown>) => x.hash === undefined && x.secret === undefined), 'no hash or secret is listed');
  });

  test('an unknown route is 404 for a caller, 401 for no one', async () => {
    assert.equal((await s.call('GET', '/api/v1/nope', { token: s.tokens.viewer })).json.code, 'route_not_found');
    assert.equal((await s.call('GET', '/api/v1/nope')).status, 401);
  });
});

describe('cookie sessions', () => {
  let s: TestServer;
  let clock = Date.parse('2030-01-01T00:00:00Z');
  before(async () => {
    s = await startServer({ now: () => new Date(clock), sessionTtlMs: 60_000 });
    await s.publish(LAB);
    await s.call('PUT', `/api/v1/hosts/${AGENT_HOST}/vms`, { token: s.tokens.agent, body: { vms: [{ name: 'web', running: false, label: 'blue' }] } });
    assert.equal((await s.call('PUT', '/api/v1/users/alice', { token: s.tokens.admin, body: { role: 'operator', password: 'correct horse battery' } })).status, 200);
  });
  after(() => s.close());

  async function signIn(body: unknown): Promise<{ cookie: string; csrf: string; answer: Answer }> {
    const r = await s.call('POST', '/api/v1/session', { body });
    const set = r.headers.get('set-cookie') ?? '';
    return { cookie: set.split(';')[0], csrf: r.json?.csrfToken, answer: r };
  }

  test('a user signs in: HttpOnly, SameSite=Strict cookie, no Secure flag without TLS', async () => {
    const { answer } = await signIn({ user: 'alice', password: 'correct horse battery' });
    assert.equal(answer.status, 201, answer.text);
    assert.equal(answer.json.actor, 'user:alice');
    assert.equal(answer.json.role, 'operator');
    const set = answer.headers.get('set-cookie')!;
    assert.match(set, /^hueguard_session=[\w-]{20,}; /);
    assert.match(set, /HttpOnly/);
    assert.match(set, /SameSite=Strict/);
    assert.doesNotMatch(set, /Secure/);
  });

  test('a cookie request that changes something without X-CSRF-Token is refused, with it accepted', async () => {
    const { cookie, csrf } = await signIn({ user: 'alice', password: 'correct horse battery' });
    const body = { label: 'vio', reason: 'csrf test' };
    const bare = await s.call('PUT', '/api/v1/vms/web/label', { headers: { cookie }, body });
    assert.equal(bare.status, 403);
    assert.equal(bare.json.code, 'csrf_token_required');
    const wrong = await s.call('PUT', '/api/v1/vms/web/label', { headers: { cookie, 'x-csrf-token': 'x'.repeat(32) }, body });
    assert.equal(wrong.status, 403);
    assert.equal((await s.call('GET', '/api/v1/vms/web', { headers: { cookie } })).json.label, 'blue', 'nothing changed');
    const ok = await s.call('PUT', '/api/v1/vms/web/label', { headers: { cookie, 'x-csrf-token': csrf }, body });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.label, 'vio');
    // reads need no CSRF token; the session says who is signed in and gives the token back
    const me = await s.call('GET', '/api/v1/session', { headers: { cookie } });
    assert.deepEqual([me.json.actor, me.json.via, me.json.csrfToken], ['user:alice', 'cookie', csrf]);
    // an operator's session cannot do admin things, CSRF token or not
    assert.equal((await s.call('POST', '/api/v1/policy/revert', { headers: { cookie, 'x-csrf-token': csrf }, body: { to: 1, note: 'x' } })).status, 403);
  });

  test('a bearer request needs no CSRF token', async () => {
    const r = await s.call('PUT', '/api/v1/vms/web/label', { token: s.tokens.operator, body: { label: 'blue' } });
    assert.equal(r.status, 200, r.text);
  });

  test('sessions expire; signing out ends one', async () => {
    const { cookie } = await signIn({ token: s.tokens.viewer });
    assert.equal((await s.call('GET', '/api/v1/hosts', { headers: { cookie } })).status, 200);
    clock += 61_000;
    const late = await s.call('GET', '/api/v1/hosts', { headers: { cookie } });
    assert.equal(late.status, 401);
    assert.match(late.json.message, /expired/);
    const again = await signIn({ token: s.tokens.viewer });
    assert.equal((await s.call('DELETE', '/api/v1/session', { headers: { cookie: again.cookie } })).status, 403, 'sign-out needs the CSRF token too');
    assert.equal((await s.call('DELETE', '/api/v1/session', { headers: { cookie: again.cookie, 'x-csrf-token': again.csrf } })).status, 204);
    assert.equal((await s.call('GET', '/api/v1/hosts', { headers: { cookie: again.cookie } })).status, 401);
  });

  test('bad passwords, unknown users and agent tokens do not open sessions', async () => {
    for (const body of [{ user: 'alice', password: 'wrong password!' }, { user: 'mallory', password: 'whatever else' }, { token: 'hg_nope' }, { token: s.tokens.agent }]) {
      const { answer } = await signIn(body);
      assert.equal(answer.status, 401, JSON.stringify(body));
      assert.equal(answer.json.code, 'login_failed');
      assert.equal(answer.headers.get('set-cookie'), null);
    }
    const bad = await s.call('POST', '/api/v1/session', { body: { user: 'alice' } });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.details.field, 'body.password');
  });
});

describe('rate limits', () => {
  test('a credential over its limit gets 429 with Retry-After; others are not affected', async () => {
    const s = await startServer({ rateLimit: { burst: 5, perSecond: 0.01 }, loginRateLimit: { burst: 3, perSecond: 0.01 } });
    try {
      const codes: number[] = [];
      for (let i = 0; i < 7; i++) codes.push((await s.call('GET', '/api/v1/hosts', { token: s.tokens.viewer })).status);
      assert.deepEqual(codes, [200, 200, 200, 200, 200, 429, 429]);
      const r = await s.call('GET', '/api/v1/hosts', { token: s.tokens.viewer });
      assert.equal(r.json.code, 'rate_limited');
      assert.ok(Number(r.headers.get('retry-after')) >= 1);
      assert.equal((await s.call('GET', '/api/v1/hosts', { token: s.tokens.operator })).status, 200);
      const logins: number[] = [];
      for (let i = 0; i < 4; i++) logins.push((await s.call('POST', '/api/v1/session', { body: { user: 'x', password: 'y' } })).status);
      assert.deepEqual(logins, [401, 401, 401, 429]);
      assert.equal((await s.call('GET', '/healthz')).status, 200, 'health checks are not limited');
    } finally {
      await s.close();
    }
  });
});
