/**
 * Appraisal of IMA entries against runtime policies: Keylime's small logs against its policies, the ima-sig test
 * vectors (RSA and EC signatures) and the `.ima` keyring entry, the rules for changed digests, new paths, excludes,
 * violations and ima-buf, and incremental appraisal with a saved state. Every expectation is worked out from the
 * files' content and Keylime's documented rules (see the comments), not from this module's output.
 */
import assert from 'node:assert/strict';
import { createHash, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { isIntegrityError } from './errors.ts';
import { computeTemplateHash, type ImaEntry, type TemplateName } from './ima-entry.ts';
import { parseImaLog } from './ima-log.ts';
import { appraise, Appraiser } from './appraise.ts';
import { keyFromBuffer, type ImaKey } from './ima-keys.ts';
import { checkImaSignature, ecdsaVerifyDigest } from './ima-signature.ts';
import { enrollFingerprint, readRuntimePolicy, type RuntimePolicy } from './runtime-policy.ts';

const IMA = new URL('../../../shared/data/ima/', import.meta.url);
const text = (rel: string) => readFileSync(new URL(rel, IMA), 'utf8');
const log = (rel: string) => parseImaLog(readFileSync(new URL(rel, IMA)));
const policy = (rel: string) => readRuntimePolicy(text(rel), rel);
const json = (p: Record<string, unknown>) => readRuntimePolicy(JSON.stringify({ digests: {}, ...p }));
const sha256 = (b: string | Uint8Array) => createHash('sha256').update(b).digest();
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** An entry as the kernel would log it (its template hash computed from its fields). */
function mk(template: TemplateName, name: string, digest: Uint8Array, more: { alg?: string; sig?: Uint8Array; buf?: Uint8Array } = {}): ImaEntry {
  const e: ImaEntry = { pcr: 10, template, templateHash: new Uint8Array(20), digestAlg: more.alg ?? 'sha256', digest, name };
  if (template === 'ima-sig') e.sig = more.sig ?? new Uint8Array(0);
  if (template === 'ima-buf') e.buf = more.buf ?? new Uint8Array(0);
  e.templateHash = computeTemplateHash(e);
  return e;
}
const withSig = (e: ImaEntry, sig: Uint8Array) => mk(e.template, e.name, e.digest, { alg: e.digestAlg, sig });

/** The log's /data digest (ima-log-sha256, line 2) and boot_aggregate (line 1). */
const DATA_SHA256 = '96d7fae8adb7286a419a88f78c13d35fb782d63df654b7db56f154765698b754';
const BOOT_SHA256 = 'f4845392eca429a4c941a6a07fc32faf843a88c5c3dfa3b9329ab8f4171d9ce3';

describe('Keylime’s logs against Keylime’s policies', () => {
  it('ima-log-sha256 × runtime-policy.json: /data is in no list; boot_aggregate has no reference', () => {
    const v = appraise(policy('keylime/runtime-policy.json'), log('keylime/ima-log-sha256'));
    assert.equal(v.ok, false);
    assert.deepEqual(v.counts, { ok: 1, excluded: 0, unknown: 1, mismatch: 0, 'bad-signature': 0 });
    assert.deepEqual(v.failures, [{ entry: 2, path: '/data', status: 'unknown', expected: [], found: DATA_SHA256, alg: 'sha256' }]);
  });

  it('ima-log-sha256 × policy-sha256: it lists /base_policy_data only', () => {
    const v = appraise(policy('keylime/policy-sha256'), log('keylime/ima-log-sha256'));
    assert.deepEqual(v.failures.map((f) => [f.entry, f.path, f.status]), [[2, '/data', 'unknown']]);
  });

  it('ima-log-sha256 × allowlist-sha256: the digest is /data’s, but the allowlist names `data`, not `/data`', () => {
    const v = appraise(policy('keylime/allowlist-sha256'), log('keylime/ima-log-sha256'));
    assert.deepEqual(v.failures.map((f) => [f.entry, f.path, f.status, f.expected]), [[2, '/data', 'unknown', []]]);
    const fixed = readRuntimePolicy(text('keylime/allowlist-sha256').replace('  data', '  /data'));
    assert.deepEqual(appraise(fixed, log('keylime/ima-log-sha256')), { ok: true, counts: { ok: 2, excluded: 0, unknown: 0, mismatch: 0, 'bad-signature': 0 }, failures: [] });
  });

  it('a changed digest is a mismatch naming what was expected and found', () => {
    // the empty file's digest, as runtime-policy.json lists for its files, in place of /data's
    const p = readRuntimePolicy(`${hex(sha256(''))}  /data\n`);
    const v = appraise(p, log('keylime/ima-log-sha256'));
    assert.deepEqual(v.failures, [{ entry: 2, path: '/data', status: 'mismatch', expected: [hex(sha256(''))], found: DATA_SHA256, alg: 'sha256' }]);
  });

  it('boot_aggregate is checked when the policy or the caller gives values', () => {
    const entries = log('keylime/ima-log-sha256');
    const listed = json({ digests: { boot_aggregate: [BOOT_SHA256], '/data': [DATA_SHA256] } });
    assert.equal(appraise(listed, entries).ok, true);
    const other = json({ digests: { boot_aggregate: ['00'.repeat(32)], '/data': [DATA_SHA256] } });
    assert.deepEqual(appraise(other, entries).failures, [{ entry: 1, path: 'boot_aggregate', status: 'mismatch', expected: ['00'.repeat(32)], found: BOOT_SHA256, alg: 'sha256' }]);
    assert.equal(appraise(other, entries, { bootAggregates: [BOOT_SHA256] }).ok, true);
    const none = json({ digests: { '/data': [DATA_SHA256] } });
    assert.equal(appraise(none, entries, { bootAggregates: ['11'.repeat(32)] }).failures[0].status, 'mismatch');
  });

  it('ima-log-sha1 × runtime-policy-test.json: its boot_aggregate line is a violation (zero template hash)', () => {
    const p = policy('keylime/runtime-policy-test.json');
    const entries = log('keylime/ima-log-sha1');
    const v = appraise(p, entries);
    assert.deepEqual(v.failures, [
      { entry: 1, path: 'boot_aggregate', status: 'mismatch', expected: ['4309217e9709def327c3409407f4d52907aeba46ef1b4f46529fd095f2ef9fb2'], found: '0'.repeat(40), alg: 'sha1' },
      { entry: 2, path: '/data', status: 'unknown', expected: [], found: '009b0d8ee8fb8d890fa70f9c8e02b3f1eded1509', alg: 'sha1' },
    ]);
    // Keylime's default (ignore_tomtou_errors = False) passes violations unchecked
    assert.deepEqual(appraise(p, entries, { violations: 'accept' }).counts, { ok: 0, excluded: 1, unknown: 1, mismatch: 0, 'bad-signature': 0 });
    const excluded = readRuntimePolicy(JSON.stringify({ ...JSON.parse(text('keylime/runtime-policy-test.json')), excludes: ['boot_'] }));
    assert.equal(appraise(excluded, entries).counts.excluded, 1);
  });
});

/** keylime test/data/ima_keys/secp256k1.pem (a private key there): its public half, which signs /usr/bin/zmore. */
const SECP256K1_PUB = `-----BEGIN PUBLIC KEY-----
MFYwEAYHKoZIzj0CAQYFK4EEAAoDQgAEnNH3Y/xOTwRRd8D6hpodRLnVx71qDTLv
JHouno7nU7JSzcXWN1PxK+HQEh1V7sMdwBER4KFKE635JTv6C+BRBg==
-----END PUBLIC KEY-----`;

describe('ima-sig signatures (test_ima_verification_vectors.txt)', () => {
  const vectors = () => log('keylime/test_ima_verification_vectors.txt');
  const rsa = createPublicKey(text('keylime/rsa2048pub.pem'));
  const ec = createPublicKey(SECP256K1_PUB);
  const b64 = (k: KeyObject) => k.export({ format: 'der', type: 'spki' }).toString('base64');
  const byName = (v: ReturnType<typeof appraise>) => Object.fromEntries(v.failures.map((f) => [f.path.split('/').pop(), f.status]));

  it('the file: three unsigned entries, dd signed with keyid f3452d23 (RSA), zmore with 531f4025 (EC), the .ima key', () => {
    const e = vectors();
    assert.deepEqual(e.map((x) => [x.template, (x.sig?.length ?? 0) > 0 ? hex(x.sig!.subarray(3, 7)) : '']), [
      ['ima-sig', ''], ['ima-sig', ''], ['ima-sig', ''], ['ima-sig', 'f3452d23'], ['ima-sig', '531f4025'], ['ima-buf', ''],
    ]);
  });

  it('dd and zmore verify with the RSA and EC keys, given as keys or as the policy’s verification-keys', () => {
    const v = appraise(json({}), vectors(), { keys: [rsa, ec] });
    // no digest is listed: the two unsigned modules are unknown, and so is the key (no `keyrings`)
    assert.deepEqual(v.counts, { ok: 3, excluded: 0, unknown: 3, mismatch: 0, 'bad-signature': 0 });
    assert.deepEqual(byName(v), { 'usb-common.ko': 'unknown', 'drm_panel_orientation_quirks.ko': 'unknown', '.ima': 'unknown' });
    const p = json({ 'verification-keys': JSON.stringify({ pubkeys: [b64(rsa), b64(ec)], keyids: [] }) });
    assert.deepEqual(appraise(p, vectors()).counts, v.counts);
  });

  it('one key only: the other file is unknown, not a bad signature (nobody knows its key)', () => {
    assert.deepEqual(byName(appraise(json({}), vectors().slice(3, 5), { keys: [rsa] })), { zmore: 'unknown' });
    assert.deepEqual(byName(appraise(json({}), vectors().slice(3, 5), { keys: [ec] })), { dd: 'unknown' });
  });

  it('a flipped signature byte: bad-signature, unless the digest is listed (Keylime then checks the digest)', () => {
    const dd = vectors()[3];
    const sig = Buffer.from(dd.sig!);
    sig[sig.length - 1] ^= 1;
    const bad = withSig(dd, sig);
    assert.deepEqual(appraise(json({}), [bad], { keys: [rsa] }).failures, [
      { entry: 1, path: '/usr/bin/dd', status: 'bad-signature', expected: [], found: hex(dd.digest), alg: 'sha256' },
    ]);
    assert.equal(appraise(json({ digests: { '/usr/bin/dd': [hex(dd.digest)] } }), [bad], { keys: [rsa] }).ok, true);
    const other = json({ digests: { '/usr/bin/dd': ['ab'.repeat(32)] } });
    assert.deepEqual(appraise(other, [bad], { keys: [rsa] }).failures.map((f) => [f.status, f.expected]), [['bad-signature', ['ab'.repeat(32)]]]);
    // the zmore signature with its last byte changed
    const zm = vectors()[4];
    const zsig = Buffer.from(zm.sig!);
    zsig[zsig.length - 1] ^= 0x80;
    assert.equal(appraise(json({}), [withSig(zm, zsig)], { keys: [ec] }).failures[0].status, 'bad-signature');
  });

  it('a malformed header (Keylime’s BAD_SIGNATURES: sig_size 0x4800 for 0x0048) is a bad signature', () => {
    const zm = vectors()[4];
    const sig = Buffer.from(zm.sig!);
    sig.writeUInt16BE(0x4800, 7);
    assert.equal(appraise(json({}), [withSig(zm, sig)], { keys: [ec] }).failures[0].status, 'bad-signature');
  });

  it('checkImaSignature: ok, bad, malformed, no-key', () => {
    const keys = new Map<number, ImaKey[]>([[0xf3452d23, [{ key: rsa, keyid: 0xf3452d23 }]]]);
    const dd = vectors()[3];
    assert.equal(checkImaSignature(dd.sig!, dd.digest, 'sha256', keys), 'ok');
    assert.equal(checkImaSignature(dd.sig!, sha256('other'), 'sha256', keys), 'bad');
    assert.equal(checkImaSignature(dd.sig!, dd.digest.subarray(0, 20), 'sha1', keys), 'malformed'); // header says sha256
    assert.equal(checkImaSignature(dd.sig!.subarray(0, 8), dd.digest, 'sha256', keys), 'malformed');
    assert.equal(checkImaSignature(vectors()[4].sig!, vectors()[4].digest, 'sha256', keys), 'no-key');
  });

  it('the .ima entry: a key accepted through `keyrings` is learnt (keyid = last 4 bytes of its SKI)', () => {
    const entries = vectors();
    const ima = entries[5];
    // the certificate's subjectKeyIdentifier extension, as it appears in the buffer's hex
    assert.ok(hex(ima.buf!).includes('0603551d0e04160414b6fb3c083d19695be441c5f59afb95742cb6058c'));
    assert.equal(keyFromBuffer(ima.buf!)?.keyid, 0x2cb6058c);
    const listed = json({ keyrings: { '.ima': ['a7d52aaa18c23d2d9bb2abb4308c0eeee67387a42259f4a6b1a42257065f3d5a'] } });
    const a = new Appraiser(listed);
    assert.deepEqual(a.appraise([ima]).counts.ok, 1);
    assert.deepEqual(a.saveState().learnt.map((k) => [k.keyring, k.keyid]), [['.ima', 0x2cb6058c]]);
    // not listed: unknown, nothing learnt; another digest listed: mismatch; an ignored keyring: excluded
    const none = new Appraiser(json({}));
    assert.equal(none.appraise([ima]).failures[0].status, 'unknown');
    assert.deepEqual(none.saveState().learnt, []);
    assert.equal(appraise(json({ keyrings: { '.ima': ['cd'.repeat(32)] } }), [ima]).failures[0].status, 'mismatch');
    const ignored = new Appraiser(json({ ima: { ignored_keyrings: ['.ima'], log_hash_alg: 'sha1', dm_policy: null } }));
    assert.deepEqual(ignored.appraise([ima]).counts.excluded, 1);
    assert.deepEqual(ignored.saveState().learnt, []);
  });
});

describe('keys learnt from keyrings sign later files', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const spki = publicKey.export({ format: 'der', type: 'spki' });
  const jwk = publicKey.export({ format: 'jwk' });
  // keyidv2 of a bare key: SHA-1 over the uncompressed point, last 4 bytes
  const point = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
  const keyid = createHash('sha1').update(point).digest().readUInt32BE(16);
  const content = Buffer.from('#!/bin/sh\necho signed\n');
  const der = sign('sha256', content, privateKey); // ECDSA over sha256(content): the file digest
  const hdr = Buffer.alloc(9);
  hdr.writeUInt8(3, 0);
  hdr.writeUInt8(2, 1);
  hdr.writeUInt8(4, 2); // sha256
  hdr.writeUInt32BE(keyid, 3);
  hdr.writeUInt16BE(der.length, 7);
  const keyEntry = mk('ima-buf', '.ima', sha256(spki), { buf: spki });
  const fileEntry = mk('ima-sig', '/usr/bin/signed', sha256(content), { sig: Buffer.concat([hdr, der]) });
  const p = json({ keyrings: { '.ima': [hex(sha256(spki))] } });

  it('the key, then the file: ok; the file first: unknown', () => {
    assert.equal(appraise(p, [keyEntry, fileEntry]).ok, true);
    assert.deepEqual(appraise(p, [fileEntry, keyEntry]).failures.map((f) => [f.entry, f.status]), [[1, 'unknown']]);
  });

  it('across calls and through a saved state', () => {
    const a = new Appraiser(p);
    assert.equal(a.appraise([keyEntry]).ok, true);
    assert.equal(a.appraise([fileEntry]).ok, true);
    const b = new Appraiser(p);
    b.appraise([keyEntry]);
    const restored = Appraiser.restore(p, JSON.parse(JSON.stringify(b.saveState())));
    assert.deepEqual(restored.appraise([fileEntry]), { ok: true, counts: { ok: 1, excluded: 0, unknown: 0, mismatch: 0, 'bad-signature': 0 }, failures: [] });
    assert.equal(restored.entries, 2);
    restored.reset();
    assert.equal(restored.appraise([fileEntry]).failures[0].status, 'unknown');
  });
});

