/**
 * Reference values: Keylime's runtime policy (FORMATS.md "Keylime runtime policy"), its older forms (a JSON policy
 * with `sha256:`-prefixed digests, a flat allowlist `<hex>  <path>` and an exclude list), the writer in Keylime's own
 * JSON layout, and the policy generator (`policyFromLog`) that reproduces `keylime_create_policy`.
 *
 * Sources: keylime/ima/ima.py (EMPTY_RUNTIME_POLICY, RUNTIME_POLICY_SCHEMA, _validate_ima_ng), keylime/cmd/
 * create_policy.py and keylime/policy/create_runtime_policy.py (the generator), keylime/common/validators.py
 * (excludes: `"(" + ")|(".join(excludes) + ")"`, applied with Python's `re.match`).
 *
 * Excludes are Python regular expressions, translated by python-regex.ts; verification keys load through ima-keys.ts.
 *
 * Maps are `Map`s, not objects: Python dicts keep insertion order for every key, JS objects put integer-like keys
 * first, and a path may be `__proto__`.
 */
import { X509Certificate } from 'node:crypto';
import { IntegrityError, IntegrityErrorCode } from './errors.ts';
import { isViolation, type ImaEntry } from './ima-entry.ts';
import { EC_CURVES, keyFromBuffer, keyIdV2, loadSpki } from './ima-keys.ts';
import { translatePythonRegex } from './python-regex.ts';

// ---- model ------------------------------------------------------------------------------------------------------

/** path (or buffer / keyring name) → accepted digests, bare lowercase hex */
export type DigestMap = Map<string, string[]>;

export type LogHashAlg = 'sha1' | 'sha256' | 'sha384' | 'sha512';
const LOG_HASH_ALGS: readonly string[] = ['sha1', 'sha256', 'sha384', 'sha512'];

/** Keylime's RUNTIME_POLICY_GENERATOR: Unknown 0, EmptyAllowList 1, CompatibleAllowList 2, LegacyAllowList 3. */
export const GENERATOR = { unknown: 0, emptyAllowList: 1, compatibleAllowList: 2, legacyAllowList: 3 } as const;

/** The IMA signature keys a policy carries (`verification-keys`): DER SubjectPublicKeyInfo in base64, keyids. */
export interface VerificationKeys {
  pubkeys: string[];
  /** keyidv2 of pubkeys[i]; Keylime computes it when the list is shorter */
  keyids: number[];
}

export interface RuntimePolicy {
  meta: { version: number; generator: number; timestamp?: string };
  release: number;
  digests: DigestMap;
  /** Python regular expressions, joined as `(a)|(b)|…` and matched at the start of a path */
  excludes: string[];
  /** keyring name → sha256 (the `d-ng` digest) of the keys that may be loaded onto it */
  keyrings: DigestMap;
  ima: { ignored_keyrings: string[]; log_hash_alg: LogHashAlg; dm_policy: unknown };
  /** ima-buf name → accepted digests (`ima-buf` in the JSON) */
  imaBuf: DigestMap;
  /** `verification-keys`; null for Keylime's empty string */
  verificationKeys: VerificationKeys | null;
}

export function emptyRuntimePolicy(): RuntimePolicy {
  return {
    meta: { version: 1, generator: GENERATOR.emptyAllowList },
    release: 0,
    digests: new Map(),
    excludes: [],
    keyrings: new Map(),
    ima: { ignored_keyrings: [], log_hash_alg: 'sha1', dm_policy: null },
    imaBuf: new Map(),
    verificationKeys: null,
  };
}

/** Hex lengths of the digests a policy may hold (Keylime's schema: `^[0-9a-f]{40,128}$`, one of its algorithms). */
const HEX_LENGTH_ALG: ReadonlyMap<number, string> = new Map([
  [40, 'sha1'],
  [64, 'sha256'],
  [96, 'sha384'],
  [128, 'sha512'],
]);
const PREFIX_ALG_LENGTH: ReadonlyMap<string, number> = new Map([
  ['sha1', 40],
  ['sha256', 64],
  ['sm3_256', 64],
  ['sm3', 64],
  ['sha384', 96],
  ['sha512', 128],
]);

