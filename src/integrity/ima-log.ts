/**
 * Reading IMA measurement lists (FORMATS.md "ascii_runtime_measurements line" and "binary_runtime_measurements
 * record") into ImaEntry values, from a string, a buffer or a stream of chunks.
 *
 * Why it is shaped this way:
 * - Lists are large (hundreds of thousands of entries on a busy host) and arrive as file streams, so the reader
 *   works on bytes, keeps at most one partial line or record between chunks, and checks every length field against
 *   a cap and against what is left *before* allocating: memory is bounded by the largest entry, never by the log.
 * - The template data is what the TPM was extended with, so each entry carries it (`templateDataRaw`) as the kernel
 *   hashed it: copied from a binary record, or rebuilt once from an ascii line while its fields are decoded (no
 *   second pass through templateData(), no string re-encoding of names; a name that is not valid UTF-8 still
 *   hashes right). Each entry's bytes `[template hash | template data]` are copied out of the input (a source may
 *   reuse its chunks) and its templateHash/digest/sig/buf/templateDataRaw are views into that copy.
 * - Hot path (≈1 µs an entry here, against ≈2 µs for each node:crypto hash a replay needs): no regular
 *   expressions, hex through a two-digit lookup table, fields and lines found with Buffer.indexOf (native).
 */
import { IntegrityError, IntegrityErrorCode } from './errors.ts';
import type { ImaEntry, TemplateName } from './ima-entry.ts';

export type ImaFormat = 'ascii' | 'binary';

/** An entry as read from a list: the template data exactly as hashed (see the module comment). */
export type ImaLogEntry = ImaEntry & { templateDataRaw?: Uint8Array };

export interface ImaReadOptions {
  /** the list's format; detected from the first bytes when absent */
  format?: ImaFormat;
  /** longest ascii line accepted (bytes, without the newline); default 64 KiB */
  maxLineBytes?: number;
  /** largest binary template data accepted (bytes); default 16 MiB */
  maxRecordBytes?: number;
}

/** What a list can be read from: fs.createReadStream, any async iterable of chunks, or an array of them. */
export type ChunkSource = AsyncIterable<Uint8Array | string> | Iterable<Uint8Array | string>;

/** Real lines are < 3 KiB (an ima-buf holding an X.509 key); 64 KiB leaves room and stops a runaway line early. */
export const DEFAULT_MAX_LINE_BYTES = 64 * 1024;
export const DEFAULT_MAX_RECORD_BYTES = 16 * 1024 * 1024;

/** Digest sizes of the kernel's hash_algo_name[] (include/crypto/hash_info.h): what a `d-ng` prefix may say. */
export const DIGEST_SIZES: ReadonlyMap<string, number> = new Map([
  ['md4', 16], ['md5', 16], ['sha1', 20], ['rmd160', 20], ['sha256', 32], ['sha384', 48], ['sha512', 64],
  ['sha224', 28], ['rmd128', 16], ['rmd256', 32], ['rmd320', 40], ['wp256', 32], ['wp384', 48], ['wp512', 64],
  ['tgr128', 16], ['tgr160', 20], ['tgr192', 24], ['sm3', 32], ['streebog256', 32], ['streebog512', 64],
  ['sha3-256', 32], ['sha3-384', 48], ['sha3-512', 64],
]);

/** The kernel records a violation's digest as 20 zero bytes whatever the algorithm (IMA_DIGEST_SIZE). */
const VIOLATION_DIGEST_SIZE = 20;

// ---- small byte helpers -----------------------------------------------------------------------------------------

const HEX = new Int8Array(256).fill(-1);
for (let i = 0; i < 10; i++) HEX[48 + i] = i;
for (let i = 0; i < 6; i++) HEX[97 + i] = HEX[65 + i] = 10 + i;
/** Two hex digits → their byte (or -1), indexed by `hi << 8 | lo`: one lookup per byte instead of two. */
const HEX2 = new Int16Array(65536).fill(-1);
for (let hi = 0; hi < 256; hi++) {
  if (HEX[hi] < 0) continue;
  for (let lo = 0; lo < 256; lo++) if (HEX[lo] >= 0) HEX2[(hi << 8) | lo] = (HEX[hi] << 4) | HEX[lo];
}

