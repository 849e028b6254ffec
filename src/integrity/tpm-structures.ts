/**
 * TPM 2.0 structures a quote verifier reads (FORMATS.md, "TPM 2.0 quotes"): TPMS_ATTEST, TPMT_SIGNATURE,
 * TPM2B_PUBLIC, and tpm2-tools' PCR files. Input comes from the machine being attested, so it is hostile: every
 * size is checked against what is left before reading, and every failure is an IntegrityError naming the
 * structure, the field and the byte offset — never a RangeError from a DataView.
 *
 * Parsed objects copy the bytes they keep, so a caller reusing its buffer does not change them afterwards.
 */
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { IntegrityError, IntegrityErrorCode } from './errors.ts';

// ---------------------------------------------------------------------------------------------------------------
// Algorithm and constant tables (TPM 2.0 Part 2 / TCG Algorithm Registry)

export const TPM_ALG = {
  rsa: 0x0001,
  tdes: 0x0003,
  sha1: 0x0004,
  aes: 0x0006,
  mgf1: 0x0007,
  null: 0x0010,
  sm4: 0x0013,
  rsassa: 0x0014,
  rsaes: 0x0015,
  rsapss: 0x0016,
  oaep: 0x0017,
  ecdsa: 0x0018,
  ecdh: 0x0019,
  ecdaa: 0x001a,
  sm2: 0x001b,
  ecschnorr: 0x001c,
  ecmqv: 0x001d,
  kdf1_sp800_56a: 0x0020,
  kdf2: 0x0021,
  kdf1_sp800_108: 0x0022,
  ecc: 0x0023,
  camellia: 0x0026,
  sha256: 0x000b,
  sha384: 0x000c,
  sha512: 0x000d,
} as const;

/** TPM_GENERATED_VALUE: what a TPM puts first in everything it signs, so a restricted key never signs a forgery. */
export const TPM_GENERATED_VALUE = 0xff544347;
/** TPM_ST_ATTEST_QUOTE */
export const TPM_ST_ATTEST_QUOTE = 0x8018;

export type HashName = 'sha1' | 'sha256' | 'sha384' | 'sha512';
export interface HashInfo {
  id: number;
  name: HashName;
  size: number;
}
const HASHES: readonly HashInfo[] = [
  { id: TPM_ALG.sha1, name: 'sha1', size: 20 },
  { id: TPM_ALG.sha256, name: 'sha256', size: 32 },
  { id: TPM_ALG.sha384, name: 'sha384', size: 48 },
  { id: TPM_ALG.sha512, name: 'sha512', size: 64 },
];
export function hashById(id: number): HashInfo | undefined {
  return HASHES.find((h) => h.id === id);
}
export function hashByName(name: HashName): HashInfo {
  return HASHES.find((h) => h.name === name) as HashInfo;
}

/** `0x000b` — how algorithm ids appear in messages. */
export function algHex(id: number): string {
  return `0x${id.toString(16).padStart(4, '0')}`;
}

/** Limits from tpm2-tss (TPM2_MAX_*): what a TPM2B may hold. A larger size is corruption, not a bigger key. */
const MAX_DIGEST = 64;
const MAX_NAME = 2 + MAX_DIGEST; // TPMU_NAME: a TPMT_HA
const MAX_DATA = 2 + MAX_DIGEST; // TPMU_HA + alg
const MAX_RSA_BYTES = 512;
const MAX_ECC_BYTES = 128;
const MAX_BANKS = 16; // TPM2_NUM_PCR_BANKS
const MAX_SELECT = 4; // TPM2_PCR_SELECT_MAX: 32 PCRs

// ---------------------------------------------------------------------------------------------------------------
// A bounds-checked reader

