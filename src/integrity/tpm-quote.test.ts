/**
 * Quote verification: the real quotes in ../shared/data/tpm, then quotes made during the test by a software TPM
 * (swtpm + tpm2-tools, as ../shared/tools/swtpm-quote.sh does), then what must fail and on which check.
 * Expected digests and nonces are computed here from the files' bytes, not by the code under test.
 */
import { strict as assert } from 'node:assert';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, createPublicKey, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { IntegrityError } from './errors.ts';
import {
  checkClock,
  checkSafe,
  clockStateOf,
  computePcrDigest,
  quoteSummary,
  verifyQuote as verifyQuoteSync,
  verifyQuoteAsync,
  verifyQuotes,
  type CheckName,
  type QuoteVerification,
  type VerifyQuoteInput,
} from './tpm-quote.ts';
import { parseAttest } from './tpm-attest.ts';
import { toHex } from './tpm-marshal.ts';
import { parsePcrFile, parsePcrValues, type PcrBanks } from './tpm-pcr-file.ts';
import { loadAttestationKey, parsePublic } from './tpm-public.ts';

const DATA = join(import.meta.dirname, '..', '..', '..', 'shared', 'data', 'tpm');

/**
 * Every input the tests below give the sync verifier, good and bad (every bit flip included): the last suite runs
 * them all again through verifyQuoteAsync and verifyQuotes, which must agree exactly.
 */
const recorded: VerifyQuoteInput[] = [];
function verifyQuote(input: VerifyQuoteInput): QuoteVerification {
  recorded.push(input);
  return verifyQuoteSync(input);
}
const read = (...p: string[]): Buffer => readFileSync(join(DATA, ...p));

// ---- the test's own readers (Buffer reads, independent of the tpm-*.ts parsers) --------------------------------

/** extraData and pcrDigest of a quote's TPMS_ATTEST. */
function handQuote(b: Buffer): { extraData: Buffer; pcrDigest: Buffer } {
  let o = 6;
  o += 2 + b.readUInt16BE(o);
  const extraData = b.subarray(o + 2, o + 2 + b.readUInt16BE(o));
  o += 2 + extraData.length + 25;
  const count = b.readUInt32BE(o);
  o += 4;
  for (let i = 0; i < count; i++) o += 3 + b[o + 2];
  return { extraData, pcrDigest: b.subarray(o + 2, o + 2 + b.readUInt16BE(o)) };
}

/** The PCR values of a tpm2-tools PCR file, in file order (= selection order). */
function handPcrValues(b: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let g = 0; g < b.readUInt32LE(132); g++) {
    const o = 136 + 532 * g;
    for (let d = 0; d < b.readUInt32LE(o); d++) out.push(b.subarray(o + 6 + 66 * d, o + 6 + 66 * d + b.readUInt16LE(o + 4 + 66 * d)));
  }
  return out;
}

/** What verifyQuote did with some bytes: a verdict, or an IntegrityError. Anything else is a test failure. */
function outcome(input: VerifyQuoteInput): QuoteVerification | IntegrityError {
  try {
    return verifyQuote(input);
  } catch (e) {
    if (e instanceof IntegrityError) return e;
    throw new Error(`verifyQuote threw something other than an IntegrityError: ${String(e)}`);
  }
}

function assertFails(input: VerifyQuoteInput, check: CheckName): QuoteVerification {
  const r = verifyQuote(input);
  assert.equal(r.valid, false);
  assert.equal(r.failed, check, JSON.stringify(r.checks));
  return r;
}

function withChangedPcr(banks: PcrBanks, bank: 'sha1' | 'sha256', pcr: number): PcrBanks {
  const copy: PcrBanks = new Map([...banks].map(([k, m]) => [k, new Map(m)]));
  const v = Uint8Array.from(copy.get(bank)?.get(pcr) ?? []);
  v[0] ^= 1;
  copy.get(bank)?.set(pcr, v);
  return copy;
}

// ---- real files -------------------------------------------------------------------------------------------------

