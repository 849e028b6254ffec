/**
 * Appraisal: each IMA entry against a runtime policy (FORMATS.md "Keylime runtime policy", Keylime's
 * keylime/ima/ima.py `_validate_ima_ng`, `_validate_ima_sig`, `_validate_ima_buf`), with IMA signature verification
 * (`signature_v2_hdr`, keylime/ima/file_signatures.py) and keys learnt from keyring measurements.
 *
 * Statuses, decided in this order for one entry:
 * 1. `excluded` — the policy's excludes match the name at its start (every template: Keylime also applies them to
 *    keyring and ima-buf names). An excluded keyring entry teaches no key (Keylime learns it: a deviation).
 * 2. Violation (all-zero template hash): `mismatch` (found = the zero digest) by default; with
 *    `violations: 'accept'` it is `excluded`, which is Keylime's shipped behaviour (ignore_tomtou_errors = False
 *    skips such entries without a failure).
 * 3. `ima`, `ima-ng`: `boot_aggregate` is checked against `digests.boot_aggregate` plus `bootAggregates` when either
 *    has values, else `ok` (the quote's PCRs 0–9 are the reference then). Other names: not in `digests` → `unknown`;
 *    digest not listed → `mismatch`.
 * 4. `ima-sig`: a signature that verifies with a known key (policy `verification-keys`, `keys` given, keys learnt)
 *    → `ok`. Otherwise the digest check of 3 applies; when that fails too and the signature was *wrong* —
 *    malformed, of another hash algorithm than the file digest, or not verifying with the key its keyid names —
 *    the status is `bad-signature`; a signature by a key nobody knows proves nothing and leaves `unknown` or
 *    `mismatch`. (Keylime reports the digest failure in every case.)
 * 5. `ima-buf`: a buffer holding a key (DER or PEM X.509 certificate, or public key): on an ignored keyring (or `*`)
 *    → `excluded`; else its digest must be in `keyrings[name]` (`unknown` / `mismatch`), and then the key joins the
 *    signature keys. Any other buffer: its digest must be in `ima-buf[name]`. For every ima-buf entry the digest
 *    must also be the hash of the buffer (a real kernel always logs it so), else `mismatch`. A key neither RSA nor
 *    EC on P-256, P-384, P-521 or secp256k1 is checked the same but not learnt (Keylime fails it as `invalid_key`).
 *    `ima.dm_policy` is not evaluated (device-mapper entries are checked as ima-buf digests).
 * Entries of every PCR are appraised alike: choosing PCR 10 is the replay's business. A failure record's `expected`
 * is the list the entry was checked against (`digests`, `keyrings` or `ima-buf` under its name), `found` its digest.
 *
 * Speed: digests are compared as bytes against a Map compiled once, the exclude expression is compiled once, hex
 * strings are made only for failures (≈ 3 M entries/s on the embrave log). RSA signatures go through OpenSSL;
 * ECDSA over a given digest has no Node API and is computed here (2–5 ms a signature), results cached process-wide.
 */
import { constants, createHash, createPublicKey, publicDecrypt, X509Certificate, type KeyObject } from 'node:crypto';
import { IntegrityError, IntegrityErrorCode } from './errors.ts';
import { isViolation, type ImaEntry } from './ima-entry.ts';
import { compileExcludes, isSupportedKey, keyIdV2, loadSpki, type DigestMap, type ExcludeMatcher, type RuntimePolicy } from './runtime-policy.ts';

export type EntryStatus = 'ok' | 'excluded' | 'unknown' | 'mismatch' | 'bad-signature';
export type FailureStatus = 'unknown' | 'mismatch' | 'bad-signature';
export type StatusCounts = Record<EntryStatus, number>;

export interface AppraisalFailure {
  /** 1-based number of the entry in the whole log */
  entry: number;
  path: string;
  status: FailureStatus;
  /** the digests the policy accepts for this name (empty when it has none) */
  expected: string[];
  /** the digest the entry shows */
  found: string;
  /** the entry's digest algorithm */
  alg: string;
}

