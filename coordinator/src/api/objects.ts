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
import {
  API_VERSION,
  type ContainerdObjectStatus, type CniObjectStatus, type Event, type EventList, type HostObjectStatus, type KubeletObjectStatus,
  type Machine, type MachineList, type ProbeFields, type Token, type TokenList, type VersionFields,
} from '@nodekeeper/api';
import type { EventRecord, MachineRecord, TokenRecord } from '../store/types.ts';
import type { ObjectMeta } from '../store/object-meta.ts';
import { apiMeta } from './object-meta.ts';

// The shapes are the contract's (@nodekeeper/api); this file builds them from records.
export { API_VERSION };
/** The contract's Machine, under its older name (host/host-sync.ts still says MachineObject). */
export type MachineObject = Machine;

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
export function toMachineObject(record: MachineRecord, now: number, meta?: ObjectMeta | null): Machine {
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
    status: status as Machine['status'],
  };
}

/** Machines as a MachineList, sorted by name so output is stable. */
export function toMachineList(records: readonly MachineRecord[], now: number, metas?: ReadonlyMap<string, ObjectMeta>): MachineList {
  const items = records.map((r) => toMachineObject(r, now, metas?.get(r.name) ?? null));
  items.sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0));
  return { apiVersion: API_VERSION, kind: 'MachineList', items };
}

/** An event as the API serves it. */
export function toEventObject(e: EventRecord): Event {
  return { id: e.id, at: rfc3339(e.at), object: e.object, type: e.type, reason: e.reason, message: e.message };
}

/** Events as an EventList, in the order given (the store returns newest last). */
export function toEventList(events: readonly EventRecord[]): EventList {
  return { kind: 'EventList', items: events.map(toEventObject) };
}

/** A bootstrap token as the API lists it. The secret is never part of it: the record has none. */
export function toTokenObject(t: TokenRecord): Token {
  return tokenObject(t, null);
}

/** A bootstrap token with its object metadata and a `Usable` condition judged at `now`. */
export function tokenObject(t: TokenRecord, meta: ObjectMeta | null, now?: number): Token {
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
