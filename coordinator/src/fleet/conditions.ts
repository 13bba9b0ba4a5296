/**
 * A Machine's conditions, Kubernetes style (type, status True/False/Unknown, reason,
 * message, lastTransitionTime), derived from its latest report and its liveness. Pure.
 * As in Kubernetes, `lastTransitionTime` moves only when `status` changes, and when the
 * agent goes silent every condition becomes Unknown: what it said last may no longer hold.
 * https://kubernetes.io/docs/reference/node/node-status/#condition
 */
import type { NodeReport, RuntimeCondition } from '@nodekeeper/protocol';
import type { Condition, Liveness } from '../model/machine.ts';

export const CONDITION_TYPES = ['Ready', 'KubeletHealthy', 'RuntimeReady', 'NetworkReady', 'DiskPressure', 'MemoryPressure', 'PIDPressure'] as const;
export type ConditionType = (typeof CONDITION_TYPES)[number];

type Status = Condition['status'];
type Draft = { readonly status: Status; readonly reason: string; readonly message: string };

const MAX_REASON = 64;
const MAX_MESSAGE = 1024;

/** What liveness needs to know of the node: healthy, unhealthy, or not known (null). */
export interface NodeHealth {
  readonly healthy: boolean | null;
  readonly reason: string;
  readonly message: string;
}

/**
 * Whether the node is healthy by its report: unhealthy when kubelet, the runtime or CNI
 * is unhealthy, or the runtime says RuntimeReady/NetworkReady is false (Kubernetes marks
 * a node NotReady for "container runtime network not ready" too). Host pressure does not
 * make a node unhealthy; it has its own conditions.
 */
export function nodeHealth(report: NodeReport | null): NodeHealth {
  if (report === null) return { healthy: null, reason: 'NoReport', message: 'no report received yet' };
  const problems: Array<{ reason: string; text: string }> = [];
  const unknown: string[] = [];
  const probes = [
    ['kubelet', 'KubeletUnhealthy', report.kubelet],
    ['runtime', 'RuntimeUnhealthy', report.runtime],
    ['cni', 'CniUnhealthy', report.cni],
  ] as const;
  for (const [name, reason, p] of probes) {
    if (p.health === 'unhealthy') problems.push({ reason, text: `${name}: ${p.reason}: ${p.message}` });
    else if (p.health === 'unknown') unknown.push(`${name}: ${p.reason}: ${p.message}`);
  }
  for (const [type, reason] of [['RuntimeReady', 'RuntimeNotReady'], ['NetworkReady', 'NetworkNotReady']] as const) {
    const c = runtimeCondition(report, type);
    if (c?.status === false) problems.push({ reason, text: `runtime ${type}=false: ${c.reason}: ${c.message}` });
  }
  const first = problems[0];
  if (first !== undefined) return { healthy: false, reason: first.reason, message: clip(problems.map((p) => p.text).join('; '), MAX_MESSAGE) };
  if (unknown.length > 0) return { healthy: null, reason: 'HealthUnknown', message: clip(unknown.join('; '), MAX_MESSAGE) };
  return { healthy: true, reason: 'NodeHealthy', message: 'kubelet, runtime and CNI are healthy' };
}

/**
 * The conditions for a machine now. `prev` supplies lastTransitionTime for conditions
 * whose status did not change. The order is fixed (CONDITION_TYPES).
 */
export function deriveConditions(prev: readonly Condition[], report: NodeReport | null, liveness: Liveness, now: number): Condition[] {
  const drafts = draftConditions(report, liveness);
  return CONDITION_TYPES.map((type) => {
    const d = drafts[type];
    const before = prev.find((c) => c.type === type);
    const lastTransitionTime = before !== undefined && before.status === d.status ? before.lastTransitionTime : now;
    return { type, status: d.status, reason: d.reason, message: d.message, lastTransitionTime };
  });
}

/**
 * The earliest instant at which deriveConditions can answer differently with the same
 * report and liveness: never. Conditions have no time window of their own (`now` only
 * stamps lastTransitionTime); they change with the report or the liveness, whose own
 * instant is nextLivenessChangeAt (liveness.ts). A condition that gains a time window
 * (a for/clear period) must say so here, or the deadline queue would re-judge it late.
 */
export function nextConditionsChangeAt(_report: NodeReport | null, _liveness: Liveness, _now: number): number {
  return Infinity;
}

function draftConditions(report: NodeReport | null, liveness: Liveness): Record<ConditionType, Draft> {
  const ready = readyFromLiveness(liveness);
  const fromReport: Record<Exclude<ConditionType, 'Ready'>, Draft> =
    report === null
      ? {
          KubeletHealthy: noReport,
          RuntimeReady: noReport,
          NetworkReady: noReport,
          DiskPressure: noReport,
          MemoryPressure: noReport,
          PIDPressure: noReport,
        }
      : {
          KubeletHealthy: fromHealth(report.kubelet.health, report.kubelet.reason, report.kubelet.message, 'Kubelet'),
          RuntimeReady: runtimeReady(report),
          NetworkReady: networkReady(report),
          ...pressure(report),
        };
  if (liveness.state === 'Unknown') {
    // What a silent agent said last is history, not status (the node controller does the same).
    for (const type of Object.keys(fromReport) as Array<keyof typeof fromReport>) {
      const last = fromReport[type];
      fromReport[type] = { status: 'Unknown', reason: 'AgentSilent', message: clip(`agent stopped reporting; last reported ${last.status}: ${last.reason}`, MAX_MESSAGE) };
    }
  }
  return { Ready: ready, ...fromReport };
}

