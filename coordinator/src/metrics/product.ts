/**
 * Product metrics: what the fleet, rollouts, remediation, packages, the host link and the
 * certificates look like now, computed at scrape time from in-memory views (the fleet
 * view, the controllers' state, one row for the ClusterPackageVersion), never from a scan
 * of a table. The series are computed once per scrape (productSeries, pure) and shared
 * by the gauges. Label values are bounded: phases, condition and fault types, package
 * names and versions, rollout names; never a machine name.
 */
import { Gauge } from 'prom-client';
import { toSemver } from '@nodekeeper/common';
import type { MachineRecord } from '../model/machine.ts';
import type { ClusterPackageVersionRecord } from '../model/packages.ts';
import { summarizePackages } from '../packages/cluster-package-version.ts';
import type { Metrics } from '../metrics.ts';
import { ROLLOUT_PHASES, type RolloutCounters } from '../rollout/types.ts';
import { REMEDIATION_PHASES } from '../remediation/types.ts';

/** A rollout as the metrics see it. */
export interface RolloutSummary {
  readonly name: string;
  readonly phase: string;
  /** Why it is in that phase: a CamelCase reason from the planner (Aborted, FailureThreshold, ...). */
  readonly reason: string;
  /** When the phase last changed (coordinator clock, ms). */
  readonly since: number;
  readonly counters: RolloutCounters;
}

/** Where the product metrics read from; each read is of memory (or one small row). */
export interface ProductSources {
  /** The coordinator's clock (rollout times are on it). */
  readonly clock: () => number;
  /** Wall clock, ms (host sync times, certificate ends). */
  readonly wallClock: () => number;
  readonly machines: () => Iterable<MachineRecord>;
  /** A machine's faults that are not Clear. */
  readonly faults: (machine: string) => readonly { readonly type: string; readonly status: string }[];
  /** The remediation phase of every machine remediation keeps state for. */
  readonly remediationPhases: () => Iterable<string>;
  /** The remediation guard in force: none, paused, dry-run, storm, partition. */
  readonly guard: () => string;
  readonly rollouts: () => readonly RolloutSummary[];
  readonly desired: () => ClusterPackageVersionRecord | null;
  /** Null when not registered with a host; times are wall-clock ms. */
  readonly host: () => { readonly lastSync: number | null; readonly lastLease: number | null } | null;
  /** When the serving certificate and the CA end (wall-clock ms); null without TLS. */
  readonly certificates: () => { readonly serving: number; readonly ca: number | null } | null;
  /** The scheduled backups' interval, or null when none are scheduled. */
  readonly backupIntervalSeconds: number | null;
  /** What /readyz answers: 200 (true) or 503. */
  readonly ready: () => boolean;
  /** When this coordinator started (wall-clock ms): the age of a host link not yet synced. */
  readonly startedAt: number;
}

type Labels = Record<string, string>;
export interface Sample {
  readonly labels: Labels;
  readonly value: number;
}
export type Series = Readonly<Record<string, readonly Sample[]>>;

/** Finished rollouts leave the per-rollout series this long after their last phase change. */
export const FINISHED_ROLLOUT_KEEP_MS = 3_600_000;
const FINISHED = new Set(['Completed', 'RolledBack']);

const LIVENESS_STATES = ['Pending', 'Ready', 'NotReady', 'Unknown'];
/**
 * Versions of one package exposed one by one; the rarer rest is summed as version
 * "other". Agents report versions, so without this a fleet reporting odd strings would
 * make one series per machine.
 */
export const MAX_VERSIONS_PER_PACKAGE = 20;
/** RolloutCounters keys -> the `state` label (snake_case, as label values are). */
const ROLLOUT_MACHINE_STATES: Readonly<Record<keyof RolloutCounters, string | null>> = {
  total: null,
  waiting: 'waiting', inProgress: 'in_progress', succeeded: 'succeeded', failed: 'failed', rollingBack: 'rolling_back', rolledBack: 'rolled_back', skipped: 'skipped',
};

/** Counts one (type, status) pair; a plain string key: this runs for every condition of every machine. */
function counted(keys: Map<string, { labels: Labels; value: number }>, type: string, status: string): void {
  const key = `${type}\u0000${status}`;
  const e = keys.get(key);
  if (e === undefined) keys.set(key, { labels: { type, status }, value: 1 });
  else e.value += 1;
}