describe('the HPE hardware-TPM quote', () => {
  const attest = read('hpe', 'quote_message_tpms_attest.bin');
  const signature = read('hpe', 'quote_signature_tpmt_signature.bin');
  const ak = read('hpe', 'ak_tpm2b_public.bin');
  const pcrFile = read('hpe', 'quote_subject_data_pcrs.bin');

  it('verifies (RSASSA/SHA-256) with its TPM2B_PUBLIC AK, its PCR values and its extraData as the nonce', () => {
    const h = handQuote(attest);
    const r = verifyQuote({ attest, signature, ak, nonce: h.extraData, pcrs: parsePcrFile(pcrFile) });
    assert.equal(r.valid, true, JSON.stringify(r.checks));
    assert.deepEqual(r.checks.map((c) => c.name), ['magic', 'type', 'signature', 'nonce', 'pcrDigest', 'safe']);
    assert.equal(r.nonce, h.extraData.toString('hex'));
    assert.deepEqual(quoteSummary(r), { valid: true, failed: null, nonce: h.extraData.toString('hex'), pcrDigest: h.pcrDigest.toString('hex') });
  });

  it('its pcrDigest is sha256 of PCRs 0-16 as the PCR file holds them', () => {
    const values = handPcrValues(pcrFile);
    assert.equal(values.length, 17);
    const expected = createHash('sha256').update(Buffer.concat(values)).digest();
    assert.deepEqual(expected, handQuote(attest).pcrDigest);
    const a = parseAttest(attest);
    assert.equal(toHex(computePcrDigest(a.quote?.pcrSelect ?? [], parsePcrFile(pcrFile), 'sha256') as Uint8Array), expected.toString('hex'));
  });

  it('a changed PCR fails pcrDigest; a wrong nonce fails nonce; the PEM of the same key verifies too', () => {
    const pcrs = parsePcrFile(pcrFile);
    assertFails({ attest, signature, ak, pcrs: withChangedPcr(pcrs, 'sha256', 16) }, 'pcrDigest');
    assertFails({ attest, signature, ak, nonce: Buffer.from('Sb7tNlqsd32uI1ZPWtDt') }, 'nonce');
    const pem = Buffer.from(parsePublic(ak).key.export({ format: 'pem', type: 'spki' }) as string);
    assert.equal(verifyQuote({ attest, signature, ak: pem, pcrs }).valid, true);
  });
});

describe('the swtpm quotes in data/tpm/swtpm', () => {
  const nonceHex = read('swtpm', 'nonce.hex').toString('utf8').trim();
  // tpm2_quote -q "$NONCE" takes the hex string as hex: extraData is its 20 bytes, not its 40 characters
  const nonce = Buffer.from(nonceHex, 'hex');
  const q = (name: string) => ({ attest: read('swtpm', `${name}.msg`), signature: read('swtpm', `${name}.sig`) });
  const rsaPem = read('swtpm', 'ak.pub.pem');
  const eccPem = read('swtpm', 'ak_ecc.pub.pem');

  it('quote.* (RSASSA) verifies with ak.pub.pem, nonce.hex and quote.pcrs', () => {
    const pcrFile = read('swtpm', 'quote.pcrs');
    const r = verifyQuote({ ...q('quote'), ak: rsaPem, nonce, pcrs: parsePcrFile(pcrFile) });
    assert.equal(r.valid, true, JSON.stringify(r.checks));
    assert.equal(r.nonce, nonceHex);
    // sha1:0,10 then sha256:0,10, hashed with the signature's sha256 (not the banks' own hashes)
    assert.equal(r.pcrDigest, createHash('sha256').update(Buffer.concat(handPcrValues(pcrFile))).digest('hex'));
  });

  it('quote_ecc.* (ECDSA P-256) verifies with ak_ecc.pub.pem', () => {
    const r = verifyQuote({ ...q('quote_ecc'), ak: eccPem, nonce, pcrs: parsePcrFile(read('swtpm', 'quote_ecc.pcrs')) });
    assert.equal(r.valid, true, JSON.stringify(r.checks));
  });

  it('quote_plain.* (a bare PKCS#1 signature) verifies with signatureFormat plain and its -F values file', () => {
    const { attest, signature } = q('quote_plain');
    const pcrs = parsePcrValues(read('swtpm', 'quote_plain.pcrvalues'), parseAttest(attest).quote?.pcrSelect ?? []);
    const r = verifyQuote({ attest, signature, ak: rsaPem, nonce, pcrs, signatureFormat: 'plain' });
    assert.equal(r.valid, true, JSON.stringify(r.checks));
    assert.ok(outcome({ attest, signature, ak: rsaPem }) instanceof IntegrityError, 'a plain signature is not a TPMT_SIGNATURE');
  });

  it('the three were made in order: each clock is at or after the one before, never the reverse', () => {
    const [a, b, c] = ['quote', 'quote_plain', 'quote_ecc'].map((n) => parseAttest(read('swtpm', `${n}.msg`)));
    assert.equal(checkClock(b, clockStateOf(a)).ok, true);
    assert.equal(checkClock(c, clockStateOf(b)).ok, true);
    assertFails({ ...q('quote'), ak: rsaPem, previousClock: clockStateOf(c) }, 'clock');
  });

  it('wrong key and wrong nonce fail on their checks', () => {
    assertFails({ ...q('quote'), ak: eccPem, nonce }, 'signature');
    assertFails({ ...q('quote_ecc'), ak: rsaPem, nonce }, 'signature');
    assertFails({ ...q('quote'), ak: rsaPem, nonce: Buffer.from(nonceHex, 'latin1') }, 'nonce');
  });
});

