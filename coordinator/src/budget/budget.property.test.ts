/**
 * Property tests of the availability budget (architecture invariant 1), with the rules
 * written again here independently: for any fleet, any holds of any number of users
 * (rollouts, the remediation), any failed-not-yet-restored machines and any limit, the
 * machines out never exceed the limit because of a start; a held machine counts whether
 * or not the fleet knows it (silent, partitioned away, deleted); nothing starts while a
 * partition is suspected; and users taking turns through the SharedBudget never take
 * the fleet past the limit together.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { admit, budgetFor, clusterLimit, Ledger, type FleetBudget, type Hold } from './budget.ts';
import { parseIntOrPercent, resolveIntOrPercent, type IntOrPercent } from './int-or-percent.ts';
import { SharedBudget } from './shared-budget.ts';

/** Machine names: the fleet is m0..m(n-1); holds may name machines it no longer has (x0..). */
const name = fc.oneof({ weight: 4, arbitrary: fc.nat({ max: 40 }).map((i) => `m${i}`) }, { weight: 1, arbitrary: fc.nat({ max: 5 }).map((i) => `x${i}`) });
const limitArb: fc.Arbitrary<IntOrPercent> = fc.oneof(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 100 }).map((p) => `${p}%` as const));
const holdArb = (user: string): fc.Arbitrary<Hold> => fc.record({ user: fc.constant(user), machines: fc.uniqueArray(name, { maxLength: 6 }), counted: fc.uniqueArray(name, { maxLength: 3 }) });
const budgetArb: fc.Arbitrary<FleetBudget> = fc.record({
  maxUnavailable: limitArb,
  fleetSize: fc.integer({ min: 0, max: 41 }),
  holds: fc.tuple(holdArb('remediation'), fc.array(fc.nat({ max: 4 }), { maxLength: 4 })).chain(([r, ids]) =>
    fc.tuple(...[...new Set(ids)].map((i) => holdArb(`rollout/r${i}`))).map((rs) => [r, ...rs])),
  partition: fc.option(fc.constant({ reason: 'PartitionSuspected', message: '12 of 40 agents went silent together' }), { freq: 4 }),
});

/** The machines out, by the definition: everyone's holds and counted machines, known to the fleet or not. */
function outOf(b: FleetBudget): Set<string> {
  return new Set(b.holds.flatMap((h) => [...h.machines, ...h.counted]));
}

test('int-or-percent: an int is absolute, a percent of the fleet rounds down, never below 1; the text form parses back', () => {
  fc.assert(fc.property(fc.integer({ min: 0, max: 100_000 }), fc.integer({ min: 0, max: 100 }), fc.integer({ min: 0, max: 50_000 }), (n, pct, total) => {
    assert.equal(resolveIntOrPercent(n, total, false), Math.max(1, n));
    assert.equal(resolveIntOrPercent(`${pct}%`, total, false), Math.max(1, Math.floor((pct * total) / 100)));
    assert.equal(resolveIntOrPercent(`${pct}%`, total, true), Math.max(1, Math.ceil((pct * total) / 100)));
    assert.equal(clusterLimit(`${pct}%`, total), Math.max(1, Math.floor((pct * Math.max(1, total)) / 100)));
  }));
  assert.equal(resolveIntOrPercent('25%', 10, false), 2); // 2.5 machines: Kubernetes rounds maxUnavailable down
  assert.equal(clusterLimit('10%', 5), 1); // 0.5: at least 1, or nothing could ever start
  for (const [text, want] of [['3', 3], [' 25% ', '25%'], ['010%', '10%'], ['100%', '100%']] as const) assert.equal(parseIntOrPercent(text), want);
  for (const text of ['', '-1', '1.5', '25 %', '%', '1000%', '1234567', 'ten']) assert.equal(parseIntOrPercent(text), null, text);
});

