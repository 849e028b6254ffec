/**
 * The controller's HTTP API v1 as a fastify instance, built from a Store and options (not listening: the caller
 * decides where, `cli/serve.ts` or a test). The order of the parts is the order a request meets them:
 * access rule (attached to the route from `access.ts`) → authentication, rate limit, role, CSRF (`auth.ts`) →
 * body limit and parsing → schema validation (`validation.ts`) → the agent's host → the route → errors as ErrorV1
 * (`errors.ts`) → latency metric.
 */
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { Store } from '../store/store.ts';
import { accessRule } from './access.ts';
import { consoleRoutes, findConsoleDir } from './routes/console.ts';
import { whatIfRoutes } from './routes/whatif.ts';
import { installAuth, TokenCache } from './auth.ts';
import { PolicyCache, type ServerContext } from './context.ts';
import { installErrorHandlers } from './errors.ts';
import { FleetState } from './fleet-state.ts';
import { EvidenceIngest, type IngestOptions } from './ingest.ts';
import { installRetention, type RetentionOptions } from './retention.ts';
import { installRequestMetrics, Metrics } from './metrics.ts';
import { OpenApiCollector } from './openapi.ts';
import { RateLimiter, type RateLimitOptions } from './rate-limit.ts';
import { admissionRoutes } from './routes/admission.ts';
import { auditRoutes } from './routes/audit.ts';
import { decideRoutes } from './routes/decide.ts';
import { draftRoutes } from './routes/drafts.ts';
import { eventRoutes } from './routes/events.ts';
import { hostRoutes } from './routes/hosts.ts';
import { policyRoutes } from './routes/policy.ts';
import { resourceRoutes } from './routes/resources.ts';
import { sessionRoutes } from './routes/session.ts';
import { systemRoutes } from './routes/system.ts';
import { tokenRoutes } from './routes/tokens.ts';
import { vmRoutes } from './routes/vms.ts';
import { POLICY_TEXT_TYPES } from './schemas.ts';
import { installValidation } from './validation.ts';
import { planRoutes } from './routes/plans.ts';
import { trustRoutes } from './routes/trust.ts';
import { reportRoutes } from './routes/reports.ts';
import { firstPlans, runTick } from './trust.ts';

export const API_VERSION = '1.0.0';
/** The default request-size limit: 1 MiB (policy text routes take up to the policy limit, 16 MiB). */
export const DEFAULT_BODY_LIMIT = 1024 * 1024;

export interface AppOptions {
  store: Store;
  /** the clock (tests move it); default: the system's */
  now?: () => Date;
  /** bytes; default 1 MiB */
  bodyLimit?: number;
  /** per credential; default 50 requests/s with bursts of 500; false: none */
  rateLimit?: RateLimitOptions | false;
  /** sign-in attempts per client address; default 1/s with bursts of 20; false: none */
  loginRateLimit?: RateLimitOptions | false;
  /** default 12 hours */
  sessionTtlMs?: number;
  /** serve HTTPS with this certificate and key (PEM); the session cookie is then Secure */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** fastify's logger option; default off */
  logger?: FastifyServerOptions['logger'];
  /** server-sent events keep-alive comment interval; default 15 s */
  heartbeatMs?: number;
  /** a running VM without fresh evidence for longer than this becomes unreachable; default 30 s */
  deadlineMs?: number;
  /** how often deadlines are checked (ms); default 5 s; false: never by itself (tests call `runTick`) */
  tickMs?: number | false;
  /** how long an issued nonce may be used; default 5 minutes */
  nonceTtlMs?: number;
  /** how long a plan long poll waits for a newer plan before answering 204; default 25 s */
  planWaitMs?: number;
  /** evidence group commit (ingest.ts) */
  ingest?: IngestOptions;
  /** what is pruned, and how often (retention.ts) */
  retention?: RetentionOptions;
  /** how long a token looked up is trusted without reading the store again (auth.ts TokenCache); default 10 s, 0: never */
  tokenCacheMs?: number;
  /** the built console (`console/dist`) served at `/`; default: found next to the sources; null: none */
  consoleDir?: string | null;
}

export interface App {
  app: FastifyInstance;
  ctx: ServerContext;
}

