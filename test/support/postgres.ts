/**
 * A throwaway PostgreSQL server for tests: `initdb` into a temp dir and `pg_ctl start` on a free loopback port,
 * with its unix socket in the temp dir too, so it touches nothing of the machine's own clusters. As root the server
 * runs as the `postgres` OS user (PostgreSQL refuses root), through `runuser`. With HUEGUARD_TEST_POSTGRES_URL set
 * (a superuser's URL), that server is used instead and only the databases the tests created are dropped.
 *
 * The server runs with fsync=off: tests kill clients, never the server, so its own crash safety is not under test.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export interface PostgresServer {
  /** a new, empty database's URL */
  createDatabase(): Promise<string>;
  dropDatabase(url: string): Promise<void>;
  /** stop the server (or, for an outside server, drop the databases still left) */
  stop(): Promise<void>;
}

const ENV_URL = 'HUEGUARD_TEST_POSTGRES_URL';

/** The newest installed PostgreSQL's bin directory (Debian's layout, then PATH), or null. */
function binDir(): string | null {
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
      .sort((a, b) => Number(b) - Number(a));
    if (versions.length) return join(root, versions[0], 'bin');
  }
  const which = spawnSync('sh', ['-c', 'command -v initdb'], { encoding: 'utf8' });
  const found = which.status === 0 ? which.stdout.trim() : '';
  return found ? found.slice(0, found.lastIndexOf('/')) : null;
}

const isRoot = () => process.getuid?.() === 0;

function postgresUser(): { uid: number; gid: number } | null {
  const uid = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (uid.status !== 0 || gid.status !== 0) return null;
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/** Why a PostgreSQL server cannot be had here, or null if it can (a synchronous check, to skip a suite). */
export function postgresUnavailable(): string | null {
  if (process.env[ENV_URL]) return null;
  if (!binDir()) return `PostgreSQL is not installed (no initdb under /usr/lib/postgresql/*/bin nor on PATH; or set ${ENV_URL})`;
  if (isRoot()) {
    if (!postgresUser()) return 'running as root and there is no postgres OS user to run the server as';
    if (spawnSync('sh', ['-c', 'command -v runuser'], { encoding: 'utf8' }).status !== 0) return 'running as root and runuser is missing';
  }
  return null;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function withDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

async function adminQuery(adminUrl: string, sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: adminUrl });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

function databaseManager(adminUrl: string) {
  const created = new Set<string>();
  let n = 0;
  return {
    created,
    async createDatabase(): Promise<string> {
      const name = `hg_test_${process.pid}_${Date.now().toString(36)}_${n++}`;
      await adminQuery(adminUrl, `CREATE DATABASE ${name}`);
      created.add(name);
      return withDatabase(adminUrl, name);
    },
    async dropDatabase(url: string): Promise<void> {
      const name = new URL(url).pathname.slice(1);
      if (!created.has(name)) return;
      await adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      created.delete(name);
    },
  };
}

/** Start a server (or use HUEGUARD_TEST_POSTGRES_URL's); callers check `postgresUnavailable()` first. */
export async function startPostgres(): Promise<PostgresServer> {
  const outside = process.env[ENV_URL];
  if (outside) {
    const dbs = databaseManager(outside);
    return {
      createDatabase: dbs.createDatabase,
      dropDatabase: dbs.dropDatabase,
      async stop() {
        for (const name of [...dbs.created]) await dbs.dropDatabase(withDatabase(outside, name));
      },
    };
  }
  const bin = binDir();
  if (!bin) throw new Error('PostgreSQL is not installed');
  const owner = isRoot() ? postgresUser() : null;
  const run = (cmd: string, args: string[]) => {
    const argv = owner ? ['runuser', ['-u', 'postgres', '--', join(bin, cmd), ...args]] as const : [join(bin, cmd), args] as const;
    const r = spawnSync(argv[0], [...argv[1]], { encoding: 'utf8', cwd: '/' });
    if (r.status !== 0) throw new Error(`${cmd} failed (${r.status}): ${r.stderr || r.stdout}`);
  };

  const dir = mkdtempSync(join(tmpdir(), 'hg-pg-'));
  const data = join(dir, 'data');
  const sockets = join(dir, 'sock');
  const log = join(dir, 'server.log');
  mkdirSync(sockets);
  chmodSync(dir, 0o700);
  if (owner) for (const p of [dir, sockets]) chownSync(p, owner.uid, owner.gid);
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  let port = 0;
  try {
    run('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
    // The port may be taken between finding it free and the server binding it: try a few.
    for (let attempt = 0; ; attempt++) {
      port = await freePort();
      try {
        const options = `-p ${port} -k ${sockets} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=200`;
        run('pg_ctl', ['-D', data, '-l', log, '-w', '-t', '60', '-o', options, 'start']);
        break;
      } catch (e) {
        if (attempt === 2) throw e;
      }
    }
  } catch (e) {
    const tail = existsSync(log) ? readFileSync(log, 'utf8').slice(-2000) : '';
    cleanup();
    throw new Error(`${(e as Error).message}\n${tail}`);
  }

  let stopped = false;
  const stopNow = () => {
    if (stopped) return;
    stopped = true;
    try {
      run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
    } finally {
      cleanup();
    }
  };
  // A test process that ends without calling stop() must not leave a server behind.
  process.once('exit', stopNow);
  const dbs = databaseManager(`postgresql://postgres@127.0.0.1:${port}/postgres`);
  return {
    createDatabase: dbs.createDatabase,
    dropDatabase: dbs.dropDatabase,
    async stop() {
      process.removeListener('exit', stopNow);
      stopNow();
    },
  };
}