/** Every product series, from the sources, now. Pure but for what the sources read. */
export function productSeries(s: ProductSources): Series {
  const machines = [...s.machines()];
  const liveness = new Map(LIVENESS_STATES.map((state) => [state, 0]));
  const conditions = new Map<string, { labels: Labels; value: number }>();
  const faults = new Map<string, { labels: Labels; value: number }>();
  for (const m of machines) {
    liveness.set(m.liveness.state, (liveness.get(m.liveness.state) ?? 0) + 1);
    for (const c of m.conditions) counted(conditions, c.type, c.status);
    for (const f of s.faults(m.name)) counted(faults, f.type, f.status);
  }
  const remediation = new Map<string, number>(REMEDIATION_PHASES.map((p) => [p, 0]));
  for (const p of s.remediationPhases()) remediation.set(p, (remediation.get(p) ?? 0) + 1);
  const guard = s.guard();

  const rollouts = s.rollouts();
  const byPhase = new Map<string, number>(ROLLOUT_PHASES.map((p) => [p, 0]));
  const info: Sample[] = [];
  const progress: Sample[] = [];
  const now = s.clock();
  for (const r of rollouts) {
    byPhase.set(r.phase, (byPhase.get(r.phase) ?? 0) + 1);
    if (FINISHED.has(r.phase) && now - r.since > FINISHED_ROLLOUT_KEEP_MS) continue;
    info.push({ labels: { rollout: r.name, phase: r.phase, reason: r.reason }, value: 1 });
    for (const [key, state] of Object.entries(ROLLOUT_MACHINE_STATES) as Array<[keyof RolloutCounters, string | null]>) {
      if (state !== null) progress.push({ labels: { rollout: r.name, state }, value: r.counters[key] });
    }
  }

  const cpv = s.desired();
  const versions: Sample[] = [];
  const reporting: Sample[] = [];
  const atDesired: Sample[] = [];
  for (const p of summarizePackages(cpv, machines)) {
    const byCount = Object.entries(p.versions).sort(([va, a], [vb, b]) => b - a || va.localeCompare(vb));
    for (const [version, n] of byCount.slice(0, MAX_VERSIONS_PER_PACKAGE)) versions.push({ labels: { package: p.name, version }, value: n });
    const rest = byCount.slice(MAX_VERSIONS_PER_PACKAGE).reduce((sum, [, n]) => sum + n, 0);
    if (rest > 0) versions.push({ labels: { package: p.name, version: 'other' }, value: rest });
    reporting.push({ labels: { package: p.name }, value: p.machines });
    if (p.desiredVersion !== null) {
      atDesired.push({ labels: { package: p.name }, value: p.atDesired });
    }
  }
  const desiredInfo = (cpv?.packages ?? []).map((p) => ({ labels: { package: p.name, version: toSemver(p.version) ?? p.version }, value: 1 }));

  const wall = s.wallClock();
  const host = s.host();
  const age = (at: number | null) => Math.max(0, (wall - (at ?? s.startedAt)) / 1000);
  const certs = s.certificates();
  const list = (m: Map<string, { labels: Labels; value: number }>) => [...m.values()].map((e) => ({ labels: e.labels, value: e.value }));
  return {
    nodekeeper_machines: [...liveness].map(([state, value]) => ({ labels: { state }, value })),
    nodekeeper_machine_conditions: list(conditions),
    nodekeeper_faults: list(faults),
    nodekeeper_remediation_machines: [...remediation].map(([phase, value]) => ({ labels: { phase }, value })),
    nodekeeper_remediation_guard_active: ['storm', 'partition'].map((g) => ({ labels: { guard: g }, value: guard === g ? 1 : 0 })),
    nodekeeper_rollouts: [...byPhase].map(([phase, value]) => ({ labels: { phase }, value })),
    nodekeeper_rollout_info: info,
    nodekeeper_rollout_machines: progress,
    nodekeeper_package_machines: versions,
    nodekeeper_package_reporting_machines: reporting,
    nodekeeper_package_desired_machines: atDesired,
    nodekeeper_package_desired_info: desiredInfo,
    nodekeeper_cluster_package_version_generation: cpv === null ? [] : [{ labels: {}, value: cpv.generation }],
    nodekeeper_host_registered: [{ labels: {}, value: host === null ? 0 : 1 }],
    nodekeeper_host_sync_age_seconds: host === null ? [] : [{ labels: {}, value: age(host.lastSync) }],
    nodekeeper_host_lease_age_seconds: host === null ? [] : [{ labels: {}, value: age(host.lastLease) }],
    nodekeeper_tls_certificate_expiry_timestamp_seconds: certs === null ? [] : [
      { labels: { certificate: 'serving' }, value: Math.floor(certs.serving / 1000) },
      ...(certs.ca === null ? [] : [{ labels: { certificate: 'ca' }, value: Math.floor(certs.ca / 1000) }]),
    ],
    nodekeeper_backup_schedule_interval_seconds: s.backupIntervalSeconds === null ? [] : [{ labels: {}, value: s.backupIntervalSeconds }],
    nodekeeper_coordinator_ready: [{ labels: {}, value: s.ready() ? 1 : 0 }],
  };
}

