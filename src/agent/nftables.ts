/**
 * The nftables enforcer: one bridge-family table, `bridge hueguard`, that hueguard owns.
 *
 *   set c0, c1, …   one set of bridge ports per color (the color's name in the set's comment)
 *   chain forward   policy drop; `iifname @cN oifname @cN accept` per color; everything else is counted per
 *                   (source port, destination port) in the dynamic set `denied` and dropped
 *
 * A port in no color set (an isolated VM, a port the plan does not know) talks to no one, ARP and broadcast
 * included: the bridge's forward hook sees every flooded copy. Every plan is one `nft -f` transaction (atomic:
 * the kernel commits all or nothing). `denied` is created once and never flushed, so its counters survive plans.
 * The table stays in the kernel when the agent stops. DESIGN.md §5 has the facts this relies on.
 */
import { createHash } from 'node:crypto';
import type { PlanV1 } from '../api/types.ts';
import { portsOfPlan, type DropCount, type Enforced, type Enforcer } from './enforcer.ts';
import { AgentError } from './errors.ts';
import { execTool } from './exec.ts';

export const TABLE = 'hueguard';
const COLOR_PREFIX = 'color:';

/** Runs `nft` with arguments and standard input; resolves with stdout, rejects with stderr. */
export type NftRun = (args: string[], input?: string) => Promise<string>;

/** `nft` in this network namespace, or in a named one through `ip netns exec` (never a shell). */
export function nftRunner(netns?: string): NftRun {
  return (args, input) => execTool('nft', args, { input, netns, code: 'enforce_failed' });
}

/** The ruleset text of a plan, as one transaction; `existingSets` are the color sets in the kernel now (replaced). */
export function renderTransaction(ports: Map<string, string[]>, existingSets: string[] = []): string {
  const colors = [...new Set([...ports.values()].flat())].sort();
  const members = new Map<string, string[]>(colors.map((c) => [c, []]));
  for (const [port, cs] of [...ports].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) for (const c of cs) members.get(c)!.push(port);
  const t = `bridge ${TABLE}`;
  const lines = [
    `add table ${t}`,
    `add set ${t} denied { type ifname . ifname; flags dynamic; size 65536; counter; }`,
    `add set ${t} ports { type ifname; comment "ports:managed"; }`,
    `add chain ${t} forward { type filter hook forward priority 0; policy drop; }`,
    `flush chain ${t} forward`,
    `flush set ${t} ports`,
  ];
  if (ports.size) lines.push(`add element ${t} ports { ${[...ports.keys()].sort().map(q).join(', ')} }`);
  // Color sets are made anew each time (a set's comment, which names its color, cannot be changed in place);
  // they can go because the chain that referred to them was flushed above, in this same transaction.
  for (const set of existingSets) lines.push(`delete set ${t} ${set}`);
  colors.forEach((color, i) => {
    const set = `c${i}`;
    lines.push(`add set ${t} ${set} { type ifname; comment ${q(COLOR_PREFIX + colorKey(color))}; }`);
    lines.push(`add element ${t} ${set} { ${members.get(color)!.map(q).join(', ')} }`);
    lines.push(`add rule ${t} forward iifname @${set} oifname @${set} accept`);
  });
  lines.push(`add rule ${t} forward update @denied { iifname . oifname } drop`);
  return lines.join('\n') + '\n';
}

/**
 * A color as the kernel keeps it, in a set comment of at most 128 bytes: URI-encoded (so no quote reaches nft),
 * and when that is too long, its start and a SHA-256 prefix (read back through the names of the last plan).
 */
export function colorKey(color: string): string {
  const enc = encodeURIComponent(color);
  return enc.length <= 120 ? enc : `${enc.slice(0, 80)}~${createHash('sha256').update(color).digest('hex').slice(0, 32)}`;
}

/** Names are checked against PORT before they get here; quoting keeps nft from reading them as keywords. */
const q = (s: string): string => `"${s}"`;

interface NftJsonSet {
  name: string;
  comment?: string;
  elem?: unknown[] | unknown;
}

