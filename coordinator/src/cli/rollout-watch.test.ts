import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { AppError } from '@nodekeeper/common';
import type { RolloutObject, RolloutStatus } from './rollout-objects.ts';
import { progressBar, renderStop } from './rollout-views.ts';
import { watchRollout, type WatchDeps } from './rollout-watch.ts';

const NOW = Date.parse('2026-05-04T12:00:00.000Z');
const AT = new Date(NOW).toISOString();
const MACHINES = ['node-1', 'node-2', 'node-3', 'node-4'];
type Frame = [phase: string, reason: string, message: string, batch: number, machines: readonly string[], continueWith?: string];

/** A rollout of kubelet 1.31.3 as the API serves it, machine phases in the order of MACHINES. */
function rolloutAt([phase, reason, message, batch, machines, continueWith]: Frame): RolloutObject {
  const count = (...p: string[]) => machines.filter((m) => p.includes(m)).length;
  const status: RolloutStatus = {
    phase, reason, message, continueWith: continueWith ?? null, batch: { index: batch, total: 2 },
    counts: { total: 4, waiting: count('Waiting'), inProgress: count('Installing', 'Soaking'), succeeded: count('Succeeded'), failed: count('Failed'), rollingBack: 0, rolledBack: 0, skipped: 0 },
    machines: MACHINES.map((name, i) => ({
      name, phase: machines[i] ?? 'Waiting', package: 'kubelet', fromVersion: '1.31.2', toVersion: '1.31.3',
      step: machines[i] === 'Installing' ? 'switch' : null, reason: '', message: machines[i] === 'Failed' ? 'HealthCheckFailed: kubelet did not become healthy' : '', since: AT,
    })),
    startedTime: AT, completedTime: phase === 'Completed' ? AT : null,
  };
  return {
    apiVersion: 'nodekeeper.io/v1alpha1', kind: 'Rollout', metadata: { name: 'web-kubelet', creationTimestamp: AT, resourceVersion: '1' },
    spec: { packages: [{ package: 'kubelet', version: '1.31.3' }], selector: {}, strategy: { canary: { count: 1 }, soakSeconds: 0, batches: [50, 100], maxUnavailable: 1, maxFailures: 1, onFailure: 'Pause' } },
    status,
  };
}

/** A rollout that goes canary first, then 50 %, then the rest, one step per read. */
const COMPLETES: readonly Frame[] = [
  ['Canary', 'Started', 'canary node-1', 0, ['Installing', 'Waiting', 'Waiting', 'Waiting']],
  ['Soaking', 'CanaryInstalled', 'soaking the canary', 0, ['Soaking', 'Waiting', 'Waiting', 'Waiting']],
  ['Progressing', 'BatchStarted', 'batch 1 of 2', 1, ['Succeeded', 'Installing', 'Waiting', 'Waiting']],
  ['Progressing', 'BatchStarted', 'batch 1 of 2', 1, ['Succeeded', 'Soaking', 'Waiting', 'Waiting']],
  ['Progressing', 'BatchStarted', 'batch 2 of 2', 2, ['Succeeded', 'Succeeded', 'Installing', 'Installing']],
  ['Progressing', 'BatchStarted', 'batch 2 of 2', 2, ['Succeeded', 'Succeeded', 'Soaking', 'Soaking']],
  ['Completed', 'AllMachinesUpgraded', '4/4 machine upgrades succeeded', 2, ['Succeeded', 'Succeeded', 'Succeeded', 'Succeeded']],
];
/** A canary that fails its health check: the rollout pauses. */
const CANARY_FAILS: readonly Frame[] = [
  ['Canary', 'Started', 'canary node-1', 0, ['Installing', 'Waiting', 'Waiting', 'Waiting']],
  ['Paused', 'CanaryFailed', '1 machine(s) failed in the canary (maxFailures 1)', 0, ['Failed', 'Waiting', 'Waiting', 'Waiting'], 'nkctl rollout rollback web-kubelet'],
];

/** A fetch that serves the next frame per read, then the last one for ever. */
function simulated(frames: readonly Frame[]): () => Promise<RolloutObject> {
  let i = 0;
  return async () => rolloutAt(frames[Math.min(i++, frames.length - 1)]!);
}

