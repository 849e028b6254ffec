/**
 * A VM's software TPM as the agent uses it (issue 5, item 4 "Evidence"): an attestation key registered once with
 * the controller, PCR 10 extended with the VM's measurement entries as IMA extends it, and quotes over the
 * controller's nonces.
 *
 * Two ways to get one (`VmTpm.start`):
 * - its own `swtpm socket` (netns lab VMs): TPM 2.0, its state in `<stateDir>/tpm`, reached over unix sockets in
 *   `stateDir` (`tpm.sock`, and `tpm.sock.ctrl` for swtpm's control channel, both mode 0600; the TCTI is
 *   `swtpm:path=<stateDir>/tpm.sock`). Unix sockets rather than loopback TCP: no port to choose and keep, and no
 *   other local user can send commands to the VM's TPM. The swtpm runs in its own process group (a Ctrl-C meant
 *   for the agent does not kill it before `stop()` shuts the TPM down in order) and does not keep the agent's
 *   event loop alive: an agent that dies without `stop()` leaves it running, and the next `start()` on the same
 *   `stateDir` attaches to it, PCRs and all.
 * - an existing TPM through a TCTI (`tcti`), e.g. `swtpm:path=/…/tpm.sock` or `swtpm:host=127.0.0.1,port=2321`.
 *   It is not stopped by `stop()`. Note that a libvirt VM's swtpm (`<tpm model='tpm-crb'><backend type='emulator'
 *   version='2.0'/></tpm>`) offers no TCTI to the host: libvirt runs `swtpm socket --daemon --ctrl
 *   type=unixio,path=/run/libvirt/qemu/swtpm/<id>-<name>-swtpm.sock,mode=0600 --tpmstate
 *   dir=/var/lib/libvirt/swtpm/<uuid>/tpm2,mode=0600 --tpm2 …` with a control channel only, and QEMU hands swtpm
 *   its data channel over that control socket (CMD_SET_DATAFD): the TPM belongs to the guest, whose firmware
 *   starts it and whose kernel extends PCR 10 (IMA). Quotes of such a VM are made inside the guest (its
 *   /dev/tpm0, as Keylime's agent does), not by the host's agent through this class.
 *
 * What survives a restart (same `stateDir`):
 * - The keys: an EK (TCG default RSA template) and an RSA-2048 restricted signing key (RSASSA, SHA-256) made
 *   under it with `tpm2_createak`, both made persistent in the TPM (`tpm2_evictcontrol`) at `ekHandle` and
 *   `akHandle`: created once, found again at every later start, so the AK registered with the controller stays.
 * - PCR 10: `stop()` sends TPM2_Shutdown(STATE) before ending swtpm, and the next start sends
 *   TPM2_Startup(STATE) (a TPM Resume: PCR values restored). Startup(CLEAR) (`tpm2_startup -c`, every PCR zero)
 *   is only sent when the TPM refuses Startup(STATE): on the first start, and after a swtpm that ended without
 *   Shutdown(STATE) (killed) — then PCR 10 is back to zero and the agent must treat the VM's list as starting
 *   anew (`startup === 'cleared'`: see the module's report for what to send). A swtpm still running is attached
 *   to without any startup (`'running'`).
 * - The quote clock. A swtpm that ended without Shutdown(STATE) comes back with `safe = 0` and a clock that may
 *   be behind what earlier quotes showed (measured here: 18 s behind after a `kill -9`), and the controller
 *   refuses both (tpm-quote.ts checkSafe, checkClock). So the highest clock this class has quoted is kept in
 *   `<stateDir>/quote-clock`, and after any startup the TPM's clock is moved forward past it and past the next
 *   NV clock update (TPM2_ClockSet, `tpm2_setclock`), which also sets `safe` again. Moving a clock forward is
 *   what a TPM allows; it never goes back.
 *
 * Commands: tpm2-tools through execFile with argument arrays (never a shell), each bounded by `timeoutMs`, all on
 * one queue per TPM (vtpm.ts SwtpmPcr, whose `exclusive()` runs the quote and the key commands in order with the
 * extends). There is no resource manager, so transient objects and sessions are flushed after every command that
 * loads one (DESIGN.md §5: else 0x902 later): after EK/AK creation. A quote with the persistent AK loads nothing
 * (measured: no transient handle, no session afterwards), so it needs no flush; a failed command is followed by a
 * flush all the same.
 *
 * Every quote is checked here with hueguard's own verifier (verifyQuote: signature by the AK, nonce, PCR digest
 * against the PCR file, safe clock) before it is returned: a quote the controller would refuse is an error here.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, closeSync, constants, existsSync, mkdirSync, openSync, readFileSync, readSync, renameSync, statSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { delimiter, join, resolve } from 'node:path';
import type { QuoteV1 } from '../api/types.ts';
import type { ImaEntry } from '../integrity/ima-entry.ts';
import { parsePcrFile } from '../integrity/tpm-pcr-file.ts';
import { loadAttestationKey, TPMA_OBJECT, type AttestationKey } from '../integrity/tpm-public.ts';
import { verifyQuote } from '../integrity/tpm-quote.ts';
import { SwtpmPcr, type PcrValues } from './vtpm.ts';

export const VmTpmErrorCode = {
  /** swtpm or tpm2-tools are not installed */
  notAvailable: 'not_available',
  /** swtpm did not start, or the TPM could not be started up */
  startFailed: 'start_failed',
  /** a TPM command failed (its tool's message says why) */
  tpmFailed: 'tpm_failed',
  /** the TPM made a quote its own key does not verify (or with an unsafe clock): not sent */
  quoteInvalid: 'quote_invalid',
  /** a bad argument (nonce, handle, state directory) */
  badArgument: 'bad_argument',
  /** the VmTpm was stopped */
  stopped: 'stopped',
} as const;
export type VmTpmErrorCode = (typeof VmTpmErrorCode)[keyof typeof VmTpmErrorCode];

