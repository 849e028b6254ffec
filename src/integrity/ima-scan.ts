/**
 * Replay and appraisal of a streamed IMA list in one pass, with an optional injected ImaScanner that takes runs of
 * ordinary ascii lines in one call each (the native one: native/ima_scan.cc, loaded by src/agent/ima-native.ts).
 *
 * Why shaped this way:
 * - Per entry, the JavaScript path spends ~2 µs parsing, ~2 µs hashing and ~1.5 µs looking the path up in a Map of
 *   a million paths (`npm run bench:integrity` prints the split): 1 M entries/s needs the bytes handled outside
 *   JavaScript, a chunk per call. The core does no native loading itself (DESIGN.md §3), so the scanner comes in
 *   as an argument; without one this is readImaBatches → PcrReplay → Appraiser, as before.
 * - The scanner takes only lines it handles exactly as ima-log.ts does and stops at any other one; ima-log.ts's
 *   AsciiSplitter parses that line (its errors, line and entry numbers are the only ones), then asks the scanner
 *   again. Carried partial lines, limits and binary lists stay JavaScript's.
 * - It writes no objects: per entry five numbers (SCAN_STRIDE) — where the line and the name are in the chunk, and
 *   flags — while it extends PcrReplay's own scratch buffers and looks the path and digest up in the Appraiser's
 *   DigestTable. JavaScript then makes one string per entry (the excludes are regular expressions) and an entry
 *   object only where the rules need one: boot_aggregate, a non-ASCII name, and every failure.
 * - The scanner may hash on another thread while JavaScript appraises; the fast lane calls sync() before it returns,
 *   so PcrReplay's buffers are whole again before the JavaScript parser or anything else touches them, and no
 *   hashing is left pending across an await (two lists may be read at once).
 */
import type { AppraisalFailure, Appraiser, StatusCounts } from './appraise.ts';
import type { Bank } from './ima-entry.ts';
import { readImaBatches, type AsciiFastLane, type ChunkSource, type ImaLogEntry, type ImaReadOptions } from './ima-log.ts';
import { IMA_PCR, PcrReplay, type ReplaySnapshot } from './ima-replay.ts';

/**
 * scanAscii: scans the complete lines of buf[start..end) from `start` (a line start) while each is an ordinary
 * one: `ima-ng` or unsigned `ima-sig`, a sha1/sha256/sha384/sha512 digest of the right size, not a violation, no
 * CR, at most `maxLine` bytes, fields exactly as parseAsciiLine accepts them; stops at the first other line, at
 * `end`, or when `out` is full. Each line taken is replayed as PcrReplay.extend does: if `s1` (40 bytes,
 * `[PCR | scratch]`), the SHA-1 of its template data is compared with the stated hash and, for PCR `pcrIndex`,
 * extended into s1; if `s256` (64 bytes) and PCR `pcrIndex`, its SHA-256 is extended into s256. The hashing may go
 * on after the call returns (on another thread): s1/s256 hold the running values only after sync(), which must
 * come before anything else reads or extends them, and before a scan with other buffers. With `slots`/`arena` (a
 * DigestTable) it looks the name's bytes up with the digest. It writes SCAN_STRIDE numbers per line to `out`: line
 * start, line end (its "\n"), name start, name end, flags (SCAN_NON_ASCII | lookup result << SCAN_LOOKUP_SHIFT:
 * LOOKUP_OK/UNKNOWN/MISMATCH of digest-table.ts, or 3 when not looked up). Returns the number of lines taken.
 * `buf` must be shorter than 2^31 bytes.
 */
export interface ImaScanner {
  /** what it is, for reports (e.g. "native, OpenSSL SHA-256 (SHA-NI)") */
  readonly description: string;
  /** Finishes the replay of the lines scanned since the last sync; returns how many had a wrong stated hash. */
  sync(): number;
  scanAscii(
    buf: Uint8Array,
    start: number,
    end: number,
    maxLine: number,
    pcrIndex: number,
    s1: Uint8Array | null,
    s256: Uint8Array | null,
    slots: Int32Array | null,
    arena: Uint8Array | null,
    out: Int32Array,
  ): number;
}

export const SCAN_STRIDE = 5;
export const SCAN_NON_ASCII = 2;
export const SCAN_LOOKUP_SHIFT = 4;
export const SCAN_NOT_LOOKED_UP = 3;

/** Lines per scanner call: the columns stay small (80 KiB) and the call cost is spread thin. */
const SCAN_BATCH = 4096;

