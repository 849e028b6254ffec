/**
 * `hueguard quote verify --attest F --sig F --ak F [--nonce HEX] [--pcrs F] [--sig-format tpmt|plain] [--json]`:
 * check a TPM 2.0 quote as tpm2_quote wrote it. Exit 0 valid, 1 invalid (the failed check is named).
 */
import { isIntegrityError } from '../integrity/errors.ts';
import { parsePcrFile } from '../integrity/tpm-pcr-file.ts';
import { quoteSummary, verifyQuote } from '../integrity/tpm-quote.ts';
import { CliError, readTextFile } from './policy-files.ts';
import { readFileSync } from 'node:fs';

/** Quote files are small: anything past 1 MiB is not one. */
const MAX_QUOTE_FILE = 1024 * 1024;

function readBinary(file: string, what: string): Uint8Array {
  readTextFile(file, MAX_QUOTE_FILE); // the size bound and a clear error for a missing file
  try {
    return readFileSync(file);
  } catch (e) {
    throw new CliError(`${what} ${file}: cannot read: ${(e as Error).message}`);
  }
}

function hexBytes(hex: string): Uint8Array {
  const h = hex.trim().replace(/^0x/i, '');
  if (h.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(h)) throw new CliError(`--nonce: "${hex}" is not hex`);
  return Buffer.from(h, 'hex');
}

export interface QuoteVerifyOptions {
  attest: string;
  sig: string;
  ak: string;
  nonce?: string;
  pcrs?: string;
  sigFormat?: string;
  json?: boolean;
}

export function quoteVerify(o: QuoteVerifyOptions): number {
  if (o.sigFormat !== undefined && o.sigFormat !== 'tpmt' && o.sigFormat !== 'plain') {
    throw new CliError(`--sig-format must be tpmt or plain, not "${o.sigFormat}"`);
  }
  try {
    const r = verifyQuote({
      attest: readBinary(o.attest, 'attestation'),
      signature: readBinary(o.sig, 'signature'),
      ak: readBinary(o.ak, 'attestation key'),
      nonce: o.nonce === undefined ? undefined : hexBytes(o.nonce),
      pcrs: o.pcrs === undefined ? undefined : parsePcrFile(readBinary(o.pcrs, 'PCR file')),
      signatureFormat: o.sigFormat as 'tpmt' | 'plain' | undefined,
    });
    if (o.json) process.stdout.write(JSON.stringify(quoteSummary(r)) + "\n");
    else {
      const lines = [r.valid ? 'VALID' : `INVALID: the ${r.failed} check failed`];
      for (const c of r.checks) lines.push(`  ${c.ok ? 'ok  ' : 'FAIL'} ${c.name}${c.detail ? `: ${c.detail}` : ''}`);
      lines.push(`  nonce (extraData) ${r.nonce}`, `  pcrDigest ${r.pcrDigest}`);
      process.stdout.write(lines.join('\n') + '\n');
    }
    return r.valid ? 0 : 1;
  } catch (e) {
    if (isIntegrityError(e)) throw new CliError(`${e.code}: ${e.message}`, 1);
    throw e;
  }
}
