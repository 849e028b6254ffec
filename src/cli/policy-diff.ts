/** `hueguard policy diff OLD NEW [--json]`: what changed, and which label pairs gain or lose sharing. */
import { matchNames, structuralDiff, type ListChange, type StructuralDiff } from '../policy/diff.ts';
import { CompiledPolicy } from '../monitor/compile.ts';
import { sharingDiff, type SharingDiff } from '../monitor/update.ts';
import { loadPolicyFile } from './policy-files.ts';
import { json } from './output.ts';

function listLine(what: string, c: ListChange, out: string[]): void {
  for (const a of c.added) out.push(`+ ${what} ${a}`);
  for (const r of c.removed) out.push(`- ${what} ${r}`);
}

/** The diff as lines a reviewer reads: `+` added or gained, `-` removed or lost, `~` changed. */
export function formatDiff(d: StructuralDiff, s: SharingDiff): string[] {
  const out: string[] = [];
  if (d.name) out.push(`~ policy ${d.name.from} -> ${d.name.to}`);
  if (d.version) out.push(`~ version ${d.version.from} -> ${d.version.to}`);
  if (d.host) out.push(`~ host label ${d.host.from ?? '(none)'} -> ${d.host.to ?? '(none)'}`);
  listLine('color', d.colors, out);
  listLine('wall type', d.walls, out);
  listLine('conflict set', d.conflicts, out);
  for (const c of d.conflicts.changed) {
    out.push(`~ conflict set ${c.name}: ${[...c.walls.added.map((w) => '+' + w), ...c.walls.removed.map((w) => '-' + w)].join(' ')}`);
  }
  for (const r of d.labels.renamed) out.push(`~ label ${r.from} renamed to ${r.to}`);
  listLine('label', d.labels, out);
  for (const c of d.labels.changed) {
    const parts = [
      ...c.colors.added.map((x) => `+color ${x}`), ...c.colors.removed.map((x) => `-color ${x}`),
      ...c.walls.added.map((x) => `+wall ${x}`), ...c.walls.removed.map((x) => `-wall ${x}`),
      ...(c.onUntrusted ? [`onUntrusted ${c.onUntrusted.from} -> ${c.onUntrusted.to}`] : []),
    ];
    out.push(`~ label ${c.name}: ${parts.join(', ')}`);
  }
  for (const r of d.resources.renamed) out.push(`~ resource ${r.from} renamed to ${r.to}`);
  listLine('resource', d.resources, out);
  for (const c of d.resources.changed) if (c.color) out.push(`~ resource ${c.name}: color ${c.color.from} -> ${c.color.to}`);
  for (const [a, b] of s.gained) out.push(`+ share ${a} <-> ${b}`);
  for (const [a, b] of s.lost) out.push(`- share ${a} <-> ${b}`);
  return out;
}

export function policyDiff(oldFile: string, newFile: string, opts: { json?: boolean }): number {
  const a = loadPolicyFile(oldFile).policy;
  const b = loadPolicyFile(newFile).policy;
  const d = structuralDiff(a, b);
  const s = sharingDiff(new CompiledPolicy(a), new CompiledPolicy(b), matchNames(a.labels, b.labels));
  if (opts.json) process.stdout.write(json({ ...d, sharing: s }) + '\n');
  else {
    const lines = formatDiff(d, s);
    process.stdout.write(lines.length ? lines.join('\n') + '\n' : 'no difference\n');
  }
  return 0;
}