/** The algorithm a bare hex digest's length implies (sha256 also stands for sm3_256), or undefined. */
export function digestAlgOfHex(hex: string): string | undefined {
  return HEX_LENGTH_ALG.get(hex.length);
}

// ---- errors -----------------------------------------------------------------------------------------------------

function fail(code: IntegrityErrorCode, message: string, file: string | undefined, field?: string, line?: number): never {
  const place: { file?: string; field?: string; line?: number } = {};
  if (file !== undefined) place.file = file;
  if (field !== undefined) place.field = field;
  if (line !== undefined) place.line = line;
  throw new IntegrityError(code, message, place);
}
const C = IntegrityErrorCode;

/** A digest as a policy states it (bare hex, or Keylime's old `alg:hex`), as bare lowercase hex; else throws. */
function normalizeDigest(raw: unknown, file: string | undefined, field: string | undefined, line?: number): string {
  if (typeof raw !== 'string') fail(C.policyBadDigest, 'a digest must be a string', file, field, line);
  let hex = raw;
  const colon = raw.indexOf(':');
  if (colon >= 0) {
    const alg = raw.slice(0, colon).toLowerCase();
    hex = raw.slice(colon + 1);
    const want = PREFIX_ALG_LENGTH.get(alg);
    if (want === undefined) fail(C.policyBadDigest, `unknown digest algorithm ${JSON.stringify(alg)}`, file, field, line);
    if (hex.length !== want) fail(C.policyBadDigest, `a ${alg} digest has ${want} hex digits, not ${hex.length}`, file, field, line);
  }
  if (!/^[0-9a-fA-F]*$/.test(hex)) fail(C.policyBadDigest, `not hex: ${JSON.stringify(raw.slice(0, 80))}`, file, field, line);
  if (!HEX_LENGTH_ALG.has(hex.length)) {
    fail(C.policyBadDigest, `${hex.length} hex digits is no known digest length (40, 64, 96, 128)`, file, field, line);
  }
  return hex.toLowerCase();
}

// ---- JSON policy --------------------------------------------------------------------------------------------------

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const fieldOf = (parent: string, key: string) => `${parent}[${JSON.stringify(key)}]`;

function readDigestMap(v: unknown, name: string, file: string | undefined): DigestMap {
  if (v === undefined) return new Map();
  if (!isObject(v)) fail(C.policyBadFormat, `${name} must be an object of lists`, file, name);
  const out: DigestMap = new Map();
  for (const [key, list] of Object.entries(v)) {
    const field = fieldOf(name, key);
    if (!Array.isArray(list)) fail(C.policyBadFormat, 'must be a list of digests', file, field);
    if (list.length === 0) fail(C.policyBadDigest, 'an empty list accepts nothing (Keylime requires one digest at least)', file, field);
    out.set(key, list.map((d, i) => normalizeDigest(d, file, `${field}[${i}]`)));
  }
  return out;
}

function readStringList(v: unknown, name: string, file: string | undefined): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) fail(C.policyBadFormat, 'must be a list of strings', file, name);
  v.forEach((s, i) => {
    if (typeof s !== 'string') fail(C.policyBadFormat, 'must be a string', file, `${name}[${i}]`);
  });
  return v as string[];
}

function readInt(v: unknown, dflt: number, field: string, file: string | undefined, max = Number.MAX_SAFE_INTEGER): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) {
    fail(C.policyBadFormat, `must be an integer from 0 to ${max}`, file, field);
  }
  return v;
}

/**
 * Reads `verification-keys`: "" (none) or a JSON string `{"pubkeys": [base64 DER SPKI…], "keyids": [int…]}`, which
 * Keylime sometimes stores JSON-encoded twice. Every key must load as an RSA or EC public key.
 */
