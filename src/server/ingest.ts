/**
 * Evidence ingestion with group commit (DESIGN.md §4 steps 3–4, at the rate of a large fleet).
 *
 * Every evidence request — one VM's increment (`POST /api/v1/vms/:name/evidence`) or one host's increments of all
 * its VMs (`POST /api/v1/hosts/:name/evidence`) — is a job handed to `submit`. Jobs that arrive while a group is
 * being stored wait, and are then taken together (up to `maxVms` increments): one store transaction appraises them
 * all against the fleet in memory (`fleet-state.ts`), stores every integrity state, evidence record, trust
 * transition (audited) and new plan, and commits once. A job's promise settles only after that commit, so an
 * answered increment is durable (SQLite: its WAL synced, sqlite.ts; PostgreSQL: committed), and a failed commit fails
 * every job of the group (nothing of it is stored; the agents send again).
 *
 * Commit delay (PostgreSQL's `commit_delay`, for the same reason): a group starts no sooner than `commitDelayMs`
 * (10 ms) after the one before it started. When evidence comes steadily, the requests that arrive in that time share
 * one transaction: a commit, its WAL pages and its sync cost about as much for five requests as for one, and at
 * 5,000 increments/s the server thread spent about a quarter less per increment with the delay than without
 * (groups of ~50 increments instead of ~12). A request that arrives when no group ran for that long is not delayed.
 *
 * Inside the group, jobs are taken in arrival order and their VMs in body order, each from the state the one
 * before left (the same VM may come twice: two requests in flight). Verdicts go to the trust engine together
 * (`applyVerdicts`): one new plan per host the group changed, not one per verdict.
 *
 * What a job's problems do:
 * - the request's own faults refuse the whole job, and nothing of it is stored: a VM that does not exist (404,
 *   `details.field` naming it), a VM on another host than the one the request is for (403), an unreadable entry or
 *   quote (400 `bad_evidence`, `details.field` e.g. `body.vms[3].entries[7]`); schema faults never get here (400);
 * - what depends on the verifier's state refuses that VM's increment only, and nothing of that increment is stored
 *   (its nonce stays unused): a nonce replayed, stale or unknown (`nonce_*`), an increment out of order
 *   (`evidence_out_of_order`, `details.expected`), too many entries waiting for a quote, a quote without an
 *   attestation key. The per-VM route answers these as its error (409); the host route lists them per VM and
 *   stores the others;
 * - an appraisal that fails is no error: it is a verdict (untrusted), stored with the rest.
 */
import type { EntryFailureV1, EvidenceAnswerV1, TrustRecordV1 } from '../api/types.ts';
import type { ImaEntry } from '../integrity/ima-entry.ts';
import { parseAsciiLine } from '../integrity/ima-log.ts';
import { isIntegrityError } from '../integrity/errors.ts';
import { loadAttestationKey, type AttestationKey } from '../integrity/tpm-public.ts';
import type { EvidenceRecord, IntegrityWrite, Store } from '../store/store.ts';
import { applyVerdicts, type VerdictStep } from '../trust/engine.ts';
import { TrustError, TrustErrorCode, isTrustError } from '../trust/errors.ts';
import { processEvidence, type EvidenceContext, type EvidenceIncrement, type EvidenceResult } from '../trust/evidence.ts';
import type { Fleet } from '../trust/model.ts';
import type { ServerContext } from './context.ts';
import { ApiError, ApiErrorCode, notFound } from './errors.ts';
import type { FleetView, IntegrityEntry } from './fleet-state.ts';
import { countEffects, storeResult, type Effects } from './trust.ts';

/** One VM's increment in a job. */
export interface IngestItem {
  vm: string;
  /** the request's increment, its entries parsed already (checkEntries) */
  increment: EvidenceIncrement & { entries: readonly string[] };
  /** where the increment is in the request, for the fields errors name: `body` or `body.vms[3]` */
  field: string;
}

export interface IngestJob {
  /** the host the request is for: every VM must be on it; null: not checked here (the per-VM route's access rule did) */
  host: string | null;
  items: IngestItem[];
  /** an item's refusal is the job's error (the per-VM route) rather than a line of its answer */
  single: boolean;
}

