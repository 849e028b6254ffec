/**
 * `hueguard policy update OLD NEW --running STATE.json --mode reject|revoke [--json]`: replay what runs against
 * the new policy. Exit 0 when the update is accepted, 1 when it is refused.
 */
import { updatePolicy, type UpdateMode, type UpdateResult } from '../monitor/update.ts';
import { parseRunningState } from '../monitor/running-state.ts';
import { CliError, loadPolicyFile, readTextFile } from './policy-files.ts';
import { formatDiff } from './policy-diff.ts';
import { json } from './output.ts';

function formatResult(r: UpdateResult): string[] {
  const out: string[] = [];
  out.push(r.accepted ? `ACCEPTED (${r.mode})` : `REFUSED (${r.mode}): the current policy stays`);
  for (const f of r.refusals) out.push(`  refused: ${f.code}: ${f.message}`);
  for (const v of r.violations) out.push(`  violation: ${v.code}: ${v.message}`);
  for (const i of r.isolate) out.push(`  isolate ${i.vm} on ${i.host}: ${i.reasons.join(', ')}`);
  for (const f of r.closedFlows) out.push(`  close flow ${f.a} <-> ${f.b}`);
  for (const l of r.relabeled) out.push(`  relabel ${l.vm}: ${l.from} -> ${l.to}`);
  const diff = formatDiff(r.diff, r.sharing);
  if (diff.length) out.push('changes:', ...diff.map((l) => '  ' + l));
  return out;
}

export function policyUpdate(oldFile: string, newFile: string, opts: { running: string; mode: string; json?: boolean }): number {
  if (opts.mode !== 'reject' && opts.mode !== 'revoke') throw new CliError(`--mode must be reject or revoke, not "${opts.mode}"`);
  const oldP = loadPolicyFile(oldFile).policy;
  const newP = loadPolicyFile(newFile).policy;
  const state = parseRunningState(readTextFile(opts.running), opts.running);
  const r = updatePolicy(oldP, newP, state, opts.mode as UpdateMode);
  process.stdout.write((opts.json ? json(r) : formatResult(r).join('\n')) + '\n');
  return r.accepted ? 0 : 1;
}
