/**
 * Reading policy files for the CLI: the size bound before reading, gen1 label templates beside their policy,
 * and printing diagnostics as FILE:LINE:COLUMN: code: message.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { formatDiagnostic, PolicyErrorCode, type Diagnostic } from '../policy/errors.ts';
import { readPolicy, type PolicyFormat } from '../policy/format.ts';
import { MAX_POLICY_BYTES } from '../policy/limits.ts';
import type { Policy } from '../policy/model.ts';

import { CliError } from './errors.ts';

export { CliError };

/** Read a text file, refusing one larger than `limit` without reading it. */
export function readTextFile(file: string, limit = MAX_POLICY_BYTES): string {
  let size: number;
  try {
    size = statSync(file).size;
  } catch (e) {
    throw new CliError(`${file}: cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (size > limit) {
    throw new CliError(`${file}:1:1: ${PolicyErrorCode.tooLarge}: ${size} bytes, more than the limit of ${limit}`, 1);
  }
  return readFileSync(file, 'utf8');
}

/** Xen 3.0.0 kept labels in NAME-security_label_template.xml beside NAME-security_policy.xml. */
export function findLabelTemplate(file: string): string | undefined {
  const m = /^(.*)-security_policy\.xml$/.exec(basename(file));
  if (!m) return undefined;
  const candidate = join(dirname(file), `${m[1]}-security_label_template.xml`);
  return existsSync(candidate) ? candidate : undefined;
}

export interface LoadedPolicy {
  policy: Policy;
  format: PolicyFormat;
  warnings: Diagnostic[];
}

export interface LoadOptions {
  /** a gen1 label template; found beside the policy file when not given */
  labels?: string;
}

export type LoadOutcome = { ok: true; loaded: LoadedPolicy } | { ok: false; diagnostics: Diagnostic[] };

/** Load a policy file of any format; never throws for a bad policy, only for an unreadable file. */
export function tryLoadPolicyFile(file: string, opts: LoadOptions = {}): LoadOutcome {
  const text = readTextFile(file);
  const templateFile = opts.labels ?? (text.includes('<SecurityPolicyDefinition') ? findLabelTemplate(file) : undefined);
  const labelTemplate = templateFile ? { text: readTextFile(templateFile), file: templateFile } : undefined;
  const r = readPolicy(text, file, { labelTemplate });
  if (r.policy === null) return { ok: false, diagnostics: r.diagnostics };
  return { ok: true, loaded: { policy: r.policy, format: r.format, warnings: r.diagnostics.filter((d) => d.severity === 'warning') } };
}

/** Load a policy file or throw a CliError holding every diagnostic. Warnings go to stderr. */
export function loadPolicyFile(file: string, opts: LoadOptions = {}): LoadedPolicy {
  const r = tryLoadPolicyFile(file, opts);
  if (!r.ok) throw new CliError(r.diagnostics.map(formatDiagnostic).join('\n'), 1);
  for (const w of r.loaded.warnings) process.stderr.write(formatDiagnostic(w) + '\n');
  return r.loaded;
}
