/**
 * `npm run bench:decide` — "may VM A talk to VM B?" decided by hueguard's compiled monitor, node-casbin and
 * Cedar (wasm), in one run, on one workload; then the time to compile (and validate) a 100,000-label policy.
 *
 * Workload (the same relation for every engine: A may talk to B iff colors(A) ∩ colors(B) ≠ ∅):
 * - Case 1: 1,000 VMs, 10 colors. Case 2: 100,000 VMs, 1,000 colors.
 * - Every VM has its own label (VM i ↔ label `vm-i`), and each label gets 1–3 distinct colors drawn uniformly at
 *   random. The policy also holds the host (bootstrap) label `host` with every color, so that it validates; no VM
 *   uses it. No wall types (they play no part in sharing).
 * - Requests: 2^16 pairs (A, B) of distinct VMs drawn uniformly at random, pre-generated once per case and replayed
 *   by every engine in the same order. A seeded PRNG (mulberry32) makes the whole run repeatable.
 * - hueguard: `CompiledPolicy.share(a, b)` on label indexes (VM names are mapped to label indexes with
 *   `label(name)` once, before timing: the monitor's callers hold indexes). A second, informational figure includes
 *   the two name → index lookups per decision.
 * - Casbin: `enforceSync(vmA, vmB)` with the model below: a grouping `g, vm-i, c-k` per (VM, color) and one policy
 *   line `p, c-k` per color; allowed iff some policy line's color is a role of both VMs.
 * - Cedar: `permit(principal, action, resource) when { principal.colors.containsAny(resource.colors) };`, parsed once
 *   with `preparsePolicySet` and evaluated with `statefulIsAuthorized`; each request carries two entities (the
 *   principal VM and the resource VM, each with its `colors` set), pre-built per VM.
 * Before timing, hueguard's answers are checked against a naive set intersection on every pair, and Casbin's and
 * Cedar's against hueguard's on a sample (2,000 pairs, half allowed and half denied; Casbin gets 400 in case 2,
 * where it decides ~150/s); any disagreement aborts the run.
 * Timing: a warm-up (≤ 300 ms), then a fixed wall-clock budget per engine (1.5 s hueguard, 1 s the others);
 * decisions/s = decisions / elapsed. The allow counts are summed and printed so that no loop is dead code. The
 * load average is printed at start and end: other processes on this 2-core machine depress every figure.
 *
 * The last line of output is one JSON object: decisions per second per engine and case, and compileMs.
 */
import os from 'node:os';
import v8 from 'node:v8';
import { newEnforcer, newModelFromString, type Enforcer } from 'casbin';
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { CompiledPolicy, compilePolicy } from '../src/monitor/compile.ts';
import { validatePolicy } from '../src/policy/validate.ts';
import type { Label, Policy } from '../src/policy/model.ts';
import { mulberry32 } from './prng.ts';

// Node 20's V8 (11.3) aborts with "Fatal error ... unreachable code" in Deoptimizer::DoComputeBuiltinContinuation
// when optimized code that inlined a JS→Wasm call (here: Cedar's statefulIsAuthorized) is lazily deoptimized
// ("JS to Wasm builtin continuation frame"); seen on this machine in case 2. Turn that inlining off: it saves a few
// ns per call, against Cedar's tens of µs.
v8.setFlagsFromString('--no-turbo-inline-js-wasm-calls');

const SEED = 0x6875_6567; // "hueg"
const PAIRS = 1 << 16;
const SAMPLE = 2000;
const CASBIN_SAMPLE_BIG = 400;
const BUDGET_HUE_MS = 1500;
const BUDGET_SLOW_MS = 1000;
const WARM_MS = 300;

// ---------------------------------------------------------------------------------------------------------------
// workload


function randInt(rnd: () => number, n: number): number {
  return Math.floor(rnd() * n);
}

/** k distinct integers in [0, n), k ≤ n. */
function distinct(rnd: () => number, n: number, k: number): number[] {
  const out: number[] = [];
  while (out.length < k) {
    const x = randInt(rnd, n);
    if (!out.includes(x)) out.push(x);
  }
  return out;
}

