import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planConvergence } from './planner.ts';
import { SimCoordinator } from './test-support.ts';
import { machinePackages, machineConverged, cpvConditions } from './status.ts';

const FAST = { canary: { count: 1 }, soakSeconds: 0, maxUnavailable: 2 };

function fleet(n = 4, kubelet = '1.31.0', c = new SimCoordinator()): SimCoordinator {
  for (let i = 0; i < n; i++) c.fleet.add({ name: `n${i}`, labels: { pool: i % 2 === 0 ? 'web' : 'db' }, zone: null, versions: { kubelet, containerd: '1.7.1' } });
  return c;
}

function runUntil(c: SimCoordinator, done: () => boolean, max = 200): void {
  for (let i = 0; i < max && !done(); i++) c.tick(10_000);
  assert.ok(done(), 'condition reached');
}

const kubelets = (c: SimCoordinator) => [...c.fleet.machines.values()].map((m) => m.versions['kubelet']);

test('without an updateStrategy nothing rolls out (a CPV as before: rollouts by hand)', () => {
  const c = fleet();
  c.apply({ packages: [{ name: 'kubelet', version: '1.31.2' }] });
  for (let i = 0; i < 20; i++) c.tick(10_000);
  assert.equal(c.rollouts.size, 0);
  assert.deepEqual(planConvergence(c.input()).packages.map((p) => p.state), ['Unmanaged']);
});

test('a desired version converges by itself through <package>-g<generation>, created once', () => {
  const c = fleet();
  c.apply({ updateStrategy: FAST, packages: [{ name: 'kubelet', version: '1.31.2' }] });
  const first = c.tick(10_000);
  assert.deepEqual(first.actions.map((a) => a.kind === 'create' ? a.name : a.kind), ['kubelet-g1']);
  runUntil(c, () => kubelets(c).every((v) => v === '1.31.2'));
  for (let i = 0; i < 10; i++) c.tick(10_000);
  assert.deepEqual([...c.rollouts.keys()], ['kubelet-g1'], 'one rollout, never a second for the same generation');
  assert.equal(planConvergence(c.input()).packages[0]?.state, 'Converged');
});

test('the selector limits which machines follow; a machine that enrolls later gets <name>-2', () => {
  const c = fleet();
  c.apply({ updateStrategy: { ...FAST, selector: { matchLabels: { pool: 'web' } } }, packages: [{ name: 'kubelet', version: '1.31.2' }] });
  runUntil(c, () => c.rollouts.get('kubelet-g1')?.state.phase === 'Completed');
  assert.deepEqual(kubelets(c), ['1.31.2', '1.31.0', '1.31.2', '1.31.0']);
  c.fleet.add({ name: 'n9', labels: { pool: 'web' }, zone: null, versions: { kubelet: '1.31.0' } }, c.now);
  runUntil(c, () => c.fleet.get('n9').versions['kubelet'] === '1.31.2');
  assert.deepEqual([...c.rollouts.keys()], ['kubelet-g1', 'kubelet-g1-2']);
  assert.deepEqual(c.rollouts.get('kubelet-g1-2')?.spec.selector.names, ['n9']);
});

test('a newer generation supersedes: Keep aborts and the new rollout takes over', () => {
  const c = fleet(6);
  c.apply({ updateStrategy: { ...FAST, soakSeconds: 60, maxUnavailable: 1 }, packages: [{ name: 'kubelet', version: '1.31.2' }] });
  runUntil(c, () => c.installs.length > 0);
  c.apply({ updateStrategy: { ...FAST, maxUnavailable: 1 }, packages: [{ name: 'kubelet', version: '1.31.4' }] });
  runUntil(c, () => kubelets(c).every((v) => v === '1.31.4'));
  assert.equal(c.rollouts.get('kubelet-g1')?.state.reason, 'Aborted');
  assert.ok(c.events.some((e) => e.reason === 'RolloutSuperseded' && e.object === 'rollout/kubelet-g1'));
  assert.ok(c.rollouts.has('kubelet-g2'));
});

