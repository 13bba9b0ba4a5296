/**
 * The member's side of pull mode, once registered: every sync interval (about 10 s,
 * jittered) it
 *   1. rotates its host credential when 80 % of its lifetime has passed;
 *   2. renews its Lease (duration 40 s), which is how the host knows it is alive;
 *   3. writes its Cluster status when it differs from what the host holds (and at a
 *      slow refresh, every 5 min), so a host-side Unknown is corrected at once;
 *   4. mirrors its Machines into its namespace (those that need an eye, or all of them:
 *      mirror-selection.ts), writing only those that changed;
 *   5. pulls the ClusterPackageVersions authored for it, applies the accepted ones to
 *      its own record and writes the verdict back to their status;
 *   6. pulls the Rollouts and RemediationRules authored for it (object-sync.ts) and
 *      writes their verdict and progress back.
 * Every step is bounded; a failing host is logged, retried next interval and shown in
 * `nkctl host status`; it never stops the member's own work.
 *
 * Each job is its own module (host-credential.ts, lease-renewal.ts,
 * cluster-status-sync.ts, machine-mirror.ts, package-pull.ts, object-sync.ts); this one
 * keeps the schedule, the clients and the watches they share, and the order above.
 */
import type { InstallAllowList } from '@nodekeeper/protocol';
import type { KubernetesObject, ListWatch } from '@kubernetes/client-node';
import { AppError, type Logger } from '@nodekeeper/common';
import type { MachineObject } from '../api/objects.ts';
import type { PackageDefault } from '../model/packages.ts';
import type { ClusterStatusInput } from './cluster-status.ts';
import { ClusterStatusSync } from './cluster-status-sync.ts';
import { HostCredential } from './host-credential.ts';
import { watchUnjudged } from './host-watch.ts';
import { hostError, KubeClients } from './kube-client.ts';
import { LeaseRenewal } from './lease-renewal.ts';
import { MachineMirror } from './machine-mirror.ts';
import { DEFAULT_MIRROR_LINGER_MS, type HostMirrorMode } from './mirror-selection.ts';
import { memberNamespace } from './names.ts';
import { HostObjectSync, type HostObjectDeps } from './object-sync.ts';
import { PackagePull } from './package-pull.ts';
import { register, type HostRegistration, type RegisterRequest } from './registration.ts';

export interface HostSyncOptions {
  readonly syncIntervalMs: number;
  readonly leaseDurationSeconds: number;
  readonly statusRefreshMs: number;
  readonly tokenTtlSeconds: number;
  /** Concurrent Machine writes per sync. */
  readonly writeConcurrency: number;
  /** Which Machines are mirrored: those that need an eye (default), or all (mirror-selection.ts). */
  readonly mirror: HostMirrorMode;
  /** How long a machine stays mirrored after it last needed it. */
  readonly mirrorLingerMs: number;
}

export const DEFAULT_HOST_SYNC: HostSyncOptions = {
  syncIntervalMs: 10_000, leaseDurationSeconds: 40, statusRefreshMs: 300_000, tokenTtlSeconds: 86_400, writeConcurrency: 8, mirror: 'unhealthy', mirrorLingerMs: DEFAULT_MIRROR_LINGER_MS,
};

export interface HostSyncDeps {
  readonly registrationFile: string;
  readonly log: Logger;
  /** Wall clock, for timestamps written to the host (never for liveness). */
  readonly wallClock: () => number;
  /** The Cluster status inputs besides the machines (which the sync reads once for both uses). */
  readonly statusInput: () => Omit<ClusterStatusInput, 'machines'>;
  readonly machines: () => readonly MachineObject[];
  readonly controlPlaneVersion: () => string | null;
  readonly localPackages: () => readonly PackageDefault[];
  /** Applies packages pulled from the host to the member's own record; returns its generation. */
  readonly applyPackages: (packages: PackageDefault[], source: string) => number;
  readonly recordEvent: (type: 'Normal' | 'Warning', reason: string, message: string) => void;
  /** Link paths and services host manifests may use (default: the built-in packages'). */
  readonly installAllowList?: InstallAllowList;
  /** Rollouts and RemediationRules from the host (absent: not pulled). */
  readonly objects?: HostObjectDeps;
}