describe('checks on their own', () => {
  const a = parseAttest(read('hpe', 'quote_message_tpms_attest.bin'));

  it('safe = 0 fails safe', () => {
    assert.equal(checkSafe(a).ok, true);
    const unsafe = { ...a, clockInfo: { ...a.clockInfo, safe: 0 } };
    assert.equal(checkSafe(unsafe).ok, false);
    assert.equal(checkSafe(unsafe).name, 'safe');
  });

  it('clock: resetCount and clock never go back; restartCount only within one resetCount', () => {
    const c = clockStateOf(a);
    assert.equal(checkClock(a, c).ok, true);
    assert.equal(checkClock(a, { ...c, clock: c.clock + 1n }).ok, false);
    assert.equal(checkClock(a, { ...c, resetCount: c.resetCount + 1 }).ok, false);
    assert.equal(checkClock(a, { ...c, restartCount: c.restartCount + 1 }).ok, false);
    // after a TPM Reset restartCount starts again at 0: not a rollback
    assert.equal(checkClock(a, { ...c, resetCount: c.resetCount - 1, restartCount: 5 }).ok, true);
  });

  it('a quote with safe = 0 bytes fails the signature first, and safe too', () => {
    const b = Buffer.from(read('hpe', 'quote_message_tpms_attest.bin'));
    const safeAt = 6 + 2 + b.readUInt16BE(6);
    const at = safeAt + 2 + b.readUInt16BE(safeAt) + 16;
    assert.equal(b[at], 1);
    b[at] = 0;
    const r = assertFails({ attest: b, signature: read('hpe', 'quote_signature_tpmt_signature.bin'), ak: read('hpe', 'ak_tpm2b_public.bin') }, 'signature');
    assert.equal(r.checks.find((x) => x.name === 'safe')?.ok, false);
  });
});

// ---- live quotes from a software TPM ----------------------------------------------------------------------------

const TOOLS = ['swtpm', 'tpm2_createek', 'tpm2_createak', 'tpm2_quote', 'tpm2_pcrextend', 'tpm2_flushcontext', 'tpm2_readpublic'];
const missing = TOOLS.filter((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0);
const skipLive = missing.length > 0 ? `swtpm/tpm2-tools not installed (missing: ${missing.join(', ')})` : false;
if (skipLive) console.log(`# skipping live swtpm quotes: ${skipLive}`);

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

async function freePortPair(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const p = 20000 + Math.floor(Math.random() * 40000);
    if ((await canListen(p)) && (await canListen(p + 1))) return p;
  }
  throw new Error('no free pair of loopback ports');
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect(port, '127.0.0.1');
    c.once('connect', () => c.end(() => resolve(true)));
    c.once('error', () => resolve(false));
  });
}

interface Live {
  dir: string;
  nonce: Buffer;
  file: (name: string) => Buffer;
}

