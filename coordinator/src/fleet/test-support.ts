/**
 * The old full scan of the fleet view, kept as a pure reference for the deadline queue's
 * property test (fleet-view.test.ts) and the tick benchmark (bench/fleet-tick.ts): every
 * machine judged on every tick, with the same pure judgement, contact and report
 * functions the fleet view uses. Not product code.
 */
import type { NodeReport } from '@nodekeeper/protocol';
import type { Condition, Liveness, MachineRecord } from '../model/machine.ts';
import { judgeMachine } from './judgement.ts';
import { contactAfterRestart, type LivenessConfig } from './liveness.ts';
import { mergeReport } from './merge-report.ts';

export interface RefMachine {
  readonly report: NodeReport | null;
  readonly liveness: Liveness;
  readonly conditions: readonly Condition[];
  readonly lastMessageAt: number | null;
  readonly contactSince: number | null;
  readonly heardSinceStart: boolean;
  readonly agentVersion: string | null;
  readonly connected: boolean;
}
export type Ref = ReadonlyMap<string, RefMachine>;
export type Step = { ref: Ref; changed: string[] };

export function refLoad(records: readonly MachineRecord[], startedAt: number): Ref {
  return new Map(records.map((r) => [r.name, { report: r.report, liveness: r.liveness, conditions: r.conditions, agentVersion: r.agentVersion, connected: false, ...contactAfterRestart(r, startedAt) }]));
}

export function with_(ref: Ref, name: string, m: RefMachine): Map<string, RefMachine> {
  return new Map(ref).set(name, m);
}

/** The old tick: every machine judged; the names whose served state changed. */
export function refTick(ref: Ref, now: number, cfg: LivenessConfig): Step {
  const next = new Map<string, RefMachine>();
  const changed: string[] = [];
  for (const [name, m] of ref) {
    const j = judgeMachine(m, now, cfg);
    if (j.changed) changed.push(name);
    next.set(name, { ...m, liveness: j.liveness, conditions: j.conditions });
  }
  return { ref: next, changed };
}

export function refReport(ref: Ref, name: string, report: NodeReport, now: number, cfg: LivenessConfig): Step {
  const m = ref.get(name);
  if (m === undefined) return { ref, changed: [] };
  const merged = mergeReport(m.report, { full: true, report });
  if (!merged.changed) return { ref, changed: [] };
  const withReport = { ...m, report: merged.report };
  const j = judgeMachine(withReport, now, cfg);
  return { ref: with_(ref, name, { ...withReport, liveness: j.liveness, conditions: j.conditions }), changed: [name] };
}
