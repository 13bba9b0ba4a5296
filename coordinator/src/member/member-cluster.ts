/**
 * The member cluster's own API, as the coordinator uses it:
 *   - its kube-apiserver version (bounds kubelet upgrades: version-skew policy);
 *   - each Node's readiness, shown beside the agent's view of the same machine;
 *   - cordon, drain (kubectl drain's rules: drain.ts) and uncordon around disruptive
 *     work; cordon and uncordon of one Node run one after another (serial()).
 * nodekeeper marks the nodes it cordons (annotation) and uncordons only those, so it
 * never undoes an operator's cordon, and never leaves one of its own behind.
 */
import { AppsV1Api, ListWatch, Watch, type KubeConfig, type V1Node } from '@kubernetes/client-node';
import { AppError, type Logger } from '@nodekeeper/common';
import type { NodeView } from '../host/cluster-status.ts';
import { apiMessage, KubeClients, mergePatch } from '../host/kube-client.ts';
import { drainNode, memberError, type DrainOptions, type DrainResult } from './drain.ts';

export const CORDONED_BY = 'nodekeeper.io/cordoned-by';
/** How often the member's kube-apiserver version is read (it changes only on an upgrade). */
const VERSION_POLL_MS = 60_000;
/** Pause before a failed Node watch is started again. */
const WATCH_RESTART_MS = 5_000;
export type { DrainOptions, DrainResult } from './drain.ts';

export function nodeView(node: V1Node): NodeView {
  const ready = node.status?.conditions?.find((c) => c.type === 'Ready')?.status;
  return {
    name: node.metadata?.name ?? '',
    ready: ready === 'True' || ready === 'False' ? ready : 'Unknown',
    unschedulable: node.spec?.unschedulable === true,
    providerID: node.spec?.providerID ?? null,
  };
}

export class MemberCluster {
  private readonly c: KubeClients;
  private readonly apps: AppsV1Api;
  /** The last cordon/uncordon queued per Node (see serial()). */
  private readonly nodeOps = new Map<string, Promise<void>>();
  private readonly log: Logger;
  private readonly drainTimeoutMs: number;
  /** Nodes, kept by a list-and-watch (one watch, not a list of every Node each sync). */
  private readonly nodes: ListWatch<V1Node>;
  private nodesSynced = false;
  private markSynced: () => void = () => {};
  private readonly syncedOnce = new Promise<void>((resolve) => (this.markSynced = resolve));
  private gitVersion: string | null = null;
  private versionError: string | null = null;
  private watchError: string | null = null;
  private watchFailures = 0;
  private timers: NodeJS.Timeout[] = [];
  private stopped = false;
  private versionListeners: Array<(v: string) => void> = [];

  /** Told how long each drain took and how it ended (ok, or its error code), for /metrics. */
  private readonly drained: (seconds: number, result: string) => void;

  constructor(kc: KubeConfig, o: { log: Logger; drainTimeoutMs: number; drained?: (seconds: number, result: string) => void }) {
    this.drained = o.drained ?? (() => {});
    this.c = new KubeClients(kc);
    this.apps = kc.makeApiClient(AppsV1Api);
    this.log = o.log;
    this.drainTimeoutMs = o.drainTimeoutMs;
    // A ListWatch (what makeInformer builds) typed as such: its resourceVersion says whether a list succeeded.
    this.nodes = new ListWatch('/api/v1/nodes', new Watch(kc), () => this.c.core.listNode(), false);
    this.nodes.on('error', (err: unknown) => {
      // The informer re-watches by itself after a watch ends; an error event means its
      // list or watch failed and it stopped: start it again (at once the first time, a
      // cut connection is routine; later ones count as an outage of the member API).
      this.watchFailures += 1;
      const msg = `member API: watch Nodes: ${apiMessage(err)}`;
      if (this.watchFailures > 1) {
        if (msg !== this.watchError) this.log.warn({ err: msg }, 'the member cluster Node watch keeps failing; retrying');
        this.watchError = msg;
      }
      this.later(() => this.startWatch(), this.watchFailures > 1 ? WATCH_RESTART_MS : 0);
    });
  }

