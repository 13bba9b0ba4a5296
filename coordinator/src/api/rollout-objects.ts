/**
 * The Rollout object as the API shows it (the contract's Rollout, docs/api.md): the spec as stored
 * (defaults applied) and a status built from the planner's persisted state.
 */
import { API_VERSION, type Rollout, type RolloutSpecView } from '@nodekeeper/api';
import type { RolloutSpec } from '../rollout/spec.ts';
import type { RolloutState } from '../rollout/types.ts';
import type { RolloutRecord } from '../store/types.ts';
import { rolloutConditions } from '../rollout/conditions.ts';
import { apiCondition, apiMeta } from './object-meta.ts';

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/**
 * `current(machine, package)` gives the version a machine runs now, shown as the
 * "from" version of machines the rollout has not started yet.
 */
export function toRolloutObject(r: RolloutRecord, current: (machine: string, pkg: string) => string | null = () => null): Rollout {
  const spec = r.spec as RolloutSpec;
  const state = r.state as RolloutState;
  const targets = Object.fromEntries(spec.packages.map((p) => [p.package, p.version]));
  const generation = r.meta?.generation ?? 1;
  return {
    apiVersion: API_VERSION,
    kind: 'Rollout',
    metadata: { name: r.name, ...(r.meta === undefined ? { creationTimestamp: iso(r.createdAt) } : apiMeta(r.meta)) },
    // The stored spec is plain JSON of RolloutSpec; the contract spells its readonly arrays as arrays.
    spec: spec as RolloutSpecView,
    status: {
      // The controller reads the spec on every step: the status always reflects the stored generation.
      observedGeneration: generation,
      conditions: rolloutConditions(state, generation).map((c) => apiCondition(c, generation)),
      phase: state.phase,
      reason: state.reason,
      message: state.waiting === null ? state.message : `${state.message}${state.message ? '; ' : ''}waiting: ${state.waiting.message}`,
      continueWith: state.continueWith,
      batch: { index: state.wave, total: state.waves.length },
      counts: state.counters,
      canary: state.candidates.slice(0, state.canaryCount),
      machines: state.candidates.map((name) => {
        const p = state.machines[name];
        if (spec.reboot !== undefined) {
          // A reboot changes no package: the machine's line says reboot, and the kernel it runs now.
          return {
            name,
            phase: p?.phase ?? 'Waiting',
            package: 'node',
            fromVersion: current(name, 'kernel'),
            toVersion: 'rebooted',
            step: p?.step === null || p?.step === undefined ? null : 'reboot',
            failedStep: p?.failedStep ?? null,
            reason: p?.reason ?? '',
            message: p?.message ?? '',
            since: iso(p?.since ?? null),
          };
        }
        const pkg = p?.step?.package ?? spec.packages[0]?.package ?? null;
        return {
          name,
          phase: p?.phase ?? 'Waiting',
          package: pkg,
          fromVersion: pkg === null ? null : p?.previous[pkg] ?? current(name, pkg),
          toVersion: p?.step?.action === 'rollback' ? p.step.version : pkg === null ? null : targets[pkg] ?? null,
          step: p?.step === null || p?.step === undefined ? null : `${p.step.action} ${p.step.package} ${p.step.version}`,
          failedStep: p?.failedStep ?? null,
          reason: p?.reason ?? '',
          message: p?.message ?? '',
          since: iso(p?.since ?? null),
        };
      }),
      startedTime: iso(state.startedAt),
      completedTime: iso(state.completedAt),
      lastTransitionTime: iso(state.since),
    },
  };
}