describe('quotes made now by swtpm', { skip: skipLive }, () => {
  let swtpm: ChildProcess | undefined;
  let state = '';
  let live: Live;

  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hg-quote-'));
    state = mkdtempSync(join(tmpdir(), 'hg-swtpm-'));
    const port = await freePortPair();
    swtpm = spawn(
      'swtpm',
      ['socket', '--tpm2', '--tpmstate', `dir=${state}`, '--server', `type=tcp,port=${port},bindaddr=127.0.0.1`,
        '--ctrl', `type=tcp,port=${port + 1},bindaddr=127.0.0.1`, '--flags', 'not-need-init,startup-clear'],
      { stdio: 'ignore' },
    );
    // should the test process die before `after`, do not leave the TPM behind
    process.once('exit', () => swtpm?.kill());
    for (let i = 0; i < 100 && !(await accepts(port)); i++) await new Promise((r) => setTimeout(r, 50));
    const env = { ...process.env, TPM2TOOLS_TCTI: `swtpm:host=127.0.0.1,port=${port}` };
    const run = (cmd: string, ...args: string[]) => execFileSync(cmd, args, { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] }).toString('utf8');
    // no resource manager: flush transient objects and sessions after every command, as the script does
    const tpm = (cmd: string, ...args: string[]) => {
      const out = run(cmd, ...args);
      run('tpm2_flushcontext', '-t');
      run('tpm2_flushcontext', '-s');
      return out;
    };
    const nonce = randomBytes(20);
    const n = nonce.toString('hex');
    tpm('tpm2_createek', '-c', 'ek.ctx', '-G', 'rsa', '-u', 'ek.pub');
    for (const [ak, alg, hash, scheme] of [
      ['ak', 'rsa', 'sha256', 'rsassa'],
      ['ak2', 'rsa', 'sha256', 'rsassa'],
      ['ak_ecc', 'ecc', 'sha256', 'ecdsa'],
      ['ak_pss', 'rsa', 'sha384', 'rsapss'],
      ['ak_p384', 'ecc384', 'sha384', 'ecdsa'],
    ]) {
      tpm('tpm2_createak', '-C', 'ek.ctx', '-c', `${ak}.ctx`, '-G', alg, '-g', hash, '-s', scheme, '-u', `${ak}.pub`, '-n', `${ak}.name`);
      tpm('tpm2_readpublic', '-c', `${ak}.ctx`, '-f', 'pem', '-o', `${ak}.pem`);
    }
    tpm('tpm2_pcrextend', `10:sha1=${createHash('sha1').update('hello ima').digest('hex')},sha256=${createHash('sha256').update('hello ima').digest('hex')}`);
    tpm('tpm2_pcrextend', `1:sha256=${createHash('sha256').update('firmware').digest('hex')}`);
    const quote = (name: string, ak: string, pcrs: string, hash: string, ...extra: string[]) =>
      tpm('tpm2_quote', '-c', `${ak}.ctx`, '-l', pcrs, '-q', n, '-g', hash, '-m', `${name}.msg`, '-s', `${name}.sig`, ...extra);
    quote('rsa', 'ak', 'sha1:0,10+sha256:0,10', 'sha256', '-o', 'rsa.pcrs');
    quote('rsa_plain', 'ak', 'sha256:10', 'sha256', '-f', 'plain', '-o', 'rsa_plain.values', '-F', 'values');
    quote('ecc', 'ak_ecc', 'sha256:0,1,10', 'sha256', '-o', 'ecc.pcrs');
    quote('ecc_plain', 'ak_ecc', 'sha256:10', 'sha256', '-f', 'plain', '-o', 'ecc_plain.pcrs');
    quote('pss', 'ak_pss', 'sha1:10+sha256:1,10', 'sha384', '--scheme', 'rsapss', '-o', 'pss.pcrs');
    quote('p384', 'ak_p384', 'sha256:10', 'sha384', '-o', 'p384.pcrs');
    quote('rsa_later', 'ak', 'sha256:10', 'sha256', '-o', 'rsa_later.pcrs');
    live = { dir, nonce, file: (name) => readFileSync(join(dir, name)) };
  });

  after(async () => {
    if (swtpm && swtpm.exitCode === null) {
      const gone = new Promise((r) => swtpm?.once('exit', r));
      swtpm.kill('SIGTERM');
      await gone;
    }
    if (state) rmSync(state, { recursive: true, force: true });
    if (live) rmSync(live.dir, { recursive: true, force: true });
  });

  const input = (q: string, ak: string, extra: Partial<VerifyQuoteInput> = {}): VerifyQuoteInput => ({
    attest: live.file(`${q}.msg`),
    signature: live.file(`${q}.sig`),
    ak: live.file(`${ak}.pub`),
    nonce: live.nonce,
    pcrs: parsePcrFile(live.file(`${q}.pcrs`)),
    ...extra,
  });
  const QUOTES: [string, string][] = [['rsa', 'ak'], ['ecc', 'ak_ecc'], ['pss', 'ak_pss'], ['p384', 'ak_p384'], ['rsa_later', 'ak']];

  it('RSASSA, ECDSA P-256, RSAPSS/SHA-384 and ECDSA P-384 quotes verify, with the TPM2B_PUBLIC and the PEM AK', () => {
    for (const [q, ak] of QUOTES) {
      const r = verifyQuote(input(q, ak));
      assert.equal(r.valid, true, `${q}: ${JSON.stringify(r.checks)}`);
      assert.equal(r.nonce, live.nonce.toString('hex'));
      assert.equal(r.pcrDigest, handQuote(live.file(`${q}.msg`)).pcrDigest.toString('hex'));
      assert.equal(verifyQuote(input(q, ak, { ak: live.file(`${ak}.pem`) })).valid, true, q);
    }
  });

  it('pcrDigest is the signature hash of the values, whatever the banks: sha384 for the PSS and P-384 quotes', () => {
    for (const [q, hash] of [['rsa', 'sha256'], ['ecc', 'sha256'], ['pss', 'sha384'], ['p384', 'sha384']]) {
      const expected = createHash(hash).update(Buffer.concat(handPcrValues(live.file(`${q}.pcrs`)))).digest();
      assert.deepEqual(handQuote(live.file(`${q}.msg`)).pcrDigest, expected, q);
    }
  });

  it('plain signatures: PKCS#1 for RSA, DER for ECDSA', () => {
    const attest = live.file('rsa_plain.msg');
    const pcrs = parsePcrValues(live.file('rsa_plain.values'), parseAttest(attest).quote?.pcrSelect ?? []);
    const r = verifyQuote({ attest, signature: live.file('rsa_plain.sig'), ak: live.file('ak.pub'), nonce: live.nonce, pcrs, signatureFormat: 'plain' });
    assert.equal(r.valid, true, JSON.stringify(r.checks));
    assert.equal(live.file('ecc_plain.sig')[0], 0x30);
    const e = verifyQuote({ ...input('ecc_plain', 'ak_ecc'), signatureFormat: 'plain' });
    assert.equal(e.valid, true, JSON.stringify(e.checks));
  });

  it('the AK Names are what tpm2_createak wrote; the TPM2B_PUBLIC key is the PEM key', () => {
    for (const ak of ['ak', 'ak2', 'ak_ecc', 'ak_pss', 'ak_p384']) {
      const pub = parsePublic(live.file(`${ak}.pub`));
      assert.deepEqual(Buffer.from(pub.name), live.file(`${ak}.name`), ak);
      assert.deepEqual(pub.key.export({ format: 'der', type: 'spki' }), createPublicKey(live.file(`${ak}.pem`)).export({ format: 'der', type: 'spki' }));
    }
  });

  it('a wrong nonce fails nonce', () => {
    for (const [q, ak] of QUOTES) assertFails(input(q, ak, { nonce: randomBytes(20) }), 'nonce');
  });

  it('the other AK fails signature', () => {
    assertFails(input('rsa', 'ak2'), 'signature');
    assertFails(input('rsa', 'ak_ecc'), 'signature');
    assertFails(input('ecc', 'ak'), 'signature');
    assertFails(input('ecc', 'ak_p384'), 'signature');
    assertFails(input('pss', 'ak'), 'signature'); // RSAPSS signature, RSASSA key
    assertFails(input('rsa', 'ak2', { ak: live.file('ak2.pem') }), 'signature'); // the same without attributes
  });

  it('a changed or missing PCR value fails pcrDigest', () => {
    const pcrs = parsePcrFile(live.file('rsa.pcrs'));
    assertFails(input('rsa', 'ak', { pcrs: withChangedPcr(pcrs, 'sha256', 10) }), 'pcrDigest');
    assertFails(input('rsa', 'ak', { pcrs: withChangedPcr(pcrs, 'sha1', 0) }), 'pcrDigest');
    const fewer: PcrBanks = new Map([...pcrs].map(([k, m]) => [k, new Map([...m].filter(([i]) => i !== 0))]));
    const r = assertFails(input('rsa', 'ak', { pcrs: fewer }), 'pcrDigest');
    assert.match(r.checks.find((c) => c.name === 'pcrDigest')?.detail ?? '', /PCR sha1:0/);
  });

  it('a clock going backwards fails clock; forwards passes', () => {
    const first = parseAttest(live.file('rsa.msg'));
    const later = parseAttest(live.file('rsa_later.msg'));
    assert.ok(later.clockInfo.clock >= first.clockInfo.clock);
    assert.equal(verifyQuote(input('rsa_later', 'ak', { previousClock: clockStateOf(first) })).valid, true);
    assertFails(input('rsa', 'ak', { previousClock: clockStateOf(later) }), 'clock');
  });

  it('a verifier seeing an AK without the restricted attribute fails signature', () => {
    const pub = Buffer.from(live.file('ak.pub'));
    pub.writeUInt32BE(pub.readUInt32BE(6) & ~(1 << 16), 6);
    const r = assertFails(input('rsa', 'ak', { ak: pub }), 'signature');
    assert.match(r.checks[2].detail, /restricted/);
  });

  /** Flips every bit of one input; each must give an invalid verdict or an IntegrityError. */
  function flipEveryBit(field: 'attest' | 'signature' | 'ak', base: VerifyQuoteInput, name?: Uint8Array): { invalid: number; errors: number; stillValidAt: Set<number> } {
    const original = base[field] as Buffer;
    let invalid = 0;
    let errors = 0;
    const stillValidAt = new Set<number>();
    for (let i = 0; i < original.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const b = Buffer.from(original);
        b[i] ^= 1 << bit;
        const r = outcome({ ...base, [field]: b });
        if (r instanceof IntegrityError) errors++;
        else if (!r.valid) invalid++;
        else {
          // only possible for the AK: attribute bits that do not change the key; its Name then differs
          assert.equal(field, 'ak', `flipping bit ${bit} of byte ${i} of the ${field} still verifies`);
          assert.notDeepEqual(Buffer.from(parsePublic(b).name), Buffer.from(name ?? []));
          stillValidAt.add(i);
        }
      }
    }
    return { invalid, errors, stillValidAt };
  }

  it('every single-bit flip of the attest, the signature or the AK is caught (or, in the AK, changes its Name)', { timeout: 120_000 }, (t) => {
    for (const [q, ak] of QUOTES.slice(0, 4)) {
      const base = input(q, ak, { ak: loadAttestationKey(live.file(`${ak}.pub`)) });
      const a = flipEveryBit('attest', base);
      const s = flipEveryBit('signature', base);
      const k = flipEveryBit('ak', { ...base, ak: live.file(`${ak}.pub`) }, live.file(`${ak}.name`));
      // bits that still verify are objectAttributes bits (bytes 6-9) a verifier cannot tell from the key itself
      assert.ok([...k.stillValidAt].every((i) => i >= 6 && i <= 9), `${q}: ${[...k.stillValidAt]}`);
      t.diagnostic(`${q}: attest ${a.invalid} invalid / ${a.errors} errors; signature ${s.invalid} / ${s.errors}; AK ${k.invalid} / ${k.errors}, still valid in bytes ${[...k.stillValidAt].join(',') || 'none'}`);
    }
  });

  it('summary for the CLI', () => {
    const r = verifyQuote(input('ecc', 'ak_ecc'));
    const json = JSON.parse(JSON.stringify(quoteSummary(r)));
    assert.deepEqual(Object.keys(json), ['valid', 'failed', 'nonce', 'pcrDigest']);
    assert.equal(json.nonce, live.nonce.toString('hex'));
  });
});

