/**
 * Policy text as it arrives over HTTP (native YAML or Xen ACM XML, recognised by content) → a policy and the YAML
 * the controller keeps (YAML as written, comments and all; Xen XML converted to the native layout). A text with any
 * error is refused as 422 `policy_invalid` with every diagnostic as {file, line, column, code, message}.
 */
import type { DiagnosticV1 } from '../api/types.ts';
import type { Diagnostic } from '../policy/errors.ts';
import { readPolicy, type PolicyFormat } from '../policy/format.ts';
import type { Policy } from '../policy/model.ts';
import { writePolicyYaml } from '../policy/yaml-write.ts';
import { ApiError, ApiErrorCode } from './errors.ts';

export type { DiagnosticV1 } from '../api/types.ts';

export function diagnosticV1(d: Diagnostic, file: string): DiagnosticV1 {
  return {
    file: d.file ?? file,
    line: d.position?.line ?? 1,
    column: d.position?.column ?? 1,
    code: d.code,
    message: d.message,
    severity: d.severity,
    ...(d.path ? { path: [...d.path] } : {}),
  };
}

export interface PolicyText {
  policy: Policy;
  /** what the controller keeps: the YAML as sent, or the native rendering of Xen XML */
  yaml: string;
  format: PolicyFormat;
  warnings: DiagnosticV1[];
}

/** The text of a request body: a raw text body, or a JSON `{text}`. */
export function bodyText(body: unknown): string {
  if (typeof body === 'string') return body;
  return (body as { text: string }).text;
}

/** Read policy text, or throw 422 with every diagnostic. `only` refuses the other format; `labelTemplate` is a Xen 3.0.0 label template. */
export function readPolicyText(text: string, file: string, only?: PolicyFormat, labelTemplate?: string): PolicyText {
  const r = readPolicy(text, file, labelTemplate === undefined ? {} : { labelTemplate: { text: labelTemplate, file: 'labels' } });
  if (only !== undefined && r.format !== only) {
    const what = only === 'xen-acm' ? 'a Xen ACM XML policy (root element SecurityPolicyDefinition)' : 'a native YAML policy';
    throw new ApiError(ApiErrorCode.policyInvalid, `expected ${what}`, {
      diagnostics: [{ file, line: 1, column: 1, code: 'unknown_format', message: `expected ${what}`, severity: 'error' }],
    });
  }
  const diagnostics = r.diagnostics.map((d) => diagnosticV1(d, file));
  if (r.policy === null) {
    const errors = diagnostics.filter((d) => d.severity === 'error');
    throw new ApiError(ApiErrorCode.policyInvalid, `the policy has ${errors.length} error${errors.length === 1 ? '' : 's'}`, { diagnostics });
  }
  return {
    policy: r.policy,
    yaml: r.format === 'yaml' ? text : writePolicyYaml(r.policy),
    format: r.format,
    warnings: diagnostics.filter((d) => d.severity === 'warning'),
  };
}
