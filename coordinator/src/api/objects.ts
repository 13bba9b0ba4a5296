/**
 * The coordinator's records as Kubernetes-style API objects: what the HTTP API serves
 * and what `nkctl -o json|yaml` prints. Pure functions of (record, now): no I/O.
 *
 * Shapes follow Kubernetes API conventions
 * (https://github.com/kubernetes/community/blob/master/contributors/devel/sig-architecture/api-conventions.md):
 * camelCase fields, RFC 3339 times, `metadata` / `spec` / `status`, conditions with
 * `type`, `status`, `reason`, `message`, `lastTransitionTime`. Everything is plain JSON
 * (no `undefined`, no Dates), so an object survives a JSON or YAML round trip unchanged.
 */
import type { CniStatus, HostStatus, KubeletStatus, RuntimeStatus, ServiceState, VersionInfo } from '@nodekeeper/protocol';
import type { EventRecord, LivenessState, MachineRecord, TokenRecord } from '../store/types.ts';
import type { ObjectMeta } from '../store/object-meta.ts';
import { apiMeta, type ApiObjectMeta } from './object-meta.ts';

export const API_VERSION = 'nodekeeper.io/v1alpha1';

/** A version as observed: the raw string verbatim, its semver reading where there is one, and where it came from. */
export interface VersionFields {
  /** Raw version string as found on the node, or null when none was found. */
  readonly version: string | null;
  /** Present only when the raw string has a semver reading. */
  readonly semver?: string;
  /** Where the version came from (binary, cri, dpkg, nodekeeper, ...); present with `version`. */
  readonly versionSource?: string;
}

export interface ProbeFields extends VersionFields {
  readonly health: 'healthy' | 'unhealthy' | 'unknown';
  readonly reason: string;
  readonly message: string;
  /** When the agent ran the probe, on the agent's clock (informational only). */
  readonly observedAt: string;
}

export interface KubeletObjectStatus extends ProbeFields {
  readonly service: ServiceState | null;
}

export interface ContainerdObjectStatus extends ProbeFields {
  readonly runtimeName: string | null;
  readonly runtimeApiVersion: string | null;
  readonly conditions: readonly { type: string; status: boolean; reason: string; message: string }[];
  readonly service: ServiceState | null;
}

export interface CniPluginObject extends VersionFields {
  readonly type: string;
  readonly binary: string | null;
  readonly supportedVersions: readonly string[];
}

export interface CniObjectStatus extends ProbeFields {
  readonly configFile: string | null;
  readonly networkName: string | null;
  readonly cniVersion: string | null;
  readonly plugins: readonly CniPluginObject[];
}

export interface HostObjectStatus {
  readonly health: 'healthy' | 'unhealthy' | 'unknown';
  readonly reason: string;
  readonly message: string;
  readonly observedAt: string;
  readonly os: string;
  readonly kernel: string;
  readonly arch: string;
  readonly cpus: number;
  readonly memory: { readonly totalBytes: number; readonly availableBytes: number };
  readonly uptimeSeconds: number;
  readonly disks: readonly { path: string; totalBytes: number; usedBytes: number; usedPercent: number }[];
  readonly pressure: { readonly disk: boolean; readonly memory: boolean; readonly pid: boolean };
  /** Boot and kernel facts (docs/agent-probes.md); absent when the agent does not report them. */
  readonly bootId?: string | null;
  readonly newestKernel?: string | null;
  readonly reboot?: { readonly required: boolean; readonly reasons: readonly string[] };
  readonly readOnlyMounts?: readonly string[];
}

export interface ConditionObject {
  readonly type: string;
  readonly status: 'True' | 'False' | 'Unknown';
  readonly reason: string;
  readonly message: string;
  readonly lastTransitionTime: string;
}