/** Parse `nft -j list table bridge hueguard` into the enforced state (sets only; rules are checked by shape). */
export function parseListing(json: string, colorNames?: Map<string, string>): { enforced: Enforced; colorSets: string[]; rules: string[]; drops: DropCount[] } {
  const doc = JSON.parse(json) as { nftables?: Record<string, unknown>[] };
  const ports = new Map<string, string[]>();
  const colorSets: string[] = [];
  const rules: string[] = [];
  const drops: DropCount[] = [];
  let managed: string[] = [];
  const colorsOf = new Map<string, string[]>();
  for (const item of doc.nftables ?? []) {
    if (item.set) {
      const set = item.set as NftJsonSet;
      const elems = set.elem === undefined ? [] : Array.isArray(set.elem) ? set.elem : [set.elem];
      const names = elems.flatMap((e) => (typeof e === 'string' ? [e] : []));
      if (set.name === 'ports') managed = names;
      else if (set.name === 'denied') {
        for (const e of elems) {
          const el = (e as { elem?: { val?: { concat?: string[] }; counter?: { packets: number; bytes: number } } }).elem;
          const pair = el?.val?.concat;
          if (pair && el?.counter) drops.push({ from: pair[0], to: pair[1], packets: el.counter.packets, bytes: el.counter.bytes });
        }
      } else if (/^c\d+$/.test(set.name)) {
        colorSets.push(set.name);
        const key = set.comment?.startsWith(COLOR_PREFIX) ? set.comment.slice(COLOR_PREFIX.length) : null;
        const color = key === null ? `?${set.name}` : (colorNames?.get(key) ?? (key.includes('~') ? `?${key}` : safeDecode(key)));
        colorsOf.set(color, names);
      }
    } else if (item.rule) {
      rules.push(JSON.stringify((item.rule as { expr: unknown }).expr));
    }
  }
  for (const p of managed) ports.set(p, []);
  for (const [color, names] of colorsOf) for (const p of names) (ports.get(p) ?? ports.set(p, []).get(p)!).push(color);
  for (const cs of ports.values()) cs.sort();
  return { enforced: { ports }, colorSets, rules, drops };
}

export interface NftEnforcerOptions {
  /** run nft inside this network namespace (the lab's host namespace); default: the agent's own */
  netns?: string;
  /** for tests: how nft is run */
  run?: NftRun;
}

export class NftEnforcer implements Enforcer {
  readonly kind = 'nftables';
  readonly #run: NftRun;
  /** color key → name, of every color applied by this enforcer (long names are kept hashed in the kernel) */
  readonly #names = new Map<string, string>();

  constructor(options: NftEnforcerOptions = {}) {
    this.#run = options.run ?? nftRunner(options.netns);
  }

  async #listing(): Promise<ReturnType<typeof parseListing> | null> {
    try {
      return parseListing(await this.#run(['-j', 'list', 'table', 'bridge', TABLE]), this.#names);
    } catch (e) {
      if (e instanceof AgentError && /No such file or directory|does not exist/i.test(e.message)) return null;
      throw e;
    }
  }

  async apply(plan: PlanV1): Promise<void> {
    const ports = portsOfPlan(plan); // throws bad_plan before anything runs
    for (const cs of ports.values()) for (const c of cs) this.#names.set(colorKey(c), c);
    const before = await this.#listing();
    const text = renderTransaction(ports, before?.colorSets ?? []);
    await this.#run(['-f', '-'], text);
    // A transaction nft accepted is in the kernel; read it back so that a silent mismatch is an error, not a hope.
    const after = await this.#listing();
    if (!after || !sameColors(after.enforced, ports) || !rulesIntact(after.rules, ports)) {
      throw new AgentError('enforce_failed', `nft accepted plan ${plan.version} but the table reads back differently`);
    }
  }

  async current(): Promise<Enforced | null> {
    const l = await this.#listing();
    if (!l) return null;
    // A table whose rules were edited enforces something else than its sets say: report it as foreign.
    if (!rulesIntact(l.rules, l.enforced.ports)) return { ports: new Map([...l.enforced.ports].map(([p]) => [p, ['?edited']])) };
    return l.enforced;
  }

  async drops(): Promise<DropCount[]> {
    return (await this.#listing())?.drops ?? [];
  }

  async remove(): Promise<void> {
    if (await this.#listing()) await this.#run(['delete', 'table', 'bridge', TABLE]);
  }
}

function safeDecode(key: string): string {
  try {
    return decodeURIComponent(key);
  } catch {
    return `?${key}`;
  }
}

function sameColors(e: Enforced, ports: Map<string, string[]>): boolean {
  if (e.ports.size !== ports.size) return false;
  for (const [p, cs] of ports) {
    const got = e.ports.get(p);
    if (!got || got.join('\0') !== cs.join('\0')) return false;
  }
  return true;
}

/** The chain must be exactly: one same-set accept per color set, then the counting drop. */
function rulesIntact(rules: string[], ports: Map<string, string[]>): boolean {
  const colors = new Set([...ports.values()].flat()).size;
  if (rules.length !== colors + 1) return false;
  for (let i = 0; i < colors; i++) {
    const r = rules[i];
    if (!r.includes('"iifname"') || !r.includes('"oifname"') || !r.includes('"accept"') || !r.includes(`"@c${i}"`)) return false;
  }
  const last = rules[colors];
  return last.includes('"@denied"') && last.includes('"update"') && last.includes('"drop"');
}
