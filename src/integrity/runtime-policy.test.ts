/**
 * Keylime runtime policies: every policy, allowlist and exclude list in ../shared/data/ima reads; write → read
 * round-trips; keylime_create_policy's expected outputs (keylime-tests) are reproduced byte for byte; excludes behave
 * as Python's re.match on the joined expression; bad input is refused with the right code and place.
 * Expectations come from the files' content and Keylime's documented rules, never from this module's output.
 */
import assert from 'node:assert/strict';
import { createHash, createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { IntegrityError, isIntegrityError } from './errors.ts';
import { parseImaLog } from './ima-log.ts';
import {
  compileExcludes,
  enrollFingerprint,
  policyFromLog,
  readAllowlist,
  readExcludeList,
  readRuntimePolicy,
  writeRuntimePolicy,
  type RuntimePolicy,
} from './runtime-policy.ts';
import { translatePythonRegex } from './python-regex.ts';

const IMA = new URL('../../../shared/data/ima/', import.meta.url);
const text = (rel: string) => readFileSync(new URL(rel, IMA), 'utf8');
const log = (rel: string) => parseImaLog(readFileSync(new URL(rel, IMA)));
const STATIC = 'keylime-tests/keylime_create_policy-static-data/';
/** keylime-tests' normalize_timestamp writes this into every expected output */
const TS = '2023-01-01 00:00:00';
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** The runtime policies (JSON) and flat allowlists of the data. */
const POLICY_FILES = [
  'keylime/runtime-policy.json',
  'keylime/runtime-policy-test.json',
  'keylime/policy-sha256',
  'keylime/allowlist-sha256',
  'keylime/ima-allowlist-short.txt',
  'keylime-tests/keylime-policy-commands/base_policy.json',
  'keylime-tests/keylime-policy-commands/allowlist.txt',
  `${STATIC}test2/output1.json`,
  `${STATIC}test2/output6.json`,
  `${STATIC}test3/output1.json`,
  `${STATIC}test4/output1.json`,
  `${STATIC}test4/allowlist-1`,
];

/** Refuses with `code`, naming `field` (or line) and the file. */
function refuses(fn: () => unknown, code: string, where: { field?: string; line?: number } = {}): IntegrityError {
  try {
    fn();
  } catch (e) {
    assert.ok(isIntegrityError(e), `not an IntegrityError: ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (where.field !== undefined) assert.equal(e.place.field, where.field, e.message);
    if (where.line !== undefined) assert.equal(e.place.line, where.line, e.message);
    return e;
  }
  assert.fail(`accepted, expected ${code}`);
}

describe('reading the policies of the data', () => {
  for (const f of POLICY_FILES) {
    it(`${f} reads, and write → read gives it back`, () => {
      const p = readRuntimePolicy(text(f), f);
      assert.ok(p.digests.size > 0);
      for (const indent of [0, 2]) assert.deepEqual(readRuntimePolicy(writeRuntimePolicy(p, { indent })), p);
    });
  }

  it('keylime/runtime-policy.json: seven files, all with the digest of empty content', () => {
    const p = readRuntimePolicy(text('keylime/runtime-policy.json'));
    assert.equal(p.digests.size, 7);
    for (const list of p.digests.values()) assert.deepEqual(list, [sha256('')]);
    assert.deepEqual(p.meta, { version: 1, generator: 3, timestamp: '2024-10-09 18:47:35.306609' });
    assert.deepEqual(p.excludes, []);
    assert.equal(p.ima.log_hash_alg, 'sha1');
    assert.equal(p.verificationKeys, null);
  });

  it('files in Keylime’s current layout are written back byte for byte', () => {
    for (const f of ['keylime/runtime-policy.json', 'keylime/policy-sha256', 'keylime-tests/keylime-policy-commands/base_policy.json', `${STATIC}test2/output1.json`]) {
      assert.equal(writeRuntimePolicy(readRuntimePolicy(text(f))), text(f).trimEnd(), f);
    }
    for (const f of [`${STATIC}test2/output6.json`, `${STATIC}test3/output1.json`]) {
      assert.equal(writeRuntimePolicy(readRuntimePolicy(text(f)), { indent: 2 }), text(f).trimEnd(), f);
    }
  });

  it('the old format: `sha256:` prefixes are dropped, generator 2 and the old meta order are read', () => {
    const p = readRuntimePolicy(text('keylime/runtime-policy-test.json'));
    assert.deepEqual(p.digests.get('boot_aggregate'), ['4309217e9709def327c3409407f4d52907aeba46ef1b4f46529fd095f2ef9fb2']);
    assert.deepEqual(p.meta, { version: 1, generator: 2, timestamp: '2022-10-24 21:46:47.978595' });
    assert.deepEqual([...p.keyrings], [['.ima', ['a7d52aaa18c23d2d9bb2abb4308c0eeee67387a42259f4a6b1a42257065f3d5a']]]);
  });

  it('ima-allowlist-short.txt is the allowlist runtime-policy-test.json was converted from', () => {
    const al = readRuntimePolicy(text('keylime/ima-allowlist-short.txt'));
    const json = readRuntimePolicy(text('keylime/runtime-policy-test.json'));
    // Keylime's own test of this file: 21 hashes, testload.mod's, one keyring
    assert.equal(al.digests.size, 21);
    assert.deepEqual(al.digests.get('/boot/grub2/i386-pc/testload.mod'), ['68e1d012e3f193dcde955e6ffbbc80e22b0f8778']);
    assert.deepEqual(al.digests, json.digests);
    assert.deepEqual(al.keyrings, json.keyrings);
  });

  it('the flat allowlists hold what their lines say', () => {
    assert.deepEqual([...readAllowlist(text('keylime/allowlist-sha256')).digests], [['data', ['96d7fae8adb7286a419a88f78c13d35fb782d63df654b7db56f154765698b754']]]);
    const base = readRuntimePolicy(text('keylime-tests/keylime-policy-commands/base_policy.json'));
    const al = readRuntimePolicy(text('keylime-tests/keylime-policy-commands/allowlist.txt'));
    assert.deepEqual(al.digests.get('test'), base.digests.get('test'));
    assert.deepEqual(base.digests.get('boot_aggregate'), ['0'.repeat(64)]);
  });

  it('the exclude lists read one expression a line', () => {
    assert.deepEqual(readExcludeList(text('keylime-tests/keylime-policy-commands/excludelist.txt')), ['test']);
    assert.deepEqual(readExcludeList(text(`${STATIC}test3/exclude-list-1`)), ['/home/xyz']);
  });
});

describe('keylime_create_policy (keylime-tests/keylime_create_policy-static-data)', () => {
  const list1 = () => log(`${STATIC}test2/ascii_runtime_measurements-1`);
  const list2 = () => log(`${STATIC}test2/ascii_runtime_measurements-2`);
  const KEYLIME_ORDER = ['meta', 'release', 'digests', 'excludes', 'keyrings', 'ima', 'ima-buf', 'verification-keys'];

  function same(p: RuntimePolicy, expectedFile: string, indent: number): void {
    const written = writeRuntimePolicy(p, { indent });
    const expected = text(expectedFile);
    assert.deepEqual(JSON.parse(written), JSON.parse(expected));
    assert.deepEqual(Object.keys(JSON.parse(written)), KEYLIME_ORDER);
    assert.deepEqual(Object.keys(JSON.parse(written).meta), ['version', 'generator', 'timestamp']);
    // the test compares with `diff -Z` (trailing whitespace ignored); output6 and test3 through `jq`
    assert.equal(written, expected.trimEnd());
  }

  it('test2 output1: `-m ascii_runtime_measurements-1`', () => {
    same(policyFromLog(list1(), { timestamp: TS }), `${STATIC}test2/output1.json`, 0);
  });

  it('test2: `-B output1 -m ascii_runtime_measurements-2` without --ima-buf gives output1 again', () => {
    const base = readRuntimePolicy(text(`${STATIC}test2/output1.json`));
    same(policyFromLog(list2(), { base, timestamp: TS }), `${STATIC}test2/output1.json`, 0);
  });

  it('test2 output6: `-B output1 -m …-2 -i .builtin_trusted_keys --keyrings --ima-buf`', () => {
    const base = readRuntimePolicy(text(`${STATIC}test2/output1.json`));
    const p = policyFromLog(list2(), { base, timestamp: TS, ignoredKeyrings: ['.builtin_trusted_keys'], keyrings: true, imaBuf: true });
    same(p, `${STATIC}test2/output6.json`, 2);
  });

  it('test3 output1: `-m … -e exclude-list-1` (test3’s list is test2’s: the output has the same digests)', () => {
    const excludes = readExcludeList(text(`${STATIC}test3/exclude-list-1`));
    same(policyFromLog(list1(), { timestamp: TS, excludes }), `${STATIC}test3/output1.json`, 2);
  });

  it('test4 output1: `-m /dev/null -a allowlist-1`', () => {
    const { digests } = readAllowlist(text(`${STATIC}test4/allowlist-1`));
    same(policyFromLog([], { timestamp: TS, allowlist: digests }), `${STATIC}test4/output1.json`, 0);
  });

  it('an allowlist and a log merge in that order; the digests are Keylime’s sorted sets', () => {
    const p = policyFromLog(log('keylime/ima-log-sha256'), { allowlist: readAllowlist(text('keylime/allowlist-sha256')).digests });
    assert.deepEqual([...p.digests.keys()], ['data', 'boot_aggregate', '/data']);
    assert.deepEqual(p.digests.get('/data'), ['96d7fae8adb7286a419a88f78c13d35fb782d63df654b7db56f154765698b754']);
    assert.equal(p.meta.timestamp, undefined);
    const twice = policyFromLog([...log('keylime/ima-log-sha256'), ...log('keylime/ima-log-sha256')]);
    assert.deepEqual(twice.digests.get('/data'), ['96d7fae8adb7286a419a88f78c13d35fb782d63df654b7db56f154765698b754']);
  });

  it('violations: Keylime lists their zero digest; skipViolations leaves them out', () => {
    // ima-log-sha1's boot_aggregate line has an all-zero template hash
    assert.deepEqual(policyFromLog(log('keylime/ima-log-sha1')).digests.get('boot_aggregate'), ['0'.repeat(40)]);
    assert.equal(policyFromLog(log('keylime/ima-log-sha1'), { skipViolations: true }).digests.has('boot_aggregate'), false);
  });

  it('a bad exclude line is refused', () => {
    refuses(() => policyFromLog([], { excludes: ['/ok', '(unclosed'] }), 'runtime_policy_bad_exclude', { line: 2 });
  });
});

describe('enrollFingerprint (hueguard’s defaults)', () => {
  it('keylime-policy-commands/ima_log.txt: files, keys on keyrings, other buffers', () => {
    const entries = log('keylime-tests/keylime-policy-commands/ima_log.txt');
    const p = enrollFingerprint(entries, { timestamp: '2025-01-01 00:00:00' });
    // the lines: boot_aggregate and /test (ima-ng), dm_table_load (a table), .ima and .test (X.509 certificates)
    assert.deepEqual([...p.digests], [
      ['boot_aggregate', ['0'.repeat(64)]],
      ['/test', ['f2d65f36dbae04c794028a89a7581c452ccca727d9cd6d12504e7aacc1ceaf33']],
    ]);
    assert.deepEqual([...p.keyrings], [
      ['.ima', ['a7d52aaa18c23d2d9bb2abb4308c0eeee67387a42259f4a6b1a42257065f3d5a']],
      ['.test', ['68b0115a1ccce90691f62df3053bd6601ad258e02ee6b5cee07f2a19144f253f']],
    ]);
    assert.deepEqual([...p.imaBuf], [['dm_table_load', ['571016c9f57363c80e08dd4346391c4e70227e41b0247b8a3aa2240a178d3d14']]]);
    assert.deepEqual(p.meta, { version: 1, generator: 3, timestamp: '2025-01-01 00:00:00' });
  });

  it('ignored keyrings and excludes are kept; violations are not enrolled', () => {
    const entries = [...log('keylime/ima-log-sha1'), ...log('keylime-tests/keylime-policy-commands/ima_log.txt')];
    const p = enrollFingerprint(entries, { timestamp: 't', ignoredKeyrings: ['.test'], excludes: ['/tmp/'] });
    assert.deepEqual([...p.keyrings.keys()], ['.ima']);
    assert.deepEqual(p.ima.ignored_keyrings, ['.test']);
    assert.deepEqual(p.excludes, ['/tmp/']);
    assert.deepEqual(p.digests.get('boot_aggregate'), ['0'.repeat(64)]);
  });
});

describe('excludes: Python re.match on `(a)|(b)|…`', () => {
  const excluded = (excludes: string[], path: string) => compileExcludes(excludes)!(path);

  it('anchor at the start only', () => {
    assert.equal(excluded(['/tmp'], '/tmp'), true);
    assert.equal(excluded(['/tmp'], '/tmpfoo'), true);
    assert.equal(excluded(['/tmp'], '/tmp/x'), true);
    assert.equal(excluded(['/tmp'], '/x/tmp'), false);
    assert.equal(excluded(['/var/log/.*', '/tmp'], '/x/var/log/a'), false);
    assert.equal(excluded(['/var/log/.*', '/tmp'], '/tmp/a'), true);
    assert.equal(compileExcludes([]), null);
  });

  // each row worked out from Python's re documentation
  const ROWS: [string, string, boolean][] = [
    ['.*\\.log$', 'a.log', true],
    ['.*\\.log$', 'a.log\n', true], // Python's $ also matches before a final newline
    ['.*\\.log$', 'a.logx', false],
    ['.*\\.log\\Z', 'a.log\n', false], // \Z does not
    ['/a.c', '/a\nc', false], // . is anything but \n
    ['/a.c', '/a\rc', true], // … \r included (JS's . would refuse it)
    ['\\d+x', '\u0661\u0662x', true], // \d is any Unicode decimal digit
    ['\\w+$', 'é', true],
    ['\\s', '\x1c', true], // str.isspace() holds for the file separator
    ['(?P<d>ab)(?P=d)', 'abab', true],
    ['(?P<d>ab)(?P=d)', 'abba', false],
    ['a{,2}b', 'aab', true],
    ['a{,2}b$', 'aaab', false],
    ['x{}', 'x{}', true], // not a quantifier: literal braces
    ['[]a]+$', ']a]', true], // ] first in a class is a literal
    ['[^]a]', 'b', true],
    ['[a-]$', '-', true],
    ['\\x41\\101\\u00e9', 'AAé', true],
    ['foo\\b', 'foo bar', true],
    ['foo\\b', 'foobar', false],
    ['(?<=/)x', 'x', false],
    ['/usr(?!/lib)', '/usr/bin', true],
    ['/usr(?!/lib)', '/usr/lib', false],
    ['a(?#note)+$', 'aaa', true],
    ['\\-\\/\\_', '-/_', true],
  ];
  for (const [pattern, path, want] of ROWS) {
    it(`${JSON.stringify(pattern)} ${want ? 'matches' : 'does not match'} ${JSON.stringify(path)}`, () => {
      assert.equal(excluded([pattern], path), want);
    });
  }

  it('joined as Keylime joins them: group numbers run across excludes', () => {
    // `(a)|(b\1)`: in the second exclude \1 is the first exclude's group (and `(x)|(\2)` refers to its own wrapper)
    assert.equal(excluded(['(a)', 'b'], 'b'), true);
    refuses(() => compileExcludes(['(?P<n>a)', '(?P<n>b)']), 'runtime_policy_bad_exclude', { field: 'excludes' });
  });

  const REFUSED = ['(?i)/tmp', '/tmp(?i:x)', 'a**', '*a', '(a', 'a)', '[a', '\\q', 'x{2,1}', 'a*+', '(?>a)', '(?(1)a|b)', '(?<=a*)b', '[\\W]', '(?=a)*', '\\N{EM DASH}', ''];
  for (const pattern of REFUSED) {
    it(`refuses ${JSON.stringify(pattern)}`, () => {
      refuses(() => compileExcludes(['/ok', pattern], 'p.json'), 'runtime_policy_bad_exclude', { field: 'excludes[1]' });
    });
  }

  it('the translation is a valid JS expression for the u flag', () => {
    assert.doesNotThrow(() => new RegExp(translatePythonRegex('/usr/(lib|lib64)/python3\\.\\d+/.*\\.pyc$'), 'u'));
  });
});

describe('refusing bad input', () => {
  const policy = (fields: Record<string, unknown>) => JSON.stringify({ digests: {}, ...fields });
  const DIGEST = 'a'.repeat(64);

  it('not JSON, or not an object', () => {
    refuses(() => readRuntimePolicy('{"digests": ', 'p.json'), 'runtime_policy_bad_format');
    refuses(() => readRuntimePolicy('{} trailing'), 'runtime_policy_bad_format');
    refuses(() => readRuntimePolicy('[1, 2]'), 'runtime_policy_bad_format');
    refuses(() => readRuntimePolicy('{"meta": {"version": 5}, "hashes": {}}'), 'runtime_policy_bad_format', { field: 'hashes' });
    // an empty object is Keylime's "no policy": nothing listed, nothing excluded
    assert.equal(readRuntimePolicy('{}').digests.size, 0);
  });

  it('fields of the wrong shape are named', () => {
    refuses(() => readRuntimePolicy(policy({ digests: [] })), 'runtime_policy_bad_format', { field: 'digests' });
    refuses(() => readRuntimePolicy(policy({ digests: { '/a': DIGEST } })), 'runtime_policy_bad_format', { field: 'digests["/a"]' });
    refuses(() => readRuntimePolicy(policy({ excludes: '/tmp' })), 'runtime_policy_bad_format', { field: 'excludes' });
    refuses(() => readRuntimePolicy(policy({ excludes: [1] })), 'runtime_policy_bad_format', { field: 'excludes[0]' });
    refuses(() => readRuntimePolicy(policy({ release: -1 })), 'runtime_policy_bad_format', { field: 'release' });
    refuses(() => readRuntimePolicy(policy({ meta: { version: 1, generator: 9 } })), 'runtime_policy_bad_format', { field: 'meta.generator' });
    refuses(() => readRuntimePolicy(policy({ ima: { ignored_keyrings: [], log_hash_alg: 'md5', dm_policy: null } })), 'runtime_policy_bad_format', {
      field: 'ima.log_hash_alg',
    });
    refuses(() => readRuntimePolicy(policy({ 'ima-buf': { x: 'y' } })), 'runtime_policy_bad_format', { field: 'ima-buf["x"]' });
  });

  it('digests: hex of a known length, a known algorithm prefix, one at least', () => {
    refuses(() => readRuntimePolicy(policy({ digests: { '/a': ['xyz'] } })), 'runtime_policy_bad_digest', { field: 'digests["/a"][0]' });
    refuses(() => readRuntimePolicy(policy({ digests: { '/a': [DIGEST, 'ab'] } })), 'runtime_policy_bad_digest', { field: 'digests["/a"][1]' });
    refuses(() => readRuntimePolicy(policy({ digests: { '/a': [`sha1:${DIGEST}`] } })), 'runtime_policy_bad_digest');
    refuses(() => readRuntimePolicy(policy({ digests: { '/a': [`md5:${'a'.repeat(32)}`] } })), 'runtime_policy_bad_digest');
    refuses(() => readRuntimePolicy(policy({ keyrings: { '.ima': [] } })), 'runtime_policy_bad_digest', { field: 'keyrings[".ima"]' });
    // upper case is read as the same digest
    assert.deepEqual(readRuntimePolicy(policy({ digests: { '/a': ['A'.repeat(40)] } })).digests.get('/a'), ['a'.repeat(40)]);
  });

  it('excludes that are no regular expression', () => {
    refuses(() => readRuntimePolicy(policy({ excludes: ['/ok', '(('] }), 'p.json'), 'runtime_policy_bad_exclude', { field: 'excludes[1]' });
  });

  it('allowlist lines', () => {
    refuses(() => readRuntimePolicy(`${DIGEST}  /a\n${DIGEST}\n`, 'al.txt'), 'runtime_policy_bad_format', { line: 2 });
    refuses(() => readRuntimePolicy(`${DIGEST}  /a\n\nzz  /b\n`, 'al.txt'), 'runtime_policy_bad_digest', { line: 3 });
    // spaces in a path become `_`, as IMA writes names
    assert.deepEqual([...readRuntimePolicy(`${DIGEST}  /a b\n`).digests.keys()], ['/a_b']);
  });

  it('verification-keys: a JSON string of base64 RSA or EC keys', () => {
    refuses(() => readRuntimePolicy(policy({ 'verification-keys': 'nope' })), 'runtime_policy_bad_key', { field: 'verification-keys' });
    refuses(() => readRuntimePolicy(policy({ 'verification-keys': '{"pubkeys": ["!!"]}' })), 'runtime_policy_bad_key', {
      field: 'verification-keys.pubkeys[0]',
    });
    refuses(() => readRuntimePolicy(policy({ 'verification-keys': '{"pubkeys": ["AAAA"]}' })), 'runtime_policy_bad_key', {
      field: 'verification-keys.pubkeys[0]',
    });
  });
});

describe('verification-keys', () => {
  const rsa = createPublicKey(text('keylime/rsa2048pub.pem')).export({ format: 'der', type: 'spki' }).toString('base64');

  it('keyids not given are computed as Keylime does (SHA-1 of the PKCS#1 key, last 4 bytes)', () => {
    // /usr/bin/dd in test_ima_verification_vectors.txt is signed by rsa2048pub.pem with keyid f3452d23
    const p = readRuntimePolicy(JSON.stringify({ digests: {}, 'verification-keys': JSON.stringify({ pubkeys: [rsa], keyids: [] }) }));
    assert.deepEqual(p.verificationKeys, { pubkeys: [rsa], keyids: [0xf3452d23] });
    assert.deepEqual(readRuntimePolicy(writeRuntimePolicy(p)), p);
    const written = JSON.parse(writeRuntimePolicy(p))['verification-keys'];
    assert.equal(written, `{"pubkeys": ["${rsa}"], "keyids": [${0xf3452d23}]}`);
  });

  it('Keylime’s doubly encoded form is read too', () => {
    const twice = JSON.stringify(JSON.stringify({ pubkeys: [rsa], keyids: [7] }));
    const p = readRuntimePolicy(JSON.stringify({ digests: {}, 'verification-keys': twice }));
    assert.deepEqual(p.verificationKeys, { pubkeys: [rsa], keyids: [7] });
  });
});

describe('writing', () => {
  it('strings are escaped as Python’s json.dumps does (ensure_ascii)', () => {
    const p = readRuntimePolicy(JSON.stringify({ digests: { '/é\u2028"\\\n\x7f😀': ['a'.repeat(40)] } }));
    const w = writeRuntimePolicy(p);
    assert.ok(w.includes('"/\\u00e9\\u2028\\"\\\\\\n\\u007f\\ud83d\\ude00": ["'), w);
    assert.deepEqual(readRuntimePolicy(w), p);
  });

  it('keys keep their order, integer-like ones included', () => {
    const p = readRuntimePolicy(`${'a'.repeat(40)}  b\n${'a'.repeat(40)}  10\n${'a'.repeat(40)}  2\n`);
    assert.deepEqual(Object.keys(JSON.parse(writeRuntimePolicy(p)).digests).length, 3);
    assert.match(writeRuntimePolicy(p), /"digests": \{"b": .*"10": .*"2": /);
  });
});

describe('fuzzing readRuntimePolicy', () => {
  const ok = (t: string) => {
    try {
      readRuntimePolicy(t, 'fuzz.json');
    } catch (e) {
      assert.ok(isIntegrityError(e), `threw ${String(e)} for ${JSON.stringify(t).slice(0, 200)}`);
    }
  };

  it('any text: a policy or an IntegrityError', () => {
    fc.assert(fc.property(fc.string({ maxLength: 200 }), ok), { numRuns: 300 });
  });

  it('JSON of about the right shape: a policy or an IntegrityError', () => {
    const hexish = fc.oneof(fc.stringMatching(/^[0-9a-fA-F]{0,130}$/), fc.string({ maxLength: 20 }), fc.constantFrom(`sha256:${'ab'.repeat(32)}`));
    const any = fc.oneof(fc.jsonValue({ maxDepth: 2 }), hexish);
    const map = fc.oneof(fc.dictionary(fc.string({ maxLength: 8 }), fc.oneof(fc.array(hexish, { maxLength: 3 }), any), { maxKeys: 4 }), any);
    const doc = fc.record(
      {
        meta: fc.oneof(fc.record({ version: fc.integer({ min: -2, max: 3 }), generator: fc.integer({ min: -1, max: 5 }) }), any),
        release: fc.oneof(fc.integer({ min: -1, max: 3 }), any),
        digests: map,
        excludes: fc.oneof(fc.array(fc.string({ maxLength: 12 }), { maxLength: 3 }), any),
        keyrings: map,
        ima: fc.oneof(fc.record({ ignored_keyrings: fc.array(fc.string(), { maxLength: 2 }), log_hash_alg: fc.constantFrom('sha1', 'sha256', 'md5'), dm_policy: any }), any),
        'ima-buf': map,
        'verification-keys': fc.oneof(fc.constantFrom('', '{}', '{"pubkeys": ["AAAA"]}', '"x"'), fc.string({ maxLength: 30 }), any),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(doc, (d) => {
        const t = JSON.stringify(d);
        ok(t);
        // what reads also writes and reads back the same
        try {
          const p = readRuntimePolicy(t);
          assert.deepEqual(readRuntimePolicy(writeRuntimePolicy(p)), p);
        } catch (e) {
          if (!isIntegrityError(e)) throw e;
        }
      }),
      { numRuns: 300 },
    );
  });

  it('arbitrary Python-looking patterns: translated or refused with runtime_policy_bad_exclude', () => {
    const piece = fc.constantFrom('a', '/', '.', '*', '+', '?', '{', '}', '{2}', '{,3}', '[', ']', '^', '$', '(', ')', '(?:', '(?P<n>', '(?P=n)', '(?=', '(?<=', '\\', '\\d', '\\1', '|', '-', 'é');
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 10 }), (parts) => {
        const x = parts.join('');
        try {
          const m = compileExcludes([x]);
          if (m !== null) m('/usr/bin/a');
        } catch (e) {
          assert.ok(isIntegrityError(e) && e.code === 'runtime_policy_bad_exclude', `${JSON.stringify(x)}: ${String(e)}`);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('a golden fingerprint accepts the log it was enrolled from', () => {
  it('also when a keyring receives a bare DER public key (not a certificate)', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const { computeTemplateHash } = await import('./ima-entry.ts');
    const { appraise } = await import('./appraise.ts');
    const { enrollFingerprint } = await import('./runtime-policy.ts');
    const der = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ type: 'spki', format: 'der' });
    const entry = (name: string, template: 'ima-ng' | 'ima-buf', content: Uint8Array, buf?: Uint8Array) => {
      const e: import('./ima-entry.ts').ImaEntry = { pcr: 10, template, templateHash: new Uint8Array(20), digestAlg: 'sha256', digest: createHash('sha256').update(content).digest(), name, ...(buf ? { buf } : {}) };
      e.templateHash = computeTemplateHash(e);
      return e;
    };
    const log = [entry('/usr/bin/app', 'ima-ng', Buffer.from('app')), entry('.ima', 'ima-buf', der, der)];
    const fp = enrollFingerprint(log, { timestamp: '2026-11-26 00:00:00' });
    const verdict = appraise(fp, log);
    assert.equal(verdict.ok, true, JSON.stringify(verdict.failures));
    assert.deepEqual(fp.keyrings.get('.ima'), [createHash('sha256').update(der).digest('hex')]);
  });
});
