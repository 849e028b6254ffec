/**
 * The native YAML policy format (DESIGN.md §2): read it into the model, with FILE:LINE:COLUMN for every problem,
 * and write the model back in the same readable layout.
 *
 * Reading is a pipeline of guards, each cheap and each run before the step it protects:
 *   size → nesting depth (lexer only) → YAML parse → duplicate keys and alias expansion (one linear walk of the
 *   tree) → toJS → JSON Schema (policy.schema.json) → model → validatePolicy.
 * Every diagnostic of the schema and semantic steps carries the position of the YAML node it is about.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import {
  CST, Lexer, LineCounter, isAlias, isMap, isPair, isScalar, isSeq, parseDocument,
  type Alias, type Node as YamlNode, type Pair, type YAMLMap,
} from 'yaml';
import schema from './policy.schema.json' with { type: 'json' };
import { PolicyErrorCode as C, type Diagnostic, type PolicyErrorCode, type SourcePosition } from './errors.ts';
import { MAX_POLICY_BYTES, MAX_YAML_ALIASES } from './limits.ts';
import type { ConflictSet, Label, ModelPath, Policy, PolicyMeta, ResourceLabel } from './model.ts';
import type { ReadResult } from './read-result.ts';
import { validatePolicy } from './validate.ts';

export { writePolicyYaml } from './yaml-write.ts';

/*
 * Local bounds. The `yaml` library composes recursively: a few hundred levels of `[[[[` overflow the stack, and
 * near that limit V8 can abort the whole process (a fatal OOM in the regexp compiler, seen here with yaml 2.9).
 * A policy nests four levels deep, so refusing far less than the library survives costs nothing.
 */
/** Open flow collections (`[`, `{`) allowed at once. */
const MAX_FLOW_DEPTH = 64;
/** Columns of block indentation allowed (block nesting needs at least one column per two levels). */
const MAX_INDENT = 128;
/** Nodes that aliases may add to the document when expanded (on top of the library's own alias-count guard). */
const MAX_ALIAS_EXPANSION = 100_000;

const DEFAULT_FILE = '<input>';

// ───────────────────────────── sniffing ─────────────────────────────

/** Cheap format sniff: anything whose first non-space character is not `<` (XML) is taken for YAML. */
export function looksLikeYamlPolicy(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    // space, tab, CR, LF and a byte order mark may precede an XML declaration
    if (ch === 0x20 || ch === 0x09 || ch === 0x0a || ch === 0x0d || ch === 0xfeff) continue;
    return ch !== 0x3c;
  }
  return true;
}

// ───────────────────────────── reading ─────────────────────────────

/** Reads a native YAML policy. Never throws: every problem is a diagnostic, and any error means `policy: null`. */
export function readPolicyYaml(text: string, file: string = DEFAULT_FILE): ReadResult {
  try {
    return read(text, file);
  } catch (e) {
    // A bug or an exhausted resource inside a library: still an answer, not an exception.
    const message = `could not read the policy: ${e instanceof Error ? e.message : String(e)}`;
    return { policy: null, diagnostics: [{ code: C.yamlSyntax, message, severity: 'error', file, position: { line: 1, column: 1 } }] };
  }
}

