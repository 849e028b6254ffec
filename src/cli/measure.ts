/**
 * `hueguard measure PATH… [--domain XML…] [--state FILE] [--watch] [--json]`: a software IMA for what a host sees of
 * a VM. Files and whole trees (in path order), disk images, libvirt domain definitions (normalised), as `ima-ng`
 * entries in the kernel's ascii format, so that `hueguard ima replay` and `ima appraise` read the output.
 *
 * With `--state`, the first run measures everything and saves what it saw; the next runs print only what changed
 * since (new, changed, deleted files). With `--watch`, it goes on printing new entries as files change, until
 * Ctrl-C or SIGTERM, and then saves the state.
 */
import { MeasurePool } from '../agent/measure-pool.ts';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { formatAsciiLine, type ImaEntry } from '../integrity/ima-entry.ts';
import { measureDomainXml, Measurer } from '../integrity/measure.ts';
import { integrity } from './ima-files.ts';
import { CliError, readTextFile } from './policy-files.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

function entryJson(e: ImaEntry) {
  return { pcr: e.pcr, templateHash: hex(e.templateHash), template: e.template, digest: `${e.digestAlg}:${hex(e.digest)}`, name: e.name };
}

function saveState(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

export async function measure(paths: string[], o: { domain?: string[]; state?: string; watch?: boolean; json?: boolean }): Promise<number> {
  if (paths.length === 0 && (o.domain ?? []).length === 0) throw new CliError('nothing to measure: give paths or --domain files');
  const print = (e: ImaEntry): void => {
    process.stdout.write((o.json ? JSON.stringify(entryJson(e)) : formatAsciiLine(e)) + '\n');
  };
  let failures = 0;
  const onError = (e: Error) => {
    failures++;
    process.stderr.write(`hueguard measure: ${e.message}\n`);
  };

  for (const file of o.domain ?? []) {
    const xml = readTextFile(file);
    print(await integrity(file, () => measureDomainXml(xml)));
  }
  if (paths.length === 0) return 0;

  // the first pass reads and hashes new files on worker threads (src/agent/measure-pool.ts): same entries, both cores
  const pool = new MeasurePool();
  const m = new Measurer({ roots: paths, watch: o.watch, onError, onEntry: o.watch ? print : undefined, looker: pool });
  if (o.state !== undefined && existsSync(o.state)) {
    const text = readFileSync(o.state, 'utf8');
    await integrity(o.state, () => m.loadState(text));
  }
  const first = await integrity(paths[0], () => m.start());
  if (!o.watch) for (const e of first) print(e);
  if (o.watch) {
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
  }
  await m.close();
  await pool.close();
  if (o.state !== undefined) saveState(o.state, m.saveState());
  return failures > 0 ? 1 : 0;
}
