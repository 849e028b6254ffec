/**
 * The OpenAPI 3.1 document of the API, generated from the routes themselves: every route's fastify JSON schemas
 * (params, querystring, body — per content type where it has several —, responses) and its row of the access
 * table (as `x-roles`). No plugin: fastify's `onRoute` hook sees every route as it is added.
 */
import type { FastifyInstance, RouteOptions } from 'fastify';
import { accessRule, type AccessRule } from './access.ts';
import { errorV1 } from './schemas.ts';

declare module 'fastify' {
  /** Documentation keys of a route's schema (ajv ignores them; this document reads them). */
  interface FastifySchema {
    summary?: string;
    description?: string;
    tags?: readonly string[];
    /** content types of a non-JSON answer */
    produces?: readonly string[];
    /** leave the route out of the document */
    hide?: boolean;
  }
}

interface RouteDoc {
  method: string;
  url: string;
  schema: Record<string, unknown>;
  access: AccessRule | undefined;
}

type JsonSchema = Record<string, unknown>;

const ERROR_STATUSES: Record<string, string> = {
  400: 'A parameter or body field fails its schema (`invalid_parameter`, `details.field` names it), or the body is malformed',
  401: 'No credential, or an unknown, revoked or expired one (`unauthenticated`)',
  403: 'The role may not call this route, an agent asked about another host, or a cookie request lacks X-CSRF-Token',
  404: 'Not found',
  409: 'Conflicts with the current state (`no_policy`, `policy_update_refused`, `label_conflict`, `ak_conflict`, `conflict`)',
  413: 'The body is larger than the route accepts (`body_too_large`)',
  422: 'Policy text with errors (`policy_invalid`, every diagnostic), or a label the policy does not define',
  429: 'Too many requests for this credential (`rate_limited`; see Retry-After)',
};

/** `/api/v1/hosts/:name` → `/api/v1/hosts/{name}` */
function openApiPath(url: string): string {
  return url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

function parameters(schema: JsonSchema | undefined, where: 'path' | 'query'): unknown[] {
  if (!schema) return [];
  const props = (schema.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set((schema.required ?? []) as string[]);
  return Object.entries(props).map(([name, s]) => {
    const { description, ...rest } = s;
    return { name, in: where, required: where === 'path' || required.has(name), schema: rest, ...(description ? { description } : {}) };
  });
}

function requestBody(body: JsonSchema | undefined): unknown {
  if (!body) return undefined;
  if (body.content) return { required: true, content: body.content };
  return { required: true, content: { 'application/json': { schema: body } } };
}

function operation(r: RouteDoc): Record<string, unknown> {
  const s = r.schema;
  const responses: Record<string, unknown> = {};
  for (const [code, schema] of Object.entries((s.response ?? {}) as Record<string, JsonSchema>)) {
    responses[code] = { description: code.startsWith('2') ? 'OK' : 'Error', content: { 'application/json': { schema } } };
  }
  if (s.produces) responses['200'] = { description: 'OK', content: Object.fromEntries((s.produces as string[]).map((t) => [t, { schema: { type: 'string' } }])) };
  if (Object.keys(responses).length === 0) responses[r.method === 'DELETE' ? '204' : '200'] = { description: 'OK' };
  const rule = r.access;
  const codes = rule?.public ? ['400', '413', '429'] : ['400', '401', '403', '404', '409', '413', '422', '429'];
  for (const c of codes) responses[c] ??= { description: ERROR_STATUSES[c], content: { 'application/json': { schema: { $ref: '#/components/schemas/ErrorV1' } } } };
  const params = [...parameters(s.params as JsonSchema | undefined, 'path'), ...parameters(s.querystring as JsonSchema | undefined, 'query')];
  return {
    operationId: `${r.method.toLowerCase()}${r.url.replace(/[/:{}.-]+(\w)?/g, (_m, c: string | undefined) => (c ? c.toUpperCase() : ''))}`,
    ...(s.summary ? { summary: s.summary } : {}),
    ...(s.tags ? { tags: s.tags } : {}),
    ...(params.length ? { parameters: params } : {}),
    ...(s.body ? { requestBody: requestBody(s.body as JsonSchema) } : {}),
    responses,
    security: rule?.public ? [] : [{ bearer: [] }, { session: [] }],
    'x-roles': rule?.public ? 'public' : rule?.roles,
    ...(rule && !rule.public && rule.agentHost ? { 'x-agent-host': rule.agentHost } : {}),
  };
}

/** Collects routes as they are added; `document()` builds the OpenAPI document from them. */
export class OpenApiCollector {
  private readonly routes: RouteDoc[] = [];
  private cached: unknown;

  constructor(private readonly info: { title: string; version: string }) {}

  install(app: FastifyInstance): void {
    app.addHook('onRoute', (route: RouteOptions) => {
      const methods = Array.isArray(route.method) ? route.method : [route.method];
      for (const method of methods) {
        if (method === 'HEAD' || (route.schema as { hide?: boolean } | undefined)?.hide) continue;
        this.routes.push({ method, url: route.url, schema: (route.schema ?? {}) as JsonSchema, access: accessRule(method, route.url) });
        this.cached = undefined;
      }
    });
  }

  document(): unknown {
    if (this.cached) return this.cached;
    const paths: Record<string, Record<string, unknown>> = {};
    for (const r of [...this.routes].sort((a, b) => (a.url < b.url ? -1 : a.url > b.url ? 1 : 0))) {
      const p = (paths[openApiPath(r.url)] ??= {});
      p[r.method.toLowerCase()] = operation(r);
    }
    this.cached = {
      openapi: '3.1.0',
      info: { ...this.info, description: 'hueguard controller API v1: policy, fleet, admission, decisions, audit, events' },
      paths,
      components: {
        schemas: { ErrorV1: errorV1 },
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'an API token (`hg_…`), shown once when created' },
          session: { type: 'apiKey', in: 'cookie', name: 'hueguard_session', description: 'console session from POST /api/v1/session; non-GET requests also need X-CSRF-Token' },
        },
      },
    };
    return this.cached;
  }
}
