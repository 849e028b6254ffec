/**
 * TPM structure parsing against the real files in ../shared/data/tpm. Expectations come from the files themselves,
 * read here by small hand-written readers (Buffer.read*), never from the parsers under test.
 */
import { strict as assert } from 'node:assert';
import { createHash, createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { IntegrityError } from './errors.ts';
import { parseAttest, parseSignature } from './tpm-attest.ts';
import { ecdsaDer, ecdsaP1363, toHex } from './tpm-marshal.ts';
import { parsePcrFile, parsePcrValues } from './tpm-pcr-file.ts';
import { loadAttestationKey, parsePublic, type TpmPublicEcc, type TpmPublicRsa } from './tpm-public.ts';

const DATA = join(import.meta.dirname, '..', '..', '..', 'shared', 'data', 'tpm');
const read = (...p: string[]): Buffer => readFileSync(join(DATA, ...p));
const HPE = {
  attest: read('hpe', 'quote_message_tpms_attest.bin'),
  sig: read('hpe', 'quote_signature_tpmt_signature.bin'),
  pub: read('hpe', 'ak_tpm2b_public.bin'),
  pcrs: read('hpe', 'quote_subject_data_pcrs.bin'),
};
const SW = {
  msg: read('swtpm', 'quote.msg'),
  sig: read('swtpm', 'quote.sig'),
  pcrs: read('swtpm', 'quote.pcrs'),
  eccMsg: read('swtpm', 'quote_ecc.msg'),
  eccSig: read('swtpm', 'quote_ecc.sig'),
  eccPcrs: read('swtpm', 'quote_ecc.pcrs'),
  plainMsg: read('swtpm', 'quote_plain.msg'),
  plainValues: read('swtpm', 'quote_plain.pcrvalues'),
  akPem: read('swtpm', 'ak.pub.pem'),
  akEccPem: read('swtpm', 'ak_ecc.pub.pem'),
  akName: read('swtpm', 'ak.name'),
  akEccName: read('swtpm', 'ak_ecc.name'),
  pcr10After: read('swtpm', 'pcr10_after.txt').toString('utf8'),
};

// ---- hand-written readers: the test's own view of the bytes --------------------------------------------------

/** TPMS_ATTEST of a quote, field by field with Buffer reads. */
function handAttest(b: Buffer) {
  let o = 6;
  const qs = b.readUInt16BE(o);
  o += 2 + qs;
  const ed = b.readUInt16BE(o);
  const extraData = b.subarray(o + 2, o + 2 + ed);
  o += 2 + ed;
  const clock = b.readBigUInt64BE(o);
  const resetCount = b.readUInt32BE(o + 8);
  const restartCount = b.readUInt32BE(o + 12);
  const safe = b[o + 16];
  const firmwareVersion = b.readBigUInt64BE(o + 17);
  o += 25;
  const count = b.readUInt32BE(o);
  o += 4;
  const selection: { hashAlg: number; pcrs: number[] }[] = [];
  for (let i = 0; i < count; i++) {
    const hashAlg = b.readUInt16BE(o);
    const size = b[o + 2];
    const pcrs: number[] = [];
    for (let j = 0; j < size; j++) for (let k = 0; k < 8; k++) if (b[o + 3 + j] & (1 << k)) pcrs.push(j * 8 + k);
    selection.push({ hashAlg, pcrs });
    o += 3 + size;
  }
  const dl = b.readUInt16BE(o);
  const pcrDigest = b.subarray(o + 2, o + 2 + dl);
  return { magic: b.readUInt32BE(0), type: b.readUInt16BE(4), extraData, clock, resetCount, restartCount, safe, firmwareVersion, selection, pcrDigest, end: o + 2 + dl };
}

/** tpm2-tools' PCR file (little-endian): the selection and the values in file order. */
function handPcrFile(b: Buffer) {
  const count = b.readUInt32LE(0);
  const selection: { hashAlg: number; pcrs: number[] }[] = [];
  for (let i = 0; i < count; i++) {
    const o = 4 + 8 * i;
    const pcrs: number[] = [];
    for (let j = 0; j < b[o + 2]; j++) for (let k = 0; k < 8; k++) if (b[o + 3 + j] & (1 << k)) pcrs.push(j * 8 + k);
    selection.push({ hashAlg: b.readUInt16LE(o), pcrs });
  }
  const groups = b.readUInt32LE(132);
  const values: Buffer[] = [];
  for (let g = 0; g < groups; g++) {
    const o = 136 + 532 * g;
    const n = b.readUInt32LE(o);
    for (let d = 0; d < n; d++) {
      const s = b.readUInt16LE(o + 4 + 66 * d);
      values.push(b.subarray(o + 6 + 66 * d, o + 6 + 66 * d + s));
    }
  }
  return { selection, values };
}

const BANK: Record<number, string> = { 0x0004: 'sha1', 0x000b: 'sha256' };

/** Asserts that f throws an IntegrityError (optionally of a code) whose place names a TPM structure and an offset. */
function throwsTpm(f: () => unknown, code?: string): IntegrityError {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof IntegrityError, `not an IntegrityError: ${String(e)}`);
    if (code) assert.equal(e.code, code, e.message);
    assert.ok(e.code.startsWith('tpm_'), e.message);
    return e;
  }
  assert.fail('did not throw');
}

