/**
 * One simulated member's machines for bench/host-scale.ts, built the way the coordinator
 * builds them: a NodeReport per machine (the fleet simulator's realistic report), its
 * liveness judged by the real `nextLiveness`, its conditions by the real
 * `deriveConditions`, the API object by the real `toMachineObject`, plus the status
 * extras app.ts adds (the member Node's readiness, the remediation summary). What the
 * HostSync reads through `machines()` is therefore what a real coordinator would hand it.
 *
 * Churn: fault episodes start at `faultsPerMinute` (a share of the machines per minute);
 * each one makes the kubelet unhealthy (the machine goes NotReady, its conditions move)
 * and recovers after `faultSeconds`. Every machine's heartbeat (`lastSeenAt`) and its
 * probe times move on every read, as they do in the product; a `pressureShare` of machines
 * is under memory pressure, with its available memory moving at every probe.
 */
import type { NodeReport } from '@nodekeeper/protocol';
import { deriveConditions, nodeHealth } from '../../coordinator/src/fleet/conditions.ts';
import { defaultLivenessConfig, nextLiveness } from '../../coordinator/src/fleet/liveness.ts';
import type { MachineRecord } from '../../coordinator/src/model/machine.ts';
import { toMachineObject, type MachineObject as Machine } from '../../coordinator/src/api/objects.ts';
import { summarizePackages } from '../../coordinator/src/packages/cluster-package-version.ts';
import type { ClusterStatusInput } from '../../coordinator/src/host/cluster-status.ts';
import { initialReport } from '../sim/sim-agent.ts';
import { prng } from '../../coordinator/src/testing/prng.ts';

export interface FleetChurn {
  /** Fault episodes started per minute, as a share of the machines (0.01: 1 % a minute). */
  readonly faultsPerMinute: number;
  /** How long a fault lasts before the machine is healthy again. */
  readonly faultSeconds: number;
  /** Share of machines under memory pressure (their available memory moves every probe). */
  readonly pressureShare: number;
  /** The agents' probe interval: how often probe times and free memory move. */
  readonly probeIntervalMs: number;
}

interface SimMachine {
  record: MachineRecord;
  /** When the current fault ends, or null when healthy. */
  faultUntil: number | null;
  readonly pressured: boolean;
}

const ZONES = ['eu-west-1a', 'eu-west-1b', 'eu-west-1c'];
const POOLS = ['general', 'general', 'general', 'compute', 'memory'];
const INSTANCE = { general: 'm6i.2xlarge', compute: 'c6i.4xlarge', memory: 'r6i.2xlarge' } as const;

export class MemberFleet {
  readonly cluster: string;
  readonly #machines: SimMachine[] = [];
  readonly #churn: FleetChurn;
  readonly #random: () => number;
  readonly #startedAt: number;
  #owed = 0;
  #lastChurn: number;
  /** Status changes made so far (fault starts and recoveries). */
  changes = 0;

  constructor(cluster: string, n: number, churn: FleetChurn, seed: number, now: number) {
    this.cluster = cluster;
    this.#churn = churn;
    this.#random = prng(seed);
    this.#startedAt = now - 86_400_000;
    this.#lastChurn = now;
    for (let i = 0; i < n; i++) this.#machines.push(this.#make(i, now));
  }

