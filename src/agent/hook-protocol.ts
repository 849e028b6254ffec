/**
 * What libvirt's `qemu` hook (`hueguard hook qemu`) and the local agent say to each other over the agent's unix
 * socket: HTTP/1.1, one `POST /v1/hook` per hook call. On `prepare` the agent answers whether the domain may start;
 * other operations are lifecycle notices (always allowed). Anything but a clear `allow: true` means deny.
 */

/** The default socket path (`hueguard agent --socket`, `hueguard hook qemu --socket`). */
export const DEFAULT_AGENT_SOCKET = '/run/hueguard/agent.sock';

export interface HookRequestV1 {
  /** libvirt's hook arguments: the domain name, the operation (prepare, start, started, stopped, release, migrate…), its sub-operation */
  domain: string;
  op: string;
  subop: string;
  /** the domain XML libvirt passed on standard input */
  xml: string;
}

export interface HookAnswerV1 {
  allow: boolean;
  /** a stable code: allowed, or the admission's reason (conflict_set_occupied, not_authorized, …), or agent_error */
  reason: string;
  /** one line for libvirt's error message */
  message: string;
}
