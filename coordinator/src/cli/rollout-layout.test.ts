import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isMoving, layoutRolloutStatus, soakRemaining } from './rollout-layout.ts';
import type { RolloutMachineStatus, RolloutObject } from './rollout-objects.ts';

const NOW = Date.parse('2026-12-03T12:00:00Z');
const PHASES = ['Waiting', 'Installing', 'Soaking', 'Succeeded', 'Failed', 'RollingBack', 'RolledBack', 'Skipped'] as const;

function machine(i: number, phase: string, reason = ''): RolloutMachineStatus {
  return { name: `node-${String(i).padStart(5, '0')}`, phase, package: 'kubelet', fromVersion: '1.31.2', toVersion: '1.31.3', step: phase === 'Installing' ? 'restart' : null, reason, message: '', since: new Date(NOW - 5000).toISOString() };
}

function rollout(machines: RolloutMachineStatus[], extra: { phase?: string; reason?: string; soak?: number } = {}): RolloutObject {
  const count = (p: string) => machines.filter((m) => m.phase === p).length;
  return {
    apiVersion: 'nodekeeper.io/v1alpha1', kind: 'Rollout',
    metadata: { name: 'kubelet-1-31-3' },
    spec: { packages: [{ package: 'kubelet', version: '1.31.3' }], selector: {}, strategy: { soakSeconds: extra.soak ?? 60 } } as RolloutObject['spec'],
    status: {
      phase: extra.phase ?? 'Progressing', reason: extra.reason ?? '', message: '', continueWith: null,
      batch: { index: 2, total: 4 },
      counts: { total: machines.length, succeeded: count('Succeeded'), inProgress: count('Installing') + count('Soaking'), failed: count('Failed'), waiting: count('Waiting'), rollingBack: count('RollingBack'), rolledBack: count('RolledBack'), skipped: count('Skipped') } as NonNullable<RolloutObject['status']>['counts'],
      machines, startedTime: null, completedTime: null,
    },
  };
}

const machinesArb = fc.array(fc.record({ phase: fc.constantFrom(...PHASES), held: fc.boolean() }), { maxLength: 300 })
  .map((ms) => ms.map((m, i) => machine(i, m.phase, m.phase === 'Waiting' && m.held ? 'HeldForSkew' : '')));

describe('layoutRolloutStatus', () => {
  it('never exceeds the rows or the columns, and shows every moving machine when they fit', () => {
    fc.assert(fc.property(machinesArb, fc.integer({ min: 1, max: 80 }), fc.integer({ min: 20, max: 200 }), fc.constantFrom('', 'CanaryFailed'), (machines, rows, columns, reason) => {
      const lines = layoutRolloutStatus(rollout(machines, { reason }), NOW, rows, columns);
      assert.ok(lines.length <= rows, `${lines.length} lines for ${rows} rows`);
      assert.ok(lines.every((l) => l.length <= columns && !l.includes('\n')));
      const moving = machines.filter(isMoving);
      const rest = machines.length - moving.length;
      const summary = 3 + (reason === '' ? 0 : 1) + (machines.some((m) => m.phase === 'Soaking') ? 1 : 0) - 1;
      const needed = summary + (moving.length > 0 ? moving.length + 1 : 0) + (rest > 0 ? 1 : 0);
      const text = lines.join('\n');
      if (needed <= rows && columns >= 60) {
        for (const m of moving) assert.match(text, new RegExp(`^${m.name} `, 'm'), `${m.name} (${m.phase}) shown`);
        if (rest > 0) assert.match(text, new RegExp(`${rest.toLocaleString('en-US')} machines done/waiting`));
      }
      // Whatever is shown, nothing is counted twice or lost: shown rows + counted = all.
      if (rows >= summary + 1 && machines.length > 0 && columns >= 120) {
        const shown = moving.filter((m) => new RegExp(`^${m.name} `, 'm').test(text)).length;
        const counted = [...text.matchAll(/([\d,]+) (?:more )?moving/g)].reduce((s, x) => s + Number((x[1] ?? '0').replace(/,/g, '')), 0)
          + [...text.matchAll(/([\d,]+) machines done\/waiting/g)].reduce((s, x) => s + Number((x[1] ?? '0').replace(/,/g, '')), 0);
        assert.equal(shown + counted, machines.length, text);
      }
    }), { numRuns: 300 });
  });

  it('reads as a summary, the moving machines first-failed, and the rest counted', () => {
    const ms = [machine(1, 'Succeeded'), machine(2, 'Installing'), machine(3, 'Failed', 'HealthCheckFailed'), ...Array.from({ length: 4812 }, (_, i) => machine(10 + i, i % 2 === 0 ? 'Succeeded' : 'Waiting'))];
    const lines = layoutRolloutStatus(rollout(ms), NOW, 24, 120);
    assert.equal(lines[0], 'rollout/kubelet-1-31-3: Progressing, batch 2/4  kubelet=1.31.3');
    assert.match(lines[1] ?? '', /^Updated: {3}\[#{9}-{11}\] 2407\/4815 succeeded \(1 in progress, 1 failed, 2406 waiting\)$/);
    assert.match(lines[2] ?? '', /^MACHINE +PHASE/);
    assert.match(lines[3] ?? '', /^node-00003 +Failed .*HealthCheckFailed/);
    assert.match(lines[4] ?? '', /^node-00002 +Installing +kubelet +restart/);
    assert.equal(lines[5], 'and 4,813 machines done/waiting (2,407 done, 2,406 waiting)');
    assert.equal(lines.length, 6);
    // Three rows: the summary and one line counting everything.
    assert.deepEqual(layoutRolloutStatus(rollout(ms), NOW, 3, 120).slice(2), ['2 moving, 4,813 machines done/waiting (2,407 done, 2,406 waiting)']);
  });

  it('shows the soak time left on the machine soaking longest', () => {
    const r = rollout([machine(1, 'Soaking'), { ...machine(2, 'Soaking'), since: new Date(NOW - 50_000).toISOString() }], { soak: 60 });
    assert.equal(soakRemaining(r, NOW), 10);
    assert.ok(layoutRolloutStatus(r, NOW, 24, 80).includes('Soak:      10s left'));
    assert.throws(() => layoutRolloutStatus(r, NOW, 0, 80), RangeError);
  });
});