const colorName = (c: number): string => `c-${c}`;
const vmName = (i: number): string => `vm-${i}`;

interface Workload {
  vms: number;
  colors: number;
  /** vmColors[i]: VM i's color indexes */
  vmColors: number[][];
  /** VM index pairs: pairs[2k], pairs[2k+1] */
  pairs: Int32Array;
  policy: Policy;
}

function makeWorkload(vms: number, colors: number, seed: number): Workload {
  const rnd = mulberry32(seed);
  const vmColors: number[][] = [];
  for (let i = 0; i < vms; i++) vmColors.push(distinct(rnd, colors, 1 + randInt(rnd, 3)));
  const pairs = new Int32Array(2 * PAIRS);
  for (let k = 0; k < PAIRS; k++) {
    const a = randInt(rnd, vms);
    let b = randInt(rnd, vms);
    while (b === a) b = randInt(rnd, vms);
    pairs[2 * k] = a;
    pairs[2 * k + 1] = b;
  }
  const colorNames = Array.from({ length: colors }, (_, c) => colorName(c));
  const labels: Label[] = vmColors.map((cs, i) => ({ name: vmName(i), colors: cs.map(colorName), walls: [], onUntrusted: 'isolate' }));
  labels.push({ name: 'host', colors: colorNames, walls: [], onUntrusted: 'isolate' });
  const policy: Policy = {
    name: `bench-${vms}`,
    version: '1',
    colors: colorNames,
    walls: null,
    conflicts: [],
    host: 'host',
    labels,
    resources: [],
  };
  return { vms, colors, vmColors, pairs, policy };
}

// ---------------------------------------------------------------------------------------------------------------
// engines

const CASBIN_MODEL = `
[request_definition]
r = a, b

[policy_definition]
p = c

[role_definition]
g = _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = g(r.a, p.c) && g(r.b, p.c)
`;

async function makeCasbin(w: Workload): Promise<Enforcer> {
  const e = await newEnforcer(newModelFromString(CASBIN_MODEL));
  await e.addPolicies(Array.from({ length: w.colors }, (_, c) => [colorName(c)]));
  const rules: string[][] = [];
  w.vmColors.forEach((cs, i) => cs.forEach((c) => rules.push([vmName(i), colorName(c)])));
  await e.addGroupingPolicies(rules);
  return e;
}

const CEDAR_POLICY = 'permit (principal, action, resource) when { principal.colors.containsAny(resource.colors) };';
const CEDAR_PSET = 'hueguard-bench';
const CEDAR_ACTION: cedar.EntityUid = { type: 'Action', id: 'talk' };

interface CedarVMs {
  uid: cedar.EntityUid[];
  entity: cedar.EntityJson[];
}

function makeCedar(w: Workload): CedarVMs {
  const parsed = cedar.preparsePolicySet(CEDAR_PSET, { staticPolicies: CEDAR_POLICY });
  if (parsed.type !== 'success') throw new Error(`cedar: policy does not parse: ${JSON.stringify(parsed.errors)}`);
  const uid: cedar.EntityUid[] = [];
  const entity: cedar.EntityJson[] = [];
  for (let i = 0; i < w.vms; i++) {
    const u = { type: 'VM', id: vmName(i) };
    uid.push(u);
    entity.push({ uid: u, attrs: { colors: w.vmColors[i].map(colorName) }, parents: [] });
  }
  return { uid, entity };
}

function cedarDecide(vms: CedarVMs, a: number, b: number): boolean {
  const ans = cedar.statefulIsAuthorized({
    principal: vms.uid[a],
    action: CEDAR_ACTION,
    resource: vms.uid[b],
    context: {},
    preparsedPolicySetId: CEDAR_PSET,
    entities: [vms.entity[a], vms.entity[b]],
  });
  if (ans.type !== 'success') throw new Error(`cedar: ${JSON.stringify(ans.errors)}`);
  return ans.response.decision === 'allow';
}

// ---------------------------------------------------------------------------------------------------------------
// timing

const now = (): number => performance.now();

