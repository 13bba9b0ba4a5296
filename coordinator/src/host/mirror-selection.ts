/**
 * Which Machines a member mirrors to the host. Pure.
 *
 * `all` mirrors every Machine (the design before issue 15). `unhealthy`, the default,
 * mirrors only the machines that need an eye, and the Cluster's status carries the
 * summary of the rest (counts by phase and by problem condition, versions in use):
 *   - a machine that is not Ready, has a condition in its problem polarity (a problem
 *     type True, a health type False or Unknown), a remediation under way, a member Node
 *     that is not Ready, or is revoked;
 *   - one an operator asked for: the label `nodekeeper.io/host-mirror: "true"`;
 *   - one that needed it less than `lingerMs` ago (5 minutes by default), so a machine
 *     that flaps is not created and deleted on the host at every flap.
 * Measured in bench/host-scale.ts; the reasoning is in bench/README.md. At 100 members of
 * 5,000 machines, `all` is 500,000 objects of about 6 KB in etcd (over its default 2 GB
 * quota) and in the apiserver's watch cache; `unhealthy` is the few per cent that are not
 * healthy at any moment.
 */
import { LIVENESS_PHASES, type Machine } from '@nodekeeper/api';

export const HOST_MIRROR_MODES = ['unhealthy', 'all'] as const;
export type HostMirrorMode = (typeof HOST_MIRROR_MODES)[number];

/** A member machine with this label set to "true" is mirrored whatever its health. */
export const MIRROR_LABEL = 'nodekeeper.io/host-mirror';
export const DEFAULT_MIRROR_LINGER_MS = 300_000;

/** Condition types whose `True` is the problem (node-problem-detector's polarity); the others are healthy when `True`. */
const problemWhenTrue = (type: string) => type.endsWith('Pressure');

/** Why a machine needs mirroring now, or null when it is healthy and nobody asked for it. */
export function mirrorReason(m: Machine): string | null {
  if (m.metadata.labels[MIRROR_LABEL] === 'true') return 'Requested';
  const s = m.status;
  if (s.revoked === true) return 'Revoked';
  if (s.phase !== 'Ready') return `Phase${s.phase}`;
  const bad = s.conditions.find((c) => (problemWhenTrue(c.type) ? c.status !== 'False' : c.status !== 'True'));
  if (bad !== undefined) return `${bad.type}${bad.status}`;
  if (s.remediation !== undefined && s.remediation.phase !== 'Idle') return `Remediation${s.remediation.phase}`;
  if (s.node !== undefined && s.node.ready !== 'True') return `NodeReady${s.node.ready}`;
  return null;
}

/**
 * The machines to mirror now, and when each last needed it (the state to pass next
 * time; machines gone from `machines` or past their linger are dropped from it).
 */
export function selectMirrored(
  machines: readonly Machine[], mode: HostMirrorMode, lastNeeded: ReadonlyMap<string, number>, now: number, lingerMs = DEFAULT_MIRROR_LINGER_MS,
): { selected: Machine[]; lastNeeded: Map<string, number> } {
  if (mode === 'all') return { selected: [...machines], lastNeeded: new Map() };
  const selected: Machine[] = [];
  const next = new Map<string, number>();
  for (const m of machines) {
    const name = m.metadata.name;
    if (mirrorReason(m) !== null) {
      next.set(name, now);
      selected.push(m);
      continue;
    }
    const last = lastNeeded.get(name);
    if (last !== undefined && now - last < lingerMs) {
      next.set(name, last);
      selected.push(m);
    }
  }
  return { selected, lastNeeded: next };
}

/**
 * Counts for the Cluster status: machines by phase (every phase, 0 included: the status is
 * merge-patched, where a key left out would keep its old count), and by condition in its
 * problem polarity (a list, which a merge patch replaces whole).
 */
export function machineSummary(machines: readonly Machine[]): { phases: Record<string, number>; problems: Array<{ type: string; status: string; machines: number }> } {
  const phases: Record<string, number> = Object.fromEntries(LIVENESS_PHASES.map((p) => [p, 0]));
  const problems = new Map<string, { type: string; status: string; machines: number }>();
  for (const m of machines) {
    phases[m.status.phase] = (phases[m.status.phase] ?? 0) + 1;
    for (const c of m.status.conditions) {
      if (problemWhenTrue(c.type) ? c.status === 'False' : c.status === 'True') continue;
      const key = `${c.type}=${c.status}`;
      const p = problems.get(key) ?? { type: c.type, status: c.status, machines: 0 };
      p.machines += 1;
      problems.set(key, p);
    }
  }
  return { phases, problems: [...problems.values()].sort((a, b) => a.type.localeCompare(b.type) || a.status.localeCompare(b.status)) };
}