export type ItemOutcome = { vm: string; answer: EvidenceAnswerV1 } | { vm: string; error: ApiError | TrustError };

export interface JobOutcome {
  items: ItemOutcome[];
  /** the new plan version of the job's host, when the group stored one */
  planVersion?: number;
}

export interface IngestOptions {
  /** most increments in one transaction (default 2,000) */
  maxVms?: number;
  /**
   * a group starts no sooner than this after the one before it started (default 10 ms; 0: at once), so that under
   * load the requests that arrive meanwhile share its transaction (see the module comment)
   */
  commitDelayMs?: number;
}

interface Pending {
  job: IngestJob;
  resolve: (o: JobOutcome) => void;
  reject: (e: unknown) => void;
}

/** See IngestOptions.commitDelayMs and the module comment (bench:controller measured 0, 5, 10 and 20 ms). */
const DEFAULT_COMMIT_DELAY_MS = 10;

/** The trust of a VM the store has no record of yet. */
export const noRecord = (vm: string): TrustRecordV1 => ({ vm, state: 'unverified', since: null, reason: 'no evidence yet', lastEvidence: null });

/**
 * Entries that do not read refuse the request before anything else (400 `bad_evidence`, the field named); blank
 * lines are skipped, as the verifier skips them. The entries parsed, for the verifier (not parsed again).
 */
export function checkEntries(entries: readonly string[], field: string): ImaEntry[] {
  const out: ImaEntry[] = [];
  for (let j = 0; j < entries.length; j++) {
    const line = entries[j];
    if (line.trim() === '') continue;
    try {
      out.push(parseAsciiLine(line, j + 1));
    } catch (e) {
      if (!isIntegrityError(e)) throw e;
      throw new TrustError(TrustErrorCode.badEvidence, `${field}.entries[${j}] is not an IMA list line: ${e.message}`, {
        field: `${field}.entries[${j}]`,
        code: e.code,
      });
    }
  }
  return out;
}

/** The integrity state the fleet in memory holds for the VM, if it does (no await: this runs for every item). */
const heldIntegrity = (view: FleetView, vm: string) => view.integrity.get(vm) as (IntegrityEntry & { fingerprint: string | null }) | undefined;

/** The VM's integrity state read from the store (it is not held in memory), and held from now on. */
async function readIntegrity(s: Store, view: FleetView, vm: string): Promise<IntegrityEntry & { fingerprint: string | null }> {
  const r = await s.integrity(vm);
  // A state stored before the fingerprint had its own column holds it inside: read as it is, moved at the next write.
  const entry = r === null ? { state: null, fingerprint: null } : { state: r.fingerprint === null ? r.state : { ...(r.state as object), fingerprint: r.fingerprint }, fingerprint: r.fingerprint };
  view.integrity.set(vm, entry);
  return entry;
}

/** The VM's attestation key read from the store (it is not held in memory), and held from now on. */
async function readAk(s: Store, view: FleetView, vm: string): Promise<AttestationKey | null> {
  const r = await s.attestationKey(vm);
  let ak: AttestationKey | null = null;
  try {
    ak = r === null ? null : loadAttestationKey(Buffer.from(r.ak, 'base64'));
  } catch (e) {
    // a stored key that does not read is this VM's fault (500 for its request), not the group's
    if (!isIntegrityError(e)) throw e;
    throw new TrustError(TrustErrorCode.badIntegrityState, `the attestation key stored for VM "${vm}" does not read: ${e.message}`, { vm });
  }
  view.aks.set(vm, ak);
  return ak;
}

/**
 * Store VMs' integrity states (`Store.putIntegrities`, one statement for many): the small state (without the
 * fingerprint's text) always, the fingerprint only where it is not the stored one (enrollment, re-enrollment, a
 * state from before the fingerprint had its own column), and the evidence each state comes from. In order: a VM
 * may come more than once. What is held in memory now, for each VM.
 */
