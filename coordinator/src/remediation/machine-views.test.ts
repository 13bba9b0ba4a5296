/**
 * MachineViews looks again only at the machines the fleet view said moved, whose faults'
 * clock came due, or whose fault state is not stored yet. This holds it to a full scan
 * that derives every machine on every tick from the stored fault states (what the
 * controller did before): over random reports (faults, recoveries, restart counters,
 * fields that move no fault), connections lost and back, silence, pins, revocations,
 * deletions, enrollments, desired versions moved, saves that never commit, fault states
 * forgotten and time, the views, the index, the fault states to store and the faults()
 * lists are the full scan's after every tick; and the policy plans the same from the
 * live index as from an array of the same views.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createLogger } from '@nodekeeper/common';
import type { NodeReport } from '@nodekeeper/protocol';
import { FleetView } from '../fleet/fleet-view.ts';
import type { MachineRecord } from '../model/machine.ts';
import { enrolledStore, identity, sampleReport, tempDir } from '../store/test-support.ts';
import { WriteBatcher } from '../store/write-batcher.ts';
import { DEFAULT_FAULT_SETTINGS, deriveFaults, type FaultState } from './faults.ts';
import { MachineViews, type AgentContact } from './machine-views.ts';
import { planRemediation } from './policy.ts';
import { defaultRules } from './rules.ts';
import { DEFAULT_REMEDIATION_SETTINGS, type RemediationInput, type RemediationMachineView, type RemediationState } from './types.ts';
import { indexViews } from './view-index.ts';

const log = createLogger({ name: 'test', level: 'silent' });
const NODES = Array.from({ length: 12 }, (_, i) => `node-${String(i).padStart(2, '0')}`);
const tmp = tempDir('nk-remediation-views-');
after(() => tmp.remove());

type Health = 'ok' | 'kubeletDown' | 'runtimeDown' | 'restarted' | 'volatile';

function reportOf(name: string, health: Health, restarts: number, uptime: number): NodeReport {
  const r = sampleReport(name);
  r.host.uptimeSeconds = uptime;
  r.kubelet.service = { unit: 'kubelet.service', manager: 'systemd', activeState: 'active', subState: 'running', restarts };
  if (health === 'kubeletDown') Object.assign(r.kubelet, { health: 'unhealthy', reason: 'HealthzRefused', message: 'connection refused' });
  if (health === 'runtimeDown') Object.assign(r.runtime, { health: 'unhealthy', reason: 'CriUnavailable', message: 'no socket' });
  return r;
}

type Step =
  | { op: 'report'; node: number; health: Health }
  | { op: 'detach' | 'attach' | 'revoke' | 'delete' | 'enroll'; node: number }
  | { op: 'pin'; node: number; version: string | null }
  | { op: 'defaults'; version: string }
  | { op: 'advance'; ms: number; touch: 'all' | 'some' | 'none' }
  | { op: 'lose' }
  | { op: 'forget'; node: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('report' as const), node: fc.nat(NODES.length - 1), health: fc.constantFrom<Health>('ok', 'kubeletDown', 'runtimeDown', 'restarted', 'volatile') }) },
  fc.record({ op: fc.constantFrom('detach' as const, 'attach' as const, 'revoke' as const), node: fc.nat(NODES.length - 1) }),
  // Machines leave and come back (the same few, so both happen in a run).
  { weight: 2, arbitrary: fc.record({ op: fc.constantFrom('delete' as const, 'enroll' as const), node: fc.nat(2) }) },
  fc.record({ op: fc.constant('pin' as const), node: fc.nat(NODES.length - 1), version: fc.constantFrom('1.31.2', '1.31.4', null) }),
  fc.record({ op: fc.constant('defaults' as const), version: fc.constantFrom('1.31.2', '1.31.4') }),
  { weight: 5, arbitrary: fc.record({ op: fc.constant('advance' as const), ms: fc.constantFrom(1000, 10_000, 30_000, 70_000, 300_000), touch: fc.constantFrom('all' as const, 'some' as const, 'none' as const) }) },
  // The tick's transaction fails: what it derived is not stored.
  fc.constant({ op: 'lose' as const }),
  // The controller's forget(): the stored fault state dropped (it is derived again from nothing).
  fc.record({ op: fc.constant('forget' as const), node: fc.nat(NODES.length - 1) }),
);

/** What the controller did before: every machine derived from the stored fault states, every tick. */
function fullScan(machines: Iterable<MachineRecord>, contact: (name: string) => AgentContact, defaults: ReadonlyArray<{ name: string; version: string }>, saved: ReadonlyMap<string, FaultState>, now: number) {
  const views = new Map<string, RemediationMachineView>();
  const faultChanges = new Map<string, FaultState | null>();
  for (const m of machines) {
    if (m.revokedAt !== null) continue;
    const { faults, state } = deriveFaults(saved.get(m.name) ?? null, { report: m.report, liveness: m.liveness }, now, DEFAULT_FAULT_SETTINGS);
    if (state !== saved.get(m.name)) faultChanges.set(m.name, state);
    const r = m.report;
    const desired: Record<string, string> = {};
    for (const p of defaults) desired[p.name] = p.version;
    for (const [name, o] of Object.entries(m.packageOverrides ?? {})) desired[name] = o.version;
    views.set(m.name, {
      name: m.name, zone: m.zone, liveness: { state: m.liveness.state, since: m.liveness.since },
      connected: contact(m.name) === 'connected', contactLost: contact(m.name) === 'lost',
      healthy: m.liveness.state === 'Ready' && r !== null && r.kubelet.health === 'healthy' && r.runtime.health === 'healthy' && r.cni.health === 'healthy',
      faults, desired,
    });
  }
  for (const name of saved.keys()) if (!views.has(name)) faultChanges.set(name, null);
  return { views, faultChanges };
}

