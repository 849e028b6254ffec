/**
 * libvirt's `qemu` hook, the client side: libvirt runs `/etc/libvirt/hooks/qemu DOMAIN OP SUBOP EXTRA` with the
 * domain XML on stdin at each step of a domain's life; the hook asks the local agent over its unix socket
 * (hook-protocol.ts). On `prepare` a non-zero exit aborts the start and libvirt puts the hook's stderr in its
 * error, so only a clear `{allow: true}` lets a domain start: no agent, no answer in time, or an answer that is not
 * one, all deny. Every other operation is a notice that never fails the domain.
 *
 * libvirt passes the hook no environment of ours (only PATH, HOME and LC_ALL), hence `hookScript` writes the
 * socket path into the script itself; libvirt's arguments go to the binary as "$@", never through the shell.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { AgentError } from './errors.ts';
import type { HookAnswerV1, HookRequestV1 } from './hook-protocol.ts';
import { MAX_DOMAIN_XML } from './libvirt-xml.ts';

/** prepare waits this long for the agent's answer (the agent may ask the controller) */
export const PREPARE_TIMEOUT_MS = 5000;
/** a notice is given up after this: a stopped agent must not slow every domain's stop */
export const NOTICE_TIMEOUT_MS = 1500;
const MAX_ANSWER = 64 << 10;
const MAX_MESSAGE = 1000;

export interface HookArgs {
  domain: string;
  op: string;
  subop: string;
  extra?: string;
}

export interface HookOutcome {
  exitCode: 0 | 1;
  /** one line for stderr (libvirt's error on a refused prepare), or null */
  message: string | null;
  answer: HookAnswerV1 | null;
}

/** One line, printable, bounded: it ends up inside libvirt's error message. */
export function oneLine(text: string): string {
  // C0, DEL, C1 and Unicode line separators: libvirt's error message is one line
  const flat = text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, ' ').trim();
  return flat.length > MAX_MESSAGE ? `${flat.slice(0, MAX_MESSAGE - 1)}…` : flat;
}

/** POST one request to the agent and return its answer; throws on anything but a well-formed answer in time. */
export function askAgent(socket: string, req: HookRequestV1, timeoutMs: number): Promise<HookAnswerV1> {
  const body = JSON.stringify(req);
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (err: Error | null, answer?: HookAnswerV1) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      r.destroy();
      if (err) reject(err);
      else resolve(answer!);
    };
    const timer = setTimeout(() => finish(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    const r = http.request(
      {
        socketPath: socket,
        path: '/v1/hook',
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), connection: 'close' },
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_ANSWER) finish(new Error(`answer larger than ${MAX_ANSWER} bytes`));
          else chunks.push(c);
        });
        res.on('error', (e) => finish(e));
        res.on('end', () => {
          if (res.statusCode !== 200) return finish(new Error(`the agent answered HTTP ${res.statusCode}`));
          let v: unknown;
          try {
            v = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch {
            return finish(new Error('the agent answered something that is not JSON'));
          }
          const a = v as Partial<HookAnswerV1> | null;
          if (typeof a !== 'object' || a === null || typeof a.allow !== 'boolean' || typeof a.reason !== 'string' || typeof a.message !== 'string') {
            return finish(new Error('the agent answered without allow, reason and message'));
          }
          finish(null, { allow: a.allow, reason: a.reason, message: a.message });
        });
      },
    );
    r.on('error', (e: NodeJS.ErrnoException) => finish(new Error(e.code ?? e.message)));
    r.end(body);
  });
}

/**
 * One hook call: ask (prepare) or tell (anything else) the agent. `xml` is what libvirt wrote on stdin, or null
 * when it was larger than any domain definition.
 */