test('onSupersede Rollback rolls the old rollout back before the new one starts', () => {
  const c = fleet(4);
  const s = { ...FAST, soakSeconds: 60, maxUnavailable: 1, onSupersede: 'Rollback' as const };
  c.apply({ updateStrategy: s, packages: [{ name: 'kubelet', version: '1.31.2' }] });
  runUntil(c, () => Object.values(c.rollouts.get('kubelet-g1')?.state.machines ?? {}).some((m) => m.phase === 'Soaking'));
  c.apply({ updateStrategy: s, packages: [{ name: 'kubelet', version: '1.31.4' }] });
  runUntil(c, () => c.rollouts.has('kubelet-g2'));
  assert.equal(c.rollouts.get('kubelet-g1')?.state.phase, 'RolledBack', 'the new one started only once the old one rolled back');
  runUntil(c, () => kubelets(c).every((v) => v === '1.31.4'));
});

test('paused stops new steps (the running rollout is paused, nothing new is made) and false resumes', () => {
  const c = fleet(4);
  c.apply({ updateStrategy: { ...FAST, soakSeconds: 30, maxUnavailable: 1 }, packages: [{ name: 'kubelet', version: '1.31.2' }] });
  runUntil(c, () => c.installs.length > 0);
  c.apply({ updateStrategy: { ...FAST, soakSeconds: 30, maxUnavailable: 1, paused: true }, packages: [{ name: 'kubelet', version: '1.31.2' }] });
  c.tick(10_000);
  assert.equal(c.rollouts.get('kubelet-g1')?.state.phase, 'Paused');
  const before = c.installs.length;
  for (let i = 0; i < 20; i++) c.tick(10_000);
  assert.equal(c.installs.length, before, 'no install while paused');
  assert.equal(c.rollouts.size, 1);
  assert.equal(planConvergence(c.input()).packages[0]?.state, 'Paused');
  c.apply({ updateStrategy: { ...FAST, soakSeconds: 30, maxUnavailable: 1 }, packages: [{ name: 'kubelet', version: '1.31.2' }] });
  runUntil(c, () => kubelets(c).every((v) => v === '1.31.2'));
  assert.equal(c.rollouts.size, 1, 'the same rollout resumed (strategy edits of paused only do not supersede)');
});

test('a downgrade is refused once: Degraded with the reason, no retry until a new generation', () => {
  const c = fleet(2, '1.31.4');
  c.apply({ updateStrategy: FAST, packages: [{ name: 'kubelet', version: '1.31.2' }] });
  for (let i = 0; i < 10; i++) c.tick(10_000);
  assert.equal(c.rollouts.size, 0);
  assert.equal(c.refusals.length, 1);
  assert.equal(c.refusals[0]?.code, 'NK_ROLLOUT_DOWNGRADE');
  const p = planConvergence(c.input()).packages[0]!;
  assert.equal(p.state, 'Degraded');
  assert.match(p.message, /NK_ROLLOUT_DOWNGRADE/);
  c.apply({ updateStrategy: FAST, packages: [{ name: 'kubelet', version: '1.31.5' }] });
  runUntil(c, () => kubelets(c).every((v) => v === '1.31.5'));
  assert.deepEqual([...c.rollouts.keys()], ['kubelet-g2']);
});

test('a pin converges its machine through pin-<machine>-<package>-<n>; the CPV rollout leaves it out', () => {
  const c = fleet(3);
  c.pins.set('n1', { kubelet: '1.31.3' });
  c.apply({ updateStrategy: FAST, packages: [{ name: 'kubelet', version: '1.31.2' }] });
  runUntil(c, () => kubelets(c).join() === '1.31.2,1.31.3,1.31.2');
  assert.deepEqual([...c.rollouts.keys()], ['kubelet-g1', 'pin-n1-kubelet-1']);
  c.pins.set('n1', { kubelet: '1.31.4' });
  runUntil(c, () => c.fleet.get('n1').versions['kubelet'] === '1.31.4');
  assert.ok(c.rollouts.has('pin-n1-kubelet-2'));
});