const sorted = (xs: Iterable<string>) => [...xs].sort();
let runs = 0;

test('views kept from the change signals and the fault clocks equal a full scan, and plan the same, after every tick', () => {
  fc.assert(
    fc.property(fc.array(step, { minLength: 1, maxLength: 50 }), (steps) => {
      const now = { t: 1_000_000 };
      const clock = () => now.t;
      const store = enrolledStore(tmp.file(`run-${runs++}.db`), NODES, { now: clock, log });
      const batcher = new WriteBatcher(store, { intervalMs: 3_600_000, log });
      try {
        const fleet = new FleetView({ store, batcher, clock, log }, { livenessGraceMs: 40_000, livenessRecoverMs: 10_000 });
        const link = { resync() {}, close() {}, sendCommand: () => true };
        const restarts = new Map<string, number>();
        const uptime = { n: 0 };
        for (const n of NODES) fleet.attach(n, link, 't');
        for (const n of NODES) fleet.report(n, true, reportOf(n, 'ok', 0, 0));
        const views = new MachineViews(DEFAULT_FAULT_SETTINGS, new Map());
        fleet.onChanged((name) => views.touched(name));
        fleet.onContactChanged((name) => views.touched(name));
        let defaults = [{ name: 'kubelet', version: '1.31.2' }];
        let state: RemediationState | null = null;
        const lastFaults = new Map<string, string>();
        let lose = false;
        for (const s of steps) {
          const name = 'node' in s ? NODES[s.node] ?? 'node-00' : '';
          const live = () => fleet.get(name) !== undefined && fleet.get(name)?.revokedAt === null;
          switch (s.op) {
            case 'report': {
              if (!live()) break;
              const count = (restarts.get(name) ?? 0) + (s.health === 'restarted' ? 3 : 0);
              restarts.set(name, count);
              fleet.report(name, true, reportOf(name, s.health === 'restarted' || s.health === 'volatile' ? 'ok' : s.health, count, ++uptime.n));
              break;
            }
            case 'detach':
              if (fleet.isConnected(name)) fleet.detach(name, link);
              break;
            case 'attach':
              if (live()) fleet.attach(name, link, 't');
              break;
            case 'revoke':
              if (live()) {
                store.revokeMachine(name);
                fleet.revoked(name);
              }
              break;
            case 'delete':
              if (fleet.get(name) !== undefined) {
                store.deleteMachine(name, 'test');
                fleet.deleted(name);
              }
              break;
            case 'enroll':
              if (fleet.get(name) === undefined) {
                const { token } = store.createToken({ ttlMs: 60_000, maxUses: 1, description: '' });
                fleet.enrolled(store.enroll({ token, identity: identity(name), agentVersion: 't' }).machine);
              }
              break;
            case 'pin':
              if (live()) fleet.overridesChanged(store.setPackageOverrides(name, s.version === null ? {} : { kubelet: { version: s.version } }));
              break;
            case 'defaults':
              defaults = [{ name: 'kubelet', version: s.version }];
              break;
            case 'advance':
              now.t += s.ms;
              if (s.touch !== 'none') for (const [i, n] of NODES.entries()) if ((s.touch === 'all' || i % 2 === 0) && fleet.isConnected(n)) fleet.touch(n);
              fleet.tick();
              break;
            case 'lose':
              lose = true;
              break;
            case 'forget':
              views.stored(new Map([[name, null]]));
              break;
          }
          const saved = new Map(views.saved);
          const want = fullScan(fleet.values(), (n) => fleet.contact(n), defaults, saved, now.t);
          const got = views.update(fleet, defaults, now.t);
          const at = `after ${JSON.stringify(s)}`;
          assert.deepEqual(new Map(got.views.byName), want.views, `views ${at}`);
          assert.deepEqual(got.faultChanges, want.faultChanges, `fault states to store ${at}`);
          const index = indexViews([...want.views.values()]);
          assert.deepEqual(sorted(got.views.silent), sorted(index.silent), `silent ${at}`);
          assert.deepEqual(sorted(got.views.faulty), sorted(index.faulty), `faulty ${at}`);
          assert.deepEqual(sorted([...got.views.withActive].map((v) => v.name)), sorted([...index.withActive].map((v) => v.name)), `with an Active fault ${at}`);
          // faults() moved exactly for the machines faultsMoved names.
          for (const n of NODES) {
            const json = JSON.stringify(views.faults(n));
            if (!got.faultsMoved.has(n)) assert.equal(json, lastFaults.get(n) ?? '[]', `faults() of ${n} moved untold ${at}`);
            lastFaults.set(n, json);
          }
          // The policy: the live index and an array of the same views plan the same.
          const input: Omit<RemediationInput, 'machines'> = { rules: defaultRules(), state, budget: { maxUnavailable: 3, unavailableNow: [] }, settings: DEFAULT_REMEDIATION_SETTINGS, pause: { cluster: false, machines: [] }, dryRun: false, results: [], now: now.t };
          const fromIndex = planRemediation({ ...input, machines: got.views });
          assert.deepEqual(fromIndex, planRemediation({ ...input, machines: [...want.views.values()] }), `plan ${at}`);
          if (lose) {
            lose = false;
          } else {
            views.stored(got.faultChanges);
            state = fromIndex.state;
          }
        }
      } finally {
        batcher.close();
        store.close();
      }
    }),
    { numRuns: 40 },
  );
});
