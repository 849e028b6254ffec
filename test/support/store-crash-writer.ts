/**
 * The writer that `test/e2e/store-crash.test.ts` kills with SIGKILL: it opens a store and, from a few concurrent
 * loops, appends audit records, publishes policies, sets trust, and does all three in one transaction, printing
 * each write to stdout only after its promise resolved — so every line the test reads is an acknowledged write the
 * store must still hold after the kill.
 *
 * Usage: node --import tsx store-crash-writer.ts (--sqlite DIR | --postgres URL) --round N
 * Prints `ready`, then lines: `audit SEQ SUBJECT`, `policy VERSION POLICYVERSION`, `trust VM`, `tx SEQ VERSION VM`.
 */
import { openPostgresStore } from '../../src/store/postgres.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import type { Store } from '../../src/store/store.ts';

const args = process.argv.slice(2);
const arg = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const round = Number(arg('--round') ?? 0);
const sqlite = arg('--sqlite');
const postgres = arg('--postgres');

const store: Store = sqlite ? await openSqliteStore({ dir: sqlite }) : await openPostgresStore({ url: postgres! });
// Synchronous on a pipe on Linux: a line is in the pipe before the next write starts.
const say = (line: string) => process.stdout.write(`${line}\n`);
say('ready');

let n = 0;
async function loop(): Promise<never> {
  for (;;) {
    const i = n++;
    const tag = `r${round}-${i}`;
    const at = new Date().toISOString();
    const trust = { vm: `vm-${tag}`, state: 'trusted' as const, since: at, reason: tag, lastEvidence: at };
    const transition = { vm: trust.vm, from: 'unverified' as const, to: 'trusted' as const, at, reason: tag, actor: 'writer' };
    const policy = { name: 'crash', policyVersion: tag, yaml: `name: crash\nversion: ${tag}\n`, note: tag, actor: 'writer', at };
    switch (i % 4) {
      case 0: {
        const r = await store.appendAudit({ at, actor: 'writer', action: 'crash.write', subject: tag, details: { round, i } });
        say(`audit ${r.seq} ${tag}`);
        break;
      }
      case 1: {
        const p = await store.publishPolicy(policy);
        say(`policy ${p.version} ${tag}`);
        break;
      }
      case 2:
        await store.putTrust(trust, transition);
        say(`trust ${trust.vm}`);
        break;
      default: {
        const [seq, version] = await store.tx(async (t) => {
          const r = await t.appendAudit({ at, actor: 'writer', action: 'crash.tx', subject: tag, details: { round, i } });
          const p = await t.publishPolicy(policy);
          await t.putTrust(trust, transition);
          return [r.seq, p.version];
        });
        say(`tx ${seq} ${version} ${trust.vm}`);
      }
    }
  }
}

await Promise.all([loop(), loop(), loop()]);
