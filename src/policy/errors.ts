/**
 * Policy errors: every problem found in a policy, with a stable code and the place it was found.
 *
 * Readers (YAML, Xen XML) and the validator collect `Diagnostic`s; a policy with any error-severity diagnostic
 * is never loaded. `PolicyError` carries all of them at once.
 */
import type { ModelPath } from './model.ts';

export const PolicyErrorCode = {
  /** the input is not YAML, or not well-formed */
  yamlSyntax: 'yaml_syntax',
  /** the input is not well-formed XML */
  xmlSyntax: 'xml_syntax',
  /** the input does not have the shape of a policy (JSON Schema, or Xen's element structure) */
  schema: 'schema_violation',
  /** the input is neither native YAML nor Xen ACM XML */
  unknownFormat: 'unknown_format',
  /** the input is larger than a policy may be */
  tooLarge: 'input_too_large',
  /** YAML aliases expand beyond the limit (an alias bomb) */
  aliasLimit: 'alias_limit',
  /** a DOCTYPE (and so any entity definition, internal or external) in XML */
  doctype: 'doctype_forbidden',
  /** a name given twice (color, wall type, conflict set, label, resource label, or a type twice in one list) */
  duplicate: 'duplicate_name',
  /** a color (STE type) that the policy does not declare */
  unknownColor: 'unknown_color',
  /** a wall type (Chinese Wall type) that the policy does not declare */
  unknownWall: 'unknown_wall',
  /** a label holds two wall types of one conflict set */
  labelConflict: 'label_in_conflict',
  /** the policy has no bootstrap (host) label, or it names no label */
  missingBootstrap: 'missing_bootstrap',
  /** a `:` in the policy name or a label name (Xen reserves it) */
  badName: 'bad_name',
  /** an empty name */
  emptyName: 'empty_name',
  /** a resource label that does not have exactly one color */
  resourceColors: 'resource_color_count',
  /** a version that the target format cannot carry (Xen: MAJOR.MINOR) */
  badVersion: 'bad_version',
  /** a `from` rename that is malformed (an empty or invalid source name, or one source renamed twice) */
  badRename: 'bad_rename',
} as const;
export type PolicyErrorCode = (typeof PolicyErrorCode)[keyof typeof PolicyErrorCode];

export interface SourcePosition {
  /** 1-based */
  line: number;
  /** 1-based */
  column: number;
}

export interface Diagnostic {
  code: PolicyErrorCode;
  message: string;
  severity: 'error' | 'warning';
  /** where in the model (absent for syntax errors, which have no model yet) */
  path?: ModelPath;
  /** where in the source text */
  position?: SourcePosition;
  file?: string;
}

/** `FILE:LINE:COLUMN: code: message`, the form every tool prints (line and column 1 when unknown). */
export function formatDiagnostic(d: Diagnostic): string {
  const file = d.file ?? '<input>';
  const line = d.position?.line ?? 1;
  const column = d.position?.column ?? 1;
  const sev = d.severity === 'warning' ? 'warning: ' : '';
  return `${file}:${line}:${column}: ${sev}${d.code}: ${d.message}`;
}

/** Thrown when a policy cannot be loaded; holds every diagnostic found (warnings included). */
export class PolicyError extends Error {
  readonly diagnostics: Diagnostic[];
  readonly code: PolicyErrorCode;
  constructor(diagnostics: Diagnostic[]) {
    const errors = diagnostics.filter((d) => d.severity === 'error');
    super(errors.map(formatDiagnostic).join('\n') || 'invalid policy');
    this.name = 'PolicyError';
    this.diagnostics = diagnostics;
    this.code = errors[0]?.code ?? PolicyErrorCode.schema;
  }
}

export function isPolicyError(e: unknown): e is PolicyError {
  return e instanceof PolicyError;
}
