/**
 * IMA file signatures: the `signature_v2_hdr` an ima-sig entry carries (keylime/ima/file_signatures.py), checked
 * against the file digest with the keys of its keyid. RSASSA-PKCS1-v1_5 goes through OpenSSL; ECDSA over a given
 * digest has no Node API and is computed here (2–5 ms a signature); results are cached process-wide.
 */
import { constants, createHash, publicDecrypt, type KeyObject } from 'node:crypto';
import { equalBytes, hex } from './bytes.ts';
import { children, tlv, type ImaKey } from './ima-keys.ts';

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