/** Decodes src[s..e) (even length) into dst at o; false on a non-hex digit. */
function hexInto(src: Uint8Array, s: number, e: number, dst: Uint8Array, o: number): boolean {
  let bad = 0;
  for (let i = s; i < e; i += 2) {
    const v = HEX2[(src[i] << 8) | src[i + 1]];
    bad |= v;
    dst[o++] = v;
  }
  return bad >= 0;
}

function putU32(b: Uint8Array, o: number, n: number): number {
  b[o] = n & 0xff;
  b[o + 1] = (n >>> 8) & 0xff;
  b[o + 2] = (n >>> 16) & 0xff;
  b[o + 3] = n >>> 24;
  return o + 4;
}

/** The kernel writes host order; real logs come from little-endian hosts (x86, arm). */
function getU32(b: Uint8Array, o: number): number {
  return (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16)) + b[o + 3] * 0x1000000;
}

/** Short copies: a loop beats Buffer.copy's native call for the ~50-byte names of a list. */
function copyBytes(src: Uint8Array, s: number, e: number, dst: Uint8Array, o: number): void {
  if (e - s > 64) dst.set(src.subarray(s, e), o);
  else for (let i = s; i < e; i++) dst[o++] = src[i];
}

function isZero(b: Uint8Array, s: number, e: number): boolean {
  for (let i = s; i < e; i++) if (b[i] !== 0) return false;
  return true;
}

function asBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

/** The template name in b[s..e) without building a string; null when it is not one of the four. */
function templateAt(b: Uint8Array, s: number, e: number): TemplateName | null {
  const n = e - s;
  if (n < 3 || b[s] !== 0x69 || b[s + 1] !== 0x6d || b[s + 2] !== 0x61) return null; // "ima"
  if (n === 3) return 'ima';
  if (b[s + 3] !== 0x2d) return null; // "-"
  if (n === 6 && b[s + 4] === 0x6e && b[s + 5] === 0x67) return 'ima-ng';
  if (n !== 7) return null;
  if (b[s + 4] === 0x73 && b[s + 5] === 0x69 && b[s + 6] === 0x67) return 'ima-sig';
  if (b[s + 4] === 0x62 && b[s + 5] === 0x75 && b[s + 6] === 0x66) return 'ima-buf';
  return null;
}

/** Algorithm names are few: reuse the two common strings instead of decoding them on every entry. */
function algAt(b: Buffer, s: number, e: number): string {
  const n = e - s;
  if (n === 6 && b[s] === 0x73 && b[s + 3] === 0x32 && b[s + 4] === 0x35 && b[s + 5] === 0x36 && b[s + 1] === 0x68 && b[s + 2] === 0x61) return 'sha256';
  if (n === 4 && b[s] === 0x73 && b[s + 1] === 0x68 && b[s + 2] === 0x61 && b[s + 3] === 0x31) return 'sha1';
  return b.toString('latin1', s, e);
}

/** Buffer#toString goes through two wrappers per call; the native slice is a third of an entry's string cost. */
const utf8Slice = (Buffer.prototype as unknown as { utf8Slice?: (this: Buffer, s: number, e: number) => string }).utf8Slice;
/** b[s..e) as UTF-8 (invalid sequences as U+FFFD): how every name is decoded. */
export function utf8(b: Buffer, s: number, e: number): string {
  return utf8Slice !== undefined ? utf8Slice.call(b, s, e) : b.toString('utf8', s, e);
}

const latin1Slice = (Buffer.prototype as unknown as { latin1Slice?: (this: Buffer, s: number, e: number) => string }).latin1Slice;
/** b[s..e) known to be ASCII: the same string as utf8() gives, without decoding (a third cheaper). */
export function ascii(b: Buffer, s: number, e: number): string {
  return latin1Slice !== undefined ? latin1Slice.call(b, s, e) : b.toString('latin1', s, e);
}

function shown(b: Buffer, s: number, e: number): string {
  return JSON.stringify(b.toString('latin1', s, Math.min(e, s + 40)) + (e - s > 40 ? '…' : ''));
}

