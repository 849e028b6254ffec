/**
 * Console sessions: sign in with an API token or a user's name and password, get an HttpOnly, SameSite=Strict
 * cookie (Secure under TLS) and the CSRF token that every cookie request that changes something must send back in
 * `X-CSRF-Token`. Sessions expire; signing out deletes them. Every sign-in, good or bad, is audited.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Role } from '../../api/types.ts';
import { principalOf, SESSION_COOKIE } from '../auth.ts';
import { audit, type ServerContext } from '../context.ts';
import { hashSecret, newSecret, verifyPassword } from '../credentials.ts';
import { ApiError, ApiErrorCode } from '../errors.ts';
import { name, sessionV1 } from '../schemas.ts';

/** `POST /api/v1/session`: a token, or a user and password. */
export type SessionRequestV1 = { token: string } | { user: string; password: string };

/** What `GET|POST /api/v1/session` answer. */
export interface SessionV1 {
  actor: string;
  role: Role;
  via: 'bearer' | 'cookie';
  host?: string | null;
  /** cookie sessions: send it back in X-CSRF-Token */
  csrfToken?: string;
  expiresAt?: string;
}

const loginBody = {
  type: 'object',
  additionalProperties: false,
  properties: {
    token: { type: 'string', minLength: 1, maxLength: 512 },
    user: name,
    password: { type: 'string', minLength: 1, maxLength: 1024 },
  },
  if: { required: ['token'] },
  then: {},
  else: { required: ['user', 'password'] },
} as const;

function setCookie(reply: FastifyReply, ctx: ServerContext, value: string, maxAgeSeconds: number): void {
  const attrs = [`${SESSION_COOKIE}=${value}`, 'Path=/', 'HttpOnly', 'SameSite=Strict', `Max-Age=${maxAgeSeconds}`];
  if (ctx.secureCookies) attrs.push('Secure');
  reply.header('Set-Cookie', attrs.join('; '));
}

export function sessionRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/api/v1/session', {
    schema: {
      summary: 'Sign in (console): a token, or a user name and password; sets the session cookie',
      tags: ['session'],
      body: loginBody,
      response: { 201: sessionV1 },
    },
  }, async (request, reply) => {
    const body = request.body as { token?: string; user?: string; password?: string };
    let actor: string;
    let role: Role;
    let via: 'token' | 'password';
    const refuse = async (subject: string, message: string): Promise<never> => {
      await audit(ctx, ctx.store, subject, 'session.login_failed', subject, { via: body.token !== undefined ? 'token' : 'password', ip: request.ip });
      throw new ApiError(ApiErrorCode.loginFailed, message);
    };
    if (body.token !== undefined) {
      via = 'token';
      const t = await ctx.store.tokenByHash(hashSecret(body.token));
      if (t === null || t.revokedAt !== null) return refuse('token:?', 'unknown or revoked token');
      if (t.role === 'agent') return refuse(`token:${t.name}`, 'an agent token cannot open a console session: agents send it as a bearer token');
      actor = `token:${t.name}`;
      role = t.role;
    } else {
      via = 'password';
      const u = await ctx.store.user(body.user!);
      const ok = await verifyPassword(body.password!, u?.passwordHash ?? null);
      if (!u || !ok) return refuse(`user:${body.user}`, 'unknown user or wrong password');
      actor = `user:${u.name}`;
      role = u.role;
    }
    const secret = newSecret();
    const csrf = newSecret(24);
    const expiresAt = new Date(ctx.now().getTime() + ctx.sessionTtlMs).toISOString();
    await ctx.store.putSession({ hash: hashSecret(secret), user: actor, role, csrf, expiresAt });
    await audit(ctx, ctx.store, actor, 'session.login', actor, { via, ip: request.ip, expiresAt });
    setCookie(reply, ctx, secret, Math.floor(ctx.sessionTtlMs / 1000));
    reply.header('Cache-Control', 'no-store');
    return reply.code(201).send({ actor, role, via: 'cookie', csrfToken: csrf, expiresAt } satisfies SessionV1);
  });

  app.get('/api/v1/session', {
    schema: { summary: 'Who am I: the credential\'s actor and role (and the CSRF token of a cookie session)', tags: ['session'], response: { 200: sessionV1 } },
  }, async (request, reply) => {
    const p = principalOf(request);
    reply.header('Cache-Control', 'no-store');
    if (p.via === 'cookie') {
      const s = await ctx.store.session(p.session!.hash);
      return { actor: p.actor, role: p.role, via: p.via, csrfToken: p.session!.csrf, ...(s ? { expiresAt: s.expiresAt } : {}) } satisfies SessionV1;
    }
    return { actor: p.actor, role: p.role, via: p.via, host: p.host } satisfies SessionV1;
  });

  app.delete('/api/v1/session', {
    schema: { summary: 'Sign out: ends a cookie session (a bearer token has nothing to end)', tags: ['session'] },
  }, async (request, reply) => {
    const p = principalOf(request);
    if (p.via === 'cookie') {
      await ctx.store.deleteSession(p.session!.hash);
      await audit(ctx, ctx.store, p.actor, 'session.logout', p.actor);
      setCookie(reply, ctx, '', 0);
    }
    return reply.code(204).send();
  });
}