function read(text: string, file: string): ReadResult {
  const fail = (code: PolicyErrorCode, message: string, position: SourcePosition): ReadResult =>
    ({ policy: null, diagnostics: [{ code, message, severity: 'error', file, position }] });

  if (exceedsMaxBytes(text)) {
    const mib = MAX_POLICY_BYTES / (1024 * 1024);
    return fail(C.tooLarge, `the input is larger than ${mib} MiB, the most a policy may be`, { line: 1, column: 1 });
  }
  const deep = nestingProblem(text);
  if (deep) return fail(C.tooLarge, deep.message, positionAt(text, deep.offset));

  const lines = new LineCounter();
  // uniqueKeys is off on purpose: the library checks each key against every earlier one (quadratic: minutes for
  // 100,000 labels). checkTree() does the same check with a hash map.
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: false, prettyErrors: false });
  const pos = (offset: number): SourcePosition => {
    const { line, col } = lines.linePos(offset);
    return { line, column: col };
  };
  const diags: Diagnostic[] = [];
  const add = (code: PolicyErrorCode, message: string, position: SourcePosition, extra: Partial<Diagnostic> = {}) =>
    diags.push({ code, message, severity: 'error', file, position, ...extra });

  for (const e of doc.errors) {
    const message = e.code === 'MULTIPLE_DOCS' ? 'a policy file holds one YAML document, and this is a second one' : e.message;
    add(e.code === 'DUPLICATE_KEY' ? C.duplicate : C.yamlSyntax, message, pos(e.pos[0]));
  }
  for (const w of doc.warnings) add(C.yamlSyntax, w.message, pos(w.pos[0]), { severity: 'warning' });
  if (doc.errors.length > 0) return done(null, diags);

  const tree = checkTree(doc.contents, (offset) => pos(offset).line);
  for (const t of tree.problems) add(t.code, t.message, pos(t.offset));
  if (tree.problems.length > 0) return done(null, diags);

  let value: unknown;
  try {
    value = doc.toJS({ mapAsMap: true, maxAliasCount: MAX_YAML_ALIASES });
  } catch (e) {
    // checkTree() bounds expansion first; this is the library's own guard, kept as a second line.
    const first = tree.overusedAlias ?? tree.firstAlias;
    add(C.aliasLimit, `aliases expand too far: ${e instanceof Error ? e.message : String(e)}`, pos(first?.range?.[0] ?? 0));
    return done(null, diags);
  }

  const src = new SourceMap(doc.contents, tree.aliasSource, pos);
  // document paths where the schema step found a problem: semantic errors at or under them would repeat it
  const suppress = new Set<string>();
  for (const s of nameKeyProblems(src)) {
    add(C.schema, s.message, s.position);
    suppress.add(JSON.stringify(s.location));
  }
  const plain = toPlain(value);
  for (const s of schemaProblems(plain, src)) {
    add(s.code, s.message, s.position);
    suppress.add(JSON.stringify(s.location));
  }

  const model = buildModel(value);
  if (model !== null) {
    for (const d of validatePolicy(model)) {
      const target = docTarget(d.path ?? [], model);
      const prefixes = [...target.path.keys(), target.path.length].map((n) => JSON.stringify(target.path.slice(0, n)));
      if (prefixes.some((k) => suppress.has(k))) continue;
      diags.push({ ...d, file, position: src.position(target.path, target.key) });
    }
  }
  return done(diags.some((d) => d.severity === 'error') ? null : model, diags);
}

/** Orders diagnostics as they appear in the file. */
function done(policy: Policy | null, diagnostics: Diagnostic[]): ReadResult {
  const line = (d: Diagnostic) => d.position?.line ?? 0;
  const column = (d: Diagnostic) => d.position?.column ?? 0;
  diagnostics.sort((a, b) => line(a) - line(b) || column(a) - column(b));
  return { policy, diagnostics };
}

function exceedsMaxBytes(text: string): boolean {
  // UTF-8 never takes fewer bytes than UTF-16 code units, nor more than three per unit: count only in between.
  if (text.length > MAX_POLICY_BYTES) return true;
  if (text.length * 3 <= MAX_POLICY_BYTES) return false;
  return Buffer.byteLength(text, 'utf8') > MAX_POLICY_BYTES;
}

function positionAt(text: string, offset: number): SourcePosition {
  let line = 1;
  let start = 0;
  for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++;
    start = i + 1;
  }
  return { line, column: offset - start + 1 };
}

/**
 * Finds nesting deeper than the bounds, from the lexer's tokens alone (the lexer is iterative and knows quotes and
 * comments; the composer is the recursive part). Stops at the first offending token, so a deep input fails fast.
 */
