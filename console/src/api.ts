/**
 * The console's one way to the controller: `api(method, path, body)` over fetch, same origin, with the session
 * cookie. Every change sends the session's CSRF token. A 401 means the session expired or was ended: the app is
 * told (it shows sign-in over the page, which keeps its state, drafts included) and the call fails with `ApiError`.
 */
import type { ErrorV1 } from '../../src/api/types.ts';

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: unknown;
  constructor(status: number, body: ErrorV1) {
    super(body.message);
    this.status = status;
    this.code = body.code;
    this.details = body.details;
  }
  /** the field a 400 names (`details.field`), if any */
  get field(): string | undefined {
    const d = this.details as { field?: unknown } | null;
    return d && typeof d.field === 'string' ? d.field : undefined;
  }
}

let csrf: string | null = null;
const expiredListeners = new Set<() => void>();

export function setCsrf(token: string | null): void {
  csrf = token;
}

/** Called whenever the controller answers 401 to a signed-in page. */
export function onSessionExpired(fn: () => void): () => void {
  expiredListeners.add(fn);
  return () => expiredListeners.delete(fn);
}

/** Ask whether the session still holds; tell the app when it does not (a 401). */
export async function checkSession(): Promise<boolean> {
  const res = await fetch('/api/v1/session', { credentials: 'same-origin', headers: { Accept: 'application/json' } });
  if (res.status === 401) for (const fn of expiredListeners) fn();
  return res.ok;
}

export async function api<T>(method: string, path: string, body?: unknown, opts: { text?: boolean; signal?: AbortSignal } = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  let payload: string | undefined;
  if (body !== undefined) {
    if (opts.text) {
      headers['Content-Type'] = 'text/plain; charset=utf-8';
      payload = String(body);
    } else {
      headers['Content-Type'] = 'application/json';
      payload = JSON.stringify(body);
    }
  }
  if (method !== 'GET' && csrf !== null) headers['X-CSRF-Token'] = csrf;
  const res = await fetch(path, { method, headers, body: payload, credentials: 'same-origin', signal: opts.signal });
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let json: unknown = null;
  try {
    json = text === '' ? null : JSON.parse(text);
  } catch {
    json = null;
  }
  if (!res.ok) {
    const err = json && typeof json === 'object' && 'code' in json ? (json as ErrorV1) : { code: `http_${res.status}`, message: text.slice(0, 200) || res.statusText };
    if (res.status === 401 && path !== '/api/v1/session') for (const fn of expiredListeners) fn();
    throw new ApiError(res.status, err);
  }
  return json as T;
}

export const get = <T>(path: string, signal?: AbortSignal) => api<T>('GET', path, undefined, { signal });
export const post = <T>(path: string, body?: unknown) => api<T>('POST', path, body ?? {});
export const put = <T>(path: string, body: unknown) => api<T>('PUT', path, body);
export const del = <T>(path: string) => api<T>('DELETE', path);

/** A path segment from a fleet name (names may hold any character but `/`). */
export const seg = (s: string) => encodeURIComponent(s);
