/**
 * TPM keys (FORMATS.md, "TPM 2.0 quotes"): TPM2B_PUBLIC as tpm2-tools writes it, with the key's Name and a
 * KeyObject, and the attestation key that verifies quotes, from TPM2B_PUBLIC, PEM or DER.
 */
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { IntegrityError, IntegrityErrorCode } from './errors.ts';
import { algHex, ecdsaP1363, MAX_DIGEST, MAX_ECC_BYTES, MAX_RSA_BYTES, Reader, TPM_ALG } from './tpm-marshal.ts';

// ---------------------------------------------------------------------------------------------------------------
// TPM2B_PUBLIC

/** TPMA_OBJECT bits a verifier cares about, and the reserved ones a TPM refuses (TPM_RC_RESERVED_BITS). */
export const TPMA_OBJECT = {
  fixedTPM: 1 << 1,
  stClear: 1 << 2,
  fixedParent: 1 << 4,
  sensitiveDataOrigin: 1 << 5,
  userWithAuth: 1 << 6,
  adminWithPolicy: 1 << 7,
  noDA: 1 << 10,
  encryptedDuplication: 1 << 11,
  restricted: 1 << 16,
  decrypt: 1 << 17,
  sign: 1 << 18,
  x509sign: 1 << 19,
  reserved: 0xfff0f309,
} as const;

export type CurveName = 'P-256' | 'P-384' | 'P-521';
const CURVES: ReadonlyMap<number, { name: CurveName; size: number }> = new Map([
  [0x0003, { name: 'P-256' as const, size: 32 }],
  [0x0004, { name: 'P-384' as const, size: 48 }],
  [0x0005, { name: 'P-521' as const, size: 66 }],
]);
/** node:crypto's names for the same curves (KeyObject.asymmetricKeyDetails.namedCurve). */
const NODE_CURVE_SIZE: Record<string, number> = { prime256v1: 32, secp384r1: 48, secp521r1: 66 };

export interface AlgorithmDetail {
  /** the scheme / algorithm id */
  alg: number;
  /** the hash it uses, when it has one */
  hashAlg: number | null;
}
interface TpmPublicCommon {
  nameAlg: number;
  objectAttributes: number;
  authPolicy: Uint8Array;
  /** TPMT_SYM_DEF_OBJECT; null for TPM_ALG_NULL (every signing key) */
  symmetric: { alg: number; keyBits: number; mode: number } | null;
  /** the key's signing or decryption scheme; null for TPM_ALG_NULL */
  scheme: AlgorithmDetail | null;
  /** the marshalled TPMT_PUBLIC, the bytes the Name is computed from */
  publicArea: Uint8Array;
  /** nameAlg (u16) ‖ H_nameAlg(TPMT_PUBLIC) */
  name: Uint8Array;
  key: KeyObject;
}
export interface TpmPublicRsa extends TpmPublicCommon {
  type: 'rsa';
  keyBits: number;
  /** the public exponent, 65537 when the structure says 0 */
  exponent: number;
  modulus: Uint8Array;
}
export interface TpmPublicEcc extends TpmPublicCommon {
  type: 'ecc';
  curveId: number;
  curve: CurveName;
  kdf: AlgorithmDetail | null;
  x: Uint8Array;
  y: Uint8Array;
}
export type TpmPublic = TpmPublicRsa | TpmPublicEcc;

const SYMMETRIC = new Set<number>([TPM_ALG.tdes, TPM_ALG.aes, TPM_ALG.sm4, TPM_ALG.camellia]);
const RSA_SCHEMES_WITH_HASH = new Set<number>([TPM_ALG.rsassa, TPM_ALG.rsapss, TPM_ALG.oaep]);
const ECC_SCHEMES_WITH_HASH = new Set<number>([TPM_ALG.ecdsa, TPM_ALG.ecdh, TPM_ALG.sm2, TPM_ALG.ecschnorr, TPM_ALG.ecmqv]);
const KDFS = new Set<number>([TPM_ALG.mgf1, TPM_ALG.kdf1_sp800_56a, TPM_ALG.kdf2, TPM_ALG.kdf1_sp800_108]);

/** TPMT_RSA_SCHEME, TPMT_ECC_SCHEME, TPMT_KDF_SCHEME: an id and, depending on it, a hash (and ECDAA's count). */
function readScheme(r: Reader, field: string, withHash: Set<number>, noDetails: Set<number>): AlgorithmDetail | null {
  const at = r.pos;
  const alg = r.u16(`${field}.scheme`);
  if (alg === TPM_ALG.null) return null;
  if (noDetails.has(alg)) return { alg, hashAlg: null };
  if (alg === TPM_ALG.ecdaa && withHash === ECC_SCHEMES_WITH_HASH) {
    const h = r.hash(`${field}.details.hashAlg`);
    r.u16(`${field}.details.count`);
    return { alg, hashAlg: h.id };
  }
  if (!withHash.has(alg)) r.fail(IntegrityErrorCode.tpmUnsupported, `${field}.scheme`, `scheme ${algHex(alg)} is not supported`, at);
  return { alg, hashAlg: r.hash(`${field}.details.hashAlg`).id };
}