// ---- TPMS_ATTEST ----------------------------------------------------------------------------------------------

describe('parseAttest', () => {
  for (const [name, bytes] of [['hpe', HPE.attest], ['swtpm quote', SW.msg], ['swtpm ecc', SW.eccMsg], ['swtpm plain', SW.plainMsg]] as const) {
    it(`reads the ${name} quote as the hand reader does`, () => {
      const h = handAttest(bytes);
      assert.equal(h.end, bytes.length);
      const a = parseAttest(bytes);
      assert.equal(a.magic, h.magic);
      assert.equal(a.type, h.type);
      assert.equal(a.magic, 0xff544347);
      assert.equal(a.type, 0x8018);
      assert.deepEqual(Buffer.from(a.extraData), h.extraData);
      assert.deepEqual(a.clockInfo, { clock: h.clock, resetCount: h.resetCount, restartCount: h.restartCount, safe: h.safe });
      assert.equal(a.firmwareVersion, h.firmwareVersion);
      assert.ok(a.quote);
      assert.deepEqual(a.quote.pcrSelect.map((s) => ({ hashAlg: s.hashAlg, pcrs: s.pcrs })), h.selection);
      assert.deepEqual(a.quote.pcrSelect.map((s) => s.bank), h.selection.map((s) => BANK[s.hashAlg]));
      assert.deepEqual(Buffer.from(a.quote.pcrDigest), h.pcrDigest);
    });
  }

  it('hpe: the nonce is the 20 ASCII characters of a Keylime nonce; PCRs 0-16 of sha256', () => {
    const a = parseAttest(HPE.attest);
    assert.match(Buffer.from(a.extraData).toString('latin1'), /^[A-Za-z0-9]{20}$/);
    assert.deepEqual(a.quote?.pcrSelect, [{ hashAlg: 0x000b, bank: 'sha256', pcrs: Array.from({ length: 17 }, (_, i) => i) }]);
  });

  it('swtpm: extraData is nonce.hex decoded (tpm2_quote -q takes hex)', () => {
    const nonce = Buffer.from(read('swtpm', 'nonce.hex').toString('utf8').trim(), 'hex');
    for (const m of [SW.msg, SW.eccMsg, SW.plainMsg]) assert.deepEqual(Buffer.from(parseAttest(m).extraData), nonce);
  });

  it('copies what it keeps: changing the input afterwards changes nothing', () => {
    const b = Buffer.from(HPE.attest);
    const a = parseAttest(b);
    const before = toHex(a.extraData);
    b.fill(0);
    assert.equal(toHex(a.extraData), before);
  });

  it('every truncation is tpm_truncated with the offset inside the input', () => {
    for (let n = 0; n < HPE.attest.length; n++) {
      const e = throwsTpm(() => parseAttest(HPE.attest.subarray(0, n)), 'tpm_truncated');
      assert.ok(e.place.offset !== undefined && e.place.offset <= n, e.message);
      assert.match(e.place.field ?? '', /^TPMS_ATTEST\./);
    }
  });

  it('trailing bytes are tpm_bad_structure', () => {
    const e = throwsTpm(() => parseAttest(Buffer.concat([HPE.attest, Buffer.from([0])])), 'tpm_bad_structure');
    assert.equal(e.place.offset, HPE.attest.length);
  });

  it('a size beyond the type limit is tpm_bad_structure at that size field', () => {
    const b = Buffer.from(HPE.attest);
    b.writeUInt16BE(0x0100, 6); // qualifiedSigner.size = 256 > 66
    const e = throwsTpm(() => parseAttest(b), 'tpm_bad_structure');
    assert.equal(e.place.offset, 6);
    assert.equal(e.place.field, 'TPMS_ATTEST.qualifiedSigner.size');
  });

  it('a wrong magic or type is read, not rejected: those are the verifier’s checks', () => {
    const b = Buffer.from(HPE.attest);
    b.writeUInt32BE(0x12345678, 0);
    assert.equal(parseAttest(b).magic, 0x12345678);
    b.writeUInt16BE(0x8017, 4); // certify: the rest is kept unread
    const a = parseAttest(b);
    assert.equal(a.quote, undefined);
    assert.equal(a.attested?.length, HPE.attest.length - 0x59);
  });
});

