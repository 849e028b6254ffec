/**
 * The policy editor's model: a draft's YAML read into ordered rows (the form edits those), written back as native
 * YAML, checked before it is sent, and the controller's diagnostics placed on the rows and lines they name.
 *
 * Rows keep the order of the text (the controller's diagnostic paths, e.g. ["labels", 3, "colors", 0], count in
 * that order) and any name at all (`__proto__`, `1`): the text is read into `Map`s, never into plain objects.
 * Labels refer to colors and wall types by row id, so that renaming a color in the form renames it everywhere.
 */
import { Document, isMap, isScalar, parseDocument, type Pair, type YAMLMap } from 'yaml';

export type OnUntrustedChoice = '' | 'isolate' | 'alert';

export interface NamedRow { id: string; name: string }
export interface ConflictRow { id: string; name: string; walls: string[] /* wall row ids */ }
export interface LabelRow {
  id: string;
  name: string;
  /** color row ids; a name the policy does not declare is kept as `?NAME` (shown, so that it can be unticked) */
  colors: string[];
  walls: string[];
  onUntrusted: OnUntrustedChoice;
  from: string;
}
export interface ResourceRow { id: string; name: string; color: string /* color row id, '' none, or ?NAME */; from: string }

export interface FormModel {
  policy: string;
  version: string;
  /** the policy this one updates (Xen's FromPolicy); null: none */
  from: { policy: string; version: string } | null;
  /** null: no STE component (the policy restricts no sharing) */
  colors: NamedRow[] | null;
  /** null: no Chinese Wall component */
  walls: NamedRow[] | null;
  conflicts: ConflictRow[];
  /** the host (bootstrap) label's row id, '' for none, or ?NAME for a name that is no label */
  host: string;
  labels: LabelRow[];
  resources: ResourceRow[];
  /** top-level keys the form does not edit (an import's `xen:` facts): written back as they were */
  extra: [string, unknown][];
}

let seq = 0;
export const newId = (kind: string) => `${kind}${++seq}`;

/** A problem in the text that stops it from being read at all (the YAML itself), with its place. */
export class TextProblem extends Error {
  readonly line: number;
  readonly column: number;
  constructor(message: string, line: number, column: number) {
    super(message);
    this.line = line;
    this.column = column;
  }
}

/** The first line of a `yaml` error (its message repeats the place and quotes the source after it). */
const firstLine = (m: string) => m.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');

/** Parse YAML text, or throw `TextProblem` at the first error's place. */
export function parseYaml(text: string): unknown {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  const e = doc.errors[0];
  if (e) {
    const at = e.linePos?.[0] ?? { line: 1, col: 1 };
    throw new TextProblem(firstLine(e.message), at.line, at.col);
  }
  return doc.toJS({ mapAsMap: true, maxAliasCount: 100 });
}

const asMap = (v: unknown): Map<unknown, unknown> => (v instanceof Map ? v : new Map());
const strings = (v: unknown): string[] => (Array.isArray(v) ? v.map((x) => String(x ?? '')) : []);
const str = (v: unknown): string => (v === null || v === undefined ? '' : String(v));
const KNOWN = new Set(['policy', 'version', 'from', 'colors', 'walls', 'conflicts', 'host', 'labels', 'resources']);