/** Whether a digest of `size` bytes fits `alg`; a violation may carry 20 zero bytes under any algorithm. */
function digestSizeError(alg: string, size: number, violation: boolean, zero: boolean): string | null {
  const want = DIGEST_SIZES.get(alg);
  if (want === undefined) return `unknown digest algorithm ${JSON.stringify(alg.slice(0, 40))}`;
  if (size === want || (violation && zero && size === VIOLATION_DIGEST_SIZE)) return null;
  return `a ${alg} digest has ${want} bytes, this one has ${size}`;
}

/**
 * Entries are carved out of shared 16 KiB slabs, as Buffer.allocUnsafe does from its pool but without a Buffer object
 * per entry (creating typed arrays is most of the per-entry cost). reserve(n) makes `arena[at .. at+n)` writable.
 * A kept entry keeps its slab alive: at most 16 KiB, like Buffer's own 8 KiB pool.
 */
const SLAB = 16 * 1024;
let arena = new Uint8Array(0);
let arenaNext = 0;
function reserve(n: number): number {
  if (n > SLAB / 4) {
    arena = new Uint8Array(n);
    arenaNext = n;
    return 0;
  }
  if (arenaNext + n > arena.length) {
    arena = new Uint8Array(SLAB);
    arenaNext = 0;
  }
  const at = arenaNext;
  arenaNext = (at + n + 7) & ~7;
  return at;
}

/** The entry whose `[template hash | template data]` is arena[at .. at+size); offsets are from `at`. */
function makeEntry(
  pcr: number,
  template: TemplateName,
  at: number,
  size: number,
  alg: string,
  dOff: number,
  dLen: number,
  name: string,
  xOff: number,
  xLen: number,
): ImaLogEntry {
  const ab = arena.buffer;
  const e: ImaLogEntry = {
    pcr,
    template,
    templateHash: new Uint8Array(ab, at, 20),
    digestAlg: alg,
    digest: new Uint8Array(ab, at + dOff, dLen),
    name,
    templateDataRaw: new Uint8Array(ab, at + 20, size - 20),
  };
  if (template === 'ima-sig') e.sig = new Uint8Array(ab, at + xOff, xLen);
  else if (template === 'ima-buf') e.buf = new Uint8Array(ab, at + xOff, xLen);
  return e;
}

// ---- ascii lines ------------------------------------------------------------------------------------------------

const FIELDS: Record<TemplateName, string> = { ima: '5', 'ima-ng': '5', 'ima-sig': '5 or 6', 'ima-buf': '6' };

function lineError(code: IntegrityErrorCode, message: string, line: number, entry: number): IntegrityError {
  return new IntegrityError(code, message, { line, entry });
}

function fieldCountError(b: Buffer, s: number, e: number, t: TemplateName, line: number, entry: number): IntegrityError {
  let n = 1;
  for (let i = s; i < e; i++) if (b[i] === 0x20) n++;
  return lineError(IntegrityErrorCode.imaBadLine, `${n} space-separated fields, ${t} has ${FIELDS[t]}`, line, entry);
}

/**
 * One ascii line in b[s..e) (no newline). `"%2d "` pads one-digit PCRs with a leading space; a trailing `\r` is
 * tolerated; an unsigned ima-sig line is accepted with or without its trailing space (copies often lose it).
 * Exported for the appraiser's fast lane, which rebuilds the entry of a scanned line only when it needs one.
 */
