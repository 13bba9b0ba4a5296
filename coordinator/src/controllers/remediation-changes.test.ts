/**
 * The watch hub rebuilds a Remediation object only for the machines the remediation
 * controller (onChanged) or the fleet view said moved, never the fleet on an idle tick.
 * This holds that to the full recomputation: over random faults, recoveries, time,
 * pauses, rules applied and deleted, and revocations, the objects kept up to date from the signals
 * alone equal remediationItems() rebuilt from scratch, after every step.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createLogger } from '@nodekeeper/common';
import type { NodeReport } from '@nodekeeper/protocol';
import { SharedBudget } from '../budget/shared-budget.ts';
import { CommandDispatcher } from '../commands/dispatcher.ts';
import { FleetView } from '../fleet/fleet-view.ts';
import { remediationItem, remediationItems } from '../server/remediation-routes.ts';
import { enrolledStore, sampleReport, tempDir } from '../store/test-support.ts';
import { WriteBatcher } from '../store/write-batcher.ts';
import { DEFAULT_FAULT_SETTINGS } from '../remediation/faults.ts';
import { MachineViews } from '../remediation/machine-views.ts';
import { RemediationController } from './remediation-controller.ts';

const log = createLogger({ name: 'test', level: 'silent' });
/** Thirty machines: three may be down at once (the storm guard's 10 %) and ladders still start. */
const NODES = Array.from({ length: 30 }, (_, i) => `node-${String(i).padStart(2, '0')}`);
const tmp = tempDir('nk-remediation-changes-');
after(() => tmp.remove());

const kubeletDown = (name: string): NodeReport => {
  const r = sampleReport(name);
  Object.assign(r.kubelet, { health: 'unhealthy', reason: 'HealthzRefused', message: 'connection refused' });
  return r;
};

const rule = (ladder: ReadonlyArray<Record<string, string>>) => ({
  apiVersion: 'nodekeeper.io/v1alpha1', kind: 'RemediationRule', metadata: { name: 'kubelet' },
  spec: { fault: 'KubeletUnhealthy', forSeconds: 0, ladder },
});

type Step =
  | { op: 'down' | 'up' | 'revoke'; node: number }
  | { op: 'pause'; node: number; paused: boolean }
  | { op: 'advance'; ms: number; touch: boolean }
  | { op: 'rule' | 'storeRule'; restartFirst: boolean }
  | { op: 'deleteRule' }
  | { op: 'tick' };

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ op: fc.constantFrom('down' as const, 'up' as const), node: fc.nat(2) }),
  fc.record({ op: fc.constant('revoke' as const), node: fc.nat(4) }),
  fc.record({ op: fc.constant('pause' as const), node: fc.nat(4), paused: fc.boolean() }),
  // Mostly every agent talks; sometimes none does (silence: liveness, the partition guard).
  { weight: 5, arbitrary: fc.record({ op: fc.constant('advance' as const), ms: fc.constantFrom(1000, 10_000, 30_000, 70_000), touch: fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }) }) },
  fc.record({ op: fc.constantFrom('rule' as const, 'storeRule' as const), restartFirst: fc.boolean() }),
  fc.constant({ op: 'deleteRule' as const }),
  fc.constant({ op: 'tick' as const }),
);

let runs = 0;

test('Remediation objects kept from the change signals equal the full recomputation after every step', () => {
  fc.assert(
    fc.property(fc.array(step, { minLength: 1, maxLength: 40 }), (steps) => {
      const now = { t: 1_000_000 };
      const clock = () => now.t;
      const store = enrolledStore(tmp.file(`run-${runs++}.db`), NODES, { now: clock, log });
      const batcher = new WriteBatcher(store, { intervalMs: 3_600_000, log });
      try {
        const fleet = new FleetView({ store, batcher, clock, log }, { livenessGraceMs: 40_000, livenessRecoverMs: 0 });
        const link = { resync() {}, close() {}, sendCommand: () => true };
        for (const n of NODES) fleet.attach(n, link, 't');
        // node-00's kubelet is down from the start, so most runs see a ladder act.
        for (const n of NODES) fleet.report(n, true, n === 'node-00' ? kubeletDown(n) : sampleReport(n));
        const commands = new CommandDispatcher({ store, clock, log });
        commands.setTransport((machine) => fleet.isConnected(machine));
        const remediation = new RemediationController({ store, fleet, commands, clock, log, budget: new SharedBudget(4), artifactBaseUrl: () => 'https://c.example' }, {});
        const deps = { fleet };
        // What the hub does: the signalled names (the fleet's and the controller's), or all.
        let dirty: Set<string> | null = new Set();
        fleet.onChanged((name) => dirty?.add(name));
        remediation.onChanged((name) => {
          if (name === null) dirty = null;
          else dirty?.add(name);
        });
        const kept = new Map<string, string>();
        const full = () => new Map(remediationItems(deps, remediation).map((o) => [o.machine, JSON.stringify(o)]));
        for (const [name, json] of full()) kept.set(name, json);
        const catchUp = () => {
          const names = dirty ?? new Set([...kept.keys(), ...NODES]);
          for (const name of names) {
            const o = remediationItem(deps, remediation, name);
            if (o === null) kept.delete(name);
            else kept.set(name, JSON.stringify(o));
          }
          dirty = new Set();
        };
        for (const s of steps) {
          const name = 'node' in s ? NODES[s.node] ?? 'node-00' : '';
          switch (s.op) {
            case 'down':
            case 'up':
              if (fleet.get(name)?.revokedAt === null) fleet.report(name, true, s.op === 'down' ? kubeletDown(name) : sampleReport(name));
              break;
            case 'revoke':
              if (fleet.get(name)?.revokedAt === null) {
                store.revokeMachine(name);
                fleet.revoked(name);
              }
              break;
            case 'pause':
              remediation.setSwitch({ machine: { name, paused: s.paused } });
              break;
            case 'advance':
              now.t += s.ms;
              if (s.touch) for (const n of NODES) fleet.touch(n);
              fleet.tick();
              break;
            case 'rule':
              remediation.applyRule(rule(s.restartFirst ? [{ action: 'RestartService', target: 'kubelet.service' }, { action: 'CordonAndNotify' }] : [{ action: 'CordonAndNotify' }]));
              break;
            case 'storeRule':
              // A writer that goes round the controller (none does today): the rules' key catches it.
              store.putRemediationRule('kubelet', rule(s.restartFirst ? [{ action: 'RestartService', target: 'kubelet.service' }, { action: 'CordonAndNotify' }] : [{ action: 'CordonAndNotify' }]));
              break;
            case 'deleteRule':
              // As the API and the host delete one: in the store, the controller not told.
              if (store.listRemediationRules().length > 0) store.deleteRemediationRule('kubelet');
              break;
            case 'tick':
              break;
          }
          remediation.tick();
          catchUp();
          assert.deepEqual(kept, full(), `after ${JSON.stringify(s)}`);
        }
      } finally {
        batcher.close();
        store.close();
      }
    }),
    { numRuns: 50 },
  );
});

