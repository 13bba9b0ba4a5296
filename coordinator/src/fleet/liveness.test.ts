import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { NodeReport } from '@nodekeeper/protocol';
import type { Liveness, LivenessState } from '../model/machine.ts';
import {
  contactAfterRestart,
  contactOnDisconnect,
  contactOnMessage,
  initialLiveness,
  LIVENESS_TRANSITIONS,
  nextLiveness,
  nextLivenessChangeAt,
  type Contact,
  type LivenessConfig,
} from './liveness.ts';
import { nodeHealth } from './conditions.ts';
import { sampleReport } from '../store/test-support.ts';

const cfg: LivenessConfig = { graceMs: 40_000, recoverMs: 15_000 };
const healthy = { nodeHealthy: true, nodeReason: 'NodeHealthy', nodeMessage: 'ok' } as const;
const sick = { nodeHealthy: false, nodeReason: 'CniUnhealthy', nodeMessage: 'cni: NoNetworkConfig: none' } as const;

test('Pending until the first report; then Ready', () => {
  const p = initialLiveness(0);
  assert.equal(nextLiveness(p, { now: 1000, lastMessageAt: null, contactSince: null, ...healthy }, cfg).state, 'Pending');
  const connected = nextLiveness(p, { now: 1000, lastMessageAt: 1000, contactSince: 1000, nodeHealthy: null, nodeReason: 'NoReport', nodeMessage: '' }, cfg);
  assert.equal(connected.state, 'Pending');
  assert.equal(connected.since, 0);
  const ready = nextLiveness(connected, { now: 2000, lastMessageAt: 2000, contactSince: 1000, ...healthy }, cfg);
  assert.deepEqual(ready, { state: 'Ready', since: 2000, reason: 'AgentHeartbeat', message: 'agent is reporting and the node is healthy' });
});

test('Ready <-> NotReady follows the reports at once', () => {
  const ready: Liveness = { state: 'Ready', since: 0, reason: 'AgentHeartbeat', message: '' };
  const notReady = nextLiveness(ready, { now: 10, lastMessageAt: 10, contactSince: 0, ...sick }, cfg);
  assert.equal(notReady.state, 'NotReady');
  assert.equal(notReady.reason, 'NodeUnhealthy');
  assert.match(notReady.message, /CniUnhealthy: cni: NoNetworkConfig/);
  assert.equal(nextLiveness(notReady, { now: 20, lastMessageAt: 20, contactSince: 0, ...healthy }, cfg).state, 'Ready');
});

test('Unknown after more than graceMs of silence, and back only after recoverMs of contact', () => {
  const ready: Liveness = { state: 'Ready', since: 0, reason: 'AgentHeartbeat', message: 'agent is reporting and the node is healthy' };
  const atGrace = nextLiveness(ready, { now: 40_000, lastMessageAt: 0, contactSince: 0, ...healthy }, cfg);
  assert.equal(atGrace, ready, 'exactly at the grace period: still Ready, same object');
  const unknown = nextLiveness(ready, { now: 40_001, lastMessageAt: 0, contactSince: 0, ...healthy }, cfg);
  assert.deepEqual(unknown, { state: 'Unknown', since: 40_001, reason: 'AgentSilent', message: 'no message for more than 40s' });
  const back = { lastMessageAt: 50_000, contactSince: 50_000, ...healthy };
  const recovering = nextLiveness(unknown, { now: 50_000, ...back }, cfg);
  assert.equal(recovering.state, 'Unknown');
  assert.equal(recovering.reason, 'ContactRecovering');
  assert.equal(recovering.since, 40_001);
  assert.equal(nextLiveness(recovering, { now: 64_999, ...back, lastMessageAt: 64_999 }, cfg).state, 'Unknown');
  assert.deepEqual(nextLiveness(recovering, { now: 65_000, ...back, lastMessageAt: 65_000 }, cfg).state, 'Ready');
});

test('config is checked', () => {
  const p = initialLiveness(0);
  const input = { now: 0, lastMessageAt: null, contactSince: null, ...healthy };
  assert.throws(() => nextLiveness(p, input, { graceMs: 0, recoverMs: 0 }), RangeError);
  assert.throws(() => nextLiveness(p, input, { graceMs: 1, recoverMs: -1 }), RangeError);
});