export interface Verdict {
  ok: boolean;
  counts: StatusCounts;
  /** every failing entry, in log order */
  failures: AppraisalFailure[];
}

/** A public key to verify IMA signatures with, and its keyidv2. */
export interface ImaKey {
  key: KeyObject;
  keyid: number;
}

export interface AppraiseOptions {
  /** violations (all-zero template hash) not excluded: 'fail' (default, as `mismatch`) or 'accept' (as Keylime) */
  violations?: 'fail' | 'accept';
  /** more accepted boot_aggregate values (hex), e.g. H(PCR0‖…‖PCR9) of the quote, as Keylime adds measured boot's */
  bootAggregates?: readonly string[];
  /** more signature keys (Keylime's tenant keyring); keyid computed when absent */
  keys?: readonly (KeyObject | ImaKey)[];
}

/** A key learnt from a keyring measurement, as saved: DER SubjectPublicKeyInfo in base64. */
export interface LearntKey {
  keyring: string;
  spki: string;
  keyid: number;
}

/** What an Appraiser carries from one call to the next (JSON-safe). */
export interface AppraiserState {
  version: 1;
  /** entries appraised so far: the next entry is number next + 1 */
  next: number;
  counts: StatusCounts;
  learnt: LearntKey[];
}

const zeroCounts = (): StatusCounts => ({ ok: 0, excluded: 0, unknown: 0, mismatch: 0, 'bad-signature': 0 });
const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  const n = a.length;
  if (n !== b.length) return false;
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return false;
  return true;
}

// ---- DER, keys and certificates -------------------------------------------------------------------------------------

interface Tlv {
  tag: number;
  start: number;
  end: number;
}

/** One DER TLV at `off` inside b[..limit), or null. */
function tlv(b: Uint8Array, off: number, limit: number): Tlv | null {
  if (off + 2 > limit) return null;
  const tag = b[off];
  let len = b[off + 1];
  let start = off + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || start + n > limit) return null;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + b[start + i];
    start += n;
  }
  const end = start + len;
  return end <= limit ? { tag, start, end } : null;
}

/** The children of a constructed TLV. */
function children(b: Uint8Array, t: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let o = t.start; o < t.end; ) {
    const c = tlv(b, o, t.end);
    if (c === null) return out;
    out.push(c);
    o = c.end;
  }
  return out;
}

const SKI_OID = [0x55, 0x1d, 0x0e]; // 2.5.29.14 subjectKeyIdentifier

/** The Subject Key Identifier of a DER certificate, or null (walks tbsCertificate's [3] extensions). */
export function subjectKeyId(der: Uint8Array): Uint8Array | null {
  const cert = tlv(der, 0, der.length);
  const tbs = cert && children(der, cert)[0];
  if (!tbs) return null;
  const exts = children(der, tbs).find((t) => t.tag === 0xa3);
  const list = exts && children(der, exts)[0];
  if (!list) return null;
  for (const ext of children(der, list)) {
    const [oid, ...rest] = children(der, ext);
    if (!oid || oid.tag !== 0x06 || oid.end - oid.start !== 3 || SKI_OID.some((x, i) => der[oid.start + i] !== x)) continue;
    const value = rest.find((t) => t.tag === 0x04);
    const inner = value && tlv(der, value.start, value.end);
    return inner && inner.tag === 0x04 ? der.subarray(inner.start, inner.end) : null;
  }
  return null;
}

/**
 * The key a keyring measurement holds (Keylime's get_pubkey: DER or PEM X.509 certificate, DER or PEM public key):
 * its keyid is the last 4 bytes of the certificate's Subject Key Identifier, or keyIdV2. `supported` is false for a
 * key that is neither RSA nor EC on a curve verified here (isSupportedKey). Null when the buffer holds no key.
 */
