/**
 * Xen ACM import/export against the real Xen policies in ../shared/data/xen-acm/.
 *
 * Expectations are computed from the files' raw text with plain regexes below, written independently of the
 * parser under test; never copied from its output.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { isPolicyError, type Diagnostic } from './errors.ts';
import type { Policy } from './model.ts';
import { isXenAcm, readXenAcm, writeXenAcm } from './xen-acm.ts';

const here = dirname(fileURLToPath(import.meta.url));
const DATA = join(here, '../../../shared/data/xen-acm');
const GEN3_XSD = join(DATA, 'gen3_xen-3.2_to_4.1/security_policy.xsd');
const STRICT_XSD = join(DATA, 'gen3_xen-3.2_to_4.1/ACM_SCHEMA-embedded-in-acmpolicy.py.xsd');

const walk = (d: string): string[] =>
  readdirSync(d).flatMap((n) => (statSync(join(d, n)).isDirectory() ? walk(join(d, n)) : [join(d, n)]));
const TEMPLATE_SUFFIX = '-security_label_template.xml';
/** Every policy file, with its gen1 label template sibling where there is one. */
const FILES = walk(DATA)
  .filter((f) => f.endsWith('.xml') && !f.endsWith(TEMPLATE_SUFFIX))
  .sort()
  .map((f) => {
    const tpl = f.replace(/-security_policy\.xml$/, TEMPLATE_SUFFIX);
    return { file: f, rel: relative(DATA, f), tpl: tpl !== f && existsSync(tpl) ? tpl : undefined };
  });

function read(f: { file: string; tpl?: string }) {
  const opts = f.tpl ? { labelTemplate: { text: readFileSync(f.tpl, 'utf8'), file: f.tpl } } : undefined;
  return readXenAcm(readFileSync(f.file, 'utf8'), f.file, opts);
}
const errors = (ds: Diagnostic[]) => ds.filter((d) => d.severity === 'error');

// ---- an independent reading of the raw XML --------------------------------------------------------------------

const stripComments = (x: string) => x.replace(/<!--[\s\S]*?-->/g, '');
const typesIn = (s: string) => [...s.matchAll(/<Type>([^<]*)<\/Type>/g)].map((m) => m[1].trim()).filter((t) => t !== '');
const blocks = (s: string, tag: string) =>
  [...s.matchAll(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, 'g'))].flatMap((m) => typesIn(m[1]));
const nameOf = (s: string) => {
  const m = /<Name(?:\s+from="([^"]*)")?\s*>([^<]*)<\/Name>/.exec(s)!;
  return m[1] === undefined ? { name: m[2].trim() } : { name: m[2].trim(), from: m[1] };
};