test('after a restart, silence counts from our start however old the last-seen time', () => {
  fc.assert(
    fc.property(
      fc.constantFrom<LivenessState>('Pending', 'Ready', 'NotReady', 'Unknown'),
      fc.option(fc.integer({ min: 0, max: 1e12 }), { nil: null }),
      fc.integer({ min: 0, max: 1e12 }),
      fc.integer({ min: 0, max: cfg.graceMs }),
      (state, lastSeenAt, startedAt, elapsed) => {
        const prev: Liveness = { state, since: 0, reason: 'X', message: '' };
        const contact = contactAfterRestart({ liveness: prev, lastSeenAt }, startedAt);
        const next = nextLiveness(prev, { now: startedAt + elapsed, ...contact, nodeHealthy: null, nodeReason: '', nodeMessage: '' }, cfg);
        if (state !== 'Unknown') assert.notEqual(next.state, 'Unknown');
        const later = nextLiveness(next, { now: startedAt + cfg.graceMs + 1, ...contact, nodeHealthy: null, nodeReason: '', nodeMessage: '' }, cfg);
        if (contact.lastMessageAt !== null) assert.equal(later.state, 'Unknown', 'still silent a grace period after our start');
      },
    ),
  );
});

test('contact: a gap longer than grace or a disconnect starts a new run', () => {
  let c: Contact = { lastMessageAt: null, contactSince: null, heardSinceStart: true };
  c = contactOnMessage(c, 100, cfg);
  assert.deepEqual(c, { lastMessageAt: 100, contactSince: 100, heardSinceStart: true });
  c = contactOnMessage(c, 200, cfg);
  assert.deepEqual(c, { lastMessageAt: 200, contactSince: 100, heardSinceStart: true });
  c = contactOnMessage(c, 200 + cfg.graceMs + 1, cfg);
  assert.equal(c.contactSince, 200 + cfg.graceMs + 1);
  c = contactOnDisconnect(c);
  assert.equal(c.contactSince, null);
  assert.equal(contactOnMessage(c, 100_000, cfg).contactSince, 100_000);
});

// --- property tests over random message timelines

type Step =
  | { kind: 'message'; dt: number; health: 'healthy' | 'unhealthy' | 'unknown'; agentSkewMs: number }
  | { kind: 'tick'; dt: number }
  | { kind: 'disconnect'; dt: number };

const config = fc.record({ graceMs: fc.integer({ min: 1, max: 60_000 }), recoverMs: fc.integer({ min: 0, max: 60_000 }) });

/** Steps of any size, with the boundaries (exactly grace, one past it, ...) well represented. */
function stepFor(c: LivenessConfig): fc.Arbitrary<Step> {
  const dt = fc.oneof(fc.integer({ min: 0, max: 60_000 }), fc.constantFrom(0, 1, c.graceMs, c.graceMs + 1, c.recoverMs, Math.max(0, c.recoverMs - 1)));
  return fc.oneof(
    fc.record({ kind: fc.constant('message' as const), dt, health: fc.constantFrom('healthy' as const, 'unhealthy' as const, 'unknown' as const), agentSkewMs: fc.integer({ min: -1e10, max: 1e10 }) }),
    fc.record({ kind: fc.constant('tick' as const), dt }),
    fc.record({ kind: fc.constant('disconnect' as const), dt }),
  );
}
/** A config and a random timeline of messages, ticks and disconnects under it. */
const scenario = config.chain((c) => fc.tuple(fc.array(stepFor(c), { minLength: 1, maxLength: 60 }), fc.constant(c)));

/** A report as an agent with a skewed clock would send it. */
function reportAt(health: 'healthy' | 'unhealthy' | 'unknown', agentTimeMs: number): NodeReport {
  const r = sampleReport();
  const observedAt = new Date(Math.max(0, Math.min(8.64e15, agentTimeMs))).toISOString();
  return { ...r, kubelet: { ...r.kubelet, health, observedAt }, cni: { ...r.cni, observedAt } };
}

interface Observed {
  prev: Liveness;
  next: Liveness;
  now: number;
  contact: Contact;
}

/** Runs a timeline through the contact helpers and nextLiveness; agent times feed only the reports. */
function run(steps: readonly Step[], c: LivenessConfig, skewFactor: number): Observed[] {
  let now = 1_700_000_000_000;
  let liveness = initialLiveness(now);
  let contact: Contact = { lastMessageAt: null, contactSince: null, heardSinceStart: true };
  let report: NodeReport | null = null;
  const out: Observed[] = [];
  for (const s of steps) {
    now += s.dt;
    if (s.kind === 'message') {
      contact = contactOnMessage(contact, now, c);
      report = reportAt(s.health, now + s.agentSkewMs * skewFactor);
    } else if (s.kind === 'disconnect') {
      contact = contactOnDisconnect(contact);
    }
    const h = nodeHealth(report);
    const next = nextLiveness(liveness, { now, ...contact, nodeHealthy: h.healthy, nodeReason: h.reason, nodeMessage: h.message }, c);
    out.push({ prev: liveness, next, now, contact });
    liveness = next;
  }
  return out;
}

