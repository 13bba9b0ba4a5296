import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { canaryCount, matchesSelector, orderKey, selectCandidates, waveEnds } from './candidates.ts';

const machines = (names: string[]) => names.map((name, i) => ({ name, labels: { pool: i % 2 === 0 ? 'web' : 'db' } }));

test('the order is the sha256 order of rollout/machine, whatever order the machines come in', () => {
  fc.assert(
    fc.property(fc.uniqueArray(fc.stringMatching(/^[a-z][a-z0-9-]{0,12}$/), { minLength: 1, maxLength: 50 }), fc.string({ minLength: 1, maxLength: 10 }), (names, rollout) => {
      const a = selectCandidates(rollout, { matchLabels: {} }, machines(names));
      const b = selectCandidates(rollout, { matchLabels: {} }, machines([...names].reverse()));
      assert.deepEqual(a, b);
      assert.deepEqual(new Set(a), new Set(names));
      for (let i = 1; i < a.length; i++) assert.ok(orderKey(rollout, a[i - 1] ?? '') <= orderKey(rollout, a[i] ?? ''));
    }),
  );
});

test('different rollouts order the same machines differently', () => {
  const names = Array.from({ length: 20 }, (_, i) => `node-${i}`);
  assert.notDeepEqual(selectCandidates('a', { matchLabels: {} }, machines(names)), selectCandidates('b', { matchLabels: {} }, machines(names)));
});

test('selectors match every label and, when given, the names', () => {
  const m = { name: 'n1', labels: { pool: 'web', zone: 'a' } };
  assert.ok(matchesSelector({ matchLabels: {} }, m));
  assert.ok(matchesSelector({ matchLabels: { pool: 'web' } }, m));
  assert.ok(!matchesSelector({ matchLabels: { pool: 'web', zone: 'b' } }, m));
  assert.ok(matchesSelector({ matchLabels: { pool: 'web' }, names: ['n1', 'n2'] }, m));
  assert.ok(!matchesSelector({ matchLabels: {}, names: ['n2'] }, m));
  assert.deepEqual(selectCandidates('r', { matchLabels: { pool: 'db' } }, machines(['a', 'b', 'c', 'd'])).sort(), ['b', 'd']);
});

test('canary counts: count capped at the fleet, percent rounded up', () => {
  assert.equal(canaryCount({ count: 3 }, 2), 2);
  assert.equal(canaryCount({ percent: 10 }, 25), 3);
  assert.equal(canaryCount({ percent: 1 }, 5), 1);
  assert.equal(canaryCount({ percent: 0 }, 5), 0);
});

test('waves: canaries first, cumulative rounded-up percents, at least one machine each, ending at the total', () => {
  assert.deepEqual(waveEnds({ batches: [10, 50, 100] }, 1, 20), [1, 2, 10, 20]);
  assert.deepEqual(waveEnds({ batches: [10, 50, 100] }, 0, 3), [1, 2, 3]);
  assert.deepEqual(waveEnds({ batchSize: 4 }, 2, 9), [2, 6, 9]);
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 300 }), fc.uniqueArray(fc.integer({ min: 1, max: 99 }), { maxLength: 5 }), fc.integer({ min: 0, max: 5 }), (total, pcts, c) => {
      const canaries = Math.min(c, total);
      const ends = waveEnds({ batches: [...pcts.sort((x, y) => x - y), 100] }, canaries, total);
      if (total === 0) return assert.deepEqual(ends, []);
      assert.equal(ends.at(-1), total);
      if (canaries > 0) assert.equal(ends[0], canaries);
      for (let i = 1; i < ends.length; i++) assert.ok((ends[i] ?? 0) > (ends[i - 1] ?? 0), 'every wave has a machine');
    }),
  );
  assert.throws(() => waveEnds({ batchSize: 1 }, 3, 2), RangeError);
});
