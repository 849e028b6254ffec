/**
 * The policy-update transaction (DESIGN.md §2): replay the running state against the new policy; `reject`
 * refuses on any violation (Xen's rule), `revoke` applies and isolates exactly the violators.
 *
 * Small old/new policies are built here as model objects; expectations are written from DESIGN.md and Xen's
 * acmpolicy.py, and the property tests compare against a replay computed here with the plain evaluator.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Label, Policy } from '../policy/model.ts';
import { UNLABELED } from '../policy/model.ts';
import { loadXenPolicy } from '../policy/xen-data.test-support.ts';
import { validatePolicy } from '../policy/validate.ts';
import { arbPolicy, arbSuccessor } from '../policy/policy.arbitrary.ts';
import { compilePolicy } from './compile.ts';
import { explainStart } from './decisions.ts';
import { isMonitorError } from './errors.ts';
import {
  isXenDefaultPolicy,
  updatePolicy,
  type RunningState,
  type UpdateMode,
  type UpdateResult,
  type ViolationCode,
} from './update.ts';
import { PlainHost, pairKey, plainAuthorized, plainRenames, plainShare, plainSharingDiff, plainUse } from './reference.test-support.ts';

const RUNS = 300;

// ---- a small policy and its edits --------------------------------------------------------------------------------

const L = (name: string, colors: string[], walls: string[] = [], extra: Partial<Label> = {}): Label => ({
  name,
  colors,
  walls,
  onUntrusted: 'isolate',
  ...extra,
});

function assertValid(p: Policy): void {
  assert.deepEqual(validatePolicy(p), [], `policy ${p.name} ${p.version} must be valid`);
}

/** acme 1.0: pepsi and coke in conflict; a VIO label with both colors; an ops label. */
function acme(): Policy {
  const p: Policy = {
    name: 'acme',
    version: '1.0',
    colors: ['pepsi', 'coke', 'infra'],
    walls: ['pepsi-w', 'coke-w', 'ops-w'],
    conflicts: [{ name: 'soft-drinks', walls: ['pepsi-w', 'coke-w'] }],
    host: 'infra-host',
    labels: [
      L('infra-host', ['pepsi', 'coke', 'infra']),
      L('pepsi-web', ['pepsi'], ['pepsi-w']),
      L('coke-db', ['coke'], ['coke-w']),
      L('vio', ['pepsi', 'coke'], [], { onUntrusted: 'alert' }),
      L('ops', ['infra'], ['ops-w']),
    ],
    resources: [
      { name: 'pepsi-disk', color: 'pepsi' },
      { name: 'coke-disk', color: 'coke' },
    ],
  };
  assertValid(p);
  return p;
}

/** acme 1.1 (from acme 1.0), edited. */
function next(edit: (p: Policy) => void = () => {}, old: Policy = acme()): Policy {
  const p = structuredClone(old);
  p.version = '1.1';
  p.from = { name: old.name, version: old.version };
  edit(p);
  assertValid(p);
  return p;
}

const label = (p: Policy, name: string) => p.labels.find((l) => l.name === name)!;

/**
 * The fleet running under acme 1.0 (it obeys acme 1.0): h1 runs the pepsi side, h2 the coke side.
 * Flows: web1↔vio1 (pepsi), db1↔vio2 (coke).
 */
function fleet(): RunningState {
  return {
    hosts: [
      {
        name: 'h1',
        vms: [
          { name: 'web1', label: 'pepsi-web', resources: ['pepsi-disk'] },
          { name: 'vio1', label: 'vio', resources: ['pepsi-disk'] },
          { name: 'ops1', label: 'ops' },
        ],
      },
      {
        name: 'h2',
        vms: [
          { name: 'db1', label: 'coke-db', resources: ['coke-disk'] },
          { name: 'vio2', label: 'vio' },
        ],
      },
    ],
    flows: [
      { a: 'web1', b: 'vio1' },
      { a: 'vio2', b: 'db1' },
    ],
  };
}

const both = (oldP: Policy, newP: Policy, state: RunningState) =>
  (['reject', 'revoke'] as UpdateMode[]).map((m) => updatePolicy(oldP, newP, state, m));

/** Violations as "vm:code" strings, sorted. */
const violated = (r: UpdateResult) => r.violations.map((v) => `${v.vm}:${v.code}`).sort();

/** Reject refuses with exactly these violations, saying why; revoke accepts and isolates exactly the VMs. */
function expectViolations(oldP: Policy, newP: Policy, state: RunningState, expected: string[], messageHas: RegExp): UpdateResult[] {
  const [reject, revoke] = both(oldP, newP, state);
  assert.deepEqual(reject.refusals, []);
  assert.equal(reject.accepted, false, 'reject refuses the whole update');
  assert.deepEqual(violated(reject), [...expected].sort());
  for (const v of reject.violations) assert.match(v.message, messageHas);
  assert.deepEqual(reject.isolate, [], 'reject isolates nothing: the old policy stays');
  assert.deepEqual(reject.closedFlows, []);
  assert.equal(revoke.accepted, true, 'revoke applies the update');
  assert.deepEqual(violated(revoke), violated(reject), 'the preview is the same in both modes');
  return [reject, revoke];
}