/** Reads TPM marshalling (big-endian; the PCR file is little-endian) and throws IntegrityErrors that say where. */
class Reader {
  pos = 0;
  private readonly view: DataView;
  constructor(
    private readonly bytes: Uint8Array,
    private readonly structure: string,
    private readonly littleEndian = false,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  get left(): number {
    return this.bytes.length - this.pos;
  }
  fail(code: IntegrityErrorCode, field: string, message: string, at = this.pos): never {
    // the place (byte, STRUCTURE.field) prefixes the message: see describePlace
    throw new IntegrityError(code, message, { offset: at, field: `${this.structure}.${field}` });
  }
  private need(n: number, field: string): void {
    if (n > this.left) this.fail(IntegrityErrorCode.tpmTruncated, field, `cut short: ${n} bytes needed, ${this.left} left`);
  }
  u8(field: string): number {
    this.need(1, field);
    return this.bytes[this.pos++];
  }
  u16(field: string): number {
    this.need(2, field);
    const v = this.view.getUint16(this.pos, this.littleEndian);
    this.pos += 2;
    return v;
  }
  u32(field: string): number {
    this.need(4, field);
    const v = this.view.getUint32(this.pos, this.littleEndian);
    this.pos += 4;
    return v;
  }
  u64(field: string): bigint {
    this.need(8, field);
    const v = this.view.getBigUint64(this.pos, this.littleEndian);
    this.pos += 8;
    return v;
  }
  take(n: number, field: string): Uint8Array {
    this.need(n, field);
    // a copy (Buffer#slice would be a view), as a plain Uint8Array
    const out = new Uint8Array(this.bytes.subarray(this.pos, this.pos + n));
    this.pos += n;
    return out;
  }
  skip(n: number, field: string): void {
    this.need(n, field);
    this.pos += n;
  }
  /** A TPM2B: u16 size, then that many bytes; `max` is the TPM's own limit for this type. */
  sized(field: string, max: number): Uint8Array {
    const at = this.pos;
    const size = this.u16(`${field}.size`);
    if (size > max) this.fail(IntegrityErrorCode.tpmBadStructure, `${field}.size`, `size ${size} is beyond the ${max} bytes this field may hold`, at);
    return this.take(size, field);
  }
  /** A hash algorithm id that must be one we can compute. */
  hash(field: string): HashInfo {
    const at = this.pos;
    const id = this.u16(field);
    const h = hashById(id);
    if (!h) this.fail(IntegrityErrorCode.tpmUnsupported, field, `hash algorithm ${algHex(id)} is not supported`, at);
    return h;
  }
  end(): void {
    if (this.left !== 0) this.fail(IntegrityErrorCode.tpmBadStructure, 'end', `${this.left} trailing bytes after the structure`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// TPMS_ATTEST

export interface PcrSelection {
  hashAlg: number;
  /** the bank's name, null for a hash this verifier does not know */
  bank: HashName | null;
  /** selected PCR indices, ascending */
  pcrs: number[];
}
export interface ClockInfo {
  clock: bigint;
  resetCount: number;
  restartCount: number;
  safe: number;
}
export interface QuoteInfo {
  pcrSelect: PcrSelection[];
  pcrDigest: Uint8Array;
}
export interface Attest {
  magic: number;
  type: number;
  qualifiedSigner: Uint8Array;
  extraData: Uint8Array;
  clockInfo: ClockInfo;
  firmwareVersion: bigint;
  /** present when type is TPM_ST_ATTEST_QUOTE */
  quote?: QuoteInfo;
  /** for other types: the attested union, unread (a quote verifier only needs to know it is not a quote) */
  attested?: Uint8Array;
}

function readPcrSelection(r: Reader, field: string): PcrSelection[] {
  const at = r.pos;
  const count = r.u32(`${field}.count`);
  if (count > MAX_BANKS) r.fail(IntegrityErrorCode.tpmBadStructure, `${field}.count`, `${count} banks selected, at most ${MAX_BANKS}`, at);
  const out: PcrSelection[] = [];
  for (let i = 0; i < count; i++) {
    const f = `${field}.pcrSelections[${i}]`;
    const hashAlg = r.u16(`${f}.hash`);
    const sizeAt = r.pos;
    const size = r.u8(`${f}.sizeofSelect`);
    if (size > MAX_SELECT) r.fail(IntegrityErrorCode.tpmBadStructure, `${f}.sizeofSelect`, `selection of ${size} bytes, at most ${MAX_SELECT}`, sizeAt);
    const bitmap = r.take(size, `${f}.pcrSelect`);
    out.push({ hashAlg, bank: hashById(hashAlg)?.name ?? null, pcrs: bitmapToPcrs(bitmap) });
  }
  return out;
}

/** Bit i of byte j selects PCR 8j+i. */
function bitmapToPcrs(bitmap: Uint8Array): number[] {
  const pcrs: number[] = [];
  for (let j = 0; j < bitmap.length; j++) for (let i = 0; i < 8; i++) if (bitmap[j] & (1 << i)) pcrs.push(8 * j + i);
  return pcrs;
}

/**
 * TPMS_ATTEST. Magic and type are read, not enforced: whether they are right is the verifier's `magic` and `type`
 * check. For a quote the TPMS_QUOTE_INFO is read and must end the structure exactly.
 */
export function parseAttest(bytes: Uint8Array): Attest {
  const r = new Reader(bytes, 'TPMS_ATTEST');
  const magic = r.u32('magic');
  const type = r.u16('type');
  const qualifiedSigner = r.sized('qualifiedSigner', MAX_NAME);
  const extraData = r.sized('extraData', MAX_DATA);
  const clockInfo: ClockInfo = {
    clock: r.u64('clockInfo.clock'),
    resetCount: r.u32('clockInfo.resetCount'),
    restartCount: r.u32('clockInfo.restartCount'),
    safe: 0,
  };
  const safeAt = r.pos;
  clockInfo.safe = r.u8('clockInfo.safe');
  // TPMI_YES_NO: anything but 0 or 1 is rejected by a TPM's own unmarshalling.
  if (clockInfo.safe > 1) r.fail(IntegrityErrorCode.tpmBadStructure, 'clockInfo.safe', `safe is ${clockInfo.safe}, not 0 or 1`, safeAt);
  const firmwareVersion = r.u64('firmwareVersion');
  const attest: Attest = { magic, type, qualifiedSigner, extraData, clockInfo, firmwareVersion };
  if (type === TPM_ST_ATTEST_QUOTE) {
    const pcrSelect = readPcrSelection(r, 'attested.quote.pcrSelect');
    const pcrDigest = r.sized('attested.quote.pcrDigest', MAX_DIGEST);
    r.end();
    attest.quote = { pcrSelect, pcrDigest };
  } else {
    attest.attested = r.take(r.left, 'attested');
  }
  return attest;
}

// ---------------------------------------------------------------------------------------------------------------
// TPMT_SIGNATURE

export type TpmSignature =
  | { sigAlg: number; scheme: 'rsassa' | 'rsapss'; hashAlg: number; hash: HashName; sig: Uint8Array }
  | { sigAlg: number; scheme: 'ecdsa'; hashAlg: number; hash: HashName; r: Uint8Array; s: Uint8Array };

export function parseSignature(bytes: Uint8Array): TpmSignature {
  const r = new Reader(bytes, 'TPMT_SIGNATURE');
  const sigAlg = r.u16('sigAlg');
  if (sigAlg !== TPM_ALG.rsassa && sigAlg !== TPM_ALG.rsapss && sigAlg !== TPM_ALG.ecdsa) {
    r.fail(IntegrityErrorCode.tpmUnsupported, 'sigAlg', `signature algorithm ${algHex(sigAlg)} is not supported (RSASSA, RSAPSS, ECDSA are)`, 0);
  }
  const h = r.hash('signature.hash');
  let out: TpmSignature;
  if (sigAlg === TPM_ALG.ecdsa) {
    const sr = r.sized('signature.signatureR', MAX_ECC_BYTES);
    const ss = r.sized('signature.signatureS', MAX_ECC_BYTES);
    out = { sigAlg, scheme: 'ecdsa', hashAlg: h.id, hash: h.name, r: sr, s: ss };
  } else {
    const sig = r.sized('signature.sig', MAX_RSA_BYTES);
    out = { sigAlg, scheme: sigAlg === TPM_ALG.rsassa ? 'rsassa' : 'rsapss', hashAlg: h.id, hash: h.name, sig };
  }
  r.end();
  return out;
}

function stripZeros(b: Uint8Array): Uint8Array {
  let i = 0;
  while (i < b.length && b[i] === 0) i++;
  return b.subarray(i);
}

/** r‖s, each left-padded to the curve's size (IEEE P1363); null when r or s is larger than the curve allows. */
export function ecdsaP1363(r: Uint8Array, s: Uint8Array, size: number): Uint8Array | null {
  const rr = stripZeros(r);
  const sr = stripZeros(s);
  if (rr.length > size || sr.length > size) return null;
  const out = new Uint8Array(2 * size);
  out.set(rr, size - rr.length);
  out.set(sr, 2 * size - sr.length);
  return out;
}

/** The DER ECDSA-Sig-Value (SEQUENCE of two INTEGERs) that OpenSSL and tpm2-tools' `-f plain` use. */
export function ecdsaDer(r: Uint8Array, s: Uint8Array): Uint8Array {
  const int = (v: Uint8Array): Uint8Array => {
    let x = stripZeros(v);
    if (x.length === 0) x = new Uint8Array([0]);
    const body = x[0] & 0x80 ? Buffer.concat([Buffer.from([0]), x]) : Buffer.from(x);
    return Buffer.concat([Buffer.from([0x02]), derLength(body.length), body]);
  };
  const seq = Buffer.concat([int(r), int(s)]);
  return Buffer.concat([Buffer.from([0x30]), derLength(seq.length), seq]);
}

function derLength(n: number): Uint8Array {
  if (n < 0x80) return Buffer.from([n]);
  if (n < 0x100) return Buffer.from([0x81, n]);
  return Buffer.from([0x82, n >> 8, n & 0xff]);
}

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

// ---------------------------------------------------------------------------------------------------------------
// PCR values

/** bank → PCR index → value */
export type PcrBanks = Map<HashName, Map<number, Uint8Array>>;

function bankOf(r: Reader, hashAlg: number, field: string, at: number): HashInfo {
  const h = hashById(hashAlg);
  if (!h) r.fail(IntegrityErrorCode.tpmUnsupported, field, `PCR bank ${algHex(hashAlg)} is not supported`, at);
  return h;
}

/** Puts the values, in selection order (bank by bank, ascending within a bank), into a PcrBanks map. */
function assign(r: Reader, selection: readonly PcrSelection[], values: readonly Uint8Array[], field: string): PcrBanks {
  const banks: PcrBanks = new Map();
  let i = 0;
  for (const sel of selection) {
    const bank = hashById(sel.hashAlg) as HashInfo;
    let m = banks.get(bank.name);
    if (!m) banks.set(bank.name, (m = new Map()));
    for (const pcr of sel.pcrs) {
      const v = values[i++];
      if (v.length !== bank.size) r.fail(IntegrityErrorCode.tpmBadStructure, field, `value ${i} (${bank.name}:${pcr}) has ${v.length} bytes, a ${bank.name} PCR has ${bank.size}`);
      m.set(pcr, v);
    }
  }
  return banks;
}

/**
 * tpm2-tools' serialized PCR file (`tpm2_quote -o`, `tpm2_pcrread -o`, default `-F serialized`): its in-memory
 * TPML_PCR_SELECTION and TPML_DIGEST groups, little-endian, with C padding (FORMATS.md).
 */
export function parsePcrFile(bytes: Uint8Array): PcrBanks {
  const r = new Reader(bytes, 'pcrs', true);
  const countAt = r.pos;
  const count = r.u32('TPML_PCR_SELECTION.count');
  if (count > MAX_BANKS) r.fail(IntegrityErrorCode.tpmBadStructure, 'TPML_PCR_SELECTION.count', `${count} banks selected, at most ${MAX_BANKS}`, countAt);
  const selection: PcrSelection[] = [];
  for (let i = 0; i < MAX_BANKS; i++) {
    const f = `TPML_PCR_SELECTION.pcrSelections[${i}]`;
    const hashAt = r.pos;
    const hashAlg = r.u16(`${f}.hash`);
    const sizeAt = r.pos;
    const size = r.u8(`${f}.sizeofSelect`);
    const bitmap = r.take(MAX_SELECT, `${f}.pcrSelect`);
    r.skip(1, `${f}.padding`);
    if (i >= count) continue; // unused slots: whatever memory held
    if (size > MAX_SELECT) r.fail(IntegrityErrorCode.tpmBadStructure, `${f}.sizeofSelect`, `selection of ${size} bytes, at most ${MAX_SELECT}`, sizeAt);
    const bank = bankOf(r, hashAlg, `${f}.hash`, hashAt);
    selection.push({ hashAlg, bank: bank.name, pcrs: bitmapToPcrs(bitmap.subarray(0, size)) });
  }
  const groupsAt = r.pos;
  const groups = r.u32('count');
  // Each group is 532 bytes: check the count against the file size before looping over a hostile number.
  if (groups * 532 !== r.left) {
    r.fail(groups * 532 > r.left ? IntegrityErrorCode.tpmTruncated : IntegrityErrorCode.tpmBadStructure, 'count', `${groups} TPML_DIGEST groups need ${groups * 532} bytes, ${r.left} follow`, groupsAt);
  }
  const values: Uint8Array[] = [];
  for (let g = 0; g < groups; g++) {
    const f = `TPML_DIGEST[${g}]`;
    const nAt = r.pos;
    const n = r.u32(`${f}.count`);
    if (n > 8) r.fail(IntegrityErrorCode.tpmBadStructure, `${f}.count`, `${n} digests in a group, at most 8`, nAt);
    for (let d = 0; d < 8; d++) {
      const sAt = r.pos;
      const size = r.u16(`${f}.digests[${d}].size`);
      const buf = r.take(MAX_DIGEST, `${f}.digests[${d}].buffer`);
      if (d >= n) continue;
      if (size > MAX_DIGEST) r.fail(IntegrityErrorCode.tpmBadStructure, `${f}.digests[${d}].size`, `digest of ${size} bytes, at most ${MAX_DIGEST}`, sAt);
      values.push(buf.slice(0, size));
    }
  }
  const wanted = selection.reduce((a, s) => a + s.pcrs.length, 0);
  if (values.length !== wanted) r.fail(IntegrityErrorCode.tpmBadStructure, 'TPML_DIGEST', `${values.length} PCR values for ${wanted} selected PCRs`, groupsAt);
  return assign(r, selection, values, 'TPML_DIGEST');
}

/** `-F values`: the selected PCR values concatenated, in selection order, nothing else. */
export function parsePcrValues(bytes: Uint8Array, selection: readonly PcrSelection[]): PcrBanks {
  const r = new Reader(bytes, 'pcrvalues');
  const values: Uint8Array[] = [];
  for (const sel of selection) {
    const bank = bankOf(r, sel.hashAlg, 'selection', r.pos);
    for (const pcr of sel.pcrs) values.push(r.take(bank.size, `${bank.name}:${pcr}`));
  }
  r.end();
  return assign(r, selection, values, 'values');
}

/** Lowercase hex, for reports. */
export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}