export function readVerificationKeys(raw: unknown, file?: string): VerificationKeys | null {
  const F = 'verification-keys';
  if (raw === undefined || raw === '' || raw === null) return null;
  if (typeof raw !== 'string') fail(C.policyBadKey, 'must be a string holding JSON', file, F);
  let obj: unknown;
  try {
    obj = JSON.parse(raw);
    if (typeof obj === 'string') obj = JSON.parse(obj);
  } catch {
    fail(C.policyBadKey, 'is not JSON', file, F);
  }
  if (!isObject(obj)) fail(C.policyBadKey, 'must hold an object {pubkeys, keyids}', file, F);
  const pubkeys = obj.pubkeys ?? [];
  const keyids = obj.keyids ?? [];
  if (!Array.isArray(pubkeys) || !Array.isArray(keyids)) fail(C.policyBadKey, 'pubkeys and keyids must be lists', file, F);
  const out: VerificationKeys = { pubkeys: [], keyids: [] };
  pubkeys.forEach((b64, i) => {
    const field = `${F}.pubkeys[${i}]`;
    if (typeof b64 !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) fail(C.policyBadKey, 'must be base64', file, field);
    const key = loadSpki(Buffer.from(b64, 'base64'));
    if (key === null) fail(C.policyBadKey, `is not a DER RSA or EC (${EC_CURVES.join(', ')}) public key`, file, field);
    const id = keyids[i];
    if (id !== undefined && id !== null && (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > 0xffffffff)) {
      fail(C.policyBadKey, 'must be a 32-bit keyid', file, `${F}.keyids[${i}]`);
    }
    out.pubkeys.push(b64);
    out.keyids.push(typeof id === 'number' && id !== 0 ? id : keyIdV2(key));
  });
  return out;
}

function readJsonPolicy(text: string, file: string | undefined): RuntimePolicy {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    fail(C.policyBadFormat, `not JSON: ${(e as Error).message}`, file);
  }
  if (!isObject(doc)) fail(C.policyBadFormat, 'a runtime policy is a JSON object', file);
  if (doc.hashes !== undefined && doc.digests === undefined) {
    fail(C.policyBadFormat, 'Keylime’s older JSON allowlist (`hashes`): convert it to a runtime policy first', file, 'hashes');
  }
  const p = emptyRuntimePolicy();
  if (doc.meta !== undefined) {
    if (!isObject(doc.meta)) fail(C.policyBadFormat, 'must be an object', file, 'meta');
    p.meta.version = readInt(doc.meta.version, 1, 'meta.version', file);
    p.meta.generator = readInt(doc.meta.generator, GENERATOR.unknown, 'meta.generator', file, GENERATOR.legacyAllowList);
    if (doc.meta.timestamp !== undefined) {
      if (typeof doc.meta.timestamp !== 'string') fail(C.policyBadFormat, 'must be a string', file, 'meta.timestamp');
      p.meta.timestamp = doc.meta.timestamp;
    }
  }
  p.release = readInt(doc.release, 0, 'release', file);
  p.digests = readDigestMap(doc.digests, 'digests', file);
  p.excludes = readStringList(doc.excludes, 'excludes', file);
  compileExcludes(p.excludes, file); // refuses a bad one, naming it
  p.keyrings = readDigestMap(doc.keyrings, 'keyrings', file);
  p.imaBuf = readDigestMap(doc['ima-buf'], 'ima-buf', file);
  if (doc.ima !== undefined) {
    if (!isObject(doc.ima)) fail(C.policyBadFormat, 'must be an object', file, 'ima');
    p.ima.ignored_keyrings = readStringList(doc.ima.ignored_keyrings, 'ima.ignored_keyrings', file);
    const alg = doc.ima.log_hash_alg ?? 'sha1';
    if (typeof alg !== 'string' || !LOG_HASH_ALGS.includes(alg)) {
      fail(C.policyBadFormat, `must be one of ${LOG_HASH_ALGS.join(', ')}`, file, 'ima.log_hash_alg');
    }
    p.ima.log_hash_alg = alg as LogHashAlg;
    const dm = doc.ima.dm_policy ?? null;
    if (dm !== null && !isObject(dm)) fail(C.policyBadFormat, 'must be null or an object', file, 'ima.dm_policy');
    p.ima.dm_policy = dm;
  }
  p.verificationKeys = readVerificationKeys(doc['verification-keys'], file);
  return p;
}

