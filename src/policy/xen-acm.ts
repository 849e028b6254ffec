/**
 * Xen ACM (sHype) policy XML: import of every format Xen shipped (2005–2011), export in the last one (gen3).
 *
 * Formats read (namespace http://www.ibm.com; elements without a namespace are accepted too):
 * - gen1 (Xen 3.0.0): `<PolicyHeader><Name>`, no labels in the policy file; the labels live in a separate
 *   `*-security_label_template.xml` (root `SecurityLabelTemplate`, with a `LabelHeader` that is ignored), passed
 *   as `opts.labelTemplate`. Given alone as the main text, such a template is refused with a hint.
 * - gen2 (3.0.2–3.0.4): `PolicyName`, embedded `SecurityLabelTemplate`, no `Version`.
 * - gen2b (3.1): optional `Version`, `Conflict` name optional.
 * - gen3 (3.2–4.1): `Version` required, `<FromPolicy>` and `from=` renames.
 *
 * Decisions (where the formats or Xen's tools leave room):
 * - Safety first: a DOCTYPE is refused outright (`doctype_forbidden`), so no entity is ever defined, expanded or
 *   fetched; input over MAX_POLICY_BYTES is refused before parsing, nesting over MAX_XML_DEPTH stops the parse.
 *   The first XML syntax error stops the parse (the rest of a broken document only yields noise). An unknown
 *   element is reported but its subtree is not kept, and at most MAX_DIAGNOSTICS problems are listed (the
 *   verdict still counts them all): a hostile 16 MB file costs about what its XML parse costs.
 * - Element order inside a parent is not checked (it carries no meaning here); unknown elements, unknown
 *   un-prefixed attributes, a second copy of a single element and text inside container elements are
 *   `schema_violation` errors. Prefixed attributes (xmlns, xsi:schemaLocation) are ignored.
 * - Reference, NameSpaceUrl and the whole LabelHeader are ignored.
 * - No `<Version>` reads as "0.0" (what Xen's acmpolicy.py assumes) with a warning; a version that is not
 *   MAJOR.MINOR is a `bad_version` error, as Xen's schema has it.
 * - An empty `<Type/>` names no type anywhere (Xen writes it for "no Chinese Wall type").
 * - An unnamed (or blank-named) Conflict becomes `conflict-N` (N = its 1-based position) with a warning; the
 *   k-th set of an already used name becomes `NAME#k` (next free suffix if that is taken too) with a
 *   `duplicate_name` warning: the sets stay separate, as Xen enforces them separately.
 * - A VM label takes every STE type of all its SimpleTypeEnforcementTypes blocks (gen2 allows several), in order;
 *   likewise its Chinese Wall types. Every label reads `onUntrusted: 'isolate'` (Xen has no such rule).
 * - A resource label must have exactly one STE type (`resource_color_count` otherwise); it is then left out of
 *   the model, so that it does not also produce an unknown-color error.
 * - A gen2+ policy given a separate label template as well is an error: which labels would win is unclear.
 * - `priority="PrimaryPolicyComponent"` on both components: the first one wins, with a warning.
 * - Names and `from`/`bootstrap` values are trimmed, nothing else.
 * - Positions are 1-based lines and columns (in UTF-16 units) of the element's `<` or the attribute's name; for
 *   syntax errors, the last character the parser read (saxes's own line and column).
 *
 * Export writes gen3 in the element order of security_policy.xsd, with one SimpleTypeEnforcementTypes block per
 * VM label so that it also passes the stricter schema embedded in acmpolicy.py. It refuses (PolicyError) a policy
 * that does not validate, a version that is not MAJOR.MINOR and text that XML 1.0 cannot carry.
 */
import { SaxesParser } from 'saxes';
import { PolicyError, PolicyErrorCode as C, type Diagnostic, type SourcePosition } from './errors.ts';
import { MAX_POLICY_BYTES, MAX_XML_DEPTH } from './limits.ts';
import type { ConflictSet, Label, ModelPath, Policy, PolicyMeta, ResourceLabel } from './model.ts';
import type { ReadResult } from './read-result.ts';
import { validatePolicy } from './validate.ts';

const IBM_NS = 'http://www.ibm.com';
const XSI_NS = 'http://www.w3.org/2001/XMLSchema-instance';
const PRIMARY = 'PrimaryPolicyComponent';
const VERSION_RE = /^[0-9]{1,8}\.[0-9]{1,8}$/;
/** A hostile file can hold millions of problems; past this many, only the fact that there are more is kept. */
const MAX_DIAGNOSTICS = 100;