export function parseAsciiRange(b: Buffer, s: number, e: number, line: number, entry: number): ImaLogEntry {
  const BAD = IntegrityErrorCode.imaBadLine;
  if (e > s && b[e - 1] === 0x0d) e--;
  let i = s;
  while (i < e && b[i] === 0x20) i++;
  const pcrStart = i;
  let pcr = 0;
  for (; i < e; i++) {
    const c = b[i] - 48;
    if (c < 0 || c > 9) break;
    pcr = pcr * 10 + c;
  }
  if (i === pcrStart || i - pcrStart > 10 || pcr > 0xffffffff || i >= e || b[i] !== 0x20) {
    throw lineError(BAD, `the line does not start with a PCR number and a space: ${shown(b, s, e)}`, line, entry);
  }
  const th = ++i;
  if (e - th < 41 || b[th + 40] !== 0x20) throw lineError(BAD, 'the template hash is not 40 hex digits followed by a space', line, entry);
  i = th + 41;
  const tn = i;
  while (i < e && b[i] !== 0x20) i++;
  const template = templateAt(b, tn, i);
  if (template === null) throw lineError(IntegrityErrorCode.imaUnknownTemplate, `unknown template ${shown(b, tn, i)}`, line, entry);
  if (i >= e) throw fieldCountError(b, s, e, template, line, entry);
  // digest field: `alg:hex`, or bare 40 hex for the legacy `ima` template
  const df = ++i;
  let alg = 'sha1';
  let hex = df;
  let colon = -1;
  if (template !== 'ima') {
    while (i < e && b[i] !== 0x3a && b[i] !== 0x20) i++;
    if (i >= e || b[i] !== 0x3a) throw lineError(BAD, `the file digest ${shown(b, df, i)} has no "alg:" prefix`, line, entry);
    colon = i;
    alg = algAt(b, df, colon);
    hex = colon + 1;
  }
  i = b.indexOf(0x20, hex); // native memchr: the hex digest and the name are the long fields
  if (i < 0 || i > e) i = e;
  const dfEnd = i;
  if ((dfEnd - hex) & 1) throw lineError(BAD, 'the file digest has an odd number of hex digits', line, entry);
  const dLen = (dfEnd - hex) >> 1;
  if (i >= e) throw fieldCountError(b, s, e, template, line, entry);
  // name: no spaces (the kernel turned them into `_`), so it ends at the next space
  const ns = ++i;
  i = b.indexOf(0x20, ns);
  if (i < 0 || i > e) i = e;
  const nEnd = i;
  if (nEnd === ns) throw lineError(BAD, 'empty name field', line, entry);
  let xs = e;
  let xe = e;
  if (template === 'ima' || template === 'ima-ng') {
    if (i < e) throw fieldCountError(b, s, e, template, line, entry);
  } else if (i < e) {
    xs = ++i;
    while (i < e && b[i] !== 0x20) i++;
    xe = i;
    if (i < e) throw fieldCountError(b, s, e, template, line, entry);
    if ((xe - xs) & 1) throw lineError(BAD, `the ${template === 'ima-sig' ? 'signature' : 'buffer'} has an odd number of hex digits`, line, entry);
  } else if (template === 'ima-buf') {
    throw fieldCountError(b, s, e, template, line, entry);
  }
  const nameLen = nEnd - ns;
  const xLen = (xe - xs) >> 1;
  const algLen = colon - df;
  const dngLen = algLen + 2 + dLen;
  let tdLen: number;
  if (template === 'ima') {
    if (nameLen > 255) throw lineError(BAD, `an ima-template name has at most 255 bytes, this one has ${nameLen}`, line, entry);
    tdLen = 20 + 256;
  } else {
    tdLen = 8 + dngLen + nameLen + 1 + (template === 'ima-ng' ? 0 : 4 + xLen);
  }
  const size = 20 + tdLen;
  const at = reserve(size);
  const out = arena;
  if (!hexInto(b, th, th + 40, out, at)) throw lineError(BAD, 'the template hash is not hex', line, entry);
  let o = at + 20;
  if (template !== 'ima') {
    o = putU32(out, o, dngLen);
    copyBytes(b, df, colon, out, o);
    o += algLen;
    out[o++] = 0x3a;
    out[o++] = 0;
  }
  const dOff = o;
  if (!hexInto(b, hex, dfEnd, out, o)) throw lineError(BAD, 'the file digest is not hex', line, entry);
  const sizeErr = digestSizeError(alg, dLen, isZero(out, at, at + 20), isZero(out, dOff, dOff + dLen));
  if (sizeErr !== null) throw lineError(BAD, sizeErr, line, entry);
  o += dLen;
  let xOff = at;
  if (template === 'ima') {
    copyBytes(b, ns, nEnd, out, o);
    out.fill(0, o + nameLen, o + 256);
  } else {
    o = putU32(out, o, nameLen + 1);
    copyBytes(b, ns, nEnd, out, o);
    o += nameLen;
    out[o++] = 0;
    if (template !== 'ima-ng') {
      xOff = putU32(out, o, xLen);
      if (!hexInto(b, xs, xe, out, xOff)) throw lineError(BAD, `the ${template === 'ima-sig' ? 'signature' : 'buffer'} is not hex`, line, entry);
    }
  }
  return makeEntry(pcr, template, at, size, alg, dOff - at, dLen, utf8(b, ns, nEnd), xOff - at, xLen);
}

