/** Plans: content, versions that go up only on change, and the hosts a change affects. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { affectedHosts, computePlan, replan } from './plan.ts';
import { makeFleet, type Fleet, type TrustRecord } from './model.ts';
import { ACME, policyFrom, T0, trust, vm } from './fleet.test-support.ts';

const acme = policyFrom(ACME);

function fleet(): Fleet {
  return makeFleet({
    policy: acme,
    policyVersion: 3,
    hosts: [{ name: 'h1', label: null }, { name: 'h2', label: null }, { name: 'h3', label: 'pepsi-host' }],
    vms: [
      vm('web', 'h1', 'pepsi-web', { ports: ['tap9', 'tap1'] }),
      vm('db', 'h1', 'coke-db'),
      vm('off', 'h1', 'vio', { running: false }),
      vm('vio', 'h2', 'vio'),
      vm('web2', 'h3', 'pepsi-web'),
    ],
    trust: [trust('web', 'trusted'), trust('db', 'untrusted'), trust('off', 'trusted'), trust('vio', 'trusted'), trust('web2', 'trusted')],
  });
}

const withTrust = (f: Fleet, ...records: TrustRecord[]): Fleet => {
  const m = new Map(f.trust);
  for (const r of records) m.set(r.vm, r);
  return { ...f, trust: m };
};

const withPlans = (f: Fleet): Fleet => ({ ...f, plans: new Map(['h1', 'h2', 'h3'].map((h) => [h, computePlan(h, f)])) });

describe('computePlan', () => {
  test('the host’s running VMs by name, ports sorted, effective colors or why none', () => {
    assert.deepEqual(computePlan('h1', fleet()), {
      host: 'h1',
      version: 1,
      policyVersion: 3,
      vms: [
        { name: 'db', ports: ['tap-db'], colors: [], isolated: 'untrusted (evidence failed appraisal): label "coke-db" isolates' },
        { name: 'web', ports: ['tap1', 'tap9'], colors: ['pepsi'] },
      ],
    });
    assert.deepEqual(computePlan('nobody', fleet()).vms, []);
  });

  test('the version goes up by one only when the content changes; else the previous plan itself', () => {
    const f = fleet();
    const p1 = computePlan('h1', f);
    assert.equal(computePlan('h1', f, p1), p1);
    const p2 = computePlan('h1', withTrust(f, trust('web', 'untrusted')), p1);
    assert.equal(p2.version, 2);
    assert.deepEqual(p2.vms.find((v) => v.name === 'web')?.colors, []);
    // the same content again: no new version
    assert.equal(computePlan('h1', withTrust(f, trust('web', 'untrusted')), p2), p2);
    // a new policy version is new content
    assert.equal(computePlan('h1', { ...f, policyVersion: 4 }, p1).version, 2);
  });
});

describe('affectedHosts / replan', () => {
  test('a trust change of one VM affects its host only', () => {
    const before = withPlans(fleet());
    const after = withTrust(before, trust('web', 'untrusted', T0 + 1));
    assert.deepEqual(affectedHosts(before, after), ['h1']);
    const plans = replan(before, after);
    assert.equal(plans.length, 1);
    assert.equal(plans[0].host, 'h1');
    assert.equal(plans[0].version, 2);
  });

  test('a change that moves no effective color affects no host', () => {
    const before = withPlans(fleet());
    // vio is alert: untrusted keeps its colors
    assert.deepEqual(affectedHosts(before, withTrust(before, trust('vio', 'untrusted'))), []);
    // a VM that is not running is in no plan
    assert.deepEqual(affectedHosts(before, withTrust(before, trust('off', 'untrusted'))), []);
    // only lastEvidence moved
    assert.deepEqual(affectedHosts(before, withTrust(before, { ...trust('web', 'trusted'), lastEvidence: new Date(T0 + 9).toISOString() })), []);
    assert.deepEqual(affectedHosts(before, before), []);
  });

  test('a VM that moves affects both hosts; a host’s new label affects that host', () => {
    const before = withPlans(fleet());
    const vms = new Map(before.vms);
    vms.set('web', { ...before.vms.get('web')!, host: 'h2' });
    assert.deepEqual(affectedHosts(before, { ...before, vms }), ['h1', 'h2']);
    const hosts = new Map(before.hosts);
    hosts.set('h2', { name: 'h2', label: 'pepsi-host' }); // vio (pepsi, coke) is no longer authorized there
    assert.deepEqual(affectedHosts(before, { ...before, hosts }), ['h2']);
  });

  test('a new policy version affects every host; a host without a plan gets its first', () => {
    const before = withPlans(fleet());
    assert.deepEqual(affectedHosts(before, { ...before, policyVersion: 4 }), ['h1', 'h2', 'h3']);
    const noPlans = fleet();
    const plans = replan(noPlans, { ...noPlans, policyVersion: 4 });
    assert.deepEqual(plans.map((p) => [p.host, p.version]), [['h1', 1], ['h2', 1], ['h3', 1]]);
  });
});
