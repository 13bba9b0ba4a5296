/**
 * The member cluster's own API, as the coordinator uses it:
 *   - its kube-apiserver version (bounds kubelet upgrades: version-skew policy);
 *   - each Node's readiness, shown beside the agent's view of the same machine;
 *   - cordon and drain before a disruptive install, through the Eviction API so
 *     PodDisruptionBudgets are honoured, and uncordon afterwards.
 * nodekeeper marks the nodes it cordons (annotation) and uncordons only those, so it
 * never undoes an operator's cordon, and never leaves one of its own behind.
 */
import { makeInformer, type Informer, type KubeConfig, type ObjectCache, type V1Node, type V1Pod } from '@kubernetes/client-node';
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
  private readonly nodes: Informer<V1Node> & ObjectCache<V1Node>;
  private nodesSynced = false;
  private gitVersion: string | null = null;
  private versionError: string | null = null;
  private watchError: string | null = null;
  private timers: NodeJS.Timeout[] = [];
  private stopped = false;
  private versionListeners: Array<(v: string) => void> = [];

  constructor(kc: KubeConfig, o: { log: Logger; drainTimeoutMs: number }) {
    this.c = new KubeClients(kc);
    this.log = o.log;
    this.drainTimeoutMs = o.drainTimeoutMs;
    this.nodes = makeInformer(kc, '/api/v1/nodes', () => this.c.core.listNode());
    this.nodes.on('connect', () => {
      this.nodesSynced = true;
      if (this.watchError !== null) this.log.info('watching the member cluster Nodes again');
      this.watchError = null;
    });
    this.nodes.on('error', (err: unknown) => {
      const msg = `member API: watch Nodes: ${apiMessage(err)}`;
      if (msg !== this.watchError) this.log.warn({ err: msg }, 'the member cluster Node watch failed; restarting it');
      this.watchError = msg;
      this.later(() => void this.nodes.start().catch(() => {}), WATCH_RESTART_MS);
    });
  }

  start(): void {
    this.stopped = false;
    void this.nodes.start().catch(() => {}); // failures arrive as 'error' events
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
  async drain(node: string, progress: (line: string) => void = () => {}, timeoutMs = this.drainTimeoutMs): Promise<DrainResult> {
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
