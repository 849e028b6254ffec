/**
 * The keys that verify IMA signatures (keylime/ima/file_signatures.py, ImaKeyring): which ones are supported here,
 * a DER SubjectPublicKeyInfo loaded as one, Keylime's keyidv2, and the key a keyring measurement (an ima-buf entry)
 * holds, with its keyid from the certificate's Subject Key Identifier. runtime-policy.ts reads `verification-keys`
 * with them; appraise.ts takes keys given and learns keys from keyrings with them.
 *
 * The small DER reader here walks certificates, and ima-signature.ts reads ECDSA-Sig-Values with it.
 */
import { createHash, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';

/** A public key to verify IMA signatures with, and its keyidv2. */
export interface ImaKey {
  key: KeyObject;
  keyid: number;
}

/** The EC curves (Node's names) whose signatures ima-signature.ts verifies: NIST P-256, P-384, P-521 and secp256k1. */
export const EC_CURVES: readonly string[] = ['prime256v1', 'secp384r1', 'secp521r1', 'secp256k1'];

/** Whether a key can verify IMA signatures here: RSA, or EC on one of EC_CURVES. */
export function isSupportedKey(k: KeyObject): boolean {
  return k.asymmetricKeyType === 'rsa' || (k.asymmetricKeyType === 'ec' && EC_CURVES.includes(k.asymmetricKeyDetails?.namedCurve ?? ''));
}

/** A DER SubjectPublicKeyInfo as a supported (RSA or EC) KeyObject, or null. */
export function loadSpki(der: Uint8Array): KeyObject | null {
  try {
    const k = createPublicKey({ key: Buffer.from(der), format: 'der', type: 'spki' });
    return isSupportedKey(k) ? k : null;
  } catch {
    return null;
  }
}

/**
 * keyidv2 of a key without a certificate (Keylime's ImaKeyring._get_keyidv2): the last 4 bytes of SHA-1 over the
 * PKCS#1 DER of an RSA key, or over the uncompressed point of an EC key.
 */
export function keyIdV2(key: KeyObject): number {
  let bytes: Buffer;
  if (key.asymmetricKeyType === 'rsa') bytes = key.export({ format: 'der', type: 'pkcs1' });
  else {
    const jwk = key.export({ format: 'jwk' });
    bytes = Buffer.concat([Buffer.from([4]), Buffer.from(String(jwk.x), 'base64url'), Buffer.from(String(jwk.y), 'base64url')]);
  }
  return createHash('sha1').update(bytes).digest().readUInt32BE(16);
}

// ---- DER and certificates ------------------------------------------------------------------------------------------

/** A DER tag-length-value: its tag, and where its content starts and ends. */
export interface Tlv {
  tag: number;
  start: number;
  end: number;
}

/** One DER TLV at `off` inside b[..limit), or null. */
export function tlv(b: Uint8Array, off: number, limit: number): Tlv | null {
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
export function children(b: Uint8Array, t: Tlv): Tlv[] {
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