export function keyFromBuffer(buf: Uint8Array): (ImaKey & { supported: boolean }) | null {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const pem = b.length > 11 && b.subarray(0, 11).toString('latin1') === '-----BEGIN ';
  if (!pem && (b.length < 2 || b[0] !== 0x30)) return null;
  let key: KeyObject | undefined;
  let ski: Uint8Array | null = null;
  try {
    const cert = new X509Certificate(b);
    key = cert.publicKey;
    ski = subjectKeyId(cert.raw);
  } catch {
    try {
      key = pem ? createPublicKey(b.toString('latin1')) : createPublicKey({ key: b, format: 'der', type: 'spki' });
    } catch {
      return null;
    }
  }
  const supported = isSupportedKey(key);
  const keyid = ski !== null && ski.length >= 4 ? Buffer.from(ski).readUInt32BE(ski.length - 4) : supported ? keyIdV2(key) : 0;
  return { key, keyid, supported };
}

// ---- signatures -------------------------------------------------------------------------------------------------------

/** The kernel's enum hash_algo (include/uapi/linux/hash_info.h), for the algorithms a signature can use here. */
const KERNEL_HASH: Record<number, string> = { 1: 'md5', 2: 'sha1', 4: 'sha256', 5: 'sha384', 6: 'sha512', 7: 'sha224' };
const DIGEST_LENGTH: Record<string, number> = { md5: 16, sha1: 20, sha224: 28, sha256: 32, sha384: 48, sha512: 64 };

/** DER DigestInfo prefixes of PKCS#1 v1.5 signatures (RFC 8017 §9.2 note 1). */
const DIGEST_INFO: Record<string, Buffer> = {
  md5: Buffer.from('3020300c06082a864886f70d020505000410', 'hex'),
  sha1: Buffer.from('3021300906052b0e03021a05000414', 'hex'),
  sha224: Buffer.from('302d300d06096086480165030402040500041c', 'hex'),
  sha256: Buffer.from('3031300d060960864801650304020105000420', 'hex'),
  sha384: Buffer.from('3041300d060960864801650304020205000430', 'hex'),
  sha512: Buffer.from('3051300d060960864801650304020305000440', 'hex'),
};

/** RSASSA-PKCS1-v1_5 over a digest computed elsewhere (Keylime's `Prehashed`). */
function rsaVerifyDigest(key: KeyObject, sig: Uint8Array, digest: Uint8Array, alg: string): boolean {
  const bytes = Math.ceil((key.asymmetricKeyDetails?.modulusLength ?? 0) / 8);
  if (sig.length !== bytes) return false;
  let em: Buffer;
  try {
    em = publicDecrypt({ key, padding: constants.RSA_PKCS1_PADDING }, sig);
  } catch {
    return false;
  }
  const prefix = DIGEST_INFO[alg];
  return em.length === prefix.length + digest.length && em.subarray(0, prefix.length).equals(prefix) && equalBytes(em.subarray(prefix.length), digest);
}

interface Curve {
  p: bigint;
  a: bigint;
  b: bigint;
  n: bigint;
  gx: bigint;
  gy: bigint;
  nBits: number;
}

const big = (h: string) => BigInt(`0x${h}`);
function curve(p: string, a: string | null, b: string, n: string, gx: string, gy: string): Curve {
  const P = big(p);
  const N = big(n);
  return { p: P, a: a === null ? P - 3n : big(a), b: big(b), n: N, gx: big(gx), gy: big(gy), nBits: N.toString(2).length };
}