/**
 * One line of `ascii_runtime_measurements` (a trailing newline is ignored). `lineNo` (1-based) names the line in
 * errors; the entry number given is the same, as for a list without blank lines.
 */
export function parseAsciiLine(line: string, lineNo: number, opts: Pick<ImaReadOptions, 'maxLineBytes'> = {}): ImaLogEntry {
  const max = opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  // string length (UTF-16 units) never exceeds the UTF-8 byte length: refuse before encoding a huge string
  if (line.length > max + 2) throw lineError(IntegrityErrorCode.imaTooLarge, `line longer than ${max} bytes`, lineNo, lineNo);
  const b = Buffer.from(line, 'utf8');
  let e = b.length;
  if (e > 0 && b[e - 1] === 0x0a) e--;
  if (e > max) throw lineError(IntegrityErrorCode.imaTooLarge, `line of ${e} bytes, longer than ${max}`, lineNo, lineNo);
  return parseAsciiRange(b, 0, e, lineNo, lineNo);
}

// ---- binary records ---------------------------------------------------------------------------------------------

/**
 * Parses binary records out of one buffer. parse() returns the entry, or — when the record does not fit in what is
 * left — how many bytes from the record's start are needed to go on (so a stream can wait for exactly that).
 */
class BinaryRecords {
  /** absolute byte offset of buffer index 0 in the whole list */
  base = 0;
  entryNo = 0;
  /** where the last parsed record ended (buffer index) */
  next = 0;
  constructor(private readonly maxRecord: number) {}

  private fail(code: IntegrityErrorCode, at: number, message: string): IntegrityError {
    return new IntegrityError(code, message, { entry: this.entryNo + 1, offset: this.base + at });
  }

  parse(b: Buffer, off: number, end: number): ImaLogEntry | number {
    const BAD = IntegrityErrorCode.imaBadRecord;
    if (end - off < 28) return 28;
    const pcr = getU32(b, off);
    const tnLen = getU32(b, off + 24);
    // the kernel's template names are short ("ima-sig"); a large value is garbage, not a long name to wait for
    if (tnLen === 0 || tnLen > 255) throw this.fail(BAD, off + 24, `template name length ${tnLen}`);
    let p = off + 28;
    if (end - p < tnLen + 4) return p + tnLen + 4 - off;
    const template = templateAt(b, p, p + tnLen);
    if (template === null) throw this.fail(IntegrityErrorCode.imaUnknownTemplate, p, `unknown template ${shown(b, p, p + tnLen)}`);
    p += tnLen;
    const violation = isZero(b, off + 4, off + 24);
    if (template === 'ima') return this.legacy(b, off, p, end, pcr);
    const dataLen = getU32(b, p);
    if (dataLen > this.maxRecord) throw this.fail(IntegrityErrorCode.imaTooLarge, p, `template data length ${dataLen}, above the limit of ${this.maxRecord}`);
    const ds = p + 4;
    const de = ds + dataLen;
    if (de > end) return de - off;
    // walk the template fields inside [ds, de): each a u32 length and its bytes
    let q = ds;
    const field = (what: string): number => {
      if (de - q < 4) throw this.fail(BAD, q, `the template data ends before the ${what} field`);
      const n = getU32(b, q);
      if (n > de - q - 4) throw this.fail(BAD, q, `${what} field length ${n}, beyond the template data (${de - q - 4} bytes left)`);
      q += 4;
      return n;
    };
    const dngLen = field('d-ng');
    const dng = q;
    let colon = dng;
    while (colon < dng + dngLen && b[colon] !== 0x3a) colon++;
    if (colon + 1 >= dng + dngLen || b[colon + 1] !== 0) throw this.fail(BAD, dng, 'the d-ng field has no "alg:" NUL prefix');
    const alg = algAt(b, dng, colon);
    const dLen = dng + dngLen - colon - 2;
    const sizeErr = digestSizeError(alg, dLen, violation, isZero(b, colon + 2, dng + dngLen));
    if (sizeErr !== null) throw this.fail(BAD, dng, sizeErr);
    q += dngLen;
    const nLen = field('n-ng');
    const ns = q;
    if (nLen === 0 || b[ns + nLen - 1] !== 0) throw this.fail(BAD, ns, 'the n-ng name is not NUL-terminated');
    q += nLen;
    let xs = q;
    let xLen = 0;
    if (template !== 'ima-ng') {
      xLen = field(template === 'ima-sig' ? 'sig' : 'buf');
      xs = q;
      q += xLen;
    }
    if (q !== de) throw this.fail(BAD, q, `${de - q} bytes after the last field of ${template}`);
    const at = reserve(20 + dataLen);
    copyBytes(b, off + 4, off + 24, arena, at);
    copyBytes(b, ds, de, arena, at + 20);
    this.next = de;
    this.entryNo++;
    const r = 20 - ds; // record index → offset in the entry's bytes
    return makeEntry(pcr, template, at, 20 + dataLen, alg, colon + 2 + r, dLen, utf8(b, ns, ns + nLen - 1), xs + r, xLen);
  }