/** The hot loop: one monomorphic CompiledPolicy, an Int32Array of label-index pairs, no closures. */
function hueguardPass(cp: CompiledPolicy, pairs: Int32Array): number {
  let allow = 0;
  const n = pairs.length;
  for (let i = 0; i < n; i += 2) if (cp.share(pairs[i], pairs[i + 1])) allow++;
  return allow;
}

/** The same decisions, starting from VM names (two Map lookups per decision). */
function hueguardByNamePass(cp: CompiledPolicy, pairs: Int32Array, names: string[]): number {
  let allow = 0;
  const n = pairs.length;
  for (let i = 0; i < n; i += 2) if (cp.share(cp.label(names[pairs[i]]), cp.label(names[pairs[i + 1]]))) allow++;
  return allow;
}

interface Rate {
  perSec: number;
  decisions: number;
  allowed: number;
  ms: number;
  /** per-window rates (timePasses only) */
  windows?: number[];
}

/** Whole passes over the pair list until the budget is spent. Also keeps the rate of each ~100-ms window: on a
 * shared 2-core machine their spread shows how much other load disturbed the run. */
function timePasses(pass: () => number, perPass: number, budgetMs: number): Rate {
  let decisions = 0;
  let allowed = 0;
  const windows: number[] = [];
  const t0 = now();
  let t = t0;
  let w0 = t0;
  let wDecisions = 0;
  do {
    allowed += pass();
    decisions += perPass;
    wDecisions += perPass;
    t = now();
    if (t - w0 >= 100) {
      windows.push((wDecisions * 1000) / (t - w0));
      w0 = t;
      wDecisions = 0;
    }
  } while (t - t0 < budgetMs);
  return { perSec: (decisions * 1000) / (t - t0), decisions, allowed, ms: t - t0, windows };
}

/** One call per decision, cycling through the pair list, checking the clock every 16 calls. */
function timeCalls(decide: (a: number, b: number) => boolean, pairs: Int32Array, budgetMs: number): Rate {
  let decisions = 0;
  let allowed = 0;
  let k = 0;
  const n = pairs.length;
  const t0 = now();
  let t = t0;
  do {
    for (let j = 0; j < 16; j++) {
      if (decide(pairs[k], pairs[k + 1])) allowed++;
      k += 2;
      if (k === n) k = 0;
    }
    decisions += 16;
    t = now();
  } while (t - t0 < budgetMs);
  return { perSec: (decisions * 1000) / (t - t0), decisions, allowed, ms: t - t0 };
}

/** Up to `passes` whole passes, stopping early once `maxMs` is spent. Returns the allow count (a sink). */
function warmPasses(pass: () => number, passes: number, maxMs: number): number {
  let allowed = 0;
  const t0 = now();
  for (let i = 0; i < passes && now() - t0 < maxMs; i++) allowed += pass();
  return allowed;
}

/** Up to `calls` decisions from the head of the pair list, stopping early once `maxMs` is spent. */
function warmCalls(decide: (a: number, b: number) => boolean, pairs: Int32Array, calls: number, maxMs: number): number {
  let allowed = 0;
  const t0 = now();
  const n = Math.min(calls, pairs.length >> 1);
  for (let k = 0; k < n && now() - t0 < maxMs; k++) if (decide(pairs[2 * k], pairs[2 * k + 1])) allowed++;
  return allowed;
}

/** The 1-minute load average against the core count: figures taken on a busy machine are low. */
function loadLine(when: string): string {
  const cores = os.availableParallelism();
  const load = os.loadavg()[0];
  const busy = load >= cores ? `   WARNING: other processes compete for the ${cores} cores; figures are low and noisy` : '';
  return `load average ${when}: ${load.toFixed(2)} on ${cores} cores${busy}`;
}

function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const fmt = (x: number): string => {
  if (x >= 1e6) return `${(x / 1e6).toFixed(2)} M/s`;
  if (x >= 1e3) return `${(x / 1e3).toFixed(1)} k/s`;
  return `${x.toFixed(0)} /s`;
};
const ms = (x: number): string => `${x.toFixed(1)} ms`;