describe('signature arithmetic against Node’s own signatures', () => {
  for (const namedCurve of ['prime256v1', 'secp384r1', 'secp521r1', 'secp256k1']) {
    for (const alg of ['sha1', 'sha256', 'sha512']) {
      it(`ECDSA ${namedCurve} over a ${alg} digest`, () => {
        const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve });
        const m = Buffer.from(`message ${namedCurve} ${alg}`);
        const sig = sign(alg, m, privateKey);
        const digest = createHash(alg).update(m).digest();
        assert.equal(ecdsaVerifyDigest(publicKey, sig, digest), true);
        const other = Buffer.from(digest);
        other[0] ^= 1;
        assert.equal(ecdsaVerifyDigest(publicKey, sig, other), false);
      });
    }
  }

  it('RSA PKCS#1 v1.5 over sha1, sha256, sha384, sha512 digests, through the header', () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const keys = new Map<number, ImaKey[]>([[1, [{ key: publicKey, keyid: 1 }]]]);
    for (const [alg, id] of [['sha1', 2], ['sha256', 4], ['sha384', 5], ['sha512', 6]] as const) {
      const m = Buffer.from(alg);
      const der = sign(alg, m, privateKey);
      const sig = Buffer.concat([Buffer.from([3, 2, id, 0, 0, 0, 1, der.length >> 8, der.length & 0xff]), der]);
      assert.equal(checkImaSignature(sig, createHash(alg).update(m).digest(), alg, keys), 'ok', alg);
      assert.equal(checkImaSignature(sig, createHash(alg).update('x').digest(), alg, keys), 'bad', alg);
    }
  });
});

