/**
 * `hueguard audit verify [--data DIR | --postgres URL] [--json]`: check the audit log's hash chain in that store
 * (`store/audit-chain.ts`). Prints OK, or which record was edited, inserted, deleted or reordered; exit 1 if not OK.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { verifyAuditChain } from '../store/audit-chain.ts';
import { SQLITE_FILE } from '../store/sqlite.ts';
import { CliError } from './policy-files.ts';
import { DEFAULT_DATA, openStore, type StoreOptions } from './serve.ts';
import { json } from './output.ts';

export async function auditVerify(opts: StoreOptions & { json?: boolean }): Promise<number> {
  if (opts.postgres === undefined) {
    // Verifying must not create an empty store where there was none.
    const dir = resolve(opts.data ?? DEFAULT_DATA);
    if (!existsSync(join(dir, SQLITE_FILE))) throw new CliError(`no hueguard store in ${dir} (no ${SQLITE_FILE})`);
  }
  const { store } = await openStore(opts);
  try {
    const records = await store.audit();
    const verdict = verifyAuditChain(records);
    const head = records.at(-1);
    if (opts.json) {
      process.stdout.write(json({ ...verdict, records: records.length, head: head?.hash ?? null }) + '\n');
    } else if (verdict.ok) {
      process.stdout.write(`OK: ${records.length} audit record${records.length === 1 ? '' : 's'}, the chain is intact${head ? ` (head ${head.hash})` : ''}\n`);
    } else {
      process.stdout.write(`NOT OK: record ${verdict.seq} ${verdict.problem}: ${verdict.message}\n`);
    }
    return verdict.ok ? 0 : 1;
  } finally {
    await store.close();
  }
}