test('admit: starts never take the machines out past the limit; held machines count whether the fleet knows them or not', () => {
  fc.assert(fc.property(budgetArb, fc.constantFrom('remediation', 'rollout/r0', 'rollout/r9'), fc.uniqueArray(name, { maxLength: 20 }), (b, user, candidates) => {
    const own = b.holds.filter((h) => h.user === user).flatMap((h) => h.machines);
    const { admitted, refused } = admit(b, user, own, candidates);
    assert.equal(admitted.length + refused.length, candidates.length, 'every candidate is admitted or refused, once');
    if (b.partition !== null) {
      assert.deepEqual(admitted, [], 'nothing starts while a partition is suspected');
      assert.ok(refused.every((r) => r.reason === 'PartitionSuspected'));
      return;
    }
    const limit = clusterLimit(b.maxUnavailable, b.fleetSize);
    const before = outOf(b);
    const after = new Set([...before, ...admitted]);
    // A start adds a machine only while there is room: the total never grows past the limit.
    assert.ok(after.size <= Math.max(limit, before.size), `${after.size} out of at most ${limit} (was ${before.size})`);
    const othersHold = new Set(b.holds.filter((h) => h.user !== user).flatMap((h) => h.machines));
    for (const m of admitted) assert.ok(!othersHold.has(m), `${m} is held by another user`);
    for (const r of refused) {
      if (r.reason === 'BusyElsewhere') assert.ok(othersHold.has(r.machine));
      // Refused for the budget only when starting it would add one past the limit.
      if (r.reason === 'BudgetExhausted') assert.ok(!after.has(r.machine) && after.size + 1 > limit, `${r.machine} refused with room left`);
    }
  }));
});

test('budgetFor: a user sees every other user\'s holds and counted machines, never only its own', () => {
  fc.assert(fc.property(budgetArb, fc.constantFrom('remediation', 'rollout/r0', 'rollout/r1'), (b, user) => {
    const share = budgetFor(b, user);
    const others = b.holds.filter((h) => h.user !== user);
    assert.deepEqual(new Set(share.unavailableNow), new Set(others.flatMap((h) => h.machines)));
    assert.deepEqual(new Set(share.countedNow), new Set(others.flatMap((h) => h.counted)));
    assert.equal(share.maxUnavailable, clusterLimit(b.maxUnavailable, b.fleetSize));
  }));
});

test('a Ledger counts a machine once and refuses only when full', () => {
  fc.assert(fc.property(fc.integer({ min: 1, max: 8 }), fc.array(name, { maxLength: 30 }), (limit, starts) => {
    const ledger = new Ledger(limit, []);
    for (const m of starts) if (!ledger.full(m)) ledger.take(m);
    assert.equal(ledger.size, Math.min(limit, new Set(starts).size));
    assert.match(ledger.describe(), new RegExp(`^${ledger.size} machine\\(s\\) unavailable of at most ${limit}$`));
  }));
});

test('users taking turns through one SharedBudget never take the fleet past the limit together', () => {
  fc.assert(fc.property(limitArb, fc.integer({ min: 1, max: 40 }), fc.array(fc.tuple(fc.nat({ max: 3 }), fc.uniqueArray(name, { maxLength: 8 }), fc.boolean()), { maxLength: 40 }), (max, size, turns) => {
    const shared = new SharedBudget(max);
    const users = ['remediation', 'rollout/a', 'rollout/b', 'rollout/c'];
    const holds = new Map(users.map((u) => [u, new Set<string>()]));
    shared.addUser(() => users.slice(1).map((u) => ({ user: u, machines: [...holds.get(u)!], counted: [] })));
    shared.addUser(() => [{ user: 'remediation', machines: [...holds.get('remediation')!], counted: [] }]);
    const limit = clusterLimit(max, size);
    for (const [i, candidates, finishOne] of turns) {
      const user = users[i]!;
      const mine = holds.get(user)!;
      if (finishOne && mine.size > 0) mine.delete([...mine][0]!); // a machine comes back
      for (const m of admit(shared.snapshot(size), user, [...mine], candidates).admitted) mine.add(m);
      const out = new Set([...holds.values()].flatMap((s) => [...s]));
      assert.ok(out.size <= limit, `${out.size} machines out together, limit ${limit}`);
      const total = [...holds.values()].reduce((n, s) => n + s.size, 0);
      assert.equal(total, out.size, 'no machine is held by two users');
    }
  }));
});