// ---- TPMT_SIGNATURE -------------------------------------------------------------------------------------------

describe('parseSignature', () => {
  it('hpe: RSASSA / SHA-256 with a 256-byte signature', () => {
    const s = parseSignature(HPE.sig);
    assert.equal(s.scheme, 'rsassa');
    assert.equal(s.sigAlg, HPE.sig.readUInt16BE(0));
    assert.equal(s.hash, 'sha256');
    assert.ok(s.scheme === 'rsassa');
    assert.deepEqual(Buffer.from(s.sig), HPE.sig.subarray(6, 6 + HPE.sig.readUInt16BE(4)));
    assert.equal(s.sig.length, 256);
  });

  it('swtpm ECDSA: r and s, each 32 bytes; P1363 and DER forms', () => {
    const s = parseSignature(SW.eccSig);
    assert.ok(s.scheme === 'ecdsa');
    const rl = SW.eccSig.readUInt16BE(4);
    assert.deepEqual(Buffer.from(s.r), SW.eccSig.subarray(6, 6 + rl));
    assert.deepEqual(Buffer.from(s.s), SW.eccSig.subarray(8 + rl));
    const p = ecdsaP1363(s.r, s.s, 32);
    assert.deepEqual(Buffer.from(p ?? []), Buffer.concat([s.r, s.s]));
    assert.equal(ecdsaP1363(s.r, s.s, 16), null);
    const der = Buffer.from(ecdsaDer(s.r, s.s));
    assert.equal(der[0], 0x30);
    assert.equal(der[1], der.length - 2);
    // a short r (leading zeros dropped by some encoders) is padded back
    const short = ecdsaP1363(Uint8Array.from([0, 0, 5]), Uint8Array.from([7]), 4);
    assert.deepEqual(Array.from(short ?? []), [0, 0, 0, 5, 0, 0, 0, 7]);
  });

  it('other algorithms and hashes are tpm_unsupported', () => {
    const hmac = Buffer.from('0005000b0020' + '00'.repeat(32), 'hex');
    assert.match(throwsTpm(() => parseSignature(hmac), 'tpm_unsupported').message, /0x0005/);
    throwsTpm(() => parseSignature(Buffer.from('0010', 'hex')), 'tpm_unsupported');
    const b = Buffer.from(HPE.sig);
    b.writeUInt16BE(0x0010, 2); // hash NULL
    throwsTpm(() => parseSignature(b), 'tpm_unsupported');
  });

  it('truncation and trailing bytes', () => {
    for (let n = 0; n < SW.eccSig.length; n++) throwsTpm(() => parseSignature(SW.eccSig.subarray(0, n)), 'tpm_truncated');
    throwsTpm(() => parseSignature(Buffer.concat([HPE.sig, Buffer.from([1])])), 'tpm_bad_structure');
    const b = Buffer.from(HPE.sig);
    b.writeUInt16BE(600, 4);
    throwsTpm(() => parseSignature(b), 'tpm_bad_structure');
  });
});