test('an idle fleet: a tick with nothing moving tells the hub about no machine', () => {
  const now = { t: 2_000_000 };
  const clock = () => now.t;
  const store = enrolledStore(tmp.file('idle.db'), NODES, { now: clock, log });
  const batcher = new WriteBatcher(store, { intervalMs: 3_600_000, log });
  try {
    const fleet = new FleetView({ store, batcher, clock, log }, { livenessGraceMs: 40_000, livenessRecoverMs: 0 });
    const link = { resync() {}, close() {}, sendCommand: () => true };
    for (const n of NODES) fleet.attach(n, link, 't');
    for (const n of NODES) fleet.report(n, true, sampleReport(n));
    const commands = new CommandDispatcher({ store, clock, log });
    const remediation = new RemediationController({ store, fleet, commands, clock, log, budget: new SharedBudget(4), artifactBaseUrl: () => 'https://c.example' }, {});
    const told: Array<string | null> = [];
    remediation.onChanged((name) => told.push(name));
    remediation.tick();
    assert.ok(told.length > 0, 'the first derivation tells every machine');
    told.length = 0;
    for (let i = 0; i < 5; i++) {
      now.t += 1000;
      for (const n of NODES) fleet.touch(n);
      fleet.tick();
      remediation.tick();
    }
    assert.deepEqual(told, []);
  } finally {
    batcher.close();
    store.close();
  }
});

test('a new report that moves no fault keeps every view; one that does replaces only its machine\'s', () => {
  const now = { t: 3_000_000 };
  const clock = () => now.t;
  const store = enrolledStore(tmp.file('views.db'), NODES, { now: clock, log });
  const batcher = new WriteBatcher(store, { intervalMs: 3_600_000, log });
  try {
    const fleet = new FleetView({ store, batcher, clock, log }, { livenessGraceMs: 40_000, livenessRecoverMs: 0 });
    for (const n of NODES) fleet.attach(n, { resync() {}, close() {}, sendCommand: () => true }, 't');
    const report = (n: string, uptime: number, down = false) => {
      const r = down ? kubeletDown(n) : sampleReport(n);
      r.host.uptimeSeconds = uptime; // a volatile field: every report moves it
      fleet.report(n, true, r);
    };
    for (const n of NODES) report(n, 1);
    const views = new MachineViews(DEFAULT_FAULT_SETTINGS, new Map());
    fleet.onChanged((name) => views.touched(name));
    const source = { get: (name: string) => fleet.get(name), values: () => fleet.values(), contact: () => 'connected' as const };
    // As the controller does: the fault states are stored once derived. The views as they were then.
    const scan = () => {
      const r = views.update(source, [], now.t);
      views.stored(r.faultChanges);
      return { ...r, views: new Map(r.views.byName) };
    };
    const first = scan();
    for (const n of NODES) report(n, 2);
    now.t += 1000;
    const second = scan();
    assert.deepEqual([...second.views].filter(([name, v]) => first.views.get(name) !== v), [], 'the very same views');
    assert.deepEqual([...second.faultsMoved], []);
    // A fault starts: that machine's view and faults move, and nobody else's.
    report('node-04', 3, true);
    now.t += 1000;
    const third = scan();
    assert.deepEqual([...third.faultsMoved], ['node-04']);
    assert.deepEqual([...third.views].filter(([name, v]) => second.views.get(name) !== v).map(([name]) => name), ['node-04']);
    assert.equal(third.views.get('node-04')?.healthy, false);
  } finally {
    batcher.close();
    store.close();
  }
});
