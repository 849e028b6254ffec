/**
 * The controller's errors: one class, thrown where the problem is found, and one handler that turns every error
 * (ours, fastify's schema and body errors, anything unexpected) into an `ErrorV1` answer `{code, message, details}`.
 * The codes are stable: clients (the agent, the console) branch on them, never on messages.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ErrorV1 } from '../api/types.ts';
import { isStoreError, StoreErrorCode } from '../store/errors.ts';
import { isTrustError, TrustErrorCode } from '../trust/errors.ts';

/**
 * The trust engine's codes are answered as they are (stable too): 400 for what the request got wrong, 409 for
 * what conflicts with the verifier's state, 404 for an unknown VM.
 */
export const TRUST_STATUS: Record<TrustErrorCode, number> = {
  unknown_vm: 404,
  not_untrusted: 409,
  reason_required: 400,
  bad_integrity_state: 500,
  bad_evidence: 400,
  evidence_out_of_order: 409,
  evidence_backlog: 409,
  no_attestation_key: 409,
  bad_argument: 400,
};

export const ApiErrorCode = {
  /** a parameter, query or body field fails its schema; `details.field` names it */
  invalidParameter: 'invalid_parameter',
  /** the body is not parseable (malformed JSON, empty JSON body) */
  invalidBody: 'invalid_body',
  /** the body's content type is not one the route reads */
  unsupportedMediaType: 'unsupported_media_type',
  /** the body is larger than the route accepts */
  bodyTooLarge: 'body_too_large',
  /** no credential, or one that is unknown, revoked or expired */
  unauthenticated: 'unauthenticated',
  /** the credential's role may not call this route, or an agent asked about another host */
  forbidden: 'forbidden',
  /** a cookie-authenticated request that changes something without the session's `X-CSRF-Token` */
  csrfRequired: 'csrf_token_required',
  /** too many requests for this credential; `Retry-After` says when to come back */
  rateLimited: 'rate_limited',
  /** no route for this method and path */
  routeNotFound: 'route_not_found',
  /** the named thing (draft, version, host, VM, token…) does not exist */
  notFound: 'resource_not_found',
  /** no policy has been published yet, and the request needs one */
  noPolicy: 'no_policy',
  /** the request conflicts with the current state (a name in use, a stale base) */
  conflict: 'conflict',
  /** the policy text has errors: `details.diagnostics` lists every one as {file, line, column, code, message} */
  policyInvalid: 'policy_invalid',
  /** a policy update refused (identity checks, or violations in reject mode): `details` is the update result */
  updateRefused: 'policy_update_refused',
  /** a label or resource label that the current policy does not define */
  unknownLabel: 'unknown_label',
  /** a label change that the running state forbids (host authorization, Chinese Wall, resources) */
  labelConflict: 'label_conflict',
  /** a VM's attestation key is registered already and the new one differs: only an operator may replace it */
  akConflict: 'ak_conflict',
  /** a quote's nonce was used before (nothing changed) */
  nonceReplayed: 'nonce_replayed',
  /** a quote's nonce expired before it was used (nothing changed) */
  nonceStale: 'nonce_stale',
  /** a quote's nonce was never issued for this VM (nothing changed) */
  nonceUnknown: 'nonce_unknown',
  /** a bad user name or password, or a token that cannot open a session */
  loginFailed: 'login_failed',
  internal: 'internal_error',
  unavailable: 'service_unavailable',
} as const;
export type ApiErrorCode = (typeof ApiErrorCode)[keyof typeof ApiErrorCode];

const STATUS: Record<ApiErrorCode, number> = {
  invalid_parameter: 400,
  invalid_body: 400,
  unsupported_media_type: 415,
  body_too_large: 413,
  unauthenticated: 401,
  forbidden: 403,
  csrf_token_required: 403,
  rate_limited: 429,
  route_not_found: 404,
  resource_not_found: 404,
  no_policy: 409,
  conflict: 409,
  policy_invalid: 422,
  policy_update_refused: 409,
  unknown_label: 422,
  label_conflict: 409,
  ak_conflict: 409,
  nonce_replayed: 409,
  nonce_stale: 409,
  nonce_unknown: 409,
  login_failed: 401,
  internal_error: 500,
  service_unavailable: 503,
};

/** The one error class of the server: a stable code (its HTTP status follows from it), a message, details. */
export class ApiError extends Error {
  readonly code: ApiErrorCode;
  readonly status: number;
  readonly details?: unknown;
  /** extra response headers (Retry-After, WWW-Authenticate) */
  readonly headers?: Record<string, string>;
  constructor(code: ApiErrorCode, message: string, details?: unknown, headers?: Record<string, string>) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.status = STATUS[code];
    this.details = details;
    this.headers = headers;
  }
}

