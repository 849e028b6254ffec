/**
 * What a TPM signs and how it signs it (FORMATS.md, "TPM 2.0 quotes"): TPMS_ATTEST, with the TPMS_QUOTE_INFO of a
 * quote, and TPMT_SIGNATURE. Read with tpm-marshal.ts's bounds-checked reader.
 */
import { IntegrityErrorCode } from './errors.ts';
import {
  algHex,
  bitmapToPcrs,
  hashById,
  MAX_BANKS,
  MAX_DATA,
  MAX_DIGEST,
  MAX_ECC_BYTES,
  MAX_NAME,
  MAX_RSA_BYTES,
  MAX_SELECT,
  Reader,
  TPM_ALG,
  type HashName,
  type PcrSelection,
} from './tpm-marshal.ts';

/** TPM_GENERATED_VALUE: what a TPM puts first in everything it signs, so a restricted key never signs a forgery. */
export const TPM_GENERATED_VALUE = 0xff544347;
/** TPM_ST_ATTEST_QUOTE */
export const TPM_ST_ATTEST_QUOTE = 0x8018;

// ---------------------------------------------------------------------------------------------------------------
// TPMS_ATTEST

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
