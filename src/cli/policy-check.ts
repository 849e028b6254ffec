/** `hueguard policy check FILE…`: validate policies of any format; print every problem; exit 1 if any. */
import { formatDiagnostic } from '../policy/errors.ts';
import { tryLoadPolicyFile } from './policy-files.ts';

export function policyCheck(files: string[], opts: { labels?: string; quiet?: boolean }): number {
  let failed = 0;
  for (const file of files) {
    const r = tryLoadPolicyFile(file, { labels: opts.labels });
    if (!r.ok) {
      failed++;
      for (const d of r.diagnostics) process.stderr.write(formatDiagnostic(d) + '\n');
      continue;
    }
    for (const w of r.loaded.warnings) process.stderr.write(formatDiagnostic(w) + '\n');
    const p = r.loaded.policy;
    if (!opts.quiet) {
      process.stdout.write(
        `${file}: ok: ${r.loaded.format} policy "${p.name}" ${p.version}: ` +
          `${p.colors?.length ?? 'no'} colors, ${p.walls?.length ?? 'no'} wall types, ${p.conflicts.length} conflict sets, ` +
          `${p.labels.length} labels, ${p.resources.length} resource labels, host label ${p.host ?? '(none)'}\n`,
      );
    }
  }
  return failed > 0 ? 1 : 0;
}
