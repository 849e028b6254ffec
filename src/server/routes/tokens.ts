/**
 * API tokens and console users, managed by admins. A token's secret is shown once, in the answer that creates it;
 * the store keeps only its SHA-256. An agent token is bound to one host. Passwords are kept as scrypt hashes.
 * Every change is audited.
 */
import type { FastifyInstance } from 'fastify';
import type { Role } from '../../api/types.ts';
import type { TokenRecord } from '../../store/store.ts';
import { principalOf } from '../auth.ts';
import { audit, nowIso, type ServerContext } from '../context.ts';
import { hashPassword, hashSecret, newId, newTokenSecret } from '../credentials.ts';
import { notFound } from '../errors.ts';
import { id, name, role, tokenV1 } from '../schemas.ts';

/** A token on the wire: never its hash; its secret only when just created. */
export type TokenV1 = Omit<TokenRecord, 'hash'> & { secret?: string };

const view = ({ hash: _h, ...t }: TokenRecord): TokenV1 => t;

/** Create a token; returns it with its secret (the only time the secret is seen). */
export async function createToken(ctx: Pick<ServerContext, 'store' | 'now'>, input: { name: string; role: Role; host: string | null; secret?: string }): Promise<TokenV1 & { secret: string }> {
  const secret = input.secret ?? newTokenSecret();
  const record: TokenRecord = {
    id: newId(), name: input.name, role: input.role, host: input.role === 'agent' ? input.host : null,
    hash: hashSecret(secret), createdAt: ctx.now().toISOString(), revokedAt: null,
  };
  await ctx.store.putToken(record);
  return { ...view(record), secret };
}

export function tokenRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const tags = ['access'];

  app.get('/api/v1/tokens', {
    schema: { summary: 'Every token (without secrets)', tags, response: { 200: { type: 'array', items: tokenV1 } } },
  }, async () => (await ctx.store.tokens()).map(view));

  app.post('/api/v1/tokens', {
    schema: {
      summary: 'Create a token; its secret is in this answer only. An agent token needs its host.',
      tags,
      body: {
        type: 'object',
        required: ['name', 'role'],
        additionalProperties: false,
        properties: { name, role, host: name },
        if: { properties: { role: { const: 'agent' } } },
        then: { required: ['host'] },
        else: { not: { required: ['host'] } },
      },
      response: { 201: tokenV1 },
    },
  }, async (request, reply) => {
    const body = request.body as { name: string; role: Role; host?: string };
    const t = await createToken(ctx, { name: body.name, role: body.role, host: body.host ?? null });
    await audit(ctx, ctx.store, principalOf(request).actor, 'token.create', `token/${t.id}`, { name: t.name, role: t.role, host: t.host });
    reply.header('Cache-Control', 'no-store');
    return reply.code(201).send(t);
  });

  app.delete('/api/v1/tokens/:id', {
    schema: { summary: 'Revoke a token', tags, params: { type: 'object', required: ['id'], properties: { id } } },
  }, async (request, reply) => {
    const tokenId = (request.params as { id: string }).id;
    if (!(await ctx.store.revokeToken(tokenId, nowIso(ctx)))) throw notFound('token', tokenId);
    ctx.tokenCache.clear();
    await audit(ctx, ctx.store, principalOf(request).actor, 'token.revoke', `token/${tokenId}`);
    return reply.code(204).send();
  });

  app.put('/api/v1/users/:name', {
    schema: {
      summary: 'Create or update a console user (viewer, operator or admin) with a password',
      tags,
      params: { type: 'object', required: ['name'], properties: { name } },
      body: {
        type: 'object',
        required: ['role', 'password'],
        additionalProperties: false,
        properties: { role: { type: 'string', enum: ['viewer', 'operator', 'admin'] }, password: { type: 'string', minLength: 10, maxLength: 1024 } },
      },
      response: { 200: { type: 'object', required: ['name', 'role'], properties: { name: { type: 'string' }, role } } },
    },
  }, async (request) => {
    const userName = (request.params as { name: string }).name;
    const body = request.body as { role: Role; password: string };
    await ctx.store.putUser({ name: userName, role: body.role, passwordHash: await hashPassword(body.password) });
    await audit(ctx, ctx.store, principalOf(request).actor, 'user.put', `user/${userName}`, { role: body.role });
    return { name: userName, role: body.role };
  });
}