export class VmTpmError extends Error {
  readonly code: VmTpmErrorCode;
  constructor(code: VmTpmErrorCode, message: string) {
    super(message);
    this.name = 'VmTpmError';
    this.code = code;
  }
}

export interface VmTpmOptions {
  /** where the TPM's state (own swtpm), its sockets, the quote clock and scratch files live; created if missing */
  stateDir: string;
  /** use this TPM instead of starting a swtpm (it is then not stopped by stop()) */
  tcti?: string;
  /** persistent handle of the EK (default 0x81010001, the TCG's RSA EK handle) */
  ekHandle?: number;
  /** persistent handle of the AK (default 0x81000a01) */
  akHandle?: number;
  /** how long one tpm2-tools command may take (default 30 s) */
  timeoutMs?: number;
  /** how long swtpm may take to listen (default 5 s) */
  startTimeoutMs?: number;
}

/** How the TPM was found at start: already running (attached), resumed (PCRs kept), cleared (PCRs zero). */
export type VmTpmStartup = 'running' | 'resumed' | 'cleared';

export const DEFAULT_EK_HANDLE = 0x81010001;
export const DEFAULT_AK_HANDLE = 0x81000a01;
const TOOLS = ['tpm2_startup', 'tpm2_shutdown', 'tpm2_createek', 'tpm2_createak', 'tpm2_evictcontrol', 'tpm2_readpublic', 'tpm2_quote', 'tpm2_pcrextend', 'tpm2_pcrread', 'tpm2_flushcontext', 'tpm2_readclock', 'tpm2_setclock'];
/** TPM2_ClockSet past one NV clock update interval (2^12 ms in the reference TPM) writes the clock and sets safe */
const CLOCK_UPDATE_INTERVAL = 4096n;
/** sun_path holds 108 bytes, the last a NUL */
const MAX_SOCKET_PATH = 107;
/** swtpm's control channel commands: CMD_INIT (a power cycle: _TPM_Init), CMD_SHUTDOWN (ends swtpm in order) */
const CMD_INIT = 2;
const CMD_SHUTDOWN = 3;

/** swtpm writes a line to its log at every client disconnect (each tpm2-tools command): kept below this size */
const MAX_LOG_BYTES = 1 << 20;

/** An executable of that name on PATH (looked up, not run: running 13 tools' --version costs ~0.5 s here). */
function onPath(name: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    try {
      accessSync(join(dir, name), constants.X_OK);
      return true;
    } catch {
      /* not in this one */
    }
  }
  return false;
}

