/**
 * One IMA measurement-list entry, whatever list it came from (ascii, binary, or hueguard's own measurer), and the
 * template data the kernel hashes for it (FORMATS.md, "Template data"): the bytes from which the template hash
 * (SHA-1) and every PCR bank's extend value are computed.
 */
import { createHash } from 'node:crypto';

export type TemplateName = 'ima' | 'ima-ng' | 'ima-sig' | 'ima-buf';
export const TEMPLATES: readonly TemplateName[] = ['ima', 'ima-ng', 'ima-sig', 'ima-buf'];

/** PCR banks hueguard replays. */
export type Bank = 'sha1' | 'sha256';
export const BANK_SIZE: Record<Bank, number> = { sha1: 20, sha256: 32 };

export interface ImaEntry {
  /** the PCR this entry extends (10 for IMA) */
  pcr: number;
  template: TemplateName;
  /** SHA-1 of the template data, as the list states it (all zero for a violation) */
  templateHash: Uint8Array;
  /** the file digest's algorithm (`sha1` for the legacy `ima` template) */
  digestAlg: string;
  /** the file (or buffer) digest; all zero for a violation */
  digest: Uint8Array;
  /** the path, or the buffer's name (`boot_aggregate`, `.ima`, `dm_table_load`, …) */
  name: string;
  /** ima-sig: the `security.ima` signature, empty when unsigned */
  sig?: Uint8Array;
  /** ima-buf: the measured buffer */
  buf?: Uint8Array;
}

/** An all-zero template hash marks a violation (ToMToU, open-writers): the kernel extends all-0xFF instead. */
export function isViolation(e: ImaEntry): boolean {
  // a loop, not every(): this runs for each entry appraised
  const h = e.templateHash;
  for (let i = 0; i < h.length; i++) if (h[i] !== 0) return false;
  return true;
}

function u32le(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
}

/** `"<alg>:" 0x00 digest`: the d-ng field. */
function dng(alg: string, digest: Uint8Array): Uint8Array {
  const prefix = Buffer.from(`${alg}:\0`, 'latin1');
  return Buffer.concat([prefix, digest]);
}

/** The template data of an entry: exactly the bytes the kernel hashes. */
export function templateData(e: ImaEntry): Uint8Array {
  if (e.template === 'ima') {
    // digest[20] || name NUL-padded to 256 bytes, no length fields
    const name = Buffer.alloc(256);
    Buffer.from(e.name, 'utf8').copy(name, 0, 0, 255);
    return Buffer.concat([e.digest, name]);
  }
  const d = dng(e.digestAlg, e.digest);
  const n = Buffer.concat([Buffer.from(e.name, 'utf8'), Buffer.from([0])]);
  const parts: Uint8Array[] = [u32le(d.length), d, u32le(n.length), n];
  if (e.template === 'ima-sig') {
    const sig = e.sig ?? new Uint8Array(0);
    parts.push(u32le(sig.length), sig);
  } else if (e.template === 'ima-buf') {
    const buf = e.buf ?? new Uint8Array(0);
    parts.push(u32le(buf.length), buf);
  }
  return Buffer.concat(parts);
}

/** SHA-1 of the template data: the list's second column. */
export function computeTemplateHash(e: ImaEntry): Uint8Array {
  return createHash('sha1').update(templateData(e)).digest();
}

/** What the kernel extends bank B with for this entry: B-hash(template data), or all-0xFF for a violation. */
export function extendValue(e: ImaEntry, bank: Bank): Uint8Array {
  if (isViolation(e)) return new Uint8Array(BANK_SIZE[bank]).fill(0xff);
  return createHash(bank).update(templateData(e)).digest();
}

const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

/**
 * The entry as a line of `ascii_runtime_measurements` (FORMATS.md): `%2d` PCR, template hash, template name, then
 * each field; `ima` prints its digest bare, the others `alg:hex`; an ima-sig's empty signature still prints its
 * space. What hueguard's measurer writes thus reads back with any IMA tool, hueguard's own included.
 */
export function formatAsciiLine(e: ImaEntry): string {
  const pcr = String(e.pcr).padStart(2, ' ');
  const digest = e.template === 'ima' ? hex(e.digest) : `${e.digestAlg}:${hex(e.digest)}`;
  let line = `${pcr} ${hex(e.templateHash)} ${e.template} ${digest} ${e.name}`;
  if (e.template === 'ima-sig') line += ` ${hex(e.sig ?? new Uint8Array(0))}`;
  else if (e.template === 'ima-buf') line += ` ${hex(e.buf ?? new Uint8Array(0))}`;
  return line;
}
