/**
 * Wires the coordinator together: store, fleet view, agent gateway, HTTP API, TLS.
 * Start-up begins with recovery: the store is opened (migrations run), the fleet view
 * is loaded from it, and only then are connections accepted.
 */
import { X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { IncomingMessage } from 'node:http';
import { stringify as toYaml } from 'yaml';
import type { Logger } from '@nodekeeper/common';
import { monotonicClock, type Clock } from './clock.ts';
import { certificateNames, paths, type CoordinatorConfig } from './config.ts';
import { CommandDispatcher } from './commands/dispatcher.ts';
import { FleetView } from './fleet/fleet-view.ts';
import { AgentGateway } from './gateway/agent-gateway.ts';
import { SourceLimiter, tooManyFailures } from './gateway/source-limiter.ts';
import { createMetrics, registerBatcherMetrics, registerStoreHealthMetrics } from './metrics.ts';
import { InstallTiming } from './metrics/install-timing.ts';
import { registerProductMetrics } from './metrics/product.ts';
import { startServing } from './server/serving.ts';
import { ArtifactStore } from './artifacts/artifact-store.ts';
import { createApi } from './server/http-api.ts';
import { clientAddress } from './server/http-util.ts';
import { rolloutObjectBuilder, rolloutRoutes } from './server/rollout-routes.ts';
import { SharedBudget } from './budget/shared-budget.ts';
import { FAILURE_REASONS, RolloutController } from './controllers/rollout-controller.ts';
import { ConvergenceController } from './convergence/controller.ts';
import { RemediationController } from './controllers/remediation-controller.ts';
import { remediationItem, remediationItems, remediationRoutes } from './server/remediation-routes.ts';
import { deleteRoutes } from './server/delete-routes.ts';
import { machineDeleteRoutes } from './server/machine-delete-routes.ts';
import { RetentionController } from './controllers/retention-controller.ts';
import { openStore, type Store } from './store/db.ts';
import { toMachineList } from './api/objects.ts';
import { summarizePackages } from './packages/cluster-package-version.ts';
import { backoffDelay } from '@nodekeeper/common';
import { WriteBatcher } from './store/write-batcher.ts';
import { StoreHealth, unavailableCode } from './store/store-health.ts';
import { ensurePki, loadPki, type TlsMaterial } from './tls/pki.ts';
import { CertRenewer, renewalCheckIntervalMs } from './tls/cert-renewer.ts';
import { TicketKeyRing } from './tls/ticket-keys.ts';
import { advertisedUrl, checkAdvertisable, servingNames } from './tls/advertise.ts';
import { BackupService } from './backup/backup-service.ts';
import { BackupScheduler } from './backup/scheduler.ts';
import { backupBeforeMigration } from './backup/pre-migration.ts';
import { backupRoutes } from './server/backup-routes.ts';
import { DEFAULT_HOST_SYNC, HostSync } from './host/host-sync.ts';
import { hostObjectDeps } from './host/object-deps.ts';
import { readKubeconfig } from './host/kube-client.ts';
import { hostRoutes } from './server/host-routes.ts';
import { memberRoutes } from './server/member-routes.ts';
import { sessionRoutes } from './server/session-routes.ts';
import { uiRoutes } from './ui/static-files.ts';
import { MemberCluster } from './member/member-cluster.ts';
import { DrainGate } from './controllers/drain-gate.ts';
import { NodeConditionsWriter, nodeStatusPatcher } from './member/node-conditions-writer.ts';
import { REMEDIATION_DRAIN_MARK } from './member/node-drainer.ts';
import { RebootDriver } from './reboot/driver.ts';
import { RebootGateChecker } from './reboot/gates.ts';
import { podLister } from './reboot/pods.ts';
import { packageVersion } from './version.ts';
import { DEFAULT_WATCH_OPTIONS, WatchHub } from './watch/hub.ts';
import { EventLogWatch } from './watch/event-log.ts';
import { eventRoutes } from './server/event-routes.ts';
import { machineObjectOf, machineObjectsOf } from './server/machine-routes.ts';
import { coordinatorAllowList } from './packages/manifest-policy.ts';
import { readNotifyHeader, startSinks } from './notify/sinks.ts';

export interface RunningCoordinator {
  /** Base URL of the API and the agent endpoint, e.g. https://127.0.0.1:7443. */
  readonly url: string;
  readonly port: number;
  readonly caHash: string | null;
  readonly store: Store;
  readonly fleet: FleetView;
  readonly commands: CommandDispatcher;
  close(): Promise<void>;
}

/** On first start: an admin and a read-only API credential (root-only files). */
function ensureApiCredentials(store: Store, config: CoordinatorConfig, log: Logger): void {
  const p = paths(config);
  if (store.countApiCredentials() > 0 && existsSync(p.adminCredential)) return;
  const admin = store.createApiCredential({ role: 'admin', description: 'created at first start' });
  const readOnly = store.createApiCredential({ role: 'read-only', description: 'created at first start' });
  writeFileSync(p.adminCredential, `${admin.credential}\n`, { mode: 0o600 });
  writeFileSync(p.readOnlyCredential, `${readOnly.credential}\n`, { mode: 0o600 });
  log.info({ adminCredential: p.adminCredential }, 'created API credentials');
}

/** An nkctl config for this coordinator's current address, written at every start. */
function writeNkctlConfig(config: CoordinatorConfig, url: string, tls: TlsMaterial | null): void {
  const p = paths(config);
  const nkctl: Record<string, string> = { server: url, tokenFile: p.adminCredential };
  if (tls !== null) {
    writeFileSync(p.caCert, tls.caPem, { mode: 0o644 });
    nkctl['ca'] = p.caCert;
  }
  writeFileSync(p.nkctlConfig, toYaml(nkctl), { mode: 0o600 });
}

/** Starts a coordinator; resolves once it is listening. */
export async function startCoordinator(config: CoordinatorConfig, log: Logger, clock: Clock = monotonicClock): Promise<RunningCoordinator> {
  // Refused before anything is created: a guessed address would be baked into the
  // certificate and every artifact URL (tls/advertise.ts says why).
  checkAdvertisable(config);
  const notifyHeader = readNotifyHeader(config);
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  chmodSync(config.dataDir, 0o700);
  const p = paths(config);

  // Called at start and then by the CertRenewer: re-issues a generated certificate near
  // its end, re-reads operator-provided files.
  const tlsFiles = config.tls;
  const names = servingNames(certificateNames(config), config.advertiseUrl);
  const tlsLog = log.child({ component: 'tls' });
  const loadTls = tlsFiles !== null ? async () => loadPki(tlsFiles) : () => ensurePki(p.pki, names, new Date(), config.tlsServingLifetimeMs,
    (why) => tlsLog.info({ names, why }, 'serving certificate issued'));
  const tls = config.insecure ? null : await loadTls();
  // Session ticket keys kept in the data dir, so agents reconnecting to a restarted
  // coordinator resume their TLS sessions (tls/ticket-keys.ts).
  let tickets: TicketKeyRing | null = null;
  if (tls !== null) {
    mkdirSync(p.pki, { recursive: true, mode: 0o700 });
    tickets = await TicketKeyRing.open(join(p.pki, 'ticket-keys'), config.tlsTicketRotationMs, tlsLog);
  }
  const metrics = createMetrics();
  // Upgrades keep data: a store about to be migrated is backed up first (or not migrated).
  await backupBeforeMigration(p.db, config.dataDir, packageVersion(), log.child({ component: 'backup' }));
  const health = new StoreHealth({ log: log.child({ component: 'store' }), onError: (op, code) => metrics.storeErrors.inc({ op, code }) });
  const store = openStore(p.db, { now: clock, log: log.child({ component: 'store' }), observer: health });
  health.onRecovered((o, at) => store.recordEvent({
    object: 'store/coordinator', type: 'Normal', reason: 'StoreRecovered',
    message: `the store writes again after ${Math.round((at - o.since) / 1000)} s; ${o.failures} write(s) were refused meanwhile (${o.firstCode}${o.lastCode === o.firstCode ? '' : `, last ${o.lastCode}`}) and none of them acknowledged`,
  }));
  registerStoreHealthMetrics(metrics, () => health.outage === null);
  ensureApiCredentials(store, config, log);
  const backups = new BackupService({
    dataDir: config.dataDir, coordinatorVersion: packageVersion(), copyDatabase: (f) => store.backupTo(f),
    log: log.child({ component: 'backup' }),
    counted: (reason, result, at) => {
      metrics.backups.inc({ reason, result });
      if (result === 'ok') metrics.backupLastSuccess.set(Math.floor(at / 1000));
    },
    recordEvent: (type, reason, message) => store.recordEvent({ object: 'coordinator/backup', type, reason, message }),
  });
  await backups.cleanUp();
  const batcher = new WriteBatcher(store, {
    intervalMs: config.flushIntervalMs, log: log.child({ component: 'batcher' }), runAs: (fn) => health.run('batch', fn),
    flushed: (seconds, result) => metrics.flushDuration.observe({ result }, seconds),
  });
  registerBatcherMetrics(metrics, batcher.counters);
  const fleet = new FleetView(
    { store, batcher, clock, log: log.child({ component: 'fleet' }) },
    {
      livenessGraceMs: config.livenessGraceMs, livenessRecoverMs: config.livenessRecoverMs,
      restartGrace: { admissionPerSecond: config.admission.perSecond, agentBackoffCapMs: config.reconnectBackoffCapMs },
    },
  );
  const commands = new CommandDispatcher({ store, clock, log: log.child({ component: 'commands' }) });
  commands.setTransport((machine, command) => fleet.deliver(machine, command));
  const installTiming = new InstallTiming({
    whole: (labels, seconds) => metrics.installDuration.observe(labels, seconds),
    step: (labels, seconds) => metrics.installStepDuration.observe(labels, seconds),
  });
  commands.onProgress((id, step) => installTiming.progress(id, step, clock()));
  commands.onFinished((c) => installTiming.finished(c));
  // Failed authentications per source address, for agent upgrades and enrollment alike.
  const authFailures = new SourceLimiter();
  const gateway = new AgentGateway(
    { store, fleet, clock, log: log.child({ component: 'gateway' }), metrics, commands, authFailures, runAs: (fn) => health.run('agent', fn) },
    {
      machineCredentialTtlMs: config.machineCredentialTtlMs,
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      rateLimit: config.rateLimit,
      maxInvalidFrames: config.maxInvalidFrames,
      maxConnections: config.maxConnections,
      admission: config.admission,
    },
  );
  let url = '';
  const memberKc = config.memberKubeconfig === null ? null : readKubeconfig(config.memberKubeconfig).kc;
  const member = memberKc === null ? null : new MemberCluster(memberKc, {
    log: log.child({ component: 'member' }), drainTimeoutMs: config.drainTimeoutMs,
    drained: (seconds, result) => metrics.drainDuration.observe({ result }, seconds),
  });
  // Reboots (rollouts and the remediation Reboot rung): one path, resumed after a restart.
  const reboots = new RebootDriver({ store, fleet, commands, member, clock, log: log.child({ component: 'reboots' }) });
  commands.onConnected((machine) => reboots.machineConnected(machine));
  let gatesChanged = () => {};
  const gates = new RebootGateChecker({
    listPods: memberKc === null ? null : podLister(memberKc),
    nodeOf: (machine) => member?.findNode(machine, fleet.get(machine)?.machineId ?? null)?.metadata?.name ?? null,
    log: log.child({ component: 'reboot-gates' }),
    changed: () => gatesChanged(),
  });
  // Invariant 1: rollouts and remediation share one availability budget; each tells it
  // what it has out, and neither reads the other.
  const budget = new SharedBudget(config.maxUnavailable);
  const rollouts = new RolloutController(
    { store, fleet, commands, clock, log: log.child({ component: 'rollouts' }), budget, reboots, gates, failed: (reason) => metrics.rolloutFailures.inc({ reason }) },
    { controlPlaneVersion: config.controlPlaneVersion },
  );
  // Every reason from 0, so increase() sees the first failure (a series born at 1 shows none).
  for (const reason of FAILURE_REASONS) metrics.rolloutFailures.inc({ reason }, 0);
  rollouts.setArtifactBaseUrl(() => url);
  // Called from a timer's promise: a store fault is logged, never thrown (guarded, below).
  gatesChanged = () => guarded('rollouts', () => rollouts.tick());
  reboots.start();
  const remediation = new RemediationController(
    { store, fleet, commands, clock, log: log.child({ component: 'remediation' }), budget, artifactBaseUrl: () => url,
      controlPlaneVersion: () => rollouts.controlPlaneVersion(), reboots,
      // CordonAndNotify takes over the cordon of the reinstall's drain, so it stays for the human.
      ...(member === null ? {} : { cordon: (machine: string, by: string) => member.cordon(machine, by, (mark) => mark.startsWith(REMEDIATION_DRAIN_MARK)) }) },
    config.remediation === null ? {} : config.remediation,
  );
  // Convergence (docs/declarative.md): desired versions with an updateStrategy roll out by themselves.
  const convergence = new ConvergenceController({ store, fleet, rollouts, clock, log: log.child({ component: 'convergence' }) });
  const installAllowList = coordinatorAllowList({ paths: config.allowInstallPaths, services: config.allowInstallServices });
  const apiDeps = {
    store, fleet, clock, metrics, storeHealth: health,
    artifacts: new ArtifactStore(p.artifacts),
    log: log.child({ component: 'api' }),
    caPem: tls?.caPem ?? null,
    caHash: tls?.caHash ?? null,
    url: () => url,
    controlPlaneVersion: () => rollouts.controlPlaneVersion(),
    heartbeatIntervalMs: config.heartbeatIntervalMs,
    machineCredentialTtlMs: config.machineCredentialTtlMs,
    authFailures: {
      check: (req: IncomingMessage) => {
        const wait = authFailures.retryAfterS(clientAddress(req), clock());
        if (wait > 0) throw tooManyFailures(wait);
      },
      failed: (req: IncomingMessage) => authFailures.failed(clientAddress(req), clock()),
    },
    maxArtifactBytes: config.maxArtifactBytes,
    installAllowList,
    cpvStatusExtras: () => convergence.cpvStatus(),
    machineStatusExtras: (name: string) => {
      const converged = convergence.machinePackages(name);
      const m = remediation.machineState(name);
      const faults = remediation.faults(name);
      const node = member?.node(name, fleet.get(name)?.machineId ?? null) ?? null;
      return {
        ...(converged.length === 0 ? {} : { packages: converged }),
        ...(node === null ? {} : { node }),
        ...(m === null ? {} : { remediation: { phase: m.phase, reason: m.reason, rule: m.rule, step: m.phase === 'Idle' ? null : m.step, cordoned: m.cordoned } }),
        ...(faults.length === 0 ? {} : { faults: faults.map((f) => ({ type: f.type, status: f.status, reason: f.reason, message: f.message, since: new Date(f.since).toISOString() })) }),
      };
    },
  };
  const machineObjects = () => {
    const now = clock();
    return toMachineList(fleet.list(), now).items.map((o) => ({ ...o, status: { ...o.status, ...apiDeps.machineStatusExtras(o.metadata.name) } }));
  };
  const host = new HostSync({
    registrationFile: p.hostRegistration,
    log: log.child({ component: 'host' }),
    wallClock: () => Date.now(),
    machines: machineObjects,
    controlPlaneVersion: () => rollouts.controlPlaneVersion(),
    localPackages: () => store.getClusterPackageVersion()?.packages ?? [],
    applyPackages: (packages, source) => store.transaction(() => {
      // Host objects set packages; the member's default updateStrategy stays (convergence/).
      const record = store.putClusterPackageVersion(packages, store.getClusterPackageVersion()?.updateStrategy);
      store.recordEvent({ object: 'clusterpackageversion/cluster', type: 'Normal', reason: 'AppliedFromHost', message: `generation ${record.generation} from ${source}: ${packages.map((x) => `${x.name}=${x.version}`).join(', ')}` });
      return record.generation;
    }),
    recordEvent: (type, reason, message) => store.recordEvent({ object: 'host/registration', type, reason, message }),
    installAllowList,
    objects: hostObjectDeps(store, rollouts, remediation),
    statusInput: () => ({
      connected: fleet.connectedCount(),
      packages: summarizePackages(store.getClusterPackageVersion(), fleet.list()),
      rolloutPhases: rollouts.phases(),
      remediation: remediation.summary(),
      kubernetesVersion: rollouts.controlPlaneVersion(),
      nodesReady: member?.nodesReady() ?? null,
      memberApiError: member?.error() ?? null,
      coordinatorVersion: packageVersion(),
    }),
  }, { ...DEFAULT_HOST_SYNC, syncIntervalMs: config.hostSyncIntervalMs, tokenTtlSeconds: config.hostTokenTtlSeconds, mirror: config.hostMirror, mirrorLingerMs: config.hostMirrorLingerMs });
  // Server-side watch (watch/hub.ts): the list routes' own builders are its sources.
  const rolloutObject = rolloutObjectBuilder(apiDeps);
  const watchHub = new WatchHub({
    store, log: log.child({ component: 'watch' }),
    metrics: { watchers: (kind, n) => metrics.apiWatchers.set({ kind }, n), dropped: (reason) => metrics.apiWatchersDropped.inc({ reason }) },
    sources: {
      machineNames: () => fleet.list().map((m) => m.name),
      machine: (name) => {
        const m = fleet.get(name);
        return m === undefined ? null : machineObjectOf(apiDeps, m, clock());
      },
      machines: () => machineObjectsOf(apiDeps, fleet.list(), clock()),
      rollouts: () => store.listRollouts().map(rolloutObject),
      remediations: () => remediationItems(apiDeps, remediation),
      remediation: (machine) => remediationItem(apiDeps, remediation, machine),
    },
  }, { ...DEFAULT_WATCH_OPTIONS, maxWatchers: config.api.maxWatchers, historySize: config.api.watchHistory, historyBytes: config.api.watchHistoryBytes, bookmarkMs: config.api.watchBookmarkMs, stallMs: config.api.watchStallMs });
  fleet.onChanged((name) => watchHub.machineChanged(name));
  remediation.onChanged((machine) => watchHub.remediationChanged(machine));
  const routeDeps = { ...apiDeps, watch: { hub: watchHub, events: new EventLogWatch(store, watchHub) } };
  watchHub.start();
  const api = createApi(routeDeps, [...rolloutRoutes(routeDeps, rollouts), ...remediationRoutes(routeDeps, remediation), ...hostRoutes(routeDeps, host, config.hostTokenTtlSeconds), ...memberRoutes(routeDeps, member),
    ...machineDeleteRoutes(routeDeps, { heldBy: (name) => rollouts.holders(name), deleted: (name) => remediation.forget(name) }), ...backupRoutes(routeDeps, backups),
    ...deleteRoutes(routeDeps, rollouts), ...eventRoutes(routeDeps), ...sessionRoutes(routeDeps, config.sessionTtlMs), ...uiRoutes(log.child({ component: 'ui' }))]);

  // Parsed when the material changes (start, renewal), not at every scrape.
  const expiry = (m: TlsMaterial) => {
    const end = (pem: string) => {
      try {
        return new X509Certificate(pem).validToDate.getTime();
      } catch {
        return null;
      }
    };
    const serving = end(m.certPem);
    return serving === null ? null : { serving, ca: end(m.caPem) };
  };
  let certificates = tls === null ? null : expiry(tls);
  const startedAt = Date.now();
  registerProductMetrics(metrics, {
    clock, wallClock: () => Date.now(), startedAt,
    machines: () => fleet.values(),
    faults: (machine) => remediation.faults(machine),
    remediationPhases: () => Object.values((remediation.record().state as { machines?: Record<string, { phase: string }> } | null)?.machines ?? {}).map((m) => m.phase),
    guard: () => remediation.summary().guard,
    rollouts: () => rollouts.summaries(),
    desired: () => store.getClusterPackageVersion(),
    host: () => {
      const h = host.state();
      const ms = (iso: string | null) => (iso === null ? null : Date.parse(iso));
      return h.registered ? { lastSync: ms(h.lastSyncTime), lastLease: ms(h.lastLeaseRenewTime) } : null;
    },
    certificates: () => certificates,
    backupIntervalSeconds: config.backup.dir === null ? null : config.backup.intervalMs / 1000,
    ready: () => health.outage === null,
  });
  // Listening starts here: the public port in this process, or in the gateway workers.
  const serving = await startServing({ config, tls, tickets, api, gateway, metrics, log });
  tickets?.start();
  const renewer = tls === null ? null : new CertRenewer({
    load: loadTls,
    apply: (m) => serving.applyTls(m),
    log: tlsLog,
    renewed: (m) => {
      certificates = expiry(m);
      try {
        store.recordEvent({ object: 'coordinator/tls', type: 'Normal', reason: 'CertificateRenewed', message: `serving certificate renewed in place, valid until ${new X509Certificate(m.certPem).validTo}` });
      } catch (err) {
        log.warn({ err }, 'could not record the certificate renewal event');
      }
    },
  }, tls, renewalCheckIntervalMs(config.tlsServingLifetimeMs));
  renewer?.start();

  const port = serving.port;
  url = advertisedUrl(config, port);
  writeNkctlConfig(config, url, tls);

  // No fault in a tick may end the process (invariant 11). A store that cannot write
  // (full disk, I/O error) is reported by StoreHealth; the controllers then retry with
  // backoff, after a probe write, instead of failing every tick. They keep no state a
  // failed transaction has advanced, so a retried tick decides again from scratch.
  const guarded = (op: string, fn: () => void) => {
    try {
      health.run(op, fn);
    } catch (err) {
      if (unavailableCode(err) === null) log.error({ err, op }, 'controller tick failed; the next tick retries');
    }
  };
  const ticker = setInterval(() => {
    guarded('fleet', () => fleet.tick()); // memory and the batcher's queue only
    if (!health.retryDue()) return;
    if (health.outage !== null) {
      health.retrying();
      guarded('probe', () => store.probeWrite());
    }
    guarded('commands', () => commands.expire());
    guarded('rollouts', () => rollouts.tick());
    guarded('convergence', () => convergence.tick());
    guarded('remediation', () => remediation.tick());
  }, Math.min(1000, Math.max(50, Math.floor(config.livenessGraceMs / 10))));
  ticker.unref();
  let drainGate: DrainGate | null = null;
  let nodeConditions: NodeConditionsWriter | null = null;
  if (member !== null) {
    member.onVersion((v) => rollouts.setControlPlaneVersion(v));
    member.start();
    if (config.nodeConditions.enabled) {
      nodeConditions = new NodeConditionsWriter({
        machines: () => fleet.values(),
        machine: (name) => fleet.get(name),
        facts: (m) => {
          const faults = remediation.faults(m.name, true);
          // None yet: the remediation has not derived them since our start. Writing then
          // would turn every Node's conditions Unknown for a tick on each restart.
          if (faults.length === 0 && m.revokedAt === null) return null;
          const r = remediation.machineState(m.name);
          return {
            revoked: m.revokedAt !== null, liveness: m.liveness.state, report: m.report, agentVersion: m.agentVersion, faults,
            remediation: r === null ? null : { phase: r.phase, reason: r.reason, message: r.message },
          };
        },
        findNode: (name, machineId) => member.findNode(name, machineId),
        patchStatus: nodeStatusPatcher(readKubeconfig(config.memberKubeconfig!).kc),
        wallClock: () => Date.now(),
        log: log.child({ component: 'node-conditions' }),
        counted: (result) => metrics.nodeConditionWrites.inc({ result }),
      }, { minIntervalMs: config.nodeConditions.minIntervalMs, maxConcurrent: config.nodeConditions.maxConcurrent, tickMs: 1000 });
      nodeConditions.start();
    }
    if (config.drainBeforeInstall.length > 0) {
      // Remediation's ReinstallPackage steps drain first too, with their rule's options.
      const drains = { drainFor: (m: string) => remediation.drainFor(m), keepCordon: (m: string) => remediation.keepCordon(m) };
      const gate = new DrainGate({ store, fleet, commands, member, log: log.child({ component: 'drain' }), remediation: drains }, config.drainBeforeInstall, config.drainTimeoutMs);
      commands.setGate((c) => gate.allows(c));
      gate.start();
      drainGate = gate;
    }
  }
  host.start();
  // Kubernetes Events and notifications read the event log by their own cursors.
  const sinks = startSinks(config, notifyHeader, {
    store, member, metrics, log: log.child({ component: 'sinks' }),
    machineId: (m) => fleet.get(m)?.machineId ?? null,
    registeredCluster: () => host.state().cluster,
  });
  const retention = new RetentionController({
    store, log: log.child({ component: 'retention' }),
    pruned: (kind, rows) => metrics.rowsPruned.inc({ kind }, rows),
    runAs: (fn) => health.run('retention', fn),
    canWrite: () => health.outage === null,
  }, config.retention);
  retention.start();
  const backupDir = config.backup.dir;
  const scheduler = backupDir === null ? null : new BackupScheduler(backups, { ...config.backup, dir: backupDir }, log.child({ component: 'backup' }));
  scheduler?.start();
  const cancelRegistration = config.hostRegistration !== null && !host.state().registered ? registerAtStart(host, config, log) : () => {};
  log.info({ url, caHash: tls?.caHash ?? null, machines: fleet.list().length }, 'coordinator listening');

  let closed = false;
  return {
    url, port, store, fleet, commands,
    caHash: tls?.caHash ?? null,
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(ticker);
      renewer?.stop();
      tickets?.stop();
      await retention.stop();
      await scheduler?.stop();
      cancelRegistration();
      drainGate?.stop();
      nodeConditions?.stop();
      await sinks.stop();
      reboots.stop();
      await host.stop();
      member?.stop();
      gateway.close();
      watchHub.close();
      await serving.close();
      try {
        batcher.close();
      } catch (err) {
        log.error({ err }, 'last batched write failed at shutdown (heartbeats and status are re-learned at the next start)');
      }
      store.close();
    },
  };
}

/** --host-kubeconfig and friends: register in the background, retrying with backoff until it works; returns a cancel. */
function registerAtStart(host: HostSync, config: CoordinatorConfig, log: Logger): () => void {
  const r = config.hostRegistration!;
  let attempt = 0;
  let timer: NodeJS.Timeout | null = null;
  let cancelled = false;
  const tryOnce = async () => {
    if (cancelled) return;
    try {
      const kc = readKubeconfig(r.kubeconfig);
      await host.register({
        cluster: r.clusterName, server: kc.server, caPem: kc.caPem, caHash: r.caHash, bootstrapToken: r.token,
        tokenTtlSeconds: config.hostTokenTtlSeconds, now: Date.now(),
      });
    } catch (err) {
      const delay = Math.max(1000, backoffDelay({ baseMs: 1000, capMs: 60_000 }, attempt++));
      log.warn({ err: (err as Error).message, code: (err as { code?: string }).code, retryInMs: delay }, 'registration with the host failed; retrying');
      if (!cancelled) timer = setTimeout(() => void tryOnce(), delay).unref();
    }
  };
  void tryOnce();
  return () => {
    cancelled = true;
    if (timer !== null) clearTimeout(timer);
  };
}