describe('appraisal rules', () => {
  const d = (s: string) => sha256(s);
  const p = json({ digests: { '/usr/bin/a': [hex(d('a')), hex(d('a2'))], '/tmpfoo': [hex(d('t'))] }, excludes: ['/tmp'] });

  it('ok for any listed digest, mismatch for another, unknown for a new path', () => {
    const v = appraise(p, [mk('ima-ng', '/usr/bin/a', d('a2')), mk('ima-ng', '/usr/bin/a', d('evil')), mk('ima-ng', '/usr/bin/new', d('n'))]);
    assert.deepEqual(v.failures, [
      { entry: 2, path: '/usr/bin/a', status: 'mismatch', expected: [hex(d('a')), hex(d('a2'))], found: hex(d('evil')), alg: 'sha256' },
      { entry: 3, path: '/usr/bin/new', status: 'unknown', expected: [], found: hex(d('n')), alg: 'sha256' },
    ]);
  });

  it('excludes anchor at the start only: `/tmp` excludes /tmpfoo (listed or not), not /x/tmp', () => {
    const v = appraise(p, [mk('ima-ng', '/tmpfoo', d('other')), mk('ima-ng', '/tmp/x', d('x')), mk('ima-ng', '/x/tmp', d('x'))]);
    assert.deepEqual(v.counts, { ok: 0, excluded: 2, unknown: 1, mismatch: 0, 'bad-signature': 0 });
    assert.deepEqual(v.failures.map((f) => f.path), ['/x/tmp']);
  });

  it('the legacy `ima` template is checked by its sha1 digest', () => {
    const sha1 = createHash('sha1').update('old').digest();
    const q = json({ digests: { '/old': [hex(sha1)] } });
    assert.equal(appraise(q, [mk('ima', '/old', sha1, { alg: 'sha1' })]).ok, true);
  });

  it('violations: mismatch unless excluded or accepted', () => {
    const zero = { ...mk('ima-ng', '/usr/bin/a', new Uint8Array(20), { alg: 'sha1' }), templateHash: new Uint8Array(20) };
    assert.deepEqual(appraise(p, [zero]).failures, [
      { entry: 1, path: '/usr/bin/a', status: 'mismatch', expected: [hex(d('a')), hex(d('a2'))], found: '0'.repeat(40), alg: 'sha1' },
    ]);
    assert.equal(appraise(p, [zero], { violations: 'accept' }).counts.excluded, 1);
    assert.equal(appraise(p, [{ ...zero, name: '/tmp/log' }]).counts.excluded, 1);
  });

  it('ima-buf: the digest listed under its name, and the digest of its buffer', () => {
    const buf = Buffer.from('dm_version=4.46.0;name=root;');
    const q = json({ 'ima-buf': { dm_table_load: [hex(sha256(buf))] } });
    assert.equal(appraise(q, [mk('ima-buf', 'dm_table_load', sha256(buf), { buf })]).ok, true);
    assert.equal(appraise(q, [mk('ima-buf', 'dm_device_resume', sha256(buf), { buf })]).failures[0].status, 'unknown');
    const lying = mk('ima-buf', 'dm_table_load', sha256(buf), { buf: Buffer.from('dm_version=4.46.0;name=evil;') });
    assert.equal(appraise(q, [lying]).failures[0].status, 'mismatch');
  });

  it('test2/ascii_runtime_measurements-2 against the policy Keylime generated from it (output6)', () => {
    // output6 lists every dm/selinux buffer and the .ima key, and ignores .builtin_trusted_keys
    const v = appraise(policy('keylime-tests/keylime_create_policy-static-data/test2/output6.json'), log('keylime-tests/keylime_create_policy-static-data/test2/ascii_runtime_measurements-2'));
    assert.deepEqual(v.counts, { ok: 8, excluded: 3, unknown: 0, mismatch: 0, 'bad-signature': 0 });
  });
});

