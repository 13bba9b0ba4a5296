/**
 * `nkctl get machines` as a table: the narrow view an operator scans, and `-o wide`
 * with identity, the health of each component and the agent's version. Pure: objects and a clock in, text out.
 */
import { machineConverged, machineRemediation, type FaultObject, type Machine as MachineObject, type VersionFields } from '@nodekeeper/api';
import { humanDuration } from './duration.ts';
import { renderTable } from './table.ts';

const NARROW = ['NAME', 'STATUS', 'KUBELET', 'CONTAINERD', 'CNI', 'AGE', 'LAST-SEEN', 'REMEDIATION', 'CONVERGED'] as const;
const WIDE = [...NARROW, 'MACHINE-ID', 'ZONE', 'ADDRESSES', 'KUBELET-HEALTH', 'RUNTIME-HEALTH', 'CNI-HEALTH', 'FAULTS', 'NODE', 'AGENT'] as const;

/**
 * A version short enough for a column. Raw strings without spaces are shown as found
 * (`1.6.20~ds1` says more than its semver); long forms like `Kubernetes v1.31.2`
 * become `v1.31.2` when they have a semver reading.
 */
export function displayVersion(v: VersionFields | undefined): string {
  if (v === undefined || v.version === null) return '<unknown>';
  if (!/\s/.test(v.version)) return v.version;
  return v.semver !== undefined ? `v${v.semver}` : v.version;
}

/** Time since an RFC 3339 timestamp, kubectl style; `<never>` for null. */
export function ageSince(time: string | null | undefined, now: number, never = '<never>'): string {
  if (time === null || time === undefined) return never;
  const at = Date.parse(time);
  return Number.isNaN(at) ? '<invalid>' : humanDuration(now - at);
}

/** STATUS column: the phase, with `,Revoked` as kubectl appends `,SchedulingDisabled`. */
export function statusCell(m: MachineObject): string {
  return m.status.revoked === true ? `${m.status.phase},Revoked` : m.status.phase;
}

/** `NetworkNotReady(Active),DiskPressure(Pending)`: non-Clear faults, or `-`. */
export function faultsCell(faults: readonly FaultObject[]): string {
  const open = faults.filter((f) => f.status !== 'Clear');
  return open.length === 0 ? '-' : open.map((f) => `${f.type}(${f.status})`).join(',');
}

/** REMEDIATION column: the phase (`,Cordoned` when cordoned), or `-` when the coordinator reports none. */
export function remediationCell(m: MachineObject): string {
  const r = machineRemediation(m).remediation;
  if (r === null) return '-';
  return r.cordoned ? `${r.phase},Cordoned` : r.phase;
}

/** NODE column: the member cluster's view of the machine's Node (kubectl's words), or `-` without the member API. */
export function nodeCell(n: MachineObject['status']['node']): string {
  if (n === undefined) return '-';
  const ready = n.ready === 'True' ? 'Ready' : n.ready === 'False' ? 'NotReady' : 'Unknown';
  return n.unschedulable ? `${ready},SchedulingDisabled` : ready;
}

function healthCell(p: { health: string; reason: string } | undefined): string {
  if (p === undefined) return '<unknown>';
  return p.health === 'healthy' || p.reason === '' ? p.health : `${p.health}:${p.reason}`;
}

/** The machines table, narrow or wide. */
export function renderMachines(items: readonly MachineObject[], now: number, wide: boolean): string {
  const rows = items.map((m) => {
    const s = m.status;
    const narrow = [
      m.metadata.name,
      statusCell(m),
      displayVersion(s.kubelet),
      displayVersion(s.containerd),
      displayVersion(s.cni),
      ageSince(m.metadata.creationTimestamp, now),
      ageSince(s.lastSeenTime, now),
      remediationCell(m),
      // converged / updating / degraded / pending (the worst of status.packages[]), `-` without any.
      machineConverged(s.packages ?? []),
    ];
    if (!wide) return narrow;
    return [
      ...narrow,
      m.spec.machineId,
      m.spec.zone ?? '<none>',
      m.spec.addresses.length === 0 ? '<none>' : m.spec.addresses.join(','),
      healthCell(s.kubelet),
      healthCell(s.containerd),
      healthCell(s.cni),
      faultsCell(machineRemediation(m).faults),
      nodeCell(s.node),
      // The agent's own version (its hello): what an agent rollout moves.
      s.agentVersion ?? '<unknown>',
    ];
  });
  return renderTable(wide ? WIDE : NARROW, rows);
}
