/**
 * Writing the native YAML policy format: block mappings at the top, one line per label, resource label and
 * conflict set, defaults left out. The reader is `yaml-format.ts`; the two must round-trip every valid policy.
 */
import type { Policy } from './model.ts';

/**
 * The policy in the native layout: block mappings at the top, one line per label, resource label and conflict set,
 * defaults left out (`onUntrusted: isolate`, empty label lists, absent components).
 * readPolicyYaml(writePolicyYaml(p)).policy deep-equals every valid p.
 */
export function writePolicyYaml(p: Policy): string {
  const out: string[] = [`policy: ${name(p.name)}`, `version: ${quote(p.version)}`];
  if (p.from) out.push(`from: { policy: ${name(p.from.name)}, version: ${quote(p.from.version)} }`);
  if (p.colors) out.push(`colors: ${list(p.colors)}`);
  if (p.walls) out.push(`walls: ${list(p.walls)}`);
  if (p.conflicts.length > 0) out.push('conflicts:', ...block(p.conflicts.map((c) => [c.name, list(c.walls)])));
  if (p.host !== null) out.push(`host: ${name(p.host)}`);
  if (p.labels.length > 0) {
    out.push('labels:', ...block(p.labels.map((l) => [l.name, flowMap([
      ['colors', l.colors.length > 0 ? list(l.colors) : undefined],
      ['walls', l.walls.length > 0 ? list(l.walls) : undefined],
      ['onUntrusted', l.onUntrusted === 'isolate' ? undefined : l.onUntrusted],
      ['from', l.from === undefined ? undefined : name(l.from)],
    ])])));
  }
  if (p.resources.length > 0) {
    out.push('resources:', ...block(p.resources.map((r) => [r.name, flowMap([
      ['color', name(r.color)],
      ['from', r.from === undefined ? undefined : name(r.from)],
    ])])));
  }
  if (p.meta) {
    out.push(`xen: ${flowMap([
      ['date', p.meta.date === undefined ? undefined : quote(p.meta.date)],
      ['url', p.meta.url === undefined ? undefined : quote(p.meta.url)],
      ['primary', p.meta.primary],
    ])}`);
  }
  return out.join('\n') + '\n';
}

/** `  key:   value` lines, values aligned while the keys are short. */
function block(entries: Array<[string, string]>): string[] {
  const keys = entries.map(([k]) => name(k));
  const width = Math.max(0, ...keys.map((k) => k.length));
  const pad = width <= 24 ? width : 0;
  return entries.map(([, value], i) => {
    const key = keys[i];
    // YAML allows implicit keys of at most 1024 characters; longer names need the explicit `? key` form
    if (key.length > 1000) return `  ? ${key}\n  : ${value}`;
    return `  ${key}:${' '.repeat(Math.max(1, pad - key.length + 1))}${value}`;
  });
}

function flowMap(fields: Array<[string, string | undefined]>): string {
  const present = fields.filter((f): f is [string, string] => f[1] !== undefined);
  return present.length === 0 ? '{}' : `{ ${present.map(([k, v]) => `${k}: ${v}`).join(', ')} }`;
}

function list(xs: ReadonlyArray<string>): string {
  return `[${xs.map(name).join(', ')}]`;
}

/** Words that some YAML reader takes for a boolean or null (YAML 1.1 included, for other tools' sake). */
const RESERVED = /^(?:true|false|yes|no|on|off|y|n|null)$/i;

/** A name, plain where that is safe in any context (flow or block, key or value), double-quoted otherwise. */
function name(s: string): string {
  return /^[\p{L}_][\p{L}\p{N}_./-]*$/u.test(s) && !RESERVED.test(s) ? s : quote(s);
}

/** A double-quoted YAML scalar: escapes what is not printable in YAML (c-printable), and lone surrogates. */
function quote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0) ?? 0;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (c === 0x0a) out += '\\n';
    else if (c === 0x09) out += '\\t';
    else if (c < 0x20 || (c >= 0x7f && c <= 0x9f) || (c >= 0xd800 && c <= 0xdfff) || c === 0x2028 || c === 0x2029
      || c === 0xfeff || c === 0xfffe || c === 0xffff) {
      out += c <= 0xff ? `\\x${c.toString(16).padStart(2, '0')}` : `\\u${c.toString(16).padStart(4, '0')}`;
    } else out += ch;
  }
  return out + '"';
}
