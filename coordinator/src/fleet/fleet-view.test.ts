/**
 * The deadline queue is an optimisation, not a change: FleetView (which re-judges only
 * machines whose deadline has passed) must judge exactly as the old full scan, which
 * re-judged every machine on every tick. The reference (test-support.ts) is that full
 * scan, kept as a pure model of the old FleetView's judging (the same pure judgement,
 * liveness and report functions, every machine on every tick). Random sequences of
 * inputs (connect, message, disconnect, reports, revoke, delete, re-enroll, a
 * coordinator restart, possibly finding a judgement an older coordinator left) and
 * clock advances drive both, and after every step the liveness, the conditions and the
 * machines announced through onChanged (what the watch hub relies on) must be the same.
 * The store is a real SQLite database (in memory); the clock is the test's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createLogger } from '@nodekeeper/common';
import type { NodeReport } from '@nodekeeper/protocol';
import type { MachineRecord } from '../model/machine.ts';
import { openStore, type Store } from '../store/db.ts';
import { identity, sampleReport } from '../store/test-support.ts';
import { WriteBatcher } from '../store/write-batcher.ts';
import { FleetView, MAX_JUDGED_PER_TICK, type AgentLink } from './fleet-view.ts';
import { judgeMachine } from './judgement.ts';
import { contactOnDisconnect, contactOnHello, contactOnMessage, type LivenessConfig } from './liveness.ts';
import { restartGraceMs } from './restart-grace.ts';
import { refLoad, refReport, refTick, with_, type RefMachine } from './test-support.ts';

const log = createLogger({ name: 'test', level: 'silent' });
type RestartGrace = { readonly admissionPerSecond: number; readonly agentBackoffCapMs: number };
const NAMES = ['m0', 'm1', 'm2'];

// ---- the inputs ----

type Input =
  | { kind: 'advance'; ms: number }
  | { kind: 'tick' }
  | { kind: 'attach'; machine: number; version: string }
  | { kind: 'detach'; machine: number }
  | { kind: 'touch'; machine: number }
  | { kind: 'report'; machine: number; variant: number }
  | { kind: 'revoke'; machine: number }
  | { kind: 'delete'; machine: number }
  | { kind: 'reenroll'; machine: number }
  | { kind: 'restart'; staleMachine: number | null }
  | { kind: 'refused' };

const machine = fc.integer({ min: 0, max: NAMES.length - 1 });
const input: fc.Arbitrary<Input> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.oneof(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 12 }), fc.integer({ min: 0, max: 60 })) }) },
  { weight: 6, arbitrary: fc.constant({ kind: 'tick' as const }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('attach' as const), machine, version: fc.constantFrom('t', 'u') }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('detach' as const), machine }) },
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('touch' as const), machine }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('report' as const), machine, variant: fc.integer({ min: 0, max: 4 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('revoke' as const), machine }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete' as const), machine }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('reenroll' as const), machine }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('restart' as const), staleMachine: fc.option(machine) }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'refused' as const }) },
);

/** Healthy, kubelet down, CNI unknown, disk pressure, runtime network not ready. */
function reportVariant(name: string, variant: number): NodeReport {
  const r = sampleReport(name);
  switch (variant) {
    case 1: return { ...r, kubelet: { ...r.kubelet, health: 'unhealthy', reason: 'HealthzFailed', message: 'connection refused' } };
    case 2: return { ...r, cni: { ...r.cni, health: 'unknown', reason: 'NoConfig', message: 'no config yet' } };
    case 3: return { ...r, host: { ...r.host, pressure: { ...r.host.pressure, disk: true } } };
    case 4: return { ...r, runtime: { ...r.runtime, conditions: [{ type: 'RuntimeReady', status: true, reason: '', message: '' }, { type: 'NetworkReady', status: false, reason: 'NetworkPluginNotReady', message: 'cni not initialised' }] } };
    default: return r;
  }
}

const link = (): AgentLink => ({ resync: () => {}, close: () => {}, sendCommand: () => true });

// ---- the harness ----

