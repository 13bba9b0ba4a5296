/**
 * Store records for pure unit tests of the API objects and of nkctl's views (test
 * support; nkctl's own tests run against the real coordinator, test/nkctl*.test.ts): a
 * healthy node, one whose CNI config was deleted, one that never reported, one revoked.
 * Times are fixed so outputs can be compared; `NOW` is the clock of these records.
 */
import type { NodeReport } from '@nodekeeper/protocol';
import type { EventRecord, MachineRecord, TokenRecord } from '../store/types.ts';

export const NOW = Date.parse('2026-05-04T12:00:00.000Z');
const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

/** A full report of a healthy worker node with Debian's containerd and CNI plugins. */
export function healthyReport(hostname: string): NodeReport {
  const observedAt = new Date(NOW - 2_000).toISOString();
  return {
    identity: { machineId: `mid-${hostname}`, hostname, addresses: ['10.0.0.11'], zone: 'zone-a', labels: { role: 'worker' } },
    kubelet: {
      health: 'healthy',
      reason: 'HealthzOk',
      message: 'healthz answered ok',
      version: { raw: 'Kubernetes v1.31.2', semver: '1.31.2', source: 'binary' },
      observedAt,
      service: { unit: 'kubelet.service', manager: 'systemd', activeState: 'active', subState: 'running', restarts: 0 },
    },
    runtime: {
      health: 'healthy',
      reason: 'RuntimeReady',
      message: 'runtime and network ready',
      version: { raw: '1.6.20~ds1', semver: '1.6.20', source: 'cri' },
      observedAt,
      runtimeName: 'containerd',
      runtimeApiVersion: 'v1',
      conditions: [
        { type: 'RuntimeReady', status: true, reason: '', message: '' },
        { type: 'NetworkReady', status: true, reason: '', message: '' },
      ],
      service: null,
    },
    cni: {
      health: 'healthy',
      reason: 'ConfigValid',
      message: 'config 10-bridge.conflist valid, 3 plugins found',
      version: { raw: '1.1.1+ds1-3+b1', semver: '1.1.1', source: 'dpkg' },
      observedAt,
      configFile: '/etc/cni/net.d/10-bridge.conflist',
      networkName: 'bridge-net',
      cniVersion: '1.0.0',
      plugins: [
        { type: 'bridge', binary: '/usr/lib/cni/bridge', supportedVersions: ['0.3.1', '0.4.0', '1.0.0'], version: { raw: 'version unknown', semver: null, source: 'binary' } },
        { type: 'portmap', binary: '/usr/lib/cni/portmap', supportedVersions: ['0.3.1', '0.4.0', '1.0.0'], version: { raw: '1.1.1+ds1-3+b1', semver: '1.1.1', source: 'dpkg' } },
      ],
    },
    host: {
      health: 'healthy',
      reason: 'NoPressure',
      message: '',
      version: null,
      observedAt,
      os: 'Debian GNU/Linux 12 (bookworm)',
      kernel: '6.1.0-25-amd64',
      arch: 'x64',
      cpus: 2,
      memoryTotalBytes: 8 * 1024 ** 3,
      memoryAvailableBytes: 5 * 1024 ** 3,
      uptimeSeconds: 3 * 86_400 + 4 * 3600,
      disks: [{ path: '/var/lib/kubelet', totalBytes: 100 * 1024 ** 3, usedBytes: 42 * 1024 ** 3, usedPercent: 42 }],
      pressure: { disk: false, memory: false, pid: false },
    },
  };
}

/** A record with sensible defaults; `over` replaces any field; `now` shifts every time. */
export function machineRecord(name: string, over: Partial<MachineRecord> = {}, now = NOW): MachineRecord {
  return shift({
    name,
    machineId: `mid-${name}`,
    credentialId: `cred-${name}`,
    labels: { role: 'worker', zone: 'zone-a' },
    zone: 'zone-a',
    addresses: ['10.0.0.11'],
    enrolledAt: NOW - 4 * DAY,
    revokedAt: null,
    report: healthyReport(name),
    reportChangedAt: NOW - 5 * MIN,
    lastSeenAt: NOW - 3_000,
    liveness: { state: 'Ready', since: NOW - 4 * DAY, reason: 'AgentConnected', message: 'agent connected and heartbeating' },
    conditions: [
      { type: 'Ready', status: 'True', reason: 'AgentConnected', message: 'agent connected', lastTransitionTime: NOW - 4 * DAY },
      { type: 'KubeletHealthy', status: 'True', reason: 'HealthzOk', message: 'healthz answered ok', lastTransitionTime: NOW - 4 * DAY },
      { type: 'RuntimeHealthy', status: 'True', reason: 'RuntimeReady', message: 'runtime and network ready', lastTransitionTime: NOW - 4 * DAY },
      { type: 'CniHealthy', status: 'True', reason: 'ConfigValid', message: 'config valid', lastTransitionTime: NOW - 4 * DAY },
    ],
    agentVersion: '0.1.0',
    ...over,
  }, now);
}

