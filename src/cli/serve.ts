/**
 * `hueguard serve [--data DIR] [--host ADDR] [--port N] [--postgres URL] [--tls-cert F --tls-key F]`: the controller.
 * SQLite under `--data` (default ./.hueguard) unless `--postgres` is given; 127.0.0.1:8470 unless told otherwise.
 * On first start it creates an admin token and prints it once (or registers HUEGUARD_ADMIN_TOKEN's); it prints the
 * URL, and shuts down gracefully on SIGINT or SIGTERM (in-flight requests finish, event streams close, the store
 * closes).
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { AddressInfo } from 'node:net';
import { buildApp } from '../server/app.ts';
import { tuneControllerRuntime } from '../server/runtime.ts';
import { hashSecret } from '../server/credentials.ts';
import { findConsoleDir } from '../server/routes/console.ts';
import { createToken } from '../server/routes/tokens.ts';
import { isStoreError, StoreErrorCode } from '../store/errors.ts';
import { openPostgresStore } from '../store/postgres.ts';
import { openSqliteStore } from '../store/sqlite.ts';
import type { Store } from '../store/store.ts';
import { CliError } from './policy-files.ts';

export const DEFAULT_PORT = 8470;
export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_DATA = '.hueguard';

export interface StoreOptions {
  data?: string;
  postgres?: string;
}

/** Open the store the options name: PostgreSQL by URL, else SQLite in the data directory. */
export async function openStore(opts: StoreOptions): Promise<{ store: Store; where: string }> {
  if (opts.postgres !== undefined) {
    if (opts.data !== undefined) throw new CliError('give --data or --postgres, not both');
    try {
      return { store: await openPostgresStore({ url: opts.postgres }), where: 'PostgreSQL' };
    } catch (e) {
      throw new CliError(`cannot open the PostgreSQL store: ${(e as Error).message}`);
    }
  }
  const dir = resolve(opts.data ?? DEFAULT_DATA);
  try {
    return { store: await openSqliteStore({ dir }), where: `SQLite in ${dir}` };
  } catch (e) {
    throw new CliError(`cannot open the SQLite store in ${dir}: ${(e as Error).message}`);
  }
}

/** The admin token to print: created on first start (none exists), or HUEGUARD_ADMIN_TOKEN's registered. */
async function ensureAdminToken(store: Store, fromEnv: string | undefined): Promise<string | null> {
  const ctx = { store, now: () => new Date() };
  if (fromEnv !== undefined && fromEnv !== '') {
    if (fromEnv.length < 16) throw new CliError('HUEGUARD_ADMIN_TOKEN must be at least 16 characters');
    if ((await store.tokenByHash(hashSecret(fromEnv))) === null) {
      try {
        await createToken(ctx, { name: 'admin', role: 'admin', host: null, secret: fromEnv });
      } catch (e) {
        // another controller on the same database registered it first
        if (!isStoreError(e, StoreErrorCode.conflict)) throw e;
      }
    }
    return null;
  }
  if ((await store.tokens()).length > 0) return null;
  return (await createToken(ctx, { name: 'admin', role: 'admin', host: null })).secret;
}

function parsePort(text: string | undefined): number {
  if (text === undefined) return DEFAULT_PORT;
  if (!/^\d+$/.test(text) || Number(text) > 65535) throw new CliError(`--port must be a number from 0 to 65535, not "${text}"`);
  return Number(text);
}

export interface ServeOptions extends StoreOptions {
  host?: string;
  port?: string;
  tlsCert?: string;
  tlsKey?: string;
  /** the built console to serve at `/` (default: console/dist of this checkout) */
  console?: string;
}

export async function serve(opts: ServeOptions): Promise<number> {
  const port = parsePort(opts.port);
  const host = opts.host ?? DEFAULT_HOST;
  if ((opts.tlsCert === undefined) !== (opts.tlsKey === undefined)) throw new CliError('--tls-cert and --tls-key go together');
  let tls: { cert: Buffer; key: Buffer } | undefined;
  if (opts.tlsCert !== undefined && opts.tlsKey !== undefined) {
    try {
      tls = { cert: readFileSync(opts.tlsCert), key: readFileSync(opts.tlsKey) };
    } catch (e) {
      throw new CliError(`cannot read the TLS certificate or key: ${(e as Error).message}`);
    }
  }
  tuneControllerRuntime();
  const { store, where } = await openStore(opts);
  let app;
  try {
    const token = await ensureAdminToken(store, process.env.HUEGUARD_ADMIN_TOKEN);
    const consoleDir = opts.console === undefined ? findConsoleDir() : resolve(opts.console);
    if (opts.console !== undefined && !existsSync(`${consoleDir}/index.html`)) throw new CliError(`--console ${opts.console}: no index.html there (build it with npm run build:console)`);
    ({ app } = await buildApp({ store, tls, logger: { level: 'warn' }, consoleDir }));
    try {
      await app.listen({ host, port });
    } catch (e) {
      throw new CliError(`cannot listen on ${host}:${port}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    const addr = app.server.address() as AddressInfo;
    const shownHost = addr.address.includes(':') ? `[${addr.address}]` : addr.address;
    process.stdout.write(`hueguard controller listening on ${tls ? 'https' : 'http'}://${shownHost}:${addr.port} (${where})\n`);
    const url = `${tls ? 'https' : 'http'}://${shownHost}:${addr.port}/`;
    process.stdout.write(consoleDir === null
      ? 'console: not built (npm run build:console), the API alone is served\n'
      : `console: ${url} (sign in with a token or a user's password)\n`);
    if (token !== null) process.stdout.write(`admin token (shown once; send it as "Authorization: Bearer TOKEN"): ${token}\n`);
  } catch (e) {
    await app?.close();
    await store.close();
    throw e;
  }
  const running = app;
  await new Promise<void>((done) => {
    const stop = (signal: string) => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      process.stderr.write(`hueguard: ${signal}: shutting down\n`);
      done();
    };
    const onInt = () => stop('SIGINT');
    const onTerm = () => stop('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
  });
  await running.close();
  await store.close();
  return 0;
}