function expectedFrom(raw: string, tplRaw?: string) {
  const x = stripComments(raw);
  const header = /<PolicyHeader>([\s\S]*?)<\/PolicyHeader>/.exec(x)![1];
  const name = (/<PolicyName>([^<]*)<\/PolicyName>/.exec(header) ?? /<Name>([^<]*)<\/Name>/.exec(header))![1].trim();
  const version = /<Version>([^<]*)<\/Version>/.exec(header)?.[1].trim();
  const fromM = /<FromPolicy>\s*<PolicyName>([^<]*)<\/PolicyName>\s*<Version>([^<]*)<\/Version>/.exec(header);
  const date = /<Date>([^<]*)<\/Date>/.exec(header)?.[1].trim();
  const ste = /<SimpleTypeEnforcement(?:\s[^>]*)?>([\s\S]*?)<\/SimpleTypeEnforcement>/.exec(x);
  const cw = /<ChineseWall(?:\s[^>]*)?>([\s\S]*?)<\/ChineseWall>/.exec(x);
  const seen = new Map<string, number>();
  const conflicts = cw
    ? [...cw[1].matchAll(/<Conflict(?:\s+name="([^"]*)")?\s*>([\s\S]*?)<\/Conflict>/g)].map((m, i) => {
      const n = m[1]?.trim() || `conflict-${i + 1}`;
      const k = (seen.get(n) ?? 0) + 1;
      seen.set(n, k);
      return { name: k === 1 ? n : `${n}#${k}`, walls: typesIn(m[2]) };
    })
    : [];
  const lx = tplRaw === undefined ? x : stripComments(tplRaw);
  return {
    name,
    version: version ?? '0.0',
    ...(fromM ? { from: { name: fromM[1].trim(), version: fromM[2].trim() } } : {}),
    date,
    colors: ste ? blocks(ste[1], 'SimpleTypeEnforcementTypes') : null,
    walls: cw ? blocks(cw[1], 'ChineseWallTypes') : null,
    conflicts,
    host: /<SubjectLabels\s+bootstrap="([^"]*)"/.exec(lx)?.[1] ?? null,
    labels: [...lx.matchAll(/<VirtualMachineLabel>([\s\S]*?)<\/VirtualMachineLabel>/g)].map((m) => ({
      ...nameOf(m[1]),
      colors: blocks(m[1], 'SimpleTypeEnforcementTypes'),
      walls: blocks(m[1], 'ChineseWallTypes'),
    })),
    resources: [...lx.matchAll(/<ResourceLabel>([\s\S]*?)<\/ResourceLabel>/g)].map((m) => {
      const colors = blocks(m[1], 'SimpleTypeEnforcementTypes');
      assert.equal(colors.length, 1);
      return { ...nameOf(m[1]), color: colors[0] };
    }),
  };
}

// ---- the real files ---------------------------------------------------------------------------------------------

test('the data set holds every generation, gen1 with templates', () => {
  assert.ok(FILES.length >= 20, `found ${FILES.length} policy files`);
  assert.equal(FILES.filter((f) => f.tpl).length, 4);
});

for (const f of FILES) {
  test(`imports ${f.rel}`, () => {
    const raw = readFileSync(f.file, 'utf8');
    assert.ok(isXenAcm(raw));
    const r = read(f);
    assert.deepEqual(errors(r.diagnostics), []);
    const p = r.policy!;
    assert.ok(p);
    const e = expectedFrom(raw, f.tpl && readFileSync(f.tpl, 'utf8'));
    assert.equal(p.name, e.name);
    assert.equal(p.version, e.version);
    assert.deepEqual(p.from, e.from);
    assert.equal(p.meta?.date, e.date);
    assert.deepEqual(p.colors, e.colors);
    assert.deepEqual(p.walls, e.walls);
    assert.deepEqual(p.conflicts, e.conflicts);
    assert.equal(p.host, e.host);
    assert.deepEqual(p.labels, e.labels.map((l) => ({ ...l, onUntrusted: 'isolate' })));
    assert.deepEqual(p.resources, e.resources);
    for (const d of r.diagnostics) {
      assert.ok(d.position && d.file, `diagnostic without a place: ${d.message}`);
    }
  });
}

const xmllint = spawnSync('xmllint', ['--version']).error === undefined;

for (const f of FILES) {
  test(`exports ${f.rel} as gen3: schema-valid, and it re-imports the same`, (t) => {
    const first = read(f).policy!;
    const { xml, warnings } = writeXenAcm(first);
    assert.deepEqual(warnings, []);
    const again = readXenAcm(xml, 'export.xml');
    assert.deepEqual(again.diagnostics, []);
    assert.deepEqual(again.policy, first);
    if (!xmllint) return t.skip('xmllint not installed: apt-get install libxml2-utils');
    assertSchemaValid(xml);
  });
}