  /** `ima`: digest[20] | u32 len | name (unpadded); its template data pads the name to 256 bytes. */
  private legacy(b: Buffer, off: number, p: number, end: number, pcr: number): ImaLogEntry | number {
    if (end - p < 24) return p + 24 - off;
    const nLen = getU32(b, p + 20);
    if (nLen === 0 || nLen > 255) throw this.fail(IntegrityErrorCode.imaBadRecord, p + 20, `ima-template name length ${nLen} (1 to 255)`);
    const ns = p + 24;
    if (end - ns < nLen) return ns + nLen - off;
    const at = reserve(20 + 276);
    const out = arena;
    copyBytes(b, off + 4, off + 24, out, at);
    copyBytes(b, p, p + 20, out, at + 20);
    copyBytes(b, ns, ns + nLen, out, at + 40);
    out.fill(0, at + 40 + nLen, at + 40 + 256);
    this.next = ns + nLen;
    this.entryNo++;
    return makeEntry(pcr, 'ima', at, 20 + 276, 'sha1', 20, 20, utf8(b, ns, ns + nLen), 0, 0);
  }
}

// ---- splitting a byte stream ------------------------------------------------------------------------------------

/**
 * A fast lane for runs of ordinary ascii lines (ima-scan.ts). `take` is called at each line start of a chunk with
 * the entries parsed before that line and not yet consumed (it consumes them first, to keep the order); it consumes
 * the complete lines from `pos` on that it handles, sets `next` to the byte after the last one's newline and returns
 * how many it took (0: the line at `pos` is left to the JavaScript parser, with its errors and numbering).
 */
export interface AsciiFastLane {
  take(b: Buffer, pos: number, pending: ImaLogEntry[], maxLineBytes: number): number;
  next: number;
}

/** Turns chunks into entries; keeps only the unfinished line or record between chunks. */
interface Splitter {
  /** appends the entries completed by this chunk to `out` (and those before a failure, then throws) */
  push(chunk: Buffer, out: ImaLogEntry[]): void;
  /** the input is over: a partial last line is parsed, a partial record is an error */
  end(out: ImaLogEntry[]): void;
}

class AsciiSplitter implements Splitter {
  private carry: Buffer[] = [];
  private carryLen = 0;
  private lineNo = 0;
  private entryNo = 0;
  constructor(
    private readonly max: number,
    private readonly fast?: AsciiFastLane,
  ) {}

