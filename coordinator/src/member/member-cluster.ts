/**
 * The member cluster's own API, as the coordinator uses it:
 *   - its kube-apiserver version (bounds kubelet upgrades: version-skew policy);
 *   - each Node's readiness, shown beside the agent's view of the same machine;
 *   - cordon and drain before a disruptive install, through the Eviction API so
 *     PodDisruptionBudgets are honoured, and uncordon afterwards.
 * nodekeeper marks the nodes it cordons (annotation) and uncordons only those, so it
 * never undoes an operator's cordon, and never leaves one of its own behind.
 */
import { ListWatch, Watch, type KubeConfig, type V1Node, type V1Pod } from '@kubernetes/client-node';
import { AppError, type Logger } from '@nodekeeper/common';
import type { NodeView } from '../host/cluster-status.ts';
import { apiMessage, KubeClients, mergePatch, statusOf } from '../host/kube-client.ts';

export const CORDONED_BY = 'nodekeeper.io/cordoned-by';
/** How often the member's kube-apiserver version is read (it changes only on an upgrade). */
const VERSION_POLL_MS = 60_000;
/** Pause before a failed Node watch is started again. */
const WATCH_RESTART_MS = 5_000;
/** How often a refused eviction is tried again during a drain. */
const EVICTION_RETRY_MS = 2_000;

export interface DrainResult {
  readonly evicted: readonly string[];
  readonly skipped: readonly string[];
}

/** Pods a drain leaves alone: DaemonSet pods, static (mirror) pods, and finished ones. Pure. */
export function drainSkipReason(pod: V1Pod): string | null {
  if (pod.metadata?.annotations?.['kubernetes.io/config.mirror'] !== undefined) return 'static pod';
  if (pod.metadata?.ownerReferences?.some((o) => o.kind === 'DaemonSet' && o.controller === true)) return 'DaemonSet pod';
  if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') return 'finished';
  return null;
}

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

  constructor(kc: KubeConfig, o: { log: Logger; drainTimeoutMs: number }) {
    this.c = new KubeClients(kc);
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

  /** Marks the node unschedulable, noting who did it; a node an operator cordoned stays theirs. */
  async cordon(node: string, by: string): Promise<'cordoned' | 'already-cordoned'> {
    const n = await this.readNode(node);
    // Cordoned by the same owner before a restart counts as ours again, so it is undone later.
    if (n.spec?.unschedulable === true) return n.metadata?.annotations?.[CORDONED_BY] === by ? 'cordoned' : 'already-cordoned';
    await this.patchNode(node, { metadata: { annotations: { [CORDONED_BY]: by } }, spec: { unschedulable: true } }, 'cordon');
    return 'cordoned';
  }

  /** Uncordons a node nodekeeper cordoned (and only such a node; with `by`, only if that one did). */
  async uncordon(node: string, by?: string): Promise<'uncordoned' | 'not-ours' | 'not-cordoned'> {
    const n = await this.readNode(node);
    if (n.spec?.unschedulable !== true) return 'not-cordoned';
    const mark = n.metadata?.annotations?.[CORDONED_BY];
    if (mark === undefined || (by !== undefined && mark !== by)) return 'not-ours';
    await this.patchNode(node, { metadata: { annotations: { [CORDONED_BY]: null } }, spec: { unschedulable: null } }, 'uncordon');
    return 'uncordoned';
  }

  /**
   * Evicts every pod on the node a drain should move (the Eviction API: a
   * PodDisruptionBudget may refuse, with 429). Refused evictions are retried until
   * the drain timeout; then NK_DRAIN_BLOCKED names the pod and the budget's message.
   */
  /** `stop`: asked before each round of evictions; a reason ends the drain at once (NK_DRAIN_CANCELLED). */
  async drain(node: string, progress: (line: string) => void = () => {}, timeoutMs = this.drainTimeoutMs, stop: () => string | null = () => null): Promise<DrainResult> {
    const deadline = Date.now() + timeoutMs;
    const evicted: string[] = [];
    const skipped: string[] = [];
    let pods: V1Pod[];
    try {
      pods = (await this.c.core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${node}` })).items;
    } catch (err) {
      throw memberError(`list pods on ${node}`, err);
    }
    const pending: V1Pod[] = [];
    for (const pod of pods) {
      const id = `${pod.metadata?.namespace}/${pod.metadata?.name}`;
      const skip = drainSkipReason(pod);
      if (skip !== null) skipped.push(`${id} (${skip})`);
      else if (pod.metadata?.deletionTimestamp === undefined) pending.push(pod);
    }
    let blocked = '';
    while (pending.length > 0) {
      const why = stop();
      if (why !== null) throw new AppError('NK_DRAIN_CANCELLED', `drain of ${node} stopped: ${why}`, { context: { node } });
      for (let i = pending.length - 1; i >= 0; i -= 1) {
        const pod = pending[i]!;
        const name = pod.metadata!.name!;
        const namespace = pod.metadata!.namespace!;
        try {
          await this.c.core.createNamespacedPodEviction({ name, namespace, body: { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name, namespace } } });
          evicted.push(`${namespace}/${name}`);
          progress(`evicted ${namespace}/${name}`);
          pending.splice(i, 1);
        } catch (err) {
          const status = statusOf(err);
          if (status === 404) {
            pending.splice(i, 1);
          } else if (status === 429 || status === 500) {
            // 429: a PodDisruptionBudget says no for now; 500: several budgets match the pod.
            const msg = `eviction of ${namespace}/${name} refused: ${apiMessage(err)}`;
            if (msg !== blocked) progress(msg);
            blocked = msg;
          } else {
            throw memberError(`evict ${namespace}/${name}`, err);
          }
        }
      }
      if (pending.length === 0) break;
      if (Date.now() + EVICTION_RETRY_MS > deadline) {
        throw new AppError('NK_DRAIN_BLOCKED', `drain of ${node} stopped after ${Math.round(timeoutMs / 1000)} s: ${blocked || 'evictions were refused'}`, {
          context: { node, pending: pending.map((p) => `${p.metadata?.namespace}/${p.metadata?.name}`) },
        });
      }
      await new Promise((r) => setTimeout(r, EVICTION_RETRY_MS));
    }
    return { evicted, skipped };
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

function memberError(what: string, err: unknown): AppError {
  const status = statusOf(err);
  const code = status === 404 ? 'NK_MEMBER_NODE_NOT_FOUND' : status === 0 ? 'NK_MEMBER_UNREACHABLE' : 'NK_MEMBER_API_ERROR';
  return new AppError(code, `${what}: ${apiMessage(err)}`, { cause: err });
}