// ---------------------------------------------------------------------------------------------------------------
// one case

interface CaseResult {
  vms: number;
  colors: number;
  hueguard: number;
  casbin: number;
  cedar: number;
}

/**
 * Same question, same answers. hueguard is checked against a naive set intersection on every pair; Casbin and Cedar
 * against hueguard on a sample drawn from the pair list in order, half allowed and half denied pairs (as far as
 * the list has them: random pairs over 1,000 colors are nearly all denied, and a plain prefix would test almost no
 * "allow"). Casbin gets a smaller sample where it is slow. Throws on any disagreement.
 */
function checkAgreement(w: Workload, cp: CompiledPolicy, pairs: Int32Array, enforcer: Enforcer, cvms: CedarVMs, names: string[], casbinSample: number): CheckResult {
  const colorSets = w.vmColors.map((cs) => new Set(cs));
  let allowed = 0;
  const allowK: number[] = [];
  const denyK: number[] = [];
  for (let k = 0; k < PAIRS; k++) {
    const a = w.pairs[2 * k];
    const b = w.pairs[2 * k + 1];
    let want = false;
    for (const c of w.vmColors[a]) if (colorSets[b].has(c)) want = true;
    if (want) allowed++;
    if (cp.share(pairs[2 * k], pairs[2 * k + 1]) !== want) throw new Error(`hueguard disagrees with set intersection on ${names[a]} → ${names[b]}`);
    (want ? allowK : denyK).push(k);
  }
  const sample = (n: number): number[] => {
    const nA = Math.min(allowK.length, n >> 1);
    return [...allowK.slice(0, nA), ...denyK.slice(0, n - nA)];
  };
  const casbinKs = sample(casbinSample);
  const cedarKs = sample(SAMPLE);
  const described = (ks: number[]): string => `${ks.length} (${Math.min(allowK.length, ks.length >> 1)} allowed)`;
  for (const k of casbinKs) {
    const a = w.pairs[2 * k];
    const b = w.pairs[2 * k + 1];
    const want = cp.share(pairs[2 * k], pairs[2 * k + 1]);
    const got = enforcer.enforceSync(names[a], names[b]);
    if (got !== want) throw new Error(`casbin says ${got}, hueguard ${want}, on ${names[a]} → ${names[b]}`);
  }
  for (const k of cedarKs) {
    const a = w.pairs[2 * k];
    const b = w.pairs[2 * k + 1];
    const want = cp.share(pairs[2 * k], pairs[2 * k + 1]);
    const ans = cedar.statefulIsAuthorized({
      principal: cvms.uid[a],
      action: CEDAR_ACTION,
      resource: cvms.uid[b],
      context: {},
      preparsedPolicySetId: CEDAR_PSET,
      entities: [cvms.entity[a], cvms.entity[b]],
    });
    if (ans.type !== 'success') throw new Error(`cedar failed on ${names[a]} → ${names[b]}: ${JSON.stringify(ans.errors)}`);
    if (ans.response.diagnostics.errors.length > 0) throw new Error(`cedar evaluation errors on ${names[a]} → ${names[b]}: ${JSON.stringify(ans.response.diagnostics.errors)}`);
    const got = ans.response.decision === 'allow';
    if (got !== want) throw new Error(`cedar says ${got}, hueguard ${want}, on ${names[a]} → ${names[b]}`);
  }
  return { allowedPct: (100 * allowed) / PAIRS, casbin: described(casbinKs), cedar: described(cedarKs) };
}

interface CheckResult {
  allowedPct: number;
  casbin: string;
  cedar: string;
}

