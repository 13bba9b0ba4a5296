/**
 * What a member writes to the host: its Cluster status and its Machines, as pure
 * functions of the coordinator's state. Comparisons ignore timestamps, so the member
 * writes only when something an operator would care about changed.
 */
import { toSemver } from '@nodekeeper/common';
import type { Machine as MachineObject } from '@nodekeeper/api';
import type { PackageSummary } from '../packages/cluster-package-version.ts';
import { machineSummary } from './mirror-selection.ts';
import { API_VERSION, CLUSTER_LABEL } from './names.ts';

export interface HostCondition {
  readonly type: string;
  readonly status: 'True' | 'False' | 'Unknown';
  readonly reason: string;
  readonly message: string;
  readonly lastTransitionTime: string;
}

export interface ClusterStatus {
  conditions: HostCondition[];
  kubernetesVersion?: string;
  nodeSummary: { total: number; ready: number; agentsConnected: number; nodesReady?: number };
  packages: Array<{ name: string; desiredVersion: string | null; machines: number; atDesired: number; versions: Array<{ version: string; machines: number; healthy: number }> }>;
  rollouts: { active: number; paused: number; failed: number; succeeded: number };
  remediation: { active: number; needsHuman: number; guard: string };
  /** The member's machines in counts, and how many are mirrored as Machines (mirror-selection.ts). */
  machineSummary?: {
    mirror: string;
    mirrored: number;
    phases: Record<string, number>;
    problems: Array<{ type: string; status: string; machines: number }>;
  };
  coordinatorVersion: string;
  lastStatusTime: string;
}

export interface ClusterStatusInput {
  readonly machines: readonly MachineObject[];
  readonly connected: number;
  readonly packages: readonly PackageSummary[];
  readonly rolloutPhases: readonly string[];
  readonly remediation: { readonly active: number; readonly needsHuman: number; readonly guard: string };
  readonly kubernetesVersion: string | null;
  /** Nodes Ready in the member's API, when the member API is configured and answered. */
  readonly nodesReady: number | null;
  /** Why the member's API could not be read, when it is configured and could not. */
  readonly memberApiError: string | null;
  readonly coordinatorVersion: string;
  /** The Machine mirror's mode and how many it mirrors (absent: no summary). */
  readonly mirror?: { readonly mode: string; readonly machines: number };
}

/** Keeps lastTransitionTime when a condition's status did not change. */
export function withTransitions(prev: readonly HostCondition[] | undefined, next: ReadonlyArray<Omit<HostCondition, 'lastTransitionTime'>>, now: string): HostCondition[] {
  return next.map((c) => {
    const before = prev?.find((p) => p.type === c.type);
    return { ...c, lastTransitionTime: before !== undefined && before.status === c.status ? before.lastTransitionTime : now };
  });
}

const ACTIVE = new Set(['Pending', 'Canary', 'Soaking', 'Progressing', 'RollingBack']);

export function clusterStatus(input: ClusterStatusInput, prev: readonly HostCondition[] | undefined, now: string): ClusterStatus {
  const total = input.machines.length;
  const ready = input.machines.filter((m) => m.status.conditions.some((c) => c.type === 'Ready' && c.status === 'True')).length;
  const readyCondition = input.memberApiError !== null
    ? { type: 'Ready', status: 'False' as const, reason: 'MemberAPIUnreachable', message: input.memberApiError }
    : total > 0 && ready === 0
      ? { type: 'Ready', status: 'False' as const, reason: 'NoMachineReady', message: `none of ${total} machines is Ready` }
      : { type: 'Ready', status: 'True' as const, reason: 'MemberReady', message: `coordinator running; ${ready} of ${total} machines Ready` };
  const machinesCondition = total === ready
    ? { type: 'MachinesReady', status: 'True' as const, reason: 'AllReady', message: `${ready} of ${total} machines Ready` }
    : { type: 'MachinesReady', status: 'False' as const, reason: 'SomeNotReady', message: `${total - ready} of ${total} machines not Ready` };
  const count = (phase: string) => input.rolloutPhases.filter((p) => p === phase).length;
  return {
    conditions: withTransitions(prev, [readyCondition, machinesCondition], now),
    ...(input.kubernetesVersion === null ? {} : { kubernetesVersion: input.kubernetesVersion }),
    nodeSummary: { total, ready, agentsConnected: input.connected, ...(input.nodesReady === null ? {} : { nodesReady: input.nodesReady }) },
    packages: input.packages.map((p) => ({
      name: p.name,
      desiredVersion: p.desiredVersion,
      machines: p.machines,
      atDesired: p.atDesired,
      versions: Object.entries(p.versions).sort(([a], [b]) => a.localeCompare(b)).map(([version, machines]) => ({
        version, machines, healthy: healthyAt(input.machines, p.name, version),
      })),
    })),
    rollouts: { active: input.rolloutPhases.filter((p) => ACTIVE.has(p)).length, paused: count('Paused'), failed: count('Failed') + count('RolledBack'), succeeded: count('Completed') },
    remediation: { ...input.remediation },
    ...(input.mirror === undefined ? {} : { machineSummary: { mirror: input.mirror.mode, mirrored: input.mirror.machines, ...machineSummary(input.machines) } }),
    coordinatorVersion: input.coordinatorVersion,
    lastStatusTime: now,
  };
}