function nestingProblem(text: string): { offset: number; message: string } | null {
  let offset = 0;
  let flow = 0;
  let indent = 0;
  let lineStart = true;
  let scalarNext = false;
  for (const lexeme of new Lexer().lex(text)) {
    if (scalarNext) {
      // the token after the scalar marker is scalar text, whatever it looks like
      scalarNext = false;
      lineStart = false;
      offset += lexeme.length;
      continue;
    }
    const type = CST.tokenType(lexeme);
    // control tokens are not source text (the Parser skips them the same way)
    if (type === 'doc-mode' || type === 'flow-error-end') continue;
    if (type === 'scalar') {
      scalarNext = true;
      continue;
    }
    switch (type) {
      case 'newline': lineStart = true; indent = 0; break;
      case 'space': case 'seq-item-ind': case 'explicit-key-ind': case 'map-value-ind':
        if (lineStart) indent += lexeme.length;
        break;
      case 'flow-map-start': case 'flow-seq-start': flow++; lineStart = false; break;
      case 'flow-map-end': case 'flow-seq-end': flow = Math.max(0, flow - 1); lineStart = false; break;
      default: lineStart = false;
    }
    if (flow > MAX_FLOW_DEPTH) return { offset, message: `the input nests more than ${MAX_FLOW_DEPTH} levels of [ ] or { }; a policy needs four` };
    if (indent > MAX_INDENT) return { offset, message: `the input is indented more than ${MAX_INDENT} columns; a policy needs a few` };
    offset += lexeme.length;
  }
  return null;
}

// ───────────────────────────── the YAML tree ─────────────────────────────

interface TreeProblem { code: PolicyErrorCode; message: string; offset: number }

/**
 * One walk of the parsed tree, in the order the library resolves anchors: finds duplicate keys, aliases to no anchor,
 * aliases inside their own anchor (infinite), and aliases that together expand beyond MAX_ALIAS_EXPANSION nodes.
 * Node sizes are memoized, so an alias bomb costs its text length, not its expansion.
 */
function checkTree(root: YamlNode | null, lineOf: (offset: number) => number) {
  const anchors = new Map<string, YamlNode>();
  const aliasSource = new Map<Alias, YamlNode>();
  const size = new Map<YamlNode, number>();
  const open = new Set<YamlNode>();
  const problems: TreeProblem[] = [];
  const aliasUses = new Map<YamlNode, number>();
  // where toJS's own guard (maxAliasCount) is likely to stop: the first alias of an anchor used too often
  let overusedAlias: Alias | undefined;
  let firstAlias: Alias | undefined;
  let expansion = 0;
  let exhausted = false; // past the expansion bound: stop walking
  const offsetOf = (n: YamlNode | null | undefined) => n?.range?.[0] ?? 0;

  const visit = (node: unknown): number => {
    if (exhausted || !node || typeof node !== 'object') return 1;
    if (isAlias(node)) {
      firstAlias ??= node;
      const target = anchors.get(node.source);
      if (!target) {
        problems.push({ code: C.yamlSyntax, message: `alias *${node.source} names no anchor defined before it`, offset: offsetOf(node) });
        return 1;
      }
      if (open.has(target)) {
        problems.push({ code: C.aliasLimit, message: `alias *${node.source} is inside the node it repeats: it would never end`, offset: offsetOf(node) });
        return 1;
      }
      aliasSource.set(node, target);
      const uses = (aliasUses.get(target) ?? 0) + 1;
      aliasUses.set(target, uses);
      if (uses > MAX_YAML_ALIASES) overusedAlias ??= node;
      const n = size.get(target) ?? 1;
      expansion += n;
      if (expansion > MAX_ALIAS_EXPANSION) {
        exhausted = true;
        problems.push({ code: C.aliasLimit, message: `aliases expand to more than ${MAX_ALIAS_EXPANSION} extra nodes (an alias bomb?)`, offset: offsetOf(node) });
      }
      return n;
    }
    const yn = node as YamlNode;
    if (yn.anchor) anchors.set(yn.anchor, yn);
    open.add(yn);
    let n = 1;
    if (isMap(node)) {
      const seen = new Map<unknown, YamlNode | null>();
      for (const pair of node.items) {
        n += visit(pair.key) + visit(pair.value);
        const key = resolveAlias(pair.key as YamlNode | null, aliasSource);
        const id = isScalar(key) ? key.value : key; // the library's rule: equal scalar values, or the same node
        if (seen.has(id)) {
          const first = seen.get(id);
          const line = first ? ` (first on line ${lineOf(offsetOf(first))})` : '';
          problems.push({ code: C.duplicate, message: `key ${describeKey(key)} is given twice in one mapping${line}`, offset: offsetOf(pair.key as YamlNode) });
        } else seen.set(id, pair.key as YamlNode | null);
      }
    } else if (isSeq(node)) {
      for (const item of node.items) n += isPair(item) ? visit(item.key) + visit(item.value) : visit(item);
    }
    open.delete(yn);
    size.set(yn, n);
    return n;
  };
  visit(root);
  return { problems, aliasSource, firstAlias, overusedAlias };
}

