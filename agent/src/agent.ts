/**
 * The agent's loop: probe on a jittered interval, send what changed, heartbeat on the
 * coordinator's interval, refresh a full report every few minutes, answer resyncs.
 * Probes keep running while disconnected, so the first report after a reconnect is
 * fresh, and a node fault never waits for the coordinator.
 */
import { jittered, type Logger } from '@nodekeeper/common';
import {
  MIN_PROTOCOL_VERSION,
  PROTOCOL_VERSION,
  errorFrame,
  ProtocolErrorCode,
  type CoordinatorMessage,
  type CredentialRotate,
  type Hello,
  type MachineIdentity,
  type NodeReport,
} from '@nodekeeper/protocol';
import type { AgentConfig } from './config.ts';
import { CommandExecutor } from './commands/executor.ts';
import { CommandStore } from './commands/command-store.ts';
import { CoordinatorConnection } from './connection.ts';
import { probeHealthCheck } from './install/health.ts';
import { Installer } from './install/installer.ts';
import { Journal } from './install/journal.ts';
import { installPolicy } from './install/confine.ts';
import { loadTrustedKeys } from './install/verify.ts';
import { runCommand } from './probes/run-command.ts';
import { createServiceManager } from './services/create-service-manager.ts';
import { SupervisorServiceManager } from './services/supervisor.ts';
import { readIdentity } from './identity.ts';
import { probeCni } from './probes/cni.ts';
import { createProbeContext, type ProbeContext } from './probes/context.ts';
import { probeRuntime } from './probes/cri.ts';
import { probeHost } from './probes/host.ts';
import { probeKubelet } from './probes/kubelet.ts';
import { reportDelta } from './report-diff.ts';
import { RepairLog } from './repair/repair-log.ts';
import { Repairer } from './repair/repairer.ts';
import { LocalRepairer, summarizeLocalRepairs } from './repair/local-repair.ts';
import { reenrollWithKey, saveState } from './enrollment.ts';
import type { MachineKey } from './machine-key.ts';
import { SelfUpgrade } from './self-upgrade/self-upgrade.ts';
import { readAgentVersion } from './version.ts';

/** `systemctl ARGS` (the rollback timer of the agent's own upgrade); throws on failure. */
async function systemctl(args: readonly string[]): Promise<void> {
  const r = await runCommand('/usr/bin/systemctl', [...args], { timeoutMs: 30_000, env: { SYSTEMD_PAGER: '', LC_ALL: 'C' } });
  if (r.code !== 0 || r.spawnError !== null) throw new Error(`systemctl ${args.join(' ')}: exit ${r.code}: ${r.stderr.trim()}`);
}

/** A full report this often even when nothing changed (Kubernetes: node status every 5 min). */
const FULL_REPORT_EVERY_MS = 5 * 60_000;
/** After a failed re-enrollment with the machine key, the next try waits this long. */
const REENROLL_RETRY_MS = 60_000;
/** Codes with which the coordinator refuses a credential that the machine key can replace. */
const REENROLLABLE = new Set(['NK_AUTH_CREDENTIAL_EXPIRED', 'NK_AUTH_CREDENTIAL_INVALID']);

/** What the agent authenticates with; the credential changes when it is rotated or re-enrolled. */
export interface AgentCredentials {
  credential: string;
  readonly caPem: string | null;
  /** The machine key; null only for a placeholder agent built before enrollment. */
  readonly key: MachineKey | null;
}

export class Agent {
  private readonly config: AgentConfig;
  private readonly log: Logger;
  private readonly ctx: ProbeContext;
  private readonly connection: CoordinatorConnection;
  private latest: NodeReport | null = null;
  /** What the coordinator has from us on this connection. */
  private sent: NodeReport | null = null;
  private seq = 0;
  private lastFullAt = 0;
  private probing: Promise<void> | null = null;
  /** When a command last finished (its result went out): probes begun before then are stale. */
  private changedAt = 0;
  private probeTimer: NodeJS.Timeout | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  private readonly commands: CommandExecutor;
  private readonly commandStore: CommandStore;
  private pruneTimer: NodeJS.Timeout | null = null;
  private readonly repairs: RepairLog;
  private readonly localRepair: LocalRepairer | null;
  /** Last moment the coordinator was known reachable (agent start counts), on our own clock. */
  private lastContactAt = Date.now();
  private readonly creds: AgentCredentials;
  private lastFailedReenrollAt = -Infinity;
  private reenrolling = false;
  /** The version this agent reports: its release's VERSION file, else the sources' (version.ts). */
  readonly version: string;
  private readonly selfUpgrade: SelfUpgrade;