/** Why swtpm or tpm2-tools are unusable here, or null when they are installed. */
export function vmTpmMissing(opts: { swtpm?: boolean } = {}): string | null {
  const missing = [...(opts.swtpm === false ? [] : ['swtpm']), ...TOOLS].filter((t) => !onPath(t));
  return missing.length === 0 ? null : `not installed: ${missing.join(', ')} (apt-get install swtpm tpm2-tools libtss2-tcti-swtpm0)`;
}

const hexHandle = (h: number) => `0x${h.toString(16)}`;

function connects(path: string): Promise<boolean> {
  return new Promise((res) => {
    const c = createConnection({ path });
    c.once('connect', () => {
      c.destroy();
      res(true);
    });
    c.once('error', () => res(false));
  });
}

/** One command on swtpm's control channel; resolves to its 4-byte result (0: success). */
function ctrlCommand(path: string, cmd: number, timeoutMs: number, payload: Buffer = Buffer.alloc(0)): Promise<number> {
  return new Promise((res, rej) => {
    const c = createConnection({ path });
    const timer = setTimeout(() => {
      c.destroy();
      rej(new Error(`no answer on ${path} within ${timeoutMs} ms`));
    }, timeoutMs);
    let buf = Buffer.alloc(0);
    c.once('connect', () => {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(cmd);
      c.write(Buffer.concat([b, payload]));
    });
    c.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 4) {
        clearTimeout(timer);
        c.destroy();
        res(buf.readUInt32BE(0));
      }
    });
    c.once('error', (e) => {
      clearTimeout(timer);
      rej(e);
    });
    c.once('close', () => {
      clearTimeout(timer);
      if (buf.length < 4) rej(new Error(`${path} closed without an answer`));
    });
  });
}

/** Alive and not a zombie (an orphaned swtpm that ended may wait a while for a reaper). */
function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) [ZX]/s.test(stat);
  } catch {
    return false;
  }
}

/** Keeps swtpm's log (appended to, so truncating it under swtpm is safe) below MAX_LOG_BYTES. */
function trimLog(file: string): void {
  try {
    if (statSync(file).size > MAX_LOG_BYTES) truncateSync(file, 0);
  } catch {
    /* no log yet */
  }
}

/** The log written from `offset` on (at most 4 KiB), for an error message. */
function logSince(file: string, offset: number): string {
  try {
    const fd = openSync(file, 'r');
    try {
      const buf = Buffer.alloc(4096);
      const n = readSync(fd, buf, 0, buf.length, offset);
      return buf.subarray(0, n).toString('utf8').trim();
    } finally {
      closeSync(fd);
    }
  } catch {
    return '';
  }
}

/** The pid in swtpm's pid file, if that process is alive and is the swtpm serving `socket`. */
function swtpmPid(pidFile: string, socket: string): number | null {
  try {
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    if (!Number.isSafeInteger(pid) || pid <= 1 || !pidAlive(pid)) return null;
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmdline.includes(socket) ? pid : null;
  } catch {
    return null;
  }
}

/** A signal to a process that may have ended meanwhile. */
function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* gone already */
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** tpm2_readclock's output: clock (ms, a 64-bit counter), reset/restart counts and safe. */
export function parseReadClock(text: string): { clock: bigint; resetCount: number; restartCount: number; safe: boolean } {
  const field = (k: string) => new RegExp(`^\\s*${k}:\\s*(\\S+)\\s*$`, 'm').exec(text)?.[1];
  const clock = field('clock');
  const safe = field('safe');
  if (clock === undefined || !/^\d+$/.test(clock) || safe === undefined) throw new Error(`tpm2_readclock: unexpected output: ${text.trim()}`);
  return { clock: BigInt(clock), resetCount: Number(field('reset_count') ?? 0), restartCount: Number(field('restart_count') ?? 0), safe: safe === 'yes' || safe === '1' };
}