export async function runQemuHook(args: HookArgs, xml: string | null, options: { socket: string; timeoutMs?: number }): Promise<HookOutcome> {
  const who = JSON.stringify(args.domain);
  if (args.op !== 'prepare') {
    // a notice: the agent learns of it or not, the domain goes on either way
    try {
      const answer = await askAgent(options.socket, { domain: args.domain, op: args.op, subop: args.subop, xml: xml ?? '' }, options.timeoutMs ?? NOTICE_TIMEOUT_MS);
      return { exitCode: 0, message: null, answer };
    } catch {
      return { exitCode: 0, message: null, answer: null };
    }
  }
  if (xml === null) return { exitCode: 1, message: `hueguard: domain ${who}: its XML is larger than ${MAX_DOMAIN_XML} bytes: refusing to start`, answer: null };
  let answer: HookAnswerV1;
  try {
    answer = await askAgent(options.socket, { domain: args.domain, op: args.op, subop: args.subop, xml }, options.timeoutMs ?? PREPARE_TIMEOUT_MS);
  } catch (e) {
    return { exitCode: 1, message: oneLine(`hueguard: no answer from the agent at ${options.socket} (${(e as Error).message}): refusing to start domain ${who}`), answer: null };
  }
  if (answer.allow === true) return { exitCode: 0, message: null, answer };
  const why = oneLine(answer.message) || `hueguard: domain ${who} may not start (${oneLine(answer.reason) || 'refused'})`;
  return { exitCode: 1, message: why, answer };
}

/** Read standard input up to `limit` bytes (null past it), for at most `timeoutMs`; a terminal gives ''. */
export function readInput(input: NodeJS.ReadStream, limit = MAX_DOMAIN_XML, timeoutMs = 5000): Promise<string | null> {
  if (input.isTTY) return Promise.resolve('');
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (v: string | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      input.removeAllListeners('data');
      input.pause();
      resolve(v);
    };
    // libvirt closes stdin after the XML; past the deadline what came is all there is
    const timer = setTimeout(() => finish(size > limit ? null : Buffer.concat(chunks).toString('utf8')), timeoutMs);
    input.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) finish(null);
      else chunks.push(c);
    });
    input.on('end', () => finish(Buffer.concat(chunks).toString('utf8')));
    input.on('error', () => finish(Buffer.concat(chunks).toString('utf8')));
  });
}

/** A word for sh, single-quoted. */
export function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

const MARKER = 'written by `hueguard hook install`';

/** The `qemu` hook script: it execs node on the hueguard binary, libvirt's arguments following as "$@". */
export function hookScript(o: { node: string; bin: string; socket?: string }): string {
  for (const [what, p] of [['node', o.node], ['hueguard binary', o.bin], ['socket', o.socket ?? '/']] as const) {
    if (!p.startsWith('/') || /[\n\r\0]/.test(p)) throw new AgentError('bad_argument', `the ${what} path must be absolute and on one line: ${JSON.stringify(p)}`);
  }
  const socket = o.socket ? ` --socket ${shellQuote(o.socket)}` : '';
  return [
    '#!/bin/sh',
    `# libvirt's qemu hook, ${MARKER}: the hueguard agent admits each domain start.`,
    '# libvirt passes the domain, operation and sub-operation as arguments and the domain XML on stdin.',
    `exec ${shellQuote(o.node)} ${shellQuote(o.bin)} hook qemu${socket} -- "$@"`,
    '',
  ].join('\n');
}

/** Write `DIR/qemu` (mode 755), refusing to replace a hook hueguard did not write unless `force`. Returns its path. */
export function installHook(dir: string, o: { node: string; bin: string; socket?: string; force?: boolean }): string {
  const path = join(dir, 'qemu');
  if (existsSync(path) && !o.force) {
    let text = '';
    try {
      text = readFileSync(path, 'utf8');
    } catch {
      // unreadable: treat as someone else's
    }
    if (!text.includes(MARKER)) throw new AgentError('bad_argument', `${path} exists and was not written by hueguard: give --force to replace it`);
  }
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const tmp = join(dir, `.qemu.hueguard-${process.pid}`);
  writeFileSync(tmp, hookScript(o), { mode: 0o755 });
  chmodSync(tmp, 0o755);
  renameSync(tmp, path);
  return path;
}
