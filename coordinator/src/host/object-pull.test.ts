import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalJson } from './cluster-status.ts';
import { judgeHostObjects, MAX_HOST_SPEC_BYTES, type HostObject, type LocalObjects } from './object-pull.ts';

const rolloutSpec = { packages: [{ package: 'kubelet', version: '1.36.1' }], strategy: { canary: { count: 1 }, soakSeconds: 1 } };
const ruleSpec = { fault: 'KubeletUnhealthy', ladder: [{ action: 'RestartService' }, { action: 'CordonAndNotify' }] };
const obj = (name: string, spec: unknown, generation = 1, observed?: number): HostObject =>
  ({ metadata: { name, uid: `uid-${name}`, generation }, spec, ...(observed === undefined ? {} : { status: { observedGeneration: observed } }) });
const none: LocalObjects = { links: [], rollouts: new Set(), rules: [] };

test('a new valid host Rollout is created; a judged generation is not judged again', () => {
  const { verdicts } = judgeHostObjects('Rollout', [obj('b', rolloutSpec, 2, 2), obj('a', rolloutSpec)], none);
  assert.equal(verdicts.length, 1);
  const v = verdicts[0]!;
  assert.equal(v.action, 'create');
  assert.deepEqual([v.name, v.uid, v.generation], ['a', 'uid-a', 1]);
  assert.ok(v.action === 'create' && v.spec === canonicalJson(rolloutSpec));
});

test('the same spec again (a new generation, or after a lost status write) changes nothing: keep', () => {
  const local: LocalObjects = { links: [{ kind: 'Rollout', name: 'a', hostUid: 'uid-a', generation: 1, spec: canonicalJson(rolloutSpec) }], rollouts: new Set(['a']), rules: [] };
  assert.equal(judgeHostObjects('Rollout', [obj('a', rolloutSpec, 2, 1)], local).verdicts[0]!.action, 'keep');
  const changed = { ...rolloutSpec, strategy: { canary: { count: 2 } } };
  assert.equal(judgeHostObjects('Rollout', [obj('a', changed, 3, 2)], local).verdicts[0]!.action, 'update');
});

test('a local object of the same name that the host did not make is a Conflict, never taken over', () => {
  const local: LocalObjects = { links: [], rollouts: new Set(['a']), rules: [{ name: 'r', fault: 'RuntimeNotReady' }] };
  const v = judgeHostObjects('Rollout', [obj('a', rolloutSpec)], local).verdicts[0]!;
  assert.ok(v.action === 'refuse' && v.reason === 'Conflict' && /local Rollout "a" exists that was not made from the host/.test(v.message), JSON.stringify(v));
  const r = judgeHostObjects('RemediationRule', [obj('r', ruleSpec)], local).verdicts[0]!;
  assert.ok(r.action === 'refuse' && r.reason === 'Conflict', JSON.stringify(r));
});

test('two rules for one fault: a local one wins, then host ones in name order', () => {
  const local: LocalObjects = { links: [], rollouts: new Set(), rules: [{ name: 'mine', fault: 'KubeletUnhealthy' }] };
  const v = judgeHostObjects('RemediationRule', [obj('x', ruleSpec)], local).verdicts[0]!;
  assert.ok(v.action === 'refuse' && v.reason === 'Conflict' && v.message === 'rule "mine" already handles KubeletUnhealthy', JSON.stringify(v));
  const two = judgeHostObjects('RemediationRule', [obj('z', ruleSpec), obj('a', ruleSpec)], none).verdicts;
  assert.deepEqual(two.map((x) => [x.name, x.action]), [['a', 'create'], ['z', 'refuse']]);
});

test('hostile host objects are refused Invalid: wrong types, both packages and reboot, huge arrays, no spec', () => {
  const bad = [
    obj('types', { packages: 'kubelet' }),
    obj('both', { ...rolloutSpec, reboot: {} }),
    obj('huge', { packages: [{ package: 'kubelet', version: '1.36.1' }], selector: { names: Array.from({ length: 20_000 }, (_, i) => `node-${i}-${'x'.repeat(10)}`) } }),
    obj('nospec', undefined),
    obj('Bad_Name', rolloutSpec),
  ];
  const verdicts = judgeHostObjects('Rollout', bad, none).verdicts;
  assert.equal(verdicts.length, 5);
  for (const v of verdicts) assert.ok(v.action === 'refuse' && v.reason === 'Invalid', JSON.stringify(v).slice(0, 300));
  const huge = verdicts.find((v) => v.name === 'huge')!;
  assert.ok(huge.action === 'refuse' && huge.message === `spec is ${canonicalJson(bad[2]!.spec).length} bytes; at most ${MAX_HOST_SPEC_BYTES}`);
  const rule = judgeHostObjects('RemediationRule', [obj('r', { fault: 'KubeletUnhealthy', ladder: [{ action: 'CordonAndNotify' }, { action: 'Reboot' }] })], none).verdicts[0]!;
  assert.ok(rule.action === 'refuse' && rule.reason === 'Invalid' && /CordonAndNotify ends the ladder/.test(rule.message));
  // Objects without a name (not from a real API server) are skipped, not thrown on.
  assert.deepEqual(judgeHostObjects('Rollout', [{ metadata: {} } as unknown as HostObject], none).verdicts, []);
});

test('host objects that are gone: a host-made rule is deleted, a host-made rollout only unlinked', () => {
  const local: LocalObjects = {
    links: [{ kind: 'Rollout', name: 'gone', hostUid: 'u', generation: 1, spec: '{}' }, { kind: 'RemediationRule', name: 'gone-rule', hostUid: 'u', generation: 1, spec: '{}' }, { kind: 'RemediationRule', name: 'kept', hostUid: 'u', generation: 1, spec: '{}' }],
    rollouts: new Set(['gone']), rules: [{ name: 'gone-rule', fault: 'RuntimeNotReady' }, { name: 'kept', fault: 'KubeletUnhealthy' }],
  };
  assert.deepEqual(judgeHostObjects('Rollout', [], local).removals, [{ kind: 'Rollout', name: 'gone', action: 'unlink' }]);
  assert.deepEqual(judgeHostObjects('RemediationRule', [obj('kept', ruleSpec, 1, 1)], local).removals, [{ kind: 'RemediationRule', name: 'gone-rule', action: 'delete' }]);
});
