/**
 * Quoted evidence through the API, with a real software TPM (swtpm + tpm2-tools, driven through child_process by
 * ../trust/tpm.test-support.ts): the host's agent registers the VM's attestation key (trust on first use), asks
 * the API for a nonce, extends PCR 10 with the entries as IMA does, quotes sha256:10 with the nonce and sends
 * entries + quote: the VM is trusted. A quote made with another nonce, or signed by another TPM's AK, fails the
 * quote: the engine makes the VM untrusted and the API says which check failed. A second, different AK from the
 * agent is refused (409 `ak_conflict`); an operator may replace it (audited). Skipped, saying why, without swtpm.
 */
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { formatAsciiLine, type ImaEntry } from '../integrity/ima-entry.ts';
import { pathEntry } from '../integrity/measure-entry.ts';
import { parsePublic } from '../integrity/tpm-public.ts';
import { startTpm, tpmMissing, type TestTpm } from '../trust/tpm.test-support.ts';
import { AGENT_HOST, LAB, startServer, type TestServer } from './server.test-support.ts';

const sha = (s: string) => createHash('sha256').update(s).digest();
const file = (path: string, content: string) => pathEntry('file', path, sha(content));
const lines = (es: ImaEntry[]) => es.map(formatAsciiLine);
const FIRST = [file('/usr/bin/a', 'a v1'), file('/usr/bin/b', 'b v1'), file('/etc/web.conf', 'conf v1')];

