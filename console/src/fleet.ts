/**
 * The console's picture of the fleet: VMs (with trust and effective colors), hosts, the published policy and the
 * blocked attempts, loaded once and then kept current by the controller's event stream (`GET /api/v1/events`):
 * a trust event re-reads that one VM (so a VM turning untrusted shows within the second), fleet and plan events
 * re-read the VMs and hosts, a report re-reads the blocked attempts, a policy event the policy. Views read it with
 * `useFleet()`; anything else that wants the raw events (the audit timeline) subscribes with `onEvent`.
 */
import { useSyncExternalStore } from 'react';
import type { BlockedTotalV1, HostV1, TrustState, VmV1 } from '../../src/api/types.ts';
import { ApiError, checkSession, get, seg } from './api.ts';
import { readPolicyDoc, type PolicyDoc } from './policy-doc.ts';

export type VmView = VmV1 & { isolated?: string };

/** A blocked attempt, added up per (host, from port, to port). */
export type BlockedRow = BlockedTotalV1;

export interface PublishedPolicy {
  version: number;
  note: string;
  actor: string;
  at: string;
  text: string;
  doc: PolicyDoc;
}

export interface StreamEvent {
  kind: 'policy' | 'fleet' | 'trust' | 'plan' | 'audit';
  subject: string;
  at: string;
}

export interface Fleet {
  loaded: boolean;
  error: string | null;
  /** the event stream is open */
  live: boolean;
  vms: VmView[];
  byName: Map<string, VmView>;
  hosts: HostV1[];
  policy: PublishedPolicy | null;
  blocked: BlockedRow[];
  /** changes whenever anything above does */
  revision: number;
}

export const TRUST_STATES: TrustState[] = ['trusted', 'unverified', 'untrusted', 'unreachable'];

let state: Fleet = { loaded: false, error: null, live: false, vms: [], byName: new Map(), hosts: [], policy: null, blocked: [], revision: 0 };
const listeners = new Set<() => void>();
const eventListeners = new Set<(e: StreamEvent) => void>();
let source: EventSource | null = null;
const timers = new Map<string, ReturnType<typeof setTimeout>>();

function set(patch: Partial<Fleet>): void {
  state = { ...state, ...patch, revision: state.revision + 1 };
  if (patch.vms) state.byName = new Map(state.vms.map((v) => [v.name, v]));
  for (const l of listeners) l();
}

async function loadPolicy(): Promise<PublishedPolicy | null> {
  try {
    const p = await get<{ version: number; note: string; actor: string; at: string; yaml: string }>('/api/v1/policy');
    return { version: p.version, note: p.note, actor: p.actor, at: p.at, text: p.yaml, doc: readPolicyDoc(p.yaml) };
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return null;
    throw e;
  }
}

const loaders = {
  vms: async () => set({ vms: await get<VmView[]>('/api/v1/vms') }),
  hosts: async () => set({ hosts: await get<HostV1[]>('/api/v1/hosts') }),
  blocked: async () => set({ blocked: await get<BlockedRow[]>('/api/v1/blocked') }),
  policy: async () => set({ policy: await loadPolicy() }),
};

/** Run a loader at most once per `ms` (events come in bursts: one re-read serves the burst). */
function soon(what: keyof typeof loaders, ms: number): void {
  if (timers.has(what)) return;
  timers.set(what, setTimeout(() => {
    timers.delete(what);
    loaders[what]().catch((e) => set({ error: String((e as Error).message) }));
  }, ms));
}

async function refreshVm(name: string): Promise<void> {
  try {
    const v = await get<VmView>(`/api/v1/vms/${seg(name)}`);
    const i = state.vms.findIndex((x) => x.name === name);
    const vms = state.vms.slice();
    if (i >= 0) vms[i] = v; else vms.push(v);
    set({ vms });
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) soon('vms', 50);
  }
}

function onStreamEvent(e: StreamEvent): void {
  for (const l of eventListeners) l(e);
  switch (e.kind) {
    case 'trust':
      if (e.subject.startsWith('vm/')) void refreshVm(e.subject.slice(3));
      break;
    case 'fleet':
      if (e.subject.startsWith('report ')) soon('blocked', 1000);
      else { soon('vms', 200); soon('hosts', 200); }
      break;
    case 'plan':
      soon('vms', 300);
      break;
    case 'policy':
      if (!e.subject.startsWith('draft/')) { soon('policy', 50); soon('vms', 100); }
      break;
  }
}

function openStream(): void {
  source?.close();
  const s = new EventSource('/api/v1/events');
  source = s;
  let opened = false;
  s.onopen = () => {
    set({ live: true });
    // opened again after a break: whatever happened meanwhile (the first open precedes the first load)
    if (opened) { soon('vms', 0); soon('hosts', 0); soon('blocked', 0); soon('policy', 0); }
    opened = true;
  };
  s.onerror = () => {
    set({ live: false });
    // the stream ends with the session: if that is why, sign-in comes over the page
    void checkSession().catch(() => {});
  };
  for (const kind of ['policy', 'fleet', 'trust', 'plan', 'audit'] as const) {
    s.addEventListener(kind, (m) => {
      try {
        onStreamEvent(JSON.parse((m as MessageEvent<string>).data) as StreamEvent);
      } catch { /* a malformed event is ignored */ }
    });
  }
}

/** Follow the events and load everything (after sign-in): the stream first, so that no change falls between. */
export async function startFleet(): Promise<void> {
  openStream();
  try {
    const [vms, hosts, blocked, policy] = await Promise.all([
      get<VmView[]>('/api/v1/vms'), get<HostV1[]>('/api/v1/hosts'), get<BlockedRow[]>('/api/v1/blocked'), loadPolicy(),
    ]);
    set({ vms, hosts, blocked, policy, loaded: true, error: null });
  } catch (e) {
    set({ error: (e as Error).message });
  }
}

/** Stop following (sign-out). */
export function stopFleet(): void {
  source?.close();
  source = null;
  set({ live: false });
}

export function onEvent(fn: (e: StreamEvent) => void): () => void {
  eventListeners.add(fn);
  return () => eventListeners.delete(fn);
}

export function useFleet(): Fleet {
  return useSyncExternalStore((l) => { listeners.add(l); return () => listeners.delete(l); }, () => state);
}

/** For tests and benchmarks: the fleet's state outside React. */
export const fleetState = (): Fleet => state;