export class VmTpm {
  /** the TCTI its commands use */
  readonly tcti: string;
  /** how the TPM was found: `cleared` means PCR 10 started from zero at this start (see the module comment) */
  readonly startup: VmTpmStartup;
  /** the keys were created at this start (a new AK: register it) */
  readonly created: boolean;
  readonly stateDir: string;
  private readonly akPublic: Buffer;
  private readonly ekPublic: Buffer;
  private readonly akKey: AttestationKey;
  private readonly akHandle: number;
  private readonly pcr: SwtpmPcr;
  private readonly own: { child: ChildProcess | null; pid: number | null; ctrl: string } | null;
  private readonly timeoutMs: number;
  private stopping: Promise<void> | null = null;

  private constructor(init: {
    tcti: string;
    startup: VmTpmStartup;
    created: boolean;
    stateDir: string;
    ak: Buffer;
    ek: Buffer;
    akHandle: number;
    pcr: SwtpmPcr;
    own: { child: ChildProcess | null; pid: number | null; ctrl: string } | null;
    timeoutMs: number;
  }) {
    this.tcti = init.tcti;
    this.startup = init.startup;
    this.created = init.created;
    this.stateDir = init.stateDir;
    this.akPublic = init.ak;
    this.ekPublic = init.ek;
    this.akKey = loadAttestationKey(init.ak);
    this.akHandle = init.akHandle;
    this.pcr = init.pcr;
    this.own = init.own;
    this.timeoutMs = init.timeoutMs;
  }

  /**
   * Starts (or attaches to) the VM's TPM, starts it up (resume when it can), creates the EK and AK the first time
   * and makes the clock safe to quote. Throws VmTpmError (not_available, start_failed, tpm_failed, bad_argument).
   */
  static async start(opts: VmTpmOptions): Promise<VmTpm> {
    const stateDir = resolve(opts.stateDir);
    const timeoutMs = opts.timeoutMs ?? 30_000;
    const ekHandle = opts.ekHandle ?? DEFAULT_EK_HANDLE;
    const akHandle = opts.akHandle ?? DEFAULT_AK_HANDLE;
    for (const [what, h] of [['ekHandle', ekHandle], ['akHandle', akHandle]] as const) {
      if (!Number.isInteger(h) || h < 0x81000000 || h > 0x81ffffff) throw new VmTpmError('bad_argument', `${what} ${h} is not a persistent handle (0x81000000–0x81ffffff)`);
    }
    if (ekHandle === akHandle) throw new VmTpmError('bad_argument', 'the EK and the AK need different handles');
    const missing = vmTpmMissing({ swtpm: opts.tcti === undefined });
    if (missing !== null) throw new VmTpmError('not_available', missing);
    mkdirSync(join(stateDir, 'work'), { recursive: true, mode: 0o700 });

    let own: { child: ChildProcess | null; pid: number | null; ctrl: string } | null = null;
    let tcti = opts.tcti;
    if (tcti === undefined) {
      const started = await startSwtpm(stateDir, opts.startTimeoutMs ?? 5000);
      own = started;
      tcti = `swtpm:path=${started.socket}`;
    }
    const pcr = new SwtpmPcr({ tcti, timeoutMs });
    try {
      const startup = await startUp(pcr);
      const keys = await ensureKeys(pcr, stateDir, ekHandle, akHandle);
      await ensureSafeClock(pcr, stateDir);
      return new VmTpm({ tcti, startup, created: keys.created, stateDir, ak: keys.ak, ek: keys.ek, akHandle, pcr, own, timeoutMs });
    } catch (e) {
      // in order when it got that far (a started TPM keeps its PCRs), else it simply ends
      if (own !== null) await endSwtpm(own, true, pcr, timeoutMs).catch(() => {});
      if (e instanceof VmTpmError) throw e;
      throw new VmTpmError('tpm_failed', (e as Error).message);
    }
  }

  /** The AK's TPM2B_PUBLIC (`tpm2_readpublic -o`): base64 of it is `{ak}` of `PUT /api/v1/vms/:name/ak`. */
  ak(): Buffer {
    return Buffer.from(this.akPublic);
  }

  /** The EK's TPM2B_PUBLIC. */
  ek(): Buffer {
    return Buffer.from(this.ekPublic);
  }

  /** The AK's TPM Name (hex), as the controller reports it after registration. */
  akName(): string {
    return Buffer.from(this.akKey.public?.name ?? []).toString('hex');
  }