function resolveAlias(n: YamlNode | null | undefined, aliasSource: ReadonlyMap<Alias, YamlNode>): YamlNode | null {
  if (!n) return null;
  return isAlias(n) ? aliasSource.get(n) ?? n : n;
}

function describeKey(key: YamlNode | null): string {
  if (!isScalar(key)) return 'collection';
  return typeof key.value === 'string' ? JSON.stringify(key.value) : key.source || String(key.value);
}

/** How a key turns into a property name, as the library's plain-object conversion does it. */
function keyString(k: unknown): string {
  if (typeof k === 'string') return k;
  if (k === null || k === undefined) return '';
  if (typeof k === 'object') return JSON.stringify(k) ?? '';
  return String(k);
}

/**
 * Positions of document paths (property names and list indexes, as in JSON Pointer), through aliases.
 * Indexes each mapping once, so that many diagnostics in a large mapping stay linear.
 */
class SourceMap {
  private readonly index = new Map<YAMLMap, Map<string, Pair>>();
  constructor(
    readonly root: YamlNode | null,
    private readonly aliasSource: ReadonlyMap<Alias, YamlNode>,
    private readonly pos: (offset: number) => SourcePosition,
  ) {}

  /** The node at `path`, or its nearest existing ancestor (`exact: false`), and the key node of its pair. */
  find(path: ReadonlyArray<string>): { node: YamlNode | null; key: YamlNode | null; exact: boolean } {
    let node = resolveAlias(this.root, this.aliasSource);
    let key: YamlNode | null = null;
    for (const seg of path) {
      if (isMap(node)) {
        const pair = this.pairs(node).get(seg);
        if (!pair) return { node, key, exact: false };
        key = pair.key as YamlNode | null;
        node = resolveAlias(pair.value as YamlNode | null, this.aliasSource) ?? key;
      } else if (isSeq(node) && /^\d+$/.test(seg) && Number(seg) < node.items.length) {
        key = null;
        node = resolveAlias(node.items[Number(seg)] as YamlNode, this.aliasSource);
      } else return { node, key, exact: false };
    }
    return { node, key, exact: true };
  }

  /** The position of the value at `path` (of its key with `atKey`), falling back to the nearest ancestor. */
  position(path: ReadonlyArray<string>, atKey = false): SourcePosition {
    const hit = this.find(path);
    // an empty value (`host:` and nothing) has a zero-width range after the colon: its key reads better
    const empty = isScalar(hit.node) && hit.node.range && hit.node.range[0] === hit.node.range[1];
    const n = (hit.exact && atKey) || empty ? hit.key ?? hit.node : hit.node;
    return n?.range ? this.pos(n.range[0]) : { line: 1, column: 1 };
  }

  keyPosition(key: YamlNode | null): SourcePosition {
    return key?.range ? this.pos(key.range[0]) : { line: 1, column: 1 };
  }

  resolve(n: YamlNode | null | undefined): YamlNode | null {
    return resolveAlias(n, this.aliasSource);
  }

  pairs(map: YAMLMap): Map<string, Pair> {
    let m = this.index.get(map);
    if (!m) {
      m = new Map();
      for (const pair of map.items) {
        const k = this.resolve(pair.key as YamlNode | null);
        const name = keyString(isScalar(k) ? k.value : k ? '\u0000collection' : null);
        if (!m.has(name)) m.set(name, pair);
      }
      this.index.set(map, m);
    }
    return m;
  }
}

// ───────────────────────────── JSON Schema ─────────────────────────────

interface SchemaProblem { code: PolicyErrorCode; message: string; position: SourcePosition; location: string[] }

let compiled: ValidateFunction | undefined;
function schemaValidator(): ValidateFunction {
  // compiled once, on first use: ajv compiles to code, which takes milliseconds
  compiled ??= new Ajv({ allErrors: true, verbose: true }).compile(withoutRefs(schema));
  return compiled;
}