// ---- TPM2B_PUBLIC ---------------------------------------------------------------------------------------------

/** A TPMT_PUBLIC as `tpm2_createak -G rsa -g sha256 -s rsassa` makes it, rebuilt from the PEM's modulus. */
function createakRsaPublic(pem: Buffer): Buffer {
  const jwk = createPublicKey(pem).export({ format: 'jwk' });
  const n = Buffer.from(jwk.n as string, 'base64url');
  const head = Buffer.from('0001' + '000b' + '00050072' + '0000' + '0010' + '0014000b' + '0800' + '00000000', 'hex');
  const size = Buffer.alloc(2);
  size.writeUInt16BE(n.length);
  return Buffer.concat([head, size, n]);
}
/** The same for `-G ecc -s ecdsa`: NIST P-256, no KDF. */
function createakEccPublic(pem: Buffer): Buffer {
  const jwk = createPublicKey(pem).export({ format: 'jwk' });
  const x = Buffer.from(jwk.x as string, 'base64url');
  const y = Buffer.from(jwk.y as string, 'base64url');
  return Buffer.concat([Buffer.from('0023' + '000b' + '00050072' + '0000' + '0010' + '0018000b' + '0003' + '0010' + '0020', 'hex'), x, Buffer.from('0020', 'hex'), y]);
}
const tpm2b = (area: Buffer): Buffer => {
  const s = Buffer.alloc(2);
  s.writeUInt16BE(area.length);
  return Buffer.concat([s, area]);
};

describe('parsePublic', () => {
  it('hpe: RSA-2048 restricted signing key, RSASSA/SHA-256, its modulus and Name', () => {
    const p = parsePublic(HPE.pub) as TpmPublicRsa;
    assert.equal(p.type, 'rsa');
    assert.equal(p.nameAlg, 0x000b);
    assert.equal(p.objectAttributes, HPE.pub.readUInt32BE(6));
    assert.equal(p.keyBits, 2048);
    assert.equal(p.exponent, 65537); // the structure says 0
    assert.equal(HPE.pub.readUInt32BE(20), 0);
    assert.deepEqual(Buffer.from(p.modulus), HPE.pub.subarray(26));
    assert.deepEqual(p.scheme, { alg: 0x0014, hashAlg: 0x000b });
    assert.equal(p.symmetric, null);
    const jwk = p.key.export({ format: 'jwk' });
    assert.equal(jwk.n, HPE.pub.subarray(26).toString('base64url'));
    assert.equal(jwk.e, 'AQAB');
    assert.deepEqual(Buffer.from(p.name), Buffer.concat([Buffer.from([0, 0x0b]), createHash('sha256').update(HPE.pub.subarray(2)).digest()]));
  });

  it('swtpm: the Name of the AK rebuilt from its PEM (tpm2_createak defaults) is ak.name', () => {
    assert.equal(SW.akName.length, 34); // binary: u16 alg ‖ digest
    const rsa = parsePublic(tpm2b(createakRsaPublic(SW.akPem)));
    assert.deepEqual(Buffer.from(rsa.name), SW.akName);
    const ecc = parsePublic(tpm2b(createakEccPublic(SW.akEccPem))) as TpmPublicEcc;
    assert.equal(ecc.curve, 'P-256');
    assert.deepEqual(Buffer.from(ecc.name), SW.akEccName);
    assert.deepEqual(ecc.key.export({ format: 'der', type: 'spki' }), createPublicKey(SW.akEccPem).export({ format: 'der', type: 'spki' }));
  });

  it('truncations, a wrong size prefix, reserved attributes, a modulus not of keyBits', () => {
    for (let n = 0; n < HPE.pub.length; n++) throwsTpm(() => parsePublic(HPE.pub.subarray(0, n)));
    throwsTpm(() => parsePublic(Buffer.concat([HPE.pub, Buffer.from([0])])), 'tpm_bad_structure');
    const b = Buffer.from(HPE.pub);
    b.writeUInt32BE(b.readUInt32BE(6) | 1, 6);
    assert.equal(throwsTpm(() => parsePublic(b), 'tpm_bad_structure').place.offset, 6);
    const c = Buffer.from(HPE.pub);
    c.writeUInt16BE(0x0400, 18); // keyBits 1024 with a 256-byte modulus
    throwsTpm(() => parsePublic(c), 'tpm_bad_structure');
  });

  it('unsupported object types, curves and name algorithms are tpm_unsupported', () => {
    const b = Buffer.from(HPE.pub);
    b.writeUInt16BE(0x0008, 2); // keyedhash
    throwsTpm(() => parsePublic(b), 'tpm_unsupported');
    const c = Buffer.from(HPE.pub);
    c.writeUInt16BE(0x0010, 4); // nameAlg NULL
    throwsTpm(() => parsePublic(c), 'tpm_unsupported');
    const e = tpm2b(createakEccPublic(SW.akEccPem));
    e.writeUInt16BE(0x0010, 2 + 16); // curve BN-P256
    throwsTpm(() => parsePublic(e), 'tpm_unsupported');
  });

  it('a point that is not on the curve is tpm_bad_structure, not a crypto error', () => {
    const e = tpm2b(createakEccPublic(SW.akEccPem));
    e[e.length - 1] ^= 1;
    throwsTpm(() => parsePublic(e), 'tpm_bad_structure');
  });
});