export interface StreamOptions extends ImaReadOptions {
  /** the replay state to go on from (default: a fresh PCR, entry 0) */
  replay?: ReplaySnapshot;
  /** the PCR replayed (default 10) */
  pcr?: number;
  /** the banks replayed (default both; a verifier needs only the quoted one, see ima-replay.ts) */
  banks?: readonly Bank[];
  /** the fast lane; absent: the JavaScript path alone */
  scanner?: ImaScanner | null;
}

export interface StreamResult {
  /** entries read (and appraised, and replayed) */
  entries: number;
  /** of which the scanner took */
  scanned: number;
  /** the replay state after the last entry */
  replay: ReplaySnapshot;
  /** entries whose stated template hash was wrong (counted only when the sha1 bank is replayed) */
  templateHashMismatches: number;
  /** the appraisal of these entries (when an appraiser was given): ok when none failed */
  ok: boolean;
  counts: StatusCounts;
  failures: AppraisalFailure[];
}

/** Consumes entries in list order, from the JavaScript parser (objects) and from the scanner (columns). */
class Sink implements AsciiFastLane {
  next = 0;
  entries = 0;
  scanned = 0;
  mismatches = 0;
  readonly counts: StatusCounts = { ok: 0, excluded: 0, unknown: 0, mismatch: 0, 'bad-signature': 0 };
  readonly failures: AppraisalFailure[] = [];
  private readonly cols = new Int32Array(SCAN_BATCH * SCAN_STRIDE);
  /** line starts to leave to JavaScript before asking the scanner again, after it declined `streak` in a row */
  private skip = 0;
  private streak = 0;

  constructor(
    private readonly replay: PcrReplay,
    private readonly appraiser: Appraiser | null,
    private readonly scanner: ImaScanner | null,
  ) {}

  objects(batch: readonly ImaLogEntry[]): void {
    if (batch.length === 0) return;
    for (let i = 0; i < batch.length; i++) if (!this.replay.extend(batch[i])) this.mismatches++;
    this.entries += batch.length;
    if (this.appraiser === null) return;
    const v = this.appraiser.appraise(batch);
    for (const k of Object.keys(v.counts) as (keyof StatusCounts)[]) this.counts[k] += v.counts[k];
    for (const f of v.failures) this.failures.push(f);
  }

  take(b: Buffer, pos: number, pending: ImaLogEntry[], maxLine: number): number {
    const scanner = this.scanner!;
    const st = this.replay.batchState();
    if (st === null || b.length > 0x7fffffff) return 0;
    // a list of lines the scanner declines (signed ima-sig, ima-buf, legacy ima) would otherwise cost a call and a
    // one-entry appraisal per line: back off exponentially while it declines
    if (this.skip > 0) {
      this.skip--;
      return 0;
    }
    if (pending.length > 0) {
      this.objects(pending);
      pending.length = 0;
    }
    const table = this.appraiser?.digestTable() ?? null;
    const cols = this.cols;
    let taken = 0;
    try {
      for (;;) {
        const n = scanner.scanAscii(b, pos, b.length, maxLine, this.replay.pcrIndex, st.s1, st.s256, table?.slots ?? null, table?.arena ?? null, cols);
        if (n === 0) break;
        this.replay.advance(n);
        this.appraiser?.appraiseScanned(b, cols, n, this.counts, this.failures);
        taken += n;
        pos = cols[(n - 1) * SCAN_STRIDE + 1] + 1;
        if (n < SCAN_BATCH) break;
      }
    } finally {
      // before the JavaScript parser extends the same buffers, and before any await
      this.mismatches += scanner.sync();
    }
    if (taken === 0) this.skip = Math.min(64, 2 ** ++this.streak - 1);
    else this.streak = 0;
    this.entries += taken;
    this.scanned += taken;
    this.next = pos;
    return taken;
  }
}

/**
 * Reads `source` once, replays every entry and appraises it with `appraiser` (which goes on from its own state;
 * null: replay only). With a scanner the ordinary lines of an ascii list go through it; the result is the same
 * either way. Rejects with the list's IntegrityError when it cannot be read, after the entries before the bad one
 * were replayed and appraised (as readImaBatches yields them).
 */
export async function replayAndAppraiseStream(source: ChunkSource, appraiser: Appraiser | null, opts: StreamOptions = {}): Promise<StreamResult> {
  const { replay: from, pcr = IMA_PCR, banks, scanner = null, ...read } = opts;
  const replay = new PcrReplay(from, { pcr, banks });
  const sink = new Sink(replay, appraiser, scanner);
  for await (const batch of readImaBatches(source, read, scanner === null ? undefined : sink)) sink.objects(batch);
  return {
    entries: sink.entries,
    scanned: sink.scanned,
    replay: replay.snapshot(),
    templateHashMismatches: sink.mismatches,
    ok: sink.failures.length === 0,
    counts: sink.counts,
    failures: sink.failures,
  };
}