  constructor(config: AgentConfig, state: AgentCredentials, log: Logger) {
    this.config = config;
    this.log = log;
    this.version = readAgentVersion(config.installDir);
    this.creds = { ...state };
    this.ctx = createProbeContext(config.probes);
    this.connection = new CoordinatorConnection({
      server: config.server,
      credential: () => this.creds.credential,
      caPem: state.caPem,
      backoff: config.backoff,
      log: log.child({ component: 'connection' }),
      hello: () => this.hello(),
      onReady: (welcome) => this.onReady(welcome.heartbeatIntervalMs),
      onMessage: (msg) => this.onMessage(msg),
      onLost: () => this.onLost(),
      onRefused: (code) => void this.reenroll(code),
    });
    const journal = new Journal(config.stateDir);
    const services = createServiceManager(config.serviceManager, { hostRoot: config.probes.hostRoot, run: runCommand });
    const health = probeHealthCheck(this.ctx, this.version);
    this.selfUpgrade = new SelfUpgrade({
      hostRoot: config.probes.hostRoot,
      packagesDir: config.packagesDir,
      running: this.version,
      installDir: config.installDir,
      systemctl: services.kind === 'systemd' ? systemctl : null,
      exit: (code) => process.exit(code),
      killAt: config.selfUpgradeKillAt,
      log: log.child({ component: 'self-upgrade' }),
    });
    this.repairs = new RepairLog(config.stateDir);
    const repairer = new Repairer({
      hostRoot: config.probes.hostRoot,
      stateDir: config.stateDir,
      services,
      health,
      units: { kubelet: config.probes.kubelet.unit, runtime: config.probes.runtime.unit },
      configDirs: config.configRestoreDirs,
      allowReboot: config.allowReboot,
      run: runCommand,
      // Without systemd the supervisor takes the request (its reboot adapter acts on it).
      ...(services instanceof SupervisorServiceManager ? { rebootNode: (reason: string) => services.requestReboot(reason) } : {}),
      record: this.repairs,
      log: log.child({ component: 'repair' }),
    });
    this.localRepair = config.localRepairAfterMs === null
      ? null
      : new LocalRepairer({ policy: { afterMs: config.localRepairAfterMs, budget: config.localRepairBudget }, repairer, record: this.repairs, log: log.child({ component: 'local-repair' }) });
    const installer = new Installer({
      hostRoot: config.probes.hostRoot,
      packagesDir: config.packagesDir,
      recordedVersionsFile: config.probes.cni.recordedVersionsFile,
      journal,
      services,
      health,
      trustedKeys: loadTrustedKeys(config.trustedKeys),
      policy: installPolicy({ extraPaths: config.allowInstallPaths, extraServices: config.allowInstallServices, allowDowngrade: config.allowDowngrade }),
      // Artifacts on the coordinator are checked against its pinned CA; others against the system's.
      selfUpgrade: this.selfUpgrade,
      download: { timeoutMs: 30 * 60_000, idleTimeoutMs: 60_000, allowHttp: config.insecure, coordinator: { origin: new URL(config.server).origin, caPem: state.caPem, credential: () => this.creds.credential } },
      log: log.child({ component: 'installer' }),
    });
    this.commandStore = new CommandStore(config.stateDir);
    this.commands = new CommandExecutor({
      installer,
      journal,
      store: this.commandStore,
      log: log.child({ component: 'commands' }),
      send: (m) => {
        if (m.type === 'command.result') this.changedAt = Date.now();
        return this.connection.send(m);
      },
      probeNow: () => this.probeNow(),
      repair: repairer,
    });
  }

  /** Reads this node's identity as configured. */
  identity(): Promise<MachineIdentity> {
    return readIdentity({
      hostRoot: this.config.probes.hostRoot,
      ...(this.config.hostname === null ? {} : { hostname: this.config.hostname }),
      ...(this.config.zone === null ? {} : { zone: this.config.zone }),
      labels: this.config.labels,
    });
  }

  start(): void {
    this.stopped = false;
    // Recovery first: an install a kill interrupted is finished or undone before any new command runs.
    // The agent's own upgrade first: the install journal's record of it waits on what it decides.
    void this.commands.recover(this.selfUpgrade.start()).catch((err: unknown) => this.log.error({ err }, 'install recovery failed'));
    this.connection.start();
    void this.probeLoop();
    this.schedulePrune(60_000);
  }