/** `restartGrace`: the fleet view sizes its restart grace; the full scan is given the same. */
function run(base: LivenessConfig, inputs: readonly Input[], restartGrace?: RestartGrace): void {
  const now = { t: 1_000 };
  const clock = () => now.t;
  const store: Store = openStore(':memory:', { now: clock, log });
  const { token } = store.createToken({ ttlMs: 60_000, maxUses: 1000, description: '' });
  const enroll = (name: string) => store.enroll({ token, identity: identity(name), agentVersion: 't' });
  for (const n of NAMES) enroll(n);
  const opts = { livenessGraceMs: base.graceMs, livenessRecoverMs: base.recoverMs, ...(restartGrace === undefined ? {} : { restartGrace }) };
  let cfg: LivenessConfig = base;
  let batcher = new WriteBatcher(store, { intervalMs: 3_600_000, log, autoStart: false });
  let fleet: FleetView;
  let seen: string[] = [];
  let startedAt = now.t;
  let refusalNotedAt = -Infinity;
  let loaded = 0;
  const start = () => {
    startedAt = now.t;
    refusalNotedAt = -Infinity;
    fleet = new FleetView({ store, batcher, clock, log }, opts);
    const machines = (loaded = store.listMachines().length);
    if (restartGrace !== undefined) cfg = { ...base, restartGraceMs: restartGraceMs({ machines, graceMs: base.graceMs, ...restartGrace }) };
    fleet.onChanged((name) => seen.push(name));
  };
  start();
  let ref = refLoad(store.listMachines(), now.t);
  const links = new Map<string, AgentLink>();

  for (const [i, step] of inputs.entries()) {
    seen = [];
    let expected: string[] = [];
    const name = 'machine' in step ? (NAMES[step.machine] as string) : '';
    const m = ref.get(name);
    switch (step.kind) {
      case 'advance':
        now.t += step.ms;
        break;
      case 'tick': {
        const s = refTick(ref, now.t, cfg);
        fleet!.tick();
        ref = s.ref;
        expected = s.changed;
        break;
      }
      case 'attach': {
        if (m === undefined) continue;
        const l = link();
        fleet!.attach(name, l, step.version);
        links.set(name, l);
        ref = with_(ref, name, { ...m, ...contactOnHello(contactOnDisconnect(m), now.t, cfg), connected: true, agentVersion: step.version });
        if (m.agentVersion !== step.version) expected = [name];
        break;
      }
      case 'detach': {
        const l = links.get(name);
        if (m === undefined || l === undefined || !m.connected) continue;
        fleet!.detach(name, l);
        links.delete(name);
        ref = with_(ref, name, { ...m, ...contactOnDisconnect(m), connected: false });
        break;
      }
      case 'touch':
        fleet!.touch(name);
        if (m !== undefined) ref = with_(ref, name, { ...m, ...contactOnMessage(m, now.t, cfg) });
        break;
      case 'report': {
        if (m === undefined) continue;
        const s = refReport(ref, name, reportVariant(name, step.variant), now.t, cfg);
        fleet!.report(name, true, reportVariant(name, step.variant));
        ref = s.ref;
        expected = s.changed;
        break;
      }
      case 'revoke':
        fleet!.revoked(name);
        if (m !== undefined) {
          ref = with_(ref, name, { ...m, connected: false });
          links.delete(name);
          expected = [name];
        }
        break;
      case 'delete': {
        fleet!.deleted(name);
        if (m === undefined) break; // gone already: nothing to tell
        store.deleteMachine(name, 'test');
        const next = new Map(ref);
        next.delete(name);
        ref = next;
        links.delete(name);
        expected = [name];
        break;
      }
      case 'reenroll': {
        if (m === undefined) continue;
        // An admin reset hands the fleet view a fresh record, as the reset route does.
        let full: MachineRecord;
        try {
          full = store.resetMachine(name, 'test');
        } catch {
          continue; // a revoked machine cannot be reset
        }
        fleet!.enrolled(full);
        links.delete(name);
        const [, loaded] = [...refLoad([full], startedAt)][0] as [string, RefMachine];
        const j = judgeMachine(loaded, now.t, cfg);
        ref = with_(ref, name, { ...loaded, liveness: j.liveness, conditions: j.conditions });
        expected = [name];
        break;
      }
      case 'refused': {
        // Admission control turned an agent away: while the restart grace runs it grows
        // (at most once a second); the queue must judge by the grown grace as a scan does.
        fleet!.admissionRefused();
        const sinceStart = now.t - startedAt;
        if (restartGrace === undefined || now.t - refusalNotedAt < 1000 || sinceStart > cfg.restartGraceMs!) break;
        refusalNotedAt = now.t;
        const grown = restartGraceMs({ machines: loaded, graceMs: base.graceMs, ...restartGrace }, sinceStart);
        cfg = { ...cfg, restartGraceMs: Math.max(cfg.restartGraceMs!, grown) };
        break;
      }
      case 'restart': {
        batcher.flush();
        const stale = step.staleMachine === null ? undefined : fleet!.get(NAMES[step.staleMachine] as string);
        if (stale !== undefined) {
          // As an older coordinator might have left it: another reason for the same state.
          const liveness = { ...stale.liveness, reason: 'FromAnOlderCoordinator' };
          batcher.status(stale.name, { report: stale.report, reportChangedAt: stale.reportChangedAt, liveness, conditions: stale.conditions, agentVersion: stale.agentVersion });
          batcher.flush();
        }
        batcher = new WriteBatcher(store, { intervalMs: 3_600_000, log, autoStart: false });
        start();
        ref = refLoad(store.listMachines(), now.t);
        links.clear();
        break;
      }
    }
    const where = `after step ${i} (${JSON.stringify(step)}) at ${now.t}`;
    assert.deepEqual([...seen].sort(), [...expected].sort(), `changed notifications ${where}`);
    for (const [n, r] of ref) {
      const got = fleet!.get(n);
      assert.ok(got !== undefined, `${n} missing ${where}`);
      assert.deepEqual(got.liveness, r.liveness, `liveness of ${n} ${where}`);
      assert.deepEqual(got.conditions, r.conditions, `conditions of ${n} ${where}`);
    }
    assert.equal(fleet!.list().length, ref.size, `machines ${where}`);
  }
}

