import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RolloutState } from '../rollout/types.ts';
import { hostRolloutStatus, hostRuleStatus, sameStatus } from './object-status.ts';

const counters = { total: 3, waiting: 0, inProgress: 0, succeeded: 3, failed: 0, rollingBack: 0, rolledBack: 0, skipped: 0 };
const state = (phase: RolloutState['phase']) => ({ phase, reason: phase === 'Completed' ? 'AllSucceeded' : '', message: 'm', startedAt: 0, completedAt: phase === 'Completed' ? 1000 : null, counters }) as unknown as RolloutState;

test('a rollout status carries phase, counters, progress and Deployment-style conditions', () => {
  const s = hostRolloutStatus(4, { accepted: true, message: 'created on the member' }, state('Completed'), undefined, 'T1');
  assert.equal(s.observedGeneration, 4);
  assert.equal(s.phase, 'Completed');
  assert.equal(s.progress, '3/3');
  assert.deepEqual(s.counts, counters);
  const by = Object.fromEntries(s.conditions.map((c) => [c.type, `${c.status}/${c.reason}`]));
  assert.deepEqual(by, { Accepted: 'True/Valid', Progressing: 'False/NotProgressing', Paused: 'False/NotPaused', Failed: 'False/NotFailed', Complete: 'True/AllSucceeded' });
  assert.ok(s.conditions.every((c) => c.observedGeneration === 4));
});

test('transition times move only when a condition changes status, so an unchanged rollout writes nothing', () => {
  const first = hostRolloutStatus(1, { accepted: true, message: '' }, state('Progressing'), undefined, 'T1');
  const again = hostRolloutStatus(1, { accepted: true, message: '' }, state('Progressing'), first.conditions, 'T2');
  assert.ok(sameStatus({ ...first, other: 'field the host has' }, again));
  const done = hostRolloutStatus(1, { accepted: true, message: '' }, state('Completed'), first.conditions, 'T3');
  assert.equal(sameStatus(first, done), false);
  assert.equal(done.conditions.find((c) => c.type === 'Accepted')!.lastTransitionTime, 'T1');
  assert.equal(done.conditions.find((c) => c.type === 'Complete')!.lastTransitionTime, 'T3');
});

test('a refused object says why; a rule says whether it is in force', () => {
  const r = hostRolloutStatus(2, { accepted: false, reason: 'Conflict', message: 'a local Rollout "a" exists' }, null, undefined, 'T');
  assert.deepEqual(r.conditions.map((c) => [c.type, c.status, c.reason]), [['Accepted', 'False', 'Conflict']]);
  assert.equal('phase' in r, false);
  assert.equal(hostRuleStatus(1, { accepted: true, message: '' }, undefined, 'T').enabled, true);
  assert.equal(hostRuleStatus(1, { accepted: false, reason: 'Invalid', message: 'x' }, undefined, 'T').enabled, false);
});
