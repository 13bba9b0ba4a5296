import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { microTime } from '../clock.ts';
import type { EventRecord } from '../model/records.ts';
import {
  DEFAULT_KUBE_EVENT_LIMITS, EventPlanner, NOTE_MAX_BYTES, SERIES_WINDOW_MS, boundedNote, eventBody, eventName, kubeEventAction,
} from './kube-events-plan.ts';

const T0 = Date.UTC(2026, 11, 3, 12, 0, 0);
let nextId = 1;
const ev = (o: Partial<EventRecord> & { reason: string }): EventRecord => ({
  id: nextId++, at: T0, object: 'machine/node-1', type: 'Normal', message: 'rule r step 1: RestartService kubelet.service', ...o,
});
const nodeOf = (m: string) => (m === 'gone' ? null : { name: m, uid: `uid-${m}` });

test('actions: drains, reboots, rollout and remediation steps; other machine events are not for Kubernetes', () => {
  assert.equal(kubeEventAction({ reason: 'DrainRefused', message: 'x' }), 'Drain');
  assert.equal(kubeEventAction({ reason: 'Uncordoned', message: 'x' }), 'Drain');
  assert.equal(kubeEventAction({ reason: 'RebootFailed', message: 'x' }), 'Reboot');
  assert.equal(kubeEventAction({ reason: 'Installed', message: 'rollout k1: Succeeded: kubelet 1.32.1' }), 'Rollout');
  assert.equal(kubeEventAction({ reason: 'NeedsHuman', message: 'rule r: gave up' }), 'Remediate');
  assert.equal(kubeEventAction({ reason: 'Restored', message: 'rule net step 1: config restored' }), 'Remediate');
  assert.equal(kubeEventAction({ reason: 'AgentConnected', message: 'connected' }), null);
  assert.equal(kubeEventAction({ reason: 'CredentialRotated', message: 'the agent saved its new credential' }), null);
});

test('notes are cut to 1 kB on a character boundary', () => {
  fc.assert(fc.property(fc.string({ unit: 'grapheme', maxLength: 1500 }), (s) => {
    const n = boundedNote(s);
    assert.ok(Buffer.byteLength(n) <= NOTE_MAX_BYTES);
    if (Buffer.byteLength(s) <= NOTE_MAX_BYTES) assert.equal(n, s);
    else assert.ok(n.endsWith(' [...]') && !n.includes('\uFFFD'));
  }));
  assert.equal(Buffer.byteLength(boundedNote('é'.repeat(1000))) <= NOTE_MAX_BYTES, true);
});

test('MicroTime has six fractional digits; names are <node>.<hex nanoseconds>, unique per event', () => {
  assert.equal(microTime(Date.UTC(2026, 0, 2, 3, 4, 5, 678)), '2026-01-02T03:04:05.678000Z');
  assert.equal(eventName('node-1', 1000, 7), `node-1.${(1000n * 1_000_000n + 7n).toString(16)}`);
  assert.notEqual(eventName('n', T0, 1), eventName('n', T0, 2));
});

test('repeats within 6 minutes fold into one series (one write per batch); after the window a new object starts', () => {
  const p = new EventPlanner(DEFAULT_KUBE_EVENT_LIMITS, T0);
  const a = p.plan([ev({ reason: 'StepStarted' }), ev({ reason: 'StepStarted' }), ev({ reason: 'StepStarted' })], nodeOf, T0);
  assert.equal(a.writes.length, 1);
  assert.equal(a.writes[0]!.op, 'create');
  assert.equal(a.writes[0]!.count, 3);
  const body = eventBody(a.writes[0]!.series, 3, T0, 'me');
  assert.deepEqual(body['series'], { count: 3, lastObservedTime: microTime(T0) });
  assert.deepEqual(body['regarding'], { kind: 'Node', apiVersion: 'v1', name: 'node-1', uid: 'uid-node-1' });
  const b = p.plan([ev({ reason: 'StepStarted', at: T0 + 60_000 })], nodeOf, T0 + 60_000);
  assert.deepEqual(b.writes.map((w) => [w.op, w.count, w.series.name]), [['patch', 4, a.writes[0]!.series.name]]);
  // A different note, type or reason is another object.
  const c = p.plan([ev({ reason: 'StepStarted', at: T0 + 61_000, message: 'rule r step 2: CordonAndNotify' }), ev({ reason: 'StepStarted', at: T0 + 61_000, type: 'Warning' })], nodeOf, T0 + 61_000);
  assert.deepEqual(c.writes.map((w) => w.op), ['create', 'create']);
  const later = T0 + 60_000 + SERIES_WINDOW_MS + 1;
  const d = p.plan([ev({ reason: 'StepStarted', at: later })], nodeOf, later);
  assert.deepEqual(d.writes.map((w) => [w.op, w.count]), [['create', 1]]);
  assert.equal(eventBody(d.writes[0]!.series, 1, later, 'me')['series'], undefined);
});

