/**
 * Extending PCR 10 of a (v)TPM with measurement entries, through tpm2-tools (a swtpm for a VM, or any TCTI).
 *
 * Each entry extends every bank with that bank's hash of its template data (`extendValue`, FORMATS.md): the sha1
 * bank gets the template hash, the sha256 bank sha256(template data), a violation all-0xFF. Commands run with
 * execFile and argument arrays, never through a shell.
 *
 * Extends are queued in order. Extends waiting together go to one `tpm2_pcrextend` call (it applies its
 * arguments in order), so a caller that does not await each extend (`void pcr.extend(e).catch(report)`) pays one
 * process per batch rather than one per entry. `read()` waits for the extends queued before it.
 *
 * tpm2_pcrextend and tpm2_pcrread create no transient objects or sessions, so nothing needs flushing between
 * them even without a resource manager (DESIGN.md §5; commands that load keys do).
 *
 * Other commands on the same TPM (a quote, key creation: vm-tpm.ts) go through the same queue with `exclusive()`,
 * so that one TPM sees one command at a time and a quote comes after the extends queued before it.
 */
import { execFile } from 'node:child_process';
import { extendValue, type Bank, type ImaEntry } from '../integrity/ima-entry.ts';

export interface SwtpmPcrOptions {
  /** the TCTI, e.g. `swtpm:host=127.0.0.1,port=2321` */
  tcti: string;
  /** the PCR to extend (default 10, IMA's) */
  pcr?: number;
  /** the banks to extend and read (default sha1 and sha256) */
  banks?: Bank[];
  /** how long one tpm2-tools command may take (default 30 s) */
  timeoutMs?: number;
}

export type PcrValues = Record<Bank, Uint8Array>;

/** Most entries one tpm2_pcrextend call takes (its arguments stay far below any argv limit). */
const MAX_BATCH = 256;

type Op =
  | { kind: 'extend'; arg: string; resolve: () => void; reject: (e: Error) => void }
  | { kind: 'read'; resolve: (v: PcrValues) => void; reject: (e: Error) => void }
  | { kind: 'task'; run: () => Promise<void> };

export class SwtpmPcr {
  private readonly tcti: string;
  private readonly pcr: number;
  private readonly banks: Bank[];
  private readonly timeoutMs: number;
  private readonly ops: Op[] = [];
  private draining = false;

  constructor(opts: SwtpmPcrOptions) {
    this.tcti = opts.tcti;
    this.pcr = opts.pcr ?? 10;
    this.banks = opts.banks ?? ['sha1', 'sha256'];
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    if (!Number.isInteger(this.pcr) || this.pcr < 0 || this.pcr > 23) throw new RangeError(`PCR ${this.pcr} does not exist`);
  }

  /** Extend the PCR with one entry: `tpm2_pcrextend 10:sha1=<hex>,sha256=<hex>`. */
  extend(entry: ImaEntry): Promise<void> {
    const values = this.banks.map((b) => `${b}=${Buffer.from(extendValue(entry, b)).toString('hex')}`).join(',');
    return new Promise((resolve, reject) => {
      this.ops.push({ kind: 'extend', arg: `${this.pcr}:${values}`, resolve, reject });
      void this.drain();
    });
  }

  /** Extend with several entries, in order. */
  async extendMany(entries: Iterable<ImaEntry>): Promise<void> {
    await Promise.all([...entries].map((e) => this.extend(e)));
  }

  /** The PCR's value in each bank, once the extends queued before have been applied. */
  read(): Promise<PcrValues> {
    return new Promise((resolve, reject) => {
      this.ops.push({ kind: 'read', resolve, reject });
      void this.drain();
    });
  }

  /**
   * Run `fn` alone on the TPM: after every operation queued before it (extends included), before any queued
   * after it. Inside, run tools with `tool()`; do not call extend/read/exclusive and await them (they would wait
   * for this task: a deadlock).
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.ops.push({ kind: 'task', run: () => Promise.resolve().then(fn).then(resolve, reject) });
      void this.drain();
    });
  }

  /** Run one tpm2-tools command on this TPM (`-T` added), bounded by the timeout; resolves to its stdout. */
  tool(name: string, args: string[], opts: { cwd?: string } = {}): Promise<string> {
    return this.run(name, args, opts.cwd);
  }

  private async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.ops.length > 0) {
        const op = this.ops[0];
        if (op.kind === 'task') {
          this.ops.shift();
          await op.run().catch(() => {}); // its outcome went to its own promise
          continue;
        }
        if (op.kind === 'read') {
          this.ops.shift();
          await this.readNow().then(op.resolve, op.reject);
          continue;
        }
        let n = 0;
        while (n < this.ops.length && n < MAX_BATCH && this.ops[n].kind === 'extend') n++;
        const batch = this.ops.splice(0, n) as Extract<Op, { kind: 'extend' }>[];
        try {
          await this.run('tpm2_pcrextend', batch.map((b) => b.arg));
          for (const b of batch) b.resolve();
        } catch (e) {
          const err = e as Error;
          const what = `${batch.length} entr${batch.length === 1 ? 'y' : 'ies'}`;
          err.message = `extending PCR ${this.pcr} with ${what} failed (some may have been applied): ${err.message}`;
          for (const b of batch) b.reject(err);
        }
      }
    } finally {
      this.draining = false;
    }
  }

  private async readNow(): Promise<PcrValues> {
    const out = await this.run('tpm2_pcrread', [this.banks.map((b) => `${b}:${this.pcr}`).join('+')]);
    return parsePcrRead(out, this.pcr, this.banks);
  }

  private run(tool: string, args: string[], cwd?: string): Promise<string> {
    return new Promise((resolve, reject) => {
      execFile(tool, ['-T', this.tcti, ...args], { timeout: this.timeoutMs, encoding: 'utf8', cwd }, (err, stdout, stderr) => {
        if (err) {
          const timedOut = (err as { killed?: boolean }).killed === true;
          reject(new Error(`${tool}: ${timedOut ? `no answer within ${this.timeoutMs} ms` : (stderr || err.message).trim()}`));
        } else resolve(stdout);
      });
    });
  }
}

/**
 * tpm2_pcrread's YAML-like output:
 *   sha1:
 *     10: 0x2DD4…
 *   sha256:
 *     10: 0x153D…
 */
export function parsePcrRead(text: string, pcr: number, banks: Bank[]): PcrValues {
  const found: Partial<PcrValues> = {};
  let bank: string | undefined;
  for (const line of text.split('\n')) {
    const head = /^\s*(\w+):\s*$/.exec(line);
    if (head) {
      bank = head[1];
      continue;
    }
    const value = /^\s*(\d+)\s*:\s*0x([0-9A-Fa-f]+)\s*$/.exec(line);
    if (value && Number(value[1]) === pcr && bank !== undefined && (banks as string[]).includes(bank)) {
      found[bank as Bank] = Buffer.from(value[2], 'hex');
    }
  }
  for (const b of banks) if (found[b] === undefined) throw new Error(`tpm2_pcrread did not report ${b}:${pcr}`);
  return found as PcrValues;
}