test('the fleet fits acme 1.0, and an update that changes nothing is accepted in both modes', () => {
  for (const r of both(acme(), next(), fleet())) {
    assert.equal(r.accepted, true);
    assert.deepEqual(r.refusals, []);
    assert.deepEqual(r.violations, []);
    assert.deepEqual(r.isolate, []);
    assert.deepEqual(r.relabeled, []);
    assert.deepEqual(r.sharing, { gained: [], lost: [] });
  }
});

// ---- one test per violation code ---------------------------------------------------------------------------------

test('label_removed: removing the label of a running VM refuses the update (reject) and isolates the VM (revoke)', () => {
  const newP = next((p) => (p.labels = p.labels.filter((l) => l.name !== 'coke-db')));
  const [reject, revoke] = expectViolations(acme(), newP, fleet(), ['db1:label_removed'], /coke-db/);
  assert.equal(reject.violations[0].host, 'h2');
  assert.deepEqual(revoke.isolate, [{ vm: 'db1', host: 'h2', reasons: ['label_removed'] }]);
  // db1's flow has no label on one side any more: it is closed, and vio2 is not isolated for it.
  assert.deepEqual(revoke.closedFlows, [{ a: 'vio2', b: 'db1' }]);
  assert.deepEqual(reject.diff.labels.removed, ['coke-db']);
});

test('host_label_removed: removing the host label makes every VM on such hosts a violator', () => {
  const newP = next((p) => {
    p.labels = p.labels.filter((l) => l.name !== 'infra-host');
    p.labels.push(L('hv', ['pepsi', 'coke', 'infra']));
    p.host = 'hv';
  });
  const [, revoke] = expectViolations(
    acme(),
    newP,
    fleet(),
    ['web1', 'vio1', 'ops1', 'db1', 'vio2'].map((vm) => `${vm}:host_label_removed`),
    /infra-host/,
  );
  assert.equal(revoke.isolate.length, 5);
});

test('not_authorized: a host label losing a color makes the VMs holding it "not authorized to run"', () => {
  const newP = next((p) => (label(p, 'infra-host').colors = ['pepsi', 'infra']));
  const [reject, revoke] = expectViolations(acme(), newP, fleet(), ['db1:not_authorized', 'vio1:not_authorized', 'vio2:not_authorized'], /not authorized/);
  assert.deepEqual(new Set(revoke.isolate.map((i) => i.vm)), new Set(['db1', 'vio1', 'vio2']));
  // isolated VMs' flows are not listed as closed flows: their endpoints still share colors
  assert.deepEqual(revoke.closedFlows, []);
  // the host label itself no longer shares with coke-db (it still does with vio, through pepsi)
  assert.deepEqual(reject.sharing.gained, []);
  assert.deepEqual(reject.sharing.lost.map(([a, b]) => pairKey(a, b)), [pairKey('infra-host', 'coke-db')]);
});

test('resource_label_removed: removing a resource label that a running VM uses is a violation', () => {
  const newP = next((p) => (p.resources = p.resources.filter((r) => r.name !== 'pepsi-disk')));
  const [reject] = expectViolations(acme(), newP, fleet(), ['web1:resource_label_removed', 'vio1:resource_label_removed'], /pepsi-disk/);
  assert.ok(reject.violations.every((v) => v.resource === 'pepsi-disk'));
});

test('resource_forbidden: recoloring a resource label cuts off the VMs that lack the new color, not the VIO one', () => {
  const newP = next((p) => (p.resources.find((r) => r.name === 'pepsi-disk')!.color = 'coke'));
  const [reject, revoke] = expectViolations(acme(), newP, fleet(), ['web1:resource_forbidden'], /pepsi-disk/);
  assert.equal(reject.violations[0].resource, 'pepsi-disk');
  assert.deepEqual(revoke.isolate, [{ vm: 'web1', host: 'h1', reasons: ['resource_forbidden'] }]);
  assert.deepEqual(reject.diff.resources.changed, [{ name: 'pepsi-disk', color: { from: 'pepsi', to: 'coke' } }]);
});

test('wall_conflict: a new conflict set between two running VMs blames the later one in start order', () => {
  const newP = next((p) => p.conflicts.push({ name: 'ops-vs-pepsi', walls: ['ops-w', 'pepsi-w'] }));
  // h1 starts web1 (pepsi-web) before ops1 (ops): ops1 is the violator, blocked by pepsi-web.
  const [reject, revoke] = expectViolations(acme(), newP, fleet(), ['ops1:wall_conflict'], /ops-vs-pepsi/);
  assert.deepEqual(reject.violations[0].blockers, [
    { conflictSet: 'ops-vs-pepsi', wall: 'ops-w', runningLabel: 'pepsi-web', runningWall: 'pepsi-w', running: 1 },
  ]);
  assert.deepEqual(revoke.isolate, [{ vm: 'ops1', host: 'h1', reasons: ['wall_conflict'] }]);
  // The other start order: ops1 first, web1 later → web1 is the violator.
  const reordered = fleet();
  reordered.hosts[0].vms = [reordered.hosts[0].vms[2], ...reordered.hosts[0].vms.slice(0, 2)];
  expectViolations(acme(), newP, reordered, ['web1:wall_conflict'], /ops-vs-pepsi/);
  // On separate hosts nothing conflicts.
  const apart: RunningState = { hosts: [{ name: 'a', vms: [{ name: 'w', label: 'pepsi-web' }] }, { name: 'b', vms: [{ name: 'o', label: 'ops' }] }] };
  assert.equal(updatePolicy(acme(), newP, apart, 'reject').accepted, true);
});

