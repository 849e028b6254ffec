/** `hueguard policy explain FILE LABEL_A LABEL_B [--json]`: may they share, and why. */
import { CompiledPolicy } from '../monitor/compile.ts';
import { explainShare } from '../monitor/decisions.ts';
import { loadPolicyFile } from './policy-files.ts';
import { json } from './output.ts';

export function policyExplain(file: string, a: string, b: string, opts: { json?: boolean }): number {
  const p = new CompiledPolicy(loadPolicyFile(file).policy);
  const answer = explainShare(p, a, b);
  if (opts.json) {
    process.stdout.write(json({ a, b, ...answer }) + '\n');
    return 0;
  }
  const colorsOf = (l: string) => p.colorsOf(p.label(l)).join(', ') || 'none';
  const lines = [
    `${a}: colors ${colorsOf(a)}`,
    `${b}: colors ${colorsOf(b)}`,
    answer.reason === 'no_ste_component'
      ? `ALLOW: the policy has no colors (no STE component), so it restricts no sharing`
      : answer.allow
        ? `ALLOW: they share ${answer.colors.length > 1 ? 'the colors' : 'the color'} ${answer.colors.join(', ')}`
        : `DENY: no common color`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}