export interface HostSyncState {
  readonly registered: boolean;
  readonly cluster: string | null;
  readonly server: string | null;
  readonly namespace: string | null;
  readonly tokenExpires: string | null;
  readonly lastSyncTime: string | null;
  readonly lastLeaseRenewTime: string | null;
  readonly lastError: { readonly code: string; readonly message: string; readonly at: string } | null;
  readonly machinesMirrored: number;
  readonly statusWrites: number;
  readonly machineWrites: number;
  /** Status writes to host Rollouts and RemediationRules (written only when they change). */
  readonly objectStatusWrites: number;
}

export class HostSync {
  private clients: KubeClients | null = null;
  private objectWatches: Array<ListWatch<KubernetesObject>> = [];
  /** A host object changed during a sync: run again right after it. */
  private again = false;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;
  private lastSync: number | null = null;
  private lastError: HostSyncState['lastError'] = null;

  private readonly deps: HostSyncDeps;
  private readonly opts: HostSyncOptions;
  private readonly credential: HostCredential;
  private readonly lease: LeaseRenewal;
  private readonly cluster: ClusterStatusSync;
  private readonly mirror: MachineMirror;
  private readonly packages: PackagePull;
  private readonly objectSync: HostObjectSync | null;

  constructor(deps: HostSyncDeps, opts: HostSyncOptions = DEFAULT_HOST_SYNC) {
    this.deps = deps;
    this.opts = opts;
    this.credential = new HostCredential(deps.registrationFile, deps.wallClock, deps.log);
    this.lease = new LeaseRenewal(opts.leaseDurationSeconds, deps.wallClock);
    this.cluster = new ClusterStatusSync(opts.statusRefreshMs, deps.wallClock, deps.log);
    this.mirror = new MachineMirror(opts.writeConcurrency, opts.mirror, opts.mirrorLingerMs);
    this.packages = new PackagePull({
      log: deps.log, wallClock: deps.wallClock, controlPlaneVersion: deps.controlPlaneVersion, localPackages: deps.localPackages,
      applyPackages: deps.applyPackages, recordEvent: deps.recordEvent, ...(deps.installAllowList === undefined ? {} : { installAllowList: deps.installAllowList }),
    });
    this.objectSync = deps.objects === undefined ? null : new HostObjectSync(deps.objects, deps.log, deps.wallClock);
  }

  state(): HostSyncState {
    const r = this.credential.current;
    const at = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
    return {
      registered: r !== null, cluster: r?.cluster ?? null, server: r?.server ?? null, namespace: r === null ? null : memberNamespace(r.cluster),
      tokenExpires: r?.tokenExpires ?? null, lastSyncTime: at(this.lastSync), lastLeaseRenewTime: at(this.lease.lastRenew), lastError: this.lastError,
      machinesMirrored: this.mirror.size, statusWrites: this.cluster.writes, machineWrites: this.mirror.writes,
      objectStatusWrites: this.objectSync?.statusWrites ?? 0,
    };
  }

  start(): void {
    this.stopped = false;
    if (this.credential.current !== null) this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
    this.resetClients();
  }

  /** Registers with a host (replacing any earlier registration) and syncs at once. */
  async register(req: RegisterRequest): Promise<HostSyncState> {
    const reg = await register(req);
    await this.stop();
    await this.credential.adopt(reg);
    this.resetClients();
    this.mirror.clear();
    this.cluster.reset();
    this.deps.recordEvent('Normal', 'Registered', `registered as cluster ${reg.cluster} with host ${reg.server}`);
    this.deps.log.info({ cluster: reg.cluster, host: reg.server }, 'registered with the host cluster');
    this.stopped = false;
    await this.syncNow();
    return this.state();
  }

  /**
   * Leaves the host: deletes this member's Cluster, Lease and Machines there, then
   * forgets the registration. With localOnly, only forgets (the host is gone).
   */
  async unregister(localOnly: boolean): Promise<string[]> {
    const reg = this.credential.current;
    if (reg === null) throw new AppError('NK_HOST_NOT_REGISTERED', 'this coordinator is not registered with a host cluster');
    await this.stop();
    const removed: string[] = [];
    if (!localOnly) {
      const c = this.clientsFor(reg);
      const ns = memberNamespace(reg.cluster);
      removed.push(...await this.mirror.removeAll(c, ns));
      removed.push(await this.lease.remove(c, ns));
      removed.push(await this.cluster.remove(c, reg.cluster));
    }
    this.credential.forget();
    this.resetClients();
    this.mirror.clear();
    this.deps.recordEvent('Normal', 'Unregistered', `left host ${reg.server} (${localOnly ? 'local registration forgotten only' : removed.join(', ')})`);
    return removed;
  }

