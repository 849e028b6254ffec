/** `hueguard policy export FILE --format xen-acm|yaml [-o FILE]`. */
import { isPolicyError } from '../policy/errors.ts';
import { writeXenAcm } from '../policy/xen-acm.ts';
import { writePolicyYaml } from '../policy/yaml-format.ts';
import { CliError, loadPolicyFile } from './policy-files.ts';
import { emit } from './output.ts';

export function policyExport(file: string, opts: { format: string; output?: string; labels?: string }): number {
  const { policy } = loadPolicyFile(file, { labels: opts.labels });
  if (opts.format === 'yaml') {
    emit(writePolicyYaml(policy), opts.output);
    return 0;
  }
  if (opts.format !== 'xen-acm') throw new CliError(`unknown format "${opts.format}": use xen-acm or yaml`);
  try {
    const { xml, warnings } = writeXenAcm(policy);
    for (const w of warnings) process.stderr.write(`${file}: warning: ${w}\n`);
    emit(xml, opts.output);
    return 0;
  } catch (e) {
    if (isPolicyError(e)) throw new CliError(e.diagnostics.map((d) => `${file}: ${d.code}: ${d.message}`).join('\n'), 1);
    throw e;
  }
}
