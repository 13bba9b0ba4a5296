import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { rolloutConditions, ROLLOUT_CONDITION_TYPES, type ConditionInput } from './conditions.ts';
import { ROLLOUT_PHASES, type RolloutPhase } from './types.ts';

const counters = { total: 3, waiting: 0, inProgress: 0, succeeded: 3, failed: 0, rollingBack: 0, rolledBack: 0, skipped: 0 };
const state = (phase: RolloutPhase, over: Partial<ConditionInput> = {}): ConditionInput => ({
  phase, reason: 'R', message: 'm', since: 500, createdAt: 100, completedAt: null, resumedAt: null, counters, ...over,
});
const byType = (s: ConditionInput, generation = 3) => Object.fromEntries(rolloutConditions(s, generation).map((c) => [c.type, c]));

test('a moving rollout is Progressing, and neither Paused, Failed nor Complete', () => {
  for (const phase of ['Pending', 'Canary', 'Soaking', 'Progressing'] as const) {
    const c = byType(state(phase));
    assert.deepEqual([c['Progressing']?.status, c['Paused']?.status, c['Failed']?.status, c['Complete']?.status], ['True', 'False', 'False', 'False'], phase);
    assert.equal(c['Progressing']?.reason, 'RolloutProgressing');
    assert.equal(c['Progressing']?.lastTransitionTime, 500);
  }
});

test('paused: Progressing Unknown (DeploymentPaused), Paused True with the reason; resumed: Paused False since the resume', () => {
  const p = byType(state('Paused', { reason: 'PausedByOperator' }));
  assert.equal(p['Progressing']?.status, 'Unknown');
  assert.equal(p['Progressing']?.reason, 'RolloutPaused');
  assert.deepEqual([p['Paused']?.status, p['Paused']?.reason], ['True', 'PausedByOperator']);
  const r = byType(state('Canary', { resumedAt: 450 }));
  assert.deepEqual([r['Paused']?.status, r['Paused']?.reason, r['Paused']?.lastTransitionTime], ['False', 'Resumed', 450]);
});

test('completed: Complete True at completion, Progressing True (RolloutComplete), not Failed', () => {
  const c = byType(state('Completed', { completedAt: 900, since: 900 }));
  assert.deepEqual([c['Complete']?.status, c['Complete']?.lastTransitionTime], ['True', 900]);
  assert.deepEqual([c['Progressing']?.status, c['Progressing']?.reason], ['True', 'RolloutComplete']);
  assert.equal(c['Failed']?.status, 'False');
});

test('failed: Failed True with the planner reason, Progressing False; a rollback after failure keeps Failed True', () => {
  const f = byType(state('Failed', { reason: 'FailureThreshold', counters: { ...counters, failed: 2 } }));
  assert.deepEqual([f['Failed']?.status, f['Failed']?.reason, f['Progressing']?.status], ['True', 'FailureThreshold', 'False']);
  const rb = byType(state('RollingBack', { reason: 'CanaryFailed', counters: { ...counters, failed: 1 } }));
  assert.equal(rb['Failed']?.status, 'True');
  assert.equal(rb['Progressing']?.reason, 'RollingBack');
  const asked = byType(state('RollingBack', { reason: 'RollbackRequested' }));
  assert.equal(asked['Failed']?.status, 'False', 'an operator rollback is not a failure');
  const done = byType(state('RolledBack', { reason: 'RolloutRolledBack' }));
  assert.deepEqual([done['Progressing']?.status, done['Complete']?.status, done['Complete']?.reason], ['False', 'False', 'RolledBack']);
});

test('for every phase: the four types once each, in order, at most one of Paused/Failed/Complete True, observedGeneration given', () => {
  fc.assert(fc.property(fc.constantFrom(...ROLLOUT_PHASES), fc.nat(100), fc.nat(10), fc.option(fc.nat(1000)), (phase, gen, failed, resumedAt) => {
    const cs = rolloutConditions(state(phase, { counters: { ...counters, failed }, resumedAt }), gen);
    assert.deepEqual(cs.map((c) => c.type), [...ROLLOUT_CONDITION_TYPES]);
    assert.ok(cs.every((c) => c.observedGeneration === gen && Number.isFinite(c.lastTransitionTime)));
    const trues = cs.filter((c) => c.type !== 'Progressing' && c.status === 'True').map((c) => c.type);
    assert.ok(trues.length <= 1, trues.join());
    assert.equal(cs[3]?.status === 'True', phase === 'Completed');
    assert.equal(cs[1]?.status === 'True', phase === 'Paused');
  }));
});
