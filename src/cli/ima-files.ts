/** Opening measurement lists and runtime policies for the CLI; integrity errors become CLI errors. */
import { accessSync, constants, createReadStream, statSync } from 'node:fs';
import { isIntegrityError } from '../integrity/errors.ts';
import { readImaBatches, type ImaLogEntry } from '../integrity/ima-log.ts';
import { readRuntimePolicy, readExcludeList, type RuntimePolicy } from '../integrity/runtime-policy.ts';
import { CliError, readTextFile } from './policy-files.ts';

/** Runtime policies and exclude lists of any real size fit in this. */
const MAX_POLICY_FILE = 64 * 1024 * 1024;

/** A clear error for a missing or unreadable file before a stream would fail later with less context. */
export function assertReadable(file: string): void {
  try {
    accessSync(file, constants.R_OK);
    if (statSync(file).isDirectory()) throw new CliError(`${file}: is a directory`);
  } catch (e) {
    if (e instanceof CliError) throw e;
    throw new CliError(`${file}: cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** The entries of a log file in batches, streamed: memory stays bounded by the largest entry. */
export function logBatches(file: string, binary?: boolean): AsyncGenerator<ImaLogEntry[]> {
  assertReadable(file);
  return readImaBatches(createReadStream(file, { highWaterMark: 1 << 20 }), binary ? { format: 'binary' } : {});
}

/** Runs an integrity step; its errors (which name the entry, byte or field) become a CLI error with exit 1. */
export async function integrity<T>(file: string, step: () => Promise<T> | T): Promise<T> {
  try {
    return await step();
  } catch (e) {
    if (isIntegrityError(e)) {
      const where = e.place.file === undefined ? `${file}: ` : '';
      throw new CliError(`${where}${e.code}: ${e.message}`, 1);
    }
    throw e;
  }
}

export function loadRuntimePolicy(file: string): RuntimePolicy {
  const text = readTextFile(file, MAX_POLICY_FILE);
  try {
    return readRuntimePolicy(text, file);
  } catch (e) {
    if (isIntegrityError(e)) throw new CliError(`${e.code}: ${e.message}`, 1);
    throw e;
  }
}

export function loadExcludeList(file: string): string[] {
  const text = readTextFile(file, MAX_POLICY_FILE);
  try {
    return readExcludeList(text, file);
  } catch (e) {
    if (isIntegrityError(e)) throw new CliError(`${e.code}: ${e.message}`, 1);
    throw e;
  }
}
