/**
 * One simulated agent: the agent's own connection code (CoordinatorConnection: backoff
 * with full jitter, Retry-After, watchdog) and its own delta rule (reportDelta), with the
 * probes replaced by a report that changes at a configured rate, and installs that take a
 * configured time and fail at a configured rate. Frames are the protocol's own types,
 * encoded by the connection, so the coordinator cannot tell it from a real agent.
 */
import type { SecureContext } from 'node:tls';
import type { Logger } from '@nodekeeper/common';
import { CommandKind, type Command, type CoordinatorMessage, type NodeReport } from '@nodekeeper/protocol';
import { CoordinatorConnection } from '../../agent/src/connection.ts';
import { reportDelta } from '../../agent/src/report-diff.ts';

export interface SimProfile {
  /** How often the simulated probes run (the agent's --probe-interval). */
  readonly probeIntervalMs: number;
  /** Chance that a probe finds something an operator cares about changed (a report delta). */
  readonly changeRate: number;
  /** Share of agents whose kubelet is unhealthy throughout. */
  readonly unhealthyShare: number;
  /** Share of agents whose kubelet flips between healthy and unhealthy every flapPeriodMs. */
  readonly flappingShare: number;
  readonly flapPeriodMs: number;
  /** Share of agents that go silent (keep the socket, send nothing) after silentAfterMs. */
  readonly silentShare: number;
  readonly silentAfterMs: number;
  /** How long an install takes, and the share of installs that fail and roll back. */
  readonly installMs: number;
  readonly installFailRate: number;
}

export const defaultProfile: SimProfile = {
  probeIntervalMs: 10_000,
  changeRate: 0.01,
  unhealthyShare: 0,
  flappingShare: 0,
  flapPeriodMs: 60_000,
  silentShare: 0,
  silentAfterMs: 60_000,
  installMs: 2000,
  installFailRate: 0,
};

export interface SimAgentSpec {
  readonly name: string;
  readonly machineId: string;
  readonly credential: string;
  readonly zone: string;
  readonly kubeletVersion: string;
}

export type Role = 'healthy' | 'unhealthy' | 'flapping' | 'silent';

/** What the agent tells its host process. */
export interface SimEvents {
  framesSent(n: number): void;
  command(name: string, cmd: Command, receivedAt: number): void;
  /** A connection was welcomed: over wss, whether its TLS handshake resumed a session. */
  welcomed?(tlsResumed: boolean | null): void;
}

const semverOf = (v: string) => v.replace(/^v/, '');

export function initialReport(spec: SimAgentSpec, now: Date): NodeReport {
  const at = now.toISOString();
  const v = semverOf(spec.kubeletVersion);
  return {
    identity: { machineId: spec.machineId, hostname: spec.name, addresses: ['10.0.0.1'], zone: spec.zone, labels: { 'nodekeeper.io/pool': 'sim', 'topology.kubernetes.io/zone': spec.zone } },
    kubelet: { health: 'healthy', reason: 'HealthzOk', message: 'ok', version: { raw: `Kubernetes v${v}`, semver: v, source: 'binary' }, observedAt: at, service: { unit: 'kubelet.service', manager: 'systemd', activeState: 'active', subState: 'running', restarts: 0 } },
    runtime: {
      health: 'healthy', reason: 'RuntimeReady', message: '', observedAt: at,
      version: { raw: '2.1.4~ds1-1', semver: '2.1.4', source: 'cri' }, runtimeName: 'containerd', runtimeApiVersion: 'v1',
      conditions: [{ type: 'RuntimeReady', status: true, reason: '', message: '' }, { type: 'NetworkReady', status: true, reason: '', message: '' }],
      service: { unit: 'containerd.service', manager: 'systemd', activeState: 'active', subState: 'running', restarts: 0 },
    },
    cni: {
      health: 'healthy', reason: 'ConfigValid', message: '', observedAt: at, version: { raw: '1.6.2', semver: '1.6.2', source: 'binary' },
      configFile: '/etc/cni/net.d/10-containerd-net.conflist', networkName: 'containerd-net', cniVersion: '1.0.0',
      plugins: ['bridge', 'host-local', 'portmap'].map((type) => ({ type, binary: `/opt/cni/bin/${type}`, supportedVersions: ['0.3.1', '0.4.0', '1.0.0', '1.1.0'], version: { raw: 'v1.6.2', semver: '1.6.2', source: 'binary' } })),
    },
    host: {
      health: 'healthy', reason: 'NoPressure', message: '', observedAt: at, version: null, os: 'Debian GNU/Linux 13 (trixie)', kernel: '6.12.48+deb13-amd64', arch: 'x64',
      cpus: 8, memoryTotalBytes: 32 * 1024 ** 3, memoryAvailableBytes: 20 * 1024 ** 3, uptimeSeconds: 86_400,
      disks: [{ path: '/', usedPercent: 41, usedBytes: 41 * 1024 ** 3, totalBytes: 100 * 1024 ** 3 }], pressure: { disk: false, memory: false, pid: false },
    },
  };
}