test('the deadline queue judges exactly as a full scan at every step (liveness, conditions, onChanged)', () => {
  fc.assert(
    fc.property(
      fc.record({ graceMs: fc.integer({ min: 1, max: 20 }), recoverMs: fc.integer({ min: 0, max: 20 }) }),
      fc.array(input, { minLength: 1, maxLength: 120, size: 'max' }),
      // With a restart grace too: a fast admission and a short cap keep it within reach
      // of the short clocks here (a Retry-After of at least 1 s still counts).
      fc.option(fc.record({ admissionPerSecond: fc.integer({ min: 1, max: 100_000 }), agentBackoffCapMs: fc.integer({ min: 0, max: 50 }) }), { nil: undefined }),
      (cfg, inputs, restartGrace) => run(cfg, inputs, restartGrace),
    ),
    { numRuns: 150 },
  );
});

test('a coordinator-sized clock: a 40 s grace and 15 s recovery, ticks a second apart', () => {
  const tickEvery = fc.constantFrom<Input>({ kind: 'advance', ms: 1_000 }, { kind: 'tick' }, { kind: 'advance', ms: 9_000 });
  const inputs = fc.array(fc.oneof({ weight: 4, arbitrary: tickEvery }, { weight: 3, arbitrary: input }), { minLength: 1, maxLength: 150, size: 'max' });
  fc.assert(fc.property(inputs, (xs) => run({ graceMs: 40_000, recoverMs: 15_000 }, xs)), { numRuns: 60 });
  // And the restart grace of a slow door: 3 machines at 1 a second behind a 20 s backoff cap (73 s).
  fc.assert(fc.property(inputs, (xs) => run({ graceMs: 40_000, recoverMs: 15_000 }, xs, { admissionPerSecond: 1, agentBackoffCapMs: 20_000 })), { numRuns: 60 });
});