// ---------------------------------------------------------------------------------------------------------------
// Sniffing

/** True when `text` is an XML document whose root element is a Xen policy or a Xen (gen1) label template. */
export function isXenAcm(text: string): boolean {
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  // Bounded: every step consumes at least one construct of the prolog, and we never look past the root tag.
  for (;;) {
    while (i < text.length && ' \t\r\n'.includes(text[i])) i++;
    if (text.startsWith('<?', i) || text.startsWith('<!--', i)) {
      const end = text.indexOf(text.startsWith('<?', i) ? '?>' : '-->', i + 2);
      if (end < 0) return false;
      i = end + (text.startsWith('<?', i) ? 2 : 3);
    } else if (text.startsWith('<!DOCTYPE', i)) {
      // Skip it (the reader refuses it with a proper diagnostic); an internal subset is bracketed.
      const gt = text.indexOf('>', i);
      const br = text.indexOf('[', i);
      const end = br >= 0 && (gt < 0 || br < gt) ? text.indexOf(']', br) : i;
      const close = end < 0 ? -1 : text.indexOf('>', end);
      if (close < 0) return false;
      i = close + 1;
    } else break;
  }
  return /^<(?:[A-Za-z_][\w.-]*:)?(?:SecurityPolicyDefinition|SecurityLabelTemplate)[\s/>]/.test(text.slice(i, i + 200));
}

// ---------------------------------------------------------------------------------------------------------------
// Parsing into a small tree that remembers where everything came from

interface Attr {
  value: string;
  pos: SourcePosition;
}
interface El {
  /** local name for IBM / no-namespace elements; the prefixed name for anything else, so it never matches */
  name: string;
  /** un-prefixed attributes only */
  attrs: ReadonlyMap<string, Attr>;
  children: El[];
  text: string;
  pos: SourcePosition;
}

// Shared empties: a hostile file can hold millions of elements, so an element without attributes or children
// costs no Map or array.
const NO_ATTRS: ReadonlyMap<string, Attr> = new Map();
const NO_CHILDREN: El[] = [];
function adopt(parent: El, child: El): void {
  if (parent.children === NO_CHILDREN) parent.children = [];
  parent.children.push(child);
}

/** Every element name of every generation; anything else is reported (and its subtree not even kept). */
const KNOWN = new Set([
  'SecurityPolicyDefinition', 'PolicyHeader', 'PolicyName', 'Name', 'PolicyUrl', 'Reference', 'Date', 'NameSpaceUrl',
  'Version', 'FromPolicy', 'SimpleTypeEnforcement', 'SimpleTypeEnforcementTypes', 'ChineseWall', 'ChineseWallTypes',
  'ConflictSets', 'Conflict', 'Type', 'SecurityLabelTemplate', 'LabelHeader', 'Url', 'SubjectLabels', 'ObjectLabels',
  'VirtualMachineLabel', 'ResourceLabel',
]);

/** Thrown from inside saxes handlers to stop the parse at once (a DOCTYPE, a syntax error, too deep). */
const ABORT = Symbol('abort');

function diag(code: Diagnostic['code'], message: string, pos: SourcePosition, file?: string,
  severity: Diagnostic['severity'] = 'error'): Diagnostic {
  const d: Diagnostic = { code, message, severity, position: pos };
  if (file !== undefined) d.file = file;
  return d;
}

/** Offset → line/column; line breaks as XML counts them (\n, \r\n, lone \r). */
function lineIndex(text: string): (offset: number) => SourcePosition {
  const starts = [0];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 10 || (c === 13 && text.charCodeAt(i + 1) !== 10)) starts.push(i + 1);
  }
  return (offset) => {
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, column: offset - starts[lo] + 1 };
  };
}