  private tooLarge(len: number): IntegrityError {
    return lineError(IntegrityErrorCode.imaTooLarge, `line of ${len}${len > this.max ? '' : '+'} bytes, longer than ${this.max}`, this.lineNo + 1, this.entryNo + 1);
  }

  private line(b: Buffer, s: number, e: number, out: ImaLogEntry[]): void {
    if (e - s > this.max + 1) throw this.tooLarge(e - s);
    this.lineNo++;
    if (e === s || (e === s + 1 && b[s] === 0x0d)) return; // blank lines (a final newline, CRLF files) carry nothing
    this.entryNo++;
    out.push(parseAsciiRange(b, s, e, this.lineNo, this.entryNo));
  }

  push(chunk: Buffer, out: ImaLogEntry[]): void {
    let pos = 0;
    if (this.carryLen > 0) {
      const nl = chunk.indexOf(10);
      if (nl < 0) {
        this.keep(chunk);
        return;
      }
      if (this.carryLen + nl > this.max + 1) throw this.tooLarge(this.carryLen + nl);
      this.carry.push(chunk.subarray(0, nl));
      const whole = Buffer.concat(this.carry, this.carryLen + nl);
      this.carry = [];
      this.carryLen = 0;
      this.line(whole, 0, whole.length, out);
      pos = nl + 1;
    }
    const fast = this.fast;
    for (;;) {
      if (fast !== undefined && pos < chunk.length) {
        const n = fast.take(chunk, pos, out, this.max);
        if (n > 0) {
          this.lineNo += n;
          this.entryNo += n;
          pos = fast.next;
          if (pos >= chunk.length) break;
        }
      }
      const nl = chunk.indexOf(10, pos);
      if (nl < 0) break;
      this.line(chunk, pos, nl, out);
      pos = nl + 1;
    }
    if (pos < chunk.length) this.keep(chunk.subarray(pos));
  }

  /** Copies (the source may reuse its chunk) and fails as soon as the unfinished line passes the limit. */
  private keep(part: Buffer): void {
    this.carryLen += part.length;
    if (this.carryLen > this.max + 1) throw this.tooLarge(this.carryLen);
    this.carry.push(Buffer.from(part));
  }

  end(out: ImaLogEntry[]): void {
    if (this.carryLen === 0) return;
    const whole = Buffer.concat(this.carry, this.carryLen);
    this.carry = [];
    this.carryLen = 0;
    this.line(whole, 0, whole.length, out);
  }
}

class BinarySplitter implements Splitter {
  private readonly records: BinaryRecords;
  private carry: Buffer[] = [];
  private carryLen = 0;
  /** bytes the carried record needs before parsing it again is worth a concat */
  private need = 0;
  constructor(maxRecord: number) {
    this.records = new BinaryRecords(maxRecord);
  }

  push(chunk: Buffer, out: ImaLogEntry[]): void {
    let b = chunk;
    if (this.carryLen > 0) {
      this.carryLen += chunk.length;
      if (this.carryLen < this.need) {
        // one concat per record, not one per chunk; a copy, since the source may reuse its chunk
        this.carry.push(Buffer.from(chunk));
        return;
      }
      this.carry.push(chunk);
      b = Buffer.concat(this.carry, this.carryLen);
      this.carry = [];
      this.carryLen = 0;
    }
    const r = this.records;
    let off = 0;
    while (off < b.length) {
      const got = r.parse(b, off, b.length);
      if (typeof got === 'number') {
        this.need = got;
        break;
      }
      out.push(got);
      off = r.next;
    }
    r.base += off;
    if (off < b.length) {
      const rest = Buffer.from(b.subarray(off));
      this.carry = [rest];
      this.carryLen = rest.length;
    }
  }

  end(): void {
    if (this.carryLen === 0) return;
    const r = this.records;
    throw new IntegrityError(
      IntegrityErrorCode.imaTruncated,
      `the list ends inside a record: it needs at least ${this.need} bytes, ${this.carryLen} are left`,
      { entry: r.entryNo + 1, offset: r.base },
    );
  }
}

