/**
 * PCR values as tpm2-tools writes them (FORMATS.md): its serialized PCR file (`-F serialized`, the default) and
 * plain values (`-F values`), into a map bank → PCR → value.
 */
import { IntegrityErrorCode } from './errors.ts';
import { algHex, bitmapToPcrs, hashById, MAX_BANKS, MAX_DIGEST, MAX_SELECT, Reader, type HashInfo, type HashName, type PcrSelection } from './tpm-marshal.ts';

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