/** The same record as if `now` were the clock: every time moves by now - NOW. */
function shift(r: MachineRecord, now: number): MachineRecord {
  if (now === NOW) return r;
  const d = now - NOW;
  const t = (x: number | null) => (x === null ? null : x + d);
  const iso = (s: string) => new Date(Date.parse(s) + d).toISOString();
  const report = r.report === null ? null : {
    ...r.report,
    kubelet: { ...r.report.kubelet, observedAt: iso(r.report.kubelet.observedAt) },
    runtime: { ...r.report.runtime, observedAt: iso(r.report.runtime.observedAt) },
    cni: { ...r.report.cni, observedAt: iso(r.report.cni.observedAt) },
    host: { ...r.report.host, observedAt: iso(r.report.host.observedAt) },
  };
  return {
    ...r,
    report,
    enrolledAt: r.enrolledAt + d,
    revokedAt: t(r.revokedAt),
    reportChangedAt: t(r.reportChangedAt),
    lastSeenAt: t(r.lastSeenAt),
    liveness: { ...r.liveness, since: r.liveness.since + d },
    conditions: r.conditions.map((c) => ({ ...c, lastTransitionTime: c.lastTransitionTime + d })),
  };
}

/** node-2 after its CNI config was deleted: CNI unhealthy with the reason. */
export function brokenCniRecord(name: string, now = NOW): MachineRecord {
  return shift(brokenCniAtNow(name), now);
}

function brokenCniAtNow(name: string): MachineRecord {
  const base = machineRecord(name, { labels: { role: 'worker', zone: 'zone-b' }, zone: 'zone-b', addresses: ['10.0.0.12'] });
  const report = healthyReport(name);
  return {
    ...base,
    report: {
      ...report,
      cni: {
        ...report.cni,
        health: 'unhealthy',
        reason: 'NoNetworkConfig',
        message: 'no network config found in /etc/cni/net.d',
        version: null,
        configFile: null,
        networkName: null,
        cniVersion: null,
        plugins: [],
      },
      // An agent that reports its boot facts: a newer kernel waits for a reboot.
      host: {
        ...report.host,
        bootId: '0f6c2a33-1111-4222-8333-444455556666',
        newestKernel: '6.1.0-26-amd64',
        reboot: { required: true, reasons: ['/var/run/reboot-required exists (packages: linux-image-6.1.0-26-amd64)', 'running kernel 6.1.0-25-amd64, newest installed 6.1.0-26-amd64'] },
        readOnlyMounts: ['/var/lib/containerd'],
      },
    },
    conditions: base.conditions.map((c) =>
      c.type === 'CniHealthy'
        ? { ...c, status: 'False' as const, reason: 'NoNetworkConfig', message: 'no network config found in /etc/cni/net.d', lastTransitionTime: NOW - 2 * MIN }
        : c,
    ),
  };
}

/** A machine that enrolled but never reported. */
export function pendingRecord(name: string, now = NOW): MachineRecord {
  return machineRecord(name, {
    report: null,
    reportChangedAt: null,
    lastSeenAt: null,
    liveness: { state: 'Pending', since: NOW - 30_000, reason: 'NoReportYet', message: 'enrolled, waiting for the first report' },
    conditions: [],
    agentVersion: null,
    enrolledAt: NOW - 30_000,
  }, now);
}

export function revokedRecord(name: string, now = NOW): MachineRecord {
  return machineRecord(name, {
    revokedAt: NOW - HOUR,
    liveness: { state: 'Unknown', since: NOW - HOUR, reason: 'Revoked', message: 'credential revoked' },
    lastSeenAt: NOW - HOUR,
  }, now);
}

/** Events of node-2, shifted to `now`. */
export function eventsAt(now: number): EventRecord[] {
  return events.map((e) => ({ ...e, at: e.at + now - NOW }));
}

/** Tokens, shifted to `now`. */
export function tokensAt(now: number): TokenRecord[] {
  return tokens.map((t) => ({ ...t, createdAt: t.createdAt + now - NOW, expiresAt: t.expiresAt + now - NOW }));
}

export const events: readonly EventRecord[] = [
  { id: 1, at: NOW - 4 * DAY, object: 'machine/node-2', type: 'Normal', reason: 'Enrolled', message: 'enrolled with token abcdef' },
  { id: 7, at: NOW - 2 * MIN, object: 'machine/node-2', type: 'Warning', reason: 'CniUnhealthy', message: 'no network config found in /etc/cni/net.d' },
];

export const tokens: readonly TokenRecord[] = [
  { id: 'abcdef', description: 'rack 12', createdAt: NOW - HOUR, expiresAt: NOW + 23 * HOUR, maxUses: 10, used: 3, revokedAt: null },
  { id: 'zyxwvu', description: '', createdAt: NOW - 2 * DAY, expiresAt: NOW - DAY, maxUses: 1, used: 0, revokedAt: null },
];