describe('loadAttestationKey', () => {
  it('reads PEM, DER and TPM2B_PUBLIC, and keeps the TPM public area only for the last', () => {
    const pem = loadAttestationKey(SW.akPem);
    assert.equal(pem.kind, 'rsa');
    assert.equal(pem.public, null);
    const der = loadAttestationKey(createPublicKey(SW.akEccPem).export({ format: 'der', type: 'spki' }));
    assert.equal(der.kind, 'ec');
    assert.equal(der.curveBytes, 32);
    const t = loadAttestationKey(HPE.pub);
    assert.equal(t.public?.type, 'rsa');
  });

  it('garbage is an IntegrityError', () => {
    throwsTpm(() => loadAttestationKey(Buffer.from('-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n')), 'tpm_bad_structure');
    throwsTpm(() => loadAttestationKey(Buffer.from([0x30, 0x03, 0x02, 0x01, 0x00])), 'tpm_bad_structure');
    throwsTpm(() => loadAttestationKey(Buffer.alloc(0)));
  });
});

// ---- PCR files ------------------------------------------------------------------------------------------------

describe('parsePcrFile', () => {
  for (const [name, bytes] of [['hpe', HPE.pcrs], ['swtpm quote', SW.pcrs], ['swtpm ecc', SW.eccPcrs]] as const) {
    it(`${name}: the same values, in selection order, as the hand reader`, () => {
      const h = handPcrFile(bytes);
      const banks = parsePcrFile(bytes);
      let i = 0;
      for (const sel of h.selection) {
        for (const pcr of sel.pcrs) assert.deepEqual(Buffer.from(banks.get(BANK[sel.hashAlg] as 'sha1')?.get(pcr) ?? []), h.values[i++]);
      }
      assert.equal(i, h.values.length);
    });
  }

  it('hpe: 17 sha256 values for PCRs 0-16', () => {
    const banks = parsePcrFile(HPE.pcrs);
    assert.deepEqual([...banks.keys()], ['sha256']);
    assert.deepEqual([...(banks.get('sha256')?.keys() ?? [])], Array.from({ length: 17 }, (_, i) => i));
  });

  it('swtpm: PCR 10 in both banks is what tpm2_pcrread printed after the extend', () => {
    const banks = parsePcrFile(SW.pcrs);
    const printed = (bank: string) => new RegExp(`${bank}:\\s*\\n\\s*10: 0x([0-9A-F]+)`).exec(SW.pcr10After)?.[1].toLowerCase();
    assert.equal(toHex(banks.get('sha1')?.get(10) ?? new Uint8Array()), printed('sha1'));
    assert.equal(toHex(banks.get('sha256')?.get(10) ?? new Uint8Array()), printed('sha256'));
  });

  it('truncations, trailing bytes, a digest count that does not match the selection', () => {
    for (const n of [0, 3, 4, 100, 132, 135, 136, 300, SW.pcrs.length - 1]) throwsTpm(() => parsePcrFile(SW.pcrs.subarray(0, n)), 'tpm_truncated');
    throwsTpm(() => parsePcrFile(Buffer.concat([SW.pcrs, Buffer.from([0])])), 'tpm_bad_structure');
    const b = Buffer.from(SW.pcrs);
    b.writeUInt32LE(3, 136); // 3 digests for 4 PCRs
    throwsTpm(() => parsePcrFile(b), 'tpm_bad_structure');
    const c = Buffer.from(SW.pcrs);
    c.writeUInt16LE(0x0005, 4); // bank of an unknown hash
    throwsTpm(() => parsePcrFile(c), 'tpm_unsupported');
    const d = Buffer.from(SW.pcrs);
    d.writeUInt16LE(32, 140); // the sha1 PCR 0 value said to be 32 bytes
    throwsTpm(() => parsePcrFile(d), 'tpm_bad_structure');
  });
});