export class SimAgent {
  readonly spec: SimAgentSpec;
  readonly role: Role;
  private readonly profile: SimProfile;
  private readonly events: SimEvents;
  private readonly connection: CoordinatorConnection;
  private readonly random: () => number;
  private report: NodeReport;
  private sent: NodeReport | null = null;
  private seq = 0;
  private probeCount = 0;
  private startedAt = 0;
  private probeTimer: NodeJS.Timeout | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private readonly installing = new Set<string>();

  constructor(spec: SimAgentSpec, role: Role, profile: SimProfile, opts: { server: string; caPem: string | null; secureContext?: SecureContext; localAddress: string; log: Logger; random: () => number; events: SimEvents }) {
    this.spec = spec;
    this.role = role;
    this.profile = profile;
    this.events = opts.events;
    this.random = opts.random;
    this.report = initialReport(spec, new Date());
    if (role === 'unhealthy') this.setKubeletHealth(false);
    this.connection = new CoordinatorConnection({
      server: opts.server,
      credential: () => spec.credential,
      // wss with the pinned CA, as real agents (bench/fleet.ts --tls), or plain ws.
      caPem: opts.caPem,
      ...(opts.secureContext === undefined ? {} : { secureContext: opts.secureContext }),
      backoff: { baseMs: 500, capMs: 30_000 },
      log: opts.log,
      localAddress: opts.localAddress,
      random: opts.random,
      hello: async () => ({ type: 'hello', minProtocolVersion: 1, maxProtocolVersion: 1, agentVersion: 'sim-0.1.0', identity: this.report.identity }),
      onReady: (welcome) => this.onReady(welcome.heartbeatIntervalMs),
      onMessage: (msg) => this.onMessage(msg),
      onLost: () => this.onLost(),
    });
  }

  get connected(): boolean {
    return this.connection.isReady;
  }

  start(): void {
    this.startedAt = Date.now();
    this.connection.start();
    this.probeTimer = setTimeout(() => this.probe(), this.random() * this.profile.probeIntervalMs);
  }

  stop(): void {
    if (this.probeTimer !== null) clearTimeout(this.probeTimer);
    if (this.heartbeatTimer !== null) clearInterval(this.heartbeatTimer);
    this.connection.stop();
  }

  private get silent(): boolean {
    return this.role === 'silent' && Date.now() - this.startedAt > this.profile.silentAfterMs;
  }

  private send(msg: Parameters<CoordinatorConnection['send']>[0]): boolean {
    if (this.silent) return false;
    const ok = this.connection.send(msg);
    if (ok) this.events.framesSent(1);
    return ok;
  }

  /** A simulated probe pass: volatile fields move every time, significant ones sometimes. */
  private probe(): void {
    this.probeCount += 1;
    const at = new Date().toISOString();
    const r = this.report;
    this.report = {
      ...r,
      kubelet: { ...r.kubelet, observedAt: at },
      runtime: { ...r.runtime, observedAt: at },
      cni: { ...r.cni, observedAt: at },
      host: { ...r.host, observedAt: at, uptimeSeconds: r.host.uptimeSeconds + Math.round(this.profile.probeIntervalMs / 1000) },
    };
    if (this.role === 'flapping') {
      const period = Math.floor((Date.now() - this.startedAt) / this.profile.flapPeriodMs);
      this.setKubeletHealth(period % 2 === 0);
    }
    if (this.random() < this.profile.changeRate) this.report = { ...this.report, runtime: { ...this.report.runtime, message: `probe ${this.probeCount}: ${Math.floor(this.random() * 40)} containers` } };
    this.sendChanges();
    this.probeTimer = setTimeout(() => this.probe(), this.profile.probeIntervalMs * (0.9 + 0.2 * this.random()));
  }

