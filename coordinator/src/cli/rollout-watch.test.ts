import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { AppError } from '@nodekeeper/common';
import { toMachineObject } from '../api/objects.ts';
import { advanceFixtureRollout, fixtureRolloutObject, newFixtureRollout } from './fixture-rollouts.ts';
import { NOW, machineRecord } from './fixtures.ts';
import type { Rollout as RolloutObject } from '@nodekeeper/api';
import type { RolloutSpec } from './fixture-rollouts.ts';
import { progressBar, renderStop } from './rollout-views.ts';
import { watchRollout, type WatchDeps } from './rollout-watch.ts';

const machines = ['node-1', 'node-2', 'node-3', 'node-4'].map((n) => toMachineObject(machineRecord(n), NOW));
const spec = (version: string, onFailure: 'Pause' | 'Rollback' = 'Pause'): RolloutSpec => ({
  packages: [{ package: 'kubelet', version }],
  selector: {},
  strategy: { canary: { count: 1 }, soakSeconds: 0, batches: [50, 100], maxUnavailable: 1, maxFailures: 1, onFailure },
});

/** A fetch that steps the fixture simulation, as the fixture server does per GET. */
function simulated(version: string, fail: string[] = [], onFailure: 'Pause' | 'Rollback' = 'Pause'): () => Promise<RolloutObject> {
  const r = newFixtureRollout(spec(version, onFailure), 'web-kubelet', machines, NOW);
  return async () => {
    advanceFixtureRollout(r, fail, NOW);
    return fixtureRolloutObject(r);
  };
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
    const { d, out, sleeps } = deps(simulated('1.31.3'), false);
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
    const { d, out } = deps(simulated('1.31.3'), true);
    await watchRollout(d);
    assert.ok(out.length > 2);
    for (let i = 1; i < out.length; i++) {
      const prevLines = (out[i - 1] ?? '').replace(/^\x1b\[\d+A\r\x1b\[J/, '').split('\n').length - 1;
      assert.ok((out[i] ?? '').startsWith(`\x1b[${prevLines}A\r\x1b[J`), `frame ${i} erases ${prevLines} lines`);
    }
    assert.match(out.at(-1) ?? '', /rollout\/web-kubelet: Completed, batch 2\/2\nPackages: {2}kubelet=1\.31\.3\nProgress: {2}\[#{30}\] 4\/4 succeeded/);
  });

  it('stops at Paused with the reason and the command that continues it', async () => {
    const { d } = deps(simulated('1.31.9', ['1.31.9']), false);
    const last = await watchRollout(d);
    assert.equal(last.status?.phase, 'Paused');
    assert.equal(renderStop(last), 'Rollout web-kubelet Paused: CanaryFailed: 1 machine(s) failed in the canary (maxFailures 1)\nTo continue: nkctl rollout rollback web-kubelet\n');
  });

  it('waits for a coordinator that went away, and gives up on other errors', async () => {
    const step = simulated('1.31.3');
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
