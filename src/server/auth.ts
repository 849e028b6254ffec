/**
 * Authentication and authorization of every request, in one `onRequest` hook (before the body is read):
 *
 * - `Authorization: Bearer SECRET`: an API token, looked up by the SHA-256 of the secret; no CSRF token needed,
 *   since a browser never adds that header by itself.
 * - the `hueguard_session` cookie (the console): HttpOnly, SameSite=Strict, Secure under TLS; it expires; every
 *   request that is not GET/HEAD must carry the session's CSRF token in `X-CSRF-Token`.
 *
 * Then the per-credential rate limit, and the route's row of the access table (`access.ts`). An agent's host is
 * checked against the path at once, and against the body's `host` once the body is parsed (`preHandler`).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Role } from '../api/types.ts';
import type { AccessRule } from './access.ts';
import { roleAllowed } from './access.ts';
import type { TokenRecord } from '../store/store.ts';
import type { ServerContext } from './context.ts';
import { hashSecret, sameSecret } from './credentials.ts';
import { ApiError, ApiErrorCode } from './errors.ts';

/** Who is calling: what the audit log names as the actor, and what the access table checks. */
export interface Principal {
  via: 'bearer' | 'cookie';
  /** the rate limiter's key: the token's id or the session's hash */
  key: string;
  /** `token:NAME` or `user:NAME` */
  actor: string;
  role: Role;
  /** an agent's host */
  host: string | null;
  /** the session's hash and CSRF token (cookie sessions) */
  session?: { hash: string; csrf: string };
}

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
  interface FastifyContextConfig {
    access?: AccessRule;
  }
}

export const SESSION_COOKIE = 'hueguard_session';
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The value of one cookie in a `Cookie` header, or undefined. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/**
 * Tokens looked up lately, by the hash of their secret, for `ttlMs`: an agent's requests (one per reporting period,
 * per host) need not each read the store, nor wait there behind a transaction in progress. Only tokens that are
 * known and not revoked are kept. Revoking a token clears it here at once; other controllers on the same database
 * clear theirs when they hear of it (the audit event of `token.revoke`), and in any case once `ttlMs` has passed.
 * The default (10 s) outlives an agent's reporting period (2 s): with 2 s, every report found its token just gone
 * and read the store again (one query per request in bench:controller).
 */
export class TokenCache {
  private readonly map = new Map<string, { token: TokenRecord; until: number }>();
  constructor(private readonly ttlMs: number) {}

  get(hash: string, now: number): TokenRecord | undefined {
    const e = this.map.get(hash);
    if (e === undefined) return undefined;
    if (e.until <= now) {
      this.map.delete(hash);
      return undefined;
    }
    return e.token;
  }

  put(hash: string, token: TokenRecord, now: number): void {
    if (this.ttlMs <= 0 || token.revokedAt !== null) return;
    if (this.map.size >= 100_000) this.map.clear();
    this.map.set(hash, { token, until: now + this.ttlMs });
  }

  clear(): void {
    this.map.clear();
  }
}

const unauthenticated = (message: string) =>
  new ApiError(ApiErrorCode.unauthenticated, message, undefined, { 'WWW-Authenticate': 'Bearer realm="hueguard"' });

