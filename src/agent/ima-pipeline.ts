/**
 * Replay and appraisal of one IMA measurement list on two cores: the calling thread reads and parses the list and
 * appraises each entry (the policy stays where it is); a worker thread replays the entries into the PCR — the
 * hashing, about a third of the work (DESIGN.md §6; `npm run bench:integrity` prints the split).
 *
 * Why shaped this way:
 * - The list is parsed once, here. Entries are JavaScript objects, which cannot cross threads cheaply, but what a
 *   replay needs of an entry is only bytes: its PCR, its stated template hash (a violation is all zero) and its
 *   template data, exactly as parsed. Those are packed back to back into one buffer per batch and transferred (not
 *   copied); the worker runs PcrReplay.extend over them. So the worker hashes exactly the bytes whose entries were
 *   appraised: there is one parser and nothing to keep in step. (Parsing in both threads instead costs as much as
 *   the replay itself and gained nothing: measured slower than one thread.)
 * - Flow control: at most `maxInFlight` batches wait for the worker; parsing waits beyond that, so memory stays
 *   bounded by a few batches whatever the list's size.
 * - The worker runs this same module (worker_threads, which the pure core may not use: hence src/agent). When the
 *   process runs TypeScript through tsx, the worker registers tsx before importing it. Starting it costs ~0.1–0.5 s:
 *   for short lists the one-thread loop (readImaBatches → PcrReplay → Appraiser) is quicker.
 * - Errors: a list that cannot be read fails here, with the IntegrityError readImaBatches gives, after the entries
 *   before it were appraised (and replayed); an error in the worker is rethrown here.
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import type { AppraisalFailure, Appraiser, StatusCounts } from '../integrity/appraise.ts';
import { describePlace, IntegrityError, isIntegrityError, type IntegrityErrorCode, type IntegrityPlace } from '../integrity/errors.ts';
import { templateData, type Bank } from '../integrity/ima-entry.ts';
import { readImaBatches, type ChunkSource, type ImaLogEntry, type ImaReadOptions } from '../integrity/ima-log.ts';
import { PcrReplay, type ReplaySnapshot } from '../integrity/ima-replay.ts';

export interface PipelineOptions extends ImaReadOptions {
  /** the replay state to go on from (default: a fresh PCR, entry 0) */
  replay?: ReplaySnapshot;
  /** the PCR replayed (default 10) */
  pcr?: number;
  /** the banks replayed (default both; a verifier needs only the quoted one, see ima-replay.ts) */
  banks?: readonly Bank[];
  /** batches handed to the worker and not yet replayed before parsing waits (default 4) */
  maxInFlight?: number;
}

export interface PipelineResult {
  /** entries read (and appraised, and replayed) */
  entries: number;
  /** the replay state after the last entry */
  replay: ReplaySnapshot;
  /** entries whose stated template hash was wrong (counted only when the sha1 bank is replayed) */
  templateHashMismatches: number;
  /** the appraisal of these entries: ok when none failed */
  ok: boolean;
  counts: StatusCounts;
  failures: AppraisalFailure[];
}

const ROLE = 'hueguard-ima-replay';

interface WorkerInit {
  role: typeof ROLE;
  replay?: ReplaySnapshot;
  pcr?: number;
  banks?: readonly Bank[];
}

type FromWorker =
  | { type: 'ack' }
  | { type: 'done'; entries: number; replay: ReplaySnapshot; templateHashMismatches: number }
  | { type: 'error'; integrity?: { code: IntegrityErrorCode; message: string; place: IntegrityPlace }; message: string };

/** What an error becomes to cross to the other thread. */
function errorMessage(e: unknown): FromWorker {
  if (isIntegrityError(e)) {
    const prefix = describePlace(e.place);
    const bare = e.message.startsWith(prefix) ? e.message.slice(prefix.length) : e.message;
    return { type: 'error', integrity: { code: e.code, message: bare, place: e.place }, message: e.message };
  }
  return { type: 'error', message: e instanceof Error ? (e.stack ?? e.message) : String(e) };
}

function errorFrom(m: Extract<FromWorker, { type: 'error' }>): Error {
  if (m.integrity) return new IntegrityError(m.integrity.code, m.integrity.message, m.integrity.place);
  return new Error(`IMA replay worker: ${m.message}`);
}

/** The worker's code that loads this module: registers tsx first when the process runs TypeScript through it. */
const BOOTSTRAP = `
const { workerData } = require('node:worker_threads');
(async () => {
  if (workerData.tsx) {
    const { register } = await import(workerData.tsx);
    register();
  }
  await import(workerData.module);
})().catch((e) => {
  require('node:worker_threads').parentPort.postMessage({ type: 'error', message: String(e && e.stack || e) });
});
`;

function tsxLoader(): string | null {
  if (!import.meta.url.endsWith('.ts')) return null;
  try {
    return import.meta.resolve('tsx/esm/api');
  } catch {
    return null;
  }
}

function startWorker(init: WorkerInit): Worker {
  return new Worker(BOOTSTRAP, { eval: true, workerData: { ...init, module: import.meta.url, tsx: tsxLoader() } });
}