test('wall_conflict: a violator is not counted, so it blames no one after it', () => {
  // acme 1.0 without the soft-drinks set lets pepsi-web and coke-db share h1; 1.1 brings the set back.
  const oldP = next((p) => (p.conflicts = []), acme());
  oldP.version = '1.0';
  delete oldP.from;
  const newP = next((p) => (p.conflicts = [{ name: 'soft-drinks', walls: ['pepsi-w', 'coke-w'] }]), oldP);
  const state: RunningState = {
    hosts: [{ name: 'h1', vms: [{ name: 'p1', label: 'pepsi-web' }, { name: 'c1', label: 'coke-db' }, { name: 'p2', label: 'pepsi-web' }] }],
  };
  // p1 holds the set; c1 is refused (and not counted); p2 is on p1's side of the wall: no violation.
  expectViolations(oldP, newP, state, ['c1:wall_conflict'], /soft-drinks/);
});

test('flow_forbidden: an open flow whose VMs no longer share a color is closed, and neither endpoint is isolated', () => {
  const newP = next((p) => (label(p, 'vio').colors = ['pepsi']));
  const [reject, revoke] = expectViolations(acme(), newP, fleet(), ['vio2:flow_forbidden'], /share no color/);
  assert.equal(reject.violations[0].peer, 'db1');
  assert.deepEqual(revoke.closedFlows, [{ a: 'vio2', b: 'db1' }]);
  assert.deepEqual(revoke.isolate, [], 'a forbidden flow isolates neither endpoint');
  assert.deepEqual(revoke.sharing.lost.map(([a, b]) => pairKey(a, b)).sort(), [pairKey('coke-db', 'vio')]);
});

test('revoke isolates exactly the VM-level violators, each once with every reason', () => {
  const newP = next((p) => {
    label(p, 'infra-host').colors = ['pepsi', 'infra']; // coke VMs not authorized
    p.resources.find((r) => r.name === 'coke-disk')!.color = 'pepsi'; // db1 loses its disk
    label(p, 'vio').colors = ['pepsi']; // the vio2↔db1 flow loses its color
  });
  const r = updatePolicy(acme(), newP, fleet(), 'revoke');
  assert.equal(r.accepted, true);
  const isolated = new Map(r.isolate.map((i) => [i.vm, new Set(i.reasons)]));
  assert.deepEqual(isolated, new Map([['db1', new Set<ViolationCode>(['not_authorized', 'resource_forbidden'])]]));
  assert.deepEqual(r.closedFlows, [{ a: 'vio2', b: 'db1' }]);
});

// ---- renames and identity ----------------------------------------------------------------------------------------

test('a rename via from= relabels running VMs without violation, and shows in relabeled and the diff', () => {
  const newP = next((p) => {
    Object.assign(label(p, 'pepsi-web'), { name: 'pepsi-frontend', from: 'pepsi-web' });
    Object.assign(p.resources.find((r) => r.name === 'pepsi-disk')!, { name: 'pepsi-volume', from: 'pepsi-disk' });
  });
  for (const r of both(acme(), newP, fleet())) {
    assert.equal(r.accepted, true);
    assert.deepEqual(r.violations, []);
    assert.deepEqual(r.relabeled, [{ vm: 'web1', from: 'pepsi-web', to: 'pepsi-frontend' }]);
    assert.deepEqual(r.diff.labels.renamed, [{ from: 'pepsi-web', to: 'pepsi-frontend' }]);
    assert.deepEqual(r.diff.resources.renamed, [{ from: 'pepsi-disk', to: 'pepsi-volume' }]);
    assert.deepEqual(r.sharing, { gained: [], lost: [] }, 'a rename changes no sharing');
  }
});

test('renaming the host label via from= keeps its hosts', () => {
  const newP = next((p) => {
    Object.assign(label(p, 'infra-host'), { name: 'dom0', from: 'infra-host' });
    p.host = 'dom0';
  });
  const r = updatePolicy(acme(), newP, fleet(), 'reject');
  assert.equal(r.accepted, true);
  assert.deepEqual(r.violations, []);
});