test('the strict schema really is stricter: it refuses two STE blocks in one VM label', (t) => {
  if (!xmllint) return t.skip('xmllint not installed: apt-get install libxml2-utils');
  const two = writeXenAcm(readXenAcm(BASE).policy!).xml.replace(
    /(<Name>red<\/Name>\s*)(<SimpleTypeEnforcementTypes>[\s\S]*?<\/SimpleTypeEnforcementTypes>)/, '$1$2$2');
  assert.throws(() => assertSchemaValid(two), /ACM_SCHEMA/);
});

function assertSchemaValid(xml: string) {
  const dir = mkdtempSync(join(tmpdir(), 'xen-acm-'));
  try {
    const out = join(dir, 'export-security_policy.xml');
    writeFileSync(out, xml);
    for (const xsd of [GEN3_XSD, STRICT_XSD]) {
      const r = spawnSync('xmllint', ['--noout', '--nonet', '--schema', xsd, out], { encoding: 'utf8' });
      assert.equal(r.status, 0, `${basename(xsd)}: ${r.stderr}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('FromPolicy and from= renames are read', () => {
  for (const n of ['gen3_xen-3.2_to_4.1/xm-test-update-security_policy.xml',
    'gen3_xen-3.2_to_4.1/xm-test-new-security_policy.xml',
    'reconstructed_from_user_manual/mytest_update-security_policy.xml']) {
    const raw = readFileSync(join(DATA, n), 'utf8');
    const p = readXenAcm(raw, n).policy!;
    const m = /<FromPolicy>\s*<PolicyName>([^<]*)<\/PolicyName>\s*<Version>([^<]*)<\/Version>/.exec(raw)!;
    assert.deepEqual(p.from, { name: m[1], version: m[2] }, n);
    const renames = [...raw.matchAll(/<Name from="([^"]*)">([^<]*)<\/Name>/g)].map((x) => `${x[1]}>${x[2]}`);
    const got = [...p.labels, ...p.resources].filter((l) => l.from !== undefined).map((l) => `${l.from}>${l.name}`);
    assert.deepEqual(got.sort(), renames.sort(), n);
  }
  // xm-test-new renames nothing; the other two do.
  assert.ok(readFileSync(join(DATA, 'gen3_xen-3.2_to_4.1/xm-test-update-security_policy.xml'), 'utf8').includes('from='));
});

test('two conflict sets of one name stay apart, the second renamed with a warning', () => {
  const n = 'reconstructed_from_user_manual/mytest_update-security_policy.xml';
  const raw = readFileSync(join(DATA, n), 'utf8');
  const r = readXenAcm(raw, n);
  const at = raw.indexOf('<Conflict name="RER">', raw.indexOf('<Conflict name="RER">') + 1);
  const w = r.diagnostics.filter((d) => d.code === 'duplicate_name');
  assert.equal(w.length, 1);
  assert.equal(w[0].severity, 'warning');
  assert.deepEqual(w[0].position, posAt(raw, at + '<Conflict '.length));
  assert.deepEqual(r.policy!.conflicts.map((c) => c.name), ['RER', 'RER#2']);
});

test('a gen1 label template alone is refused with a hint; its diagnostics carry its own file name', () => {
  const tplFile = join(DATA, 'gen1_xen-3.0.0/ste/ste-security_label_template.xml');
  const tpl = readFileSync(tplFile, 'utf8');
  const alone = readXenAcm(tpl, tplFile);
  assert.equal(alone.policy, null);
  assert.equal(alone.diagnostics[0].code, 'schema_violation');
  assert.match(alone.diagnostics[0].message, /label template/);
  assert.deepEqual(alone.diagnostics[0].position, posAt(tpl, tpl.indexOf('<SecurityLabelTemplate')));

  const polFile = join(DATA, 'gen1_xen-3.0.0/ste/ste-security_policy.xml');
  const bad = tpl.replace('<Type>ste_DonatedCycles</Type>', '<Type>ste_Nowhere</Type>');
  const r = readXenAcm(readFileSync(polFile, 'utf8'), polFile, { labelTemplate: { text: bad, file: 'labels.xml' } });
  assert.equal(r.policy, null);
  const e = errors(r.diagnostics);
  assert.equal(e.length, 1);
  assert.equal(e[0].code, 'unknown_color');
  assert.equal(e[0].file, 'labels.xml');
  assert.deepEqual(e[0].position, posAt(bad, bad.indexOf('<Type>ste_Nowhere')));

  // Without its template, a gen1 policy has no bootstrap label, and the message says what to do.
  const none = readXenAcm(readFileSync(polFile, 'utf8'), polFile);
  assert.equal(none.policy, null);
  assert.match(errors(none.diagnostics)[0].message, /--labels/);
});

// ---- bad input --------------------------------------------------------------------------------------------------

const BASE = `<?xml version="1.0" encoding="UTF-8"?>
<SecurityPolicyDefinition xmlns="http://www.ibm.com">
  <PolicyHeader>
    <PolicyName>t</PolicyName>
    <Version>1.0</Version>
  </PolicyHeader>
  <SimpleTypeEnforcement>
    <SimpleTypeEnforcementTypes>
      <Type>sys</Type>
      <Type>red</Type>
      <Type>blue</Type>
    </SimpleTypeEnforcementTypes>
  </SimpleTypeEnforcement>
  <ChineseWall>
    <ChineseWallTypes>
      <Type>sys</Type>
      <Type>red</Type>
      <Type>blue</Type>
    </ChineseWallTypes>
    <ConflictSets>
      <Conflict name="rb">
        <Type>red</Type>
        <Type>blue</Type>
      </Conflict>
    </ConflictSets>
  </ChineseWall>
  <SecurityLabelTemplate>
    <SubjectLabels bootstrap="sys">
      <VirtualMachineLabel>
        <Name>sys</Name>
        <SimpleTypeEnforcementTypes><Type>sys</Type><Type>red</Type><Type>blue</Type></SimpleTypeEnforcementTypes>
        <ChineseWallTypes><Type>sys</Type></ChineseWallTypes>
      </VirtualMachineLabel>
      <VirtualMachineLabel>
        <Name>red</Name>
        <SimpleTypeEnforcementTypes><Type>red</Type></SimpleTypeEnforcementTypes>
        <ChineseWallTypes><Type>red</Type></ChineseWallTypes>
      </VirtualMachineLabel>
    </SubjectLabels>
    <ObjectLabels>
      <ResourceLabel>
        <Name>red-disk</Name>
        <SimpleTypeEnforcementTypes><Type>red</Type></SimpleTypeEnforcementTypes>
      </ResourceLabel>
    </ObjectLabels>
  </SecurityLabelTemplate>
</SecurityPolicyDefinition>
`;

/** 1-based line/column of a string offset, counted here by hand. */
function posAt(text: string, offset: number) {
  assert.ok(offset >= 0);
  const before = text.slice(0, offset).split('\n');
  return { line: before.length, column: before[before.length - 1].length + 1 };
}

/** Edits BASE, reads it, and checks the one error: its code and where it is (`at` = offset in the edited text). */
function refuses(edit: (s: string) => string, code: string, at: (s: string) => number) {
  const text = edit(BASE);
  assert.notEqual(text, BASE, 'the edit changed nothing');
  const r = readXenAcm(text, 'bad.xml');
  assert.equal(r.policy, null);
  const e = errors(r.diagnostics);
  assert.ok(e.length >= 1);
  assert.equal(e[0].code, code, e[0].message);
  assert.equal(e[0].file, 'bad.xml');
  assert.deepEqual(e[0].position, posAt(text, at(text)));
  return e;
}

test('the base of the bad-input tests is itself a good policy', () => {
  const r = readXenAcm(BASE, 'base.xml');
  assert.deepEqual(r.diagnostics, []);
  assert.equal(r.policy!.labels.length, 2);
});

test('malformed XML: xml_syntax at the parser\'s line and column', () => {
  // The parser notices the mismatch on reading the `>` that ends the close tag.
  refuses((s) => s.replace('</PolicyHeader>', '</PolicyHeadr>'), 'xml_syntax',
    (s) => s.indexOf('</PolicyHeadr>') + '</PolicyHeadr'.length);
});

test('a DOCTYPE with a billion-laughs entity is refused, fast', () => {
  const lol = ['<!ENTITY lol0 "lol">',
    ...Array.from({ length: 9 }, (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i};`.repeat(10)}">`)].join('\n');
  const t0 = performance.now();
  refuses((s) => s.replace('<SecurityPolicyDefinition', `<!DOCTYPE SecurityPolicyDefinition [\n${lol}\n]>\n<SecurityPolicyDefinition`)
    .replace('<PolicyName>t<', '<PolicyName>&lol9;<'), 'doctype_forbidden', (s) => s.indexOf('<!DOCTYPE'));
  assert.ok(performance.now() - t0 < 1000);
});

test('a DOCTYPE with an external SYSTEM entity is refused, nothing fetched', () => {
  const e = refuses((s) => s.replace('<SecurityPolicyDefinition',
    '<!DOCTYPE SecurityPolicyDefinition [ <!ENTITY ext SYSTEM "file:///etc/passwd"> ]>\n<SecurityPolicyDefinition')
    .replace('<PolicyName>t<', '<PolicyName>&ext;<'), 'doctype_forbidden', (s) => s.indexOf('<!DOCTYPE'));
  assert.doesNotMatch(e[0].message, /root:/);
});

test('a 50 MB input is refused before parsing', () => {
  const huge = BASE + `<!--${'x'.repeat(50 * 1024 * 1024)}-->`;
  const t0 = performance.now();
  const r = readXenAcm(huge, 'huge.xml');
  assert.ok(performance.now() - t0 < 500);
  assert.equal(r.policy, null);
  assert.equal(r.diagnostics[0].code, 'input_too_large');
  assert.deepEqual(r.diagnostics[0].position, { line: 1, column: 1 });
  // counted in UTF-8 bytes, not characters: 9 M two-byte characters are 18 MB
  assert.equal(readXenAcm(BASE + `<!--${'é'.repeat(9_000_000)}-->`).diagnostics[0].code, 'input_too_large');
});

test('nesting deeper than MAX_XML_DEPTH is refused', () => {
  refuses((s) => s.replace('<Version>', `${'<a>'.repeat(40)}${'</a>'.repeat(40)}<Version>`), 'schema_violation',
    (s) => s.indexOf('<a>') + 3 * (32 - 2));
});

test('an unknown STE type in a label', () => {
  refuses((s) => s.replace('<Name>red</Name>\n        <SimpleTypeEnforcementTypes><Type>red</Type>',
    '<Name>red</Name>\n        <SimpleTypeEnforcementTypes><Type>green</Type>'), 'unknown_color',
  (s) => s.indexOf('<Type>green</Type>'));
});

test('a label holding two types of one conflict set', () => {
  refuses((s) => s.replace('<ChineseWallTypes><Type>red</Type></ChineseWallTypes>',
    '<ChineseWallTypes><Type>red</Type><Type>blue</Type></ChineseWallTypes>'), 'label_in_conflict',
  (s) => s.indexOf('<Type>red</Type><Type>blue</Type></ChineseWallTypes>') + '<Type>red</Type>'.length);
});

test('a ":" in a label name', () => {
  refuses((s) => s.replace('<Name>red</Name>', '<Name>r:ed</Name>'), 'bad_name', (s) => s.indexOf('<Name>r:ed'));
});

test('a missing bootstrap attribute', () => {
  refuses((s) => s.replace('<SubjectLabels bootstrap="sys">', '<SubjectLabels>'), 'missing_bootstrap',
    (s) => s.indexOf('<SubjectLabels>'));
});

test('a bootstrap attribute naming no label', () => {
  refuses((s) => s.replace('bootstrap="sys"', 'bootstrap="nobody"'), 'missing_bootstrap',
    (s) => s.indexOf('bootstrap="nobody"'));
});

test('a duplicate label name', () => {
  refuses((s) => s.replace('<Name>red</Name>', '<Name>sys</Name>'), 'duplicate_name',
    (s) => s.lastIndexOf('<Name>sys</Name>'));
});

test('a ResourceLabel with two types', () => {
  refuses((s) => s.replace('<Name>red-disk</Name>\n        <SimpleTypeEnforcementTypes><Type>red</Type>',
    '<Name>red-disk</Name>\n        <SimpleTypeEnforcementTypes><Type>red</Type><Type>blue</Type>'),
  'resource_color_count', (s) => s.indexOf('<ResourceLabel>'));
});

test('an unknown element', () => {
  refuses((s) => s.replace('<Version>', '<Bogus/>\n    <Version>'), 'schema_violation', (s) => s.indexOf('<Bogus/>'));
});

test('elements of another namespace are unknown too; floods of problems are capped', () => {
  refuses((s) => s.replace('<Version>', '<q:Version xmlns:q="urn:other">1.0</q:Version>\n    <Version>'),
    'schema_violation', (s) => s.indexOf('<q:Version'));
  const flood = readXenAcm(BASE.replace('<Version>', `${'<x a="1"><y/></x>'.repeat(20_000)}<Version>`));
  assert.equal(flood.policy, null);
  assert.equal(flood.diagnostics.length, 101);
  assert.match(flood.diagnostics[100].message, /more than 100 problems/);
});

test('an unknown type in a conflict set, and a bad version on import', () => {
  refuses((s) => s.replace('<Type>blue</Type>\n      </Conflict>', '<Type>cyan</Type>\n      </Conflict>'),
    'unknown_wall', (s) => s.indexOf('<Type>cyan'));
  refuses((s) => s.replace('<Version>1.0</Version>', '<Version>1.0.2</Version>'), 'bad_version',
    (s) => s.indexOf('<Version>1.0.2'));
});

test('a conflict set without a name is named by position, with a warning', () => {
  const r = readXenAcm(BASE.replace('<Conflict name="rb">', '<Conflict>'), 'c.xml');
  assert.deepEqual(r.policy!.conflicts.map((c) => c.name), ['conflict-1']);
  assert.deepEqual(r.diagnostics.map((d) => [d.severity, d.code]), [['warning', 'empty_name']]);
});

test('a bad version is refused on export', () => {
  const p = readXenAcm(BASE).policy!;
  for (const version of ['1.0.0', 'v1', '1', '123456789.0', '']) {
    assert.throws(() => writeXenAcm({ ...p, version }), (e: unknown) => {
      assert.ok(isPolicyError(e));
      assert.equal(e.code, 'bad_version');
      assert.deepEqual(e.diagnostics[0].path, ['version']);
      return true;
    });
  }
});

// ---- export details ---------------------------------------------------------------------------------------------

test('export: empty components write <Type/>, alert labels are named in a warning, text is escaped', (t) => {
  const p: Policy = {
    name: 'A&B <"co">', version: '2.10', colors: [], walls: [],
    conflicts: [{ name: 'x&y', walls: [] }], host: 'h&1',
    labels: [
      { name: 'h&1', colors: [], walls: [], onUntrusted: 'isolate', from: 'old "h"' },
      { name: 'vio', colors: [], walls: [], onUntrusted: 'alert' },
    ],
    resources: [],
    from: { name: 'A&B', version: '2.9' },
    meta: { url: 'http://x/?a=1&b=2', date: '<today>', primary: 'chwall' },
  };
  const { xml, warnings } = writeXenAcm(p);
  assert.match(xml, /<SimpleTypeEnforcementTypes>\s*<Type\/>\s*<\/SimpleTypeEnforcementTypes>/);
  assert.match(xml, /<ChineseWall priority="PrimaryPolicyComponent">/);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /"vio"/);
  const again = readXenAcm(xml);
  assert.deepEqual(again.diagnostics, []);
  assert.deepEqual(again.policy, { ...p, labels: p.labels.map((l) => ({ ...l, onUntrusted: 'isolate' })) });
  if (!xmllint) return t.skip('xmllint not installed: apt-get install libxml2-utils');
  assertSchemaValid(xml);
});