/**
 * A runtime policy from its text: Keylime's JSON (current, or older with `alg:`-prefixed digests), or a flat
 * allowlist (anything not starting with `{`, `[` or `"`). Unknown top-level fields are ignored (and not written
 * back); missing ones take Keylime's empty-policy values. Refuses with runtime_policy_bad_format / _bad_digest /
 * _bad_exclude / _bad_key, naming the field (or the line of an allowlist).
 */
export function readRuntimePolicy(text: string, file?: string): RuntimePolicy {
  const t = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  if (/^\s*[{["]/.test(t)) return readJsonPolicy(t, file);
  const p = emptyRuntimePolicy();
  p.meta.generator = GENERATOR.legacyAllowList;
  const { digests, keyrings } = readAllowlist(t, file);
  p.digests = digests;
  p.keyrings = keyrings;
  return p;
}

// ---- flat allowlist and exclude list ----------------------------------------------------------------------------

/** Python's str.strip() / split() whitespace (str.isspace) as a character class body. */
const PY_SPACE = '\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const PY_STRIP = new RegExp(`^[${PY_SPACE}]+|[${PY_SPACE}]+$`, 'g');
const PY_SPLIT1 = new RegExp(`^([^${PY_SPACE}]+)[${PY_SPACE}]+(.*)$`, 's');

/**
 * A flat allowlist (`sha256sum` output: `<hex>  <path>` per line; Keylime's create_policy `-a`): empty lines are
 * skipped, a line is split at its first run of whitespace, spaces in paths become `_` as IMA writes them, a
 * `%keyring:NAME` path lists a key for keyring NAME (Keylime's old allowlist reader), digests may carry `alg:`.
 * Keylime skips a line without a path; hueguard refuses it (a cut line is a damaged list).
 */
export function readAllowlist(text: string, file?: string): { digests: DigestMap; keyrings: DigestMap } {
  const digests: DigestMap = new Map();
  const keyrings: DigestMap = new Map();
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(PY_STRIP, '');
    if (line === '') return;
    const m = PY_SPLIT1.exec(line);
    if (m === null) fail(C.policyBadFormat, 'an allowlist line is `<digest> <path>`', file, undefined, i + 1);
    const digest = normalizeDigest(m[1], file, undefined, i + 1);
    let path = m[2].replaceAll(' ', '_');
    let map = digests;
    if (path.startsWith('%keyring:')) {
      path = path.slice('%keyring:'.length);
      map = keyrings;
    }
    const list = map.get(path);
    if (list === undefined) map.set(path, [digest]);
    else list.push(digest);
  });
  return { digests, keyrings };
}

/** An exclude list file (create_policy `-e`): one Python regular expression per line, blank lines skipped. */
export function readExcludeList(text: string, file?: string): string[] {
  const out: string[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(PY_STRIP, '');
    if (line === '') return;
    try {
      translatePythonRegex(line);
    } catch (e) {
      fail(C.policyBadExclude, (e as Error).message, file, undefined, i + 1);
    }
    out.push(line);
  });
  return out;
}

// ---- excludes: Keylime's joined expression ------------------------------------------------------------------------

/** Tests whether a path is excluded. */
export type ExcludeMatcher = (path: string) => boolean;

/**
 * Keylime's exclude test: every exclude must be a valid regular expression on its own, they are joined into
 * `(a)|(b)|…`, and a path is excluded when that matches at its start (Python `re.match`: `/tmp` also excludes
 * `/tmpfoo`, not `/x/tmp`). Null when there are no excludes. An empty exclude is refused: it would exclude every
 * path. Throws runtime_policy_bad_exclude naming `excludes[i]`.
 */
export function compileExcludes(excludes: readonly string[], file?: string): ExcludeMatcher | null {
  if (excludes.length === 0) return null;
  excludes.forEach((x, i) => {
    if (x === '') fail(C.policyBadExclude, 'an empty exclude would exclude every path', file, `excludes[${i}]`);
    try {
      translatePythonRegex(x);
    } catch (e) {
      fail(C.policyBadExclude, `${JSON.stringify(x)}: ${(e as Error).message}`, file, `excludes[${i}]`);
    }
  });
  let js: string;
  try {
    js = translatePythonRegex(`(${excludes.join(')|(')})`);
  } catch (e) {
    fail(C.policyBadExclude, `the excludes joined: ${(e as Error).message}`, file, 'excludes');
  }
  const re = new RegExp(`^(?:${js})`, 'u');
  return (path) => re.test(path);
}

// ---- writing --------------------------------------------------------------------------------------------------------

/** A JSON string as Python's json.dumps writes it (ensure_ascii: everything outside space..~ escaped). */
function pyString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x22) out += '\\"';
    else if (c === 0x5c) out += '\\\\';
    else if (c >= 0x20 && c <= 0x7e) out += s[i];
    else if (c === 0x0a) out += '\\n';
    else if (c === 0x0d) out += '\\r';
    else if (c === 0x09) out += '\\t';
    else if (c === 0x08) out += '\\b';
    else if (c === 0x0c) out += '\\f';
    else out += `\\u${c.toString(16).padStart(4, '0')}`;
  }
  return `${out}"`;
}