/** The caller's principal; throws 401 for a missing, unknown, revoked or expired credential. */
export async function authenticate(ctx: ServerContext, request: FastifyRequest): Promise<Principal> {
  const auth = request.headers.authorization;
  if (auth !== undefined) {
    const m = /^Bearer +([\x21-\x7e]{1,512})\s*$/i.exec(auth);
    if (!m) throw unauthenticated('the Authorization header must be "Bearer TOKEN"');
    const hash = hashSecret(m[1]);
    const now = Date.now();
    let t = ctx.tokenCache.get(hash, now) ?? null;
    if (t === null) {
      t = await ctx.store.tokenByHash(hash);
      if (t !== null) ctx.tokenCache.put(hash, t, now);
    }
    if (t === null || t.revokedAt !== null) throw unauthenticated('unknown or revoked token');
    return { via: 'bearer', key: `token:${t.id}`, actor: `token:${t.name}`, role: t.role, host: t.host };
  }
  const secret = cookieValue(request.headers.cookie, SESSION_COOKIE);
  if (secret !== undefined && secret !== '') {
    const hash = hashSecret(secret);
    const s = await ctx.store.session(hash);
    if (s === null) throw unauthenticated('unknown session: sign in again');
    if (Date.parse(s.expiresAt) <= ctx.now().getTime()) {
      await ctx.store.deleteSession(hash);
      throw unauthenticated('the session has expired: sign in again');
    }
    return { via: 'cookie', key: `session:${hash}`, actor: s.user, role: s.role, host: null, session: { hash, csrf: s.csrf } };
  }
  throw unauthenticated('authentication required: send "Authorization: Bearer TOKEN" or sign in');
}

function forbidden(message: string): ApiError {
  return new ApiError(ApiErrorCode.forbidden, message);
}

function checkAgentHost(p: Principal, host: unknown): void {
  if (p.role !== 'agent') return;
  if (typeof host !== 'string' || host !== p.host) {
    throw forbidden(`this agent token is bound to host "${p.host}" and may not act for ${typeof host === 'string' ? `"${host}"` : 'another host'}`);
  }
}

export function installAuth(app: FastifyInstance, ctx: ServerContext): void {
  app.decorateRequest('principal', null);
  app.addHook('onRequest', async (request) => {
    const rule = request.routeOptions.config.access;
    const nowMs = ctx.now().getTime();
    if (rule?.public) {
      // Sign-in is the one public route that checks secrets: limit it per client address.
      if (request.method === 'POST' && ctx.loginLimiter) {
        const d = ctx.loginLimiter.take(`ip:${request.ip}`, nowMs);
        if (!d.ok) throw new ApiError(ApiErrorCode.rateLimited, 'too many sign-in attempts', { retryAfter: d.retryAfter }, { 'Retry-After': String(d.retryAfter) });
      }
      return;
    }
    const p = await authenticate(ctx, request);
    request.principal = p;
    if (ctx.limiter) {
      const d = ctx.limiter.take(p.key, nowMs);
      if (!d.ok) throw new ApiError(ApiErrorCode.rateLimited, 'too many requests for this credential', { retryAfter: d.retryAfter }, { 'Retry-After': String(d.retryAfter) });
    }
    if (rule === undefined) return; // no such route: the not-found handler answers
    if (!roleAllowed(rule, p.role)) throw forbidden(`role "${p.role}" may not call ${request.method} ${request.routeOptions.url}`);
    if (p.via === 'cookie' && !SAFE_METHODS.has(request.method)) {
      const sent = request.headers['x-csrf-token'];
      if (typeof sent !== 'string' || !sameSecret(sent, p.session!.csrf)) {
        throw new ApiError(ApiErrorCode.csrfRequired, 'a cookie-authenticated request that changes something must send the session\'s X-CSRF-Token header');
      }
    }
    if (rule.agentHost === 'params.name') checkAgentHost(p, (request.params as { name?: unknown }).name);
    if (rule.agentHost === 'vm.host' && p.role === 'agent') {
      const vmName = (request.params as { name?: unknown }).name;
      const vm = typeof vmName === 'string' ? await ctx.store.vm(vmName) : null;
      checkAgentHost(p, vm?.host ?? undefined);
    }
  });
  // The body's host is known only once the body is parsed and validated.
  app.addHook('preHandler', async (request) => {
    const rule = request.routeOptions.config.access;
    const p = request.principal;
    if (p && rule && !rule.public && rule.agentHost === 'body.host') checkAgentHost(p, (request.body as { host?: unknown } | null)?.host);
  });
}

/** The principal of an authenticated route (the hook guarantees one). */
export function principalOf(request: FastifyRequest): Principal {
  if (request.principal === null) throw new ApiError(ApiErrorCode.unauthenticated, 'authentication required');
  return request.principal;
}