/**
 * A batch as the worker needs it, back to back: per entry u32 PCR | template hash [20] | u32 length | template
 * data (little-endian). One buffer, transferred.
 */
function pack(batch: readonly ImaLogEntry[]): Uint8Array {
  const tds: Uint8Array[] = new Array(batch.length);
  let size = 0;
  for (let i = 0; i < batch.length; i++) {
    const e = batch[i];
    const td = e.templateDataRaw ?? templateData(e);
    tds[i] = td;
    size += 28 + td.length;
  }
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  let o = 0;
  for (let i = 0; i < batch.length; i++) {
    const e = batch[i];
    const td = tds[i];
    dv.setUint32(o, e.pcr, true);
    const th = e.templateHash;
    for (let k = 0; k < 20; k++) out[o + 4 + k] = th[k];
    dv.setUint32(o + 24, td.length, true);
    out.set(td, o + 28);
    o += 28 + td.length;
  }
  return out;
}

/**
 * Reads and parses `source` once; appraises its entries with `appraiser` (which goes on from its own state) on this
 * thread and replays them in a worker thread. Resolves when both are done; rejects with the list's IntegrityError
 * when it cannot be read (as readImaBatches would).
 */
export async function replayAndAppraise(source: ChunkSource, appraiser: Appraiser, opts: PipelineOptions = {}): Promise<PipelineResult> {
  const { replay, pcr, banks, maxInFlight = 4, ...read } = opts;
  // refuse a bad snapshot or bank here, before a thread starts
  new PcrReplay(replay, { pcr, banks });
  const worker = startWorker({ role: ROLE, replay, pcr, banks });
  let inFlight = 0;
  let wake: (() => void) | null = null;
  let workerFailure: Error | null = null;
  const poke = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  const done = new Promise<Extract<FromWorker, { type: 'done' }>>((resolve, reject) => {
    worker.on('message', (m: FromWorker) => {
      if (m.type === 'ack') inFlight--;
      else if (m.type === 'done') resolve(m);
      else {
        workerFailure = errorFrom(m);
        reject(workerFailure);
      }
      poke();
    });
    worker.on('error', (e) => {
      workerFailure = e;
      reject(e);
      poke();
    });
    worker.on('exit', (code) => {
      if (code !== 0) reject(new Error(`IMA replay worker exited with code ${code}`));
    });
  });
  done.catch(() => {}); // observed below; keeps an early rejection from being reported as unhandled

  const counts: StatusCounts = { ok: 0, excluded: 0, unknown: 0, mismatch: 0, 'bad-signature': 0 };
  const failures: AppraisalFailure[] = [];
  let entries = 0;
  try {
    for await (const batch of readImaBatches(source, read)) {
      const packed = pack(batch);
      while (inFlight >= maxInFlight && workerFailure === null) await new Promise<void>((r) => (wake = r));
      if (workerFailure !== null) throw workerFailure;
      inFlight++;
      worker.postMessage(packed, [packed.buffer as ArrayBuffer]);
      const v = appraiser.appraise(batch);
      entries += batch.length;
      for (const k of Object.keys(counts) as (keyof StatusCounts)[]) counts[k] += v.counts[k];
      for (const f of v.failures) failures.push(f);
    }
    worker.postMessage(null);
    const r = await done;
    if (r.entries !== entries) throw new Error(`IMA replay worker replayed ${r.entries} entries, ${entries} were appraised`);
    return { entries, replay: r.replay, templateHashMismatches: r.templateHashMismatches, ok: failures.length === 0, counts, failures };
  } finally {
    await worker.terminate();
  }
}

// ---- the worker ---------------------------------------------------------------------------------------------------

function runWorker(init: WorkerInit): void {
  const port = parentPort!;
  try {
    const r = new PcrReplay(init.replay, { pcr: init.pcr, banks: init.banks });
    let entries = 0;
    let mismatches = 0;
    // one entry object, refilled: PcrReplay.extend reads its pcr, templateHash and templateDataRaw
    const e: ImaLogEntry = { pcr: 0, template: 'ima-ng', templateHash: new Uint8Array(20), digestAlg: '', digest: new Uint8Array(0), name: '', templateDataRaw: new Uint8Array(0) };
    port.on('message', (m: Uint8Array | null) => {
      try {
        if (m === null) {
          port.postMessage({ type: 'done', entries, replay: r.snapshot(), templateHashMismatches: mismatches } satisfies FromWorker);
          return;
        }
        const dv = new DataView(m.buffer, m.byteOffset, m.byteLength);
        for (let o = 0; o < m.length; ) {
          const len = dv.getUint32(o + 24, true);
          e.pcr = dv.getUint32(o, true);
          e.templateHash = m.subarray(o + 4, o + 24);
          e.templateDataRaw = m.subarray(o + 28, o + 28 + len);
          if (!r.extend(e)) mismatches++;
          entries++;
          o += 28 + len;
        }
        port.postMessage({ type: 'ack' } satisfies FromWorker);
      } catch (err) {
        port.postMessage(errorMessage(err));
      }
    });
  } catch (err) {
    port.postMessage(errorMessage(err));
  }
}

if (!isMainThread && (workerData as Partial<WorkerInit> | null)?.role === ROLE) runWorker(workerData as WorkerInit);