const SECTION: Readonly<Record<string, 'kubelet' | 'containerd' | 'cni'>> = { kubelet: 'kubelet', containerd: 'containerd', 'cni-plugins': 'cni' };

function healthyAt(machines: readonly MachineObject[], pkg: string, version: string): number {
  const section = SECTION[pkg];
  if (section === undefined) return 0;
  return machines.filter((m) => {
    const s = m.status[section];
    return s !== undefined && s.version !== null && (toSemver(s.version) ?? s.version) === version && s.health === 'healthy';
  }).length;
}

/** Equal for the purpose of writing: ignores lastStatusTime and transition times. */
export function sameClusterStatus(a: unknown, b: unknown): boolean {
  return canonicalJson(a, TIMES) === canonicalJson(b, TIMES);
}

const TIMES: ReadonlySet<string> = new Set(['lastStatusTime', 'lastTransitionTime']);

/**
 * JSON with sorted keys, without the `ignore`d keys and without null or undefined
 * values (the API server may reorder keys; null means absent in a merge patch).
 */
export function canonicalJson(v: unknown, ignore: ReadonlySet<string> = new Set()): string {
  const walk = (x: unknown): unknown => {
    if (Array.isArray(x)) return x.map(walk);
    if (x === null || typeof x !== 'object') return x;
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(x).sort()) {
      const y = (x as Record<string, unknown>)[k];
      if (!ignore.has(k) && y !== null && y !== undefined) out[k] = walk(y);
    }
    return out;
  };
  return JSON.stringify(walk(v));
}

/** What the host shows of a node's Node object in the member cluster. */
export interface NodeView {
  readonly name: string;
  readonly ready: 'True' | 'False' | 'Unknown';
  readonly unschedulable: boolean;
  readonly providerID: string | null;
}

/**
 * A Machine as mirrored on the host: identity, pins, and a status without the fields
 * that change on every report (probe times, free memory), so the host is written when
 * health or versions change, not on every heartbeat.
 */
export function hostMachine(m: MachineObject, cluster: string, namespace: string) {
  const node = m.status.node ?? null;
  // `version` is the semver reading (what printer columns and fleet views compare), `rawVersion` as found.
  const probe = (s: { version: string | null; semver?: string; health: string; reason: string; message: string; versionSource?: string } | undefined) =>
    s === undefined ? undefined : {
      version: s.semver ?? s.version, rawVersion: s.version, health: s.health, reason: s.reason, message: s.message, ...(s.versionSource ? { versionSource: s.versionSource } : {}),
    };
  const st = m.status as MachineObject['status'] & { remediation?: unknown };
  return {
    apiVersion: API_VERSION,
    kind: 'Machine',
    metadata: { name: m.metadata.name, namespace, labels: { ...m.metadata.labels, [CLUSTER_LABEL]: cluster } },
    spec: {
      machineId: m.spec.machineId,
      hostname: m.spec.hostname,
      ...(node?.providerID ? { providerID: node.providerID } : {}),
      addresses: m.spec.addresses,
      zone: m.spec.zone,
      labels: m.spec.labels,
      ...(m.spec.packages === undefined ? {} : { packages: m.spec.packages }),
    },
    status: {
      phase: st.phase,
      phaseReason: st.phaseReason,
      agentVersion: st.agentVersion,
      conditions: st.conditions.map((c) => ({ type: c.type, status: c.status, reason: c.reason, message: c.message, lastTransitionTime: c.lastTransitionTime })),
      ...(node === null ? {} : { node: { name: node.name, ready: node.ready, unschedulable: node.unschedulable } }),
      ...(st.kubelet === undefined ? {} : { kubelet: probe(st.kubelet) }),
      ...(st.containerd === undefined ? {} : { containerd: probe(st.containerd) }),
      ...(st.cni === undefined ? {} : { cni: { ...probe(st.cni), configFile: st.cni.configFile, plugins: st.cni.plugins.map((p) => ({ type: p.type, version: p.version })) } }),
      ...(st.host === undefined ? {} : { host: { os: st.host.os, kernel: st.host.kernel, arch: st.host.arch, health: st.host.health, reason: st.host.reason, pressure: st.host.pressure } }),
      ...(st.remediation === undefined ? {} : { remediation: st.remediation }),
      ...(st.revoked ? { revoked: true } : {}),
    },
  };
}