/** Curves by Node's namedCurve (SEC 2 / FIPS 186-4 domain parameters); secp256k1 signs Keylime's EC test vectors. */
const CURVES: Record<string, Curve> = {
  prime256v1: curve(
    'ffffffff00000001000000000000000000000000ffffffffffffffffffffffff',
    null,
    '5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b',
    'ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551',
    '6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296',
    '4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5',
  ),
  secp384r1: curve(
    'fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffff',
    null,
    'b3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aef',
    'ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973',
    'aa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab7',
    '3617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a431d7c90ea0e5f',
  ),
  secp521r1: curve(
    '01ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff',
    null,
    '0051953eb9618e1c9a1f929a21a0b68540eea2da725b99b315f3b8b489918ef109e156193951ec7e937b1652c0bd3bb1bf073573df883d2c34f1ef451fd46b503f00',
    '01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409',
    '00c6858e06b70404e9cd9e3ecb662395b4429c648139053fb521f828af606b4d3dbaa14b5e77efe75928fe1dc127a2ffa8de3348b3c1856a429bf97e7e31c2e5bd66',
    '011839296a789a3bc0045c8a5fb42c7d1bd998f54449579b446817afbd17273e662c97ee72995ef42640c550b9013fad0761353c7086a272c24088be94769fd16650',
  ),
  secp256k1: curve(
    'fffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2f',
    '0',
    '7',
    'fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141',
    '79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798',
    '483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8',
  ),
};

/** Jacobian point (X, Y, Z): x = X/Z², y = Y/Z³; Z = 0 is the point at infinity. */
type J = [bigint, bigint, bigint];
const INF: J = [1n, 1n, 0n];
const md = (x: bigint, m: bigint) => {
  const r = x % m;
  return r < 0n ? r + m : r;
};

function inverse(x: bigint, m: bigint): bigint {
  let [a, b, u, v] = [md(x, m), m, 1n, 0n];
  while (a !== 0n) {
    const q = b / a;
    [a, b] = [b - q * a, a];
    [u, v] = [v - q * u, u];
  }
  return md(v, m);
}

function jDouble(P: J, c: Curve): J {
  const [X, Y, Z] = P;
  if (Z === 0n || Y === 0n) return INF;
  const p = c.p;
  const YY = (Y * Y) % p;
  const S = (4n * X * YY) % p;
  const ZZ = (Z * Z) % p;
  // M = 3X² + aZ⁴; for a = -3 (the NIST curves) that is 3(X - Z²)(X + Z²), for a = 0 (secp256k1) 3X²
  const M = c.a === 0n ? (3n * X * X) % p : c.a === p - 3n ? (3n * (X - ZZ) * (X + ZZ)) % p : (3n * X * X + ((c.a * ZZ) % p) * ZZ) % p;
  const X3 = md(M * M - 2n * S, p);
  const Y3 = md(M * (S - X3) - 8n * YY * YY, p);
  return [X3, Y3, (2n * Y * Z) % p];
}

/** P + (x, y) with (x, y) affine (a "mixed" addition: Z2 = 1 saves four multiplications). */
function jAddAffine(P: J, x: bigint, y: bigint, c: Curve): J {
  if (P[2] === 0n) return [x, y, 1n];
  const p = c.p;
  const Z1Z1 = (P[2] * P[2]) % p;
  const U2 = (x * Z1Z1) % p;
  const S2 = (((y * P[2]) % p) * Z1Z1) % p;
  if (P[0] === U2) return P[1] === S2 ? jDouble(P, c) : INF;
  const H = md(U2 - P[0], p);
  const R = md(S2 - P[1], p);
  const HH = (H * H) % p;
  const HHH = (H * HH) % p;
  const V = (P[0] * HH) % p;
  const X3 = md(R * R - HHH - 2n * V, p);
  const Y3 = md(R * (V - X3) - P[1] * HHH, p);
  return [X3, Y3, (P[2] * H) % p];
}

/** The affine form of a Jacobian point, or null for the point at infinity. */
function toAffine(P: J, c: Curve): [bigint, bigint] | null {
  if (P[2] === 0n) return null;
  const zi = inverse(P[2], c.p);
  const zi2 = (zi * zi) % c.p;
  return [(P[0] * zi2) % c.p, (((P[1] * zi2) % c.p) * zi) % c.p];
}