  /** Runs one sync now (waiting for one in flight first). */
  async syncNow(): Promise<void> {
    await this.running;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    await this.runOnce();
  }

  /** Rotates the host credential now (an operator's request), without a restart. */
  async rotateNow(): Promise<HostSyncState> {
    if (this.credential.current === null) throw new AppError('NK_HOST_NOT_REGISTERED', 'this coordinator is not registered with a host cluster');
    await this.running;
    await this.rotateIfDue(true);
    return this.state();
  }

  private async rotateIfDue(force = false): Promise<void> {
    if (await this.credential.rotateIfDue(this.opts.tokenTtlSeconds, force)) this.resetClients();
  }

  private clientsFor(reg: HostRegistration): KubeClients {
    if (this.clients === null) {
      this.clients = KubeClients.of({ server: reg.server, caPem: reg.caPem, token: reg.token });
      this.watchHostObjects(this.clients, reg);
    }
    return this.clients;
  }

  /** Drops the clients (a new credential, or none); the watches go with them. */
  private resetClients(): void {
    this.clients = null;
    this.packages.stopWatch();
    for (const w of this.objectWatches) void w.stop().catch(() => {});
    this.objectWatches = [];
  }

  /**
   * Watches what is authored on the host for this member (ClusterPackageVersions, and the
   * Rollouts and RemediationRules when they are pulled), so a new generation is judged
   * within moments.
   */
  private watchHostObjects(c: KubeClients, reg: HostRegistration): void {
    const ns = memberNamespace(reg.cluster);
    const retry = this.opts.syncIntervalMs;
    this.packages.watch(c, ns, () => this.soon(), retry);
    if (this.objectSync === null) return;
    for (const plural of ['rollouts', 'remediationrules'] as const) {
      const w = watchUnjudged(c, ns, plural, () => this.soon(), (x) => this.objectWatches.includes(x), retry);
      this.objectWatches.push(w);
    }
  }

  /** Syncs soon (a host object changed): now if idle, else right after the sync in flight. */
  private soon(): void {
    if (this.stopped || this.credential.current === null) return;
    if (this.running !== null) {
      this.again = true;
      return;
    }
    if (this.timer !== null) clearTimeout(this.timer);
    this.schedule(0);
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.runOnce(), delayMs);
    this.timer.unref();
  }

  private async runOnce(): Promise<void> {
    if (this.running !== null || this.credential.current === null) return;
    this.running = this.syncOnce().finally(() => {
      this.running = null;
      // 0.9x to 1.1x: members registered together do not renew in step.
      this.schedule(this.again ? 0 : this.opts.syncIntervalMs * (0.9 + Math.random() * 0.2));
      this.again = false;
    });
    await this.running;
  }

  private async syncOnce(): Promise<void> {
    try {
      await this.rotateIfDue();
      const reg = this.credential.current!;
      const c = this.clientsFor(reg);
      await this.lease.renew(c, reg);
      const machines = this.deps.machines();
      // performance.now(): the linger is a duration on this process's own clock.
      const mirrored = this.mirror.select(machines, performance.now());
      await this.cluster.sync(c, reg, { ...this.deps.statusInput(), machines, mirror: { mode: this.mirror.mode, machines: mirrored.length } });
      await this.mirror.sync(c, reg, mirrored);
      await this.packages.pull(c, reg);
      await this.objectSync?.sync(c, reg.cluster);
      this.lastSync = this.deps.wallClock();
      if (this.lastError !== null) this.deps.log.info({ cluster: reg.cluster }, 'host sync recovered');
      this.lastError = null;
    } catch (err) {
      const e = err instanceof AppError ? err : hostError('host sync', err);
      if (this.lastError?.code !== e.code) this.deps.log.warn({ code: e.code, err: e.message }, 'host sync failed; retrying next interval');
      this.lastError = { code: e.code, message: e.message, at: new Date(this.deps.wallClock()).toISOString() };
      // Someone else changed or removed what we hold: read it all again next time.
      if (e.code === 'NK_HOST_CONFLICT' || e.code === 'NK_HOST_NOT_FOUND') this.mirror.relist();
    }
  }
}