  /** The pid of its own swtpm (null with an external TCTI). */
  get pid(): number | null {
    return this.own?.child?.pid ?? this.own?.pid ?? null;
  }

  /**
   * Extends PCR 10 (sha1 and sha256 banks) with the entries, in order, as IMA does (vtpm.ts SwtpmPcr: extends
   * waiting together go to one tpm2_pcrextend). A quote asked for after this call covers them.
   */
  extend(entries: readonly ImaEntry[]): Promise<void> {
    if (this.stopping !== null) return Promise.reject(new VmTpmError('stopped', 'the VM TPM was stopped'));
    return this.pcr.extendMany(entries).catch((e: Error) => {
      throw new VmTpmError('tpm_failed', e.message);
    });
  }

  /** PCR 10's value in both banks, after the extends asked for before. */
  pcr10(): Promise<PcrValues> {
    if (this.stopping !== null) return Promise.reject(new VmTpmError('stopped', 'the VM TPM was stopped'));
    return this.pcr.read().catch((e: Error) => {
      throw new VmTpmError('tpm_failed', e.message);
    });
  }

  /**
   * A quote of PCR 10 (sha256 bank) with the AK over the nonce (hex, as the controller issued it), after the extends
   * asked for before: QuoteV1 as the evidence routes take it (attest, signature, nonce, pcrs = `tpm2_quote -o`).
   * Checked with verifyQuote before it is returned (quote_invalid otherwise).
   */
  quote(nonceHex: string): Promise<QuoteV1> {
    if (this.stopping !== null) return Promise.reject(new VmTpmError('stopped', 'the VM TPM was stopped'));
    if (typeof nonceHex !== 'string' || !/^([0-9a-fA-F]{2}){1,64}$/.test(nonceHex)) {
      return Promise.reject(new VmTpmError('bad_argument', 'a nonce is 1 to 64 bytes in hex'));
    }
    const work = join(this.stateDir, 'work');
    const [msg, sig, pcrs] = ['quote.msg', 'quote.sig', 'quote.pcrs'].map((f) => join(work, f));
    return this.pcr.exclusive(async () => {
      for (const f of [msg, sig, pcrs]) if (existsSync(f)) unlinkSync(f);
      let attest: Buffer, signature: Buffer, pcrFile: Buffer;
      try {
        // the AK is persistent: tpm2_quote loads no object and opens no session, so nothing to flush after it
        await this.pcr.tool('tpm2_quote', ['-c', hexHandle(this.akHandle), '-l', 'sha256:10', '-q', nonceHex, '-g', 'sha256', '-m', msg, '-s', sig, '-o', pcrs]);
        [attest, signature, pcrFile] = [msg, sig, pcrs].map((f) => readFileSync(f));
      } catch (e) {
        await flush(this.pcr);
        throw new VmTpmError('tpm_failed', (e as Error).message);
      }
      const nonce = Buffer.from(nonceHex, 'hex');
      let r: ReturnType<typeof verifyQuote>;
      try {
        // previousClock: only the clock counts here (a reset may lower restartCount): it must not be behind a quote made before
        const previousClock = { clock: savedQuoteClock(this.stateDir), resetCount: 0, restartCount: 0 };
        r = verifyQuote({ attest, signature, ak: this.akKey, nonce, pcrs: parsePcrFile(pcrFile), previousClock });
      } catch (e) {
        throw new VmTpmError('quote_invalid', `the quote does not read: ${(e as Error).message}`);
      }
      if (!r.valid) {
        const c = r.checks.find((x) => !x.ok);
        throw new VmTpmError('quote_invalid', `the quote fails its own check (${r.failed}): ${c?.detail ?? ''}`);
      }
      saveQuoteClock(this.stateDir, r.attest.clockInfo.clock);
      if (this.own !== null) trimLog(join(this.stateDir, 'swtpm.log'));
      return { attest: attest.toString('base64'), signature: signature.toString('base64'), nonce: nonceHex, pcrs: pcrFile.toString('base64') };
    });
  }