/** A strict DER ECDSA-Sig-Value {r, s}, or null. */
function derSignature(sig: Uint8Array): [bigint, bigint] | null {
  const seq = tlv(sig, 0, sig.length);
  if (!seq || seq.tag !== 0x30 || seq.end !== sig.length) return null;
  const parts = children(sig, seq);
  if (parts.length !== 2 || parts[1].end !== seq.end) return null;
  const ints: bigint[] = [];
  for (const t of parts) {
    const n = t.end - t.start;
    if (t.tag !== 0x02 || n === 0 || sig[t.start] & 0x80) return null;
    if (n > 1 && sig[t.start] === 0 && !(sig[t.start + 1] & 0x80)) return null; // not minimal
    ints.push(BigInt(`0x${hex(sig.subarray(t.start, t.end))}`));
  }
  return [ints[0], ints[1]];
}

const EC_POINTS = new WeakMap<KeyObject, { c: Curve; qx: bigint; qy: bigint } | null>();

/** An EC key's curve and point, read once per KeyObject; null for a curve not in CURVES. */
function ecPoint(key: KeyObject): { c: Curve; qx: bigint; qy: bigint } | null {
  let v = EC_POINTS.get(key);
  if (v === undefined) {
    const c = CURVES[key.asymmetricKeyDetails?.namedCurve ?? ''];
    const jwk = c === undefined ? undefined : key.export({ format: 'jwk' });
    v = jwk === undefined ? null : {
      c,
      qx: BigInt(`0x${Buffer.from(String(jwk.x), 'base64url').toString('hex')}`),
      qy: BigInt(`0x${Buffer.from(String(jwk.y), 'base64url').toString('hex')}`),
    };
    EC_POINTS.set(key, v);
  }
  return v;
}

/** ECDSA over a digest computed elsewhere (SEC 1 §4.1.4, the digest truncated to the order's bit length). */
export function ecdsaVerifyDigest(key: KeyObject, sig: Uint8Array, digest: Uint8Array): boolean {
  const pub = ecPoint(key);
  const rs = derSignature(sig);
  if (pub === null || rs === null || digest.length === 0) return false;
  const { c, qx, qy } = pub;
  const [r, s] = rs;
  if (r <= 0n || r >= c.n || s <= 0n || s >= c.n) return false;
  let z = BigInt(`0x${hex(digest)}`);
  if (digest.length * 8 > c.nBits) z >>= BigInt(digest.length * 8 - c.nBits);
  const w = inverse(s, c.n);
  const u1 = (z * w) % c.n;
  const u2 = (r * w) % c.n;
  // Shamir's trick: one pass of doublings over both scalars, adding G, Q or G + Q (all affine)
  const GQ = toAffine(jAddAffine([c.gx, c.gy, 1n], qx, qy, c), c);
  const b1 = u1.toString(2);
  const b2 = u2.toString(2);
  const len = Math.max(b1.length, b2.length);
  const s1 = b1.padStart(len, '0');
  const s2 = b2.padStart(len, '0');
  let R = INF;
  for (let i = 0; i < len; i++) {
    R = jDouble(R, c);
    const x1 = s1.charCodeAt(i) === 49;
    const x2 = s2.charCodeAt(i) === 49;
    if (x1 && x2) R = GQ === null ? R : jAddAffine(R, GQ[0], GQ[1], c);
    else if (x1) R = jAddAffine(R, c.gx, c.gy, c);
    else if (x2) R = jAddAffine(R, qx, qy, c);
  }
  const xy = toAffine(R, c);
  return xy !== null && xy[0] % c.n === r;
}

/** The outcome of checking an ima-sig signature. */
export type SignatureCheck = 'ok' | 'bad' | 'malformed' | 'no-key';

/**
 * Checks an `ima-sig` signature (`signature_v2_hdr`, big-endian: type 3, version 2, hash_algo, keyid, sig_size,
 * signature over the file digest) with the keys of that keyid: `ok`, `bad` (a key with that keyid exists and none
 * verifies), `malformed` (header, size, unknown hash, or a hash other than the file digest's), `no-key` (no key
 * with that keyid, or an EVM portable signature — type 5 — which does not sign the file digest).
 */
