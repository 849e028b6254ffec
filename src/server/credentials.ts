/**
 * Secrets and their hashes: API tokens (random 32-byte secrets, shown once, stored as SHA-256), session cookies,
 * CSRF tokens, and user passwords (scrypt, `scrypt$N$r$p$salt$hash`). Nothing here touches the store.
 */
import { createHash, randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/** `hg_` + 32 random bytes, base64url: what a client puts after `Authorization: Bearer`. */
export function newTokenSecret(): string {
  return `hg_${randomBytes(32).toString('base64url')}`;
}

/** A random opaque secret for cookies and CSRF tokens. */
export function newSecret(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

/** A short random id (tokens, drafts). */
export function newId(): string {
  return randomBytes(9).toString('base64url');
}

/** Hex SHA-256: how token and session secrets are stored (a secret of 256 random bits needs no slow hash). */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** Compare two strings in time independent of where they differ. */
export function sameSecret(a: string, b: string): boolean {
  const ba = Buffer.from(a, 'utf8');
  const bb = Buffer.from(b, 'utf8');
  return ba.length === bb.length && timingSafeEqual(ba, bb);
}

function scrypt(password: string, salt: Buffer, keylen: number, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scryptCb(password, salt, keylen, opts, (err, key) => (err ? reject(err) : resolve(key))));
}

/** OWASP's scrypt floor (N=2^17, r=8, p=1) needs 128 MiB per hash; 2^15 keeps a sign-in at ~50 ms and 32 MiB. */
const SCRYPT = { N: 1 << 15, r: 8, p: 1, keylen: 32 };

/** `scrypt$N$r$p$salt$hash` (base64url salt and hash). */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const { N, r, p, keylen } = SCRYPT;
  const key = await scrypt(password, salt, keylen, { N, r, p, maxmem: 256 * N * r });
  return `scrypt$${N}$${r}$${p}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

/** A hash to check against when the user does not exist, so that a wrong name costs as long as a wrong password. */
let decoy: Promise<string> | undefined;

/** Does `password` match the stored hash? A malformed hash matches nothing. Takes as long for an unknown user. */
export async function verifyPassword(password: string, stored: string | null): Promise<boolean> {
  if (stored === null) {
    decoy ??= hashPassword(newSecret());
    await verifyPassword(password, await decoy);
    return false;
  }
  const m = /^scrypt\$(\d+)\$(\d+)\$(\d+)\$([\w-]+)\$([\w-]+)$/.exec(stored);
  if (!m) return false;
  const [N, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (N > 1 << 20 || r > 32 || p > 16) return false;
  const want = Buffer.from(m[5], 'base64url');
  const key = await scrypt(password, Buffer.from(m[4], 'base64url'), want.length, { N, r, p, maxmem: 256 * N * r + 1024 });
  return timingSafeEqual(key, want);
}