export interface MachineObject {
  readonly apiVersion: typeof API_VERSION;
  readonly kind: 'Machine';
  readonly metadata: {
    readonly name: string;
    readonly uid: string;
    readonly creationTimestamp: string;
    readonly labels: Readonly<Record<string, string>>;
    /** Present when the store's metadata is given (store/object-meta.ts). */
    readonly generation?: number;
    readonly resourceVersion?: string;
  };
  readonly spec: {
    readonly machineId: string;
    readonly hostname: string;
    readonly addresses: readonly string[];
    readonly zone: string | null;
    readonly labels: Readonly<Record<string, string>>;
    /** Package versions pinned on this machine over the ClusterPackageVersion. */
    readonly packages?: ReadonlyArray<{ readonly name: string; readonly version: string }>;
  };
  readonly status: {
    /** Connection-level liveness judged on the coordinator's clock. */
    readonly phase: LivenessState;
    /** Why the phase is what it is, and since when. */
    readonly phaseReason: string;
    readonly phaseMessage: string;
    readonly phaseTransitionTime: string;
    /** Last message of any kind received, or null when none yet. */
    readonly lastSeenTime: string | null;
    /** When the reported status last changed, or null before the first report. */
    readonly lastReportTime: string | null;
    readonly agentVersion: string | null;
    /** The generation the status reflects (pins and labels apply at once, so the current one). */
    readonly observedGeneration?: number;
    readonly conditions: readonly ConditionObject[];
    /** The sections below are absent until the agent's first report. */
    readonly kubelet?: KubeletObjectStatus;
    readonly containerd?: ContainerdObjectStatus;
    readonly cni?: CniObjectStatus;
    readonly host?: HostObjectStatus;
    readonly revoked?: true;
    readonly revokedTime?: string;
    /** Each desired package against what runs (convergence/status.ts), as MCO's current/desired/state node annotations. */
    readonly packages?: readonly MachinePackageObject[];
    /** The machine's Node in the member cluster, when the coordinator has the member API. */
    readonly node?: { readonly name: string; readonly ready: 'True' | 'False' | 'Unknown'; readonly unschedulable: boolean; readonly providerID: string | null };
  };
}

/** One entry of a Machine's `status.packages[]`. */
export interface MachinePackageObject {
  readonly name: string;
  readonly current: string | null;
  readonly desired: string;
  readonly state: 'Converged' | 'Updating' | 'Degraded' | 'Pending';
  readonly reason: string;
}

export interface MachineList {
  readonly apiVersion: typeof API_VERSION;
  readonly kind: 'MachineList';
  readonly items: readonly MachineObject[];
}

export interface EventObject {
  readonly id: number;
  readonly at: string;
  readonly object: string;
  readonly type: 'Normal' | 'Warning';
  readonly reason: string;
  readonly message: string;
}

export interface EventList {
  readonly kind: 'EventList';
  readonly items: readonly EventObject[];
}

export interface TokenObject {
  /** Kubernetes-style metadata (name = id) beside the flat fields, when the store's metadata is given. */
  readonly metadata?: { readonly name: string } & ApiObjectMeta;
  readonly status?: { readonly observedGeneration: number; readonly conditions: readonly ConditionObject[] };
  readonly id: string;
  readonly description: string;
  readonly createdAt: string;
  readonly expiresAt: string;
  /** Enrollments allowed in all. */
  readonly uses: number;
  /** Enrollments made so far. */
  readonly used: number;
  readonly revoked: boolean;
  readonly revokedAt: string | null;
}

export interface TokenList {
  readonly kind: 'TokenList';
  readonly items: readonly TokenObject[];
}

/** Response of `POST /v1/tokens`: the only time the secret is ever shown. */
export interface TokenCreated {
  readonly token: string;
  readonly id: string;
  readonly expiresAt: string;
  readonly uses: number;
  /** `sha256:<hex>` of the coordinator CA's public key, or null when serving plain http. */
  readonly caCertHash: string | null;
}

/** Error body of every failed API call. */
export interface ApiErrorBody {
  readonly code: string;
  readonly message: string;
}

