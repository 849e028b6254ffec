/**
 * Who may call what: the one table of the controller's access rules, by route.
 *
 * Roles (issue 4): `viewer` reads; `operator` also assigns labels (VMs, disks, networks) and asks admission;
 * `admin` also writes policy and manages tokens and users; `agent` is bound to one host and may report and fetch
 * for that host only. `app.ts` refuses to start if a route has no row here, so a new route cannot slip in unguarded.
 */
import { ROLES, type Role } from '../api/types.ts';

/**
 * Where an agent route names its host: the `:name` path parameter, the body's `host` field, or the host the store
 * places the VM named by `:name` on (`vm.host`: an agent acts for the VMs of its own host only).
 */
export type HostFrom = 'params.name' | 'body.host' | 'vm.host';

export type AccessRule =
  | { public: true }
  | {
      public?: false;
      roles: readonly Role[];
      /** for the `agent` role: the host the request is about must be the token's own */
      agentHost?: HostFrom;
    };

const ANY: readonly Role[] = ROLES;
const VIEWER: readonly Role[] = ['viewer', 'operator', 'admin'];
const OPERATOR: readonly Role[] = ['operator', 'admin'];
const ADMIN: readonly Role[] = ['admin'];
const own = (roles: readonly Role[], agentHost: HostFrom): AccessRule => ({ roles: [...roles, 'agent'], agentHost });

/** `METHOD /path` (fastify's pattern) → rule. HEAD follows GET. */
export const ACCESS: Readonly<Record<string, AccessRule>> = {
  'GET /healthz': { public: true },
  'POST /api/v1/session': { public: true },
  'GET /api/v1/session': { roles: ANY },
  'DELETE /api/v1/session': { roles: ANY },
  'GET /openapi.json': { roles: ANY },
  'GET /metrics': { roles: VIEWER },

  // policy: everyone reads, the admin writes
  'GET /api/v1/policy': { roles: VIEWER },
  'GET /api/v1/policy/versions': { roles: VIEWER },
  'GET /api/v1/policy/versions/:n': { roles: VIEWER },
  'GET /api/v1/policy/diff': { roles: VIEWER },
  'GET /api/v1/policy/drafts': { roles: VIEWER },
  'GET /api/v1/policy/drafts/:id': { roles: VIEWER },
  // the preview replays the live fleet against a draft: work the size of the fleet, for those who act on it
  'GET /api/v1/policy/drafts/:id/preview': { roles: OPERATOR },
  'POST /api/v1/policy/drafts/:id/validate': { roles: VIEWER },
  'POST /api/v1/policy/drafts': { roles: ADMIN },
  'PUT /api/v1/policy/drafts/:id': { roles: ADMIN },
  'DELETE /api/v1/policy/drafts/:id': { roles: ADMIN },
  'POST /api/v1/policy/drafts/:id/publish': { roles: ADMIN },
  'POST /api/v1/policy/revert': { roles: ADMIN },
  'POST /api/v1/policy/import': { roles: ADMIN },

  // fleet: agents report their own host; operators label; everyone reads
  'GET /api/v1/hosts': { roles: VIEWER },
  'GET /api/v1/hosts/:name': own(VIEWER, 'params.name'),
  'GET /api/v1/hosts/:name/vms': own(VIEWER, 'params.name'),
  'PUT /api/v1/hosts/:name': own(ADMIN, 'params.name'),
  'PUT /api/v1/hosts/:name/vms': own(ADMIN, 'params.name'),
  'GET /api/v1/vms': { roles: VIEWER },
  'GET /api/v1/vms/:name': { roles: VIEWER },
  'PUT /api/v1/vms/:name/label': { roles: OPERATOR },
  'GET /api/v1/resources': { roles: VIEWER },

  // evidence and trust: the agent of the VM's host reports; operators re-admit; everyone reads
  'POST /api/v1/vms/:name/nonce': own(OPERATOR, 'vm.host'),
  'POST /api/v1/vms/:name/evidence': { roles: ['agent'], agentHost: 'vm.host' },
  // a host's agent reports all its VMs at once (each VM must be on that host: checked with the request)
  'POST /api/v1/hosts/:name/nonces': own(OPERATOR, 'params.name'),
  'POST /api/v1/hosts/:name/evidence': { roles: ['agent'], agentHost: 'params.name' },
  // the VM's attestation key: its host's agent registers it once (trust on first use), an operator may replace it
  'PUT /api/v1/vms/:name/ak': own(OPERATOR, 'vm.host'),
  'GET /api/v1/vms/:name/trust': { roles: VIEWER },
  'GET /api/v1/vms/:name/trust/history': { roles: VIEWER },
  'POST /api/v1/vms/:name/readmit': { roles: OPERATOR },

  // what the host's data plane enforces and drops: its agent reports, everyone reads
  'PUT /api/v1/hosts/:name/report': { roles: ['agent'], agentHost: 'params.name' },
  'GET /api/v1/hosts/:name/report': own(VIEWER, 'params.name'),
  'GET /api/v1/blocked': { roles: VIEWER },
  // plans: the host's agent fetches its own, everyone reads
  'GET /api/v1/hosts/:name/plan': own(VIEWER, 'params.name'),
  'PUT /api/v1/resources/:kind/:id': { roles: OPERATOR },
  'DELETE /api/v1/resources/:kind/:id': { roles: OPERATOR },

  // the reference monitor
  'POST /api/v1/admission': own(OPERATOR, 'body.host'),
  'POST /api/v1/decide': { roles: VIEWER },
  // what-if questions about the live fleet: nothing is recorded or changed
  'POST /api/v1/whatif/share': { roles: VIEWER },
  'POST /api/v1/whatif/start': { roles: VIEWER },
  // the console's files (its API calls authenticate like any other)
  'GET /': { public: true },
  'GET /assets/:file': { public: true },

  // audit, events
  'GET /api/v1/audit': { roles: VIEWER },
  'GET /api/v1/events': { roles: VIEWER },

  // access management
  'GET /api/v1/tokens': { roles: ADMIN },
  'POST /api/v1/tokens': { roles: ADMIN },
  'DELETE /api/v1/tokens/:id': { roles: ADMIN },
  'PUT /api/v1/users/:name': { roles: ADMIN },
};

/** The rule of a route, or undefined if the table has no row for it. */
export function accessRule(method: string, url: string): AccessRule | undefined {
  const m = method === 'HEAD' ? 'GET' : method;
  return ACCESS[`${m} ${url}`];
}

/** May this role call a route with this rule at all (the host check comes once the request is parsed)? */
export function roleAllowed(rule: AccessRule, role: Role): boolean {
  return rule.public === true || rule.roles.includes(role);
}
