/**
 * Loads hueguard's native IMA scanner (native/ima_scan.cc, built by `npm ci` through the root "install" script) and
 * hands it to the core as an ImaScanner. The core never loads it itself (DESIGN.md §3: no native code or process
 * I/O in the pure core); without it everything runs in JavaScript, with the same results.
 *
 * HUEGUARD_NATIVE=0 turns it off (to compare, or to rule it out).
 */
import { open } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import type { ImaScanner } from '../integrity/ima-scan.ts';

interface Addon {
  abi: number;
  shaNi: boolean;
  scanAscii(...args: [...Parameters<ImaScanner['scanAscii']>, threaded: boolean]): number;
  sync(): number;
  digest(alg: 1 | 256, data: Uint8Array): Buffer;
  murmur3(data: Uint8Array): number;
  /** measure-read.ts's lookPacked for the files it can answer exactly; the others come back "again" */
  lookPacked(paths: string, hints: string): { meta: ArrayBuffer; digests: ArrayBuffer; templates: ArrayBuffer; errors: Record<number, string> };
}

export interface NativeStatus {
  loaded: boolean;
  /** where it was loaded from, or why not */
  detail: string;
  shaNi?: boolean;
}

const ADDON = fileURLToPath(new URL('../../native/build/Release/hueguard_ima.node', import.meta.url));

let cached: { addon: Addon | null; status: NativeStatus } | undefined;

function load(): { addon: Addon | null; status: NativeStatus } {
  if (cached !== undefined) return cached;
  if (process.env.HUEGUARD_NATIVE === '0') {
    cached = { addon: null, status: { loaded: false, detail: 'turned off (HUEGUARD_NATIVE=0)' } };
    return cached;
  }
  try {
    const addon = createRequire(import.meta.url)(ADDON) as Addon;
    if (addon.abi !== 3 || typeof addon.scanAscii !== 'function') throw new Error('an addon of another version: run `npm run build:native`');
    cached = { addon, status: { loaded: true, detail: ADDON, shaNi: addon.shaNi } };
  } catch (e) {
    cached = { addon: null, status: { loaded: false, detail: (e as Error).message.split('\n')[0] } };
  }
  return cached;
}

/**
 * The native scanner, or null when it is not built, cannot load, or is turned off. `threaded` (default: when the
 * machine has two cores or more) hashes on a thread of the addon's own while JavaScript appraises.
 */
export function nativeImaScanner(opts: { threaded?: boolean } = {}): ImaScanner | null {
  const { addon, status } = load();
  if (addon === null) return null;
  const threaded = opts.threaded ?? (os.availableParallelism?.() ?? os.cpus().length) > 1;
  const scan = addon.scanAscii;
  return {
    description: `native (OpenSSL from node${status.shaNi ? ', CPU has SHA-NI' : ''}; hashing ${threaded ? 'on a second thread' : 'inline'})`,
    sync: addon.sync,
    scanAscii: (buf, start, end, maxLine, pcrIndex, s1, s256, slots, arena, out) => scan(buf, start, end, maxLine, pcrIndex, s1, s256, slots, arena, out, threaded),
  };
}

/** Whether the addon loaded, and from where or why not. */
export function nativeImaStatus(): NativeStatus {
  return load().status;
}

/** The addon's own functions, for tests (its hashing against node:crypto, its hash against digest-table.ts). */
export function nativeImaAddon(): Pick<Addon, 'digest' | 'murmur3' | 'lookPacked'> | null {
  return load().addon;
}

/** The addon's file, for worker threads to load it (null: not built, will not load, or turned off). */
export function nativeAddonPath(): string | null {
  return load().addon === null ? null : ADDON;
}

/**
 * A file's bytes in chunks read into two buffers that take turns (the next read runs while the caller handles the
 * current chunk), for readers that do not keep chunks (readImaBatches copies what it keeps). Unlike
 * fs.createReadStream, which allocates every chunk anew, nothing is left for the GC: at 256 KiB chunks that is
 * ~10 MB less peak RSS while a million-entry list streams through the native scanner.
 */
export async function* fileChunks(path: string, chunkSize = 256 * 1024): AsyncGenerator<Buffer> {
  const fh = await open(path, 'r');
  try {
    const bufs = [Buffer.allocUnsafeSlow(chunkSize), Buffer.allocUnsafeSlow(chunkSize)];
    let turn = 0;
    let next = fh.read(bufs[0], 0, chunkSize, null);
    for (;;) {
      const { bytesRead } = await next;
      if (bytesRead === 0) return;
      const cur = bufs[turn];
      turn ^= 1;
      next = fh.read(bufs[turn], 0, chunkSize, null);
      yield cur.subarray(0, bytesRead);
    }
  } finally {
    await fh.close();
  }
}