/** Help and label names of each product metric (all gauges). */
export const PRODUCT_METRICS: Readonly<Record<keyof ReturnType<typeof productSeries> & string, { help: string; labels: readonly string[] }>> = {
  nodekeeper_machines: { help: 'Enrolled machines by liveness state (Pending, Ready, NotReady, Unknown)', labels: ['state'] },
  nodekeeper_machine_conditions: { help: 'Machines by condition type and status (True, False, Unknown)', labels: ['type', 'status'] },
  nodekeeper_faults: { help: 'Machines with a fault that is not Clear, by fault type and status (Pending, Active, Clearing)', labels: ['type', 'status'] },
  nodekeeper_remediation_machines: { help: 'Machines remediation keeps state for, by phase (Idle, Running, NeedsHuman)', labels: ['phase'] },
  nodekeeper_remediation_guard_active: { help: 'Whether remediation\'s storm guard holds, by guard (storm; partition: a suspected partition, rollouts hold too)', labels: ['guard'] },
  nodekeeper_rollouts: { help: 'Rollouts the coordinator keeps, by phase', labels: ['phase'] },
  nodekeeper_rollout_info: { help: 'One series per rollout (Completed and RolledBack ones for an hour after they finished), value 1, with its phase and the reason for it', labels: ['rollout', 'phase', 'reason'] },
  nodekeeper_rollout_machines: { help: 'Machines of a rollout by state (waiting, in_progress, succeeded, failed, rolling_back, rolled_back, skipped); their sum is the rollout\'s machines', labels: ['rollout', 'state'] },
  nodekeeper_package_machines: { help: 'Machines by the version of a package they run (as their agents report it; past the 20 most common versions of a package, version="other")', labels: ['package', 'version'] },
  nodekeeper_package_reporting_machines: { help: 'Machines that report a version of the package', labels: ['package'] },
  nodekeeper_package_desired_machines: { help: 'Machines that run the ClusterPackageVersion\'s desired version of the package (packages with a desired version only)', labels: ['package'] },
  nodekeeper_package_desired_info: { help: 'The ClusterPackageVersion\'s desired version of each package, value 1', labels: ['package', 'version'] },
  nodekeeper_cluster_package_version_generation: { help: 'The ClusterPackageVersion\'s generation (absent before one is applied)', labels: [] },
  nodekeeper_host_registered: { help: 'Whether the coordinator is registered with a host cluster', labels: [] },
  nodekeeper_host_sync_age_seconds: { help: 'Seconds since the last successful sync with the host (since start when none yet; absent when not registered)', labels: [] },
  nodekeeper_host_lease_age_seconds: { help: 'Seconds since the host Lease was last renewed (since start when not yet; absent when not registered)', labels: [] },
  nodekeeper_tls_certificate_expiry_timestamp_seconds: { help: 'When the serving certificate and the CA stop being valid (Unix time; absent with --insecure; no ca series for operator-provided files without one)', labels: ['certificate'] },
  nodekeeper_backup_schedule_interval_seconds: { help: 'Time between scheduled backups (absent when none are scheduled)', labels: [] },
  nodekeeper_coordinator_ready: { help: 'What /readyz says: 1 ready, 0 not (the store refuses writes)', labels: [] },
};

/**
 * A gauge whose samples are exactly those of the current series: a label set that is
 * gone (a rollout forgotten, a version no machine runs) is gone from the exposition,
 * and a metric with no sample (not registered with a host) is absent, not 0, which a
 * prom-client Gauge cannot say once it was reset.
 */
class SeriesGauge extends Gauge {
  readonly #samples: () => readonly Sample[];
  constructor(name: string, help: string, labelNames: readonly string[], metrics: Metrics, samples: () => readonly Sample[]) {
    super({ name, help, labelNames: [...labelNames], registers: [metrics.registry] });
    this.#samples = samples;
  }

  override async get() {
    // Read before the first await: the series are shared within one synchronous pass.
    const values = this.#samples().map((s) => ({ labels: s.labels, value: s.value }));
    return { ...(await super.get()), values };
  }
}

/** Registers the product gauges; one productSeries() per scrape feeds them all. */
export function registerProductMetrics(metrics: Metrics, sources: ProductSources): void {
  let current: Series | null = null;
  // prom-client asks every metric in one synchronous pass per scrape: compute once,
  // forget after the pass, so the next scrape sees fresh state.
  const series = (): Series => {
    if (current === null) {
      current = productSeries(sources);
      queueMicrotask(() => (current = null));
    }
    return current;
  };
  for (const [name, { help, labels }] of Object.entries(PRODUCT_METRICS)) {
    new SeriesGauge(name, help, labels, metrics, () => series()[name] ?? []);
  }
}