test('version rules: no from, a wrong from name or version, or a version not greater → version_prevents_update in both modes', () => {
  const cases: [string, (p: Policy) => void][] = [
    ['no from', (p) => delete p.from],
    ['from names another policy', (p) => (p.from = { name: 'other', version: '1.0' })],
    ['from names another version', (p) => (p.from = { name: 'acme', version: '0.9' })],
    ['the same version', (p) => (p.version = '1.0')],
    ['a lower version', (p) => (p.version = '0.9')],
    ['an unordered version', (p) => (p.version = 'next')],
  ];
  for (const [what, edit] of cases) {
    for (const r of both(acme(), next(edit), fleet())) {
      assert.equal(r.accepted, false, `${what} (${r.mode})`);
      assert.ok(r.refusals.length > 0 && r.refusals.every((x) => x.code === 'version_prevents_update'), `${what} (${r.mode})`);
      assert.deepEqual(r.isolate, [], `${what}: a refused update isolates nothing`);
      assert.deepEqual(r.closedFlows, []);
    }
  }
  const noVersion = acme();
  noVersion.version = '';
  const r = updatePolicy(noVersion, next(() => {}, acme()), { hosts: [] }, 'revoke');
  assert.equal(r.accepted, false);
  assert.match(r.refusals[0].message, /no version/);
});

test('a greater version counts numerically: 1.9 → 1.10 and 1.0 → 2.0 are updates', () => {
  const old19 = acme();
  old19.version = '1.9';
  for (const v of ['1.10', '2.0']) {
    const r = updatePolicy(old19, next((p) => (p.version = v), old19), fleet(), 'reject');
    assert.deepEqual(r.refusals, [], v);
    assert.equal(r.accepted, true);
  }
});

test('a from= that names no old label (or resource label) refuses the update with bad_rename', () => {
  const badLabel = next((p) => p.labels.push(L('ghost', ['pepsi'], [], { from: 'no-such-label' })));
  const badRes = next((p) => p.resources.push({ name: 'ghost-disk', color: 'coke', from: 'no-such-disk' }));
  for (const [newP, name] of [[badLabel, 'no-such-label'], [badRes, 'no-such-disk']] as const) {
    for (const r of both(acme(), newP, fleet())) {
      assert.equal(r.accepted, false);
      assert.deepEqual(r.refusals.map((x) => x.code), ['bad_rename']);
      assert.match(r.refusals[0].message, new RegExp(name));
    }
  }
});

/** Xen 4.1's DEFAULT (acmpolicy.py get_DEFAULT_policy), and the 2007 one without __UNLABELED__. */
function xenDefault(withUnlabeled: boolean): Policy {
  const SM = 'SystemManagement';
  const p: Policy = withUnlabeled
    ? {
        name: 'DEFAULT', version: '1.0', colors: [SM, UNLABELED], walls: [SM], conflicts: [], host: SM,
        labels: [L(SM, [SM, UNLABELED]), L(UNLABELED, [UNLABELED])],
        resources: [{ name: UNLABELED, color: UNLABELED }],
      }
    : { name: 'DEFAULT', version: '1.0', colors: [SM], walls: [SM], conflicts: [], host: SM, labels: [L(SM, [SM])], resources: [] };
  assertValid(p);
  return p;
}

test("Xen's DEFAULT policy on either side skips the version check (both DEFAULT variants)", () => {
  const noFrom = acme(); // acme 1.0 names no policy it updates
  for (const withUnlabeled of [true, false]) {
    const def = xenDefault(withUnlabeled);
    assert.equal(isXenDefaultPolicy(def), true, `DEFAULT ${withUnlabeled ? 'with' : 'without'} __UNLABELED__ is Xen's DEFAULT`);
    const hostOnly: RunningState = { hosts: [{ name: 'h1', vms: [] }] };
    for (const mode of ['reject', 'revoke'] as const) {
      const from = updatePolicy(def, noFrom, hostOnly, mode);
      assert.deepEqual(from.refusals, [], `DEFAULT → acme (${mode})`);
      assert.equal(from.accepted, true);
      const to = updatePolicy(acme(), def, { hosts: [] }, mode);
      assert.deepEqual(to.refusals, [], `acme → DEFAULT (${mode})`);
    }
  }
  // Named DEFAULT but shaped otherwise: not Xen's DEFAULT, the version check applies.
  const fake = { ...acme(), name: 'DEFAULT' };
  assert.equal(isXenDefaultPolicy(fake), false);
  assert.equal(updatePolicy(fake, noFrom, { hosts: [] }, 'reject').refusals[0]?.code, 'version_prevents_update');
  const extra = xenDefault(true);
  extra.labels.push(L('guest', [UNLABELED]));
  assert.equal(isXenDefaultPolicy(extra), false, 'a third label makes it another policy');
});

test('moving off the DEFAULT policy: running unlabeled VMs violate unless the new policy has __UNLABELED__', () => {
  const def = xenDefault(true);
  const SM = 'SystemManagement';
  const bank = (withUnlabeled: boolean): Policy => {
    const u = withUnlabeled ? [UNLABELED] : [];
    const p: Policy = {
      name: 'bank', version: '1.0', colors: [SM, 'bank', ...u], walls: [SM, 'bank'], conflicts: [], host: SM,
      labels: [L(SM, [SM, 'bank', ...u], [SM]), L('bank', ['bank'], ['bank']), ...(withUnlabeled ? [L(UNLABELED, u)] : [])],
      resources: withUnlabeled ? [{ name: UNLABELED, color: UNLABELED }] : [],
    };
    assertValid(p);
    return p;
  };
  const state: RunningState = { hosts: [{ name: 'h1', vms: [{ name: 'u1', label: null, resources: [UNLABELED] }] }] };
  const r = updatePolicy(def, bank(false), state, 'reject');
  assert.deepEqual(r.refusals, []);
  // (a VM without a label is a violator already; its resources are not examined further)
  assert.deepEqual(violated(r), ['u1:label_removed']);
  const ok = updatePolicy(def, bank(true), state, 'reject');
  assert.deepEqual(ok.violations, []);
  assert.equal(ok.accepted, true);
});

