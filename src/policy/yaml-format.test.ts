import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { formatDiagnostic, PolicyErrorCode as C, type Diagnostic } from './errors.ts';
import { MAX_YAML_ALIASES } from './limits.ts';
import type { ConflictSet, Label, Policy, ResourceLabel } from './model.ts';
import type { ReadResult } from './read-result.ts';
import { validatePolicy } from './validate.ts';
import { looksLikeYamlPolicy, readPolicyYaml, writePolicyYaml } from './yaml-format.ts';

const example = (name: string) => readFileSync(new URL(`../../examples/${name}`, import.meta.url), 'utf8');
const at = (d: Diagnostic) => `${d.position?.line}:${d.position?.column}`;
const errorsOf = (r: ReadResult) => r.diagnostics.filter((d) => d.severity === 'error');

/** The input loads nothing and has exactly one error, of `code`, at `where` (LINE:COLUMN). */
function refuses(text: string, code: string, where: string): Diagnostic {
  const r = readPolicyYaml(text, 'bad.yaml');
  assert.equal(r.policy, null, 'nothing loads');
  const errors = errorsOf(r);
  assert.deepEqual(errors.map((d) => `${d.code} ${at(d)}`), [`${code} ${where}`], errors.map(formatDiagnostic).join('\n'));
  assert.equal(errors[0].file, 'bad.yaml');
  return errors[0];
}

const label = (name: string, colors: string[], walls: string[] = [], onUntrusted: Label['onUntrusted'] = 'isolate'): Label =>
  ({ name, colors, walls, onUntrusted });

describe('examples', () => {
  it('acme.yaml loads as the DESIGN.md sample', () => {
    const r = readPolicyYaml(example('acme.yaml'), 'examples/acme.yaml');
    assert.deepEqual(r.diagnostics, []);
    const expected: Policy = {
      name: 'acme-datacenter',
      version: '1.4',
      colors: ['pepsi', 'coke', 'infra'],
      walls: ['pepsi-w', 'coke-w'],
      conflicts: [{ name: 'soft-drinks', walls: ['pepsi-w', 'coke-w'] }],
      host: 'infra-host',
      labels: [
        label('infra-host', ['pepsi', 'coke', 'infra']),
        label('pepsi-web', ['pepsi'], ['pepsi-w']),
        label('coke-db', ['coke'], ['coke-w']),
        label('vio', ['pepsi', 'coke'], [], 'alert'),
        label('__UNLABELED__', ['infra']),
      ],
      resources: [
        { name: 'pepsi-disk', color: 'pepsi' },
        { name: 'coke-disk', color: 'coke' },
        { name: 'infra-net', color: 'infra' },
      ],
    };
    assert.deepEqual(r.policy, expected);
    // the writer's layout: the sample's, without comments and defaults
    assert.equal(writePolicyYaml(expected), [
      'policy: acme-datacenter',
      'version: "1.4"',
      'colors: [pepsi, coke, infra]',
      'walls: [pepsi-w, coke-w]',
      'conflicts:',
      '  soft-drinks: [pepsi-w, coke-w]',
      'host: infra-host',
      'labels:',
      '  infra-host:    { colors: [pepsi, coke, infra] }',
      '  pepsi-web:     { colors: [pepsi], walls: [pepsi-w] }',
      '  coke-db:       { colors: [coke], walls: [coke-w] }',
      '  vio:           { colors: [pepsi, coke], onUntrusted: alert }',
      '  __UNLABELED__: { colors: [infra] }',
      'resources:',
      '  pepsi-disk: { color: pepsi }',
      '  coke-disk:  { color: coke }',
      '  infra-net:  { color: infra }',
      '',
    ].join('\n'));
  });

  it('lab.yaml loads as the small demo', () => {
    const r = readPolicyYaml(example('lab.yaml'), 'examples/lab.yaml');
    assert.deepEqual(r.diagnostics, []);
    const expected: Policy = {
      name: 'lab',
      version: '1.0',
      colors: ['blue', 'red', 'green'],
      walls: ['blue-w', 'red-w'],
      conflicts: [{ name: 'red-blue', walls: ['red-w', 'blue-w'] }],
      host: 'lab-host',
      labels: [
        label('lab-host', ['blue', 'red', 'green']),
        label('blue', ['blue'], ['blue-w']),
        label('red', ['red'], ['red-w']),
        label('green', ['green'], [], 'alert'),
      ],
      resources: [
        { name: 'blue-net', color: 'blue' },
        { name: 'red-net', color: 'red' },
        { name: 'green-net', color: 'green' },
      ],
    };
    assert.deepEqual(r.policy, expected);
    assert.deepEqual(readPolicyYaml(writePolicyYaml(expected)).policy, expected);
  });
});

