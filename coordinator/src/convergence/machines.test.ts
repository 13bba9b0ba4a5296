/**
 * ConvergeMachines reads again only the machines the fleet view said moved. This holds it
 * to the full rebuild the controller did every tick before (every machine of the fleet
 * view read, sorted by name, the pinned-only packages gathered from every machine): over
 * random version changes, reports that move no version, pins, agent upgrades, label
 * changes (deleted, then enrolled again), revocations, deletions, enrollments and ClusterPackageVersion
 * changes, the packages and machines are the rebuild's after every step, the array is the
 * same object while no machine changed, and the planner plans the same from it.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createLogger } from '@nodekeeper/common';
import { AGENT_PACKAGE } from '@nodekeeper/protocol';
import { FleetView } from '../fleet/fleet-view.ts';
import type { MachineRecord } from '../model/machine.ts';
import { enrolledStore, identity, sampleReport, tempDir } from '../store/test-support.ts';
import { WriteBatcher } from '../store/write-batcher.ts';
import { ConvergeMachines, convergeMachine } from './machines.ts';
import { planConvergence } from './planner.ts';
import type { ConvergeInput, DesiredPackage } from './types.ts';

const log = createLogger({ name: 'test', level: 'silent' });
const NODES = Array.from({ length: 10 }, (_, i) => `node-${String(i).padStart(2, '0')}`);
const tmp = tempDir('nk-converge-machines-');
after(() => tmp.remove());

const KUBELET = ['Kubernetes v1.31.2', 'v1.31.4', '1.32.0'] as const;
/** The strategies a package may have: all machines, or those of one pool. */
const STRATEGIES = [{ maxUnavailable: 1 }, { maxUnavailable: 1, selector: { matchLabels: { pool: 'web' } } }] as const;
const STRATEGY = STRATEGIES[0];

type Step =
  | { op: 'report'; node: number; kubelet: number | null; volatile: number }
  | { op: 'pin'; node: number; pkg: 'kubelet' | 'etcd'; version: string | null }
  | { op: 'agent'; node: number; version: string }
  | { op: 'revoke' | 'delete' | 'enroll'; node: number; pool: 'web' | 'workers' }
  | { op: 'cpv'; packages: ReadonlyArray<'kubelet' | 'containerd' | typeof AGENT_PACKAGE>; version: number; strategy: number }
  | { op: 'nothing' };

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('report' as const), node: fc.nat(NODES.length - 1), kubelet: fc.option(fc.nat(KUBELET.length - 1)), volatile: fc.nat(1000) }) },
  fc.record({ op: fc.constant('pin' as const), node: fc.nat(NODES.length - 1), pkg: fc.constantFrom('kubelet' as const, 'etcd' as const), version: fc.constantFrom('1.31.4', '3.5.0', null) }),
  fc.record({ op: fc.constant('agent' as const), node: fc.nat(NODES.length - 1), version: fc.constantFrom('0.1.0', '0.2.0') }),
  { weight: 2, arbitrary: fc.record({ op: fc.constantFrom('revoke' as const, 'delete' as const, 'enroll' as const), node: fc.nat(3), pool: fc.constantFrom('web' as const, 'workers' as const) }) },
  // Mostly a new kubelet version or strategy over the same machines (what the planner remembers per machines array).
  { weight: 2, arbitrary: fc.record({ op: fc.constant('cpv' as const), packages: fc.oneof({ weight: 3, arbitrary: fc.constant(['kubelet'] as const) }, fc.subarray(['kubelet', 'containerd', AGENT_PACKAGE] as const)), version: fc.nat(KUBELET.length - 1), strategy: fc.nat(STRATEGIES.length - 1) }) },
  fc.constant({ op: 'nothing' as const }),
);

/** The controller's input before: every machine read and sorted, pinned-only packages gathered from all. */
function rebuild(records: Iterable<MachineRecord>, cpvPackages: readonly DesiredPackage[]) {
  const live = [...records].filter((m) => m.revokedAt === null);
  const packages = [...cpvPackages];
  const pinnedOnly = new Set(live.flatMap((m) => Object.keys(m.packageOverrides ?? {})).filter((p) => !packages.some((x) => x.name === p)));
  for (const p of [...pinnedOnly].sort()) packages.push({ name: p, version: null, strategy: STRATEGY });
  const names = packages.map((p) => p.name);
  return { packages, machines: live.map((m) => convergeMachine(m, names)).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)) };
}