// ---- running states that do not fit the old policy ---------------------------------------------------------------

test('a running state that does not fit the old policy throws bad_running_state', () => {
  const bad: [string, RunningState][] = [
    ['unknown VM label', { hosts: [{ name: 'h1', vms: [{ name: 'x', label: 'nope' }] }] }],
    ['unknown host label', { hosts: [{ name: 'h1', label: 'nope', vms: [] }] }],
    ['unlabeled VM, no __UNLABELED__', { hosts: [{ name: 'h1', vms: [{ name: 'x' }] }] }],
    ['unknown resource label', { hosts: [{ name: 'h1', vms: [{ name: 'x', label: 'vio', resources: ['nope'] }] }] }],
    ['a VM twice', { hosts: [{ name: 'h1', vms: [{ name: 'x', label: 'vio' }] }, { name: 'h2', vms: [{ name: 'x', label: 'vio' }] }] }],
    ['a flow to a VM that does not run', { hosts: [{ name: 'h1', vms: [{ name: 'x', label: 'vio' }] }], flows: [{ a: 'x', b: 'y' }] }],
  ];
  for (const [what, state] of bad) {
    for (const mode of ['reject', 'revoke'] as const) {
      assert.throws(
        () => updatePolicy(acme(), next(), state, mode),
        (e: unknown) => isMonitorError(e) && e.code === 'bad_running_state',
        what,
      );
    }
  }
});

// ---- property tests against a plain replay -----------------------------------------------------------------------

/** Running states over a policy's labels and resources (they fit it: known names, unlabeled only with __UNLABELED__). */
function arbRunningState(p: Policy): fc.Arbitrary<RunningState> {
  const names = p.labels.map((l) => l.name);
  const vmLabel: fc.Arbitrary<string | null | undefined> = names.includes(UNLABELED)
    ? fc.oneof({ arbitrary: fc.constantFrom(...names), weight: 4 }, fc.constant(null), fc.constant(undefined))
    : fc.constantFrom(...names);
  const resources = p.resources.length > 0
    ? fc.uniqueArray(fc.constantFrom(...p.resources.map((r) => r.name)), { maxLength: 2 })
    : fc.constant<string[]>([]);
  const hostLabel = fc.oneof({ arbitrary: fc.constant(undefined), weight: 3 }, { arbitrary: fc.constantFrom(...names), weight: 1 });
  const host = fc.record({ label: hostLabel, vms: fc.array(fc.record({ label: vmLabel, resources }), { maxLength: 5 }) });
  return fc.array(host, { minLength: 1, maxLength: 3 }).chain((hosts) => {
    let n = 0;
    const named = hosts.map((h, i) => ({
      name: `h${i}`,
      ...(h.label === undefined ? {} : { label: h.label }),
      vms: h.vms.map((v) => ({ name: `vm${n++}`, label: v.label, resources: v.resources })),
    }));
    const vms = named.flatMap((h) => h.vms.map((v) => v.name));
    const flows = vms.length === 0
      ? fc.constant<{ a: string; b: string }[]>([])
      : fc.array(fc.record({ a: fc.constantFrom(...vms), b: fc.constantFrom(...vms) }), { maxLength: 6 });
    return flows.map((f) => ({ hosts: named, flows: f }));
  });
}

interface PlainReplay {
  /** VM → why it violates (VM-level codes only) */
  reasons: Map<string, Set<ViolationCode>>;
  /** flows whose VMs both keep a label but share no color */
  forbidden: { a: string; b: string }[];
  /** flows with an endpoint whose label is gone */
  orphaned: { a: string; b: string }[];
  relabeled: Map<string, string>;
}

/**
 * The replay of DESIGN.md §2, computed here with the plain evaluator: per host in start order, each VM's label
 * (renamed through from=) must exist, be authorized on the host label (renamed too), keep its resources usable,
 * and pass the host's new Chinese Wall, which counts the host label first (Xen's Dom0) and where a refused VM is
 * not counted; each open flow must still share.
 */