function badKey(r: Reader, field: string, at: number, e: unknown): never {
  const why = e instanceof Error ? e.message : String(e);
  r.fail(IntegrityErrorCode.tpmBadStructure, field, `not a usable public key: ${why}`, at);
}

/** TPM2B_PUBLIC (as tpm2-tools writes with `-f tss`, the default): an RSA or ECC key, its Name and a KeyObject. */
export function parsePublic(bytes: Uint8Array): TpmPublic {
  const r: Reader = new Reader(bytes, 'TPM2B_PUBLIC'); // typed, so r.fail() narrows
  const size = r.u16('size');
  if (size !== r.left) {
    r.fail(size > r.left ? IntegrityErrorCode.tpmTruncated : IntegrityErrorCode.tpmBadStructure, 'size', `size says ${size} bytes, ${r.left} follow`, 0);
  }
  const start = r.pos;
  const typeAt = r.pos;
  const type = r.u16('publicArea.type');
  if (type !== TPM_ALG.rsa && type !== TPM_ALG.ecc) {
    r.fail(IntegrityErrorCode.tpmUnsupported, 'publicArea.type', `object type ${algHex(type)} is not supported (RSA and ECC are)`, typeAt);
  }
  const nameHash = r.hash('publicArea.nameAlg');
  const attrAt = r.pos;
  const objectAttributes = r.u32('publicArea.objectAttributes');
  if (objectAttributes & TPMA_OBJECT.reserved) {
    r.fail(IntegrityErrorCode.tpmBadStructure, 'publicArea.objectAttributes', `reserved attribute bits set (0x${(objectAttributes >>> 0).toString(16).padStart(8, '0')})`, attrAt);
  }
  const authPolicy = r.sized('publicArea.authPolicy', MAX_DIGEST);
  const symAt = r.pos;
  const symAlg = r.u16('publicArea.parameters.symmetric.algorithm');
  let symmetric: TpmPublicCommon['symmetric'] = null;
  if (symAlg !== TPM_ALG.null) {
    if (!SYMMETRIC.has(symAlg)) r.fail(IntegrityErrorCode.tpmUnsupported, 'publicArea.parameters.symmetric.algorithm', `symmetric algorithm ${algHex(symAlg)} is not supported`, symAt);
    symmetric = { alg: symAlg, keyBits: r.u16('publicArea.parameters.symmetric.keyBits'), mode: r.u16('publicArea.parameters.symmetric.mode') };
  }
  let pub: Omit<TpmPublicRsa, 'publicArea' | 'name' | 'key'> | Omit<TpmPublicEcc, 'publicArea' | 'name' | 'key'>;
  let key: KeyObject;
  const common = { nameAlg: nameHash.id, objectAttributes, authPolicy, symmetric };
  if (type === TPM_ALG.rsa) {
    const scheme = readScheme(r, 'publicArea.parameters.scheme', RSA_SCHEMES_WITH_HASH, new Set([TPM_ALG.rsaes]));
    const bitsAt = r.pos;
    const keyBits = r.u16('publicArea.parameters.keyBits');
    const exponent = r.u32('publicArea.parameters.exponent') || 65537;
    const modAt = r.pos;
    const modulus = r.sized('publicArea.unique.rsa', MAX_RSA_BYTES);
    if (modulus.length * 8 !== keyBits) {
      r.fail(IntegrityErrorCode.tpmBadStructure, 'publicArea.unique.rsa', `modulus of ${modulus.length} bytes for a ${keyBits}-bit key`, modAt);
    }
    if (keyBits < 1024) r.fail(IntegrityErrorCode.tpmUnsupported, 'publicArea.parameters.keyBits', `${keyBits}-bit RSA keys are not supported`, bitsAt);
    try {
      key = createPublicKey({ key: { kty: 'RSA', n: b64u(modulus), e: b64u(uintBytes(exponent)) }, format: 'jwk' });
    } catch (e) {
      badKey(r, 'publicArea.unique.rsa', modAt, e);
    }
    pub = { type: 'rsa', ...common, scheme, keyBits, exponent, modulus };
  } else {
    const scheme = readScheme(r, 'publicArea.parameters.scheme', ECC_SCHEMES_WITH_HASH, new Set());
    const curveAt = r.pos;
    const curveId = r.u16('publicArea.parameters.curveID');
    const curve = CURVES.get(curveId);
    if (!curve) r.fail(IntegrityErrorCode.tpmUnsupported, 'publicArea.parameters.curveID', `curve ${algHex(curveId)} is not supported (NIST P-256, P-384, P-521 are)`, curveAt);
    const kdf = readScheme(r, 'publicArea.parameters.kdf', KDFS, new Set());
    const pointAt = r.pos;
    const x = r.sized('publicArea.unique.ecc.x', MAX_ECC_BYTES);
    const y = r.sized('publicArea.unique.ecc.y', MAX_ECC_BYTES);
    const px = ecdsaP1363(x, y, curve.size);
    if (!px) r.fail(IntegrityErrorCode.tpmBadStructure, 'publicArea.unique.ecc', `coordinates longer than ${curve.name} allows`, pointAt);
    try {
      key = createPublicKey({
        key: { kty: 'EC', crv: curve.name, x: b64u(px.subarray(0, curve.size)), y: b64u(px.subarray(curve.size)) },
        format: 'jwk',
      });
    } catch (e) {
      badKey(r, 'publicArea.unique.ecc', pointAt, e);
    }
    pub = { type: 'ecc', ...common, scheme, curveId, curve: curve.name, kdf, x, y };
  }
  r.end();
  const publicArea = new Uint8Array(bytes.subarray(start, r.pos));
  const name = new Uint8Array(2 + nameHash.size);
  name[0] = nameHash.id >> 8;
  name[1] = nameHash.id & 0xff;
  name.set(createHash(nameHash.name).update(publicArea).digest(), 2);
  return { ...pub, publicArea, name, key } as TpmPublic;
}