/** Read YAML text into the form's rows; throws `TextProblem` for text that is not YAML. */
export function formFromText(text: string): FormModel {
  const raw = asMap(parseYaml(text));
  const colors = Array.isArray(raw.get('colors')) ? strings(raw.get('colors')).map((name) => ({ id: newId('c'), name })) : null;
  const walls = Array.isArray(raw.get('walls')) ? strings(raw.get('walls')).map((name) => ({ id: newId('w'), name })) : null;
  const colorId = (name: string) => colors?.find((c) => c.name === name)?.id ?? `?${name}`;
  const wallId = (name: string) => walls?.find((w) => w.name === name)?.id ?? `?${name}`;
  const labels: LabelRow[] = [...asMap(raw.get('labels'))].map(([k, v]) => {
    const l = asMap(v);
    const on = l.get('onUntrusted');
    return {
      id: newId('l'),
      name: str(k),
      colors: strings(l.get('colors')).map(colorId),
      walls: strings(l.get('walls')).map(wallId),
      onUntrusted: on === 'isolate' || on === 'alert' ? on : '',
      from: str(l.get('from')),
    };
  });
  const host = raw.get('host');
  const from = raw.get('from');
  return {
    policy: str(raw.get('policy')),
    version: str(raw.get('version')),
    from: from instanceof Map ? { policy: str(from.get('policy')), version: str(from.get('version')) } : null,
    colors,
    walls,
    conflicts: [...asMap(raw.get('conflicts'))].map(([k, v]) => ({ id: newId('k'), name: str(k), walls: strings(v).map(wallId) })),
    host: typeof host === 'string' ? (labels.find((l) => l.name === host)?.id ?? `?${host}`) : '',
    labels,
    resources: [...asMap(raw.get('resources'))].map(([k, v]) => {
      const r = asMap(v);
      const c = r.get('color');
      return { id: newId('r'), name: str(k), color: c === undefined || c === null || c === '' ? '' : colorId(String(c)), from: str(r.get('from')) };
    }),
    extra: [...raw].filter(([k]) => !KNOWN.has(String(k))).map(([k, v]) => [String(k), v]),
  };
}

/** A row id's name (`?NAME` is a name the policy does not declare). */
export function nameOf(rows: readonly NamedRow[] | null, id: string): string {
  if (id.startsWith('?')) return id.slice(1);
  return rows?.find((r) => r.id === id)?.name ?? '';
}

/** Write the form as native YAML: flow style for short lists and each label, as README's example reads. */
export function textFromForm(m: FormModel): string {
  const doc = new Document();
  const flow = (v: unknown) => doc.createNode(v, { flow: true });
  const root = doc.createNode(new Map()) as YAMLMap;
  root.add(doc.createPair('policy', m.policy));
  root.add(doc.createPair('version', m.version));
  if (m.from) root.add(doc.createPair('from', flow(new Map([['policy', m.from.policy], ['version', m.from.version]]))));
  if (m.colors) root.add(doc.createPair('colors', flow(m.colors.map((c) => c.name))));
  if (m.walls) root.add(doc.createPair('walls', flow(m.walls.map((w) => w.name))));
  if (m.conflicts.length > 0) {
    const c = doc.createNode(new Map()) as YAMLMap;
    for (const k of m.conflicts) c.add(doc.createPair(k.name, flow(k.walls.map((w) => nameOf(m.walls, w)))));
    root.add(doc.createPair('conflicts', c));
  }
  if (m.host !== '') root.add(doc.createPair('host', m.host.startsWith('?') ? m.host.slice(1) : (m.labels.find((l) => l.id === m.host)?.name ?? '')));
  const labels = doc.createNode(new Map()) as YAMLMap;
  for (const l of m.labels) {
    const v = new Map<string, unknown>();
    if (l.colors.length) v.set('colors', l.colors.map((c) => nameOf(m.colors, c)));
    if (l.walls.length) v.set('walls', l.walls.map((w) => nameOf(m.walls, w)));
    if (l.onUntrusted) v.set('onUntrusted', l.onUntrusted);
    if (l.from) v.set('from', l.from);
    labels.add(doc.createPair(l.name, flow(v)));
  }
  root.add(doc.createPair('labels', labels));
  if (m.resources.length > 0) {
    const r = doc.createNode(new Map()) as YAMLMap;
    for (const x of m.resources) {
      const v = new Map<string, unknown>([['color', nameOf(m.colors, x.color)]]);
      if (x.from) v.set('from', x.from);
      r.add(doc.createPair(x.name, flow(v)));
    }
    root.add(doc.createPair('resources', r));
  }
  for (const [k, v] of m.extra) root.add(doc.createPair(k, v));
  doc.contents = root;
  return doc.toString({ lineWidth: 0, flowCollectionPadding: false });
}

/** A field's key for its error: `policy`, `colors.c3`, `labels.l2.colors`, `resources.r1.name` (row ids). */
export type FieldErrors = Record<string, string>;

