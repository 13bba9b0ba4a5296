/**
 * The restart grace (restart-grace.ts) and how liveness uses it: sized to the fleet's
 * readmission, never below the ordinary grace, growing with the fleet; it covers an
 * agent whose backoff grew through an outage of any length; and it covers only the
 * first silence after a restart: a machine heard again is judged by the ordinary grace.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { backoffDelay, defaultBackoff } from '@nodekeeper/common';
import type { Liveness } from '../model/machine.ts';
import { contactAfterRestart, contactOnDisconnect, contactOnHello, contactOnMessage, nextLiveness, nextLivenessChangeAt, type Contact, type LivenessConfig } from './liveness.ts';
import { restartGraceMs, type RestartGraceInput } from './restart-grace.ts';

const inputs = fc.record({
  machines: fc.integer({ min: 0, max: 200_000 }),
  admissionPerSecond: fc.integer({ min: 1, max: 100_000 }),
  agentBackoffCapMs: fc.integer({ min: 0, max: 600_000 }),
  graceMs: fc.integer({ min: 1, max: 3_600_000 }),
});

test('restart grace: never below the grace, and monotone in the fleet size and the backoff cap', () => {
  fc.assert(
    fc.property(inputs, fc.integer({ min: 0, max: 100_000 }), fc.integer({ min: 0, max: 100_000 }), (i: RestartGraceInput, moreMachines, moreCap) => {
      const g = restartGraceMs(i);
      assert.ok(g >= i.graceMs, 'never less than the ordinary grace');
      assert.ok(g >= i.graceMs + i.agentBackoffCapMs, 'covers a whole backoff step');
      assert.ok(restartGraceMs({ ...i, machines: i.machines + moreMachines }) >= g, 'monotone in N');
      assert.ok(restartGraceMs({ ...i, agentBackoffCapMs: i.agentBackoffCapMs + moreCap }) >= g, 'monotone in the cap');
      assert.ok(g >= i.graceMs + (i.machines * 1000) / i.admissionPerSecond, 'covers the readmission of the whole fleet');
    }),
  );
});

test('restart grace while agents are still refused: extended past the last refusal by a step and a grace, never beyond the readmission at the trickle', () => {
  fc.assert(
    fc.property(inputs, fc.integer({ min: 0, max: 10_000_000 }), fc.integer({ min: 0, max: 10_000_000 }), (i: RestartGraceInput, refusedAt, later) => {
      const base = restartGraceMs(i);
      const g = restartGraceMs(i, refusedAt);
      const trickle = Math.max(1, i.admissionPerSecond / 10);
      const bound = i.graceMs + Math.ceil((i.machines * 1000) / trickle) + (base - i.graceMs - Math.ceil((i.machines * 1000) / i.admissionPerSecond));
      assert.ok(g >= base, 'never below the grace sized at start');
      assert.ok(g <= Math.max(base, bound), `at most the readmission of the fleet at the trickle: ${g} > ${bound}`);
      assert.ok(g >= Math.min(refusedAt + i.graceMs, bound), 'a grace past the last refusal, within the bound');
      assert.ok(restartGraceMs(i, refusedAt + later) >= g, 'a later refusal never shortens it');
    }),
  );
});

test('restart grace: the two cases of issue 15, and bad input', () => {
  // The demo: 4 agents, an 8 s grace, the agents' 30 s cap: 38 s (their backoff outran 8 s).
  assert.equal(restartGraceMs({ machines: 4, admissionPerSecond: 1000, agentBackoffCapMs: defaultBackoff.capMs, graceMs: 8_000 }), 8_000 + 4 + 30_000);
  // 19 k at 1,000/s: 19 s at the door, and a refused agent may wait 30 s + 30 s of jitter.
  assert.equal(restartGraceMs({ machines: 19_000, admissionPerSecond: 1000, agentBackoffCapMs: defaultBackoff.capMs, graceMs: 40_000 }), 40_000 + 19_000 + 60_000);
  assert.throws(() => restartGraceMs({ machines: -1, admissionPerSecond: 1000, agentBackoffCapMs: 0, graceMs: 1 }), RangeError);
  assert.throws(() => restartGraceMs({ machines: 1, admissionPerSecond: 0, agentBackoffCapMs: 0, graceMs: 1 }), RangeError);
  assert.throws(() => restartGraceMs({ machines: 1, admissionPerSecond: 1, agentBackoffCapMs: 0, graceMs: 0 }), RangeError);
  // 19 k readmitted at the trickle (100 a second): refusals until 150 s in keep the grace to 150 + 60 + 40 s.
  const storm = { machines: 19_000, admissionPerSecond: 1000, agentBackoffCapMs: defaultBackoff.capMs, graceMs: 40_000 };
  assert.equal(restartGraceMs(storm, 150_000), 150_000 + 60_000 + 40_000);
  assert.equal(restartGraceMs(storm, 10_000), 119_000, 'an early refusal leaves the grace sized at start');
  assert.equal(restartGraceMs(storm, 10_000_000), 40_000 + 190_000 + 60_000, 'bounded by the readmission at the trickle');
  assert.throws(() => restartGraceMs(storm, -1), RangeError);
});

test('an agent whose backoff grew through an outage of any length redials within the restart grace, a grace to spare', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 600_000 }),
      fc.record({ baseMs: fc.integer({ min: 1, max: 5_000 }), capMs: fc.integer({ min: 1, max: 120_000 }) }),
      fc.integer({ min: 1, max: 60_000 }),
      fc.array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), { minLength: 1, maxLength: 50 }),
      (outageMs, policy, graceMs, randoms) => {
        // The agent's own schedule (packages/common backoffDelay) from the moment the
        // coordinator died, each refused dial taking 10 ms; its first dial at or after the
        // restart is what counts.
        let r = 0;
        const random = () => randoms[r++ % randoms.length] as number;
        let t = 0;
        let attempt = 0;
        while (t < outageMs) t += 10 + backoffDelay(policy, attempt++, random);
        const rg = restartGraceMs({ machines: 4, admissionPerSecond: 1000, agentBackoffCapMs: policy.capMs, graceMs });
        assert.ok(t - outageMs <= rg - graceMs, `redialled ${t - outageMs} ms after the restart; restart grace ${rg} ms`);
      },
    ),
  );
});

const ready: Liveness = { state: 'Ready', since: 0, reason: 'AgentHeartbeat', message: '' };
const judge = (prev: Liveness, c: Contact, now: number, cfg: LivenessConfig) =>
  nextLiveness(prev, { now, ...c, nodeHealthy: true, nodeReason: 'ok', nodeMessage: '' }, cfg);

test('the restart grace covers only the first silence: heard again, a machine is judged by the ordinary grace', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 60_000 }),
      fc.integer({ min: 0, max: 600_000 }),
      fc.integer({ min: 0, max: 1_000_000 }),
      fc.boolean(),
      (graceMs, extraMs, backAfterMs, disconnects) => {
        const cfg: LivenessConfig = { graceMs, recoverMs: 0, restartGraceMs: graceMs + extraMs };
        const startedAt = 1_000_000;
        const restarted = contactAfterRestart({ liveness: ready, lastSeenAt: 5 }, startedAt);
        // Silent since the restart: not Unknown within the restart grace, Unknown after it.
        assert.equal(judge(ready, restarted, startedAt + graceMs + extraMs, cfg).state, 'Ready');
        assert.equal(judge(ready, restarted, startedAt + graceMs + extraMs + 1, cfg).state, 'Unknown');
        assert.equal(nextLivenessChangeAt(ready, { now: startedAt, ...restarted }, cfg), startedAt + graceMs + extraMs);
        // Heard again (whenever: within the restart grace or not), then silent (with or
        // without the connection closing): the ordinary grace, from that message.
        const back = startedAt + backAfterMs;
        let c = contactOnMessage(restarted, back, cfg);
        if (disconnects) c = contactOnDisconnect(c);
        const prev = judge(ready, c, back, cfg);
        assert.notEqual(prev.state, 'Unknown');
        assert.equal(judge(prev, c, back + graceMs, cfg).state, prev.state);
        assert.equal(judge(prev, c, back + graceMs + 1, cfg).state, 'Unknown');
        assert.equal(nextLivenessChangeAt(prev, { now: back, ...c }, cfg), back + graceMs);
        // A hello alone (welcomed, then nothing: the agent gave up on a late welcome and
        // queues at the door again) keeps the restart grace, counted from the hello.
        const hello = contactOnDisconnect(contactOnHello(restarted, back, cfg));
        assert.equal(hello.heardSinceStart, false);
        assert.equal(judge(ready, hello, back + graceMs + extraMs, cfg).state, 'Ready', 'within the restart grace');
        assert.equal(judge(ready, hello, back + graceMs + extraMs + 1, cfg).state, 'Unknown', 'silent past it');
      },
    ),
  );
});
