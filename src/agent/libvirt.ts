/**
 * The libvirt driver: a host's domains through `virsh` (no native bindings), run without a shell (exec.ts).
 *
 * - Domains are looked up by UUID, never by name: virsh resolves `--domain X` as an id first, then a UUID, then a
 *   name, so a domain named "3" would otherwise be read as the domain whose id is 3.
 * - Lifecycle events come from one long-running `virsh event --all --loop`, parsed line by line, restarted with a
 *   backoff if it dies. virsh says nothing when its subscription is in place, and events are lost while it is
 *   down, so the driver also reconciles: it keeps each domain's running state, compares it with `virsh list` soon
 *   after (re)subscribing, after a stop (a transient domain vanishes without an `Undefined` event) and now and then,
 *   and reports the difference as events. A started/stopped event for a domain already in that state is dropped.
 * - Events: `defined` also for a redefinition and for a change of its hueguard label (`virsh metadata`), so a
 *   listener re-reads the domain; a migration in is `started` then `migrated`, a migration out `stopped` then
 *   `migrated`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { VmResourceV1 } from '../api/types.ts';
import type { Driver, DriverEvent, VmInfo } from './driver.ts';
import { AgentError } from './errors.ts';
import { execTool } from './exec.ts';
import { domainFacts, labelMetadataArgs, LABEL_NS, MAX_DOMAIN_XML } from './libvirt-xml.ts';

export { domainFacts, readLabel, withLabel, labelMetadataArgs, LABEL_NS, LABEL_PREFIX, LABEL_ELEMENT } from './libvirt-xml.ts';

/**
 * The label and resources of the domain XML a `qemu` hook passed (the agent's admission reads these, not the
 * driver, since the domain may not be listed yet). Throws AgentError on XML that is not a domain or a bad label.
 */
export function domainFactsFromXml(xml: string): { label: string | null; resources: VmResourceV1[] } {
  const f = domainFacts(xml);
  return { label: f.label, resources: f.resources };
}

export interface LibvirtDriverOptions {
  /** the virsh binary (default `virsh` on PATH) */
  virsh?: string;
  /** each virsh call (default 15 s) */
  timeoutMs?: number;
  /** reconcile with `virsh list` this often while watching (default 60 s; 0: only after (re)subscribing and stops) */
  resyncMs?: number;
  /** `dumpxml` calls at once while listing (default 4) */
  concurrency?: number;
}

interface DomainRef {
  uuid: string;
  name: string;
}

const NOT_FOUND = /failed to get domain|Domain not found|no domain with matching/;
const EVENT_LINE = /^event '([a-z-]+)' for domain '(.*)': (.*)$/;

/** Map over `items` with at most `limit` calls in flight, keeping the order. */
async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

export class LibvirtDriver implements Driver {
  readonly kind = 'libvirt';
  readonly uri: string;
  readonly #virsh: string;
  readonly #timeoutMs: number;
  readonly #resyncMs: number;
  readonly #concurrency: number;

  #listeners = new Set<(e: DriverEvent) => void>();
  /** name → running, as last reported to listeners */
  #known = new Map<string, boolean>();
  #child: ChildProcess | null = null;
  #restartTimer: NodeJS.Timeout | undefined;
  #backoffMs = 500;
  #resyncTimers = new Set<NodeJS.Timeout>();
  #periodic: NodeJS.Timeout | undefined;
  #resyncing: Promise<void> | null = null;
  #resyncAgain = false;
  /** counts stream events, so that a reconciliation that raced with one is redone */
  #eventSeq = 0;
  #closed = false;

  constructor(uri: string, options: LibvirtDriverOptions = {}) {
    if (!uri) throw new AgentError('bad_argument', 'the libvirt driver needs a connection URI (e.g. qemu:///system)');
    this.uri = uri;
    this.#virsh = options.virsh ?? 'virsh';
    this.#timeoutMs = options.timeoutMs ?? 15_000;
    this.#resyncMs = options.resyncMs ?? 60_000;
    this.#concurrency = Math.max(1, options.concurrency ?? 4);
  }

  #run(args: string[]): Promise<string> {
    return execTool(this.#virsh, ['-q', '-c', this.uri, ...args], { timeoutMs: this.#timeoutMs, code: 'driver_failed' });
  }

