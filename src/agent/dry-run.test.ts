import assert from 'node:assert/strict';
import { it } from 'node:test';
import { DryRunEnforcer } from './dry-run.ts';
import { planOf, runEnforcerConformance } from './enforcer-conformance.ts';

runEnforcerConformance('dry-run', { unavailable: () => null, fresh: async () => new DryRunEnforcer(() => {}), cleanup: async () => {} });

it('dry run prints the nft transaction it would run and nothing else', async () => {
  let text = '';
  const e = new DryRunEnforcer((t) => (text += t));
  await e.apply(planOf([{ name: 'a', ports: ['p-a'], colors: ['blue'] }, { name: 'b', ports: ['p-b'], colors: ['blue'] }, { name: 'c', ports: ['p-c'], colors: [], isolated: 'untrusted' }]));
  assert.match(text, /^# plan \d+ for host h1/);
  assert.match(text, /add element bridge hueguard c0 \{ "p-a", "p-b" \}/);
  assert.match(text, /add rule bridge hueguard forward iifname @c0 oifname @c0 accept/);
  assert.match(text, /add element bridge hueguard ports \{ "p-a", "p-b", "p-c" \}/);
  assert.match(text, /policy drop;/);
  assert.match(text, /update @denied \{ iifname \. oifname \} drop\n/);
  assert.deepEqual(await e.drops(), []);
});