function dupCheck(rows: readonly { id: string; name: string }[], what: string, key: (id: string) => string, out: FieldErrors): void {
  const seen = new Set<string>();
  for (const r of rows) {
    const n = r.name.trim();
    if (n === '') out[key(r.id)] = `The ${what} needs a name.`;
    else if (seen.has(n)) out[key(r.id)] = `There is another ${what} named “${n}”.`;
    else if (n !== r.name) out[key(r.id)] = `The ${what} name has spaces at its start or end.`;
    seen.add(n);
  }
}

/** What the form can tell before anything is sent (the controller checks the rest and names it). */
export function checkForm(m: FormModel): FieldErrors {
  const out: FieldErrors = {};
  if (m.policy.trim() === '') out.policy = 'The policy needs a name.';
  else if (m.policy.includes(':')) out.policy = 'A policy name may not contain “:” (Xen reserves it).';
  if (m.version.trim() === '') out.version = 'The policy needs a version, e.g. 1.1.';
  if (m.from) {
    if (m.from.policy.trim() === '') out['from.policy'] = 'Name the policy this one updates, or remove “updates”.';
    if (m.from.version.trim() === '') out['from.version'] = 'Give the version this one updates.';
  }
  if (m.colors) dupCheck(m.colors, 'color', (id) => `colors.${id}`, out);
  if (m.walls) dupCheck(m.walls, 'wall type', (id) => `walls.${id}`, out);
  dupCheck(m.conflicts, 'conflict set', (id) => `conflicts.${id}.name`, out);
  dupCheck(m.labels, 'label', (id) => `labels.${id}.name`, out);
  for (const l of m.labels) {
    if (!out[`labels.${l.id}.name`] && l.name.includes(':')) out[`labels.${l.id}.name`] = 'A label name may not contain “:” (Xen reserves it).';
    const unknown = l.colors.filter((c) => c.startsWith('?'));
    if (unknown.length) out[`labels.${l.id}.colors`] = `Not a color of this policy: ${unknown.map((c) => c.slice(1)).join(', ')}.`;
    const unknownW = l.walls.filter((w) => w.startsWith('?'));
    if (unknownW.length) out[`labels.${l.id}.walls`] = `Not a wall type of this policy: ${unknownW.map((w) => w.slice(1)).join(', ')}.`;
  }
  dupCheck(m.resources, 'resource label', (id) => `resources.${id}.name`, out);
  for (const r of m.resources) {
    if (r.color === '') out[`resources.${r.id}.color`] = 'A resource label needs exactly one color.';
    else if (r.color.startsWith('?')) out[`resources.${r.id}.color`] = `Not a color of this policy: ${r.color.slice(1)}.`;
  }
  if (m.host === '' && (m.colors !== null || m.walls !== null)) out.host = 'Choose the host (bootstrap) label: what a host may run.';
  else if (m.host.startsWith('?')) out.host = `“${m.host.slice(1)}” is not a label of this policy.`;
  return out;
}

/** A diagnostic as the controller sends it (422 `policy_invalid`, validate's warnings). */
export type { DiagnosticV1 } from '../../../../src/api/types.ts';

/** The form field a diagnostic's model path names (`null`: the form has no place for it). */
export function fieldOfPath(m: FormModel, path: readonly (string | number)[] | undefined): string | null {
  if (!path || path.length === 0) return null;
  const [head, i, field] = path;
  const row = <T extends { id: string }>(rows: readonly T[] | null) => (typeof i === 'number' ? rows?.[i] : undefined);
  switch (head) {
    case 'name': return 'policy';
    case 'version': return 'version';
    case 'host': return 'host';
    case 'from': return i === 'version' ? 'from.version' : 'from.policy';
    case 'colors': { const r = row(m.colors); return r ? `colors.${r.id}` : 'colors'; }
    case 'walls': { const r = row(m.walls); return r ? `walls.${r.id}` : 'walls'; }
    case 'conflicts': { const r = row(m.conflicts); return r ? `conflicts.${r.id}.${field === 'walls' ? 'walls' : 'name'}` : null; }
    case 'labels': {
      const r = row(m.labels);
      if (!r) return null;
      return `labels.${r.id}.${field === 'colors' || field === 'walls' || field === 'onUntrusted' || field === 'from' ? field : 'name'}`;
    }
    case 'resources': {
      const r = row(m.resources);
      if (!r) return null;
      return `resources.${r.id}.${field === 'color' || field === 'from' ? field : 'name'}`;
    }
    default: return null;
  }
}

