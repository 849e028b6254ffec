/**
 * small-hash.ts against node:crypto (OpenSSL) and the NIST FIPS 180 example vectors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { extendSha1, extendSha256, sha1Into, sha256Into, smallHash, SMALL_HASH_MAX } from './small-hash.ts';

const hex = (u: Uint8Array): string => Buffer.from(u.buffer, u.byteOffset, u.byteLength).toString('hex');
const openssl = (alg: 'sha1' | 'sha256', data: Uint8Array): string => createHash(alg).update(data).digest('hex');
const SIZE = { sha1: 20, sha256: 32 } as const;

function mine(alg: 'sha1' | 'sha256', data: Uint8Array): string {
  const out = new Uint8Array(SIZE[alg]);
  (alg === 'sha1' ? sha1Into : sha256Into)(data, 0, data.length, out, 0);
  return hex(out);
}

// FIPS 180-2 appendix examples (and the one-million-"a" message)
const NIST: { msg: string | Uint8Array; sha1: string; sha256: string }[] = [
  { msg: '', sha1: 'da39a3ee5e6b4b0d3255bfef95601890afd80709', sha256: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' },
  { msg: 'abc', sha1: 'a9993e364706816aba3e25717850c26c9cd0d89d', sha256: 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad' },
  {
    msg: 'abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq',
    sha1: '84983e441c3bd26ebaae4aa1f95129e5e54670f1',
    sha256: '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
  },
  {
    msg: 'abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu',
    sha1: 'a49b2446a02c645bf419f995b67091253a04a259',
    sha256: 'cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1',
  },
  {
    msg: new Uint8Array(1_000_000).fill(0x61),
    sha1: '34aa973cd4c4daa4f61eeb2bdbad27316534016f',
    sha256: 'cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0',
  },
];

test('the NIST example vectors', () => {
  for (const v of NIST) {
    const data = typeof v.msg === 'string' ? Buffer.from(v.msg, 'latin1') : v.msg;
    assert.equal(mine('sha256', data), v.sha256, `sha256 of ${data.length} bytes`);
    assert.equal(mine('sha1', data), v.sha1, `sha1 of ${data.length} bytes`);
    assert.equal(hex(smallHash('sha256', data)), v.sha256);
    assert.equal(hex(smallHash('sha1', data)), v.sha1);
  }
});

test('every length from 0 to 300 bytes, on fast-check inputs, equals node:crypto', () => {
  for (let n = 0; n <= 300; n++) {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: n, maxLength: n }), (data) => {
        assert.equal(mine('sha256', data), openssl('sha256', data));
        assert.equal(mine('sha1', data), openssl('sha1', data));
        assert.equal(hex(smallHash('sha256', data)), openssl('sha256', data));
        assert.equal(hex(smallHash('sha1', data)), openssl('sha1', data));
      }),
      { numRuns: 4 },
    );
  }
});

test('longer inputs (several blocks, and past SMALL_HASH_MAX where smallHash calls OpenSSL)', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 3000 }), (data) => {
      assert.equal(mine('sha256', data), openssl('sha256', data));
      assert.equal(mine('sha1', data), openssl('sha1', data));
      assert.equal(hex(smallHash('sha256', data)), openssl('sha256', data));
    }),
    { numRuns: 200 },
  );
  const big = new Uint8Array(SMALL_HASH_MAX + 1).fill(7);
  assert.equal(hex(smallHash('sha256', big)), openssl('sha256', big));
});

test('hashes a slice in place and writes only its output bytes', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 400 }), fc.nat(), fc.nat(), fc.nat(), (buf, a, b, at) => {
      const off = buf.length === 0 ? 0 : a % (buf.length + 1);
      const len = b % (buf.length - off + 1);
      for (const alg of ['sha1', 'sha256'] as const) {
        const out = new Uint8Array(SIZE[alg] + 40).fill(0xaa);
        const o = at % 41;
        (alg === 'sha1' ? sha1Into : sha256Into)(buf, off, len, out, o);
        assert.equal(hex(out.subarray(o, o + SIZE[alg])), openssl(alg, buf.subarray(off, off + len)));
        assert.ok(out.subarray(0, o).every((x) => x === 0xaa) && out.subarray(o + SIZE[alg]).every((x) => x === 0xaa));
      }
    }),
    { numRuns: 300 },
  );
});

test('PCR extends equal H(PCR ‖ value), apart or adjacent in one scratch', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ minLength: 32, maxLength: 32 }), (pcr, value) => {
      const want256 = openssl('sha256', Buffer.concat([pcr, value]));
      const p = Uint8Array.from(pcr);
      extendSha256(p, 0, value, 0);
      assert.equal(hex(p), want256);
      // [PCR | value] in one array, at an offset
      const scratch = new Uint8Array(70);
      scratch.set(pcr, 3);
      scratch.set(value, 35);
      extendSha256(scratch, 3, scratch, 35);
      assert.equal(hex(scratch.subarray(3, 35)), want256);
      assert.equal(hex(scratch.subarray(35, 67)), hex(value), 'the value is left alone');

      const p1 = pcr.slice(0, 20);
      const v1 = value.slice(0, 20);
      const want1 = openssl('sha1', Buffer.concat([p1, v1]));
      extendSha1(p1, 0, v1, 0);
      assert.equal(hex(p1), want1);
    }),
    { numRuns: 300 },
  );
});

test('a chain of extends equals the same chain through node:crypto', () => {
  let ref256: Buffer = Buffer.alloc(32);
  let ref1: Buffer = Buffer.alloc(20);
  const pcr256 = new Uint8Array(64);
  const pcr1 = new Uint8Array(20);
  for (let i = 0; i < 500; i++) {
    const data = Buffer.from(`entry ${i} `.repeat(1 + (i % 17)));
    ref256 = createHash('sha256').update(ref256).update(createHash('sha256').update(data).digest()).digest();
    ref1 = createHash('sha1').update(ref1).update(createHash('sha1').update(data).digest()).digest();
    sha256Into(data, 0, data.length, pcr256, 32);
    extendSha256(pcr256, 0, pcr256, 32);
    const v1 = new Uint8Array(20);
    sha1Into(data, 0, data.length, v1, 0);
    extendSha1(pcr1, 0, v1, 0);
  }
  assert.equal(hex(pcr256.subarray(0, 32)), ref256.toString('hex'));
  assert.equal(hex(pcr1), ref1.toString('hex'));
});