test('property: never becomes Unknown while the last message is within grace', () => {
  fc.assert(
    fc.property(scenario, ([steps, c]) => {
      for (const { prev, next, now, contact } of run(steps, c, 1)) {
        if (prev.state !== 'Unknown' && contact.lastMessageAt !== null && now - contact.lastMessageAt <= c.graceMs) {
          assert.notEqual(next.state, 'Unknown');
        }
      }
    }),
  );
});

test('property: always Unknown once silent for longer than grace', () => {
  fc.assert(
    fc.property(scenario, ([steps, c]) => {
      for (const { next, now, contact } of run(steps, c, 1)) {
        if (contact.lastMessageAt !== null && now - contact.lastMessageAt > c.graceMs) assert.equal(next.state, 'Unknown');
      }
    }),
  );
});

test('property: no way out of Unknown before recoverMs of unbroken contact', () => {
  fc.assert(
    fc.property(scenario, ([steps, c]) => {
      for (const { prev, next, now, contact } of run(steps, c, 1)) {
        if (prev.state === 'Unknown' && next.state !== 'Unknown') {
          assert.ok(contact.contactSince !== null && now - contact.contactSince >= c.recoverMs);
        }
      }
    }),
  );
});

test('property: since moves exactly on state changes, and only along the transition table', () => {
  fc.assert(
    fc.property(scenario, ([steps, c]) => {
      for (const { prev, next, now } of run(steps, c, 1)) {
        if (next.state === prev.state) assert.equal(next.since, prev.since);
        else {
          assert.equal(next.since, now);
          assert.ok(LIVENESS_TRANSITIONS[prev.state].includes(next.state), `${prev.state} -> ${next.state}`);
        }
        assert.match(next.reason, /^[A-Z][A-Za-z]+$/);
      }
    }),
  );
});

test('property: in steady contact the state follows the node health', () => {
  fc.assert(
    fc.property(scenario, ([steps, c]) => {
      for (const { prev, next, now, contact } of run(steps, c, 1)) {
        const heard = contact.lastMessageAt !== null && now - contact.lastMessageAt <= c.graceMs;
        if (!heard || prev.state === 'Unknown' || prev.state === 'Pending') continue;
        assert.ok(next.state === 'Ready' || next.state === 'NotReady');
      }
    }),
  );
});

test('property: results do not depend on any agent-supplied time', () => {
  fc.assert(
    fc.property(scenario, fc.double({ min: -5, max: 5, noNaN: true }), ([steps, c], factor) => {
      const plain = run(steps, c, 0).map((o) => o.next);
      const skewed = run(steps, c, factor).map((o) => o.next);
      assert.deepEqual(skewed, plain);
    }),
  );
});

test('nextLivenessChangeAt: with no new input, the answer stays the same until that instant', () => {
  const state = fc.constantFrom<LivenessState>('Pending', 'Ready', 'NotReady', 'Unknown');
  const health = fc.constantFrom(healthy, sick, { nodeHealthy: null, nodeReason: 'NoReport', nodeMessage: 'none' } as const);
  fc.assert(
    fc.property(
      state,
      fc.record({ graceMs: fc.integer({ min: 1, max: 50 }), recoverMs: fc.integer({ min: 0, max: 50 }) }),
      fc.option(fc.integer({ min: 0, max: 100 })),
      fc.option(fc.integer({ min: 0, max: 100 })),
      fc.integer({ min: 0, max: 150 }),
      health,
      (prevState, c, lastMessageAt, contactSince, now, h) => {
        const prev: Liveness = { state: prevState, since: 0, reason: 'Before', message: 'before' };
        const input = { now, lastMessageAt, contactSince, ...h };
        const current = nextLiveness(prev, input, c);
        const at = nextLivenessChangeAt(current, input, c);
        assert.ok(at >= now, `the next change is not in the past (${at} < ${now})`);
        for (let t = now; t < Math.min(at, now + 200); t += 1) {
          const later = nextLiveness(current, { ...input, now: t }, c);
          assert.deepEqual(later, current, `unchanged at ${t}, before ${at}`);
        }
        // Exactly at a recovery end the answer moves; a grace end moves just after it.
        if (at !== Infinity) {
          const moved = [at, at + 1].some((t) => nextLiveness(current, { ...input, now: t }, c) !== current);
          const silentAlready = current.state === 'Unknown' && current.reason === 'AgentSilent';
          if (!silentAlready) assert.ok(moved, `something changes at ${at} or just after`);
        }
      },
    ),
    { numRuns: 2000 },
  );
});