  /** Changes the runtime message to a token the benchmark then looks for in the API. */
  mark(token: string): boolean {
    this.report = { ...this.report, runtime: { ...this.report.runtime, message: token } };
    return this.sendChanges();
  }

  private setKubeletHealth(healthy: boolean): void {
    const k = this.report.kubelet;
    this.report = { ...this.report, kubelet: healthy ? { ...k, health: 'healthy', reason: 'HealthzOk', message: 'ok' } : { ...k, health: 'unhealthy', reason: 'HealthzFailed', message: 'GET /healthz: 500 [-]syncloop failed' } };
  }

  private sendChanges(): boolean {
    if (!this.connection.isReady) return false;
    if (this.sent === null) return this.sendFull();
    const delta = reportDelta(this.sent, this.report);
    if (delta === null) return false;
    const ok = this.send({ type: 'report', seq: ++this.seq, full: false, report: delta });
    if (ok) this.sent = this.report;
    return ok;
  }

  private sendFull(): boolean {
    const ok = this.send({ type: 'report', seq: ++this.seq, full: true, report: this.report });
    if (ok) this.sent = this.report;
    return ok;
  }

  private onReady(heartbeatIntervalMs: number): void {
    this.events.welcomed?.(this.connection.tlsResumed);
    this.sent = null;
    if (this.heartbeatTimer !== null) clearInterval(this.heartbeatTimer);
    // Spread over the interval, as real agents' timers are.
    this.heartbeatTimer = setTimeout(() => {
      this.heartbeatTimer = setInterval(() => this.send({ type: 'heartbeat', seq: this.seq }), heartbeatIntervalMs);
      this.send({ type: 'heartbeat', seq: this.seq });
    }, this.random() * heartbeatIntervalMs);
    this.sendFull();
  }

  private onLost(): void {
    if (this.heartbeatTimer !== null) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
    this.sent = null;
  }

  private onMessage(msg: CoordinatorMessage): void {
    if (msg.type === 'resync') this.sendFull();
    if (msg.type !== 'command') return;
    this.events.command(this.spec.name, msg, Date.now());
    if (msg.kind === CommandKind.install) this.install(msg);
    else if (msg.kind === CommandKind.probeNow) {
      this.sent = null;
      this.sendChanges();
      this.send({ type: 'command.result', commandId: msg.commandId, ok: true, result: { message: 'probed now; a full report was sent' } });
    } else {
      this.send({ type: 'command.result', commandId: msg.commandId, ok: false, error: { code: 'NK_AGENT_COMMAND_UNSUPPORTED', message: `the simulated agent does not support command "${msg.kind}"` } });
    }
  }

  /** An install as the agent answers it: progress, then after installMs installed or rolled back. */
  private install(cmd: Command): void {
    const pkg = String(cmd.params['package']);
    const version = String(cmd.params['version']);
    const previous = this.report.kubelet.version?.semver ?? null;
    if (this.installing.has(cmd.commandId)) return; // a re-send of a running install
    this.installing.add(cmd.commandId);
    this.send({ type: 'command.progress', commandId: cmd.commandId, step: 'download', message: `downloading ${pkg} ${version}` });
    setTimeout(() => {
      this.installing.delete(cmd.commandId);
      if (this.random() < this.profile.installFailRate) {
        const message = `health failed: kubelet ${version} did not become healthy within 120 s; rolled back to ${previous}`;
        this.send({ type: 'command.result', commandId: cmd.commandId, ok: false, result: { package: pkg, activeVersion: previous, previousVersion: previous, outcome: 'rolled-back', failedStep: 'health', message }, error: { code: 'NK_INSTALL_HEALTH_FAILED', message } });
        return;
      }
      if (pkg === 'kubelet') this.report = { ...this.report, kubelet: { ...this.report.kubelet, version: { raw: `Kubernetes v${version}`, semver: version, source: 'binary' } } };
      this.sendChanges();
      this.send({ type: 'command.result', commandId: cmd.commandId, ok: true, result: { package: pkg, activeVersion: version, previousVersion: previous, outcome: 'installed', message: `${pkg} ${version} installed and healthy (was ${previous})` } });
    }, this.profile.installMs * (0.8 + 0.4 * this.random()));
  }
}