function b64u(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url');
}
function uintBytes(n: number): Uint8Array {
  const out: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) out.unshift(v & 0xff);
  return Uint8Array.from(out);
}

// ---------------------------------------------------------------------------------------------------------------
// Attestation keys in any form tpm2-tools writes

/** A verification key ready for use: parsed once, then reused for every quote it signs. */
export interface AttestationKey {
  key: KeyObject;
  kind: 'rsa' | 'ec';
  /** EC: the curve's field size in bytes (for r‖s); 0 for RSA */
  curveBytes: number;
  /** the TPM public area, when the key came as TPM2B_PUBLIC (a PEM key says nothing of attributes or scheme) */
  public: TpmPublic | null;
}

/** Wraps a KeyObject from elsewhere (PEM, JWK, …); only RSA and NIST-curve EC keys can verify a quote. */
export function attestationKeyFromKeyObject(key: KeyObject, pub: TpmPublic | null = null): AttestationKey {
  const t = key.asymmetricKeyType;
  if (key.type !== 'public' && key.type !== 'private') {
    throw new IntegrityError(IntegrityErrorCode.tpmUnsupported, 'attestation key: a secret key cannot verify a quote', { field: 'AK' });
  }
  const k = key.type === 'private' ? createPublicKey(key) : key;
  if (t === 'rsa' || t === 'rsa-pss') return { key: k, kind: 'rsa', curveBytes: 0, public: pub };
  if (t === 'ec') {
    const crv = k.asymmetricKeyDetails?.namedCurve ?? '';
    const size = NODE_CURVE_SIZE[crv];
    if (size) return { key: k, kind: 'ec', curveBytes: size, public: pub };
    throw new IntegrityError(IntegrityErrorCode.tpmUnsupported, `attestation key: curve ${crv || '?'} is not supported`, { field: 'AK' });
  }
  throw new IntegrityError(IntegrityErrorCode.tpmUnsupported, `attestation key: ${t ?? '?'} keys are not supported (RSA and EC are)`, { field: 'AK' });
}

/**
 * An AK file as tpm2-tools writes it: `-f pem` (PEM SubjectPublicKeyInfo), `-f der`, or `-f tss` (TPM2B_PUBLIC).
 * TPM2B_PUBLIC is recognised by its size prefix matching the file; only then does a leading 0x30 mean DER.
 */
export function loadAttestationKey(bytes: Uint8Array): AttestationKey {
  const head = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.byteLength, 64)).toString('latin1');
  if (/^\s*-----BEGIN /.test(head)) return fromSpki(Buffer.from(bytes).toString('utf8'), 'pem');
  const tpm2b = bytes.length >= 2 && ((bytes[0] << 8) | bytes[1]) === bytes.length - 2;
  if (!tpm2b && bytes[0] === 0x30) return fromSpki(Buffer.from(bytes), 'der');
  const pub = parsePublic(bytes);
  return attestationKeyFromKeyObject(pub.key, pub);
}

function fromSpki(key: string | Buffer, format: 'pem' | 'der'): AttestationKey {
  let k: KeyObject;
  try {
    k = format === 'pem' ? createPublicKey(key as string) : createPublicKey({ key: key as Buffer, format: 'der', type: 'spki' });
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new IntegrityError(IntegrityErrorCode.tpmBadStructure, `attestation key: not a ${format.toUpperCase()} public key: ${why}`, { field: `AK (${format})` });
  }
  return attestationKeyFromKeyObject(k);
}