function splitter(format: ImaFormat, opts: ImaReadOptions, fast?: AsciiFastLane): Splitter {
  return format === 'ascii'
    ? new AsciiSplitter(opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES, fast)
    : new BinarySplitter(opts.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES);
}

// ---- public API -------------------------------------------------------------------------------------------------

/**
 * The format of a list from its first bytes. A binary list starts with a u32 PCR number (< 65536, so its upper two
 * bytes are 0 — never so in text); an ascii list with an optional space and a decimal PCR number. An empty head is
 * ascii (an empty list either way).
 */
export function detectImaFormat(head: Uint8Array): ImaFormat {
  if (head.length === 0) return 'ascii';
  if (head.length >= 4 && head[2] === 0 && head[3] === 0) return 'binary';
  if (head.length >= 4 && head[0] === 0 && head[1] === 0) {
    throw new IntegrityError(IntegrityErrorCode.imaUnknownFormat, 'a big-endian binary list: only little-endian lists are read', { offset: 0 });
  }
  let i = 0;
  while (i < head.length && head[i] === 0x20) i++;
  if (i < head.length && head[i] >= 0x30 && head[i] <= 0x39 && !head.subarray(0, 64).includes(0)) return 'ascii';
  throw new IntegrityError(IntegrityErrorCode.imaUnknownFormat, 'neither an ascii nor a binary IMA measurement list', { offset: 0 });
}

/** All entries of a list held in memory (a string is an ascii list). */
export function parseImaLog(data: Uint8Array | string, opts: ImaReadOptions = {}): ImaLogEntry[] {
  const b = typeof data === 'string' ? Buffer.from(data, 'utf8') : asBuffer(data);
  const s = splitter(opts.format ?? (typeof data === 'string' ? 'ascii' : detectImaFormat(b.subarray(0, 64))), opts);
  const out: ImaLogEntry[] = [];
  s.push(b, out);
  s.end(out);
  return out;
}

/**
 * The entries of a list read as a stream (e.g. fs.createReadStream), one array per chunk: an async step per chunk
 * rather than per entry (each await costs about as much as parsing an entry). Entries completed before a failure
 * are yielded before the error is thrown, so a caller sees exactly how far the list was good. With `fast` (an
 * ascii list only), the lines it takes are not yielded: it consumed them, in order with the yielded ones.
 */
export async function* readImaBatches(
  source: ChunkSource,
  opts: ImaReadOptions = {},
  fast?: AsciiFastLane,
): AsyncGenerator<ImaLogEntry[]> {
  let s: Splitter | undefined = opts.format === undefined ? undefined : splitter(opts.format, opts, fast);
  let head: Buffer[] = [];
  let headLen = 0;
  let failure: unknown;
  const feed = (b: Buffer, out: ImaLogEntry[], end: boolean): void => {
    try {
      if (b.length > 0) s!.push(b, out);
      if (end) s!.end(out);
    } catch (e) {
      failure = e;
    }
  };
  for await (const chunk of source) {
    let b = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : asBuffer(chunk);
    if (s === undefined) {
      // detection wants a few dozen bytes; a stream may hand them over in pieces (and reuse its chunks)
      head.push(Buffer.from(b));
      headLen += b.length;
      if (headLen < 64) continue;
      b = Buffer.concat(head, headLen);
      head = [];
      s = splitter(detectImaFormat(b.subarray(0, 64)), opts, fast);
    }
    const out: ImaLogEntry[] = [];
    feed(b, out, false);
    if (out.length > 0) yield out;
    if (failure !== undefined) throw failure;
  }
  let last = Buffer.alloc(0);
  if (s === undefined) {
    if (headLen === 0) return;
    last = Buffer.concat(head, headLen);
    s = splitter(detectImaFormat(last), opts, fast);
  }
  const out: ImaLogEntry[] = [];
  feed(last, out, true);
  if (out.length > 0) yield out;
  if (failure !== undefined) throw failure;
}

/** The entries of a list read as a stream, one by one (see readImaBatches). */
export async function* readImaEntries(source: ChunkSource, opts: ImaReadOptions = {}): AsyncGenerator<ImaLogEntry> {
  for await (const batch of readImaBatches(source, opts)) yield* batch;
}
