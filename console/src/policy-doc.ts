/**
 * A policy as the console reads it: the native YAML of a published version or a draft (the controller stores every
 * policy as native YAML, Xen imports included), parsed with the `yaml` package into plain lists and maps. The
 * controller validates; this only reads (and, for the form editor, writes) the shape README "Native YAML" shows.
 */
import { parse, stringify } from 'yaml';

export type OnUntrusted = 'isolate' | 'alert';

export interface LabelDoc {
  colors: string[];
  walls: string[];
  onUntrusted?: OnUntrusted;
  from?: string;
}

export interface PolicyDoc {
  policy: string;
  version: string;
  from?: { policy: string; version: string };
  /** null: no STE component (restricts no sharing) */
  colors: string[] | null;
  /** null: no Chinese Wall component */
  walls: string[] | null;
  conflicts: Record<string, string[]>;
  host: string | null;
  labels: Record<string, LabelDoc>;
  resources: Record<string, { color: string; from?: string }>;
}

const strings = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : []);
const record = (v: unknown): Record<string, unknown> => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {});

/** A map keyed by names from the policy: no prototype, so a label named `__proto__` is a label like any other. */
const names = <T>(): Record<string, T> => Object.create(null) as Record<string, T>;

/** Read policy text; throws the YAML error for text that is not YAML (the controller names every other problem). */
export function readPolicyDoc(text: string): PolicyDoc {
  const raw = record(parse(text, { maxAliasCount: 100 }));
  const labels = names<LabelDoc>();
  for (const [name, l] of Object.entries(record(raw.labels))) {
    const r = record(l);
    labels[name] = {
      colors: strings(r.colors),
      walls: strings(r.walls),
      ...(r.onUntrusted === 'alert' || r.onUntrusted === 'isolate' ? { onUntrusted: r.onUntrusted } : {}),
      ...(typeof r.from === 'string' ? { from: r.from } : {}),
    };
  }
  const resources = names<PolicyDoc['resources'][string]>();
  for (const [name, r] of Object.entries(record(raw.resources))) {
    const x = record(r);
    resources[name] = { color: String(x.color ?? ''), ...(typeof x.from === 'string' ? { from: x.from } : {}) };
  }
  const conflicts = names<string[]>();
  for (const [name, w] of Object.entries(record(raw.conflicts))) conflicts[name] = strings(w);
  const from = record(raw.from);
  return {
    policy: String(raw.policy ?? ''),
    version: String(raw.version ?? ''),
    ...(raw.from ? { from: { policy: String(from.policy ?? ''), version: String(from.version ?? '') } } : {}),
    colors: Array.isArray(raw.colors) ? strings(raw.colors) : null,
    walls: Array.isArray(raw.walls) ? strings(raw.walls) : null,
    conflicts,
    host: typeof raw.host === 'string' ? raw.host : null,
    labels,
    resources,
  };
}

/** Write a policy as native YAML (what the form editor sends). Empty parts are left out, as a person would. */
export function writePolicyDoc(d: PolicyDoc): string {
  const out: Record<string, unknown> = { policy: d.policy, version: d.version };
  if (d.from) out.from = d.from;
  if (d.colors !== null) out.colors = d.colors;
  if (d.walls !== null) out.walls = d.walls;
  if (Object.keys(d.conflicts).length > 0) out.conflicts = d.conflicts;
  if (d.host !== null) out.host = d.host;
  out.labels = Object.fromEntries(Object.entries(d.labels).map(([n, l]) => [n, {
    ...(l.colors.length ? { colors: l.colors } : {}),
    ...(l.walls.length ? { walls: l.walls } : {}),
    ...(l.onUntrusted ? { onUntrusted: l.onUntrusted } : {}),
    ...(l.from ? { from: l.from } : {}),
  }]));
  if (Object.keys(d.resources).length > 0) out.resources = d.resources;
  return stringify(out, { lineWidth: 0, defaultStringType: 'PLAIN', defaultKeyType: 'PLAIN' });
}

/** The labels' colors, `__UNLABELED__` included. */
export function labelColors(d: PolicyDoc | null, label: string | null): string[] {
  if (d === null) return [];
  return d.labels[label ?? '__UNLABELED__']?.colors ?? [];
}