describe('reading', () => {
  it('keeps from, renames and the xen block; absent components are null, empty ones []', () => {
    const text = [
      'policy: acme',
      'version: "1.10"',
      'from: { policy: acme, version: "1.9" }',
      'walls: []',
      'host: h',
      'labels:',
      '  h: {}',
      '  "42": { from: old-42 }',
      'xen: { date: "2008-01-02", url: "http://example.org/acme", primary: chwall }',
    ].join('\n');
    const r = readPolicyYaml(text);
    assert.deepEqual(r.diagnostics, []);
    assert.deepEqual(r.policy, {
      name: 'acme', version: '1.10', colors: null, walls: [], conflicts: [], host: 'h',
      labels: [label('h', []), { ...label('42', []), from: 'old-42' }],
      resources: [],
      from: { name: 'acme', version: '1.9' },
      meta: { date: '2008-01-02', url: 'http://example.org/acme', primary: 'chwall' },
    } satisfies Policy);
  });

  it('accepts any YAML spelling of the same policy (block style, comments, an alias)', () => {
    const text = [
      '# comment',
      'policy: p',
      'version: \'2\'',
      'colors: &all',
      '  - a',
      '  - b',
      'host: h',
      'labels:',
      '  h:',
      '    colors: *all',
    ].join('\n');
    const r = readPolicyYaml(text);
    assert.deepEqual(r.diagnostics, []);
    assert.deepEqual(r.policy?.labels, [label('h', ['a', 'b'])]);
  });

  it('refuses a YAML syntax error', () => {
    const d = refuses('policy: acme\nversion: "1.0"\nhost: x\nlabels:\n  x: {}\n bad: 1\n', C.yamlSyntax, '6:1');
    assert.match(d.message, /column/);
  });

  it('refuses a duplicate label (at the second key, naming the first)', () => {
    const d = refuses('policy: acme\nversion: "1.0"\nhost: x\nlabels:\n  x: {}\n  y: {}\n  x: {}\n', C.duplicate, '7:3');
    assert.match(d.message, /"x".*line 5/);
  });

  it('refuses an unknown top-level key (at the key)', () => {
    const d = refuses('policy: acme\nversion: "1.0"\ncolours: [red]\nhost: x\nlabels:\n  x: {}\n', C.schema, '3:1');
    assert.match(d.message, /unknown key "colours"/);
  });

  it('refuses an unknown key in a label, naming the label', () => {
    const d = refuses('policy: acme\nversion: "1.0"\nhost: x\nlabels:\n  x: { onUntrused: alert }\n', C.schema, '5:8');
    assert.match(d.message, /"onUntrused" in labels\.x/);
  });

  it('refuses a label with an unknown color (at the list item)', () => {
    const d = refuses('policy: acme\nversion: "1.0"\ncolors: [pepsi]\nhost: x\nlabels:\n  x: { colors: [pepsi, fanta] }\n', C.unknownColor, '6:24');
    assert.match(d.message, /"fanta"/);
  });

  it('refuses a label holding two types of one conflict set (at the second type)', () => {
    const text = [
      'policy: acme',
      'version: "1.0"',
      'walls: [pepsi-w, coke-w]',
      'conflicts:',
      '  soft-drinks: [pepsi-w, coke-w]',
      'host: x',
      'labels:',
      '  x: {}',
      '  both: { walls: [pepsi-w, coke-w] }',
    ].join('\n');
    const d = refuses(text, C.labelConflict, '9:28');
    assert.match(d.message, /soft-drinks/);
  });

  it('refuses a policy without a bootstrap label (at the nearest node: the document)', () => {
    refuses('policy: acme\nversion: "1.0"\ncolors: [red]\nlabels:\n  x: { colors: [red] }\n', C.missingBootstrap, '1:1');
  });

  it('refuses a bootstrap label that names no label (at its value)', () => {
    const d = refuses('policy: acme\nversion: "1.0"\nhost: nobody\nlabels:\n  x: {}\n', C.missingBootstrap, '3:7');
    assert.match(d.message, /"nobody"/);
  });

  it("refuses ':' in a label name (at the key) and in the policy name (at the value)", () => {
    refuses('policy: acme\nversion: "1.0"\nhost: x\nlabels:\n  x: {}\n  a:b: {}\n', C.badName, '6:3');
    refuses('policy: acme:dc\nversion: "1.0"\nhost: x\nlabels:\n  x: {}\n', C.badName, '1:9');
  });

  it('refuses a resource label with a list of colors, or with `colors`', () => {
    const head = 'policy: acme\nversion: "1.0"\ncolors: [a, b]\nhost: x\nlabels:\n  x: {}\nresources:\n';
    refuses(`${head}  disk: { color: [a, b] }\n`, C.resourceColors, '8:18');
    refuses(`${head}  disk: { colors: [a] }\n`, C.resourceColors, '8:11');
  });

  it('refuses a numeric version, saying to quote it', () => {
    const d = refuses('policy: acme\nversion: 1.10\nhost: x\nlabels:\n  x: {}\n', C.schema, '2:10');
    assert.match(d.message, /quote it \(version: "1\.10"\)/);
    assert.match(d.message, /1\.1\b/);
  });

  it('refuses a label name that YAML reads as a number, saying to quote it', () => {
    const d = refuses('policy: acme\nversion: "1"\nhost: x\nlabels:\n  x: {}\n  1.10: {}\n', C.schema, '6:3');
    assert.match(d.message, /quote it \("1\.10"\)/);
  });

  it('refuses a missing version, and an empty file, with a schema violation', () => {
    const d = refuses('policy: acme\nhost: x\nlabels:\n  x: {}\n', C.schema, '1:1');
    assert.match(d.message, /version/);
    refuses('', C.schema, '1:1');
    refuses('# only a comment\n', C.schema, '1:1');
    refuses('- a list\n', C.schema, '1:1');
  });

  it('refuses a multi-document stream', () => {
    refuses('policy: a\nversion: "1"\n---\npolicy: b\nversion: "1"\n', C.yamlSyntax, '3:1');
  });

  it('reports an alias to no anchor, and an alias inside its own anchor', () => {
    refuses('policy: *name\nversion: "1"\n', C.yamlSyntax, '1:9');
    refuses('policy: p\nversion: "1"\ncolors: &c [a, *c]\n', C.aliasLimit, '3:16');
  });

  it('stops a billion-laughs alias bomb fast and in bounded memory', () => {
    const lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
    for (let i = 1; i < 10; i++) {
      const [name, prev] = ['abcdefghij'[i], 'abcdefghij'[i - 1]];
      lines.push(`${name}: &${name} [${Array(9).fill(`*${prev}`).join(',')}]`);
    }
    const heap = process.memoryUsage().heapUsed;
    const t0 = performance.now();
    const d = refuses(lines.join('\n'), C.aliasLimit, '6:8'); // 9^10 nodes if expanded
    assert.ok(performance.now() - t0 < 1000, 'fast');
    assert.ok(process.memoryUsage().heapUsed - heap < 64 * 1024 * 1024, 'bounded memory');
    assert.match(d.message, /alias/);
  });

  it("applies the yaml library's alias guard (maxAliasCount) when converting", () => {
    const lines = ['policy: p', 'version: "1"', 'colors: [a]', 'host: h', 'labels:', '  h: { colors: &c [a] }'];
    for (let i = 0; i <= MAX_YAML_ALIASES; i++) lines.push(`  l${i}: { colors: *c }`);
    refuses(lines.join('\n'), C.aliasLimit, `${7 + MAX_YAML_ALIASES}:19`);
  });

  it('refuses a 50 MB input fast, before parsing', () => {
    const text = 'policy: p\n' + '#'.repeat(50 * 1024 * 1024);
    const t0 = performance.now();
    refuses(text, C.tooLarge, '1:1');
    assert.ok(performance.now() - t0 < 200, `fast: ${performance.now() - t0} ms`);
  });

  it('refuses deep nesting fast, before the recursive composer sees it', () => {
    const t0 = performance.now();
    refuses('policy: ' + '['.repeat(1_000_000), C.tooLarge, '1:73');
    refuses(Array.from({ length: 5000 }, (_, i) => `${' '.repeat(i)}a:`).join('\n'), C.tooLarge, '130:1');
    refuses('- '.repeat(100_000) + 'x', C.tooLarge, '1:129');
    assert.ok(performance.now() - t0 < 1000, 'fast');
  });

  it('reports every error of a file in one pass, schema and semantic, in file order', () => {
    const text = [
      'policy: acme',                          // 1
      'version: 1.4',                          // 2  numeric version
      'colors: [pepsi, coke]',                 // 3
      'walls: [pepsi-w, coke-w]',              // 4
      'conflicts:',                            // 5
      '  soft-drinks: [pepsi-w, coke-w]',      // 6
      'host: infra',                           // 7  names no label
      'labels:',                               // 8
      '  web: { colors: [pepsi, fanta] }',     // 9  unknown color
      '  both: { walls: [pepsi-w, coke-w] }',  // 10 two types of one conflict set
      '  odd: { colours: [coke] }',            // 11 unknown key
      'resources:',                            // 12
      '  disk: { color: sprite }',             // 13 unknown color
    ].join('\n');
    const r = readPolicyYaml(text, 'multi.yaml');
    assert.equal(r.policy, null);
    assert.deepEqual(r.diagnostics.map((d) => `${at(d)} ${d.code}`), [
      '2:10 schema_violation',
      '7:7 missing_bootstrap',
      '9:26 unknown_color',
      '10:28 label_in_conflict',
      '11:10 schema_violation',
      '13:18 unknown_color',
    ]);
    assert.ok(r.diagnostics.every((d) => d.file === 'multi.yaml' && d.severity === 'error'));
  });

  it('does not repeat a schema error as a semantic one', () => {
    // `host: 42` is a schema error; the model's missing host must not be reported again
    refuses('policy: p\nversion: "1"\nhost: 42\nlabels:\n  x: {}\n', C.schema, '3:7');
    // an empty label name: validatePolicy's empty_name, not also the schema's minLength
    refuses('policy: p\nversion: "1"\nhost: x\nlabels:\n  x: {}\n  "": {}\n', C.emptyName, '6:3');
  });

  it('formats diagnostics as FILE:LINE:COLUMN: code: message', () => {
    const r = readPolicyYaml('policy: acme\nversion: "1.0"\nhost: nobody\nlabels:\n  x: {}\n', 'pol/acme.yaml');
    assert.equal(formatDiagnostic(r.diagnostics[0]),
      'pol/acme.yaml:3:7: missing_bootstrap: the bootstrap label "nobody" is not a label of the policy');
    assert.match(formatDiagnostic(readPolicyYaml('policy: a\n').diagnostics[0]), /^<input>:1:1: schema_violation: /);
  });

  it('sniffs XML apart from YAML', () => {
    assert.equal(looksLikeYamlPolicy('policy: a\n'), true);
    assert.equal(looksLikeYamlPolicy('  \n\ufeff<?xml version="1.0"?>'), false);
    assert.equal(looksLikeYamlPolicy('<SecurityPolicyDefinition/>'), false);
    assert.equal(looksLikeYamlPolicy(''), true);
  });
});