describe('parsePcrValues', () => {
  it('swtpm quote_plain: the sha256 PCR 10 value of the quote’s selection', () => {
    const sel = parseAttest(SW.plainMsg).quote?.pcrSelect ?? [];
    const banks = parsePcrValues(SW.plainValues, sel);
    assert.deepEqual(Buffer.from(banks.get('sha256')?.get(10) ?? []), SW.plainValues);
    throwsTpm(() => parsePcrValues(SW.plainValues.subarray(0, 31), sel), 'tpm_truncated');
    throwsTpm(() => parsePcrValues(Buffer.concat([SW.plainValues, Buffer.alloc(1)]), sel), 'tpm_bad_structure');
  });
});

// ---- fuzzing: only IntegrityErrors, whatever the bytes ---------------------------------------------------------

const parsers: [string, (b: Uint8Array) => unknown, Buffer[]][] = [
  ['parseAttest', parseAttest, [HPE.attest, SW.msg, SW.eccMsg]],
  ['parseSignature', parseSignature, [HPE.sig, SW.sig, SW.eccSig]],
  ['parsePublic', parsePublic, [HPE.pub, tpm2b(createakEccPublic(SW.akEccPem))]],
  ['loadAttestationKey', loadAttestationKey, [HPE.pub, SW.akPem, SW.akEccPem]],
  ['parsePcrFile', parsePcrFile, [HPE.pcrs, SW.pcrs]],
  ['parsePcrValues', (b) => parsePcrValues(b, parseAttest(SW.msg).quote?.pcrSelect ?? []), [SW.plainValues]],
];

function onlyIntegrityErrors(f: (b: Uint8Array) => unknown, b: Uint8Array): void {
  try {
    f(b);
  } catch (e) {
    if (!(e instanceof IntegrityError)) throw new Error(`not an IntegrityError for ${Buffer.from(b).toString('hex')}: ${String(e)}`);
  }
}

/** A real file with a few edits: byte overwrites, a truncation, an insertion. */
const mutated = (seeds: Buffer[]) =>
  fc
    .record({
      seed: fc.integer({ min: 0, max: seeds.length - 1 }),
      edits: fc.array(fc.record({ at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }), { maxLength: 4 }),
      cut: fc.option(fc.nat()),
      insert: fc.option(fc.record({ at: fc.nat(), bytes: fc.uint8Array({ maxLength: 8 }) })),
    })
    .map(({ seed, edits, cut, insert }) => {
      let b = Buffer.from(seeds[seed]);
      for (const e of edits) if (b.length) b[e.at % b.length] = e.value;
      if (insert) {
        const at = insert.at % (b.length + 1);
        b = Buffer.concat([b.subarray(0, at), insert.bytes, b.subarray(at)]);
      }
      if (cut !== null) b = b.subarray(0, cut % (b.length + 1));
      return new Uint8Array(b);
    });

describe('fuzzing the parsers', () => {
  for (const [name, f, seeds] of parsers) {
    it(`${name}: random bytes and mutated real files throw only IntegrityErrors`, { timeout: 60_000 }, () => {
      fc.assert(fc.property(fc.uint8Array({ maxLength: 800 }), (b) => onlyIntegrityErrors(f, b)), { numRuns: 300 });
      fc.assert(fc.property(mutated(seeds), (b) => onlyIntegrityErrors(f, b)), { numRuns: 300 });
    });
  }
});
