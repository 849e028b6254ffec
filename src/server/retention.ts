/**
 * Retention: what the controller deletes by itself, every `everyMs` (default a minute), so that its store does not
 * grow without bound (`Store.prune`):
 *
 * - nonces once expired (a quote with an expired nonce is refused anyway; after the prune as `nonce_unknown`
 *   rather than `nonce_stale`); used nonces stay until they expire, so a replay within that time is `nonce_replayed`;
 * - console sessions once expired;
 * - records of the evidence log older than `evidenceMs` (default 30 days), except each VM's newest. The log holds
 *   the evidence that failed (with its failing entries); each VM's last evidence, good or not (what `GET …/trust`
 *   shows), is kept with its integrity state instead, one per VM (`Store.putIntegrities`), and never ages out.
 *
 * Never pruned: the audit log, trust history and policy versions (append-only), integrity states, trust records,
 * plans, tokens. Each prune deletes at most `batch` rows of a table in one transaction and goes on in the next
 * turn of the event loop while there is more, so a large backlog does not hold the store (and every request) for
 * long. A failed prune is logged and tried again at the next period.
 */
import type { FastifyInstance } from 'fastify';
import type { PruneCounts } from '../store/store.ts';
import type { ServerContext } from './context.ts';

export interface RetentionOptions {
  /** evidence records older than this many ms are deleted (each VM's newest stays); default 30 days */
  evidenceMs?: number;
  /** how often to prune, in ms; default 60 s; false: never by itself (tests call `prune`) */
  everyMs?: number | false;
  /** most rows of one table deleted per transaction; default 2,000 */
  batch?: number;
}

/** Prune once, in transactions of at most `batch` rows a table, until nothing more is due; the totals. */
export async function prune(ctx: Pick<ServerContext, 'store' | 'now' | 'metrics' | 'evidenceRetentionMs'>, batch = 2000): Promise<PruneCounts> {
  const total: PruneCounts = { nonces: 0, sessions: 0, evidence: 0 };
  for (;;) {
    const nowMs = ctx.now().getTime();
    const r = await ctx.store.prune({
      now: new Date(nowMs).toISOString(),
      evidenceBefore: new Date(nowMs - ctx.evidenceRetentionMs).toISOString(),
      limit: batch,
    });
    for (const k of ['nonces', 'sessions', 'evidence'] as const) {
      total[k] += r[k];
      if (r[k] > 0) ctx.metrics.pruned.inc({ table: k }, r[k]);
    }
    if (r.nonces < batch && r.sessions < batch && r.evidence < batch) return total;
    await new Promise((resolve) => setImmediate(resolve));
  }
}

export function installRetention(app: FastifyInstance, ctx: ServerContext, opts: RetentionOptions = {}): void {
  const everyMs = opts.everyMs ?? 60_000;
  if (everyMs === false) return;
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    prune(ctx, opts.batch)
      .catch((err) => app.log.error({ err }, 'prune failed'))
      .finally(() => (running = false));
  }, everyMs);
  timer.unref();
  app.addHook('onClose', async () => clearInterval(timer));
}
