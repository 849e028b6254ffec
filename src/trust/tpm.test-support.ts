/**
 * A real software TPM for the trust engine's tests: swtpm plus tpm2-tools, an RSA attestation key, PCR 10
 * extended with measurement entries as IMA extends it, and quotes as an agent sends them.
 *
 * The swtpm itself comes from src/integrity/swtpm.test-support.ts (shared with the agent's and integrity's tests);
 * this adds the keys and quotes. `startTpm()` resolves to null when swtpm or tpm2-tools are missing, `tpmMissing`
 * saying why.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { extendValue, type ImaEntry } from '../integrity/ima-entry.ts';
import { startSwtpm, swtpmMissing } from '../integrity/swtpm.test-support.ts';
import type { QuoteEvidence } from './evidence.ts';

const TOOLS = ['tpm2_createek', 'tpm2_createak', 'tpm2_quote', 'tpm2_pcrextend', 'tpm2_pcrread', 'tpm2_flushcontext'];
export let tpmMissing = '';

export interface TestTpm {
  /** the attestation key's TPM2B_PUBLIC (`tpm2_createak -u`) */
  ak: Buffer;
  /** a second AK of the same TPM, for "signed by another key" */
  otherAk: Buffer;
  /** extend PCR 10 (sha1 and sha256) with each entry, in order */
  extend(entries: readonly ImaEntry[]): void;
  /** PCR 10 of the sha256 bank, hex */
  pcr10(): string;
  /** a quote over sha256:10 with this nonce (hex); `withPcrs` adds the PCR file (`tpm2_quote -o`) */
  quote(nonceHex: string, opts?: { withPcrs?: boolean }): QuoteEvidence;
  stop(): Promise<void>;
}

export async function startTpm(): Promise<TestTpm | null> {
  const missing = TOOLS.filter((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0);
  if (missing.length > 0) {
    tpmMissing = `swtpm/tpm2-tools not installed (missing: ${missing.join(', ')})`;
    return null;
  }
  const sw = await startSwtpm();
  if (sw === null) {
    tpmMissing = swtpmMissing;
    return null;
  }
  const dir = mkdtempSync(join(tmpdir(), 'hg-trust-tpm-'));
  const env = { ...process.env, TPM2TOOLS_TCTI: sw.tcti };
  const run = (cmd: string, ...args: string[]) => execFileSync(cmd, args, { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] }).toString('utf8');
  // no resource manager: flush transient objects and sessions after each command that loads one
  const tpm = (cmd: string, ...args: string[]) => {
    const out = run(cmd, ...args);
    run('tpm2_flushcontext', '-t');
    run('tpm2_flushcontext', '-s');
    return out;
  };
  tpm('tpm2_createek', '-c', 'ek.ctx', '-G', 'rsa', '-u', 'ek.pub');
  for (const ak of ['ak', 'ak2']) tpm('tpm2_createak', '-C', 'ek.ctx', '-c', `${ak}.ctx`, '-G', 'rsa', '-g', 'sha256', '-s', 'rsassa', '-u', `${ak}.pub`, '-n', `${ak}.name`);
  const file = (name: string) => readFileSync(join(dir, name));
  let n = 0;
  return {
    ak: file('ak.pub'),
    otherAk: file('ak2.pub'),
    extend(entries) {
      for (let i = 0; i < entries.length; i += 64) {
        const args = entries.slice(i, i + 64).map((e) => `10:sha1=${Buffer.from(extendValue(e, 'sha1')).toString('hex')},sha256=${Buffer.from(extendValue(e, 'sha256')).toString('hex')}`);
        run('tpm2_pcrextend', ...args);
      }
    },
    pcr10() {
      const out = run('tpm2_pcrread', 'sha256:10');
      const m = /10\s*:\s*0x([0-9A-Fa-f]{64})/.exec(out);
      if (m === null) throw new Error(`tpm2_pcrread: ${out}`);
      return m[1].toLowerCase();
    },
    quote(nonceHex, opts = {}) {
      const q = `q${++n}`;
      tpm('tpm2_quote', '-c', 'ak.ctx', '-l', 'sha256:10', '-q', nonceHex, '-g', 'sha256', '-m', `${q}.msg`, '-s', `${q}.sig`, '-o', `${q}.pcrs`);
      const out: QuoteEvidence = { attest: file(`${q}.msg`).toString('base64'), signature: file(`${q}.sig`).toString('base64'), nonce: nonceHex };
      if (opts.withPcrs) out.pcrs = file(`${q}.pcrs`).toString('base64');
      return out;
    },
    async stop() {
      await sw.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