// ---- speed --------------------------------------------------------------------------------------------------------

describe('speed', () => {
  it('verifications per second (reported; the floor only catches pathologies)', async (t) => {
    // the unrecorded verifier: these 6,000 calls need not be checked again by the last suite
    const rate = (input: VerifyQuoteInput): number => {
      for (let i = 0; i < 200; i++) assert.equal(verifyQuoteSync(input).valid, true);
      const n = 3000;
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < n; i++) verifyQuoteSync(input);
      return Math.round(n / (Number(process.hrtime.bigint() - t0) / 1e9));
    };
    const rateAsync = async (input: VerifyQuoteInput): Promise<number> => {
      const batch = new Array<VerifyQuoteInput>(3000).fill(input);
      await verifyQuotes(batch.slice(0, 200));
      const t0 = process.hrtime.bigint();
      const rs = await verifyQuotes(batch);
      assert.ok(rs.every((r) => !(r instanceof IntegrityError) && r.valid));
      return Math.round(batch.length / (Number(process.hrtime.bigint() - t0) / 1e9));
    };
    const hpe = {
      attest: read('hpe', 'quote_message_tpms_attest.bin'),
      signature: read('hpe', 'quote_signature_tpmt_signature.bin'),
      ak: read('hpe', 'ak_tpm2b_public.bin'),
      pcrs: parsePcrFile(read('hpe', 'quote_subject_data_pcrs.bin')),
    };
    const ecc = {
      attest: read('swtpm', 'quote_ecc.msg'),
      signature: read('swtpm', 'quote_ecc.sig'),
      ak: loadAttestationKey(read('swtpm', 'ak_ecc.pub.pem')),
      nonce: Buffer.from(read('swtpm', 'nonce.hex').toString('utf8').trim(), 'hex'),
      pcrs: parsePcrFile(read('swtpm', 'quote_ecc.pcrs')),
    };
    const rsa = rate(hpe);
    const ec = rate(ecc);
    t.diagnostic(`RSASSA-2048 (HPE, all checks): ${rsa}/s; ECDSA P-256 (swtpm, all checks): ${ec}/s — one thread`);
    t.diagnostic(`verifyQuotes, 64 in flight: RSASSA-2048 ${await rateAsync(hpe)}/s; ECDSA P-256 ${await rateAsync(ecc)}/s — the thread pool`);
    assert.ok(rsa > 1000 && ec > 1000, `${rsa}/s, ${ec}/s`);
  });
});

