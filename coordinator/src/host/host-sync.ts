/**
 * The member's side of pull mode, once registered: every sync interval (about 10 s,
 * jittered) it
 *   1. rotates its host credential when 80 % of its lifetime has passed;
 *   2. renews its Lease (duration 40 s), which is how the host knows it is alive;
 *   3. writes its Cluster status when it differs from what the host holds (and at a
 *      slow refresh, every 5 min), so a host-side Unknown is corrected at once;
 *   4. mirrors its Machines into its namespace, writing only those that changed;
 *   5. pulls the ClusterPackageVersions authored for it, applies the accepted ones to
 *      its own record and writes the verdict back to their status;
 *   6. pulls the Rollouts and RemediationRules authored for it (object-sync.ts) and
 *      writes their verdict and progress back.
 * Every step is bounded; a failing host is logged, retried next interval and shown in
 * `nkctl host status`; it never stops the member's own work.
 */
import type { InstallAllowList } from '@nodekeeper/protocol';
import os from 'node:os';
import type { KubernetesObject, ListWatch } from '@kubernetes/client-node';
import { AppError, type Logger } from '@nodekeeper/common';
import type { MachineObject } from '../api/objects.ts';
import type { PackageDefault } from '../model/packages.ts';
import { canonicalJson, clusterStatus, hostMachine, sameClusterStatus, type ClusterStatusInput, type HostCondition } from './cluster-status.ts';
import { judgeHostCpvs, mergePackages, type HostCpv } from './cpv-pull.ts';
import { hostError, KubeClients, mergePatch, statusOf } from './kube-client.ts';
import { watchUnjudged } from './host-watch.ts';
import { HostObjectSync, type HostObjectDeps } from './object-sync.ts';
import { API_VERSION, CLUSTER_LABEL, FIELD_MANAGER, LEASE_NAME, memberNamespace } from './names.ts';
import { forgetRegistration, loadRegistration, register, requestMemberToken, rotationDue, saveRegistration, type HostRegistration, type RegisterRequest } from './registration.ts';

export interface HostSyncOptions {
  readonly syncIntervalMs: number;
  readonly leaseDurationSeconds: number;
  readonly statusRefreshMs: number;
  readonly tokenTtlSeconds: number;
  /** Concurrent Machine writes per sync. */
  readonly writeConcurrency: number;
}