export async function storeIntegrities(
  s: Store,
  states: readonly { vm: string; before: { fingerprint: string | null }; state: unknown; evidence?: Omit<EvidenceRecord, 'vm'> }[],
): Promise<[string, IntegrityEntry & { fingerprint: string | null }][]> {
  const writes: IntegrityWrite[] = [];
  const out = new Map<string, IntegrityEntry & { fingerprint: string | null }>();
  for (const { vm, before, state, evidence } of states) {
    const f = (state as { fingerprint?: unknown } | null)?.fingerprint;
    const fingerprint = typeof f === 'string' ? f : null;
    const write: IntegrityWrite = { vm, state: { ...(state as object), fingerprint: null } };
    if (fingerprint !== before.fingerprint) write.fingerprint = fingerprint;
    if (evidence !== undefined) write.evidence = evidence;
    writes.push(write);
    out.set(vm, { state, fingerprint });
  }
  await s.putIntegrities(writes);
  return [...out];
}

/** One VM's integrity state stored (see storeIntegrities). */
export async function storeIntegrity(s: Store, vm: string, before: { fingerprint: string | null }, state: unknown): Promise<IntegrityEntry & { fingerprint: string | null }> {
  return (await storeIntegrities(s, [{ vm, before, state }]))[0][1];
}

/** An item's nonce outcome as the API's error. */
function nonceError(outcome: string, vm: string): ApiError {
  if (outcome === 'replayed') return new ApiError(ApiErrorCode.nonceReplayed, 'the quote\'s nonce was used before: ask for a new one', { vm });
  if (outcome === 'stale') return new ApiError(ApiErrorCode.nonceStale, 'the quote\'s nonce has expired: ask for a new one', { vm });
  return new ApiError(ApiErrorCode.nonceUnknown, 'the quote\'s nonce was not issued for this VM', { vm });
}

/** A refusal of one item that is its own (see the module comment), not the request's fault. */
const itemRefusal = (e: unknown): e is ApiError | TrustError =>
  (isTrustError(e) && e.code !== TrustErrorCode.badEvidence && e.code !== TrustErrorCode.badIntegrityState) || (e instanceof ApiError && e.code.startsWith('nonce_'));

/** A bad_evidence of the engine, with the field named where it is in the request. */
function placed(e: TrustError, field: string): TrustError {
  const d = (e.details ?? {}) as { field?: unknown };
  const inner = typeof d.field === 'string' ? `.${d.field}` : '';
  return new TrustError(e.code, `${field}${inner}: ${e.message}`, { ...(e.details as object), field: `${field}${inner}` });
}

/** A VM's state within a group: as the store holds it, and where the group's increments have taken it. */
interface Slot {
  before: IntegrityEntry & { fingerprint: string | null };
  state: unknown;
}

interface Accepted {
  job: number;
  item: number;
  vm: string;
  result: EvidenceResult;
  step: number;
}

interface GroupResult {
  outcomes: (JobOutcome | { error: unknown })[];
  effects: Effects;
  counts: { ok: number; failed: number; refused: number };
}

export class EvidenceIngest {
  private queue: Pending[] = [];
  private running = false;
  private readonly maxVms: number;
  private readonly commitDelayMs: number;
  /** when the last group started (performance.now()) */
  private lastStart = -Infinity;
  /** groups stored (tests, the bench) */
  groups = 0;

  constructor(
    private readonly ctx: ServerContext,
    opts: IngestOptions = {},
  ) {
    this.maxVms = Math.max(1, opts.maxVms ?? 2000);
    this.commitDelayMs = Math.max(0, opts.commitDelayMs ?? DEFAULT_COMMIT_DELAY_MS);
  }