test('a failed rollout is retried after a backoff, not in a loop', () => {
  const c = fleet(2, '1.31.0', new SimCoordinator({ retryBaseMs: 300_000, retryMaxMs: 600_000 }));
  c.apply({ updateStrategy: { ...FAST, onFailure: 'Rollback' }, packages: [{ name: 'kubelet', version: '1.31.2' }] });
  for (let i = 0; i < 6; i++) c.tick(10_000, { fail: () => true });
  assert.equal(c.rollouts.get('kubelet-g1')?.state.phase, 'RolledBack');
  assert.equal(planConvergence(c.input()).packages[0]?.reason, 'RolloutFailed');
  assert.equal(c.rollouts.size, 1, 'no new rollout inside the backoff');
  runUntil(c, () => kubelets(c).every((v) => v === '1.31.2'));
  assert.deepEqual([...c.rollouts.keys()], ['kubelet-g1', 'kubelet-g1-2']);
});

test('a restart between remembering and creating leaves a name taken, never two rollouts', () => {
  const c = fleet(2);
  c.apply({ updateStrategy: FAST, packages: [{ name: 'kubelet', version: '1.31.2' }] });
  c.tick(10_000, { crashAt: 1 }); // remembered kubelet-g1, died before creating it
  assert.equal(c.rollouts.size, 0);
  runUntil(c, () => kubelets(c).every((v) => v === '1.31.2'));
  assert.deepEqual([...c.rollouts.keys()], ['kubelet-g1-2']);
});

test('machine status: current, desired, state and reason per package', () => {
  const c = fleet(2);
  c.apply({ updateStrategy: { ...FAST, soakSeconds: 60 }, packages: [{ name: 'kubelet', version: '1.31.2' }, { name: 'containerd', version: '1.7.1', updateStrategy: { paused: true } }] });
  const status = (name: string) => {
    const input = c.input();
    return machinePackages(input.machines.find((m) => m.name === name)!, input.packages, input.rollouts, planConvergence(input).packages);
  };
  assert.deepEqual(status('n0').map((p) => [p.name, p.state]), [['kubelet', 'Pending'], ['containerd', 'Converged']]);
  runUntil(c, () => status('n0')[0]?.state === 'Updating' || status('n1')[0]?.state === 'Updating');
  assert.equal(machineConverged([...status('n0'), ...status('n1')]), 'updating');
  runUntil(c, () => status('n0')[0]?.state === 'Converged' && status('n1')[0]?.state === 'Converged');
  assert.deepEqual(status('n1')[0], { name: 'kubelet', current: '1.31.2', desired: '1.31.2', state: 'Converged', reason: '' });
  runUntil(c, () => c.rollouts.get('kubelet-g1')?.state.phase === 'Completed');
  const conditions = cpvConditions(planConvergence(c.input()).packages);
  assert.deepEqual(conditions.map((x) => `${x.type}=${x.status}`), ['Converging=False', 'Converged=False', 'Degraded=False', 'Paused=True']);
});

test('a refusal of the target is final for that target; any other (an artifact not pushed yet) is retried after the backoff', () => {
  const c = fleet(2);
  c.apply({ updateStrategy: FAST, packages: [{ name: 'kubelet', version: '1.31.2' }] });
  const input = c.input();
  const refused = (code: string, at: number, now: number) => planConvergence({ ...input, now, refusals: [{ package: 'kubelet', track: '', key: 'g1', code, message: 'no', at }] });
  assert.equal(refused('NK_ROLLOUT_SKEW', 0, 10 * 3_600_000).actions.length, 0, 'a skew is never retried for the same generation');
  assert.equal(refused('NK_ARTIFACT_NOT_FOUND', 0, 10_000).actions.length, 0, 'inside the backoff');
  assert.equal(refused('NK_ARTIFACT_NOT_FOUND', 0, 10_000).packages[0]?.reason, 'RolloutRefused');
  assert.deepEqual(refused('NK_ARTIFACT_NOT_FOUND', 0, 30_000).actions.map((a) => a.kind), ['create'], 'after it');
});