/** Build the API (routes registered, not listening). Close it with `app.close()`; the store stays open. */
export async function buildApp(opts: AppOptions): Promise<App> {
  const app = Fastify({
    logger: opts.logger ?? false,
    bodyLimit: opts.bodyLimit ?? DEFAULT_BODY_LIMIT,
    ...(opts.tls ? { https: { cert: opts.tls.cert, key: opts.tls.key } } : {}),
    // A client must send its whole request (16 MiB at most) within a minute; answers, such as event streams, may
    // last as long as they like.
    requestTimeout: 60_000,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  }) as unknown as FastifyInstance;

  const rate = opts.rateLimit === undefined ? { burst: 500, perSecond: 50 } : opts.rateLimit;
  const login = opts.loginRateLimit === undefined ? { burst: 20, perSecond: 1 } : opts.loginRateLimit;
  const ctx = {
    store: opts.store,
    now: opts.now ?? (() => new Date()),
    metrics: new Metrics(),
    policies: new PolicyCache(opts.store),
    limiter: rate === false ? null : new RateLimiter(rate),
    loginLimiter: login === false ? null : new RateLimiter(login),
    sessionTtlMs: opts.sessionTtlMs ?? 12 * 60 * 60 * 1000,
    secureCookies: opts.tls !== undefined,
    deadlineMs: opts.deadlineMs ?? 30_000,
    nonceTtlMs: opts.nonceTtlMs ?? 5 * 60_000,
    planWaitMs: opts.planWaitMs ?? 25_000,
    evidenceRetentionMs: opts.retention?.evidenceMs ?? 30 * 24 * 60 * 60_000,
    tokenCache: new TokenCache(opts.tokenCacheMs ?? 10_000),
  } as ServerContext;
  ctx.fleet = new FleetState(ctx);
  ctx.ingest = new EvidenceIngest(ctx, opts.ingest);

  // Every route must have a row in the access table: a route without one fails here, at start.
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const method of methods) {
      const rule = accessRule(method, route.url);
      if (rule === undefined) throw new Error(`route ${method} ${route.url} has no row in server/access.ts`);
      route.config = { ...(route.config as object), access: rule };
    }
  });
  const openapi = new OpenApiCollector({ title: 'hueguard controller', version: API_VERSION });
  openapi.install(app);

  installValidation(app);
  installErrorHandlers(app);
  installAuth(app, ctx);
  installRequestMetrics(app, ctx.metrics);
  app.addContentTypeParser(POLICY_TEXT_TYPES, { parseAs: 'string' }, (_req, body, done) => done(null, body));

  // Other controllers on the same database publish too: forget the compiled policy when any of them does.
  const unsubscribe = opts.store.subscribe((e) => {
    // a token revoked (through any controller on this database): forget the tokens looked up
    if (e.kind === 'audit' && / token\.revoke /.test(e.subject)) ctx.tokenCache.clear();
    if (e.kind === 'plan') {
      // another controller's plan (ours are counted as they are stored): keep the gauge current
      void opts.store.plan(e.subject).then((p) => p && ctx.metrics.planVersion.set(p.version, { host: p.host }), () => {});
      return;
    }
    if (e.kind !== 'policy' || e.subject.startsWith('draft/')) return;
    const version = Number(e.subject);
    if (Number.isInteger(version) && version > 0) {
      ctx.policies.published(version);
      ctx.metrics.policyVersion.set(version);
    } else ctx.policies.invalidate();
  });
  app.addHook('onClose', async () => unsubscribe());
  // Closing waits for in-flight requests; a keep-alive connection a client never closes (undici keeps them ~72 s)
  // must not hold a shutdown that long: after a 2 s grace every connection left is closed.
  app.addHook('preClose', async () => {
    setTimeout(() => app.server.closeAllConnections?.(), 2000).unref();
  });

  systemRoutes(app, ctx, openapi);
  sessionRoutes(app, ctx);
  policyRoutes(app, ctx);
  draftRoutes(app, ctx);
  hostRoutes(app, ctx);
  vmRoutes(app, ctx);
  resourceRoutes(app, ctx);
  admissionRoutes(app, ctx);
  decideRoutes(app, ctx);
  auditRoutes(app, ctx);
  eventRoutes(app, ctx, opts.heartbeatMs ?? 15_000);
  tokenRoutes(app, ctx);
  trustRoutes(app, ctx);
  planRoutes(app, ctx);
  reportRoutes(app, ctx);
  whatIfRoutes(app, ctx);
  consoleRoutes(app, opts.consoleDir === undefined ? findConsoleDir() : opts.consoleDir);

  const current = await ctx.policies.current();
  ctx.metrics.policyVersion.set(current?.record.version ?? 0);
  // Hosts that have no plan yet (a controller started on an older store) get their first.
  // (A plan another controller stored meanwhile wins: a version conflict here is logged, not fatal.)
  if (current !== null) await firstPlans(ctx, current).catch((err) => app.log.warn({ err }, 'first plans not stored'));

  // Deadlines: a tick every `tickMs`, one at a time; an error is logged and the next tick tries again.
  const tickMs = opts.tickMs ?? 5_000;
  if (tickMs !== false) {
    let running = false;
    const timer = setInterval(() => {
      if (running) return;
      running = true;
      runTick(ctx).catch((err) => app.log.error({ err }, 'deadline tick failed')).finally(() => (running = false));
    }, tickMs);
    timer.unref();
    app.addHook('onClose', async () => clearInterval(timer));
  }
  installRetention(app, ctx, opts.retention);
  await app.ready();
  return { app, ctx };
}
