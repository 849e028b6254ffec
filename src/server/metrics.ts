/**
 * Prometheus metrics in the text exposition format (version 0.0.4), without a client library: counters and gauges
 * with labels, and one latency histogram. `Metrics` holds the controller's series: decisions, admissions,
 * policy, request latency, event streams, evidence appraised, trust transitions and plan versions.
 */
import type { FastifyInstance } from 'fastify';

type Labels = Record<string, string>;

const escape = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
const labelText = (l: Labels) => {
  const keys = Object.keys(l);
  return keys.length === 0 ? '' : `{${keys.map((k) => `${k}="${escape(l[k])}"`).join(',')}}`;
};

abstract class Series {
  constructor(readonly name: string, readonly help: string, readonly type: 'counter' | 'gauge' | 'histogram') {}
  abstract lines(): string[];
  render(): string {
    return [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`, ...this.lines()].join('\n');
  }
}

export class Counter extends Series {
  private readonly values = new Map<string, { labels: Labels; value: number }>();
  constructor(name: string, help: string) {
    super(name, help, 'counter');
  }
  inc(labels: Labels = {}, by = 1): void {
    const key = labelText(labels);
    const e = this.values.get(key);
    if (e) e.value += by;
    else this.values.set(key, { labels, value: by });
  }
  get(labels: Labels = {}): number {
    return this.values.get(labelText(labels))?.value ?? 0;
  }
  lines(): string[] {
    return [...this.values.values()].map((e) => `${this.name}${labelText(e.labels)} ${e.value}`);
  }
}

export class Gauge extends Series {
  private readonly values = new Map<string, { labels: Labels; value: number }>();
  constructor(name: string, help: string) {
    super(name, help, 'gauge');
  }
  set(value: number, labels: Labels = {}): void {
    this.values.set(labelText(labels), { labels, value });
  }
  lines(): string[] {
    return [...this.values.values()].map((e) => `${this.name}${labelText(e.labels)} ${e.value}`);
  }
}

export class Histogram extends Series {
  private readonly values = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();
  constructor(name: string, help: string, readonly buckets: readonly number[]) {
    super(name, help, 'histogram');
  }
  observe(value: number, labels: Labels = {}): void {
    const key = labelText(labels);
    let e = this.values.get(key);
    if (!e) {
      e = { labels, counts: this.buckets.map(() => 0), sum: 0, count: 0 };
      this.values.set(key, e);
    }
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]) e.counts[i]++;
    e.sum += value;
    e.count++;
  }
  lines(): string[] {
    const out: string[] = [];
    for (const e of this.values.values()) {
      this.buckets.forEach((b, i) => out.push(`${this.name}_bucket${labelText({ ...e.labels, le: String(b) })} ${e.counts[i]}`));
      out.push(`${this.name}_bucket${labelText({ ...e.labels, le: '+Inf' })} ${e.count}`);
      out.push(`${this.name}_sum${labelText(e.labels)} ${e.sum}`);
      out.push(`${this.name}_count${labelText(e.labels)} ${e.count}`);
    }
    return out;
  }
}

/** The controller's series. */
export class Metrics {
  readonly decisions = new Counter('hueguard_decisions_total', 'Decisions answered, by op (share, use, authorized, start) and answer (allow, deny, error).');
  readonly admissions = new Counter('hueguard_admissions_total', 'Admission requests answered, by answer (allow, deny).');
  readonly policyVersion = new Gauge('hueguard_policy_version', 'The store version number of the published policy (0: none).');
  readonly publishes = new Counter('hueguard_policy_publishes_total', 'Policy publish and revert attempts, by kind and outcome (accepted, refused).');
  readonly requests = new Histogram(
    'hueguard_http_request_duration_seconds',
    'HTTP request latency, by method, route and status code.',
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  );
  readonly eventStreams = new Gauge('hueguard_event_streams', 'Open server-sent event streams.');
  readonly evidence = new Counter('hueguard_evidence_appraised_total', 'Evidence increments received, by result (ok, failed, refused: unreadable, out of order, bad nonce).');
  readonly trustTransitions = new Counter('hueguard_trust_transitions_total', 'Trust transitions, by from and to state.');
  readonly plansIssued = new Counter('hueguard_plans_issued_total', 'New plan versions stored, over all hosts.');
  readonly planVersion = new Gauge('hueguard_plan_version', 'The current plan version of each host (as this controller last stored or saw it).');
  readonly evidenceGroups = new Histogram(
    'hueguard_evidence_group_increments',
    'Evidence increments stored together in one transaction (group commit), per transaction.',
    [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000],
  );
  readonly fleetLoads = new Counter('hueguard_fleet_loads_total', 'Times the controller read the whole fleet from the store (at start, and after another writer changed it).');
  readonly pruned = new Counter('hueguard_pruned_total', 'Rows deleted by retention, by table (nonces, sessions, evidence).');

  private readonly all: Series[] = [
    this.decisions, this.admissions, this.policyVersion, this.publishes, this.requests, this.eventStreams,
    this.evidence, this.trustTransitions, this.plansIssued, this.planVersion, this.evidenceGroups, this.fleetLoads, this.pruned,
  ];

  /** Add a series (evidence, trust and plan counters register themselves here). */
  register<S extends Series>(s: S): S {
    this.all.push(s);
    return s;
  }

  render(): string {
    return this.all.map((s) => s.render()).join('\n') + '\n';
  }
}

/** Time every request (by route pattern, so that the label set stays small). */
export function installRequestMetrics(app: FastifyInstance, metrics: Metrics): void {
  app.addHook('onResponse', async (request, reply) => {
    metrics.requests.observe(reply.elapsedTime / 1000, {
      method: request.method,
      route: request.routeOptions.url ?? 'unmatched',
      code: String(reply.statusCode),
    });
  });
}