describe('writing', () => {
  it('quotes what YAML would misread, and leaves out defaults and absent components', () => {
    const p: Policy = {
      name: 'a b', version: '1.0', colors: ['true', '123', '#x', 'ünï', 'null', '- x', 'x: y'], walls: null,
      conflicts: [], host: 'h', labels: [label('h', ['true', '123']), label('e', [], [], 'alert')], resources: [],
    };
    const text = writePolicyYaml(p);
    assert.equal(text, [
      'policy: "a b"',
      'version: "1.0"',
      'colors: ["true", "123", "#x", ünï, "null", "- x", "x: y"]',
      'host: h',
      'labels:',
      '  h: { colors: ["true", "123"] }',
      '  e: { onUntrusted: alert }',
      '',
    ].join('\n'));
    assert.deepEqual(readPolicyYaml(text).policy, p);
  });

  it("writes Xen's NULL policy (no component, no label, no host) as just a name and a version", () => {
    const p: Policy = { name: 'null-policy', version: '1.0', colors: null, walls: null, conflicts: [], host: null, labels: [], resources: [] };
    assert.equal(writePolicyYaml(p), 'policy: null-policy\nversion: "1.0"\n');
    assert.deepEqual(readPolicyYaml(writePolicyYaml(p)), { policy: p, diagnostics: [] });
  });

  it('writes names longer than YAML allows for an implicit key', () => {
    const long = 'x'.repeat(2000);
    const p: Policy = { name: 'p', version: '1', colors: [], walls: null, conflicts: [], host: long, labels: [label(long, [])], resources: [] };
    assert.deepEqual(readPolicyYaml(writePolicyYaml(p)).policy, p);
  });
});