  /**
   * A TPM Reset of its own swtpm, after the commands asked for before: Shutdown(CLEAR), a power cycle (swtpm's
   * CMD_INIT) and Startup(CLEAR). PCR 10 is zero again, the keys stay. For a VM whose measurement list starts anew
   * while its vTPM kept the old PCR 10 (the agent lost the list it had sent): then send `reboot: true` from
   * entry 0. Not for a TPM reached through an external TCTI (bad_argument).
   */
  reset(): Promise<void> {
    if (this.stopping !== null) return Promise.reject(new VmTpmError('stopped', 'the VM TPM was stopped'));
    const own = this.own;
    if (own === null) return Promise.reject(new VmTpmError('bad_argument', 'only a VmTpm that runs its own swtpm can reset it'));
    return this.pcr.exclusive(async () => {
      try {
        // in order, so that the clock stays safe across the reset
        await this.pcr.tool('tpm2_shutdown', ['-c']);
        const rc = await ctrlCommand(own.ctrl, CMD_INIT, Math.min(this.timeoutMs, 5000), Buffer.alloc(4));
        if (rc !== 0) throw new Error(`swtpm CMD_INIT answered 0x${rc.toString(16)}`);
        await this.pcr.tool('tpm2_startup', ['-c']);
        await safeClockNow(this.pcr, this.stateDir);
      } catch (e) {
        if (e instanceof VmTpmError) throw e;
        throw new VmTpmError('tpm_failed', `resetting the TPM: ${(e as Error).message}`);
      }
    });
  }

  /**
   * Waits for the commands asked for before, then (own swtpm) sends TPM2_Shutdown(STATE), so the next start
   * resumes with PCR 10 as it is, and ends swtpm. With an external TCTI it only stops taking commands.
   */
  stop(): Promise<void> {
    if (this.stopping === null) {
      this.stopping = this.own === null ? this.pcr.exclusive(async () => {}) : endSwtpm(this.own, true, this.pcr, this.timeoutMs);
    }
    return this.stopping;
  }
}

// ---- starting, stopping ------------------------------------------------------------------------------------------

/** Starts swtpm on `stateDir` or finds the one still serving it; resolves when its control channel answers. */
async function startSwtpm(stateDir: string, startTimeoutMs: number): Promise<{ child: ChildProcess | null; pid: number | null; ctrl: string; socket: string }> {
  const socket = join(stateDir, 'tpm.sock');
  const ctrl = `${socket}.ctrl`;
  const pidFile = join(stateDir, 'swtpm.pid');
  if (Buffer.byteLength(ctrl) > MAX_SOCKET_PATH) {
    throw new VmTpmError('bad_argument', `state directory ${stateDir} is too long for its unix sockets (${ctrl}: at most ${MAX_SOCKET_PATH} bytes)`);
  }
  if (socket.includes(',')) throw new VmTpmError('bad_argument', `state directory ${stateDir}: a comma cannot be in a TCTI path`);
  // a swtpm left running by an agent that died: attach to it (its TPM is started, its PCRs are as they were)
  if ((await connects(socket)) && (await connects(ctrl))) return { child: null, pid: swtpmPid(pidFile, socket), ctrl, socket };
  for (const f of [socket, ctrl]) if (existsSync(f)) unlinkSync(f);
  const tpmDir = join(stateDir, 'tpm');
  mkdirSync(tpmDir, { recursive: true, mode: 0o700 });
  const logFile = join(stateDir, 'swtpm.log');
  trimLog(logFile);
  // appended to: VmTpm may truncate it while swtpm writes (trimLog)
  const log = openSync(logFile, 'a', 0o600);
  const logStart = statSync(logFile).size;
  let child: ChildProcess;
  try {
    child = spawn(
      'swtpm',
      [
        'socket', '--tpm2',
        '--tpmstate', `dir=${tpmDir},mode=0600`,
        '--server', `type=unixio,path=${socket},mode=0600`,
        '--ctrl', `type=unixio,path=${ctrl},mode=0600`,
        '--pid', `file=${pidFile}`,
        // no CMD_INIT needed; no startup flag: tpm2_startup decides between resume and clear
        '--flags', 'not-need-init',
      ],
      // its own process group, no pipe to us: it outlives an agent that dies, until stop() or the next start
      { stdio: ['ignore', log, log], detached: true },
    );
  } finally {
    closeSync(log);
  }
  child.unref();
  let spawnError: Error | null = null;
  child.once('error', (e) => (spawnError = e));
  const deadline = Date.now() + startTimeoutMs;
  while (Date.now() < deadline && spawnError === null && child.exitCode === null && child.signalCode === null) {
    if ((await connects(ctrl)) && (await connects(socket))) return { child, pid: child.pid ?? null, ctrl, socket };
    await sleep(10);
  }
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  const why = logSince(logFile, logStart);
  const err = spawnError as Error | null;
  throw new VmTpmError('start_failed', `swtpm did not start on ${stateDir}: ${err?.message ?? (why || `exit ${child.exitCode ?? child.signalCode ?? 'none within the time allowed'}`)}`);
}