  /** Appraise and store a job with the others waiting; settles after the commit that holds it. */
  submit(job: IngestJob): Promise<JobOutcome> {
    return new Promise((resolve, reject) => {
      this.queue.push({ job, resolve, reject });
      if (!this.running) {
        this.running = true;
        void this.drain();
      }
    });
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        // Let the requests that arrived while the last group was stored (its commit holds this thread) be read and
        // queued first: else the next group would start with the one or two read so far, and every request would
        // pay a commit of its own.
        await new Promise((resolve) => setImmediate(resolve));
        const wait = this.lastStart + this.commitDelayMs - performance.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        this.lastStart = performance.now();
        const group: Pending[] = [];
        let vms = 0;
        while (this.queue.length > 0 && (group.length === 0 || vms + this.queue[0].job.items.length <= this.maxVms)) {
          const p = this.queue.shift() as Pending;
          vms += p.job.items.length;
          group.push(p);
        }
        await this.run(group);
      }
    } finally {
      this.running = false;
    }
  }

  private async run(group: Pending[]): Promise<void> {
    let out: GroupResult;
    try {
      out = await this.ctx.fleet.change((s, view) => this.store(s, view, group.map((p) => p.job)));
    } catch (e) {
      for (const p of group) p.reject(e);
      return;
    }
    this.groups++;
    countEffects(this.ctx, out.effects);
    for (const [k, n] of Object.entries(out.counts)) if (n > 0) this.ctx.metrics.evidence.inc({ result: k }, n);
    this.ctx.metrics.evidenceGroups.observe(group.reduce((n, p) => n + p.job.items.length, 0));
    group.forEach((p, i) => {
      const o = out.outcomes[i];
      if ('error' in o) p.reject(o.error);
      else p.resolve(o);
    });
  }

  /** One group, in the transaction `s`, from `view` (see the module comment). */
  private async store(s: Store, view: FleetView, jobs: IngestJob[]) {
    const current = view.current;
    const fleet = view.fleet;
    if (current === null || fleet === null) throw new ApiError(ApiErrorCode.noPolicy, 'no policy has been published yet');
    const nowMs = this.ctx.now().getTime();
    const at = new Date(nowMs).toISOString();
    /** the state each VM is at within this group (what it was stored as, and what it is now) */
    const states = new Map<string, Slot>();
    const accepted: Accepted[] = [];
    const steps: VerdictStep[] = [];
    const outcomes: (JobOutcome | { error: unknown })[] = [];
    const refusals: (Map<number, ApiError | TrustError>)[] = [];
    const counts = { ok: 0, failed: 0, refused: 0 };

    for (let j = 0; j < jobs.length; j++) {
      const job = jobs[j];
      const refused = new Map<number, ApiError | TrustError>();
      const mine: Accepted[] = [];
      /** the slots of the job's VMs before it, put back if the whole job is refused */
      const saved = new Map<string, Slot | undefined>();
      for (const item of job.items) if (!saved.has(item.vm)) saved.set(item.vm, states.get(item.vm));
      try {
        // the request's own faults first: nothing of the job is looked at further
        for (const item of job.items) {
          const vm = fleet.vms.get(item.vm);
          if (vm === undefined) {
            throw new ApiError(ApiErrorCode.notFound, `VM "${item.vm}" does not exist`, { vm: item.vm, field: `${item.field}.vm` });
          }
          if (job.host !== null && vm.host !== job.host) {
            throw new ApiError(ApiErrorCode.forbidden, `VM "${item.vm}" is not on host "${job.host}"`, { vm: item.vm, host: vm.host, field: `${item.field}.vm` });
          }
        }
        const quoted = job.items.some((item) => item.increment.quote !== undefined);
        const work = async () => {
          for (let i = 0; i < job.items.length; i++) {
            const item = job.items[i];
            const prev = states.get(item.vm);
            // from memory without an await when held there (the common case: an await per item adds up)
            const before = prev?.before ?? heldIntegrity(view, item.vm) ?? (await readIntegrity(s, view, item.vm));
            const stateIn = prev !== undefined ? prev.state : before.state;
            const ak = view.aks.has(item.vm) ? (view.aks.get(item.vm) ?? null) : await readAk(s, view, item.vm);
            const appraise = (nonce: string | undefined): EvidenceResult => {
              const ctx: EvidenceContext = { now: nowMs, key: item.vm };
              if (ak !== null) ctx.ak = ak;
              if (nonce !== undefined) ctx.nonce = nonce;
              return processEvidence(stateIn, item.increment, ctx);
            };
            const run = async (): Promise<EvidenceResult> => {
              const nonce = (item.increment.quote as NonNullable<EvidenceIncrement['quote']>).nonce.toLowerCase();
              const used = await s.useNonce(item.vm, nonce, at);
              if (used !== 'ok') throw nonceError(used, item.vm);
              return appraise(nonce);
            };
            try {
              // a quoted increment uses its nonce first: in a savepoint, so a refusal after it leaves it unused
              const result = item.increment.quote === undefined ? appraise(undefined) : await s.tx(run);
              mine.push({ job: j, item: i, vm: item.vm, result, step: -1 });
              states.set(item.vm, { before, state: result.newState });
            } catch (e) {
              if (isTrustError(e) && e.code === TrustErrorCode.badEvidence) throw placed(e, item.field);
              if (!itemRefusal(e)) throw e;
              if (job.single) throw e;
              refused.set(i, e);
            }
          }
        };
        // a job with quotes uses nonces as it goes: in a savepoint, so a refusal of the whole job leaves them unused
        if (quoted) await s.tx(work);
        else await work();
      } catch (e) {
        for (const [vm, slot] of saved) {
          if (slot === undefined) states.delete(vm);
          else states.set(vm, slot);
        }
        if (!(e instanceof ApiError) && !isTrustError(e)) throw e;
        outcomes.push({ error: e });
        refusals.push(new Map());
        counts.refused += job.items.length;
        continue;
      }
      for (const a of mine) {
        a.step = steps.length;
        steps.push({ vm: a.vm, verdict: a.result.verdict });
        accepted.push(a);
      }
      counts.refused += refused.size;
      refusals.push(refused);
      outcomes.push({ items: [] });
    }

    const result = applyVerdicts(fleet, steps, nowMs);
    const effects = await storeResult(this.ctx, s, result, fleet);
    // each accepted increment's state and evidence, in order (the store keeps each VM's last). An empty good
    // increment (the agent's heartbeat) is no evidence to show: it does not replace the last one, whose failing
    // entries the console shows while the VM is untrusted.
    const integrity = await storeIntegrities(
      s,
      accepted.map((a) => {
        const entries = jobs[a.job].items[a.item].increment.entries.length;
        const v = a.result.verdict;
        return {
          vm: a.vm,
          before: (states.get(a.vm) as Slot).before,
          state: a.result.newState,
          ...(entries === 0 && v.ok ? {} : { evidence: { at, entries, ok: v.ok, failures: v.failures } }),
        };
      }),
    );

    // the answers
    const planOf = new Map(result.plans.map((p) => [p.host, p.version]));
    const answers = new Map<string, EvidenceAnswerV1>();
    for (const a of accepted) {
      const v = a.result.verdict;
      if (v.ok) counts.ok++;
      else counts.failed++;
      const t = result.after[a.step] ?? fleet.trust.get(a.vm) ?? noRecord(a.vm);
      const host = fleet.vms.get(a.vm)?.host ?? null;
      const plan = result.moved[a.step] !== null && host !== null ? planOf.get(host) : undefined;
      answers.set(`${a.job}/${a.item}`, {
        verdict: {
          ok: v.ok,
          fresh: v.fresh,
          enrolled: v.enrolled,
          appraised: v.appraised,
          waiting: v.waiting,
          summary: v.summary,
          failures: v.failures as EntryFailureV1[],
          ...(v.quote === undefined ? {} : { quote: v.quote }),
        },
        trust: { vm: t.vm, state: t.state, since: t.since, reason: t.reason, lastEvidence: t.lastEvidence },
        ...(plan === undefined ? {} : { planVersion: plan }),
      });
    }
    jobs.forEach((job, j) => {
      const o = outcomes[j];
      if ('error' in o) return;
      const refused = refusals[j];
      o.items = job.items.map((item, i): ItemOutcome => {
        const r = refused.get(i);
        if (r !== undefined) return { vm: item.vm, error: r };
        return { vm: item.vm, answer: answers.get(`${j}/${i}`) as EvidenceAnswerV1 };
      });
      const hostPlan = job.host === null ? undefined : planOf.get(job.host);
      if (hostPlan !== undefined) o.planVersion = hostPlan;
    });
    const value: GroupResult = { outcomes, effects, counts };
    return { value, fleet: result.fleet as Fleet, integrity };
  }

}