// ───────────── properties ─────────────

/** Characters that YAML treats specially somewhere, plus unicode. */
const nameChar = fc.constantFrom(
  'a', 'b', 'Z', '0', '7', ' ', '#', '-', '_', '.', '"', "'", '\\', '[', ']', '{', '}', ',', '&', '*', '!', '|',
  '>', '%', '@', '`', '?', '=', '~', '/', 'é', 'ß', '日', '😀', '\t', '\n', '\r', '\u0000', '\u0085', '\u2028', '\ufeff',
);
const specialName = fc.constantFrom(
  'true', 'False', 'null', '~', 'yes', 'No', 'on', 'y', '123', '007', '1.10', '0x1F', '1e3', '.inf', '-.5', '-', '- x',
  '#x', 'a b', ' lead', 'trail ', 'ünïcødé', '日本', '__UNLABELED__', '<<', '=', '@x', '---', '...', '\ud800', 'a #b',
);
/** A color, wall type or conflict set name: anything but empty. */
const typeName = fc.oneof(
  specialName,
  fc.string({ unit: nameChar, minLength: 1, maxLength: 6 }),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 4 }),
  fc.constantFrom('x:y', ':'),
);
/** A policy, label or resource label name: not empty, no ':'. */
const labelName = typeName.filter((s) => !s.includes(':'));