// ---- the async verifier -------------------------------------------------------------------------------------------

/** A verdict, or the IntegrityError's code and message (anything else thrown fails the test). */
type Outcome = QuoteVerification | { error: string; message: string };
const asOutcome = (e: unknown): Outcome => {
  if (e instanceof IntegrityError) return { error: e.code, message: e.message };
  throw e;
};
function syncOutcome(input: VerifyQuoteInput): Outcome {
  try {
    return verifyQuoteSync(input);
  } catch (e) {
    return asOutcome(e);
  }
}

describe('verifyQuoteAsync and verifyQuotes (signatures verified in the thread pool)', () => {
  it('give what verifyQuote gave, check by check, on every input above (real files, live quotes, every bit flip)', { timeout: 120_000 }, async (t) => {
    const inputs = [...recorded];
    // the suites above must have fed it good and bad quotes, errors included, or this proves little
    assert.ok(inputs.length > 100, `${inputs.length} inputs`);
    const want = inputs.map(syncOutcome);
    const tally = new Map<string, number>();
    for (const w of want) {
      const k = 'error' in w ? `error ${w.error}` : w.valid ? 'valid' : `failed ${w.failed}`;
      tally.set(k, (tally.get(k) ?? 0) + 1);
    }
    for (const k of ['valid', 'failed signature', 'failed nonce', 'failed pcrDigest', 'failed clock']) assert.ok(tally.has(k), `no input gave ${k}`);
    t.diagnostic([...tally].map(([k, n]) => `${k}: ${n}`).join('; '));
    // one at a time
    for (let i = 0; i < inputs.length; i += 97) {
      const got = await verifyQuoteAsync(inputs[i]).then((r) => r as Outcome, asOutcome);
      assert.deepEqual(got, want[i], `input ${i}`);
    }
    // all of them, many in flight, in input order
    const batch = (await verifyQuotes(inputs)).map((r) => (r instanceof IntegrityError ? asOutcome(r) : r));
    assert.equal(batch.length, want.length);
    for (let i = 0; i < want.length; i++) assert.deepEqual(batch[i], want[i], `input ${i}`);
    // and with one in flight
    const one = await verifyQuotes(inputs.slice(0, 50), { inFlight: 1 });
    for (let i = 0; i < one.length; i++) assert.deepEqual(one[i] instanceof IntegrityError ? asOutcome(one[i]) : one[i], want[i]);
  });

  it('an unreadable quote rejects with the same IntegrityError; an empty batch is empty', async () => {
    const input: VerifyQuoteInput = { attest: Buffer.alloc(3), signature: Buffer.alloc(0), ak: read('hpe', 'ak_tpm2b_public.bin') };
    const want = syncOutcome(input);
    assert.ok('error' in want);
    await assert.rejects(verifyQuoteAsync(input), (e: unknown) => e instanceof IntegrityError && e.code === want.error && e.message === want.message);
    assert.deepEqual(await verifyQuotes([]), []);
  });
});