/** Python json.dumps: `", "` and `": "` when compact; with an indent, one item a line (as `jq` also prints). */
function pyJson(v: unknown, indent: number, depth: number): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'string') return pyString(v);
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : 'null';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  const entries: [string | null, unknown][] = Array.isArray(v)
    ? v.map((x) => [null, x])
    : v instanceof Map
      ? [...v.entries()].map(([k, x]) => [String(k), x])
      : Object.entries(v as object);
  const [open, close] = Array.isArray(v) ? ['[', ']'] : ['{', '}'];
  if (entries.length === 0) return open + close;
  const item = ([k, x]: [string | null, unknown]) => (k === null ? '' : `${pyString(k)}: `) + pyJson(x, indent, depth + 1);
  if (indent === 0) return open + entries.map(item).join(', ') + close;
  const pad = ' '.repeat(indent * (depth + 1));
  return `${open}\n${entries.map((e) => pad + item(e)).join(',\n')}\n${' '.repeat(indent * depth)}${close}`;
}

/** The `verification-keys` string Keylime stores: json.dumps({"pubkeys": […], "keyids": […]}), or "". */
export function verificationKeysString(k: VerificationKeys | null): string {
  return k === null ? '' : pyJson({ pubkeys: k.pubkeys, keyids: k.keyids }, 0, 0);
}

/**
 * A runtime policy in Keylime's JSON layout and key order (meta, release, digests, excludes, keyrings, ima, ima-buf,
 * verification-keys), as Python's json.dumps writes it; `indent: 2` gives the pretty form (`jq` prints the same).
 */
export function writeRuntimePolicy(p: RuntimePolicy, opts: { indent?: number } = {}): string {
  const meta: Record<string, unknown> = { version: p.meta.version, generator: p.meta.generator };
  if (p.meta.timestamp !== undefined) meta.timestamp = p.meta.timestamp;
  const doc = {
    meta,
    release: p.release,
    digests: p.digests,
    excludes: p.excludes,
    keyrings: p.keyrings,
    ima: { ignored_keyrings: p.ima.ignored_keyrings, log_hash_alg: p.ima.log_hash_alg, dm_policy: p.ima.dm_policy },
    'ima-buf': p.imaBuf,
    'verification-keys': verificationKeysString(p.verificationKeys),
  };
  return pyJson(doc, opts.indent ?? 0, 0);
}