const pick = <T>(xs: ReadonlyArray<T>, idx: ReadonlyArray<number>): T[] =>
  xs.length === 0 ? [] : [...new Set(idx.map((i) => i % xs.length))].map((i) => xs[i]);

/** Valid policies: every name used is declared, no label holds two types of one set, the host is a label. */
const validPolicy = fc.record({
  name: labelName,
  version: fc.oneof(fc.constantFrom('1.0', '1.10', '2'), typeName),
  colors: fc.option(fc.uniqueArray(typeName, { maxLength: 5 }), { nil: null }),
  walls: fc.option(fc.uniqueArray(typeName, { maxLength: 5 }), { nil: null }),
  conflicts: fc.uniqueArray(fc.record({ name: typeName, walls: fc.array(fc.nat(), { maxLength: 4 }) }), { maxLength: 3, selector: (c) => c.name }),
  labels: fc.uniqueArray(fc.record({
    name: labelName,
    colors: fc.array(fc.nat(), { maxLength: 3 }),
    walls: fc.array(fc.nat(), { maxLength: 3 }),
    alert: fc.boolean(),
    from: fc.option(labelName, { nil: undefined }),
  }), { minLength: 1, maxLength: 6, selector: (l) => l.name }),
  host: fc.nat(),
  resources: fc.uniqueArray(fc.record({ name: labelName, color: fc.nat(), from: fc.option(labelName, { nil: undefined }) }), { maxLength: 3, selector: (r) => r.name }),
  from: fc.option(fc.record({ name: labelName, version: typeName }), { nil: undefined }),
  meta: fc.option(fc.record({ date: typeName, url: typeName, primary: fc.constantFrom('ste' as const, 'chwall' as const) }, { requiredKeys: [] }), { nil: undefined }),
}).map((g): Policy => {
  const walls = g.walls ?? [];
  const conflicts: ConflictSet[] = g.walls === null ? [] : g.conflicts.map((c) => ({ name: c.name, walls: pick(walls, c.walls) }));
  const froms = new Set<string>();
  const labels = g.labels.map((l): Label => {
    const taken = new Set<number>(); // conflict sets this label already holds a type of
    const lw = pick(walls, l.walls).filter((w) => {
      const sets = conflicts.flatMap((c, i) => (c.walls.includes(w) ? [i] : []));
      if (sets.some((i) => taken.has(i))) return false;
      sets.forEach((i) => taken.add(i));
      return true;
    });
    const out: Label = { name: l.name, colors: pick(g.colors ?? [], l.colors), walls: lw, onUntrusted: l.alert ? 'alert' : 'isolate' };
    if (l.from !== undefined && !froms.has(l.from)) {
      froms.add(l.from);
      out.from = l.from;
    }
    return out;
  });
  const resFroms = new Set<string>();
  const resources = (g.colors ?? []).length === 0 ? [] : g.resources.map((r): ResourceLabel => {
    const out: ResourceLabel = { name: r.name, color: pick(g.colors ?? [], [r.color])[0] };
    if (r.from !== undefined && !resFroms.has(r.from)) {
      resFroms.add(r.from);
      out.from = r.from;
    }
    return out;
  });
  const p: Policy = {
    name: g.name, version: g.version, colors: g.colors, walls: g.walls, conflicts,
    host: labels[g.host % labels.length].name, labels, resources,
  };
  // fast-check may build records without a prototype: copy them into plain objects, as the reader makes
  if (g.from) p.from = { ...g.from };
  if (g.meta) p.meta = { ...g.meta };
  return p;
});