function deps(fetch: () => Promise<RolloutObject>, tty: boolean) {
  const out: string[] = [];
  const warnings: string[] = [];
  const sleeps: number[] = [];
  const d: WatchDeps = {
    fetch,
    sleep: async (ms) => void sleeps.push(ms),
    write: (t) => void out.push(t),
    warn: (t) => void warnings.push(t),
    tty,
    now: () => NOW,
    intervalMs: 1000,
    random: () => 0.5,
  };
  return { d, out, warnings, sleeps };
}

describe('watchRollout', () => {
  it('appends a line per change off a terminal and stops at Completed', async () => {
    const { d, out, sleeps } = deps(simulated(COMPLETES), false);
    const last = await watchRollout(d);
    assert.equal(last.status?.phase, 'Completed');
    const text = out.join('');
    assert.doesNotMatch(text, /\x1b\[/, 'no cursor movement in a log');
    const phases = [...text.matchAll(/^rollout\/web-kubelet: (\w+)/gm)].map((m) => m[1]);
    assert.deepEqual(phases, ['Canary', 'Soaking', 'Progressing', 'Progressing', 'Progressing', 'Progressing', 'Completed']);
    assert.match(text, /^ {2}node-4 kubelet: Soaking -> Succeeded$/m);
    assert.ok(sleeps.every((s) => s === 1000));
    assert.equal(sleeps.length, phases.length - 1);
  });

  it('redraws in place on a terminal: each frame erases exactly the previous one', async () => {
    const { d, out } = deps(simulated(COMPLETES), true);
    await watchRollout(d);
    assert.ok(out.length > 2);
    for (let i = 1; i < out.length; i++) {
      const prevLines = (out[i - 1] ?? '').replace(/^\x1b\[\d+A\r\x1b\[J/, '').split('\n').length - 1;
      assert.ok((out[i] ?? '').startsWith(`\x1b[${prevLines}A\r\x1b[J`), `frame ${i} erases ${prevLines} lines`);
    }
    assert.match(out.at(-1) ?? '', /rollout\/web-kubelet: Completed, batch 2\/2\nPackages: {2}kubelet=1\.31\.3\nProgress: {2}\[#{30}\] 4\/4 succeeded/);
  });

  it('stops at Paused with the reason and the command that continues it', async () => {
    const { d } = deps(simulated(CANARY_FAILS), false);
    const last = await watchRollout(d);
    assert.equal(last.status?.phase, 'Paused');
    assert.equal(renderStop(last), 'Rollout web-kubelet Paused: CanaryFailed: 1 machine(s) failed in the canary (maxFailures 1)\nTo continue: nkctl rollout rollback web-kubelet\n');
  });

  it('waits for a coordinator that went away, and gives up on other errors', async () => {
    const step = simulated(COMPLETES);
    let calls = 0;
    const flaky = async () => {
      calls += 1;
      if (calls === 2 || calls === 3) throw new AppError('NK_CLI_CONNECTION_REFUSED', 'cannot connect');
      return step();
    };
    const { d, warnings, sleeps } = deps(flaky, false);
    assert.equal((await watchRollout(d)).status?.phase, 'Completed');
    assert.equal(warnings.length, 2);
    assert.match(warnings[0] ?? '', /^warning: cannot connect \(NK_CLI_CONNECTION_REFUSED\); retrying in 0\.5s \(1\/10\)/);
    assert.deepEqual(sleeps.slice(1, 3), [500, 1000], 'jittered backoff from the interval');

    const notFound = deps(async () => {
      throw new AppError('NK_ROLLOUT_NOT_FOUND', 'rollout "x" not found', { context: { status: 404 } });
    }, false);
    await assert.rejects(watchRollout(notFound.d), /not found/);
    const down = deps(async () => {
      throw new AppError('NK_CLI_UNREACHABLE', 'gone');
    }, false);
    await assert.rejects(watchRollout(down.d), /gone/);
    assert.equal(down.warnings.length, 10, 'a bounded number of retries');
  });
});

describe('progressBar', () => {
  it('is always the same width and never overfills', () => {
    fc.assert(fc.property(fc.integer({ min: -5, max: 200 }), fc.integer({ min: 0, max: 150 }), fc.integer({ min: 1, max: 60 }), (done, total, width) => {
      const bar = progressBar(done, total, width);
      assert.equal(bar.length, width + 2);
      const filled = bar.split('#').length - 1;
      assert.ok(filled <= width);
      if (total > 0 && done >= total) assert.equal(filled, width);
      if (done <= 0) assert.equal(filled, 0);
    }));
    assert.throws(() => progressBar(1, 2, 0), RangeError);
  });
});
