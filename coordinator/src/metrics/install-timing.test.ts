import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InstallTiming, installOutcome } from './install-timing.ts';

const recorder = () => {
  const whole: Array<[string, string, number]> = [];
  const steps: Array<[string, string, number]> = [];
  const t = new InstallTiming({ whole: (l, s) => whole.push([l.package, l.outcome, s]), step: (l, s) => steps.push([l.package, l.step, s]) });
  return { t, whole, steps };
};
const done = (over: Record<string, unknown> = {}) => ({
  id: 'c1', kind: 'package.install', params: { package: 'kubelet' }, state: 'Succeeded' as const,
  result: { outcome: 'installed' }, sentAt: 1_000, finishedAt: 9_000, ...over,
});

test('steps are timed between progress frames, the last to the result; the whole from sending', () => {
  const { t, whole, steps } = recorder();
  t.progress('c1', 'download', 1_100);
  t.progress('c1', 'download', 1_500); // a second message within the step
  t.progress('c1', 'verify', 4_100);
  t.progress('c1', 'commit', 8_000);
  t.finished(done());
  assert.deepEqual(whole, [['kubelet', 'installed', 8]]);
  assert.deepEqual(steps, [['kubelet', 'download', 3], ['kubelet', 'verify', 3.9], ['kubelet', 'commit', 1]]);
  assert.equal(t.tracked, 0, 'forgotten once finished');
});

test('other kinds are not observed; unknown steps are "other"; outcomes are bounded', () => {
  const { t, whole, steps } = recorder();
  t.progress('r1', 'restart', 0);
  t.finished(done({ id: 'r1', kind: 'service.restart' }));
  assert.deepEqual([whole, steps], [[], []]);
  t.progress('c2', 'made-up-step', 1_000);
  t.finished(done({ id: 'c2', result: null, state: 'TimedOut' }));
  assert.deepEqual(steps, [['kubelet', 'other', 8]]);
  assert.deepEqual(whole, [['kubelet', 'timed-out', 8]]);
  assert.equal(installOutcome({ state: 'Failed', result: { outcome: 'weird' } }), 'failed');
  assert.equal(installOutcome({ state: 'Succeeded', result: { outcome: 'already-installed' } }), 'already-installed');
});

test('a command never sent has no whole time', () => {
  const { t, whole } = recorder();
  t.finished(done({ sentAt: null, state: 'Failed', result: null }));
  assert.deepEqual(whole, []);
});