function parseXml(input: string, file: string | undefined, out: Diagnostic[]): El | null {
  const start = { line: 1, column: 1 };
  // length > limit implies bytes > limit, so a huge input is refused without even encoding it.
  if (input.length > MAX_POLICY_BYTES || Buffer.byteLength(input, 'utf8') > MAX_POLICY_BYTES) {
    out.push(diag(C.tooLarge, `the input is larger than ${MAX_POLICY_BYTES} bytes`, start, file));
    return null;
  }
  const text = input.charCodeAt(0) === 0xfeff ? input.slice(1) : input;
  const posAt = lineIndex(text);
  const parser = new SaxesParser({ xmlns: true, position: true });
  const stack: El[] = [];
  let root: El | null = null;
  let tagStart = 0;
  /** depth inside an unknown element, whose subtree is not kept */
  let skip = 0;
  let unknown = 0;
  const fail = (code: Diagnostic['code'], message: string, pos: SourcePosition): never => {
    out.push(diag(code, message, pos, file));
    throw ABORT;
  };
  parser.on('doctype', () => {
    fail(C.doctype, 'a DOCTYPE is not allowed: Xen policies need no entities, and none are ever expanded or fetched',
      posAt(Math.max(0, text.lastIndexOf('<!DOCTYPE', parser.position))));
  });
  parser.on('error', (e) => {
    fail(C.xmlSyntax, e.message.replace(/^\d+:\d+: /, ''), { line: parser.line, column: Math.max(1, parser.column) });
  });
  parser.on('opentagstart', (tag) => {
    // saxes has read `<`, the name and one character past it.
    tagStart = Math.max(0, parser.position - tag.name.length - 2);
    if (stack.length + skip >= MAX_XML_DEPTH) {
      fail(C.schema, `elements nest deeper than ${MAX_XML_DEPTH} levels; a Xen policy nests 6`, posAt(tagStart));
    }
  });
  parser.on('opentag', (tag) => {
    if (skip > 0) {
      skip++;
      return;
    }
    const ours = tag.uri === IBM_NS || tag.uri === '';
    const el: El = {
      name: ours ? tag.local : tag.name,
      attrs: NO_ATTRS,
      children: NO_CHILDREN,
      text: '',
      pos: posAt(tagStart),
    };
    if (!ours || !KNOWN.has(tag.local)) {
      // An element no format has: keep a marker so that it is reported where it stands, but not its subtree,
      // and not millions of them (all it takes to refuse the file is one).
      skip = 1;
      if (root === null) root = el;
      else if (unknown++ <= MAX_DIAGNOSTICS) adopt(stack[stack.length - 1], el);
      return;
    }
    const wanted = Object.values(tag.attributes).filter((a) => a.prefix === '' && a.uri === '' && a.local !== 'xmlns');
    if (wanted.length > 0) {
      const attrs = new Map<string, Attr>();
      el.attrs = attrs;
      // Where each attribute's name starts, from the raw start tag (already well-formed, so this scan is exact).
      const raw = text.slice(tagStart, parser.position);
      const at = new Map<string, number>();
      for (const m of raw.matchAll(/\s([^\s=/>]+)\s*=\s*(?:"[^"]*"|'[^']*')/g)) at.set(m[1], m.index + 1);
      for (const a of wanted) attrs.set(a.local, { value: a.value, pos: posAt(tagStart + (at.get(a.name) ?? 0)) });
    }
    if (stack.length > 0) adopt(stack[stack.length - 1], el);
    else root = el;
    stack.push(el);
  });
  parser.on('closetag', () => {
    if (skip > 0) skip--;
    else stack.pop();
  });
  const addText = (t: string) => {
    if (skip === 0 && stack.length > 0) stack[stack.length - 1].text += t;
  };
  parser.on('text', addText);
  parser.on('cdata', addText);
  try {
    parser.write(text).close();
  } catch (e) {
    if (e === ABORT) return null;
    throw e;
  }
  return root;
}

// ---------------------------------------------------------------------------------------------------------------
// Reading the tree into the model

interface Where {
  pos: SourcePosition;
  file?: string;
}

/** Shared state of one import: diagnostics, and where each model path came from. */
interface Ctx {
  out: Diagnostic[];
  where: Map<string, Where>;
  /** an error was found (it may be among those not kept) */
  failed: boolean;
}

function push(cx: Ctx, d: Diagnostic): void {
  if (d.severity === 'error') cx.failed = true;
  if (cx.out.length < MAX_DIAGNOSTICS) cx.out.push(d);
  else if (cx.out.length === MAX_DIAGNOSTICS) {
    cx.out.push({ ...d, severity: 'warning', code: C.schema, message: `more than ${MAX_DIAGNOSTICS} problems; the rest are not shown` });
  }
}
/** One source file of an import (the policy, or a gen1 label template). */
interface Src {
  cx: Ctx;
  file?: string;
}

const key = (path: ModelPath) => path.join('/');

function note(src: Src, path: ModelPath, pos: SourcePosition): void {
  src.cx.where.set(key(path), src.file === undefined ? { pos } : { pos, file: src.file });
}

function report(src: Src, code: Diagnostic['code'], message: string, pos: SourcePosition,
  severity: Diagnostic['severity'] = 'error'): void {
  push(src.cx, diag(code, message, pos, src.file, severity));
}

type Spec = Record<string, 'one' | 'many' | 'skip'>;

/**
 * The children of `el` grouped by name, after reporting whatever the formats do not allow there: unknown
 * children, a second copy of a single child, unknown un-prefixed attributes, text in a container.
 * A leaf (`spec` = {}) may hold text.
 */
function kids(src: Src, el: El, spec: Spec, attrs: readonly string[] = []): Map<string, El[]> {
  const groups = new Map<string, El[]>();
  for (const c of el.children) {
    const kind = Object.hasOwn(spec, c.name) ? spec[c.name] : undefined;
    if (kind === undefined) {
      report(src, C.schema, `<${c.name}> is not allowed in <${el.name}>`, c.pos);
      continue;
    }
    const list = groups.get(c.name) ?? [];
    if (kind === 'one' && list.length > 0) {
      report(src, C.schema, `<${el.name}> may hold only one <${c.name}>`, c.pos);
      continue;
    }
    list.push(c);
    groups.set(c.name, list);
  }
  for (const [name, a] of el.attrs) {
    if (!attrs.includes(name)) report(src, C.schema, `attribute "${name}" is not allowed on <${el.name}>`, a.pos);
  }
  if (Object.keys(spec).length > 0 && el.text.trim() !== '') {
    report(src, C.schema, `<${el.name}> holds text where only elements are allowed`, el.pos);
  }
  return groups;
}

function leafText(src: Src, el: El, attrs: readonly string[] = []): string {
  kids(src, el, {}, attrs);
  return el.text.trim();
}

/** The non-empty Type names of some type blocks, in order, noting where each came from. */
function readTypes(src: Src, blocks: readonly El[], pathOf: (k: number) => ModelPath): string[] {
  const names: string[] = [];
  for (const b of blocks) {
    for (const t of kids(src, b, { Type: 'many' }).get('Type') ?? []) {
      const n = leafText(src, t);
      if (n === '') continue; // `<Type/>` names no type
      note(src, pathOf(names.length), t.pos);
      names.push(n);
    }
  }
  return names;
}

/** A label's Name: its trimmed text and `from` rename. */
function readName(src: Src, el: El | undefined, owner: El, base: ModelPath): { name: string; from?: string } {
  note(src, [...base, 'name'], (el ?? owner).pos);
  if (el === undefined) return { name: '' };
  const name = leafText(src, el, ['from']);
  const from = el.attrs.get('from');
  if (from === undefined) return { name };
  note(src, [...base, 'from'], from.pos);
  return { name, from: from.value.trim() };
}

function readVersion(src: Src, el: El): string {
  const v = leafText(src, el);
  if (!VERSION_RE.test(v)) report(src, C.badVersion, `version "${v}" is not MAJOR.MINOR`, el.pos);
  return v;
}

function readPriority(src: Src, el: El, which: 'ste' | 'chwall', meta: PolicyMeta): void {
  const a = el.attrs.get('priority');
  if (a === undefined) return;
  if (a.value !== PRIMARY) report(src, C.schema, `priority must be "${PRIMARY}", not "${a.value}"`, a.pos);
  else if (meta.primary !== undefined) {
    report(src, C.schema, `both components claim to be primary; keeping ${meta.primary}`, a.pos, 'warning');
  } else meta.primary = which;
}

function readHeader(src: Src, h: El, p: Policy, meta: PolicyMeta): void {
  const g = kids(src, h, {
    PolicyName: 'one', Name: 'one', PolicyUrl: 'one', Reference: 'skip', Date: 'one', NameSpaceUrl: 'skip',
    Version: 'one', FromPolicy: 'one',
  });
  const names = [...(g.get('PolicyName') ?? []), ...(g.get('Name') ?? [])]; // gen2+ / gen1
  if (names.length > 1) report(src, C.schema, '<PolicyHeader> has both <PolicyName> and <Name>', names[1].pos);
  if (names.length > 0) {
    p.name = leafText(src, names[0]);
    note(src, ['name'], names[0].pos);
  }
  const version = g.get('Version')?.[0];
  if (version !== undefined) {
    p.version = readVersion(src, version);
    note(src, ['version'], version.pos);
  } else {
    report(src, C.schema, 'the policy has no <Version>; reading it as 0.0, as Xen does', h.pos, 'warning');
  }
  const date = g.get('Date')?.[0];
  if (date !== undefined) meta.date = leafText(src, date);
  const url = g.get('PolicyUrl')?.[0];
  if (url !== undefined) meta.url = leafText(src, url);
  const from = g.get('FromPolicy')?.[0];
  if (from !== undefined) {
    const f = kids(src, from, { PolicyName: 'one', Version: 'one' });
    const fn = f.get('PolicyName')?.[0];
    const fv = f.get('Version')?.[0];
    if (fn === undefined || fv === undefined) {
      report(src, C.schema, '<FromPolicy> needs a <PolicyName> and a <Version>', from.pos);
    } else {
      p.from = { name: leafText(src, fn), version: readVersion(src, fv) };
      note(src, ['from'], from.pos);
    }
  }
}

function readConflicts(src: Src, sets: readonly El[]): ConflictSet[] {
  const conflicts = sets.map((c, i): ConflictSet => {
    const g = kids(src, c, { Type: 'many' }, ['name']);
    note(src, ['conflicts', i], c.pos);
    const attr = c.attrs.get('name');
    note(src, ['conflicts', i, 'name'], attr?.pos ?? c.pos);
    let name = attr?.value.trim() ?? '';
    if (name === '') {
      name = `conflict-${i + 1}`;
      report(src, C.emptyName, `conflict set without a name; calling it "${name}"`, c.pos, 'warning');
    }
    const walls: string[] = [];
    for (const t of g.get('Type') ?? []) {
      const w = leafText(src, t);
      if (w === '') continue;
      note(src, ['conflicts', i, 'walls', walls.length], t.pos);
      walls.push(w);
    }
    return { name, walls };
  });
  // Xen enforces every set on its own, whatever its name: keep them apart under distinct names.
  const taken = new Set(conflicts.map((c) => c.name));
  const seen = new Map<string, number>();
  conflicts.forEach((c, i) => {
    const k = (seen.get(c.name) ?? 0) + 1;
    seen.set(c.name, k);
    if (k === 1) return;
    let n = k;
    while (taken.has(`${c.name}#${n}`)) n++;
    const renamed = `${c.name}#${n}`;
    taken.add(renamed);
    report(src, C.duplicate, `conflict set name "${c.name}" is used again; keeping this set apart as "${renamed}"`,
      src.cx.where.get(key(['conflicts', i, 'name']))!.pos, 'warning');
    c.name = renamed;
  });
  return conflicts;
}

/** SubjectLabels and ObjectLabels, from an embedded SecurityLabelTemplate or a gen1 template file. */
function readTemplate(src: Src, tpl: El, p: Policy, standalone: boolean): void {
  const spec: Spec = { SubjectLabels: 'one', ObjectLabels: 'one' };
  if (standalone) spec.LabelHeader = 'skip';
  const g = kids(src, tpl, spec);
  note(src, ['host'], tpl.pos);
  const subjects = g.get('SubjectLabels')?.[0];
  if (subjects !== undefined) {
    const boot = subjects.attrs.get('bootstrap');
    note(src, ['host'], boot?.pos ?? subjects.pos);
    if (boot !== undefined) p.host = boot.value.trim();
    for (const vm of kids(src, subjects, { VirtualMachineLabel: 'many' }, ['bootstrap']).get('VirtualMachineLabel') ?? []) {
      const li = p.labels.length;
      const base = ['labels', li];
      note(src, base, vm.pos);
      const v = kids(src, vm, { Name: 'one', SimpleTypeEnforcementTypes: 'many', ChineseWallTypes: 'many' });
      const { name, from } = readName(src, v.get('Name')?.[0], vm, base);
      const label: Label = {
        name,
        colors: readTypes(src, v.get('SimpleTypeEnforcementTypes') ?? [], (k) => [...base, 'colors', k]),
        walls: readTypes(src, v.get('ChineseWallTypes') ?? [], (k) => [...base, 'walls', k]),
        onUntrusted: 'isolate',
      };
      if (from !== undefined) label.from = from;
      p.labels.push(label);
    }
  }
  const objects = g.get('ObjectLabels')?.[0];
  if (objects !== undefined) {
    for (const rl of kids(src, objects, { ResourceLabel: 'many' }).get('ResourceLabel') ?? []) {
      const base = ['resources', p.resources.length];
      const r = kids(src, rl, { Name: 'one', SimpleTypeEnforcementTypes: 'many' });
      const { name, from } = readName(src, r.get('Name')?.[0], rl, base);
      const colors = readTypes(src, r.get('SimpleTypeEnforcementTypes') ?? [], (k) => [...base, 'color', k]);
      if (colors.length !== 1) {
        report(src, C.resourceColors, `resource label "${name}" has ${colors.length} STE types; it must have exactly one`, rl.pos);
        continue;
      }
      // readTypes noted ['resources', i, 'color', 0]; the model path has no index.
      note(src, [...base, 'color'], src.cx.where.get(key([...base, 'color', 0]))!.pos);
      note(src, base, rl.pos);
      const res: ResourceLabel = { name, color: colors[0] };
      if (from !== undefined) res.from = from;
      p.resources.push(res);
    }
  }
}

/**
 * Reads a Xen ACM policy (any generation). For a Xen 3.0.0 policy, pass its label template as
 * `opts.labelTemplate`. Never throws for bad input: problems come back as diagnostics, and any error leaves
 * `policy` null.
 */
export function readXenAcm(text: string, file?: string,
  opts?: { labelTemplate?: { text: string; file?: string } }): ReadResult {
  const cx: Ctx = { out: [], where: new Map(), failed: false };
  const src: Src = file === undefined ? { cx } : { cx, file };
  const fail = (): ReadResult => ({ policy: null, diagnostics: cx.out });

  const root = parseXml(text, file, cx.out);
  if (root === null) return fail();
  if (root.name === 'SecurityLabelTemplate') {
    report(src, C.schema, 'this is a Xen 3.0.0 label template, not a policy: give the policy file ' +
      '(*-security_policy.xml) and this file as its label template (--labels)', root.pos);
    return fail();
  }
  if (root.name !== 'SecurityPolicyDefinition') {
    report(src, C.schema, `<${root.name}> is not a Xen ACM policy (expected <SecurityPolicyDefinition>)`, root.pos);
    return fail();
  }

  const p: Policy = { name: '', version: '0.0', colors: null, walls: null, conflicts: [], host: null, labels: [], resources: [] };
  const meta: PolicyMeta = {};
  note(src, [], root.pos);
  note(src, ['host'], root.pos);
  const g = kids(src, root, { PolicyHeader: 'one', SimpleTypeEnforcement: 'one', ChineseWall: 'one', SecurityLabelTemplate: 'one' });

  const header = g.get('PolicyHeader')?.[0];
  if (header !== undefined) readHeader(src, header, p, meta);
  else report(src, C.schema, 'the policy has no <PolicyHeader>; reading its version as 0.0', root.pos, 'warning');

  const ste = g.get('SimpleTypeEnforcement')?.[0];
  if (ste !== undefined) {
    readPriority(src, ste, 'ste', meta);
    const blocks = kids(src, ste, { SimpleTypeEnforcementTypes: 'one' }, ['priority']).get('SimpleTypeEnforcementTypes') ?? [];
    if (blocks.length === 0) report(src, C.schema, '<SimpleTypeEnforcement> has no <SimpleTypeEnforcementTypes>', ste.pos);
    p.colors = readTypes(src, blocks, (k) => ['colors', k]);
  }
  const cw = g.get('ChineseWall')?.[0];
  if (cw !== undefined) {
    readPriority(src, cw, 'chwall', meta);
    const c = kids(src, cw, { ChineseWallTypes: 'one', ConflictSets: 'one' }, ['priority']);
    const blocks = c.get('ChineseWallTypes') ?? [];
    if (blocks.length === 0) report(src, C.schema, '<ChineseWall> has no <ChineseWallTypes>', cw.pos);
    p.walls = readTypes(src, blocks, (k) => ['walls', k]);
    const sets = c.get('ConflictSets')?.[0];
    if (sets !== undefined) p.conflicts = readConflicts(src, kids(src, sets, { Conflict: 'many' }).get('Conflict') ?? []);
  }

  const embedded = g.get('SecurityLabelTemplate')?.[0];
  if (embedded !== undefined) readTemplate(src, embedded, p, false);
  const given = opts?.labelTemplate;
  if (given !== undefined) {
    const tsrc: Src = given.file === undefined ? { cx } : { cx, file: given.file };
    const troot = parseXml(given.text, given.file, cx.out);
    if (troot === null) return fail();
    if (troot.name !== 'SecurityLabelTemplate') {
      report(tsrc, C.schema, `the label template's root is <${troot.name}>, not <SecurityLabelTemplate>`, troot.pos);
    } else if (embedded !== undefined) {
      report(tsrc, C.schema, 'the policy has its own <SecurityLabelTemplate>; a separate label template is only ' +
        'for Xen 3.0.0 policies', troot.pos);
    } else {
      readTemplate(tsrc, troot, p, true);
    }
  }
  if (meta.date !== undefined || meta.url !== undefined || meta.primary !== undefined) p.meta = meta;

  // The model rules, each placed at the element or attribute its path came from (longest known prefix).
  for (const d of validatePolicy(p)) {
    if (cx.out.length > MAX_DIAGNOSTICS) {
      push(cx, d); // only counted
      continue;
    }
    const path = d.path ?? [];
    let w: Where | undefined;
    for (let n = path.length; w === undefined && n >= 0; n--) w = cx.where.get(key(path.slice(0, n)));
    const placed: Diagnostic = { ...d, position: w!.pos };
    const f = w!.file ?? file;
    if (f !== undefined) placed.file = f;
    if (d.code === C.missingBootstrap && embedded === undefined && given === undefined) {
      placed.message += ' (a Xen 3.0.0 policy keeps its labels in *-security_label_template.xml: give it as the label template, --labels)';
    }
    push(cx, placed);
  }
  return cx.failed || cx.out.some((d) => d.severity === 'error') ? fail() : { policy: p, diagnostics: cx.out };
}

// ---------------------------------------------------------------------------------------------------------------
// Writing gen3

// Characters XML 1.0 cannot carry at all (not even as a reference).
const NOT_XML_CHAR = /[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

const escText = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\r/g, '&#13;');
// Attribute values are whitespace-normalized by parsers: tab/newline/CR must be references to survive.
const escAttr = (s: string) => escText(s).replace(/"/g, '&quot;').replace(/\t/g, '&#9;').replace(/\n/g, '&#10;');

/**
 * The policy as a gen3 Xen ACM document (Xen 3.2–4.1). Throws PolicyError when the policy does not validate,
 * when its version is not MAJOR.MINOR (`bad_version`) or when a name holds a character XML cannot carry.
 * `warnings` lists what Xen cannot express (trust rules) or what will not survive a re-import.
 */
export function writeXenAcm(p: Policy): { xml: string; warnings: string[] } {
  const problems = validatePolicy(p);
  const bad = (code: Diagnostic['code'], message: string, path: ModelPath) =>
    problems.push({ code, message, severity: 'error', path });
  if (!VERSION_RE.test(p.version)) bad(C.badVersion, `Xen needs a MAJOR.MINOR version (digits), not "${p.version}"`, ['version']);
  if (p.from !== undefined && !VERSION_RE.test(p.from.version)) {
    bad(C.badVersion, `Xen needs a MAJOR.MINOR FromPolicy version, not "${p.from.version}"`, ['from', 'version']);
  }
  const strings: Array<[string, ModelPath]> = [
    [p.name, ['name']], [p.meta?.date ?? '', ['meta', 'date']], [p.meta?.url ?? '', ['meta', 'url']],
    [p.from?.name ?? '', ['from', 'name']],
    ...(p.colors ?? []).map((c, i): [string, ModelPath] => [c, ['colors', i]]),
    ...(p.walls ?? []).map((w, i): [string, ModelPath] => [w, ['walls', i]]),
    ...p.conflicts.map((c, i): [string, ModelPath] => [c.name, ['conflicts', i, 'name']]),
    ...p.labels.flatMap((l, i): Array<[string, ModelPath]> => [[l.name, ['labels', i, 'name']], [l.from ?? '', ['labels', i, 'from']]]),
    ...p.resources.flatMap((r, i): Array<[string, ModelPath]> => [[r.name, ['resources', i, 'name']], [r.from ?? '', ['resources', i, 'from']]]),
  ];
  const warnings: string[] = [];
  for (const [s, path] of strings) {
    if (NOT_XML_CHAR.test(s)) bad(C.schema, `"${s}" holds a character that XML cannot carry`, path);
    else if (s !== s.trim()) warnings.push(`"${s}" (${path.join('.')}) has surrounding whitespace, which a re-import trims`);
  }
  if (problems.length > 0) throw new PolicyError(problems);

  const alert = p.labels.filter((l) => l.onUntrusted === 'alert').map((l) => l.name);
  if (alert.length > 0) {
    warnings.push(`Xen has no trust rules: onUntrusted 'alert' of ${alert.map((n) => `"${n}"`).join(', ')} is not exported`);
  }
  if ((p.meta?.primary === 'ste' && p.colors === null) || (p.meta?.primary === 'chwall' && p.walls === null)) {
    warnings.push(`the primary component (${p.meta.primary}) is absent, so no priority is written`);
  }

  const out: string[] = [];
  const ind = (d: number) => '  '.repeat(d);
  const leaf = (d: number, tag: string, text: string, attrs = '') => out.push(`${ind(d)}<${tag}${attrs}>${escText(text)}</${tag}>`);
  const open = (d: number, tag: string, attrs = '') => out.push(`${ind(d)}<${tag}${attrs}>`);
  const close = (d: number, tag: string) => out.push(`${ind(d)}</${tag}>`);
  // Every type list needs at least one Type; `<Type/>` stands for none and reads back as none.
  const types = (d: number, list: readonly string[]) =>
    list.length === 0 ? out.push(`${ind(d)}<Type/>`) : list.forEach((t) => leaf(d, 'Type', t));
  const block = (d: number, tag: string, list: readonly string[]) => {
    open(d, tag);
    types(d + 1, list);
    close(d, tag);
  };
  const named = (d: number, it: { name: string; from?: string }) =>
    leaf(d, 'Name', it.name, it.from === undefined ? '' : ` from="${escAttr(it.from)}"`);
  const primary = (which: 'ste' | 'chwall') => (p.meta?.primary === which ? ` priority="${PRIMARY}"` : '');

  out.push('<?xml version="1.0" encoding="UTF-8"?>');
  open(0, 'SecurityPolicyDefinition', ` xmlns="${IBM_NS}" xmlns:xsi="${XSI_NS}" xsi:schemaLocation="${IBM_NS} security_policy.xsd"`);
  open(1, 'PolicyHeader');
  leaf(2, 'PolicyName', p.name);
  if (p.meta?.url !== undefined) leaf(2, 'PolicyUrl', p.meta.url);
  if (p.meta?.date !== undefined) leaf(2, 'Date', p.meta.date);
  leaf(2, 'Version', p.version);
  if (p.from !== undefined) {
    open(2, 'FromPolicy');
    leaf(3, 'PolicyName', p.from.name);
    leaf(3, 'Version', p.from.version);
    close(2, 'FromPolicy');
  }
  close(1, 'PolicyHeader');
  if (p.colors !== null) {
    open(1, 'SimpleTypeEnforcement', primary('ste'));
    block(2, 'SimpleTypeEnforcementTypes', p.colors);
    close(1, 'SimpleTypeEnforcement');
  }
  if (p.walls !== null) {
    open(1, 'ChineseWall', primary('chwall'));
    block(2, 'ChineseWallTypes', p.walls);
    if (p.conflicts.length > 0) {
      open(2, 'ConflictSets');
      for (const c of p.conflicts) {
        open(3, 'Conflict', ` name="${escAttr(c.name)}"`);
        types(4, c.walls);
        close(3, 'Conflict');
      }
      close(2, 'ConflictSets');
    }
    close(1, 'ChineseWall');
  }
  if (p.labels.length === 0 && p.resources.length === 0) out.push(`${ind(1)}<SecurityLabelTemplate/>`);
  else {
    open(1, 'SecurityLabelTemplate');
    if (p.labels.length > 0) {
      open(2, 'SubjectLabels', ` bootstrap="${escAttr(p.host ?? '')}"`);
      for (const l of p.labels) {
        open(3, 'VirtualMachineLabel');
        named(4, l);
        // One block (acmpolicy.py's schema allows no more); an empty list is simply left out.
        if (l.colors.length > 0) block(4, 'SimpleTypeEnforcementTypes', l.colors);
        if (l.walls.length > 0) block(4, 'ChineseWallTypes', l.walls);
        close(3, 'VirtualMachineLabel');
      }
      close(2, 'SubjectLabels');
    }
    if (p.resources.length > 0) {
      open(2, 'ObjectLabels');
      for (const r of p.resources) {
        open(3, 'ResourceLabel');
        named(4, r);
        block(4, 'SimpleTypeEnforcementTypes', [r.color]);
        close(3, 'ResourceLabel');
      }
      close(2, 'ObjectLabels');
    }
    close(1, 'SecurityLabelTemplate');
  }
  close(0, 'SecurityPolicyDefinition');
  return { xml: out.join('\n') + '\n', warnings };
}