async function runCase(vms: number, colors: number, seed: number, casbinSample: number): Promise<CaseResult> {
  console.log(`\n== case: ${vms.toLocaleString('en')} VMs, ${colors.toLocaleString('en')} colors, ${PAIRS.toLocaleString('en')} random pairs (seed ${seed >>> 0})`);
  const w = makeWorkload(vms, colors, seed);

  let t = now();
  const problems = validatePolicy(w.policy);
  if (problems.length > 0) throw new Error(`bench policy is invalid: ${JSON.stringify(problems.slice(0, 3))}`);
  const cp = compilePolicy(w.policy);
  const tHue = now() - t;
  const names = Array.from({ length: vms }, (_, i) => vmName(i));
  // VM index → label index through the monitor's own name lookup; the timed loop works on label indexes.
  const labelOf = Int32Array.from(names, (n) => cp.label(n));
  const pairs = w.pairs.map((v) => labelOf[v]);

  t = now();
  const enforcer = await makeCasbin(w);
  const tCasbin = now() - t;
  t = now();
  const cvms = makeCedar(w);
  const tCedar = now() - t;
  console.log(`setup: hueguard validate+compile ${ms(tHue)}, casbin ${ms(tCasbin)}, cedar ${ms(tCedar)}`);

  const chk = checkAgreement(w, cp, pairs, enforcer, cvms, names, casbinSample);
  console.log(`check: ${chk.allowedPct.toFixed(1)}% of the pairs are allowed; hueguard = set intersection on all ${PAIRS.toLocaleString('en')} pairs; casbin = hueguard on ${chk.casbin} pairs, cedar = hueguard on ${chk.cedar}`);

  // Each engine: a warm-up (lets the JIT optimize the loop and the engine's code), then the timed run.
  let sink = 0;
  sink += warmPasses(() => hueguardPass(cp, pairs), 200, WARM_MS);
  const hue = timePasses(() => hueguardPass(cp, pairs), PAIRS, BUDGET_HUE_MS);
  sink += warmPasses(() => hueguardByNamePass(cp, w.pairs, names), 20, WARM_MS);
  const hueNames = timePasses(() => hueguardByNamePass(cp, w.pairs, names), PAIRS, BUDGET_SLOW_MS);

  const casbinDecide = (a: number, b: number): boolean => enforcer.enforceSync(names[a], names[b]);
  sink += warmCalls(casbinDecide, w.pairs, 500, WARM_MS);
  const cas = timeCalls(casbinDecide, w.pairs, BUDGET_SLOW_MS);

  const cedarDecideFn = (a: number, b: number): boolean => cedarDecide(cvms, a, b);
  sink += warmCalls(cedarDecideFn, w.pairs, 500, WARM_MS);
  const ced = timeCalls(cedarDecideFn, w.pairs, BUDGET_SLOW_MS);

  const line = (name: string, r: Rate): string =>
    `${name.padEnd(30)} ${fmt(r.perSec).padStart(12)}   (${r.decisions.toLocaleString('en')} decisions in ${ms(r.ms)}, ${r.allowed.toLocaleString('en')} allowed)`;
  console.log(line('hueguard share(a,b)', hue));
  if (hue.windows !== undefined && hue.windows.length > 1) {
    const ws = hue.windows;
    console.log(`  100-ms windows: min ${fmt(Math.min(...ws))}, median ${fmt(median(ws))}, max ${fmt(Math.max(...ws))}   [info: a wide spread means other load]`);
  }
  console.log(line('hueguard incl. name lookups', hueNames) + '   [info]');
  console.log(line('casbin enforceSync', cas));
  console.log(line('cedar-wasm statefulIsAuthorized', ced) + '   [policy pre-parsed once, 2 entities/request]');
  if (cp.words > 1) {
    const mb = (cp.labelColors.byteLength / 1e6).toFixed(1);
    console.log(`  [info] color rows are ${cp.words} words (${cp.words * 4} B) per label, ${mb} MB in all: share() first compares one summary word per label, then probes one label's few colors in the other's row`);
  }
  console.log(`ratios: hueguard/casbin ${(hue.perSec / cas.perSec).toFixed(0)}×, hueguard/cedar ${(hue.perSec / ced.perSec).toFixed(0)}×   (sink ${sink})`);
  return { vms, colors, hueguard: Math.round(hue.perSec), casbin: Math.round(cas.perSec), cedar: Math.round(ced.perSec) };
}

// ---------------------------------------------------------------------------------------------------------------
// compile time