let runs = 0;

test('machines kept from the change signals equal the full rebuild, the same array while none changed, and plan the same', () => {
  fc.assert(
    fc.property(fc.array(step, { minLength: 1, maxLength: 40 }), (steps) => {
      const now = { t: 1_000_000 };
      const clock = () => now.t;
      const store = enrolledStore(tmp.file(`run-${runs++}.db`), NODES, { now: clock, log });
      const batcher = new WriteBatcher(store, { intervalMs: 3_600_000, log });
      try {
        const fleet = new FleetView({ store, batcher, clock, log }, { livenessGraceMs: 40_000, livenessRecoverMs: 0 });
        const link = { resync() {}, close() {}, sendCommand: () => true };
        const kept = new ConvergeMachines();
        fleet.onChanged((name) => kept.touched(name));
        // Half the fleet reports before the first tick; the rest reports later (or never).
        for (const [i, n] of NODES.entries()) {
          fleet.attach(n, link, '0.1.0');
          if (i % 2 === 0) fleet.report(n, true, sampleReport(n));
        }
        let cpv: DesiredPackage[] = [{ name: 'kubelet', version: '1.31.2', strategy: STRATEGY }];
        let before: { packages: unknown; machines: unknown; array: readonly unknown[] } | null = null;
        for (const s of steps) {
          const name = 'node' in s ? NODES[s.node] ?? 'node-00' : '';
          const live = fleet.get(name) !== undefined && fleet.get(name)?.revokedAt === null;
          switch (s.op) {
            case 'report': {
              if (!live) break;
              const r = structuredClone(fleet.get(name)?.report ?? sampleReport(name));
              r.host.uptimeSeconds = s.volatile;
              if (s.kubelet !== null) r.kubelet.version = { raw: KUBELET[s.kubelet] ?? '', semver: null, source: 'binary' };
              fleet.report(name, true, r);
              break;
            }
            case 'pin': {
              if (!live) break;
              const pins = { ...fleet.get(name)?.packageOverrides };
              if (s.version === null) delete pins[s.pkg];
              else pins[s.pkg] = { version: s.version };
              fleet.overridesChanged(store.setPackageOverrides(name, pins));
              break;
            }
            case 'agent':
              if (live) fleet.attach(name, link, s.version);
              break;
            case 'revoke':
              if (live) {
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
            case 'enroll': {
              // A deleted machine enrolled again, with other labels maybe (a revoked one cannot).
              if (fleet.get(name) !== undefined) break;
              const { token } = store.createToken({ ttlMs: 60_000, maxUses: 1, description: '' });
              fleet.enrolled(store.enroll({ token, identity: { ...identity(name), labels: { pool: s.pool } }, agentVersion: '0.1.0' }).machine);
              break;
            }
            case 'cpv':
              cpv = s.packages.map((p) => ({ name: p, version: p === 'kubelet' ? KUBELET[s.version] ?? '1.31.2' : '1.7.1', strategy: STRATEGIES[s.strategy] ?? STRATEGY }));
              break;
            case 'nothing':
              break;
          }
          const want = rebuild(fleet.values(), cpv);
          kept.refresh(fleet);
          const packages = [...cpv];
          for (const p of kept.pinnedPackages()) if (!packages.some((x) => x.name === p)) packages.push({ name: p, version: null, strategy: STRATEGY });
          const machines = kept.machines(fleet, packages.map((p) => p.name));
          const at = `after ${JSON.stringify(s)}`;
          assert.deepEqual(packages, want.packages, `packages ${at}`);
          assert.deepEqual(machines, want.machines, `machines ${at}`);
          if (before !== null && JSON.stringify(before.packages) === JSON.stringify(want.packages) && JSON.stringify(before.machines) === JSON.stringify(want.machines)) {
            assert.equal(machines, before.array, `a new array though no machine changed ${at}`);
          }
          before = { packages: want.packages, machines: want.machines, array: machines };
          const input = (m: ConvergeInput['machines'], p: readonly DesiredPackage[]): ConvergeInput => ({ generation: 1, packages: p, machines: m, managed: [], rollouts: [], refusals: [], now: now.t });
          assert.deepEqual(planConvergence(input(machines, packages)), planConvergence(input(structuredClone(want.machines), want.packages)), `plan ${at}`);
        }
      } finally {
        batcher.close();
        store.close();
      }
    }),
    { numRuns: 30 },
  );
});