/**
 * The schema with every `$ref` replaced by its target. ajv compiles a `$ref` to a separate function and, under
 * allErrors, copies all errors so far each time one returns errors: quadratic in the errors of a large bad file
 * (minutes for 20,000 bad labels). Inlined, the errors are pushed to one array. Leaf definitions are reused as
 * they are, so that errors still point at them by identity (`parentSchema`).
 */
function withoutRefs(root: typeof schema): object {
  const defs = root.definitions as Record<string, unknown>;
  const inlined = new Map<string, unknown>();
  const walk = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(walk);
    if (node === null || typeof node !== 'object') return node;
    const ref = (node as { $ref?: unknown }).$ref;
    if (typeof ref === 'string') {
      const name = ref.replace('#/definitions/', '');
      if (!inlined.has(name)) {
        const def = defs[name];
        const hasRef = JSON.stringify(def).includes('"$ref"');
        inlined.set(name, hasRef ? walk(def) : def);
      }
      return inlined.get(name);
    }
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node)) if (k !== 'definitions') out[k] = walk(v);
    return out;
  };
  return walk(root) as object;
}

/** Label, resource label and conflict set names are mapping keys: a key YAML reads as a number, boolean or null is refused. */
function nameKeyProblems(src: SourceMap): SchemaProblem[] {
  const out: SchemaProblem[] = [];
  for (const [section, what] of [['conflicts', 'conflict set'], ['labels', 'label'], ['resources', 'resource label']] as const) {
    const hit = src.find([section]);
    if (!hit.exact || !isMap(hit.node)) continue;
    for (const pair of hit.node.items) {
      const key = src.resolve(pair.key as YamlNode | null);
      if (isScalar(key) && typeof key.value === 'string') continue;
      const shown = isScalar(key) ? key.source ?? String(key.value) : '';
      const message = isScalar(key)
        ? `${what} name ${shown || '(empty)'} is read by YAML as ${key.value === null ? 'null' : `the ${typeof key.value} ${String(key.value)}`}: quote it ("${shown}")`
        : `${what} name must be a plain name, not a collection`;
      out.push({ code: C.schema, message, position: src.keyPosition(pair.key as YamlNode | null), location: [section, keyString(isScalar(key) ? key.value : key)] });
    }
  }
  return out;
}

/** Every schema violation, with the position of the offending node (of the key, for an unknown key). */
function schemaProblems(plain: unknown, src: SourceMap): SchemaProblem[] {
  const validate = schemaValidator();
  if (validate(plain)) return [];
  const out: SchemaProblem[] = [];
  const errors = validate.errors ?? [];
  // resource labels written with `colors:` (reported once, as resource_color_count, not also as missing `color`)
  const withColors = new Set(errors
    .filter((e) => e.keyword === 'additionalProperties' && e.params.additionalProperty === 'colors')
    .map((e) => e.instancePath));
  for (const e of errors) {
    // names that validatePolicy checks itself (empty, ':') get its codes (empty_name, bad_name, ...) instead
    if (e.keyword === 'propertyNames') continue;
    if ((e.keyword === 'pattern' || e.keyword === 'minLength')
      && (e.parentSchema === schema.definitions.name || e.parentSchema === schema.definitions.type)) continue;
    const p = schemaProblem(e, withColors, plain, src);
    if (p) out.push(p);
  }
  return out;
}