export function checkImaSignature(sig: Uint8Array, digest: Uint8Array, digestAlg: string, keys: ReadonlyMap<number, readonly ImaKey[]>): SignatureCheck {
  if (sig.length < 9 || sig[1] !== 2) return 'malformed';
  if (sig[0] !== 3) return sig[0] === 5 ? 'no-key' : 'malformed';
  const alg = KERNEL_HASH[sig[2]];
  const size = (sig[7] << 8) | sig[8];
  if (alg === undefined || 9 + size !== sig.length || alg !== digestAlg || digest.length !== DIGEST_LENGTH[alg]) return 'malformed';
  const keyid = ((sig[3] << 24) | (sig[4] << 16) | (sig[5] << 8) | sig[6]) >>> 0;
  const candidates = keys.get(keyid);
  if (candidates === undefined || candidates.length === 0) return 'no-key';
  const body = sig.subarray(9);
  for (const { key } of candidates) if (verifyCached(key, body, digest, alg)) return 'ok';
  return 'bad';
}

/**
 * Verification results, process-wide: a pure function of (key, signature, digest), and the same signed files recur
 * across the logs of machines built from one image. ECDSA is computed in JS (Node has no ECDSA over a given digest),
 * 2–5 ms a signature on P-256/P-384; RSA goes through OpenSSL. Bounded: emptied when full.
 */
const VERIFIED = new Map<string, boolean>();
const VERIFIED_MAX = 100_000;
const KEY_IDS = new WeakMap<KeyObject, string>();

function verifyCached(key: KeyObject, sig: Uint8Array, digest: Uint8Array, alg: string): boolean {
  let id = KEY_IDS.get(key);
  if (id === undefined) {
    id = createHash('sha256').update(key.export({ format: 'der', type: 'spki' })).digest('base64');
    KEY_IDS.set(key, id);
  }
  const k = `${id}|${alg}|${hex(sig)}|${hex(digest)}`;
  let good = VERIFIED.get(k);
  if (good === undefined) {
    good = key.asymmetricKeyType === 'rsa' ? rsaVerifyDigest(key, sig, digest, alg) : ecdsaVerifyDigest(key, sig, digest);
    if (VERIFIED.size >= VERIFIED_MAX) VERIFIED.clear();
    VERIFIED.set(k, good);
  }
  return good;
}

// ---- the appraiser ----------------------------------------------------------------------------------------------------

/** A digest map compiled for the hot path: name → accepted digests as bytes. */
function compile(m: DigestMap): Map<string, Uint8Array[]> {
  return new Map([...m].map(([k, v]) => [k, v.map((h) => Buffer.from(h, 'hex'))]));
}

function listed(m: Map<string, Uint8Array[]>, name: string, digest: Uint8Array): 'ok' | 'unknown' | 'mismatch' {
  const list = m.get(name);
  if (list === undefined) return 'unknown';
  for (let i = 0; i < list.length; i++) if (equalBytes(list[i], digest)) return 'ok';
  return 'mismatch';
}

function badState(message: string): never {
  throw new IntegrityError(IntegrityErrorCode.appraiseBadState, `appraiser state: ${message}`);
}

/**
 * Appraises a log incrementally: `appraise(newEntries)` looks only at the entries given, numbering them after those
 * seen before, and keeps the keys learnt from keyrings. Its verdict covers those entries; `totals` covers all.
 */
export class Appraiser {
  private readonly digests: Map<string, Uint8Array[]>;
  private readonly keyrings: Map<string, Uint8Array[]>;
  private readonly imaBuf: Map<string, Uint8Array[]>;
  private readonly excluded: ExcludeMatcher | null;
  private readonly ignored: Set<string>;
  private readonly bootAggregate: Uint8Array[];
  private readonly acceptViolations: boolean;
  private readonly baseKeys: ImaKey[] = [];
  private keys = new Map<number, ImaKey[]>();
  private learnt: LearntKey[] = [];
  private next = 0;
  private counts = zeroCounts();