test('new objects are bounded per Node and overall; stale events and unknown Nodes are dropped and counted', () => {
  const p = new EventPlanner({ ...DEFAULT_KUBE_EVENT_LIMITS, nodeBurst: 3, nodeRefillMs: 10_000, burst: 5, perSecond: 1 }, T0);
  const distinct = (n: number, machine: string, at = T0) => Array.from({ length: n }, (_, i) => ev({ reason: 'StepStarted', object: `machine/${machine}`, at, message: `rule r step 1: try ${i} at ${at}` }));
  const a = p.plan(distinct(10, 'node-1'), nodeOf, T0);
  assert.equal(a.writes.length, 3);
  assert.equal(a.dropped.rate, 7);
  const b = p.plan(distinct(10, 'node-2'), nodeOf, T0);
  assert.equal(b.writes.length, 2, 'the overall burst (5) is spent');
  // Tokens come back with time: one per 10 s for node-1.
  const c = p.plan(distinct(3, 'node-1', T0 + 10_000), nodeOf, T0 + 10_000);
  assert.equal(c.writes.length, 1);
  const d = p.plan([ev({ reason: 'NeedsHuman', at: T0 - DEFAULT_KUBE_EVENT_LIMITS.maxAgeMs - 1 }), ev({ reason: 'NeedsHuman', object: 'machine/gone' }), ev({ reason: 'AgentConnected', message: 'connected from 10.0.0.1' })], nodeOf, T0 + 10_000);
  assert.deepEqual(d.dropped, { stale: 1, 'no-node': 1 });
  assert.equal(d.writes.length, 0);
});

test('property: creates never exceed the per-Node budget, and every event kept is counted in exactly one series', () => {
  fc.assert(fc.property(fc.array(fc.record({ node: fc.integer({ min: 0, max: 3 }), note: fc.integer({ min: 0, max: 8 }), dt: fc.integer({ min: 0, max: 200_000 }) }), { maxLength: 200 }), fc.integer({ min: 1, max: 5 }), (items, cut) => {
    const p = new EventPlanner({ ...DEFAULT_KUBE_EVENT_LIMITS, nodeBurst: 4, burst: 1000 }, T0);
    let at = T0;
    const creates = new Map<string, number>();
    const series = new Set<{ count: number }>();
    let kept = 0;
    const size = Math.ceil(items.length / cut) || 1;
    for (let i = 0; i < items.length; i += size) {
      const batch = items.slice(i, i + size).map((x) => {
        at += x.dt;
        return ev({ reason: 'StepStarted', object: `machine/n${x.node}`, at, message: `rule r step 1: ${x.note}` });
      });
      const plan = p.plan(batch, nodeOf, at);
      kept += batch.length - (plan.dropped.rate ?? 0);
      assert.equal(new Set(plan.writes.map((w) => w.series)).size, plan.writes.length, 'one write per series per batch');
      for (const w of plan.writes) {
        series.add(w.series);
        assert.equal(w.count, w.series.count);
        if (w.op === 'create') creates.set(w.series.node.name, (creates.get(w.series.node.name) ?? 0) + 1);
      }
    }
    for (const n of creates.values()) assert.ok(n <= 4 + Math.floor((at - T0) / DEFAULT_KUBE_EVENT_LIMITS.nodeRefillMs));
    assert.equal([...series].reduce((n, s) => n + s.count, 0), kept);
  }));
});
