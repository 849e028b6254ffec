/**
 * A stand-in for the agent's hook socket (hook-protocol.ts): answers each `POST /v1/hook` with `answer(request)` and
 * records the requests. Tests that need the real admission use the agent's own socket instead.
 */
import { rmSync } from 'node:fs';
import http from 'node:http';
import type { HookAnswerV1, HookRequestV1 } from '../../src/agent/hook-protocol.ts';

export interface HookAgentStub {
  socket: string;
  requests: HookRequestV1[];
  /** stop answering (the socket goes away: the hook then finds no agent) */
  close(): Promise<void>;
  /** answer again on the same socket */
  reopen(): Promise<void>;
}

export const ALLOW: HookAnswerV1 = { allow: true, reason: 'allowed', message: 'hueguard: allowed' };

export async function startHookAgentStub(socket: string, answer: (req: HookRequestV1) => HookAnswerV1): Promise<HookAgentStub> {
  const requests: HookRequestV1[] = [];
  let server: http.Server | null = null;
  const open = async () => {
    rmSync(socket, { force: true });
    const s = http.createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (d: string) => (body += d));
      req.on('end', () => {
        let r: HookRequestV1;
        try {
          r = JSON.parse(body) as HookRequestV1;
        } catch {
          res.writeHead(400).end();
          return;
        }
        requests.push(r);
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer(r)));
      });
    });
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(socket, () => resolve());
    });
    server = s;
  };
  await open();
  return {
    socket,
    requests,
    async close() {
      const s = server;
      server = null;
      if (!s) return;
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
      rmSync(socket, { force: true });
    },
    reopen: open,
  };
}