test('export refuses a policy that does not validate', () => {
  const p = readXenAcm(BASE).policy!;
  assert.throws(() => writeXenAcm({ ...p, host: 'nobody' }), (e: unknown) => isPolicyError(e) && e.code === 'missing_bootstrap');
});

// ---- sniffing and robustness ----------------------------------------------------------------------------------

test('isXenAcm sniffs the root element past BOM, prolog, comments and DOCTYPE', () => {
  assert.ok(isXenAcm(BASE));
  assert.ok(isXenAcm(`\ufeff  <!-- c --><?pi x?>\n<!DOCTYPE x [ <!ENTITY a "b"> ]>\n<acm:SecurityLabelTemplate xmlns:acm="http://www.ibm.com"/>`));
  assert.ok(!isXenAcm('policy: x\nversion: "1.0"\n'));
  assert.ok(!isXenAcm('<?xml version="1.0"?><domain type="kvm"/>'));
  assert.ok(!isXenAcm('<SecurityPolicyDefinitionX/>'));
  assert.ok(!isXenAcm('<!-- never closed'));
});

const REAL = FILES.map((f) => readFileSync(f.file, 'utf8'));

function neverThrows(text: string) {
  const r = readXenAcm(text, 'fuzz.xml');
  assert.equal(r.policy === null, r.diagnostics.some((d) => d.severity === 'error'));
  for (const d of r.diagnostics) assert.ok(d.position && d.position.line >= 1 && d.position.column >= 1);
}