const noReport: Draft = { status: 'Unknown', reason: 'NoReport', message: 'no report received yet' };

function readyFromLiveness(l: Liveness): Draft {
  const status: Status = l.state === 'Ready' ? 'True' : l.state === 'NotReady' ? 'False' : 'Unknown';
  return { status, reason: l.reason, message: clip(l.message, MAX_MESSAGE) };
}

function fromHealth(health: string, reason: string, message: string, what: string): Draft {
  const status: Status = health === 'healthy' ? 'True' : health === 'unhealthy' ? 'False' : 'Unknown';
  const fallback = status === 'True' ? `${what}Healthy` : status === 'False' ? `${what}Unhealthy` : `${what}HealthUnknown`;
  return { status, reason: camelReason(reason, fallback), message: clip(message, MAX_MESSAGE) };
}

function runtimeCondition(report: NodeReport, type: string): RuntimeCondition | undefined {
  return report.runtime.conditions.find((c) => c.type === type);
}

function runtimeReady(report: NodeReport): Draft {
  const r = report.runtime;
  if (r.health === 'unhealthy') return fromHealth(r.health, r.reason, r.message, 'Runtime');
  const cond = runtimeCondition(report, 'RuntimeReady');
  if (cond?.status === false) return { status: 'False', reason: camelReason(cond.reason, 'RuntimeNotReady'), message: clip(cond.message, MAX_MESSAGE) };
  return fromHealth(r.health, r.reason, r.message, 'Runtime');
}

/** NetworkReady needs both: a valid CNI set-up (our probe) and the runtime's NetworkReady. */
function networkReady(report: NodeReport): Draft {
  const cni = report.cni;
  const cond = runtimeCondition(report, 'NetworkReady');
  const cniDraft = fromHealth(cni.health, cni.reason, cni.message, 'Cni');
  const runtimeSaysNo = cond?.status === false;
  if (cniDraft.status === 'False' && runtimeSaysNo) {
    return { status: 'False', reason: cniDraft.reason, message: clip(`cni: ${cni.message}; runtime: ${cond.reason}: ${cond.message}`, MAX_MESSAGE) };
  }
  if (cniDraft.status === 'False') return cniDraft;
  if (runtimeSaysNo) return { status: 'False', reason: camelReason(cond.reason, 'NetworkPluginNotReady'), message: clip(cond.message, MAX_MESSAGE) };
  return cniDraft;
}

function pressure(report: NodeReport): Pick<Record<ConditionType, Draft>, 'DiskPressure' | 'MemoryPressure' | 'PIDPressure'> {
  const h = report.host;
  if (h.health === 'unknown') {
    const unknown: Draft = { status: 'Unknown', reason: camelReason(h.reason, 'HostHealthUnknown'), message: clip(h.message, MAX_MESSAGE) };
    return { DiskPressure: unknown, MemoryPressure: unknown, PIDPressure: unknown };
  }
  const disks = h.disks.map((d) => `${d.path} ${Math.round(d.usedPercent)}% used`).join(', ');
  const gib = (b: number) => `${(b / 2 ** 30).toFixed(1)} GiB`;
  return {
    DiskPressure: h.pressure.disk
      ? { status: 'True', reason: 'HostHasDiskPressure', message: clip(disks || h.message, MAX_MESSAGE) }
      : { status: 'False', reason: 'HostHasNoDiskPressure', message: 'disk usage is below the pressure threshold' },
    MemoryPressure: h.pressure.memory
      ? { status: 'True', reason: 'HostHasMemoryPressure', message: `${gib(h.memoryAvailableBytes)} of ${gib(h.memoryTotalBytes)} available` }
      : { status: 'False', reason: 'HostHasSufficientMemory', message: 'available memory is above the pressure threshold' },
    PIDPressure: h.pressure.pid
      ? { status: 'True', reason: 'HostHasPIDPressure', message: clip(h.message, MAX_MESSAGE) }
      : { status: 'False', reason: 'HostHasSufficientPID', message: 'enough process ids are available' },
  };
}

/**
 * Reasons come from agents: keep them CamelCase identifiers (letters and digits,
 * leading capital, bounded) so they are safe as event reasons and in tables.
 */
export function camelReason(raw: string, fallback: string): string {
  const words = raw.split(/[^A-Za-z0-9]+/).filter((w) => w !== '');
  const joined = words.map((w) => w[0]?.toUpperCase() + w.slice(1)).join('');
  const cleaned = /^[A-Z]/.test(joined) ? joined : '';
  return (cleaned || fallback).slice(0, MAX_REASON);
}

function clip(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 3)}...`;
}