/** 100,000 labels (the host label, with every color, is one of them), 1,000 colors, 1,000 wall types in 100
 * conflict sets of 10; each VM label has 1–3 colors and 0–2 wall types from different conflict sets. */
function makeBigPolicy(seed: number): Policy {
  const rnd = mulberry32(seed);
  const LABELS = 100_000;
  const COLORS = 1000;
  const WALLS = 1000;
  const SETS = 100;
  const perSet = WALLS / SETS;
  const colors = Array.from({ length: COLORS }, (_, c) => colorName(c));
  const walls = Array.from({ length: WALLS }, (_, i) => `w-${i}`);
  const conflicts = Array.from({ length: SETS }, (_, s) => ({ name: `cs-${s}`, walls: walls.slice(s * perSet, (s + 1) * perSet) }));
  const labels: Label[] = [{ name: 'host', colors, walls: [], onUntrusted: 'isolate' }];
  for (let i = 1; i < LABELS; i++) {
    const cs = distinct(rnd, COLORS, 1 + randInt(rnd, 3)).map(colorName);
    const sets = distinct(rnd, SETS, randInt(rnd, 3));
    const ws = sets.map((s) => walls[s * perSet + randInt(rnd, perSet)]);
    labels.push({ name: `l-${i}`, colors: cs, walls: ws, onUntrusted: i % 7 === 0 ? 'alert' : 'isolate' });
  }
  return { name: 'bench-big', version: '1', colors, walls, conflicts, host: 'host', labels, resources: [] };
}

function runCompile(): { compileMs: number; validateMs: number } {
  console.log('\n== compile: 100,000 labels, 1,000 colors, 1,000 wall types, 100 conflict sets');
  const policy = makeBigPolicy(SEED ^ 0x5a5a5a5a);
  const problems = validatePolicy(policy);
  if (problems.length > 0) throw new Error(`big policy is invalid: ${JSON.stringify(problems.slice(0, 3))}`);
  const compileRuns: number[] = [];
  const validateRuns: number[] = [];
  let sink = 0;
  for (let r = 0; r < 5; r++) {
    let t = now();
    const cp = compilePolicy(policy);
    compileRuns.push(now() - t);
    sink += cp.blockFlat.length;
    t = now();
    sink += validatePolicy(policy).length;
    validateRuns.push(now() - t);
  }
  const compileMs = median(compileRuns);
  const validateMs = median(validateRuns);
  console.log(`compilePolicy: median ${ms(compileMs)} of ${compileRuns.map((x) => x.toFixed(0)).join(', ')} ms   (sink ${sink})`);
  console.log(`validatePolicy: median ${ms(validateMs)} of ${validateRuns.map((x) => x.toFixed(0)).join(', ')} ms`);
  return { compileMs, validateMs };
}

// ---------------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  console.log(`decide bench — node ${process.version}, cedar ${cedar.getCedarVersion()}, budgets: hueguard ${BUDGET_HUE_MS} ms, others ${BUDGET_SLOW_MS} ms`);
  console.log(loadLine('at start'));
  const c1 = await runCase(1000, 10, SEED, SAMPLE);
  const c2 = await runCase(100_000, 1000, SEED + 1, CASBIN_SAMPLE_BIG); // Casbin decides ~200/s there
  const { compileMs } = runCompile();

  const verdict = (ok: boolean): string => (ok ? 'PASS' : 'MISS');
  const r1 = c1.hueguard / c1.casbin;
  console.log('\n== targets');
  console.log(loadLine('at end'));
  console.log(`${verdict(r1 >= 100)}  hueguard ≥ 100× casbin on 1,000 VMs: ${r1.toFixed(0)}×`);
  console.log(`${verdict(c1.hueguard >= 50e6)}  hueguard ≥ 50 M decisions/s on 1,000 VMs: ${fmt(c1.hueguard)}`);
  console.log(`${verdict(compileMs < 1000)}  compile 100,000 labels < 1000 ms: ${ms(compileMs)}`);
  console.log(JSON.stringify({ cases: [c1, c2], compileMs: Math.round(compileMs) }));
}

await main();
