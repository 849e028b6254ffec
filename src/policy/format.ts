/**
 * One entry point for policy text in any supported format, recognised by content: Xen ACM XML (any generation)
 * or hueguard's native YAML. Pure: the caller reads the files (see `cli/policy-files.ts`).
 */
import { PolicyErrorCode, type Diagnostic } from './errors.ts';
import type { ReadResult } from './read-result.ts';
import { isXenAcm, readXenAcm } from './xen-acm.ts';
import { readPolicyYaml } from './yaml-format.ts';

export type PolicyFormat = 'xen-acm' | 'yaml';

/** 'xen-acm' for an XML document, 'yaml' otherwise (YAML reading then says what is wrong). */
export function detectFormat(text: string): PolicyFormat {
  if (isXenAcm(text)) return 'xen-acm';
  return 'yaml';
}

export interface ReadOptions {
  /** a gen1 Xen label template to merge into a gen1 policy */
  labelTemplate?: { text: string; file?: string };
}

/** Read a policy in whatever format its text is. */
export function readPolicy(text: string, file?: string, opts: ReadOptions = {}): ReadResult & { format: PolicyFormat } {
  const format = detectFormat(text);
  if (format === 'xen-acm') return { ...readXenAcm(text, file, opts), format };
  if (text.trimStart().startsWith('<')) {
    const d: Diagnostic = {
      code: PolicyErrorCode.unknownFormat, severity: 'error', file, position: { line: 1, column: 1 },
      message: 'XML, but not a Xen ACM policy (root element SecurityPolicyDefinition) nor native YAML',
    };
    return { policy: null, diagnostics: [d], format };
  }
  return { ...readPolicyYaml(text, file), format };
}