  constructor(
    private readonly policy: RuntimePolicy,
    opts: AppraiseOptions = {},
  ) {
    this.digests = compile(policy.digests);
    this.keyrings = compile(policy.keyrings);
    this.imaBuf = compile(policy.imaBuf);
    this.excluded = compileExcludes(policy.excludes);
    this.ignored = new Set(policy.ima.ignored_keyrings);
    const boot = [...(policy.digests.get('boot_aggregate') ?? []), ...(opts.bootAggregates ?? [])];
    this.bootAggregate = boot.map((h) => Buffer.from(h, 'hex'));
    this.acceptViolations = opts.violations === 'accept';
    const vk = policy.verificationKeys;
    vk?.pubkeys.forEach((b64, i) => {
      const key = loadSpki(Buffer.from(b64, 'base64'));
      if (key === null) throw new IntegrityError(IntegrityErrorCode.policyBadKey, 'not a DER RSA or EC public key', { field: `verification-keys.pubkeys[${i}]` });
      this.baseKeys.push({ key, keyid: vk.keyids[i] ?? keyIdV2(key) });
    });
    for (const k of opts.keys ?? []) this.baseKeys.push('keyid' in k ? k : { key: k, keyid: keyIdV2(k) });
    this.reset();
  }

  /** Forgets everything appraised (Keylime restarts from entry 0 after a failure): learnt keys, counter, totals. */
  reset(): void {
    this.keys = new Map();
    for (const k of this.baseKeys) this.addKey(k);
    this.learnt = [];
    this.next = 0;
    this.counts = zeroCounts();
  }

  /** Number of entries appraised so far. */
  get entries(): number {
    return this.next;
  }

  /** Counts over every entry appraised so far. */
  get totals(): StatusCounts {
    return { ...this.counts };
  }

  private addKey(k: ImaKey): void {
    const list = this.keys.get(k.keyid);
    if (list === undefined) this.keys.set(k.keyid, [k]);
    else list.push(k);
  }

