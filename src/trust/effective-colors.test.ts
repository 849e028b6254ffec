/** Effective colors, case by case (DESIGN.md §1, §2): expectations written from the design, not from the code. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ANY_COLOR, effectiveColors } from './effective-colors.ts';
import type { FleetHost } from './model.ts';
import { ACME, NO_UNLABELED, policyFrom, vm } from './fleet.test-support.ts';

const acme = policyFrom(ACME);
const infra: FleetHost = { name: 'h1', label: null }; // the bootstrap label, infra-host: every color
const pepsiOnly: FleetHost = { name: 'h2', label: 'pepsi-host' };

describe('effectiveColors', () => {
  test('trusted: the label’s colors, in policy order', () => {
    assert.deepEqual(effectiveColors(acme, vm('v', 'h1', 'vio'), 'trusted', infra), { colors: ['pepsi', 'coke'] });
    assert.deepEqual(effectiveColors(acme, vm('v', 'h1', 'pepsi-web'), 'trusted', infra), { colors: ['pepsi'] });
  });

  test('untrusted or unreachable under isolate: none, saying why', () => {
    const u = effectiveColors(acme, vm('v', 'h1', 'coke-db'), 'untrusted', infra);
    assert.deepEqual(u.colors, []);
    assert.match(u.isolated ?? '', /^untrusted .*"coke-db" isolates/);
    const r = effectiveColors(acme, vm('v', 'h1', 'pepsi-web'), 'unreachable', infra); // isolate is the default rule
    assert.deepEqual(r.colors, []);
    assert.match(r.isolated ?? '', /^unreachable/);
  });

  test('untrusted or unreachable under alert: the label’s colors still', () => {
    for (const t of ['untrusted', 'unreachable'] as const) {
      assert.deepEqual(effectiveColors(acme, vm('v', 'h1', 'vio'), t, infra), { colors: ['pepsi', 'coke'] }, t);
    }
  });

  test('unverified: none (fail closed), even under alert', () => {
    for (const label of ['vio', 'pepsi-web']) {
      const e = effectiveColors(acme, vm('v', 'h1', label), 'unverified', infra);
      assert.deepEqual(e.colors, []);
      assert.match(e.isolated ?? '', /unverified/);
    }
  });

  test('unlabeled: the __UNLABELED__ label’s colors where the policy has it, else none', () => {
    assert.deepEqual(effectiveColors(acme, vm('v', 'h1', null), 'trusted', infra), { colors: ['infra'] });
    const e = effectiveColors(policyFrom(NO_UNLABELED), vm('v', 'h1', null), 'trusted', infra);
    assert.deepEqual(e.colors, []);
    assert.match(e.isolated ?? '', /unlabeled, and the policy has no __UNLABELED__ label/);
  });

  test('not authorized on its host (colors ⊄ host label’s): none, whatever its trust', () => {
    for (const t of ['trusted', 'untrusted'] as const) {
      const e = effectiveColors(acme, vm('v', 'h2', 'vio'), t, pepsiOnly);
      assert.deepEqual(e.colors, []);
      assert.match(e.isolated ?? '', /not authorized to run on host "h2"/);
    }
    assert.deepEqual(effectiveColors(acme, vm('v', 'h2', 'pepsi-web'), 'trusted', pepsiOnly), { colors: ['pepsi'] });
  });

  test('unknown label, unregistered host, unknown host label: none, each with its reason', () => {
    assert.match(effectiveColors(acme, vm('v', 'h1', 'nope'), 'trusted', infra).isolated ?? '', /label "nope" is not in the policy/);
    assert.match(effectiveColors(acme, vm('v', 'h9', 'vio'), 'trusted', undefined).isolated ?? '', /host "h9" is not registered/);
    assert.match(effectiveColors(acme, vm('v', 'h3', 'vio'), 'trusted', { name: 'h3', label: 'gone' }).isolated ?? '', /host label "gone"/);
  });

  test('a policy without STE restricts no sharing: admitted VMs share one color; isolation still applies', () => {
    const chwallOnly = policyFrom(`
policy: walls-only
version: "1"
walls: [a-w, b-w]
conflicts:
  ab: [a-w, b-w]
host: sys
labels:
  sys: {}
  a: { walls: [a-w] }
  b: { walls: [b-w], onUntrusted: isolate }
`);
    assert.equal(chwallOnly.hasSte, false);
    assert.deepEqual(effectiveColors(chwallOnly, vm('v', 'h1', 'a'), 'trusted', infra), { colors: [ANY_COLOR] });
    assert.deepEqual(effectiveColors(chwallOnly, vm('v', 'h1', 'b'), 'untrusted', infra).colors, []);
  });
});
