/** `hueguard policy import XEN.xml [--labels TEMPLATE.xml] [-o FILE]`: a Xen ACM policy as native YAML. */
import { writePolicyYaml } from '../policy/yaml-format.ts';
import { CliError, loadPolicyFile } from './policy-files.ts';
import { emit } from './output.ts';

export function policyImport(file: string, opts: { labels?: string; output?: string }): number {
  const { policy, format } = loadPolicyFile(file, { labels: opts.labels });
  if (format !== 'xen-acm') throw new CliError(`${file}: not a Xen ACM XML policy (it reads as ${format}); nothing to import`, 1);
  emit(writePolicyYaml(policy), opts.output);
  return 0;
}