/** RFC 3339 (UTC, millisecond precision) of an epoch-milliseconds time. */
export function rfc3339(ms: number): string {
  if (!Number.isFinite(ms)) throw new RangeError(`time must be a finite number of milliseconds, got ${ms}`);
  return new Date(ms).toISOString();
}

function rfc3339OrNull(ms: number | null): string | null {
  return ms === null ? null : rfc3339(ms);
}

function versionFields(v: VersionInfo | null): VersionFields {
  if (v === null) return { version: null };
  // exactOptionalPropertyTypes: leave `semver` out rather than writing undefined, so JSON round-trips.
  return v.semver === null
    ? { version: v.raw, versionSource: v.source }
    : { version: v.raw, semver: v.semver, versionSource: v.source };
}

function probeFields(p: KubeletStatus | RuntimeStatus | CniStatus): ProbeFields {
  return { health: p.health, ...versionFields(p.version), reason: p.reason, message: p.message, observedAt: p.observedAt };
}

function copyService(s: ServiceState | null): ServiceState | null {
  return s === null ? null : { ...s };
}

function kubeletStatus(k: KubeletStatus): KubeletObjectStatus {
  return { ...probeFields(k), service: copyService(k.service) };
}

function containerdStatus(r: RuntimeStatus): ContainerdObjectStatus {
  return {
    ...probeFields(r),
    runtimeName: r.runtimeName,
    runtimeApiVersion: r.runtimeApiVersion,
    conditions: r.conditions.map((c) => ({ type: c.type, status: c.status, reason: c.reason, message: c.message })),
    service: copyService(r.service),
  };
}

function cniStatus(c: CniStatus): CniObjectStatus {
  return {
    ...probeFields(c),
    configFile: c.configFile,
    networkName: c.networkName,
    cniVersion: c.cniVersion,
    plugins: c.plugins.map((p) => ({
      type: p.type,
      binary: p.binary,
      ...versionFields(p.version),
      supportedVersions: [...p.supportedVersions],
    })),
  };
}

function hostStatus(h: HostStatus): HostObjectStatus {
  return {
    health: h.health,
    reason: h.reason,
    message: h.message,
    observedAt: h.observedAt,
    os: h.os,
    kernel: h.kernel,
    arch: h.arch,
    cpus: h.cpus,
    memory: { totalBytes: h.memoryTotalBytes, availableBytes: h.memoryAvailableBytes },
    uptimeSeconds: h.uptimeSeconds,
    disks: h.disks.map((d) => ({ path: d.path, totalBytes: d.totalBytes, usedBytes: d.usedBytes, usedPercent: d.usedPercent })),
    pressure: { disk: h.pressure.disk, memory: h.pressure.memory, pid: h.pressure.pid },
    ...(h.bootId === undefined ? {} : { bootId: h.bootId }),
    ...(h.newestKernel === undefined ? {} : { newestKernel: h.newestKernel }),
    ...(h.reboot === undefined ? {} : { reboot: { required: h.reboot.required, reasons: [...h.reboot.reasons] } }),
    ...(h.readOnlyMounts === undefined ? {} : { readOnlyMounts: [...h.readOnlyMounts] }),
  };
}

/**
 * A Machine record as a Kubernetes-style object. `now` is accepted so callers pass
 * the coordinator's clock in one place; the object itself carries absolute times only,
 * and clients compute ages on their side, as kubectl does.
 */