  #make(i: number, now: number): SimMachine {
    const name = `${this.cluster}-node-${String(i).padStart(5, '0')}`;
    const zone = ZONES[i % ZONES.length]!;
    const pool = POOLS[i % POOLS.length] as keyof typeof INSTANCE;
    // A rollout half-way: a fifth of the kubelets already at the next patch release.
    const kubeletVersion = i % 5 === 0 ? 'v1.35.3' : 'v1.35.2';
    const base = initialReport({ name, machineId: machineId(this.cluster, i), credential: '', zone, kubeletVersion }, new Date(now));
    const labels = {
      'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64',
      'topology.kubernetes.io/region': 'eu-west-1', 'topology.kubernetes.io/zone': zone,
      'node.kubernetes.io/instance-type': INSTANCE[pool], 'nodekeeper.io/pool': pool, 'team.example.com/owner': `team-${i % 7}`,
    };
    const octets = `${10 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;
    const report: NodeReport = { ...base, identity: { ...base.identity, labels, addresses: [`10.${octets}`, `fd00::${i.toString(16)}`] } };
    const pressured = this.#random() < this.#churn.pressureShare;
    const record: MachineRecord = {
      name, machineId: report.identity.machineId, credentialId: `cred-${i}`, labels, zone, addresses: report.identity.addresses,
      enrolledAt: this.#startedAt, revokedAt: null, report, reportChangedAt: this.#startedAt, lastSeenAt: now,
      liveness: { state: 'Pending', since: this.#startedAt, reason: 'AwaitingFirstReport', message: '' }, conditions: [], agentVersion: '0.9.0',
    };
    const m: SimMachine = { record, faultUntil: null, pressured };
    this.#judge(m, pressured ? withPressure(report, this.#random) : report, now);
    return m;
  }

  /** Sets the report, then liveness and conditions as the fleet view derives them. */
  #judge(m: SimMachine, report: NodeReport, now: number): void {
    const r = m.record;
    const health = nodeHealth(report);
    const liveness = nextLiveness(r.liveness, {
      now, lastMessageAt: now, contactSince: this.#startedAt, nodeHealthy: health.healthy, nodeReason: health.reason, nodeMessage: health.message,
    }, defaultLivenessConfig);
    m.record = { ...r, report, liveness, conditions: deriveConditions(r.conditions, report, liveness, now), lastSeenAt: now };
  }

  /** Starts and ends fault episodes for the time since the last call; returns how many changed. */
  churn(now: number): number {
    let changed = 0;
    for (const m of this.#machines) {
      if (m.faultUntil !== null && now >= m.faultUntil) {
        m.faultUntil = null;
        this.#judge(m, kubelet(m.record.report!, true), now);
        changed += 1;
      }
    }
    this.#owed += ((now - this.#lastChurn) / 60_000) * this.#churn.faultsPerMinute * this.#machines.length;
    this.#lastChurn = now;
    for (; this.#owed >= 1; this.#owed -= 1) {
      const m = this.#machines[Math.floor(this.#random() * this.#machines.length)]!;
      if (m.faultUntil !== null) continue;
      m.faultUntil = now + this.#churn.faultSeconds * 1000;
      this.#judge(m, kubelet(m.record.report!, false), now);
      changed += 1;
    }
    // Volatile facts move at every probe: probe times, and free memory of pressured nodes.
    const at = new Date(now).toISOString();
    for (const m of this.#machines) {
      const r = m.record.report!;
      if (now - Date.parse(r.host.observedAt) < this.#churn.probeIntervalMs) continue;
      const moved: NodeReport = {
        ...r, kubelet: { ...r.kubelet, observedAt: at }, runtime: { ...r.runtime, observedAt: at }, cni: { ...r.cni, observedAt: at },
        host: { ...r.host, observedAt: at, uptimeSeconds: r.host.uptimeSeconds + this.#churn.probeIntervalMs / 1000 },
      };
      this.#judge(m, m.pressured ? withPressure(moved, this.#random) : moved, now);
    }
    this.changes += changed;
    return changed;
  }

  /** What the coordinator's `machineObjects()` returns (app.ts): the API object plus status extras. */
  machines(now: number): Machine[] {
    return this.#machines.map(({ record }) => {
      const o = toMachineObject({ ...record, lastSeenAt: now }, now);
      const ready = record.liveness.state === 'Ready';
      return {
        ...o,
        status: {
          ...o.status,
          node: { name: record.name, ready: ready ? 'True' : 'False', unschedulable: false, providerID: `aws:///${record.zone}/i-${record.machineId.slice(0, 17)}` },
          remediation: ready ? { phase: 'Idle', reason: 'NoFault', rule: null, step: null, cordoned: false } : { phase: 'Running', reason: 'KubeletUnhealthy', rule: 'kubelet-sick', step: 0, cordoned: false },
        },
      } as Machine;
    });
  }

  /** The Cluster status inputs besides the machines (app.ts's statusInput). */
  statusInput(): Omit<ClusterStatusInput, 'machines'> {
    const records = this.#machines.map((m) => m.record);
    const ready = records.filter((r) => r.liveness.state === 'Ready').length;
    const faulty = records.length - ready;
    return {
      connected: records.length, packages: summarizePackages(null, records), rolloutPhases: ['Completed', 'Progressing'],
      remediation: { active: faulty, needsHuman: 0, guard: 'none' }, kubernetesVersion: 'v1.36.3', nodesReady: ready, memberApiError: null,
      coordinatorVersion: '0.9.0',
    };
  }
}

function machineId(cluster: string, i: number): string {
  let h = 2166136261;
  for (const c of `${cluster}/${i}`) h = Math.imul(h ^ c.charCodeAt(0), 16777619) >>> 0;
  return (h.toString(16).padStart(8, '0') + i.toString(16).padStart(8, '0')).repeat(2);
}

function kubelet(r: NodeReport, healthy: boolean): NodeReport {
  const k = r.kubelet;
  return {
    ...r,
    kubelet: healthy
      ? { ...k, health: 'healthy', reason: 'HealthzOk', message: 'http://127.0.0.1:10248/healthz answered ok' }
      : { ...k, health: 'unhealthy', reason: 'HealthzRefused', message: 'http://127.0.0.1:10248/healthz: connect ECONNREFUSED 127.0.0.1:10248; is the kubelet running?' },
  };
}

/** Memory pressure with free memory wandering around 1.5 GiB of 32. */
function withPressure(r: NodeReport, random: () => number): NodeReport {
  const available = Math.round((1.0 + random()) * 2 ** 30);
  return { ...r, host: { ...r.host, health: 'unhealthy', reason: 'MemoryPressure', memoryAvailableBytes: available, pressure: { ...r.host.pressure, memory: true } } };
}