describe('quoted evidence with a registered attestation key (real swtpm)', () => {
  let s: TestServer;
  let tpm: TestTpm | null = null;
  /** another TPM: its AK signs the "wrong key" quote */
  let other: TestTpm | null = null;
  const clock = Date.now();
  /** the nonce of the quote refused before the AK was registered: still usable */
  let unused = '';

  const nonce = async (): Promise<string> => {
    const r = await s.call('POST', '/api/v1/vms/web/nonce', { token: s.tokens.agent });
    assert.equal(r.status, 201, r.text);
    return r.json.nonce;
  };
  const evidence = (body: unknown) => s.call('POST', '/api/v1/vms/web/evidence', { token: s.tokens.agent, body });
  const registerAk = (ak: Buffer, token = s.tokens.agent, reason?: string) =>
    s.call('PUT', '/api/v1/vms/web/ak', { token, body: { ak: ak.toString('base64'), ...(reason === undefined ? {} : { reason }) } });
  const readmit = async () => {
    const r = await s.call('POST', '/api/v1/vms/web/readmit', { token: s.tokens.operator, body: { reason: 'test: after a failed quote', mode: 'baseline' } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.state, 'unverified');
  };

  before(async () => {
    tpm = await startTpm();
    if (tpm === null) {
      console.log(`# quoted evidence skipped: ${tpmMissing}`);
      return;
    }
    other = await startTpm();
    s = await startServer({ now: () => new Date(clock), rateLimit: false, tickMs: false, deadlineMs: 30_000, nonceTtlMs: 60_000 });
    await s.publish(LAB);
    const r = await s.call('PUT', `/api/v1/hosts/${AGENT_HOST}/vms`, { token: s.tokens.agent, body: { vms: [{ name: 'web', label: 'blue', running: true, ports: ['tap-web'] }] } });
    assert.equal(r.status, 200, r.text);
  });
  after(async () => {
    await s?.close();
    await tpm?.stop();
    await other?.stop();
  });

  test('before its AK is registered, a quote is refused (409 no_attestation_key) and its nonce stays unused', async (t) => {
    if (tpm === null) return t.skip(tpmMissing);
    unused = await nonce();
    const r = await evidence({ entries: [], quote: tpm.quote(unused) });
    assert.equal(r.status, 409, r.text);
    assert.equal(r.json.code, 'no_attestation_key');
  });

  test('the host\'s agent registers the AK once; the same key again changes nothing; audited', async (t) => {
    if (tpm === null) return t.skip(tpmMissing);
    const r = await registerAk(tpm.ak);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.changed, true);
    assert.equal(r.json.name, Buffer.from(parsePublic(tpm.ak).name).toString('hex'), 'the TPM Name of the AK');
    assert.equal(r.json.by, 'token:agent');
    const again = await registerAk(tpm.ak);
    assert.equal(again.status, 200, again.text);
    assert.equal(again.json.changed, false);
    assert.equal(again.json.registeredAt, r.json.registeredAt);
    const audit = (await s.call('GET', '/api/v1/audit?subject=vm/web', { token: s.tokens.viewer })).json;
    assert.deepEqual(audit.filter((a: { action: string }) => a.action.startsWith('vm.ak.')).map((a: { action: string; actor: string }) => [a.action, a.actor]), [['vm.ak.register', 'token:agent']]);
    // not a key that verifies quotes
    const bad = await s.call('PUT', '/api/v1/vms/web/ak', { token: s.tokens.agent, body: { ak: Buffer.from('not a key').toString('base64') } });
    assert.equal(bad.status, 400, bad.text);
    assert.equal(bad.json.details.field, 'body.ak');
  });

  test('entries + a quote over sha256:10 with the API\'s nonce: verified with the registered AK, the VM is trusted', async (t) => {
    if (tpm === null) return t.skip(tpmMissing);
    tpm.extend(FIRST);
    assert.notEqual(unused, '');
    const r = await evidence({ entries: lines(FIRST), from: 0, quote: tpm.quote(unused, { withPcrs: true }) });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.verdict.quote, { valid: true, failed: null, detail: 'quote valid; PCR 10 covers 3 of 3 entries', covered: 3 });
    assert.deepEqual([r.json.verdict.ok, r.json.verdict.fresh, r.json.verdict.enrolled], [true, true, true]);
    assert.equal(r.json.trust.state, 'trusted');
    // entries without a quote only wait for one: good, not fresh; the trust record's lastEvidence does not move
    const before = (await s.store.trust('web'))?.lastEvidence;
    const more = file('/usr/bin/a', 'a v1');
    tpm.extend([more]);
    const w = await evidence({ entries: lines([more]), from: 3 });
    assert.equal(w.status, 200, w.text);
    assert.deepEqual([w.json.verdict.ok, w.json.verdict.fresh, w.json.verdict.waiting], [true, false, 1]);
    assert.equal((await s.store.trust('web'))?.lastEvidence, before);
    // the next quote covers it
    const n2 = await nonce();
    const q = await evidence({ entries: [], from: 4, quote: tpm.quote(n2) });
    assert.equal(q.status, 200, q.text);
    assert.deepEqual([q.json.verdict.ok, q.json.verdict.fresh, q.json.verdict.appraised, q.json.trust.state], [true, true, 1, 'trusted']);
  });

  test('a quote made with another nonce than the one issued: the quote fails (nonce), the VM is untrusted, the API says why', async (t) => {
    if (tpm === null) return t.skip(tpmMissing);
    const issued = await nonce();
    const quote = { ...tpm.quote(randomBytes(20).toString('hex'), { withPcrs: true }), nonce: issued };
    const r = await evidence({ entries: [], quote });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.verdict.ok, false);
    assert.equal(r.json.verdict.quote.valid, false);
    assert.equal(r.json.verdict.quote.failed, 'nonce');
    assert.match(r.json.verdict.summary, /^quote failed \(nonce\)/);
    assert.equal(r.json.trust.state, 'untrusted');
    const trust = (await s.call('GET', '/api/v1/vms/web/trust', { token: s.tokens.viewer })).json;
    assert.equal(trust.state, 'untrusted');
    assert.match(trust.reason, /quote failed \(nonce\)/);
    // the issued nonce was used: the same quote again is refused
    const again = await evidence({ entries: [], quote });
    assert.equal(again.status, 409, again.text);
    assert.equal(again.json.code, 'nonce_replayed');
  });

  test('a quote signed by another TPM\'s AK: the quote fails (signature), the VM is untrusted', async (t) => {
    if (tpm === null) return t.skip(tpmMissing);
    if (other === null) return t.skip(tpmMissing);
    await readmit();
    other.extend(FIRST);
    const n = await nonce();
    const r = await evidence({ entries: [], quote: other.quote(n, { withPcrs: true }) });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.verdict.ok, false);
    assert.equal(r.json.verdict.quote.failed, 'signature');
    assert.match(r.json.verdict.summary, /^quote failed \(signature\)/);
    assert.equal(r.json.trust.state, 'untrusted');
    // after re-admission, a good quote by the registered AK trusts it again
    await readmit();
    const n2 = await nonce();
    const ok = await evidence({ entries: [], quote: tpm.quote(n2, { withPcrs: true }) });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.verdict.quote.valid, true);
    assert.equal(ok.json.trust.state, 'trusted');
  });

  test('a different AK from the agent is refused (409 ak_conflict, the key kept); an operator may replace it, audited', async (t) => {
    if (tpm === null) return t.skip(tpmMissing);
    const first = await s.store.attestationKey('web');
    const r = await registerAk(tpm.otherAk);
    assert.equal(r.status, 409, r.text);
    assert.equal(r.json.code, 'ak_conflict');
    assert.equal(r.json.details.registered, first?.name);
    assert.equal(r.json.details.offered, Buffer.from(parsePublic(tpm.otherAk).name).toString('hex'));
    assert.deepEqual(await s.store.attestationKey('web'), first);
    // the viewer may not register at all
    assert.equal((await registerAk(tpm.otherAk, s.tokens.viewer)).status, 403);
    const op = await registerAk(tpm.otherAk, s.tokens.operator, 'vTPM re-provisioned');
    assert.equal(op.status, 200, op.text);
    assert.equal(op.json.changed, true);
    assert.equal(op.json.by, 'token:operator');
    const audit = (await s.call('GET', '/api/v1/audit?action=vm.ak.replace', { token: s.tokens.viewer })).json;
    assert.equal(audit.length, 1);
    assert.equal(audit[0].actor, 'token:operator');
    assert.deepEqual(audit[0].details, { from: first?.name, to: op.json.name, reason: 'vTPM re-provisioned', clockReset: true });
  });

  test('a new AK is a new TPM: its clock is not compared with the old one\'s (no false rollback); the change is published', async (t) => {
    if (tpm === null) return t.skip(tpmMissing);
    if (other === null) return t.skip(tpmMissing);
    // the old TPM's last good quote, as if it had run for years and been reset many times: any new TPM's clock is below it
    const stored = await s.store.integrity('web');
    assert.ok(stored !== null);
    await s.store.putIntegrity({ ...stored, state: { ...(stored.state as object), clock: { clock: '999999999999', resetCount: 99, restartCount: 9 } } });
    const events: string[] = [];
    const unsubscribe = s.store.subscribe((e) => events.push(`${e.kind} ${e.subject}`));
    const op = await registerAk(other.ak, s.tokens.operator, 'the VM moved to a new vTPM');
    assert.equal(op.status, 200, op.text);
    await new Promise((resolve) => setTimeout(resolve, 50));
    unsubscribe();
    assert.ok(events.includes('trust vm/web'), `an event for the VM: ${events.join(', ')}`);
    assert.equal(((await s.store.integrity('web'))?.state as { clock: unknown }).clock, null, 'the old clock is forgotten');
    // the new TPM's list starts anew (a new vTPM: its PCR 10 holds only what it measured)
    const n = await nonce();
    const r = await evidence({ entries: lines(FIRST), from: 0, reboot: true, quote: other.quote(n, { withPcrs: true }) });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.verdict.quote.valid, true, JSON.stringify(r.json.verdict.quote));
    assert.equal(r.json.verdict.ok, true);
    // and its clock is the one kept from now on
    const kept = ((await s.store.integrity('web'))?.state as { clock: { resetCount: number } }).clock;
    assert.ok(kept !== null && kept.resetCount < 99);
  });
});