/** Ends an own swtpm: after the queued commands, Shutdown(STATE) (when `orderly`), then the control channel's CMD_SHUTDOWN. */
async function endSwtpm(own: { child: ChildProcess | null; pid: number | null; ctrl: string }, orderly: boolean, pcr: SwtpmPcr, timeoutMs: number): Promise<void> {
  let shutdownError: Error | null = null;
  await pcr.exclusive(async () => {
    if (!orderly) return;
    try {
      await pcr.tool('tpm2_shutdown', []);
    } catch (e) {
      shutdownError = e as Error;
    }
  });
  const pid = own.child?.pid ?? own.pid;
  const gone = () => (own.child !== null ? own.child.exitCode !== null || own.child.signalCode !== null : pid === null || !pidAlive(pid));
  try {
    await ctrlCommand(own.ctrl, CMD_SHUTDOWN, Math.min(timeoutMs, 5000));
  } catch {
    if (pid !== null && !gone()) signal(pid, 'SIGTERM');
  }
  const deadline = Date.now() + 5000;
  while (!gone() && Date.now() < deadline) await sleep(10);
  if (!gone() && pid !== null) {
    signal(pid, 'SIGKILL');
    while (!gone() && Date.now() < deadline + 2000) await sleep(10);
  }
  const err = shutdownError as Error | null;
  if (err !== null) throw new VmTpmError('tpm_failed', `TPM2_Shutdown(STATE) failed, PCRs will not be kept: ${err.message}`);
}

/**
 * TPM2_Startup: none when the TPM answers already (running); Startup(STATE) when it was shut down with
 * Shutdown(STATE) (a resume: PCRs kept); else Startup(CLEAR), the first time or after a disorderly end.
 */
async function startUp(pcr: SwtpmPcr): Promise<VmTpmStartup> {
  return pcr.exclusive(async () => {
    try {
      await pcr.tool('tpm2_pcrread', ['sha256:10']);
      return 'running' as const;
    } catch (e) {
      // 0x100 TPM_RC_INITIALIZE: not started up yet; anything else is a TPM we cannot use
      if (!/\b0x0*100\b/i.test((e as Error).message)) throw new VmTpmError('start_failed', (e as Error).message);
    }
    try {
      await pcr.tool('tpm2_startup', []);
      return 'resumed' as const;
    } catch {
      // TPM_RC_VALUE: no Shutdown(STATE) before (first start, or the swtpm was killed)
    }
    try {
      await pcr.tool('tpm2_startup', ['-c']);
    } catch (e) {
      throw new VmTpmError('start_failed', (e as Error).message);
    }
    return 'cleared' as const;
  });
}

async function flush(pcr: SwtpmPcr): Promise<void> {
  await pcr.tool('tpm2_flushcontext', ['-t']).catch(() => {});
  await pcr.tool('tpm2_flushcontext', ['-s']).catch(() => {});
}

/** The TPM2B_PUBLIC at a persistent handle, or null when nothing is there. */
async function readPublic(pcr: SwtpmPcr, handle: number, file: string): Promise<Buffer | null> {
  if (existsSync(file)) unlinkSync(file);
  try {
    await pcr.tool('tpm2_readpublic', ['-c', hexHandle(handle), '-o', file]);
  } catch (e) {
    // 0x18b TPM_RC_HANDLE: nothing persistent there
    if (/\b0x0*18b\b/i.test((e as Error).message)) return null;
    throw e;
  }
  return readFileSync(file);
}

