/**
 * TPM 2.0 marshalling, shared by the structure readers (tpm-attest.ts, tpm-public.ts, tpm-pcr-file.ts): the
 * algorithm tables, the TPM's size limits, a bounds-checked big-endian reader, PCR selections and ECDSA (r, s)
 * encodings. Input comes from the machine being attested, so it is hostile: every size is checked against what is
 * left before reading, and every failure is an IntegrityError naming the structure, the field and the byte offset —
 * never a RangeError from a DataView.
 *
 * Parsed objects copy the bytes they keep, so a caller reusing its buffer does not change them afterwards.
 */
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

/** Lowercase hex, for reports. */
export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

/** Limits from tpm2-tss (TPM2_MAX_*): what a TPM2B may hold. A larger size is corruption, not a bigger key. */
export const MAX_DIGEST = 64;
export const MAX_NAME = 2 + MAX_DIGEST; // TPMU_NAME: a TPMT_HA
export const MAX_DATA = 2 + MAX_DIGEST; // TPMU_HA + alg
export const MAX_RSA_BYTES = 512;
export const MAX_ECC_BYTES = 128;
export const MAX_BANKS = 16; // TPM2_NUM_PCR_BANKS
export const MAX_SELECT = 4; // TPM2_PCR_SELECT_MAX: 32 PCRs

// ---------------------------------------------------------------------------------------------------------------
// A bounds-checked reader

/** Reads TPM marshalling (big-endian; the PCR file is little-endian) and throws IntegrityErrors that say where. */
export class Reader {
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
// PCR selections (TPMS_PCR_SELECTION, in a quote and in a PCR file)

export interface PcrSelection {
  hashAlg: number;
  /** the bank's name, null for a hash this verifier does not know */
  bank: HashName | null;
  /** selected PCR indices, ascending */
  pcrs: number[];
}

/** Bit i of byte j selects PCR 8j+i. */
export function bitmapToPcrs(bitmap: Uint8Array): number[] {
  const pcrs: number[] = [];
  for (let j = 0; j < bitmap.length; j++) for (let i = 0; i < 8; i++) if (bitmap[j] & (1 << i)) pcrs.push(8 * j + i);
  return pcrs;
}

// ---------------------------------------------------------------------------------------------------------------
// ECDSA signatures: (r, s) as P1363 and as DER

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