export const DEFAULT_HOST_SYNC: HostSyncOptions = { syncIntervalMs: 10_000, leaseDurationSeconds: 40, statusRefreshMs: 300_000, tokenTtlSeconds: 86_400, writeConcurrency: 8 };

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
  private reg: HostRegistration | null;
  private clients: KubeClients | null = null;
  private cpvWatch: ListWatch<HostCpvObject> | null = null;
  private objectWatches: Array<ListWatch<KubernetesObject>> = [];
  /** A host object changed during a sync: run again right after it. */
  private again = false;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;
  /** Machine name -> JSON of what the host holds (as last written or read). */
  private mirrored = new Map<string, string>();
  private mirrorListed = false;
  private lastStatusWrite = 0;
  private lastSync: number | null = null;
  private lastLease: number | null = null;
  private lastError: HostSyncState['lastError'] = null;
  private statusWrites = 0;
  private machineWrites = 0;

  private readonly deps: HostSyncDeps;
  private readonly opts: HostSyncOptions;
  private readonly objectSync: HostObjectSync | null;

  constructor(deps: HostSyncDeps, opts: HostSyncOptions = DEFAULT_HOST_SYNC) {
    this.deps = deps;
    this.opts = opts;
    this.objectSync = deps.objects === undefined ? null : new HostObjectSync(deps.objects, deps.log, deps.wallClock);
    this.reg = loadRegistration(deps.registrationFile);
  }

  state(): HostSyncState {
    const r = this.reg;
    const at = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
    return {
      registered: r !== null, cluster: r?.cluster ?? null, server: r?.server ?? null, namespace: r === null ? null : memberNamespace(r.cluster),
      tokenExpires: r?.tokenExpires ?? null, lastSyncTime: at(this.lastSync), lastLeaseRenewTime: at(this.lastLease), lastError: this.lastError,
      machinesMirrored: this.mirrored.size, statusWrites: this.statusWrites, machineWrites: this.machineWrites,
      objectStatusWrites: this.objectSync?.statusWrites ?? 0,
    };
  }

  start(): void {
    this.stopped = false;
    if (this.reg !== null) this.schedule(0);
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
    await saveRegistration(this.deps.registrationFile, reg);
    this.adopt(reg);
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
    const reg = this.reg;
    if (reg === null) throw new AppError('NK_HOST_NOT_REGISTERED', 'this coordinator is not registered with a host cluster');
    await this.stop();
    const removed: string[] = [];
    if (!localOnly) {
      const c = this.clientsFor(reg);
      const ns = memberNamespace(reg.cluster);
      const ignore404 = (what: string) => (err: unknown) => {
        if (statusOf(err) !== 404) throw hostError(what, err);
      };
      const machines = await c.custom.listNamespacedCustomObject({ ...c.crd('machines'), namespace: ns }).catch((err: unknown) => {
        throw hostError(`list Machines in ${ns}`, err);
      }) as { items: Array<{ metadata: { name: string } }> };
      for (const m of machines.items) {
        await c.custom.deleteNamespacedCustomObject({ ...c.crd('machines'), namespace: ns, name: m.metadata.name }).catch(ignore404(`delete Machine ${m.metadata.name}`));
        removed.push(`machine/${m.metadata.name}`);
      }
      await c.coordination.deleteNamespacedLease({ name: LEASE_NAME, namespace: ns }).catch(ignore404('delete the Lease'));
      removed.push(`lease/${LEASE_NAME}`);
      await c.custom.deleteClusterCustomObject({ ...c.crd('clusters'), name: reg.cluster }).catch(ignore404('delete the Cluster'));
      removed.push(`cluster/${reg.cluster}`);
    }
    forgetRegistration(this.deps.registrationFile);
    this.reg = null;
    this.resetClients();
    this.mirrored.clear();
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

  private adopt(reg: HostRegistration): void {
    this.reg = reg;
    this.resetClients();
    this.mirrored.clear();
    this.mirrorListed = false;
    this.lastStatusWrite = 0;
  }

  private clientsFor(reg: HostRegistration): KubeClients {
    if (this.clients === null) {
      this.clients = KubeClients.of({ server: reg.server, caPem: reg.caPem, token: reg.token });
      this.watchHostObjects(this.clients, reg);
    }
    return this.clients;
  }

  /** Drops the clients (a new credential, or none); the package watch goes with them. */
  private resetClients(): void {
    this.clients = null;
    void this.cpvWatch?.stop().catch(() => {});
    this.cpvWatch = null;
    for (const w of this.objectWatches) void w.stop().catch(() => {});
    this.objectWatches = [];
  }

  /**
   * Watches what is authored on the host for this member (ClusterPackageVersions, and the
   * Rollouts and RemediationRules when they are pulled), so a new generation is judged
   * within moments; the sync reads the CPV watch's cache, and lists while it has not
   * listed yet.
   */
  private watchHostObjects(c: KubeClients, reg: HostRegistration): void {
    const ns = memberNamespace(reg.cluster);
    const retry = this.opts.syncIntervalMs;
    this.cpvWatch = watchUnjudged<HostCpvObject>(c, ns, 'clusterpackageversions', () => this.soon(), (w) => this.cpvWatch === w, retry);
    if (this.objectSync === null) return;
    for (const plural of ['rollouts', 'remediationrules'] as const) {
      const w = watchUnjudged(c, ns, plural, () => this.soon(), (x) => this.objectWatches.includes(x), retry);
      this.objectWatches.push(w);
    }
  }

  /** Syncs soon (a host object changed): now if idle, else right after the sync in flight. */
  private soon(): void {
    if (this.stopped || this.reg === null) return;
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
    if (this.running !== null || this.reg === null) return;
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
      const reg = this.reg!;
      const c = this.clientsFor(reg);
      await this.renewLease(c, reg);
      const machines = this.deps.machines();
      await this.syncCluster(c, reg, machines);
      await this.mirrorMachines(c, reg, machines);
      await this.pullPackages(c, reg);
      await this.objectSync?.sync(c, reg.cluster);
      this.lastSync = this.deps.wallClock();
      if (this.lastError !== null) this.deps.log.info({ cluster: reg.cluster }, 'host sync recovered');
      this.lastError = null;
    } catch (err) {
      const e = err instanceof AppError ? err : hostError('host sync', err);
      if (this.lastError?.code !== e.code) this.deps.log.warn({ code: e.code, err: e.message }, 'host sync failed; retrying next interval');
      this.lastError = { code: e.code, message: e.message, at: new Date(this.deps.wallClock()).toISOString() };
      if (e.code === 'NK_HOST_CONFLICT' || e.code === 'NK_HOST_NOT_FOUND') {
        // Someone else changed or removed what we hold: read it all again next time.
        this.mirrorListed = false;
          }
    }
  }

  /** Rotates the host credential now (an operator's request), without a restart. */
  async rotateNow(): Promise<HostSyncState> {
    if (this.reg === null) throw new AppError('NK_HOST_NOT_REGISTERED', 'this coordinator is not registered with a host cluster');
    await this.running;
    await this.rotateIfDue(true);
    return this.state();
  }

  private async rotateIfDue(force = false): Promise<void> {
    const reg = this.reg!;
    if (!force && !rotationDue(reg, this.deps.wallClock())) return;
    const { token, expires } = await requestMemberToken({ server: reg.server, caPem: reg.caPem, token: reg.token }, reg.cluster, this.opts.tokenTtlSeconds);
    const next = { ...reg, token, tokenExpires: expires, tokenIssued: new Date(this.deps.wallClock()).toISOString() };
    await saveRegistration(this.deps.registrationFile, next);
    this.reg = next;
    this.resetClients();
    this.deps.log.info({ expires }, 'host credential rotated');
  }

  private async renewLease(c: KubeClients, reg: HostRegistration): Promise<void> {
    const ns = memberNamespace(reg.cluster);
    const now = this.deps.wallClock();
    // A merge patch with renewTime as the API's MicroTime text (the typed client would send milliseconds).
    const patch = { spec: { holderIdentity: `${reg.cluster}/${os.hostname()}`, leaseDurationSeconds: this.opts.leaseDurationSeconds, renewTime: microTime(now) } };
    const renew = () => c.coordination.patchNamespacedLease({ name: LEASE_NAME, namespace: ns, body: patch }, mergePatch);
    try {
      await renew();
    } catch (err) {
      if (statusOf(err) !== 404) throw hostError('renew the Lease', err);
      try {
        await c.coordination.createNamespacedLease({
          namespace: ns,
          body: { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: LEASE_NAME, namespace: ns, labels: { [CLUSTER_LABEL]: reg.cluster } }, spec: {} },
        });
        await renew();
      } catch (err2) {
        throw hostError('create the Lease', err2);
      }
    }
    this.lastLease = now;
  }

  private async syncCluster(c: KubeClients, reg: HostRegistration, machines: readonly MachineObject[]): Promise<void> {
    const res = c.crd('clusters');
    let current: { status?: { conditions?: HostCondition[] } } | null = null;
    try {
      current = await c.custom.getClusterCustomObject({ ...res, name: reg.cluster });
    } catch (err) {
      if (statusOf(err) !== 404) throw hostError(`read Cluster ${reg.cluster}`, err);
    }
    if (current === null) {
      const spec = {
        id: reg.cluster, syncMode: 'Pull',
        ...(reg.provider ? { provider: reg.provider } : {}), ...(reg.region ? { region: reg.region } : {}), ...(reg.zone ? { zone: reg.zone } : {}),
      };
      try {
        current = await c.custom.createClusterCustomObject({ ...res, body: { apiVersion: API_VERSION, kind: 'Cluster', metadata: { name: reg.cluster, labels: { [CLUSTER_LABEL]: reg.cluster } }, spec } });
      } catch (err) {
        throw hostError(`create Cluster ${reg.cluster}`, err);
      }
      this.deps.log.info({ cluster: reg.cluster }, 'Cluster object created on the host');
    }
    const now = this.deps.wallClock();
    const status = clusterStatus({ ...this.deps.statusInput(), machines }, current?.status?.conditions, new Date(now).toISOString());
    if (sameClusterStatus(current?.status, status) && now - this.lastStatusWrite < this.opts.statusRefreshMs) return;
    try {
      await c.custom.patchClusterCustomObjectStatus({ ...res, name: reg.cluster, body: { status } }, mergePatch);
    } catch (err) {
      throw hostError(`write Cluster ${reg.cluster} status`, err);
    }
    this.lastStatusWrite = now;
    this.statusWrites += 1;
  }

  private async mirrorMachines(c: KubeClients, reg: HostRegistration, machines: readonly MachineObject[]): Promise<void> {
    const ns = memberNamespace(reg.cluster);
    const res = { ...c.crd('machines'), namespace: ns };
    if (!this.mirrorListed) {
      const list = await c.custom.listNamespacedCustomObject(res).catch((err: unknown) => {
        throw hostError(`list Machines in ${ns}`, err);
      }) as { items: Array<{ metadata: { name: string }; spec?: unknown; status?: unknown }> };
      this.mirrored = new Map(list.items.map((m) => [m.metadata.name, fingerprint(m.spec, m.status)]));
      this.mirrorListed = true;
    }
    const wanted = new Map(machines.map((m) => [m.metadata.name, hostMachine(m, reg.cluster, ns)]));
    const writes: Array<() => Promise<void>> = [];
    for (const [name, obj] of wanted) {
      const fp = fingerprint(obj.spec, obj.status);
      const had = this.mirrored.get(name);
      if (had === fp) continue;
      writes.push(async () => {
        try {
          const patchSpec = () => c.custom.patchNamespacedCustomObject({ ...res, name, body: { metadata: { labels: obj.metadata.labels }, spec: obj.spec } }, mergePatch);
          if (had === undefined) {
            // Already there (written before a lost answer, or by an earlier run): update it instead.
            await c.custom.createNamespacedCustomObject({ ...res, body: { apiVersion: obj.apiVersion, kind: obj.kind, metadata: obj.metadata, spec: obj.spec } }).catch((err: unknown) => {
              if (statusOf(err) !== 409) throw err;
              return patchSpec();
            });
          } else {
            await patchSpec();
          }
          // Merge patch of the whole status: fields that disappeared are set to null.
          await c.custom.patchNamespacedCustomObjectStatus({ ...res, name, body: { status: obj.status } }, mergePatch);
          this.mirrored.set(name, fp);
          this.machineWrites += 1;
        } catch (err) {
          this.mirrored.delete(name);
          throw hostError(`write Machine ${ns}/${name}`, err);
        }
      });
    }
    for (const name of this.mirrored.keys()) {
      if (wanted.has(name)) continue;
      writes.push(async () => {
        await c.custom.deleteNamespacedCustomObject({ ...res, name }).catch((err: unknown) => {
          if (statusOf(err) !== 404) throw hostError(`delete Machine ${ns}/${name}`, err);
        });
        this.mirrored.delete(name);
      });
    }
    await runLimited(writes, this.opts.writeConcurrency);
  }

  private async pullPackages(c: KubeClients, reg: HostRegistration): Promise<void> {
    const ns = memberNamespace(reg.cluster);
    const res = { ...c.crd('clusterpackageversions'), namespace: ns };
    const watched = this.cpvWatch !== null && this.cpvWatch.latestResourceVersion() !== '' ? this.cpvWatch.list() : null;
    const items = watched ?? (await c.custom.listNamespacedCustomObject(res).catch((err: unknown) => {
      throw hostError(`list ClusterPackageVersions in ${ns}`, err);
    }) as { items: HostCpv[] }).items;
    const verdicts = judgeHostCpvs(items, this.deps.controlPlaneVersion(), this.deps.installAllowList);
    for (const v of verdicts) {
      const now = new Date(this.deps.wallClock()).toISOString();
      let memberGeneration: number | null = null;
      if (v.accepted) {
        memberGeneration = this.deps.applyPackages(mergePackages(this.deps.localPackages(), v.packages), `host ClusterPackageVersion ${ns}/${v.name} generation ${v.generation}`);
        this.deps.log.info({ object: v.name, generation: v.generation, memberGeneration }, 'applied a ClusterPackageVersion from the host');
      } else {
        this.deps.recordEvent('Warning', 'HostObjectRefused', `host ClusterPackageVersion ${ns}/${v.name} generation ${v.generation}: ${v.reason}: ${v.message}`);
        this.deps.log.warn({ object: v.name, generation: v.generation, reason: v.reason, message: v.message }, 'refused a ClusterPackageVersion from the host');
      }
      const conditions = v.accepted
        ? [
          { type: 'Accepted', status: 'True', reason: 'Valid', message: `packages: ${v.packages.map((p) => `${p.name}=${p.version}`).join(', ')}`, lastTransitionTime: now, observedGeneration: v.generation },
          { type: 'Applied', status: 'True', reason: 'AppliedToMember', message: `member ClusterPackageVersion generation ${memberGeneration}`, lastTransitionTime: now, observedGeneration: v.generation },
        ]
        : [
          { type: 'Accepted', status: 'False', reason: v.reason, message: v.message, lastTransitionTime: now, observedGeneration: v.generation },
          { type: 'Applied', status: 'False', reason: 'NotAccepted', message: 'nothing was applied', lastTransitionTime: now, observedGeneration: v.generation },
        ];
      const status = { observedGeneration: v.generation, conditions, ...(memberGeneration === null ? {} : { memberGeneration }) };
      await c.custom.patchNamespacedCustomObjectStatus({ ...res, name: v.name, body: { status } }, mergePatch).catch((err: unknown) => {
        throw hostError(`write ClusterPackageVersion ${ns}/${v.name} status`, err);
      });
    }
  }
}

/** RFC 3339 with microseconds, as Kubernetes' MicroTime is written. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

type HostCpvObject = HostCpv & { apiVersion?: string; kind?: string; metadata: HostCpv['metadata'] & { namespace?: string } };

function fingerprint(spec: unknown, status: unknown): string {
  return canonicalJson([spec, status]);
}

/** Runs tasks with at most `limit` in flight; rejects with the first failure after all settle. */
async function runLimited(tasks: ReadonlyArray<() => Promise<void>>, limit: number): Promise<void> {
  let next = 0;
  let failure: unknown = null;
  const worker = async () => {
    while (next < tasks.length) {
      const task = tasks[next++]!;
      try {
        await task();
      } catch (err) {
        failure ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  if (failure !== null) throw failure;
}
