/**
 * The agent's side of the HTTP API v1 (the agent never imports the controller: DESIGN.md §3). Every call carries
 * the agent's token; an error answer becomes an AgentError `controller_failed` with the API's own code, status and
 * details, and a network failure one with `status: 0` — the agent tells "refused" from "unreachable" by it.
 */
import type {
  AdmissionRequestV1,
  HostEvidenceAnswerV1,
  HostEvidenceRequestV1,
  HostInventoryV1,
  HostNoncesV1,
  HostReportV1,
  PlanV1,
} from '../api/types.ts';
import { AgentError } from './errors.ts';

export interface AdmissionAnswer {
  allow: boolean;
  reason: string;
  details: { message: string } & Record<string, unknown>;
}

export interface ControllerErrorDetails {
  status: number;
  code?: string;
  details?: unknown;
}

export class ControllerClient {
  readonly #base: string;
  readonly #token: string;
  readonly #timeoutMs: number;

  constructor(base: string, token: string, options: { timeoutMs?: number } = {}) {
    this.#base = base.replace(/\/+$/, '');
    this.#token = token;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
  }

  async #call<T>(method: string, path: string, body?: unknown, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<{ status: number; body: T | null }> {
    const timeout = AbortSignal.timeout(opts.timeoutMs ?? this.#timeoutMs);
    const signal = opts.signal ? AbortSignal.any([timeout, opts.signal]) : timeout;
    let res: Response;
    try {
      res = await fetch(this.#base + path, {
        method,
        headers: { authorization: `Bearer ${this.#token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        body: body !== undefined ? JSON.stringify(body) : undefined,
        signal,
      });
    } catch (e) {
      const why = (e as Error).name === 'TimeoutError' ? 'timed out' : ((e as { cause?: Error }).cause?.message ?? (e as Error).message);
      throw new AgentError('controller_failed', `${method} ${path}: controller unreachable (${why})`, { status: 0 } satisfies ControllerErrorDetails);
    }
    const text = await res.text();
    let parsed: unknown = null;
    if (text) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = null;
      }
    }
    if (res.status >= 400) {
      const err = (parsed ?? {}) as { code?: string; message?: string; details?: unknown };
      throw new AgentError('controller_failed', `${method} ${path}: ${res.status} ${err.code ?? ''} ${err.message ?? text.slice(0, 200)}`.trim(), {
        status: res.status,
        code: err.code,
        details: err.details,
      } satisfies ControllerErrorDetails);
    }
    return { status: res.status, body: parsed as T | null };
  }

  /** Register the host and its label (null: the policy's bootstrap label). */
  async putHost(host: string, label: string | null): Promise<void> {
    await this.#call('PUT', `/api/v1/hosts/${encodeURIComponent(host)}`, { label });
  }

  async putInventory(host: string, inventory: HostInventoryV1): Promise<void> {
    await this.#call('PUT', `/api/v1/hosts/${encodeURIComponent(host)}/vms`, inventory);
  }

  /** The host's plan once its version is above `after` (null: the controller's wait ran out; ask again). */
  async waitPlan(host: string, after: number, signal?: AbortSignal): Promise<PlanV1 | null> {
    const r = await this.#call<PlanV1>('GET', `/api/v1/hosts/${encodeURIComponent(host)}/plan?after=${after}`, undefined, { timeoutMs: 60_000, signal });
    return r.status === 204 ? null : r.body;
  }

  async postEvidence(host: string, request: HostEvidenceRequestV1): Promise<HostEvidenceAnswerV1> {
    return (await this.#call<HostEvidenceAnswerV1>('POST', `/api/v1/hosts/${encodeURIComponent(host)}/evidence`, request, { timeoutMs: 30_000 })).body!;
  }

  async admission(request: AdmissionRequestV1): Promise<AdmissionAnswer> {
    return (await this.#call<AdmissionAnswer>('POST', '/api/v1/admission', request)).body!;
  }

  /** Register (or confirm) a VM's attestation key: its TPM2B_PUBLIC. */
  async putAk(vm: string, ak: Buffer): Promise<void> {
    await this.#call('PUT', `/api/v1/vms/${encodeURIComponent(vm)}/ak`, { ak: ak.toString('base64') });
  }

  /** A fresh nonce for each VM's next quote. */
  async nonces(host: string, vms: string[]): Promise<Map<string, string>> {
    const r = await this.#call<HostNoncesV1>('POST', `/api/v1/hosts/${encodeURIComponent(host)}/nonces`, { vms });
    return new Map((r.body?.nonces ?? []).map((n) => [n.vm, n.nonce]));
  }

  /** What the host's data plane holds and what it dropped since the last report. */
  async putReport(host: string, report: HostReportV1): Promise<void> {
    await this.#call('PUT', `/api/v1/hosts/${encodeURIComponent(host)}/report`, report);
  }
}

export function controllerStatus(e: unknown): number | null {
  return e instanceof AgentError && e.code === 'controller_failed' ? ((e.details as ControllerErrorDetails | undefined)?.status ?? null) : null;
}