test('readXenAcm never throws: arbitrary strings', () => {
  fc.assert(fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 300 }),
    fc.stringMatching(/^(<[A-Za-z:]{0,30}( [a-z]+="[^"<]{0,5}")?\/?>|<\/[A-Za-z]{0,30}>|[^<]{0,8}|&[a-z#0-9]{0,4};?|<!--|-->|<!DOCTYPE x>)*$/)),
  (s) => neverThrows(s)), { numRuns: 200 });
});

test('readXenAcm never throws: mutated real files', () => {
  fc.assert(fc.property(fc.nat(REAL.length - 1), fc.array(fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }),
    fc.nat(40), fc.string({ maxLength: 20 })), { minLength: 1, maxLength: 4 }),
  (i, edits) => {
    let s = REAL[i];
    for (const [where, del, ins] of edits) {
      const at = Math.floor(where * s.length);
      s = s.slice(0, at) + ins + s.slice(at + del);
    }
    neverThrows(s);
  }), { numRuns: 200 });
});

test('readXenAcm never throws: mutated gen1 label templates', () => {
  const pairs = FILES.filter((f) => f.tpl).map((f) => [readFileSync(f.file, 'utf8'), readFileSync(f.tpl!, 'utf8')]);
  fc.assert(fc.property(fc.nat(pairs.length - 1), fc.double({ min: 0, max: 1, noNaN: true }), fc.nat(40),
    fc.string({ maxLength: 20 }), (i, where, del, ins) => {
      const [pol, tpl] = pairs[i];
      const at = Math.floor(where * tpl.length);
      const r = readXenAcm(pol, 'p.xml', { labelTemplate: { text: tpl.slice(0, at) + ins + tpl.slice(at + del), file: 't.xml' } });
      assert.equal(r.policy === null, r.diagnostics.some((d) => d.severity === 'error'));
    }), { numRuns: 200 });
});