export function toMachineObject(record: MachineRecord, now: number, meta?: ObjectMeta | null): MachineObject {
  if (!Number.isFinite(now)) throw new RangeError(`now must be a finite number, got ${now}`);
  const report = record.report;
  const labels = { ...record.labels };
  const status: Record<string, unknown> = {
    phase: record.liveness.state,
    phaseReason: record.liveness.reason,
    phaseMessage: record.liveness.message,
    phaseTransitionTime: rfc3339(record.liveness.since),
    lastSeenTime: rfc3339OrNull(record.lastSeenAt),
    lastReportTime: rfc3339OrNull(record.reportChangedAt),
    agentVersion: record.agentVersion,
    ...(meta == null ? {} : { observedGeneration: meta.generation }),
    conditions: record.conditions.map((c) => ({
      type: c.type,
      status: c.status,
      reason: c.reason,
      message: c.message,
      lastTransitionTime: rfc3339(c.lastTransitionTime),
      ...(meta == null ? {} : { observedGeneration: meta.generation }),
    })),
  };
  if (report !== null) {
    status['kubelet'] = kubeletStatus(report.kubelet);
    status['containerd'] = containerdStatus(report.runtime);
    status['cni'] = cniStatus(report.cni);
    status['host'] = hostStatus(report.host);
  }
  if (record.revokedAt !== null) {
    status['revoked'] = true;
    status['revokedTime'] = rfc3339(record.revokedAt);
  }
  return {
    apiVersion: API_VERSION,
    kind: 'Machine',
    metadata: meta == null
      ? { name: record.name, uid: record.machineId, creationTimestamp: rfc3339(record.enrolledAt), labels }
      : { name: record.name, ...apiMeta(meta), creationTimestamp: rfc3339(record.enrolledAt), labels },
    spec: {
      machineId: record.machineId,
      hostname: report?.identity.hostname ?? record.name,
      addresses: [...record.addresses],
      zone: record.zone,
      labels: { ...labels },
      ...(Object.keys(record.packageOverrides ?? {}).length === 0
        ? {}
        : { packages: Object.entries(record.packageOverrides ?? {}).map(([name, o]) => ({ name, ...o })) }),
    },
    status: status as MachineObject['status'],
  };
}

/** Machines as a MachineList, sorted by name so output is stable. */
export function toMachineList(records: readonly MachineRecord[], now: number, metas?: ReadonlyMap<string, ObjectMeta>): MachineList {
  const items = records.map((r) => toMachineObject(r, now, metas?.get(r.name) ?? null));
  items.sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0));
  return { apiVersion: API_VERSION, kind: 'MachineList', items };
}

/** An event as the API serves it. */
export function toEventObject(e: EventRecord): EventObject {
  return { id: e.id, at: rfc3339(e.at), object: e.object, type: e.type, reason: e.reason, message: e.message };
}

/** Events as an EventList, in the order given (the store returns newest last). */
export function toEventList(events: readonly EventRecord[]): EventList {
  return { kind: 'EventList', items: events.map(toEventObject) };
}

/** A bootstrap token as the API lists it. The secret is never part of it: the record has none. */
export function toTokenObject(t: TokenRecord): TokenObject {
  return tokenObject(t, null);
}

/** A bootstrap token with its object metadata and a `Usable` condition judged at `now`. */
export function tokenObject(t: TokenRecord, meta: ObjectMeta | null, now?: number): TokenObject {
  const state = t.revokedAt !== null ? 'Revoked' : now !== undefined && now >= t.expiresAt ? 'Expired' : t.used >= t.maxUses ? 'Exhausted' : 'Usable';
  return {
    ...(meta == null
      ? {}
      : {
          metadata: { name: t.id, ...apiMeta(meta) },
          status: {
            observedGeneration: meta.generation,
            // One condition, Usable: can an agent enroll with this token now?
            conditions: [{ type: 'Usable', status: state === 'Usable' ? 'True' as const : 'False' as const, reason: state, message: '', lastTransitionTime: rfc3339(t.revokedAt ?? t.createdAt) }],
          },
        }),
    id: t.id,
    description: t.description,
    createdAt: rfc3339(t.createdAt),
    expiresAt: rfc3339(t.expiresAt),
    uses: t.maxUses,
    used: t.used,
    revoked: t.revokedAt !== null,
    revokedAt: rfc3339OrNull(t.revokedAt),
  };
}

/** Tokens as a TokenList. */
export function toTokenList(tokens: readonly TokenRecord[], metas?: ReadonlyMap<string, ObjectMeta>, now?: number): TokenList {
  return { kind: 'TokenList', items: tokens.map((t) => tokenObject(t, metas?.get(t.id) ?? null, now)) };
}
