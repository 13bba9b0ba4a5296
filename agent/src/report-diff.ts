/**
 * What changed between two reports, for deltas. Changes that carry no news are
 * ignored: `observedAt` on every section, and the host's ever-moving gauges (uptime,
 * available memory, bytes used), which are refreshed by the periodic full report
 * instead. So a quiet node sends heartbeats only, and the coordinator writes status
 * only when something an operator cares about changed (the node Lease model, KEP-589).
 */
import { REPORT_SECTIONS, type NodeReport, type NodeReportDelta } from '@nodekeeper/protocol';

const VOLATILE = new Set(['observedAt', 'uptimeSeconds', 'memoryAvailableBytes', 'usedBytes']);

/** A canonical string of a section without volatile fields (usedPercent kept to 1 %). */
function significant(value: unknown): string {
  return JSON.stringify(value, (key, v: unknown) => {
    if (VOLATILE.has(key)) return undefined;
    if (key === 'usedPercent' && typeof v === 'number') return Math.round(v);
    return v;
  });
}

/** The sections of `next` that differ significantly from `prev`; null when none do. */
export function reportDelta(prev: NodeReport | null, next: NodeReport): NodeReportDelta | null {
  if (prev === null) return { ...next };
  const delta: Record<string, unknown> = {};
  for (const section of REPORT_SECTIONS) {
    if (significant(prev[section]) !== significant(next[section])) delta[section] = next[section];
  }
  return Object.keys(delta).length === 0 ? null : (delta as NodeReportDelta);
}