/** The EK and AK, created and made persistent the first time; checks that the AK is a restricted signing key. */
async function ensureKeys(pcr: SwtpmPcr, stateDir: string, ekHandle: number, akHandle: number): Promise<{ ek: Buffer; ak: Buffer; created: boolean }> {
  return pcr.exclusive(async () => {
    const work = join(stateDir, 'work');
    const ekFile = join(work, 'ek.pub');
    const akFile = join(work, 'ak.pub');
    let created = false;
    let ek = await readPublic(pcr, ekHandle, ekFile);
    if (ek === null) {
      try {
        await pcr.tool('tpm2_createek', ['-c', hexHandle(ekHandle), '-G', 'rsa', '-u', ekFile]);
      } finally {
        await flush(pcr);
      }
      ek = readFileSync(ekFile);
    }
    let ak = await readPublic(pcr, akHandle, akFile);
    if (ak === null) {
      const ctx = join(work, 'ak.ctx');
      try {
        await pcr.tool('tpm2_createak', ['-C', hexHandle(ekHandle), '-c', ctx, '-G', 'rsa', '-g', 'sha256', '-s', 'rsassa', '-u', akFile, '-n', join(work, 'ak.name')]);
        await flush(pcr);
        await pcr.tool('tpm2_evictcontrol', ['-C', 'o', '-c', ctx, hexHandle(akHandle)]);
      } finally {
        await flush(pcr);
        if (existsSync(ctx)) unlinkSync(ctx);
      }
      ak = await readPublic(pcr, akHandle, akFile);
      if (ak === null) throw new VmTpmError('tpm_failed', `the AK made persistent at ${hexHandle(akHandle)} is not there`);
      created = true;
    }
    let key: AttestationKey;
    try {
      key = loadAttestationKey(ak);
    } catch (e) {
      throw new VmTpmError('bad_argument', `the key at ${hexHandle(akHandle)} does not read: ${(e as Error).message}`);
    }
    const a = key.public?.objectAttributes ?? 0;
    if ((a & TPMA_OBJECT.restricted) === 0 || (a & TPMA_OBJECT.sign) === 0 || (a & TPMA_OBJECT.decrypt) !== 0) {
      throw new VmTpmError('bad_argument', `the key at ${hexHandle(akHandle)} is not a restricted signing key: choose another akHandle`);
    }
    return { ek, ak, created };
  });
}

function savedQuoteClock(stateDir: string): bigint {
  try {
    const t = readFileSync(join(stateDir, 'quote-clock'), 'utf8').trim();
    return /^\d+$/.test(t) ? BigInt(t) : 0n;
  } catch {
    return 0n;
  }
}

function saveQuoteClock(stateDir: string, clock: bigint): void {
  if (clock <= savedQuoteClock(stateDir)) return;
  const file = join(stateDir, 'quote-clock');
  writeFileSync(`${file}.tmp`, `${clock}\n`, { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
}

/**
 * A clock the controller accepts: safe, and not behind the highest clock quoted before (both broken by a swtpm
 * that ended without Shutdown). TPM2_ClockSet forward past one NV update interval restores both.
 */
async function ensureSafeClock(pcr: SwtpmPcr, stateDir: string): Promise<void> {
  await pcr.exclusive(() => safeClockNow(pcr, stateDir));
}

/** ensureSafeClock, inside an exclusive task. */
async function safeClockNow(pcr: SwtpmPcr, stateDir: string): Promise<void> {
  const c = parseReadClock(await pcr.tool('tpm2_readclock', []));
  const quoted = savedQuoteClock(stateDir);
  if (c.safe && c.clock > quoted) return;
  const target = (c.clock > quoted ? c.clock : quoted) + CLOCK_UPDATE_INTERVAL + 1n;
  await pcr.tool('tpm2_setclock', [target.toString()]);
  const after = parseReadClock(await pcr.tool('tpm2_readclock', []));
  if (!after.safe || after.clock <= quoted) throw new VmTpmError('tpm_failed', `the TPM clock stays unsafe after TPM2_ClockSet (clock ${after.clock}, last quoted ${quoted})`);
}
