/** The real Xen ACM policies under ../shared/data/xen-acm/, for tests: their paths, and each one imported. */
import { readdirSync, readFileSync, statSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatDiagnostic } from './errors.ts';
import type { Policy } from './model.ts';
import { readXenAcm } from './xen-acm.ts';

export const XEN_DATA = join(dirname(fileURLToPath(import.meta.url)), '../../../shared/data/xen-acm');

const walk = (d: string): string[] =>
  readdirSync(d).flatMap((n) => (statSync(join(d, n)).isDirectory() ? walk(join(d, n)) : [join(d, n)]));

/** Every policy file (`*-security_policy.xml`), sorted; gen1 label templates are not listed (see `loadXenPolicy`). */
export function xenPolicyFiles(): string[] {
  return walk(XEN_DATA).filter((f) => f.endsWith('-security_policy.xml')).sort();
}

/** The gen1 label template beside a policy file, if there is one. */
export function labelTemplateOf(file: string): string | undefined {
  const tpl = file.replace(/-security_policy\.xml$/, '-security_label_template.xml');
  return tpl !== file && existsSync(tpl) ? tpl : undefined;
}

/** A Xen policy (path absolute or under XEN_DATA) imported with its label template; throws if it is refused. */
export function loadXenPolicy(path: string): Policy {
  const file = path.startsWith('/') ? path : join(XEN_DATA, path);
  const tpl = labelTemplateOf(file);
  const opts = tpl ? { labelTemplate: { text: readFileSync(tpl, 'utf8'), file: tpl } } : undefined;
  const r = readXenAcm(readFileSync(file, 'utf8'), file, opts);
  if (r.policy === null) throw new Error(`the importer refuses ${file}:\n${r.diagnostics.map(formatDiagnostic).join('\n')}`);
  return r.policy;
}