function schemaProblem(e: ErrorObject, withColors: ReadonlySet<string>, plain: unknown, src: SourceMap): SchemaProblem | null {
  const path = e.instancePath.split('/').slice(1).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  const field = fieldName(path, plain);
  const at = (p: string[], key = false) => src.position(p, key);
  const isResource = path.length === 2 && path[0] === 'resources';
  switch (e.keyword) {
    case 'additionalProperties': {
      const prop = String(e.params.additionalProperty);
      if (isResource && prop === 'colors') {
        return { code: C.resourceColors, message: `resource label "${path[1]}" has \`colors\`; a resource label has exactly one color: \`color: NAME\``, position: at([...path, prop], true), location: path };
      }
      const allowed = Object.keys((e.parentSchema as { properties?: object } | undefined)?.properties ?? {});
      const where = field === '' ? 'a policy' : field;
      return { code: C.schema, message: `unknown key "${prop}" in ${where}; known keys: ${allowed.join(', ')}`, position: at([...path, prop], true), location: [...path, prop] };
    }
    case 'required': {
      const prop = String(e.params.missingProperty);
      if (isResource && prop === 'color' && withColors.has(e.instancePath)) return null; // resource_color_count says it
      return { code: C.schema, message: `${field === '' ? 'the policy' : field} has no \`${prop}\``, position: at(path), location: [...path, prop] };
    }
    case 'type': {
      const want = String(e.params.type);
      if (path.length === 3 && path[0] === 'resources' && path[2] === 'color' && Array.isArray(e.data)) {
        return { code: C.resourceColors, message: `resource label "${path[1]}" has a list of ${e.data.length} colors; a resource label has exactly one: \`color: NAME\``, position: at(path), location: path };
      }
      if (path.length === 0) {
        const message = e.data === null
          ? 'the document is empty; a policy starts with `policy: NAME` and `version: "1.0"`'
          : `a policy is a mapping (policy: NAME, version: "1.0", ...), not ${describe(e.data)}`;
        return { code: C.schema, message, position: at(path), location: path };
      }
      let message = `${field} must be ${article(want)}, not ${describe(e.data)}`;
      const node = src.find(path).node;
      if (want === 'string' && (typeof e.data === 'number' || typeof e.data === 'boolean' || e.data === null) && isScalar(node) && node.source) {
        // the classic trap: version: 1.10 is the number 1.1
        const last = path[path.length - 1];
        const hint = /^\d+$/.test(last) && field.endsWith(']') ? `"${node.source}"` : `${last}: "${node.source}"`;
        message = `${field} must be a string, and YAML reads ${node.source} as ${describe(e.data)}: quote it (${hint})`;
      }
      return { code: C.schema, message, position: at(path), location: path };
    }
    case 'enum':
      return { code: C.schema, message: `${field} must be one of ${(e.params.allowedValues as unknown[]).join(', ')}, not ${describe(e.data)}`, position: at(path), location: path };
    case 'minLength':
      return { code: C.schema, message: `${field} must not be empty`, position: at(path), location: path };
    case 'pattern':
      return { code: C.schema, message: `${field} must not contain ':'`, position: at(path), location: path };
    default:
      return { code: C.schema, message: `${field || 'the policy'} ${e.message ?? 'is invalid'}`, position: at(path), location: path };
  }
}

/** `labels."pepsi web".colors[1]`: the field as a user finds it in the file. */
function fieldName(path: ReadonlyArray<string>, plain: unknown): string {
  let out = '';
  let v = plain;
  for (const seg of path) {
    if (Array.isArray(v)) {
      out += `[${seg}]`;
      v = v[Number(seg)];
      continue;
    }
    const simple = /^[\p{L}_][\p{L}\p{N}_-]*$/u.test(seg);
    out += simple ? (out === '' ? seg : `.${seg}`) : out === '' ? JSON.stringify(seg) : `.${JSON.stringify(seg)}`;
    v = v && typeof v === 'object' ? (v as Record<string, unknown>)[seg] : undefined;
  }
  return out;
}

function article(type: string): string {
  return ({ array: 'a list', object: 'a mapping', string: 'a string' } as Record<string, string>)[type] ?? `of type ${type}`;
}

function describe(v: unknown): string {
  if (v === null || v === undefined) return 'null (nothing)';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return JSON.stringify(v);
  return `the ${typeof v} ${String(v)}`;
}

/** The library's Map-based value as plain objects for ajv (own properties only, so `__proto__` is just a key). */
function toPlain(v: unknown, seen = new Map<object, unknown>()): unknown {
  if (v === null || typeof v !== 'object') return v;
  const done = seen.get(v); // aliases share objects: keep them shared, not copied
  if (done !== undefined) return done;
  if (Array.isArray(v)) {
    const arr: unknown[] = [];
    seen.set(v, arr);
    for (const item of v) arr.push(toPlain(item, seen));
    return arr;
  }
  if (v instanceof Map) {
    const obj: Record<string, unknown> = {};
    seen.set(v, obj);
    for (const [k, item] of v) {
      Object.defineProperty(obj, keyString(k), { value: toPlain(item, seen), enumerable: true, writable: true, configurable: true });
    }
    return obj;
  }
  return v; // Uint8Array (!!binary) and the like: the schema refuses them
}

// ───────────────────────────── model ─────────────────────────────