describe('properties', () => {
  it('read(write(p)) deep-equals p for valid policies', () => {
    fc.assert(fc.property(validPolicy, (p) => {
      assert.deepEqual(validatePolicy(p), [], 'the generator makes valid policies');
      const text = writePolicyYaml(p);
      const r = readPolicyYaml(text);
      assert.deepEqual(r.diagnostics, [], text);
      assert.deepEqual(r.policy, p);
    }), { numRuns: 200 });
  });

  it('readPolicyYaml never throws, and every diagnostic has a file and a position', () => {
    const fragment = fc.constantFrom(
      'policy: ', 'version: ', 'labels:', 'colors: ', 'walls: ', 'conflicts:', 'host: ', 'resources:', 'from: ', 'xen: ',
      '\n', '\n  ', '  ', '- ', '[', ']', '{', '}', ', ', ': ', '"', "'", '#', '&a ', '*a', '&b ', '*b', '!!str ', '!x ',
      '? ', '|', '>', '---\n', '...', 'a', '1.10', 'null', 'true', '\t', '%YAML 1.2\n', '<<: ', '@', '`', '__proto__',
    );
    const input = fc.oneof(fc.string({ unit: 'binary', maxLength: 200 }), fc.array(fragment, { maxLength: 60 }).map((a) => a.join('')));
    fc.assert(fc.property(input, (text) => {
      const r = readPolicyYaml(text, 'x.yaml');
      for (const d of r.diagnostics) {
        assert.equal(d.file, 'x.yaml');
        assert.ok(d.position && d.position.line >= 1 && d.position.column >= 1, formatDiagnostic(d));
      }
      if (errorsOf(r).length > 0) assert.equal(r.policy, null);
      else assert.notEqual(r.policy, null);
    }), { numRuns: 500 });
  });
});