export function isApiError(e: unknown): e is ApiError {
  return e instanceof ApiError;
}

export const notFound = (what: string, name: string | number) =>
  new ApiError(ApiErrorCode.notFound, `${what} "${name}" does not exist`, { [what]: name });

/** Ajv's error list (as fastify passes it) → the field at fault, e.g. `body.queries[2].op`, and a sentence. */
export function describeValidation(
  context: string,
  errors: ReadonlyArray<{ instancePath: string; keyword: string; message?: string; params: Record<string, unknown> }>,
): { field: string; message: string; problems: { field: string; keyword: string; message: string }[] } {
  const part = context === 'querystring' ? 'query' : context;
  const problems = errors.map((e) => {
    const path = e.instancePath
      .split('/')
      .slice(1)
      .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
      .map((s) => (/^\d+$/.test(s) ? `[${s}]` : `.${s}`))
      .join('');
    let field = part + path;
    let message = e.message ?? e.keyword;
    if (e.keyword === 'required') {
      field += `.${String(e.params.missingProperty)}`;
      message = 'is required';
    } else if (e.keyword === 'additionalProperties') {
      field += `.${String(e.params.additionalProperty)}`;
      message = 'is not a known field';
    } else if (e.keyword === 'enum') {
      message = `must be one of ${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    }
    return { field, keyword: e.keyword, message };
  });
  // `if`/`then` schemas add a summary error after the real one: the first is the most precise.
  const first = problems.find((p) => p.keyword !== 'if') ?? problems[0] ?? { field: part, keyword: 'schema', message: 'is invalid' };
  return { field: first.field, message: `${first.field} ${first.message}`, problems };
}

function send(reply: FastifyReply, status: number, body: ErrorV1, headers?: Record<string, string>): FastifyReply {
  if (headers) for (const [k, v] of Object.entries(headers)) reply.header(k, v);
  return reply.code(status).type('application/json; charset=utf-8').send(body);
}

/** Install the error and not-found handlers: every failure answers `ErrorV1`. */
export function installErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | ApiError | Error, request: FastifyRequest, reply: FastifyReply) => {
    if (isApiError(err)) {
      if (err.status >= 500) request.log.error({ err }, err.message);
      return send(reply, err.status, { code: err.code, message: err.message, ...(err.details === undefined ? {} : { details: err.details }) }, err.headers);
    }
    if (isTrustError(err)) {
      const status = TRUST_STATUS[err.code] ?? 500;
      if (status >= 500) request.log.error({ err }, err.message);
      return send(reply, status, { code: err.code, message: err.message, ...(err.details === undefined ? {} : { details: err.details }) });
    }
    if (isStoreError(err)) {
      // The store's codes are stable too: a conflict is the caller's to resolve, the rest is ours.
      const status = err.code === StoreErrorCode.conflict || err.code === StoreErrorCode.planVersionConflict ? 409
        : err.code === StoreErrorCode.closed || err.code === StoreErrorCode.schemaTooNew ? 503 : 500;
      if (status >= 500) request.log.error({ err }, err.message);
      return send(reply, status, { code: err.code, message: status === 409 ? err.message : `store error: ${err.code}` });
    }
    const fe = err as FastifyError;
    if (fe.validation) {
      const v = describeValidation(fe.validationContext ?? 'body', fe.validation as never);
      return send(reply, 400, { code: ApiErrorCode.invalidParameter, message: v.message, details: { field: v.field, problems: v.problems } });
    }
    switch (fe.code) {
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return send(reply, 413, { code: ApiErrorCode.bodyTooLarge, message: 'the request body is larger than this route accepts', details: { limit: request.routeOptions.bodyLimit } });
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return send(reply, 415, { code: ApiErrorCode.unsupportedMediaType, message: `content type "${request.headers['content-type'] ?? ''}" is not accepted here` });
      default:
    }
    if (fe.statusCode === 413) return send(reply, 413, { code: ApiErrorCode.bodyTooLarge, message: fe.message });
    if (fe.statusCode === 415) return send(reply, 415, { code: ApiErrorCode.unsupportedMediaType, message: fe.message });
    if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
      return send(reply, 400, { code: ApiErrorCode.invalidBody, message: fe.message });
    }
    request.log.error({ err }, 'unexpected error');
    return send(reply, 500, { code: ApiErrorCode.internal, message: 'internal error' });
  });
  app.setNotFoundHandler((request, reply) =>
    send(reply, 404, { code: ApiErrorCode.routeNotFound, message: `no route ${request.method} ${request.url.split('?')[0]}` }));
}