test('after a restart, the machines loaded are judged at most MAX_JUDGED_PER_TICK a tick, all of them in the end', () => {
  const now = { t: 1_000 };
  const clock = () => now.t;
  const store: Store = openStore(':memory:', { now: clock, log });
  const n = MAX_JUDGED_PER_TICK + 7;
  const { token } = store.createToken({ ttlMs: 60_000, maxUses: n, description: '' });
  for (let i = 0; i < n; i += 1) store.enroll({ token, identity: identity(`b${i}`), agentVersion: 't' });
  const batcher = new WriteBatcher(store, { intervalMs: 3_600_000, log, autoStart: false });
  // Enrolled, never heard from: Pending; an older coordinator's judgement to correct makes each one change.
  const stale = { state: 'Pending' as const, since: 0, reason: 'FromAnOlderCoordinator', message: '' };
  for (let i = 0; i < n; i += 1) batcher.status(`b${i}`, { report: null, reportChangedAt: null, liveness: stale, conditions: [], agentVersion: 't' });
  batcher.flush();
  const fleet = new FleetView({ store, batcher, clock, log }, { livenessGraceMs: 40_000, livenessRecoverMs: 0 });
  const changed: string[] = [];
  fleet.onChanged((name) => changed.push(name));
  fleet.tick();
  assert.equal(changed.length, MAX_JUDGED_PER_TICK, 'one tick judges at most the bound');
  now.t += 1000;
  fleet.tick();
  assert.equal(changed.length, n, 'the next tick judges the rest');
  assert.ok(fleet.list().every((m) => m.liveness.reason === 'AwaitingFirstReport'));
});

test('the observation history is the same whether or not a report whose health and versions did not move is compared with it', () => {
  // Reports of one machine drawn from a few variants: health and version moving, or only
  // the probe times (every reconnect's full report); flushes and ticks in between. The
  // history must be what comparing every report with it would give: a row per component
  // whenever its health or version differs from that component's last row.
  const variant = fc.record({ healthy: fc.boolean(), version: fc.constantFrom('1.31.2', '1.31.3'), at: fc.integer({ min: 0, max: 3 }) });
  fc.assert(fc.property(fc.array(fc.record({ v: variant, flush: fc.boolean(), tick: fc.boolean() }), { minLength: 1, maxLength: 25 }), (steps) => {
    const now = { t: 1_000 };
    const clock = () => now.t;
    const store = openStore(':memory:', { now: clock, log });
    const { token } = store.createToken({ ttlMs: 60_000, maxUses: 1, description: '' });
    store.enroll({ token, identity: identity('o1'), agentVersion: 't' });
    const batcher = new WriteBatcher(store, { intervalMs: 3_600_000, log, autoStart: false });
    const fleet = new FleetView({ store, batcher, clock, log }, { livenessGraceMs: 40_000, livenessRecoverMs: 0 });
    fleet.attach('o1', link(), 't');
    const expected: string[] = [];
    const last = new Map<string, string>();
    for (const step of steps) {
      now.t += 1_000;
      const observedAt = new Date(1_796_000_000_000 + step.v.at * 1000).toISOString();
      const base = sampleReport('o1');
      const kubelet = { ...base.kubelet, health: step.v.healthy ? 'healthy' as const : 'unhealthy' as const, observedAt, version: { raw: `Kubernetes v${step.v.version}`, semver: step.v.version, source: 'binary' as const } };
      const report: NodeReport = { ...base, identity: identity('o1'), kubelet, runtime: { ...base.runtime, observedAt } };
      fleet.report('o1', true, report);
      for (const c of ['kubelet', 'runtime', 'cni', 'host'] as const) {
        const key = `${report[c].health} ${report[c].version?.raw ?? null}`;
        if (last.get(c) !== key) expected.push(`${c} ${key}`);
        last.set(c, key);
      }
      if (step.tick) fleet.tick();
      if (step.flush) batcher.flush();
    }
    batcher.flush();
    const rows = store.machineObservations('o1', 1000).map((o) => `${o.component} ${o.health} ${o.versionRaw}`);
    assert.deepEqual([...rows].sort(), [...expected].sort());
    assert.equal(rows.length, expected.length);
  }), { numRuns: 60 });
});