  /** Prunes old command results now and then (a minute after start, then every 6 h, jittered). */
  private schedulePrune(afterMs: number): void {
    this.pruneTimer = setTimeout(() => {
      void this.commandStore.prune(this.config.commandRetentionMs)
        .then((n) => { if (n > 0) this.log.info({ pruned: n }, 'pruned old command results'); })
        .catch((err: unknown) => this.log.warn({ err }, 'could not prune old command results'))
        .finally(() => { if (!this.stopped) this.schedulePrune(jittered(6 * 3_600_000, 0.1)); });
    }, afterMs);
    this.pruneTimer.unref();
  }

  /** Stops probing and reporting; resolves once the connection is closed. */
  stop(): Promise<void> {
    this.stopped = true;
    if (this.probeTimer !== null) clearTimeout(this.probeTimer);
    if (this.pruneTimer !== null) clearTimeout(this.pruneTimer);
    if (this.heartbeatTimer !== null) clearInterval(this.heartbeatTimer);
    return this.connection.stop();
  }

  /**
   * After stop(): waits up to `graceMs` for running commands (and the start-up recovery)
   * to end; resolves with the ids of those still running, which the journal finishes at
   * the next start.
   */
  settle(graceMs: number): Promise<string[]> {
    return this.commands.settle(graceMs);
  }

  private async hello(): Promise<Hello> {
    return {
      type: 'hello',
      minProtocolVersion: MIN_PROTOCOL_VERSION,
      maxProtocolVersion: PROTOCOL_VERSION,
      agentVersion: this.version,
      identity: await this.identity(),
      ...(this.creds.key === null ? {} : { publicKey: this.creds.key.publicKey }),
    };
  }

  /**
   * A new credential from the coordinator: saved durably first, then confirmed, so a
   * crash in between leaves the old one, which keeps working until the confirmation.
   */
  private async rotateCredential(msg: CredentialRotate): Promise<void> {
    try {
      await saveState(this.config.stateDir, { credential: msg.credential, caPem: this.creds.caPem });
    } catch (err) {
      this.log.error({ err }, 'cannot save the rotated credential; keeping the current one');
      return;
    }
    this.creds.credential = msg.credential;
    const id = msg.credential.split('.')[1] ?? '';
    this.connection.send({ type: 'credential.saved', credentialId: id });
    this.log.info({ expiresInDays: Math.round(msg.expiresInMs / 86_400_000) }, 'machine credential rotated');
  }

  /**
   * The coordinator refused our credential as lapsed or unknown: prove the machine key
   * and take a fresh one, without a bootstrap token. Revoked or reset machines cannot.
   */
  private async reenroll(code: string): Promise<void> {
    const key = this.creds.key;
    if (!REENROLLABLE.has(code) || key === null || this.reenrolling || Date.now() - this.lastFailedReenrollAt < REENROLL_RETRY_MS) return;
    this.reenrolling = true;
    try {
      const { credential } = await reenrollWithKey(this.config.server, this.creds.caPem, await this.identity(), this.version, key);
      await saveState(this.config.stateDir, { credential, caPem: this.creds.caPem });
      this.creds.credential = credential;
      this.log.info('re-enrolled with the machine key; reconnecting with the new credential');
    } catch (err) {
      this.lastFailedReenrollAt = Date.now();
      this.log.error({ err, code: (err as { code?: string }).code }, 're-enrollment with the machine key failed; an admin may need to reset this machine');
    } finally {
      this.reenrolling = false;
    }
  }

  /** Runs every probe once, in parallel. Probes report faults as results; they do not throw. */
  async probeAll(): Promise<NodeReport> {
    const [identity, kubelet, runtime, cni, host] = await Promise.all([
      this.identity(),
      probeKubelet(this.ctx),
      probeRuntime(this.ctx),
      probeCni(this.ctx),
      probeHost(this.ctx),
    ]);
    return { identity, kubelet, runtime, cni, host };
  }

  private async probeLoop(): Promise<void> {
    if (this.stopped) return;
    this.probing = this.probeOnce();
    await this.probing;
    if (!this.stopped) this.probeTimer = setTimeout(() => void this.probeLoop(), jittered(this.config.probeIntervalMs, 0.1));
  }

