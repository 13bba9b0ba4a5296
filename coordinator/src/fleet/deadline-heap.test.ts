import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DeadlineHeap } from './deadline-heap.ts';

type Op = { kind: 'set'; key: number; at: number } | { kind: 'delete'; key: number } | { kind: 'popDue'; now: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), key: fc.integer({ min: 0, max: 30 }), at: fc.integer({ min: 0, max: 100 }) }),
  fc.record({ kind: fc.constant('delete' as const), key: fc.integer({ min: 0, max: 30 }) }),
  fc.record({ kind: fc.constant('popDue' as const), now: fc.integer({ min: 0, max: 100 }) }),
);

test('the heap agrees with a plain map of deadlines under any sequence of set, delete and popDue', () => {
  fc.assert(
    fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
      const heap = new DeadlineHeap<number>();
      const model = new Map<number, number>();
      for (const o of ops) {
        if (o.kind === 'set') {
          heap.set(o.key, o.at);
          model.set(o.key, o.at);
        } else if (o.kind === 'delete') {
          assert.equal(heap.delete(o.key), model.delete(o.key));
        } else {
          const due = heap.popDue(o.now);
          const expected = [...model].filter(([, at]) => at <= o.now);
          assert.deepEqual([...due].sort((a, b) => a - b), expected.map(([k]) => k).sort((a, b) => a - b));
          // Earliest first.
          const ats = due.map((k) => model.get(k) as number);
          assert.deepEqual(ats, [...ats].sort((a, b) => a - b));
          for (const [k] of expected) model.delete(k);
        }
        assert.equal(heap.size, model.size);
        assert.equal(heap.peekDeadline(), Math.min(...model.values()));
        for (const [k, at] of model) assert.equal(heap.deadlineOf(k), at);
      }
    }),
    { numRuns: 300 },
  );
});

test('an empty heap has no deadline and pops nothing', () => {
  const heap = new DeadlineHeap<string>();
  assert.equal(heap.peekDeadline(), Infinity);
  assert.deepEqual(heap.popDue(Number.MAX_SAFE_INTEGER), []);
  assert.equal(heap.delete('a'), false);
  assert.equal(heap.has('a'), false);
});

test('a key may wait forever (Infinity) and a NaN deadline is refused', () => {
  const heap = new DeadlineHeap<string>();
  heap.set('a', Infinity);
  heap.set('b', 5);
  assert.deepEqual(heap.popDue(Number.MAX_VALUE), ['b']);
  assert.equal(heap.size, 1);
  assert.throws(() => heap.set('c', Number.NaN), RangeError);
});

test('popDue with a limit takes the earliest due keys, at most that many, and leaves the rest due', () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: 100 }), { maxLength: 60 }), fc.integer({ min: 0, max: 100 }), fc.integer({ min: 0, max: 20 }), (ats, now, limit) => {
      const heap = new DeadlineHeap<number>();
      ats.forEach((at, k) => heap.set(k, at));
      const dueAts = ats.filter((at) => at <= now).sort((a, b) => a - b);
      const first = heap.popDue(now, limit);
      assert.equal(first.length, Math.min(limit, dueAts.length));
      assert.deepEqual(first.map((k) => ats[k]), dueAts.slice(0, first.length), 'earliest first');
      const rest = heap.popDue(now);
      assert.deepEqual(rest.map((k) => ats[k]), dueAts.slice(first.length), 'the rest stay due');
    }),
  );
});

test('heartbeat-like moves (each later than every deadline before) mixed with any others: the same answers as a plain map', () => {
  // Most sets move a key to "now + grace" (the lane); some set an earlier or an infinite
  // deadline (the heap); keys move between the two.
  const step = fc.oneof(
    { weight: 6, arbitrary: fc.record({ kind: fc.constant('beat' as const), key: fc.integer({ min: 0, max: 20 }), grace: fc.integer({ min: 0, max: 30 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('set' as const), key: fc.integer({ min: 0, max: 20 }), at: fc.oneof(fc.integer({ min: 0, max: 400 }), fc.constant(Infinity)) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete' as const), key: fc.integer({ min: 0, max: 20 }) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('pop' as const), limit: fc.oneof(fc.constant(Infinity), fc.integer({ min: 0, max: 3 })) }) },
  );
  fc.assert(
    fc.property(fc.array(step, { maxLength: 300 }), (steps) => {
      const heap = new DeadlineHeap<number>();
      const model = new Map<number, number>();
      let now = 0;
      for (const s of steps) {
        now += 1;
        if (s.kind === 'beat') {
          heap.set(s.key, now + s.grace);
          model.set(s.key, now + s.grace);
        } else if (s.kind === 'set') {
          heap.set(s.key, s.at);
          model.set(s.key, s.at);
        } else if (s.kind === 'delete') {
          assert.equal(heap.delete(s.key), model.delete(s.key));
        } else {
          const due = heap.popDue(now, s.limit);
          const expected = [...model].filter(([, at]) => at <= now).map(([, at]) => at).sort((a, b) => a - b);
          assert.deepEqual(due.map((k) => model.get(k)), expected.slice(0, due.length), 'the earliest due, earliest first');
          assert.equal(due.length, Math.min(s.limit, expected.length));
          for (const k of due) model.delete(k);
        }
        assert.equal(heap.size, model.size);
        assert.equal(heap.peekDeadline(), Math.min(...model.values()));
        for (const [k, at] of model) assert.equal(heap.deadlineOf(k), at);
        for (let k = 0; k <= 20; k++) assert.equal(heap.has(k), model.has(k));
      }
    }),
    { numRuns: 300 },
  );
  const empty = new DeadlineHeap<number>();
  assert.deepEqual(empty.popDue(Infinity), [], 'an empty queue pops nothing, even at Infinity');
});
