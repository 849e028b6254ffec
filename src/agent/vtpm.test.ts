/**
 * Extending a real swtpm's PCR 10 with measurement entries; the PCR must equal a replay computed here, from the
 * entries' fields, independently of ima-entry.ts.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ImaEntry } from '../integrity/ima-entry.ts';
import { Measurer, imaNgEntry, measureDomainXml } from '../integrity/measure.ts';
import { startSwtpm, swtpmMissing, type Swtpm } from '../integrity/swtpm.test-support.ts';
import { SwtpmPcr, parsePcrRead } from './vtpm.ts';

/** ima-ng template data, built here from the entry's fields (FORMATS.md): u32le lengths, "alg:\0" digest, name\0. */
function templateBytes(e: ImaEntry): Buffer {
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n);
    return b;
  };
  const d = Buffer.concat([Buffer.from(`${e.digestAlg}:`), Buffer.from([0]), Buffer.from(e.digest)]);
  const n = Buffer.concat([Buffer.from(e.name, 'utf8'), Buffer.from([0])]);
  return Buffer.concat([u32(d.length), d, u32(n.length), n]);
}

/** PCR_B = B(PCR_B || B(template data)), from zero; a violation (zero template hash) extends all-0xFF. */
function replay(entries: ImaEntry[], bank: 'sha1' | 'sha256'): string {
  const size = bank === 'sha1' ? 20 : 32;
  let pcr = Buffer.alloc(size);
  for (const e of entries) {
    const violation = e.templateHash.every((b) => b === 0);
    const ext = violation ? Buffer.alloc(size, 0xff) : createHash(bank).update(templateBytes(e)).digest();
    pcr = createHash(bank).update(Buffer.concat([pcr, ext])).digest();
  }
  return pcr.toString('hex');
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

test('parsePcrRead reads tpm2_pcrread output', () => {
  const out = '  sha1:\n    10: 0x2DD4F06B1AE34639D1CC39316283C6CBFDF0DC82\n  sha256:\n    10: 0x153D5381929B50792D3B22AE9596544AF3B0E4805BE1555A595E6D2A2734933F\n';
  const v = parsePcrRead(out, 10, ['sha1', 'sha256']);
  assert.equal(hex(v.sha1), '2dd4f06b1ae34639d1cc39316283c6cbfdf0dc82');
  assert.equal(hex(v.sha256), '153d5381929b50792d3b22ae9596544af3b0e4805be1555a595e6d2a2734933f');
  assert.throws(() => parsePcrRead('  sha1:\n    10: 0x00\n', 10, ['sha1', 'sha256']), /sha256:10/);
});

describe('SwtpmPcr on a real swtpm', () => {
  let tpm: Swtpm | null = null;
  let dir = '';
  before(async () => {
    tpm = await startSwtpm();
    dir = realpathSync(mkdtempSync(join(tmpdir(), 'hg-vtpm-')));
  });
  after(async () => {
    await tpm?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('after a few extends, PCR 10 equals an independent replay in both banks', async (t) => {
    if (tpm === null) return t.skip(swtpmMissing);
    const pcr = new SwtpmPcr({ tcti: tpm.tcti });
    const zero = await pcr.read();
    assert.equal(hex(zero.sha1), '00'.repeat(20));
    assert.equal(hex(zero.sha256), '00'.repeat(32));

    const violation: ImaEntry = { ...imaNgEntry('/tmp/tomtou', new Uint8Array(32)), templateHash: new Uint8Array(20) };
    const entries = [
      imaNgEntry('boot_aggregate', new Uint8Array(32)),
      measureDomainXml("<domain type='kvm'><name>web1</name><memory unit='KiB'>1024</memory></domain>"),
      imaNgEntry('/usr/bin/bash', createHash('sha256').update('bash').digest()),
      violation,
      imaNgEntry('/etc/naïve name', createHash('sha256').update('x').digest()),
    ];
    for (const e of entries) await pcr.extend(e);
    const v = await pcr.read();
    assert.equal(hex(v.sha1), replay(entries, 'sha1'));
    assert.equal(hex(v.sha256), replay(entries, 'sha256'));
  });

  test('extends not awaited one by one are applied in order, batched, before a read', async (t) => {
    if (tpm === null) return t.skip(swtpmMissing);
    const pcr = new SwtpmPcr({ tcti: tpm.tcti });
    const before = await pcr.read();
    const entries = Array.from({ length: 300 }, (_, i) => imaNgEntry(`/bin/tool${i}`, createHash('sha256').update(String(i)).digest()));
    const done = entries.map((e) => pcr.extend(e));
    const v = await pcr.read(); // queued after the 300 extends
    await Promise.all(done);
    // the replay, continued from the value the PCR had before
    const cont = (bank: 'sha1' | 'sha256', start: Uint8Array) => {
      let p = Buffer.from(start);
      for (const e of entries) p = createHash(bank).update(Buffer.concat([p, createHash(bank).update(templateBytes(e)).digest()])).digest();
      return p.toString('hex');
    };
    assert.equal(hex(v.sha1), cont('sha1', before.sha1));
    assert.equal(hex(v.sha256), cont('sha256', before.sha256));
  });

  test('a Measurer extending a fresh PCR as it measures: the PCR replays its list', async (t) => {
    if (tpm === null) return t.skip(swtpmMissing);
    await tpm.stop();
    tpm = await startSwtpm(); // a fresh TPM: PCR 10 at zero again
    if (tpm === null) return t.skip(swtpmMissing);
    const pcr = new SwtpmPcr({ tcti: tpm.tcti });
    for (const f of ['a', 'b', 'c']) writeFileSync(join(dir, f), f);
    const m = new Measurer({ roots: [dir], watch: true, settleMs: 5, onEntry: (e) => pcr.extend(e) });
    await m.start();
    writeFileSync(join(dir, 'b'), 'b changed');
    const deadline = Date.now() + 5000;
    while (m.list.length < 4) {
      if (Date.now() > deadline) throw new Error('the change was not measured');
      await new Promise((r) => setTimeout(r, 5));
    }
    await m.idle();
    await m.close();
    const v = await pcr.read();
    assert.equal(m.list.length, 4);
    assert.equal(hex(v.sha1), replay(m.list, 'sha1'));
    assert.equal(hex(v.sha256), replay(m.list, 'sha256'));
  });

  test('a TPM that is gone: extend rejects with the tool error', async (t) => {
    if (tpm === null) return t.skip(swtpmMissing);
    const pcr = new SwtpmPcr({ tcti: 'swtpm:host=127.0.0.1,port=1', timeoutMs: 10_000 });
    await assert.rejects(pcr.extend(imaNgEntry('/x', new Uint8Array(32))), /tpm2_pcrextend/);
  });
});