  private async probeOnce(): Promise<void> {
    try {
      const startedAt = Date.now();
      let report = await this.probeAll();
      // A command finished while this probe ran (a containerd restarted by an install,
      // say): what it saw may predate the change, and sent after the command's result it
      // would tell the coordinator's soak of a fault that is over. Probe again, once.
      if (this.changedAt >= startedAt) report = await this.probeAll();
      const before = this.latest;
      this.latest = report;
      for (const section of ['kubelet', 'runtime', 'cni'] as const) {
        const was = before?.[section];
        const now = report[section];
        if (was === undefined || was.health !== now.health || was.reason !== now.reason) {
          this.log[now.health === 'healthy' ? 'info' : 'warn']({ component: section, health: now.health, reason: now.reason }, now.message || `${section} ${now.health}`);
        }
      }
      this.sendChanges();
      if (this.localRepair !== null && !this.connection.isReady) await this.localRepair.tick(report, Date.now() - this.lastContactAt);
    } catch (err) {
      this.log.error({ err }, 'probing failed');
    }
  }

  private sendChanges(): void {
    if (this.latest === null || !this.connection.isReady) return;
    if (this.sent === null || Date.now() - this.lastFullAt >= FULL_REPORT_EVERY_MS) {
      this.sendFull();
      return;
    }
    const delta = reportDelta(this.sent, this.latest);
    if (delta === null) return;
    if (this.connection.send({ type: 'report', seq: ++this.seq, full: false, report: delta })) this.sent = this.latest;
  }

  private sendFull(): void {
    if (this.latest === null) return;
    if (this.connection.send({ type: 'report', seq: ++this.seq, full: true, report: this.latest })) {
      this.sent = this.latest;
      this.lastFullAt = Date.now();
      // Hello accepted and a report sent: what confirms this version after its own upgrade.
      this.selfUpgrade.reportedHealthy();
      void this.reportLocalRepairs();
    }
  }

  /**
   * Tells the coordinator what the agent repaired by itself: a full report whose host
   * message carries the summary (no protocol change), then the records are marked reported.
   */
  private async reportLocalRepairs(): Promise<void> {
    if (this.localRepair === null || this.latest === null) return;
    try {
      const pending = await this.localRepair.unreported();
      if (pending.length === 0) return;
      const host = { ...this.latest.host, message: `${summarizeLocalRepairs(pending)}${this.latest.host.message ? `; ${this.latest.host.message}` : ''}`.slice(0, 4000) };
      if (this.connection.send({ type: 'report', seq: ++this.seq, full: true, report: { ...this.latest, host } })) {
        await this.localRepair.markReported(pending);
        this.log.info({ count: pending.length }, 'reported local repairs');
      }
    } catch (err) {
      this.log.error({ err }, 'could not report local repairs');
    }
  }

  private onReady(heartbeatIntervalMs: number): void {
    this.sent = null;
    this.lastContactAt = Date.now();
    if (this.heartbeatTimer !== null) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = setInterval(() => {
      this.connection.send({ type: 'heartbeat', seq: this.seq });
    }, heartbeatIntervalMs);
    if (this.latest !== null) this.sendFull();
    else void this.probing?.then(() => this.sendChanges());
    this.commands.flush();
  }

  private onLost(): void {
    this.lastContactAt = Date.now();
    if (this.heartbeatTimer !== null) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
    this.sent = null;
  }

  /** `probe.now`: every probe at once, then a full report on the normal report path. */
  private async probeNow(): Promise<string> {
    // Forgetting what the coordinator has makes sendChanges() send a full report, not a delta.
    this.sent = null;
    await this.probeOnce();
    if (this.sent !== null) return 'probed now; a full report was sent';
    return this.connection.isReady ? 'probed now, but the report could not be sent; see the agent log' : 'probed now; not connected, the full report goes out on the next connect';
  }

  private onMessage(msg: CoordinatorMessage): void {
    switch (msg.type) {
      case 'resync':
        this.sendFull();
        return;
      case 'command':
        // Installs take minutes: run them beside the loop; results go out when they finish.
        void this.commands.handle(msg).catch((err: unknown) => this.log.error({ err, command: msg.commandId }, 'command failed'));
        return;
      case 'credential':
        void this.rotateCredential(msg);
        return;
      case 'error':
        this.log.warn({ code: msg.code }, `coordinator: ${msg.message}`);
        return;
      case 'welcome':
        this.connection.send(errorFrame(ProtocolErrorCode.unexpectedMessage, 'welcome received twice'));
        return;
    }
  }
}