function plainReplay(oldP: Policy, newP: Policy, state: RunningState): PlainReplay {
  const labelTo = plainRenames(oldP.labels, newP.labels);
  const resTo = plainRenames(oldP.resources, newP.resources);
  const reasons = new Map<string, Set<ViolationCode>>();
  const add = (vm: string, code: ViolationCode) => reasons.set(vm, (reasons.get(vm) ?? new Set()).add(code));
  const newLabelOf = new Map<string, string>();
  const relabeled = new Map<string, string>();
  for (const h of state.hosts) {
    const hostOld = h.label ?? oldP.host;
    const hostNew = hostOld === null ? undefined : labelTo.get(hostOld);
    const wall = new PlainHost(newP);
    if (hostNew !== undefined && newP.labels.some((l) => l.name === hostNew)) wall.admit(hostNew);
    for (const v of h.vms) {
      const oldLabel = v.label ?? UNLABELED;
      const newLabel = labelTo.get(oldLabel);
      if (newLabel === undefined) {
        add(v.name, 'label_removed');
        continue;
      }
      newLabelOf.set(v.name, newLabel);
      if (newLabel !== oldLabel) relabeled.set(v.name, newLabel);
      if (hostNew === undefined) add(v.name, 'host_label_removed');
      else if (!plainAuthorized(newP, hostNew, newLabel)) add(v.name, 'not_authorized');
      for (const r of v.resources ?? []) {
        const newRes = resTo.get(r);
        if (newRes === undefined) add(v.name, 'resource_label_removed');
        else if (!plainUse(newP, newLabel, newRes)) add(v.name, 'resource_forbidden');
      }
      if (!wall.start(newLabel)) add(v.name, 'wall_conflict');
    }
  }
  const forbidden: PlainReplay['forbidden'] = [];
  const orphaned: PlainReplay['orphaned'] = [];
  for (const f of state.flows ?? []) {
    const a = newLabelOf.get(f.a);
    const b = newLabelOf.get(f.b);
    if (a === undefined || b === undefined) orphaned.push(f);
    else if (!plainShare(newP, a, b)) forbidden.push(f);
  }
  return { reasons, forbidden, orphaned, relabeled };
}

const arbUpdate = arbPolicy({ maxLabels: 6, maxColors: 40 }).chain((oldP) =>
  fc.record({ oldP: fc.constant(oldP), newP: arbSuccessor(oldP), state: arbRunningState(oldP) }),
);

test('revoke isolates exactly the VMs the plain replay finds violating, with the same reasons (random updates)', () => {
  fc.assert(
    fc.property(arbUpdate, ({ oldP, newP, state }) => {
      assertValid(oldP);
      assertValid(newP);
      const plain = plainReplay(oldP, newP, state);
      const revoke = updatePolicy(oldP, newP, state, 'revoke');
      assert.deepEqual(revoke.refusals, []);
      assert.equal(revoke.accepted, true);
      const isolated = new Map(revoke.isolate.map((i) => [i.vm, new Set(i.reasons)]));
      assert.equal(isolated.size, revoke.isolate.length, 'each VM isolated once');
      assert.deepEqual(isolated, plain.reasons);
      for (const i of revoke.isolate) {
        assert.equal(i.host, state.hosts.find((h) => h.vms.some((v) => v.name === i.vm))!.name);
      }
      // Forbidden flows (and flows that lost an endpoint's label) are closed, in order; nothing else is.
      const flowKey = (f: { a: string; b: string }) => `${f.a}>${f.b}`;
      const expectClosed = (state.flows ?? []).filter((f) => plain.forbidden.includes(f) || plain.orphaned.includes(f));
      assert.deepEqual(revoke.closedFlows.map(flowKey), expectClosed.map(flowKey));
      const flowViolations = revoke.violations.filter((v) => v.code === 'flow_forbidden');
      assert.deepEqual(flowViolations.map((v) => `${v.vm}>${v.peer}`), plain.forbidden.map(flowKey));
      assert.deepEqual(new Map(revoke.relabeled.map((r) => [r.vm, r.to])), plain.relabeled);
    }),
    { numRuns: RUNS },
  );
});

test('reject accepts exactly when the plain replay finds no violation, and then changes the same things', () => {
  fc.assert(
    fc.property(arbUpdate, ({ oldP, newP, state }) => {
      const plain = plainReplay(oldP, newP, state);
      const reject = updatePolicy(oldP, newP, state, 'reject');
      const clean = plain.reasons.size === 0 && plain.forbidden.length === 0;
      assert.equal(reject.accepted, clean);
      assert.deepEqual(reject.isolate, []);
      assert.deepEqual(reject.closedFlows, []);
      const revoke = updatePolicy(oldP, newP, state, 'revoke');
      assert.deepEqual(reject.violations, revoke.violations, 'the preview does not depend on the mode');
      assert.deepEqual(reject.sharing, revoke.sharing);
    }),
    { numRuns: RUNS },
  );
});

test('the sharing diff lists exactly the label pairs the plain evaluator finds gained or lost (all pairs)', () => {
  fc.assert(
    fc.property(arbPolicy({ maxLabels: 8, maxColors: 40 }).chain((oldP) => arbSuccessor(oldP).map((newP) => ({ oldP, newP }))), ({ oldP, newP }) => {
      const { sharing } = updatePolicy(oldP, newP, { hosts: [] }, 'reject');
      const gained = sharing.gained.map(([a, b]) => pairKey(a, b));
      const lost = sharing.lost.map(([a, b]) => pairKey(a, b));
      assert.equal(new Set(gained).size, gained.length, 'no pair listed twice');
      assert.equal(new Set(lost).size, lost.length, 'no pair listed twice');
      const plain = plainSharingDiff(oldP, newP);
      assert.deepEqual(new Set(gained), plain.gained);
      assert.deepEqual(new Set(lost), plain.lost);
    }),
    { numRuns: RUNS },
  );
});