  /** Every domain, by UUID and name (`virsh list --uuid --name` prints `UUID NAME`; a name may hold spaces). */
  async #refs(): Promise<DomainRef[]> {
    const out = await this.#run(['list', '--all', '--uuid', '--name']);
    const refs: DomainRef[] = [];
    for (const line of out.split('\n')) {
      const m = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}) (.+)$/.exec(line);
      if (m) refs.push({ uuid: m[1], name: m[2] });
    }
    return refs;
  }

  async #names(all: boolean): Promise<string[]> {
    const out = await this.#run(all ? ['list', '--all', '--name'] : ['list', '--name']);
    return out.split('\n').filter((l) => l !== '');
  }

  /** The domain's info, or null when it went away meanwhile. */
  async #info(ref: DomainRef): Promise<(VmInfo & { id: number | null }) | null> {
    let xml: string;
    try {
      xml = await this.#run(['dumpxml', '--domain', ref.uuid]);
    } catch (e) {
      if (e instanceof AgentError && NOT_FOUND.test(e.message)) return null;
      throw new AgentError('driver_failed', `domain ${JSON.stringify(ref.name)}: cannot read its definition: ${(e as Error).message}`, { domain: ref.name });
    }
    if (xml.length > MAX_DOMAIN_XML) throw new AgentError('driver_failed', `domain ${JSON.stringify(ref.name)}: definition too large`, { domain: ref.name });
    const f = domainFacts(xml, ref.name);
    if (f.name !== ref.name) return null; // renamed between listing and reading
    return {
      name: f.name,
      id: f.id,
      label: f.label,
      running: f.id !== null,
      ports: f.ports,
      resources: f.resources,
      measure: { domainXml: xml, images: f.images },
    };
  }

  async list(): Promise<VmInfo[]> {
    const infos = (await mapLimit(await this.#refs(), this.#concurrency, (r) => this.#info(r))).filter((v) => v !== null);
    // running first, in start order (libvirt numbers starts upward), then the others as virsh lists them
    const running = infos.filter((v) => v.id !== null).sort((a, b) => a.id! - b.id!);
    return [...running, ...infos.filter((v) => v.id === null)].map(({ id: _id, ...v }) => v);
  }

  async get(name: string): Promise<VmInfo | null> {
    const ref = (await this.#refs()).find((r) => r.name === name);
    if (!ref) return null;
    const info = await this.#info(ref);
    if (!info) return null;
    const { id: _id, ...v } = info;
    return v;
  }

  /** Set (or, with null, remove) a domain's hueguard label: its persistent definition, and the live one while it runs. */
  async setLabel(name: string, label: string | null): Promise<void> {
    const ref = (await this.#refs()).find((r) => r.name === name);
    if (!ref) throw new AgentError('driver_failed', `domain ${JSON.stringify(name)}: no such domain`, { domain: name });
    const info = await this.#info(ref);
    if (!info) throw new AgentError('driver_failed', `domain ${JSON.stringify(name)}: no such domain`, { domain: name });
    const persistent = (await this.#run(['dominfo', '--domain', ref.uuid])).split('\n').some((l) => /^Persistent:\s+yes$/.test(l));
    try {
      await this.#run(labelMetadataArgs(ref.uuid, label, { live: info.running, config: persistent }));
    } catch (e) {
      throw new AgentError('driver_failed', `domain ${JSON.stringify(name)}: cannot set its label: ${(e as Error).message}`, { domain: name });
    }
  }

  // ---- events ----

  #emit(e: DriverEvent): void {
    for (const l of this.#listeners) {
      try {
        l(e);
      } catch {
        // one listener's failure must not stop the stream for the others
      }
    }
  }

  /** Apply one event to the known state; drop it when it changes nothing it claims to. */
  #apply(type: DriverEvent['type'], vm: string): void {
    const was = this.#known.get(vm);
    switch (type) {
      case 'defined':
        if (was === undefined) this.#known.set(vm, false);
        break;
      case 'undefined':
        if (was === undefined) return;
        if (was) this.#emit({ type: 'stopped', vm });
        this.#known.delete(vm);
        break;
      case 'started':
        if (was === true) return;
        if (was === undefined) this.#emit({ type: 'defined', vm });
        this.#known.set(vm, true);
        break;
      case 'stopped':
        if (was !== true) return;
        this.#known.set(vm, false);
        break;
      case 'migrated':
        break;
    }
    this.#emit({ type, vm });
  }

  #onLine(line: string): void {
    const m = EVENT_LINE.exec(line);
    if (!m) return;
    const [, kind, vm, detail] = m;
    this.#eventSeq++;
    if (kind === 'metadata-change') {
      if (detail.includes(LABEL_NS)) this.#emit({ type: 'defined', vm });
      return;
    }
    if (kind !== 'lifecycle') return;
    const [what, ...rest] = detail.split(' ');
    const how = rest.join(' ');
    if (what === 'Defined') {
      if (this.#known.has(vm)) this.#emit({ type: 'defined', vm }); // redefined: re-read it
      else this.#apply('defined', vm);
    } else if (what === 'Undefined') {
      this.#apply('undefined', vm);
    } else if (what === 'Started') {
      this.#apply('started', vm);
      if (how === 'Migrated') this.#emit({ type: 'migrated', vm });
    } else if (what === 'Stopped') {
      this.#apply('stopped', vm);
      if (how === 'Migrated') this.#emit({ type: 'migrated', vm });
      this.#scheduleResync(300); // a transient domain is gone now, with no Undefined event
    }
  }

  #startStream(): void {
    if (this.#closed || this.#child || this.#listeners.size === 0) return;
    const child = spawn(this.#virsh, ['-q', '-c', this.uri, 'event', '--all', '--loop'], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child = child;
    const startedAt = Date.now();
    child.stderr!.resume(); // its complaints end in an exit, which restarts it
    createInterface({ input: child.stdout!, crlfDelay: Infinity }).on('line', (l) => this.#onLine(l));
    child.on('error', () => {}); // reported through 'close'
    child.on('close', () => {
      if (this.#child === child) this.#child = null;
      if (this.#closed || this.#listeners.size === 0) return;
      // a stream that lived a while had a working connection: start again quickly
      this.#backoffMs = Date.now() - startedAt > 10_000 ? 500 : Math.min(this.#backoffMs * 2, 30_000);
      this.#restartTimer = setTimeout(() => {
        this.#restartTimer = undefined;
        this.#startStream();
      }, this.#backoffMs);
    });
    // virsh gives no sign when its subscription is in place: reconcile shortly after, and once more a bit later
    this.#scheduleResync(300);
    this.#scheduleResync(1500);
  }

  #scheduleResync(ms: number): void {
    if (this.#closed) return;
    const t = setTimeout(() => {
      this.#resyncTimers.delete(t);
      void this.#resync();
    }, ms);
    this.#resyncTimers.add(t);
  }

  /** Compare the known state with `virsh list` and report the difference (one at a time; redone if events raced it). */
  #resync(): Promise<void> {
    if (this.#resyncing) {
      this.#resyncAgain = true;
      return this.#resyncing;
    }
    this.#resyncing = (async () => {
      for (let tries = 0; tries < 5 && !this.#closed && this.#listeners.size > 0; tries++) {
        const seq = this.#eventSeq;
        let all: string[];
        let active: Set<string>;
        try {
          all = await this.#names(true);
          active = new Set(await this.#names(false));
        } catch {
          return; // libvirtd unreachable: the stream's restart reconciles again
        }
        if (seq !== this.#eventSeq) continue; // an event changed the known state meanwhile: look again
        const now = new Map(all.map((n) => [n, active.has(n)]));
        for (const n of active) if (!now.has(n)) now.set(n, true);
        for (const [name, running] of now) {
          if (!this.#known.has(name)) this.#apply('defined', name);
          if (running) this.#apply('started', name);
          else this.#apply('stopped', name);
        }
        for (const name of [...this.#known.keys()]) if (!now.has(name)) this.#apply('undefined', name);
        if (!this.#resyncAgain) break;
        this.#resyncAgain = false;
      }
    })().finally(() => {
      this.#resyncing = null;
    });
    return this.#resyncing;
  }

  async watch(listener: (event: DriverEvent) => void): Promise<() => void> {
    if (this.#closed) throw new AgentError('driver_failed', 'the libvirt driver is closed');
    if (this.#listeners.size === 0) {
      // the state events are relative to: what runs now
      const all = await this.#names(true);
      const active = new Set(await this.#names(false));
      this.#known = new Map(all.map((n) => [n, active.has(n)]));
    }
    this.#listeners.add(listener);
    this.#startStream();
    if (this.#resyncMs > 0 && !this.#periodic) {
      this.#periodic = setInterval(() => void this.#resync(), this.#resyncMs);
      this.#periodic.unref();
    }
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size === 0) this.#stopStream();
    };
  }

  #stopStream(): void {
    if (this.#restartTimer) clearTimeout(this.#restartTimer);
    this.#restartTimer = undefined;
    for (const t of this.#resyncTimers) clearTimeout(t);
    this.#resyncTimers.clear();
    if (this.#periodic) clearInterval(this.#periodic);
    this.#periodic = undefined;
    const child = this.#child;
    this.#child = null;
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#listeners.clear();
    const child = this.#child;
    this.#stopStream();
    if (child && child.exitCode === null && child.signalCode === null) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          child.kill('SIGKILL');
          resolve();
        }, 2000);
        child.once('close', () => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    await this.#resyncing?.catch(() => {});
  }
}