// ---- generating a policy from a known-good log ----------------------------------------------------------------------

export interface PolicyFromLogOptions {
  /** meta.timestamp (Keylime writes str(datetime.now()), e.g. "2023-01-01 00:00:00"); omitted when absent */
  timestamp?: string;
  /** `-B`: a policy to merge into (its digests, excludes, keyrings, ima-buf, ignored keyrings, keys, log_hash_alg) */
  base?: RuntimePolicy;
  /** `-a`: allowlist digests, merged before the log's */
  allowlist?: DigestMap;
  /** `-e`: exclude list lines (each must be a valid regular expression) */
  excludes?: readonly string[];
  /** `-k`: list the keys found on keyrings (ima-buf entries holding an X.509 certificate) under `keyrings` */
  keyrings?: boolean;
  /** `-b`: list the other ima-buf entries under `ima-buf` */
  imaBuf?: boolean;
  /** `-i`: keyrings whose keys are not listed (and which the verifier then ignores) */
  ignoredKeyrings?: readonly string[];
  /** `--no-hashes` when false: take no file digests from the log; default true */
  digests?: boolean;
  /** hueguard: also take digests from legacy `ima` entries (Keylime takes `ima-ng` and `ima-sig` only) */
  legacyIma?: boolean;
  /** hueguard: leave violations (all-zero template hash) out instead of listing their zero digest as Keylime does */
  skipViolations?: boolean;
  /** hueguard: leave the boot_aggregate entry out (the quote's PCRs 0–9 attest it) */
  skipBootAggregate?: boolean;
  /** which ima-buf buffers are keys (default Keylime's: a DER X.509 certificate) */
  isKey?: (buf: Uint8Array) => boolean;
}

/** Whether an ima-buf buffer is a DER X.509 certificate (create_policy's is_x509_cert). */
export function isX509Certificate(buf: Uint8Array): boolean {
  if (buf.length < 2 || buf[0] !== 0x30) return false;
  try {
    new X509Certificate(Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength));
    return true;
  } catch {
    return false;
  }
}

/** Python's sorted() on strings: by code point (JS's default sort compares UTF-16 units). */
function pySorted(xs: Iterable<string>): string[] {
  return [...new Set(xs)].sort((a, b) => {
    const A = [...a];
    const B = [...b];
    for (let i = 0; i < Math.min(A.length, B.length); i++) {
      const d = A[i].codePointAt(0)! - B[i].codePointAt(0)!;
      if (d !== 0) return d;
    }
    return A.length - B.length;
  });
}

function append(map: DigestMap, key: string, digest: string): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [digest]);
  else list.push(digest);
}

function copyMap(m: DigestMap | undefined): DigestMap {
  return new Map([...(m ?? new Map<string, string[]>())].map(([k, v]) => [k, [...v]]));
}

const hexOf = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

/**
 * A runtime policy generated from a known-good log as `keylime_create_policy` does it: digests of `ima-ng` and
 * `ima-sig` entries by path (after a base policy's and an allowlist's, in order of first appearance), with `-k`
 * the digests of X.509 keys under their keyring (unless ignored), with `-b` the other ima-buf digests by name; every
 * list then sorted and de-duplicated, excludes and ignored keyrings sorted, meta.generator 3.
 */