test('the structural diff names removed, added and renamed labels and resource labels as the from= rule says', () => {
  fc.assert(
    fc.property(arbPolicy({ maxLabels: 8 }).chain((oldP) => arbSuccessor(oldP).map((newP) => ({ oldP, newP }))), ({ oldP, newP }) => {
      const { diff } = updatePolicy(oldP, newP, { hosts: [] }, 'reject');
      for (const kind of ['labels', 'resources'] as const) {
        const toNew = plainRenames(oldP[kind], newP[kind]);
        const targets = new Set(toNew.values());
        assert.deepEqual(diff[kind].removed, oldP[kind].map((x) => x.name).filter((n) => !toNew.has(n)), `${kind} removed`);
        assert.deepEqual(diff[kind].added, newP[kind].map((x) => x.name).filter((n) => !targets.has(n)), `${kind} added`);
        assert.deepEqual(
          diff[kind].renamed,
          [...toNew].filter(([o, n]) => o !== n).map(([from, to]) => ({ from, to })),
          `${kind} renamed`,
        );
      }
    }),
    { numRuns: RUNS },
  );
});

test('the successor generator yields valid policies that really rename, remove and recolor', () => {
  const sample = fc.sample(arbPolicy().chain((o) => arbSuccessor(o).map((n) => ({ o, n }))), { numRuns: 300, seed: 11 });
  for (const { n } of sample) assertValid(n);
  assert.ok(sample.filter(({ n }) => n.labels.some((l) => l.from !== undefined)).length >= 30, 'label renames');
  assert.ok(sample.filter(({ n }) => n.resources.some((r) => r.from !== undefined)).length >= 10, 'resource renames');
  assert.ok(sample.filter(({ o, n }) => o.labels.some((l) => !n.labels.some((x) => x.name === l.name || x.from === l.name))).length >= 30, 'removals');
  assert.ok(sample.filter(({ o, n }) => o.host !== null && !n.labels.some((x) => x.name === o.host || x.from === o.host)).length >= 5, 'host label removals');
  const takesAnOldName = ({ o, n }: { o: Policy; n: Policy }) =>
    n.labels.some((x) => x.from !== undefined && o.labels.some((y) => y.name === x.name));
  assert.ok(sample.filter(takesAnOldName).length >= 10, "renames onto another old label's name");
});

// ---- the real Xen update policies --------------------------------------------------------------------------------

/** Runs `fn` on real Xen policies (paths under the data folder). */
function withXen(_t: unknown, rels: string[], fn: (...ps: Policy[]) => void): void {
  fn(...rels.map((rel) => loadXenPolicy(rel)));
}

const XM = ['gen3_xen-3.2_to_4.1/xm-test-security_policy.xml', 'gen3_xen-3.2_to_4.1/xm-test-update-security_policy.xml'];
const MYTEST = ['reconstructed_from_user_manual/mytest-security_policy.xml', 'reconstructed_from_user_manual/mytest_update-security_policy.xml'];
const oneHost = (...vms: RunningState['hosts'][0]['vms']): RunningState => ({ hosts: [{ name: 'xen', vms }] });

test('xm-test → xm-test-update (reject) with blue and green VMs running: refused, blue loses its label', (t) => {
  withXen(t, XM, (oldP, newP) => {
    const r = updatePolicy(oldP, newP, oneHost({ name: 'blue-vm', label: 'blue' }, { name: 'green-vm', label: 'green' }), 'reject');
    assert.deepEqual(r.refusals, [], 'FromPolicy names xm-test 1.0 and 1.1 is greater');
    assert.equal(r.accepted, false);
    assert.deepEqual(violated(r), ['blue-vm:label_removed']);
    assert.deepEqual(r.relabeled, [{ vm: 'green-vm', from: 'green', to: 'GREEN' }]);
  });
});

test('xm-test → xm-test-update (reject) with green and red VMs on one host: refused, red is blocked by GREEN in RER', (t) => {
  withXen(t, XM, (oldP, newP) => {
    // Under xm-test green and red may run side by side (RER = {blue, red}); xm-test-update's RER = {GREEN, red}.
    assert.equal(explainStart(compilePolicy(oldP), 'red', ['green']).allow, true);
    const r = updatePolicy(oldP, newP, oneHost({ name: 'green-vm', label: 'green' }, { name: 'red-vm', label: 'red' }), 'reject');
    assert.equal(r.accepted, false);
    assert.deepEqual(violated(r), ['red-vm:wall_conflict']);
    assert.deepEqual(r.violations[0].blockers, [{ conflictSet: 'RER', wall: 'red', runningLabel: 'GREEN', runningWall: 'GREEN', running: 1 }]);
    // red started first: green (now GREEN) is the one refused
    const reversed = updatePolicy(oldP, newP, oneHost({ name: 'red-vm', label: 'red' }, { name: 'green-vm', label: 'green' }), 'reject');
    assert.deepEqual(violated(reversed), ['green-vm:wall_conflict']);
    // revoke: applied, the later VM isolated
    const revoke = updatePolicy(oldP, newP, oneHost({ name: 'green-vm', label: 'green' }, { name: 'red-vm', label: 'red' }), 'revoke');
    assert.deepEqual(revoke.isolate, [{ vm: 'red-vm', host: 'xen', reasons: ['wall_conflict'] }]);
  });
});