describe('incremental appraisal', () => {
  const entries = log('embrave/ascii_runtime_measurements');
  const full = enrollFingerprint(entries, { timestamp: 't' });
  // remove three paths and change one digest: their entries must fail, wherever they are
  const names = [...full.digests.keys()];
  const removed = [names[5], names[400], names[800]];
  const changed = names[600];
  const broken: RuntimePolicy = { ...full, digests: new Map(full.digests) };
  for (const n of removed) broken.digests.delete(n);
  broken.digests.set(changed, ['ee'.repeat(32)]);
  const expected = entries.flatMap((e, i) =>
    removed.includes(e.name) ? [[i + 1, e.name, 'unknown']] : e.name === changed ? [[i + 1, e.name, 'mismatch']] : [],
  );

  it('the whole log at once fails exactly on the changed entries', () => {
    assert.equal(entries.length, 922);
    const v = appraise(broken, entries);
    assert.deepEqual(v.failures.map((f) => [f.entry, f.path, f.status]), expected);
    assert.equal(v.counts.ok, 922 - expected.length);
  });

  for (const cut of [1, 461, 921]) {
    it(`two calls split at ${cut}, through a saved state, give the same failures`, () => {
      const at = new Appraiser(broken);
      const v1 = at.appraise(entries.slice(0, cut));
      const next = Appraiser.restore(broken, JSON.parse(JSON.stringify(at.saveState())));
      const v2 = next.appraise(entries.slice(cut));
      assert.deepEqual([...v1.failures, ...v2.failures], appraise(broken, entries).failures);
      assert.deepEqual(next.totals, appraise(broken, entries).counts);
      assert.equal(next.entries, 922);
    });
  }

  it('a state that is not one is refused', () => {
    for (const bad of [null, {}, { version: 2 }, { version: 1, next: -1, counts: {}, learnt: [] }, { version: 1, next: 0, counts: { ok: 0 }, learnt: [] }]) {
      assert.throws(() => Appraiser.restore(full, bad), (e: unknown) => isIntegrityError(e) && e.code === 'appraise_bad_state');
    }
    const counts = { ok: 0, excluded: 0, unknown: 0, mismatch: 0, 'bad-signature': 0 };
    assert.throws(() => Appraiser.restore(full, { version: 1, next: 0, counts, learnt: [{ keyring: '.ima', spki: 'AAAA', keyid: 1 }] }), (e: unknown) => isIntegrityError(e));
  });

  it('is fast: a few hundred thousand entries in well under a second', () => {
    const many: ImaEntry[] = [];
    for (let i = 0; i < 300_000; i++) many.push(entries[i % entries.length]);
    const a = new Appraiser(full);
    const t = performance.now();
    const v = a.appraise(many);
    const ms = performance.now() - t;
    assert.equal(v.counts.ok, many.length);
    assert.ok(ms < 1500, `${ms.toFixed(0)} ms for ${many.length} entries`);
  });
});
