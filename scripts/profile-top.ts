#!/usr/bin/env node
// node scripts/profile-top.mjs FILE.cpuprofile [N] [--lines NAME] [--window FROM:TO]
// A .cpuprofile (the bench's HUEGUARD_BENCH_PROFILE_OUT, or --cpu-prof) as two tables: functions by inclusive time
// (a function counted once per sample even when it recurses) and by self time. `--lines NAME`: the hottest lines
// of the functions called NAME (self time, from the profile's position ticks). `--window 0:1000`: only the samples
// taken in that span (ms from the profile's start), e.g. a slow first second.
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
const opt = (name) => (args.includes(name) ? args[args.indexOf(name) + 1] : null);
const linesOf = opt('--lines');
const [winFrom, winTo] = (opt('--window') ?? '0:Infinity').split(':').map(Number);
const rest = args.filter((a, i) => !a.startsWith('--') && !args[i - 1]?.startsWith('--'));
const [file, nArg] = rest;
if (!file) {
  console.error('usage: node scripts/profile-top.mjs FILE.cpuprofile [N] [--lines NAME] [--window FROM:TO]');
  process.exit(2);
}
const top = Number(nArg ?? 30);
const profile = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const name = (n) => `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.split('/').slice(-2).join('/')}:${n.callFrame.lineNumber + 1}`;

const self = new Map();
const incl = new Map();
let total = 0;
let at = 0;
profile.samples.forEach((id, i) => {
  const us = profile.timeDeltas[i] ?? 0;
  at += us;
  if (at / 1000 < winFrom || at / 1000 >= winTo) return;
  total += us;
  const n = byId.get(id);
  self.set(name(n), (self.get(name(n)) ?? 0) + us);
  const seen = new Set();
  for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
    const k = name(byId.get(cur));
    if (seen.has(k)) continue;
    seen.add(k);
    incl.set(k, (incl.get(k) ?? 0) + us);
  }
});
const show = (title, m) => {
  console.log(`\n${title} (of ${(total / 1000).toFixed(0)} ms sampled)`);
  for (const [k, us] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${(us / 1000).toFixed(0).padStart(7)} ms ${((100 * us) / total).toFixed(1).padStart(5)}%  ${k}`);
};
show('inclusive', incl);
show('self', self);

if (linesOf !== null) {
  const ticks = new Map();
  for (const n of profile.nodes) {
    if (n.callFrame.functionName !== linesOf) continue;
    for (const t of n.positionTicks ?? []) {
      const k = `${n.callFrame.url.split('/').slice(-2).join('/')}:${t.line}`;
      ticks.set(k, (ticks.get(k) ?? 0) + t.ticks);
    }
  }
  console.log(`\nlines of ${linesOf} (ticks)`);
  for (const [k, t] of [...ticks].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${String(t).padStart(7)}  ${k}`);
}
