/**
 * `hueguard ima replay LOG [--binary] [--json]`: replay PCR 10 (sha1 and sha256 banks) from a measurement list,
 * streaming; count violations and entries whose stated template hash is not the hash of their fields.
 */
import { createReadStream } from 'node:fs';
import { readImaEntries } from '../integrity/ima-log.ts';
import { replayLogAsync } from '../integrity/ima-replay.ts';
import { assertReadable, integrity } from './ima-files.ts';

export async function imaReplay(file: string, opts: { binary?: boolean; json?: boolean }): Promise<number> {
  assertReadable(file);
  const summary = await integrity(file, () =>
    replayLogAsync(readImaEntries(createReadStream(file, { highWaterMark: 1 << 20 }), opts.binary ? { format: 'binary' } : {})),
  );
  if (opts.json) process.stdout.write(JSON.stringify(summary) + '\n');
  else {
    process.stdout.write(
      [
        `${summary.entries} entries, ${summary.violations} violations, ${summary.templateHashMismatches} template hash mismatches`,
        `PCR 10 sha1   ${summary.pcr10.sha1}`,
        `PCR 10 sha256 ${summary.pcr10.sha256}`,
      ].join('\n') + '\n',
    );
  }
  return 0;
}