  /** Appraises the next entries of the log. */
  appraise(entries: readonly ImaEntry[]): Verdict {
    const counts = zeroCounts();
    const failures: AppraisalFailure[] = [];
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i];
      const n = ++this.next;
      const status = this.status(e);
      counts[status]++;
      if (status !== 'ok' && status !== 'excluded') failures.push(this.failure(e, n, status));
    }
    for (const k of Object.keys(counts) as EntryStatus[]) this.counts[k] += counts[k];
    return { ok: failures.length === 0, counts, failures };
  }

  private failure(e: ImaEntry, entry: number, status: FailureStatus): AppraisalFailure {
    let map = this.policy.digests;
    if (e.template === 'ima-buf') map = keyFromBuffer(e.buf ?? new Uint8Array(0)) !== null ? this.policy.keyrings : this.policy.imaBuf;
    let expected = [...(map.get(e.name) ?? [])];
    if (e.template !== 'ima-buf' && e.name === 'boot_aggregate') expected = this.bootAggregate.map(hex);
    return { entry, path: e.name, status, expected, found: hex(e.digest), alg: e.digestAlg };
  }

  /** The status of one entry (see the module comment for the rules). */
  private status(e: ImaEntry): EntryStatus {
    if (this.excluded !== null && this.excluded(e.name)) return 'excluded';
    if (isViolation(e)) return this.acceptViolations ? 'excluded' : 'mismatch';
    switch (e.template) {
      case 'ima-ng':
      case 'ima':
        return this.fileStatus(e);
      case 'ima-sig':
        return this.signedStatus(e);
      case 'ima-buf':
        return this.bufStatus(e);
    }
  }

  private fileStatus(e: ImaEntry): 'ok' | 'unknown' | 'mismatch' {
    if (e.name === 'boot_aggregate') {
      if (this.bootAggregate.length === 0) return 'ok';
      for (const d of this.bootAggregate) if (equalBytes(d, e.digest)) return 'ok';
      return 'mismatch';
    }
    return listed(this.digests, e.name, e.digest);
  }

  private signedStatus(e: ImaEntry): EntryStatus {
    const sig = e.sig;
    if (sig === undefined || sig.length === 0) return this.fileStatus(e);
    const check = checkImaSignature(sig, e.digest, e.digestAlg, this.keys);
    if (check === 'ok') return 'ok';
    const byDigest = this.fileStatus(e);
    if (byDigest === 'ok') return 'ok';
    return check === 'bad' || check === 'malformed' ? 'bad-signature' : byDigest;
  }

  private bufStatus(e: ImaEntry): EntryStatus {
    const buf = e.buf ?? new Uint8Array(0);
    const key = keyFromBuffer(buf);
    if (key !== null && (this.ignored.has('*') || this.ignored.has(e.name))) return 'excluded';
    const status = listed(key !== null ? this.keyrings : this.imaBuf, e.name, e.digest);
    if (status !== 'ok') return status;
    if (!digestOfBufferMatches(e.digestAlg, buf, e.digest)) return 'mismatch';
    if (key !== null && key.supported) {
      this.addKey(key);
      this.learnt.push({ keyring: e.name, spki: key.key.export({ format: 'der', type: 'spki' }).toString('base64'), keyid: key.keyid });
    }
    return 'ok';
  }

  /** The state to carry to a later call or process (learnt keys, entry counter, totals). */
  saveState(): AppraiserState {
    return { version: 1, next: this.next, counts: { ...this.counts }, learnt: this.learnt.map((k) => ({ ...k })) };
  }

  /** An appraiser for `policy` that goes on from a saved state. */
  static restore(policy: RuntimePolicy, state: unknown, opts: AppraiseOptions = {}): Appraiser {
    const a = new Appraiser(policy, opts);
    const s = state as Partial<AppraiserState> | null;
    if (typeof s !== 'object' || s === null || s.version !== 1) badState('not a version 1 state');
    if (typeof s.next !== 'number' || !Number.isSafeInteger(s.next) || s.next < 0) badState('bad entry counter');
    if (typeof s.counts !== 'object' || s.counts === null) badState('no counts');
    const counts = zeroCounts();
    for (const k of Object.keys(counts) as EntryStatus[]) {
      const v = (s.counts as Record<string, unknown>)[k];
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) badState(`bad count ${k}`);
      counts[k] = v;
    }
    if (!Array.isArray(s.learnt)) badState('no learnt keys');
    for (const k of s.learnt as unknown[]) {
      const l = k as Partial<LearntKey> | null;
      if (typeof l !== 'object' || l === null || typeof l.keyring !== 'string' || typeof l.spki !== 'string') badState('bad learnt key');
      if (typeof l.keyid !== 'number' || !Number.isInteger(l.keyid) || l.keyid < 0 || l.keyid > 0xffffffff) badState('bad keyid');
      const key = loadSpki(Buffer.from(l.spki, 'base64'));
      if (key === null) badState('a learnt key does not load');
      a.addKey({ key, keyid: l.keyid });
      a.learnt.push({ keyring: l.keyring, spki: l.spki, keyid: l.keyid });
    }
    a.next = s.next;
    a.counts = counts;
    return a;
  }
}

/** Whether an ima-buf digest is the hash of its buffer (true when Node does not know the algorithm). */
function digestOfBufferMatches(alg: string, buf: Uint8Array, digest: Uint8Array): boolean {
  let h: Buffer;
  try {
    h = createHash(alg).update(buf).digest();
  } catch {
    return true;
  }
  return equalBytes(h, digest);
}

/** One-shot appraisal of a whole log. */
export function appraise(policy: RuntimePolicy, entries: readonly ImaEntry[], opts: AppraiseOptions = {}): Verdict {
  return new Appraiser(policy, opts).appraise(entries);
}
