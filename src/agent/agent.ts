/**
 * The host agent (DESIGN.md §4): registers its host, reports its VMs, keeps and enforces the host's plan, measures
 * its VMs and sends the evidence, reports what the data plane dropped, and answers libvirt's hook.
 *
 * Fail closed and keep going without the controller:
 * - At start, before anything else, the last plan it saved is enforced again (a table someone edited is repaired);
 *   with no saved plan, an empty one: every port dropped until the controller says otherwise.
 * - A plan that cannot be applied leaves the last good one in force; the failure is reported.
 * - Evidence is appended to a file per VM before it is sent, and sent from where the controller stands (its
 *   `evidence_out_of_order` answer says where): an unreachable controller loses nothing; nothing is opened while
 *   it is away (only a plan opens flows).
 * - A hook's `prepare` is answered from the controller's admission; no answer means deny.
 */
import { appendFileSync, closeSync, existsSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { dirname, join } from 'node:path';
import type { BlockedV1, HostEvidenceRequestV1, PlanV1, ReportedVmV1, VmEvidenceV1, VmResourceV1 } from '../api/types.ts';
import { formatAsciiLine, type ImaEntry } from '../integrity/ima-entry.ts';
import { parseAsciiLine } from '../integrity/ima-log.ts';
import { Measurer, measureDomainXml, measureImage, pathEntry } from '../integrity/measure.ts';
import { ControllerClient, controllerStatus } from './controller-client.ts';
import type { Driver, VmInfo } from './driver.ts';
import { sameEnforced, type DropCount, type Enforcer } from './enforcer.ts';
import { AgentError } from './errors.ts';
import { VmTpm } from './vm-tpm.ts';
import type { HookAnswerV1, HookRequestV1 } from './hook-protocol.ts';

export interface AgentOptions {
  controller: ControllerClient;
  host: string;
  /** the host's label (null: the policy's bootstrap label) */
  hostLabel: string | null;
  driver: Driver;
  enforcer: Enforcer;
  /** where the last plan, the evidence queues and the measurers' states are kept */
  stateDir: string;
  /** the unix socket the hook talks to (null: none) */
  socket: string | null;
  /** reads the label and resources from a domain XML a hook passes (libvirt); default: ask the driver */
  domainFacts?: (xml: string) => { label: string | null; resources: VmResourceV1[] } | null;
  /** a heartbeat evidence request at least this often (ms, default 2000) */
  reportMs?: number;
  /** drop counters are read and reported this often (ms, default 2000) */
  dropsMs?: number;
  /** gather new entries this long before sending (ms, default 5) */
  batchMs?: number;
  log?: (line: string) => void;
}

interface VmTrack {
  name: string;
  measurer: Measurer | null;
  /** every entry measured so far, as ascii lines (also in the VM's queue file) */
  lines: string[];
  /** how many of them the controller has */
  sent: number;
  /** the list started anew (a restart of the VM): the next request says `reboot` */
  reboot: boolean;
  /** the timer that reads the guest's own IMA list, if it has one */
  imaTail?: NodeJS.Timeout;
  /** measured as running (launch entries taken, watchers on) */
  running: boolean;
  /**
   * the first pass is complete: nothing is sent before, because the controller enrolls a VM's golden fingerprint
   * from its first increment, which must hold the whole first measurement, not a part of it
   */
  ready: boolean;
  /** its vTPM, when it has one (PCR 10 is always the replay of `lines`) */
  tpm?: VmTpm;
  /** the controller has its attestation key */
  akRegistered?: boolean;
  /** an extend failed: PCR 10 no longer matches the list, so no quotes until the VM's list starts anew */
  tpmBroken?: boolean;
}

export interface AgentStatus {
  host: string;
  appliedPlan: number | null;
  planError: { version: number; message: string } | null;
  connected: boolean;
  vms: { name: string; measured: number; sent: number }[];
}

export class Agent {
  readonly #o: Required<Omit<AgentOptions, 'domainFacts'>> & Pick<AgentOptions, 'domainFacts'>;
  #plan: PlanV1 | null = null;
  #planError: { version: number; message: string } | null = null;
  #connected = false;
  #stopped = false;
  #abort = new AbortController();
  #vms = new Map<string, VmTrack>();
  #server: http.Server | null = null;
  #unwatch: () => void = () => {};
  #timers: NodeJS.Timeout[] = [];
  #sendTimer: NodeJS.Timeout | undefined;
  #sending: Promise<void> | null = null;
  #sendAgain = false;
  #inventoryTimer: NodeJS.Timeout | undefined;
  #lastDrops = new Map<string, DropCount>();
  #admitting: Promise<unknown> = Promise.resolve();
  /** VMs admitted by a hook and not yet seen running by the driver: counted as running in the inventory */
  #admitted = new Map<string, { label: string | null; resources: VmResourceV1[] }>();
  #loops: Promise<void>[] = [];
  #lastList: VmInfo[] = [];
  #syncing: Promise<void> = Promise.resolve();

  constructor(options: AgentOptions) {
    const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as AgentOptions;
    this.#o = { reportMs: 2000, dropsMs: 2000, batchMs: 5, log: (l) => process.stderr.write(`${l}\n`), domainFacts: undefined, ...given };
    mkdirSync(join(this.#o.stateDir, 'evidence'), { recursive: true });
  }

  get plan(): PlanV1 | null {
    return this.#plan;
  }

  status(): AgentStatus {
    return {
      host: this.#o.host,
      appliedPlan: this.#plan?.version ?? null,
      planError: this.#planError,
      connected: this.#connected,
      vms: [...this.#vms.values()].map((t) => ({ name: t.name, measured: t.lines.length, sent: t.sent })),
    };
  }

  async start(): Promise<void> {
    await this.#enforceSaved();
    if (this.#o.socket) await this.#listen(this.#o.socket);
    this.#unwatch = await this.#o.driver.watch((e) => {
      if (e.type === 'started' || e.type === 'stopped' || e.type === 'undefined') this.#admitted.delete(e.vm);
      void this.#syncVms().catch((err) => this.#o.log(`agent: ${(err as Error).message}`));
      this.#scheduleInventory();
    });
    await this.#syncVms();
    this.#loops.push(this.#registerAndFollow());
    this.#timers.push(setInterval(() => this.#scheduleSend(), this.#o.reportMs));
    this.#timers.push(setInterval(() => void this.#report().catch(() => {}), this.#o.dropsMs));
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#abort.abort();
    this.#unwatch();
    for (const t of this.#timers) clearInterval(t);
    clearTimeout(this.#sendTimer);
    clearTimeout(this.#inventoryTimer);
    for (const t of this.#vms.values()) {
      await t.measurer?.close();
      clearInterval(t.imaTail);
      await t.tpm?.stop().catch(() => {});
    }
    await new Promise<void>((r) => (this.#server ? this.#server.close(() => r()) : r()));
    if (this.#o.socket) rmSync(this.#o.socket, { force: true });
    await this.#sending?.catch(() => {});
    await Promise.allSettled(this.#loops);
  }

  // ---- the plan ------------------------------------------------------------------------------------------------

  get #planFile(): string {
    return join(this.#o.stateDir, 'plan.json');
  }

  /** Enforce the saved plan (or an empty one) before anything else, repairing whatever differs. */
  async #enforceSaved(): Promise<void> {
    let saved: PlanV1 | null = null;
    if (existsSync(this.#planFile)) {
      try {
        saved = JSON.parse(readFileSync(this.#planFile, 'utf8')) as PlanV1;
      } catch (e) {
        this.#o.log(`agent: ${this.#planFile} unreadable (${(e as Error).message}): enforcing an empty plan`);
      }
    }
    const plan = saved ?? { host: this.#o.host, version: 0, policyVersion: 0, vms: [] };
    const before = await this.#o.enforcer.current();
    await this.#o.enforcer.apply(plan);
    const after = await this.#o.enforcer.current();
    if (before !== null && !sameEnforced(before, after)) this.#o.log(`agent: the data plane differed from plan ${plan.version}: repaired`);
    this.#plan = saved;
  }

  async #applyPlan(plan: PlanV1): Promise<void> {
    try {
      await this.#o.enforcer.apply(plan);
    } catch (e) {
      this.#planError = { version: plan.version, message: (e as Error).message };
      this.#o.log(`agent: plan ${plan.version} not applied, plan ${this.#plan?.version ?? 'none'} stays in force: ${(e as Error).message}`);
      void this.#report().catch(() => {});
      return;
    }
    this.#plan = plan;
    this.#planError = null;
    writeFileSync(`${this.#planFile}.tmp`, JSON.stringify(plan));
    renameSync(`${this.#planFile}.tmp`, this.#planFile);
    void this.#report().catch(() => {});
  }

  /** Register, report, then follow the plan by long poll; on any failure start over after a pause. */
  async #registerAndFollow(): Promise<void> {
    let pause = 200;
    while (!this.#stopped) {
      try {
        await this.#o.controller.putHost(this.#o.host, this.#o.hostLabel);
        await this.#putInventory();
        if (!this.#connected) this.#o.log(`agent: connected to the controller as host ${this.#o.host}`);
        this.#connected = true;
        pause = 200;
        this.#scheduleSend();
        for (;;) {
          if (this.#stopped) return;
          const plan = await this.#o.controller.waitPlan(this.#o.host, this.#plan?.version ?? 0, this.#abort.signal);
          if (plan && plan.version > (this.#plan?.version ?? 0) && plan.version !== this.#planError?.version) await this.#applyPlan(plan);
        }
      } catch (e) {
        if (this.#stopped) return;
        if (this.#connected) this.#o.log(`agent: lost the controller (${(e as Error).message}); enforcing plan ${this.#plan?.version ?? 'none'} meanwhile`);
        this.#connected = false;
        if (controllerStatus(e) !== 0) this.#o.log(`agent: ${(e as Error).message}`);
        await sleep(pause);
        pause = Math.min(pause * 2, 5000);
      }
    }
  }

  // ---- inventory -----------------------------------------------------------------------------------------------

  /**
   * Report every VM of the host. `cached`: from the last listing, without asking the driver — what a hook's answer
   * uses, because libvirt holds the starting domain while its hook waits, and asking libvirt then could deadlock.
   */
  async #putInventory(cached = false): Promise<void> {
    const vms = cached ? this.#lastList : await this.#o.driver.list();
    this.#lastList = vms;
    const reported: ReportedVmV1[] = vms.map((v) => ({
      name: v.name,
      label: v.label,
      running: v.running || this.#admitted.has(v.name),
      ports: v.ports,
      resources: v.resources,
    }));
    for (const [name, facts] of this.#admitted) if (!vms.some((v) => v.name === name)) reported.push({ name, label: facts.label, running: true, ports: [], resources: facts.resources });
    // running VMs first (the controller replays the host's Chinese Wall in this order)
    reported.sort((a, b) => Number(b.running) - Number(a.running));
    await this.#o.controller.putInventory(this.#o.host, { vms: reported });
  }

  #scheduleInventory(): void {
    clearTimeout(this.#inventoryTimer);
    this.#inventoryTimer = setTimeout(() => {
      if (this.#connected) void this.#putInventory().catch((e) => this.#o.log(`agent: inventory: ${(e as Error).message}`));
    }, 20);
  }

  // ---- evidence ------------------------------------------------------------------------------------------------

  #queueFile(vm: string): string {
    return join(this.#o.stateDir, 'evidence', `${encodeURIComponent(vm)}.log`);
  }

  /** Start measuring VMs that run, stop measuring those that don't. */
  /** One at a time: two overlapping passes would both start measuring a VM that just started. */
  #syncVms(): Promise<void> {
    const next = this.#syncing.then(() => this.#syncVmsNow());
    this.#syncing = next.catch(() => {});
    return next;
  }

  async #syncVmsNow(): Promise<void> {
    const vms = await this.#o.driver.list();
    this.#lastList = vms;
    for (const vm of vms) {
      const track = this.#vms.get(vm.name);
      // `running`, not `measurer`: a VM measured without a root (its definition and images, a guest's own IMA
      // list) has no measurer, and every pass restarted its list as a reboot, re-measuring the definition.
      if (vm.running && !track?.running) await this.#startMeasuring(vm, track);
      if (!vm.running && track?.running) {
        track.running = false;
        await track.measurer?.close();
        track.measurer = null;
        clearInterval(track.imaTail);
        track.imaTail = undefined;
      }
    }
    for (const [name, track] of this.#vms) {
      if (!vms.some((v) => v.name === name)) {
        await track.measurer?.close();
        clearInterval(track.imaTail);
        await track.tpm?.stop().catch(() => {});
        this.#vms.delete(name);
      }
    }
  }

  async #startMeasuring(vm: VmInfo, known?: VmTrack): Promise<void> {
    const file = this.#queueFile(vm.name);
    // A VM seen for the first time by this agent resumes its saved list (an agent restart); a VM that starts
    // again while the agent runs boots a new list.
    const restarted = known !== undefined;
    if (restarted) rmSync(file, { force: true });
    const saved = !restarted && existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
    const track: VmTrack = known ?? { name: vm.name, measurer: null, lines: saved, sent: 0, reboot: false, running: true, ready: false };
    track.running = true;
    track.ready = false;
    if (restarted) {
      track.lines = [];
      track.sent = 0;
      track.reboot = true;
    }
    this.#vms.set(vm.name, track);
    const stateFile = `${file}.state`;
    if (restarted) rmSync(stateFile, { force: true });
    let saveTimer: NodeJS.Timeout | undefined;
    // The line goes to the queue file before the measurer's state moves past it: a crash between the two
    // repeats an entry on the next start, never loses one.
    const saveState = () => {
      saveTimer = undefined;
      if (!track.measurer) return;
      writeFileSync(`${stateFile}.tmp`, track.measurer.saveState());
      renameSync(`${stateFile}.tmp`, stateFile);
    };
    if (vm.measure.tpm) await this.#startTpm(vm, track, restarted);
    const add = (entry: ImaEntry) => {
      const line = formatAsciiLine(entry);
      track.lines.push(line);
      appendFileSync(file, `${line}\n`);
      // extended in the same step as the line is listed: a quote taken later covers exactly a prefix of the list
      if (track.tpm && !track.tpmBroken) void track.tpm.extend([entry]).catch((e) => this.#tpmFailed(track, e));
      this.#scheduleSend();
    };
    // At launch (a list that starts empty): the definition, then kernel, initrd and disks, as libvirt gives them.
    if (track.lines.length === 0) {
      if (vm.measure.domainXml) {
        try {
          add(measureDomainXml(vm.measure.domainXml, vm.name));
        } catch (e) {
          this.#o.log(`agent: ${vm.name}: the domain definition cannot be measured: ${(e as Error).message}`);
        }
      }
      for (const image of vm.measure.images ?? []) {
        try {
          add(await measureImage(image));
        } catch (e) {
          // fail closed: an image that cannot be read is an entry no fingerprint accepts
          add(pathEntry('unreadable', image));
          this.#o.log(`agent: ${vm.name}: ${(e as Error).message}`);
        }
      }
    }
    if (vm.measure.imaLog) track.imaTail = this.#tailImaLog(vm.name, vm.measure.imaLog, track, add);
    if (!vm.measure.root) {
      track.ready = true;
      this.#scheduleSend();
      return;
    }
    const m = new Measurer({
      roots: [vm.measure.root],
      watch: true,
      persistent: false,
      onError: (e) => this.#o.log(`agent: measuring ${vm.name}: ${e.message}`),
      onEntry: (entry) => {
        add(entry);
        saveTimer ??= setTimeout(saveState, 50);
      },
    });
    // After an agent restart the measurer goes on from its saved state: only what changed meanwhile is new.
    if (!restarted && saved.length > 0 && existsSync(stateFile)) {
      try {
        m.loadState(readFileSync(stateFile, 'utf8'));
      } catch (e) {
        this.#o.log(`agent: ${stateFile} unreadable (${(e as Error).message}): measuring ${vm.name} anew`);
      }
    }
    track.measurer = m;
    await m.start();
    saveState();
    track.ready = true;
    this.#scheduleSend();
  }

  /** Start (or attach to) the VM's vTPM and bring its PCR 10 in step with the list the agent holds for it. */
  async #startTpm(vm: VmInfo, track: VmTrack, restarted: boolean): Promise<void> {
    try {
      track.tpm ??= await VmTpm.start({ stateDir: join(this.#o.stateDir, 'tpm', encodeURIComponent(vm.name)), ...(vm.measure.tpm?.tcti ? { tcti: vm.measure.tpm.tcti } : {}) });
      track.tpmBroken = false;
      if (restarted || track.lines.length === 0) {
        // a new list: PCR 10 starts from zero with it
        if (track.tpm.startup !== 'cleared' && !vm.measure.tpm?.tcti) await track.tpm.reset();
      } else if (track.tpm.startup === 'cleared') {
        // the TPM lost its PCRs but the list goes on: extend it all again
        await track.tpm.extend(track.lines.map((l, i) => parseAsciiLine(l, i + 1)));
      }
    } catch (e) {
      this.#o.log(`agent: ${vm.name}: its vTPM is not usable (${(e as Error).message}): its evidence goes without quotes`);
      track.tpmBroken = true;
    }
  }

  #tpmFailed(track: VmTrack, e: unknown): void {
    if (track.tpmBroken) return;
    track.tpmBroken = true;
    this.#o.log(`agent: ${track.name}: a PCR extend failed (${(e as Error).message}): no more quotes until the VM starts again`);
  }

  /**
   * The guest's own IMA list (an ascii list the guest shares with its host): new complete lines are read every
   * `reportMs` and forwarded as they are, after a parse check (a line that does not parse is the guest's problem,
   * and the controller's appraisal will say so: it is forwarded too, as the evidence it is).
   */
  #tailImaLog(vm: string, path: string, track: VmTrack, add: (e: ImaEntry) => void): NodeJS.Timeout {
    let offset = 0;
    let partial = '';
    let lineNo = 0;
    const read = () => {
      let fd: number | undefined;
      try {
        fd = openSync(path, 'r');
        const size = fstatSync(fd).size;
        if (size < offset) {
          // the list started anew: the guest rebooted
          offset = 0;
          partial = '';
          lineNo = 0;
          track.lines = [];
          track.sent = 0;
          track.reboot = true;
        }
        while (offset < size) {
          const buf = Buffer.alloc(Math.min(size - offset, 1 << 20));
          const n = readSync(fd, buf, 0, buf.length, offset);
          if (n <= 0) break;
          offset += n;
          const lines = (partial + buf.subarray(0, n).toString('utf8')).split('\n');
          partial = lines.pop()!;
          for (const line of lines) {
            lineNo++;
            if (line === '') continue;
            try {
              add(parseAsciiLine(line, lineNo));
            } catch (e) {
              this.#o.log(`agent: ${vm}: ${path} line ${lineNo}: ${(e as Error).message}`);
            }
          }
        }
      } catch (e) {
        this.#o.log(`agent: ${vm}: cannot read its IMA list ${path}: ${(e as Error).message}`);
      } finally {
        if (fd !== undefined) closeSync(fd);
      }
    };
    read();
    return setInterval(read, this.#o.reportMs);
  }

  #scheduleSend(): void {
    if (this.#stopped) return;
    if (this.#sending) {
      this.#sendAgain = true;
      return;
    }
    if (this.#sendTimer) return;
    this.#sendTimer = setTimeout(() => {
      this.#sendTimer = undefined;
      this.#sending = this.#send().finally(() => {
        this.#sending = null;
        if (this.#sendAgain) {
          this.#sendAgain = false;
          this.#scheduleSend();
        }
      });
    }, this.#o.batchMs);
  }

  /** One request with every VM's unsent entries (an empty increment is a heartbeat: the VM is still there). */
  async #send(): Promise<void> {
    if (!this.#connected) return;
    const ready = [...this.#vms.values()].filter((t) => t.ready);
    if (ready.length === 0) return;
    // VMs with a vTPM: their key registered once, then a fresh nonce each for this request's quotes
    const quoting = ready.filter((t) => t.tpm && !t.tpmBroken);
    for (const t of quoting) {
      if (t.akRegistered) continue;
      try {
        await this.#o.controller.putAk(t.name, t.tpm!.ak());
        t.akRegistered = true;
      } catch (e) {
        this.#o.log(`agent: ${t.name}: attestation key not registered: ${(e as Error).message}`);
        if (controllerStatus(e) === 404) this.#scheduleInventory();
      }
    }
    const withAk = quoting.filter((t) => t.akRegistered);
    let nonces = new Map<string, string>();
    if (withAk.length > 0) {
      try {
        nonces = await this.#o.controller.nonces(this.#o.host, withAk.map((t) => t.name));
      } catch (e) {
        this.#o.log(`agent: no nonces (${(e as Error).message}): entries go without quotes this time`);
      }
    }
    const vms: VmEvidenceV1[] = [];
    const counts = new Map<string, number>();
    const quotes: Promise<void>[] = [];
    for (const t of ready) {
      const entries = t.lines.slice(t.sent, t.sent + 10_000);
      counts.set(t.name, entries.length);
      const inc: VmEvidenceV1 = { vm: t.name, entries, from: t.sent, ...(t.reboot ? { reboot: true } : {}) };
      vms.push(inc);
      const nonce = nonces.get(t.name);
      // no await between listing the entries and asking for the quote: it covers at least these entries
      if (nonce && t.tpm && !t.tpmBroken) quotes.push(t.tpm.quote(nonce).then((q) => void (inc.quote = q), (e) => this.#o.log(`agent: ${t.name}: no quote (${(e as Error).message})`)));
    }
    await Promise.all(quotes);
    const request: HostEvidenceRequestV1 = { vms };
    try {
      const answer = await this.#o.controller.postEvidence(this.#o.host, request);
      let more = false;
      for (const r of answer.results) {
        const t = this.#vms.get(r.vm);
        if (!t) continue;
        if ('error' in r) {
          const expected = (r.error.details as { expected?: number } | undefined)?.expected;
          if (r.error.code === 'evidence_out_of_order' && typeof expected === 'number' && expected <= t.lines.length) {
            t.sent = expected;
            more = true;
          } else if (r.error.code === 'evidence_out_of_order' && typeof expected === 'number') {
            // the controller has more than this list: the VM's list started anew
            t.sent = 0;
            t.reboot = true;
            more = true;
          } else if (r.error.code === 'no_attestation_key') {
            t.akRegistered = false;
            more = true;
          } else if (/^nonce_/.test(r.error.code)) more = true;
          else this.#o.log(`agent: evidence of ${r.vm} refused: ${r.error.code} ${r.error.message}`);
          continue;
        }
        t.sent += counts.get(r.vm) ?? 0;
        t.reboot = false;
        if (t.sent < t.lines.length) more = true;
      }
      if (more) this.#sendAgain = true;
    } catch (e) {
      const status = controllerStatus(e);
      if (status === 0) this.#connected = false; // the follow loop reconnects; the queue waits
      this.#o.log(`agent: evidence not sent: ${(e as Error).message}`);
      if (status !== 0 && status !== null && status < 500) {
        // a whole request refused (a VM the controller does not know yet): report the inventory, then retry
        this.#scheduleInventory();
        await sleep(200);
        this.#sendAgain = true;
      }
    }
  }

  // ---- what the data plane dropped ------------------------------------------------------------------------------

  async #report(): Promise<void> {
    if (!this.#connected) return;
    const drops = await this.#o.enforcer.drops();
    const blocked: BlockedV1[] = [];
    const owner = new Map<string, { vm: string; colors: string[] }>();
    for (const vm of this.#plan?.vms ?? []) for (const p of vm.ports) owner.set(p, { vm: vm.name, colors: vm.colors });
    const next = new Map<string, DropCount>();
    for (const d of drops) {
      const key = `${d.from}\0${d.to}`;
      next.set(key, d);
      const last = this.#lastDrops.get(key);
      // counters only grow while the table lives; smaller means the table was made anew
      const packets = last && last.packets <= d.packets ? d.packets - last.packets : d.packets;
      const bytes = last && last.bytes <= d.bytes ? d.bytes - last.bytes : d.bytes;
      if (packets === 0) continue;
      const a = owner.get(d.from);
      const b = owner.get(d.to);
      const reason: BlockedV1['reason'] = !a || !b ? 'unknown_port' : a.colors.length === 0 || b.colors.length === 0 ? 'isolated' : 'no_common_color';
      blocked.push({ from: a?.vm ?? null, to: b?.vm ?? null, fromPort: d.from, toPort: d.to, packets, bytes, reason });
    }
    await this.#o.controller.putReport(this.#o.host, { appliedPlan: this.#plan?.version ?? null, planError: this.#planError, blocked });
    this.#lastDrops = next;
  }

  // ---- the hook --------------------------------------------------------------------------------------------------

  /** The answer to a hook: on `prepare` the controller's admission, else a notice (always allowed). */
  async hook(req: HookRequestV1): Promise<HookAnswerV1> {
    if (req.op !== 'prepare') {
      if (req.op === 'stopped' || req.op === 'release') this.#admitted.delete(req.domain);
      this.#scheduleInventory();
      return { allow: true, reason: 'allowed', message: `noted ${req.op}` };
    }
    // One admission at a time: the next one must see this VM counted on the host.
    const answer = this.#admitting.then(() => this.#admit(req));
    this.#admitting = answer.catch(() => {});
    return answer;
  }

  async #admit(req: HookRequestV1): Promise<HookAnswerV1> {
    try {
      const facts = this.#o.domainFacts?.(req.xml) ?? null;
      const known = facts ? null : await this.#o.driver.get(req.domain);
      const label = facts ? facts.label : (known?.label ?? null);
      const resources = facts ? facts.resources : (known?.resources ?? []);
      const answer = await this.#o.controller.admission({ host: this.#o.host, vm: req.domain, label, resources });
      if (!answer.allow) return { allow: false, reason: answer.reason, message: `hueguard: ${answer.details.message}` };
      this.#admitted.set(req.domain, { label, resources });
      await this.#putInventory(true); // counted before the next admission is asked
      return { allow: true, reason: 'allowed', message: answer.details.message };
    } catch (e) {
      return { allow: false, reason: 'agent_error', message: `hueguard: no admission (${(e as Error).message}): refusing to start` };
    }
  }

  async #listen(socket: string): Promise<void> {
    mkdirSync(dirname(socket), { recursive: true });
    rmSync(socket, { force: true });
    const server = http.createServer((req, res) => {
      const send = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (req.method === 'GET' && req.url === '/v1/status') return send(200, this.status());
      if (req.method !== 'POST' || req.url !== '/v1/hook') return send(404, { code: 'not_found', message: 'POST /v1/hook or GET /v1/status' });
      let body = '';
      let size = 0;
      req.setEncoding('utf8');
      req.on('data', (d: string) => {
        size += d.length;
        if (size > 4 << 20) req.destroy();
        else body += d;
      });
      req.on('end', () => {
        let hr: HookRequestV1;
        try {
          hr = JSON.parse(body) as HookRequestV1;
          if (typeof hr.domain !== 'string' || typeof hr.op !== 'string' || typeof hr.xml !== 'string') throw new Error('domain, op and xml must be strings');
        } catch (e) {
          return send(400, { allow: false, reason: 'bad_request', message: `hueguard: bad hook request (${(e as Error).message})` } satisfies HookAnswerV1);
        }
        this.hook(hr).then((a) => send(200, a), (e) => send(500, { allow: false, reason: 'agent_error', message: String(e) }));
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e) => reject(new AgentError('not_available', `cannot listen on ${socket}: ${e.message}`)));
      server.listen(socket, () => resolve());
    });
    this.#server = server;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