/** "1.0" → "1.1", "1.9" → "1.10", "2" → "2.1"; anything else unchanged. */
export function nextVersion(v: string): string {
  if (/^\d+$/.test(v)) return `${v}.1`;
  const m = /^(\d+(?:\.\d+)*)\.(\d+)$/.exec(v);
  return m ? `${m[1]}.${Number(m[2]) + 1}` : v;
}

const q = (s: string) => JSON.stringify(s);

/**
 * The text of a new draft that follows `text` (the published version): its version one greater, and `from` naming
 * it, so that the update passes Xen's identity checks. The rest of the text (comments, layout) is kept as written.
 */
export function followUpText(text: string): string {
  const doc = parseDocument(text);
  const root = doc.contents;
  if (doc.errors.length > 0 || !isMap(root)) return text;
  const pairs = root.items as Pair[];
  const keyOf = (p: Pair) => (isScalar(p.key) ? String(p.key.value) : '');
  const policyPair = pairs.find((p) => keyOf(p) === 'policy');
  const versionPair = pairs.find((p) => keyOf(p) === 'version');
  const fromPair = pairs.find((p) => keyOf(p) === 'from');
  const name = isScalar(policyPair?.value) ? String(policyPair.value.value) : '';
  const vNode = versionPair?.value;
  if (!isScalar(vNode) || !vNode.range) return text;
  const version = String(vNode.value);
  const fromText = `{ policy: ${q(name)}, version: ${q(version)} }`;
  const edits: { at: number; end: number; put: string }[] = [{ at: vNode.range[0], end: vNode.range[1], put: q(nextVersion(version)) }];
  const fv = fromPair?.value as { range?: [number, number, number] } | null | undefined;
  const fk = fromPair?.key as { range?: [number, number, number] } | null | undefined;
  if (fromPair && fv?.range && fk?.range) {
    // the whole pair, block or flow, becomes one line (a block value's range ends after its newline)
    const end = fv.range[1];
    edits.push({ at: fk.range[0], end, put: `from: ${fromText}${text[end - 1] === '\n' ? '\n' : ''}` });
  }
  else if (!fromPair) {
    const eol = text.indexOf('\n', vNode.range[1]);
    const at = eol < 0 ? text.length : eol;
    edits.push({ at, end: at, put: `\nfrom: ${fromText}` });
  } else return text;
  let out = text;
  for (const e of edits.sort((a, b) => b.at - a.at)) out = out.slice(0, e.at) + e.put + out.slice(e.end);
  return out;
}

/** A new policy to start from when nothing is published. */
export const EMPTY_POLICY = `policy: my-policy
version: "1.0"
colors: [infra]
host: infra-host
labels:
  infra-host: { colors: [infra] }
`;

/** The value a field key names (to tell whether a field was edited since the controller named it). */
export function fieldValue(m: FormModel, key: string): string {
  const [section, id, field] = key.split('.');
  switch (section) {
    case 'policy': return m.policy;
    case 'version': return m.version;
    case 'host': return m.host;
    case 'from': return JSON.stringify(m.from ? m.from[id as 'policy' | 'version'] : null);
    case 'colors': case 'walls': case 'conflicts': case 'labels': case 'resources': {
      const rows = (m[section] ?? []) as readonly { id: string }[];
      const row = rows.find((r) => r.id === id) as Record<string, unknown> | undefined;
      if (id === undefined) return JSON.stringify(rows);
      return JSON.stringify(row === undefined ? null : field === undefined ? row.name : row[field]);
    }
    default: return '';
  }
}