test('xm-test → xm-test-update with green and red on different hosts, or green alone: accepted, green becomes GREEN', (t) => {
  withXen(t, XM, (oldP, newP) => {
    const apart: RunningState = {
      hosts: [
        { name: 'x1', vms: [{ name: 'green-vm', label: 'green', resources: ['green'] }] },
        { name: 'x2', vms: [{ name: 'red-vm', label: 'red', resources: ['red'] }] },
      ],
    };
    const r = updatePolicy(oldP, newP, apart, 'reject');
    assert.equal(r.accepted, true);
    assert.deepEqual(r.violations, []);
    assert.deepEqual(r.relabeled, [{ vm: 'green-vm', from: 'green', to: 'GREEN' }]);
    assert.deepEqual(r.diff.resources.renamed, [{ from: 'green', to: 'GREEN' }, { from: 'red', to: 'RED' }]);
    // … and afterwards, as in Xen's xm-test, red may not start beside the GREEN VM.
    assert.equal(explainStart(compilePolicy(newP), 'red', ['GREEN']).allow, false);
    // a VM using the blue resource would lose it
    const blueDisk = updatePolicy(oldP, newP, oneHost({ name: 'g', label: 'green', resources: ['blue'] }), 'reject');
    assert.deepEqual(violated(blueDisk), ['g:resource_label_removed']);
  });
});

test('mytest → mytest_update relabels VMs labelled A-Bank.SecurityUnderwriting to A-Bank.SU', (t) => {
  withXen(t, MYTEST, (oldP, newP) => {
    const state = oneHost(
      { name: 'su1', label: 'A-Bank.SecurityUnderwriting', resources: ['A-Bank.SecurityUnderwriting'] },
      { name: 'bank1', label: 'A-Bank' },
      { name: 'auto1', label: 'AutoCorp' },
    );
    for (const mode of ['reject', 'revoke'] as const) {
      const r = updatePolicy(oldP, newP, state, mode);
      assert.deepEqual(r.refusals, []);
      assert.equal(r.accepted, true, mode);
      assert.deepEqual(r.violations, []);
      assert.deepEqual(r.relabeled, [{ vm: 'su1', from: 'A-Bank.SecurityUnderwriting', to: 'A-Bank.SU' }]);
    }
    // mytest_update drops __UNLABELED__: an unlabeled VM running under mytest would lose its label.
    const ul = updatePolicy(oldP, newP, oneHost({ name: 'u', label: null }), 'reject');
    assert.deepEqual(violated(ul), ['u:label_removed']);
  });
});

test("the real DEFAULT policies are Xen's DEFAULT (4.1 with __UNLABELED__, 2007 without); DEFAULT-UL is not", (t) => {
  const g3 = 'gen3_xen-3.2_to_4.1/';
  withXen(t, [`${g3}DEFAULT-security_policy.xml`, `${g3}default-security_policy.xml`, `${g3}DEFAULT-UL-security_policy.xml`, XM[0]], (d41, d2007, ul, xm) => {
    assert.equal(isXenDefaultPolicy(d41), true);
    assert.equal(isXenDefaultPolicy(d2007), true);
    assert.equal(isXenDefaultPolicy(ul), false);
    // xm resetpolicy / setpolicy from the DEFAULT: xm-test 1.0 names no FromPolicy, yet it is accepted
    const r = updatePolicy(d41, xm, { hosts: [{ name: 'xen', vms: [] }] }, 'reject');
    assert.deepEqual(r.refusals, []);
    assert.equal(r.accepted, true);
  });
});

test("the host label counts in its host's Chinese Wall, as Xen's Dom0 did: a VM in conflict with it violates", () => {
  const oldP = acme();
  // The update puts the host label into the soft-drinks conflict set through a new wall type.
  const newP = next((p) => {
    p.walls!.push('host-w');
    p.conflicts[0].walls.push('host-w');
    p.labels[0].walls = ['host-w'];
  });
  const state: RunningState = { hosts: [{ name: 'h1', vms: [{ name: 'web1', label: 'pepsi-web' }, { name: 'ops1', label: 'ops' }] }] };
  const r = updatePolicy(oldP, newP, state, 'reject');
  assert.equal(r.accepted, false);
  assert.deepEqual(r.violations.map((v) => `${v.vm}:${v.code}`), ['web1:wall_conflict']);
  assert.equal(r.violations[0].blockers?.[0].runningLabel, 'infra-host');
  assert.equal(r.violations[0].blockers?.[0].conflictSet, 'soft-drinks');
});