/** A name where one is expected; anything else becomes a name no one uses (the schema has reported it). */
function text(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (v === null || v === undefined) return '';
  return '\u0000invalid';
}

function names(v: unknown): string[] {
  return Array.isArray(v) ? v.map(text) : [];
}

/**
 * The model, built leniently so that validatePolicy can run even beside schema errors: a wrong leaf becomes a
 * neutral value whose semantic errors are then suppressed. Returns null when a container is wrong (then every
 * semantic check would be noise): the root, `colors`, `walls`, `conflicts`, `labels` or `resources`.
 */
function buildModel(v: unknown): Policy | null {
  if (!(v instanceof Map)) return null;
  const list = (k: string): string[] | null | undefined => {
    const x = v.get(k);
    return x === undefined ? null : Array.isArray(x) ? names(x) : undefined;
  };
  const entries = (k: string): Array<[string, unknown]> | undefined => {
    const x = v.get(k);
    if (x === undefined) return [];
    return x instanceof Map ? [...x].map(([key, val]) => [keyString(key), val]) : undefined;
  };
  const colors = list('colors');
  const walls = list('walls');
  const conflictEntries = entries('conflicts');
  const labelEntries = entries('labels');
  const resourceEntries = entries('resources');
  if (colors === undefined || walls === undefined || !conflictEntries || !labelEntries || !resourceEntries) return null;

  const conflicts: ConflictSet[] = conflictEntries.map(([name, w]) => ({ name, walls: names(w) }));
  const labels: Label[] = labelEntries.map(([name, l]) => {
    const m = l instanceof Map ? l : new Map<unknown, unknown>();
    const label: Label = { name, colors: names(m.get('colors')), walls: names(m.get('walls')), onUntrusted: m.get('onUntrusted') === 'alert' ? 'alert' : 'isolate' };
    if (typeof m.get('from') === 'string') label.from = m.get('from') as string;
    return label;
  });
  const resources: ResourceLabel[] = resourceEntries.map(([name, r]) => {
    const m = r instanceof Map ? r : new Map<unknown, unknown>();
    const res: ResourceLabel = { name, color: text(m.get('color')) };
    if (typeof m.get('from') === 'string') res.from = m.get('from') as string;
    return res;
  });
  const host = v.get('host');
  const p: Policy = {
    name: text(v.get('policy')),
    version: text(v.get('version')),
    colors,
    walls,
    conflicts,
    host: host === undefined || host === null ? null : text(host),
    labels,
    resources,
  };
  const from = v.get('from');
  if (from instanceof Map && typeof from.get('policy') === 'string' && typeof from.get('version') === 'string') {
    p.from = { name: from.get('policy') as string, version: from.get('version') as string };
  }
  const xen = v.get('xen');
  if (xen instanceof Map) {
    const meta: PolicyMeta = {};
    if (typeof xen.get('date') === 'string') meta.date = xen.get('date') as string;
    if (typeof xen.get('url') === 'string') meta.url = xen.get('url') as string;
    const primary = xen.get('primary');
    if (primary === 'ste' || primary === 'chwall') meta.primary = primary;
    p.meta = meta;
  }
  return p;
}

/** Where a model path lives in the document: the document path, and whether the diagnostic points at the key. */
function docTarget(mp: ModelPath, p: Policy): { path: string[]; key: boolean } {
  const [head, i, field, j] = mp;
  switch (head) {
    case 'name':
      return { path: ['policy'], key: false };
    case 'from':
      return { path: i === undefined ? ['from'] : ['from', i === 'name' ? 'policy' : String(i)], key: false };
    case 'meta':
      return { path: ['xen', ...mp.slice(1).map(String)], key: false };
    case 'labels': case 'resources': case 'conflicts': {
      const item = typeof i === 'number' ? p[head][i] : undefined;
      if (!item) return { path: [head], key: false };
      const base = [head, item.name];
      if (field === undefined || field === 'name') return { path: base, key: true };
      // a conflict set's walls are the value itself: conflicts: { NAME: [w, ...] }
      const rest = head === 'conflicts' && field === 'walls' ? [] : [String(field)];
      return { path: [...base, ...rest, ...(j === undefined ? [] : [String(j)])], key: false };
    }
    default:
      return { path: mp.map(String), key: false };
  }
}
