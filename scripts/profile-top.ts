#!/usr/bin/env -S node --import tsx
// node --import tsx scripts/profile-top.ts FILE.cpuprofile [N] [--lines NAME] [--window FROM:TO]
// A .cpuprofile (the bench's HUEGUARD_BENCH_PROFILE_OUT, or --cpu-prof) as two tables: functions by inclusive time
// (a function counted once per sample even when it recurses) and by self time. `--lines NAME`: the hottest lines
// of the functions called NAME (self time, from the profile's position ticks). `--window 0:1000`: only the samples
// taken in that span (ms from the profile's start), e.g. a slow first second. bench:controller prints the self-time
// table of its profiles with `timeTables` below.
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

export interface CpuProfile {
  nodes: { id: number; children?: number[]; callFrame: { functionName: string; url: string; lineNumber: number }; positionTicks?: { line: number; ticks: number }[] }[];
  samples: number[];
  timeDeltas: number[];
}

/** Self and inclusive time (µs) by function, and the total sampled, over the samples in [fromMs, toMs). */
export function timeTables(profile: CpuProfile, fromMs = 0, toMs = Infinity): { total: number; self: Map<string, number>; incl: Map<string, number> } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const name = (id: number) => {
    const f = byId.get(id)!.callFrame;
    return `${f.functionName || '(anonymous)'} ${f.url.split('/').slice(-2).join('/')}:${f.lineNumber + 1}`;
  };
  const self = new Map<string, number>();
  const incl = new Map<string, number>();
  let total = 0;
  let at = 0;
  profile.samples.forEach((id, i) => {
    const us = profile.timeDeltas[i] ?? 0;
    at += us;
    if (at / 1000 < fromMs || at / 1000 >= toMs) return;
    total += us;
    self.set(name(id), (self.get(name(id)) ?? 0) + us);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const k = name(cur);
      if (seen.has(k)) continue;
      seen.add(k);
      incl.set(k, (incl.get(k) ?? 0) + us);
    }
  });
  return { total, self, incl };
}

/** The `n` largest entries of a table, one line each: ms, share of `total`, function. */
export function topLines(table: Map<string, number>, total: number, n: number): string[] {
  return [...table].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, us]) => `${(us / 1000).toFixed(0).padStart(7)} ms ${((100 * us) / total).toFixed(1).padStart(5)}%  ${k}`);
}

function main(args: string[]): void {
  const opt = (flag: string) => (args.includes(flag) ? args[args.indexOf(flag) + 1] : null);
  const linesOf = opt('--lines');
  const [from, to] = (opt('--window') ?? '0:Infinity').split(':').map(Number);
  const [file, n] = args.filter((a, i) => !a.startsWith('--') && !args[i - 1]?.startsWith('--'));
  if (!file) {
    console.error('usage: node --import tsx scripts/profile-top.ts FILE.cpuprofile [N] [--lines NAME] [--window FROM:TO]');
    process.exit(2);
  }
  const top = Number(n ?? 30);
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const { total, self, incl } = timeTables(profile, from, to);
  console.log(`\ninclusive (of ${(total / 1000).toFixed(0)} ms sampled)\n${topLines(incl, total, top).join('\n')}`);
  console.log(`\nself (of ${(total / 1000).toFixed(0)} ms sampled)\n${topLines(self, total, top).join('\n')}`);
  if (linesOf === null) return;
  const ticks = new Map<string, number>();
  for (const node of profile.nodes) {
    if (node.callFrame.functionName !== linesOf) continue;
    for (const t of node.positionTicks ?? []) {
      const k = `${node.callFrame.url.split('/').slice(-2).join('/')}:${t.line}`;
      ticks.set(k, (ticks.get(k) ?? 0) + t.ticks);
    }
  }
  console.log(`\nlines of ${linesOf} (ticks)`);
  for (const [k, t] of [...ticks].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${String(t).padStart(7)}  ${k}`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) main(process.argv.slice(2));
