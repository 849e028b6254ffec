/**
 * JSON schemas shared by the routes: names, the wire types of `api/types.ts`, and error answers. Routes build their
 * request and response schemas from these; `openapi.ts` publishes them all.
 */

/** A host, VM or token name: printable, no slash (it is a path segment), at most 255 characters. */
export const name = { type: 'string', minLength: 1, maxLength: 255, pattern: '^[^/\\u0000-\\u001f\\u007f]+$' } as const;
/** A label or resource label name, as a policy spells it. */
export const labelName = { type: 'string', minLength: 1, maxLength: 1024 } as const;
export const id = { type: 'string', minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' } as const;
export const note = { type: 'string', maxLength: 4096 } as const;
export const isoTime = { type: 'string' } as const;
export const role = { type: 'string', enum: ['viewer', 'operator', 'admin', 'agent'] } as const;
export const resourceKind = { type: 'string', enum: ['disk', 'network'] } as const;
export const updateMode = { type: 'string', enum: ['reject', 'revoke'] } as const;
export const trustState = { type: 'string', enum: ['unverified', 'trusted', 'untrusted', 'unreachable'] } as const;

export const vmResource = {
  type: 'object',
  required: ['kind', 'id'],
  additionalProperties: false,
  properties: { kind: resourceKind, id: { type: 'string', minLength: 1, maxLength: 4096 } },
} as const;

/** Any JSON object (results whose shape the monitor defines; documented in their modules). */
export const anyObject = { type: 'object', additionalProperties: true } as const;

export const errorV1 = {
  type: 'object',
  required: ['code', 'message'],
  properties: { code: { type: 'string' }, message: { type: 'string' }, details: {} },
} as const;

export const hostV1 = {
  type: 'object',
  required: ['name', 'label', 'lastSeen'],
  properties: { name: { type: 'string' }, label: { type: ['string', 'null'] }, lastSeen: { type: ['string', 'null'] } },
} as const;

export const vmV1 = {
  type: 'object',
  required: ['name', 'host', 'label', 'running', 'ports', 'resources', 'trust', 'effectiveColors'],
  properties: {
    name: { type: 'string' },
    host: { type: ['string', 'null'] },
    label: { type: ['string', 'null'] },
    running: { type: 'boolean' },
    ports: { type: 'array', items: { type: 'string' } },
    resources: { type: 'array', items: vmResource },
    trust: trustState,
    effectiveColors: { type: 'array', items: { type: 'string' } },
    isolated: { type: 'string' },
  },
} as const;

export const resourceLabelV1 = {
  type: 'object',
  required: ['kind', 'id', 'label'],
  properties: { kind: resourceKind, id: { type: 'string' }, label: { type: 'string' } },
} as const;

const versionFields = {
  version: { type: 'integer' },
  name: { type: 'string' },
  policyVersion: { type: 'string' },
  note: { type: 'string' },
  actor: { type: 'string' },
  at: { type: 'string' },
} as const;

/** A published version without its text (lists). */
export const policyVersionSummaryV1 = {
  type: 'object',
  required: ['version', 'name', 'policyVersion', 'note', 'actor', 'at'],
  properties: versionFields,
} as const;

export const policyVersionV1 = {
  type: 'object',
  required: ['version', 'name', 'policyVersion', 'note', 'actor', 'at', 'yaml'],
  properties: { ...versionFields, yaml: { type: 'string' } },
} as const;

export const draftSummaryV1 = {
  type: 'object',
  required: ['id', 'base', 'actor', 'updatedAt'],
  properties: { id: { type: 'string' }, base: { type: ['integer', 'null'] }, actor: { type: 'string' }, updatedAt: { type: 'string' } },
} as const;

export const diagnosticV1 = {
  type: 'object',
  required: ['file', 'line', 'column', 'code', 'message', 'severity'],
  properties: {
    file: { type: 'string' },
    line: { type: 'integer' },
    column: { type: 'integer' },
    code: { type: 'string' },
    message: { type: 'string' },
    severity: { type: 'string', enum: ['error', 'warning'] },
    path: { type: 'array', items: { type: ['string', 'integer'] } },
  },
} as const;

export const draftV1 = {
  type: 'object',
  required: ['id', 'base', 'actor', 'updatedAt', 'yaml', 'name', 'policyVersion'],
  properties: {
    ...draftSummaryV1.properties,
    yaml: { type: 'string' },
    name: { type: 'string' },
    policyVersion: { type: 'string' },
    format: { type: 'string', enum: ['yaml', 'xen-acm'] },
    warnings: { type: 'array', items: diagnosticV1 },
  },
} as const;

export const auditRecordV1 = {
  type: 'object',
  required: ['seq', 'at', 'actor', 'action', 'subject', 'details', 'hash', 'prevHash'],
  properties: {
    seq: { type: 'integer' },
    at: { type: 'string' },
    actor: { type: 'string' },
    action: { type: 'string' },
    subject: { type: 'string' },
    details: {},
    hash: { type: 'string' },
    prevHash: { type: 'string' },
  },
} as const;

export const tokenV1 = {
  type: 'object',
  required: ['id', 'name', 'role', 'host', 'createdAt', 'revokedAt'],
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    role,
    host: { type: ['string', 'null'] },
    createdAt: { type: 'string' },
    revokedAt: { type: ['string', 'null'] },
    /** only in the answer that creates it */
    secret: { type: 'string' },
  },
} as const;

export const sessionV1 = {
  type: 'object',
  required: ['actor', 'role', 'via'],
  properties: {
    actor: { type: 'string' },
    role,
    via: { type: 'string', enum: ['bearer', 'cookie'] },
    host: { type: ['string', 'null'] },
    csrfToken: { type: 'string' },
    expiresAt: { type: 'string' },
  },
} as const;

/** Policy text in the body: raw (YAML or Xen XML content types) or JSON `{text}`. */
export function policyTextBody(maxBytes: number, extra: Record<string, unknown> = {}) {
  const text = { type: 'string', minLength: 1, maxLength: maxBytes } as const;
  const raw = { schema: text };
  return {
    content: {
      'application/json': {
        schema: { type: 'object', required: ['text'], additionalProperties: false, properties: { text, ...extra } },
      },
      'text/plain': raw,
      'application/yaml': raw,
      'application/x-yaml': raw,
      'text/yaml': raw,
      'application/xml': raw,
      'text/xml': raw,
    },
  };
}

/** The content types that carry raw policy text. */
export const POLICY_TEXT_TYPES = ['application/yaml', 'application/x-yaml', 'text/yaml', 'application/xml', 'text/xml'];
