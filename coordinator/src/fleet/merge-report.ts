/**
 * Folds an agent's report message into the coordinator's last full picture of the node.
 * Pure. A full report replaces the picture; a delta replaces only the sections it
 * carries; a delta with nothing to apply it to cannot be trusted, so ask for a full
 * report (resync) instead of guessing.
 */
import { REPORT_SECTIONS, type NodeReport, type NodeReportDelta } from '@nodekeeper/protocol';

export interface ReportMessage {
  readonly full: boolean;
  readonly report: NodeReport | NodeReportDelta;
}

export interface MergeResult {
  /** The merged picture (the base unchanged when a resync is needed). */
  readonly report: NodeReport | null;
  /** True when anything but an `observedAt` differs from the base. */
  readonly changed: boolean;
  /** True when a delta arrived without a base: ask the agent for a full report. */
  readonly needsResync: boolean;
}

/** Merges one report message into `base`. See the module comment. */
export function mergeReport(base: NodeReport | null, message: ReportMessage): MergeResult {
  if (message.full) {
    const report = message.report as NodeReport;
    return { report, changed: base === null || !sameIgnoringObservedAt(base, report), needsResync: false };
  }
  if (base === null) return { report: null, changed: false, needsResync: true };
  const delta = message.report as NodeReportDelta;
  // Build the merged object section by section: only known sections are taken, so an
  // unexpected key can never ride along into the stored report.
  const merged: NodeReport = {
    identity: delta.identity ?? base.identity,
    kubelet: delta.kubelet ?? base.kubelet,
    runtime: delta.runtime ?? base.runtime,
    cni: delta.cni ?? base.cni,
    host: delta.host ?? base.host,
  };
  const changed = REPORT_SECTIONS.some((s) => delta[s] !== undefined && !sameIgnoringObservedAt(base[s], delta[s]));
  return { report: merged, changed, needsResync: false };
}

/**
 * Deep equality of JSON values that ignores every `observedAt` key: a probe that ran
 * again and saw the same thing is not news. Key order does not matter.
 */
export function sameIgnoringObservedAt(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((x, i) => sameIgnoringObservedAt(x, b[i]));
  }
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  const keys = (r: Record<string, unknown>) => Object.keys(r).filter((k) => k !== 'observedAt' && r[k] !== undefined);
  const ka = keys(ra);
  const kb = keys(rb);
  return ka.length === kb.length && ka.every((k) => Object.hasOwn(rb, k) && sameIgnoringObservedAt(ra[k], rb[k]));
}