export function policyFromLog(entries: readonly ImaEntry[], opts: PolicyFromLogOptions = {}): RuntimePolicy {
  const p = emptyRuntimePolicy();
  const base = opts.base;
  if (base !== undefined) {
    p.digests = copyMap(base.digests);
    p.excludes = [...base.excludes];
    p.keyrings = copyMap(base.keyrings);
    p.imaBuf = copyMap(base.imaBuf);
    p.ima.ignored_keyrings = [...base.ima.ignored_keyrings];
    p.ima.log_hash_alg = base.ima.log_hash_alg;
    p.verificationKeys = base.verificationKeys === null ? null : { pubkeys: [...base.verificationKeys.pubkeys], keyids: [...base.verificationKeys.keyids] };
  }
  for (const [path, list] of opts.allowlist ?? []) for (const d of list) append(p.digests, path, d);
  const takeDigests = opts.digests ?? true;
  for (const e of entries) {
    if (!takeDigests) break;
    if (e.template !== 'ima-ng' && e.template !== 'ima-sig' && !(opts.legacyIma && e.template === 'ima')) continue;
    if (opts.skipViolations && isViolation(e)) continue;
    if (opts.skipBootAggregate && e.name === 'boot_aggregate') continue;
    append(p.digests, e.name, hexOf(e.digest));
  }
  // create_policy reads the exclude list file line by line: stripped, blank lines skipped, each one validated
  if (opts.excludes !== undefined) p.excludes.push(...readExcludeList(opts.excludes.join('\n')));
  p.ima.ignored_keyrings.push(...(opts.ignoredKeyrings ?? []));
  if (opts.keyrings || opts.imaBuf) {
    const ignored = new Set(p.ima.ignored_keyrings);
    for (const e of entries) {
      if (e.template !== 'ima-buf') continue;
      if (opts.skipViolations && isViolation(e)) continue;
      const buf = e.buf ?? new Uint8Array(0);
      if ((opts.isKey ?? isX509Certificate)(buf)) {
        if (opts.keyrings && !ignored.has(e.name)) append(p.keyrings, e.name, hexOf(e.digest));
      } else if (opts.imaBuf) append(p.imaBuf, e.name, hexOf(e.digest));
    }
  }
  for (const m of [p.digests, p.keyrings, p.imaBuf]) for (const [k, v] of m) m.set(k, pySorted(v));
  p.excludes = pySorted(p.excludes);
  p.ima.ignored_keyrings = pySorted(p.ima.ignored_keyrings);
  compileExcludes(p.excludes);
  p.meta.generator = GENERATOR.legacyAllowList;
  if (opts.timestamp !== undefined) p.meta.timestamp = opts.timestamp;
  return p;
}

export interface EnrollOptions {
  /** when the fingerprint was taken (the pure core takes time as an argument) */
  timestamp: string;
  /** paths not to appraise (Python regular expressions) */
  excludes?: readonly string[];
  /** keyrings whose keys are not enrolled nor checked */
  ignoredKeyrings?: readonly string[];
}

/**
 * hueguard's golden fingerprint of a VM: the runtime policy of its first, trusted measurement. Defaults, and why:
 * every file-measuring template (`ima`, `ima-ng`, `ima-sig`); keys on keyrings enrolled (`-k`) so that signatures
 * made with them verify later; other ima-buf entries enrolled (`-b`: device-mapper tables, SELinux state are part of
 * what the VM was); violations left out (their zero digest would later accept any violation); boot_aggregate kept
 * (it pins what booted); no exclude and no ignored keyring unless given.
 */
export function enrollFingerprint(entries: readonly ImaEntry[], opts: EnrollOptions): RuntimePolicy {
  return policyFromLog(entries, {
    timestamp: opts.timestamp,
    excludes: opts.excludes,
    ignoredKeyrings: opts.ignoredKeyrings,
    keyrings: true,
    imaBuf: true,
    legacyIma: true,
    skipViolations: true,
    // the appraiser learns any key it can load (PEM or DER, certificate or bare key): enroll the same ones, so
    // that a fingerprint always accepts the log it was taken from
    isKey: (buf) => keyFromBuffer(buf) !== null,
  });
}
