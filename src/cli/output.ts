/** Writing results: to a file with -o, else to stdout. */
import { writeFileSync, renameSync } from 'node:fs';

/** Write the whole text to `file` atomically (temp file + rename), or to stdout. */
export function emit(text: string, file?: string): void {
  if (file === undefined || file === '-') {
    process.stdout.write(text.endsWith('\n') ? text : text + '\n');
    return;
  }
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, text.endsWith('\n') ? text : text + '\n');
  renameSync(tmp, file);
}

export function json(value: unknown): string {
  return JSON.stringify(value, null, 2);
}