  /** Starts (or restarts) the Node list-and-watch; the cache counts as synced once a list succeeded. */
  private startWatch(): void {
    this.nodes.start().then(() => {
      if (this.nodes.latestResourceVersion() === '') return; // the list failed: an error event follows
      this.nodesSynced = true;
      this.markSynced();
      if (this.watchError !== null) this.log.info('watching the member cluster Nodes again');
      this.watchError = null;
      this.watchFailures = 0;
    }, () => {});
  }

  start(): void {
    this.stopped = false;
    this.startWatch();
    const poll = async () => {
      await this.refreshVersion();
      this.later(() => void poll(), VERSION_POLL_MS);
    };
    void poll();
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers = [];
    void this.nodes.stop().catch(() => {});
  }

  private later(fn: () => void, ms: number): void {
    if (this.stopped) return;
    const t = setTimeout(() => {
      this.timers = this.timers.filter((x) => x !== t);
      fn();
    }, ms);
    t.unref();
    this.timers.push(t);
  }

  /** Resolves once the Node cache has been filled; rejects with NK_MEMBER_UNREACHABLE after `timeoutMs`. */
  async synced(timeoutMs: number): Promise<void> {
    if (this.nodesSynced) return;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new AppError('NK_MEMBER_UNREACHABLE', `the member cluster's Nodes could not be read within ${Math.round(timeoutMs / 1000)} s${this.watchError ? `: ${this.watchError}` : ''}`)), timeoutMs);
    });
    try {
      await Promise.race([this.syncedOnce, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  onVersion(listener: (v: string) => void): void {
    this.versionListeners.push(listener);
  }

  /** Reads the member's kube-apiserver version now. */
  async refreshVersion(): Promise<void> {
    try {
      const v = await this.c.version.getCode();
      if (v.gitVersion !== this.gitVersion) {
        this.gitVersion = v.gitVersion;
        for (const l of this.versionListeners) l(v.gitVersion);
      }
      this.versionError = null;
    } catch (err) {
      const msg = `member API: ${apiMessage(err)}`;
      if (msg !== this.versionError) this.log.warn({ err: msg }, 'cannot read the member cluster version');
      this.versionError = msg;
    }
  }

  version(): string | null {
    return this.gitVersion;
  }

  error(): string | null {
    return this.versionError ?? this.watchError;
  }

  /**
   * The Node of a machine: by name (a Machine is named after its node's hostname), else
   * by the kubernetes.io/hostname label, else by the machine id the kubelet reports.
   */
  findNode(machine: string, machineId: string | null = null): V1Node | null {
    const byName = this.nodes.get(machine);
    if (byName !== undefined) return byName;
    return this.nodes.list().find((n) => n.metadata?.labels?.['kubernetes.io/hostname'] === machine
      || (machineId !== null && n.status?.nodeInfo?.machineID === machineId)) ?? null;
  }

  node(machine: string, machineId: string | null = null): NodeView | null {
    const n = this.findNode(machine, machineId);
    return n === null ? null : nodeView(n);
  }

  /** Nodes nodekeeper cordoned, with who did (the annotation's value). */
  cordonedByUs(): Array<{ node: V1Node; by: string }> {
    return this.nodes.list().flatMap((n) => {
      const by = n.metadata?.annotations?.[CORDONED_BY];
      return by !== undefined && n.spec?.unschedulable === true ? [{ node: n, by }] : [];
    });
  }

  nodesReady(): number | null {
    return this.nodesSynced ? this.nodes.list().filter((n) => nodeView(n).ready === 'True').length : null;
  }

  /**
   * Marks the node unschedulable, noting who did it; a node an operator cordoned stays
   * theirs. `takeOver` names other nodekeeper marks this cordon replaces (remediation's
   * CordonAndNotify takes over the cordon of its own reinstall's drain, so it outlives it).
   */
  async cordon(node: string, by: string, takeOver: (mark: string) => boolean = () => false): Promise<'cordoned' | 'already-cordoned'> {
    return this.serial(node, async () => {
      const n = await this.readNode(node);
      const mark = n.metadata?.annotations?.[CORDONED_BY];
      if (n.spec?.unschedulable === true && mark !== undefined && mark !== by && takeOver(mark)) {
        await this.patchNode(node, { metadata: { annotations: { [CORDONED_BY]: by } } }, 'cordon');
        return 'cordoned';
      }
      // Cordoned by the same owner before a restart counts as ours again, so it is undone later.
      if (n.spec?.unschedulable === true) return mark === by ? 'cordoned' : 'already-cordoned';
      await this.patchNode(node, { metadata: { annotations: { [CORDONED_BY]: by } }, spec: { unschedulable: true } }, 'cordon');
      return 'cordoned';
    });
  }

  /**
   * Uncordons a node nodekeeper cordoned (and only such a node; with `by`, only if that one
   * did). `keep`, asked in turn with the Node's other cordon calls, may say why the cordon
   * must stay (e.g. remediation holds the node for a human now): then it is left.
   */
  async uncordon(node: string, by?: string, keep: () => string | null = () => null): Promise<'uncordoned' | 'not-ours' | 'not-cordoned' | 'kept'> {
    return this.serial(node, async () => {
      const n = await this.readNode(node);
      if (n.spec?.unschedulable !== true) return 'not-cordoned';
      const mark = n.metadata?.annotations?.[CORDONED_BY];
      if (mark === undefined || (by !== undefined && mark !== by)) return 'not-ours';
      if (keep() !== null) return 'kept';
      await this.patchNode(node, { metadata: { annotations: { [CORDONED_BY]: null } }, spec: { unschedulable: null } }, 'uncordon');
      return 'uncordoned';
    });
  }

  /**
   * Drains the node with kubectl drain's rules (drain.ts): refuses unmanaged and emptyDir
   * pods unless allowed, evicts the rest through the Eviction API (budgets retried with
   * backoff) and returns once they are gone. Cordon first (cordon()); this does not.
   */
  async drain(node: string, opts: DrainOptions): Promise<DrainResult> {
    const started = performance.now();
    const took = () => (performance.now() - started) / 1000;
    try {
      const result = await drainNode({ core: this.c.core, apps: this.apps }, node, opts);
      this.drained(took(), 'ok');
      return result;
    } catch (err) {
      this.drained(took(), err instanceof AppError ? err.code : 'error');
      throw err;
    }
  }

  /** The coordinator's --drain-timeout: the timeout of drains whose spec sets none. */
  defaultDrainTimeoutMs(): number {
    return this.drainTimeoutMs;
  }

  /** Runs cordon/uncordon calls on one Node one after another, so a check and its patch are never interleaved. */
  private serial<T>(node: string, fn: () => Promise<T>): Promise<T> {
    const before = this.nodeOps.get(node) ?? Promise.resolve();
    const run = before.then(fn, fn);
    const tail = run.then(() => {}, () => {});
    this.nodeOps.set(node, tail);
    void tail.then(() => {
      if (this.nodeOps.get(node) === tail) this.nodeOps.delete(node);
    });
    return run;
  }

  private async readNode(node: string): Promise<V1Node> {
    try {
      return await this.c.core.readNode({ name: node });
    } catch (err) {
      throw memberError(`read node ${node}`, err);
    }
  }

  private async patchNode(node: string, body: unknown, what: string): Promise<void> {
    try {
      await this.c.core.patchNode({ name: node, body }, mergePatch);
    } catch (err) {
      throw memberError(`${what} ${node}`, err);
    }
  }
}
