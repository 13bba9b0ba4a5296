/**
 * Kubernetes Events on the member cluster's Nodes: a sink of the event log
 * (notify/event-feed.ts) that turns remediation, rollout, drain and reboot events about
 * a machine into events.k8s.io/v1 Events regarding its Node, so `kubectl get events` and
 * `kubectl describe node` show what nodekeeper did. The plan (series, rate limits)
 * is kube-events-plan.ts; this file only writes it, through the generic object API
 * (it sends the MicroTime strings as they are).
 *
 * A failed write (API down, 5xx, 403 while RBAC is being fixed) fails the batch: the
 * feed retries it with backoff, and the writes not done yet are kept, so none is
 * doubled. A write the API refuses as invalid (400/422) is dropped and counted.
 */
import type { CustomObjectsApi, V1Node } from '@kubernetes/client-node';
import { AppError, type Logger } from '@nodekeeper/common';
import { apiMessage, mergePatch, statusOf } from '../host/kube-client.ts';
import type { EventSink } from '../notify/event-feed.ts';
import type { EventRecord } from '../model/records.ts';
import { microTime } from '../clock.ts';
import { EVENT_NAMESPACE, EventPlanner, eventBody, eventName, type DropReason, type KubeEventLimits, type KubeEventWrite, type NodeRef } from './kube-events-plan.ts';

/**
 * What the coordinator's member credential needs for Events, in the namespace `default`
 * (a Role and RoleBinding there): docs/kubernetes.md, "Events".
 */
export const KUBE_EVENTS_RBAC_RULES = Object.freeze([
  Object.freeze({ apiGroups: ['events.k8s.io'], resources: ['events'], verbs: ['create', 'patch'] }),
]);

const EVENTS = { group: 'events.k8s.io', version: 'v1', namespace: EVENT_NAMESPACE, plural: 'events' } as const;

export interface KubeEventSinkDeps {
  readonly api: Pick<CustomObjectsApi, 'createNamespacedCustomObject' | 'patchNamespacedCustomObject'>;
  /** The member's Node of a machine (MemberCluster.findNode), and whether the Node cache is filled. */
  readonly findNode: (machine: string) => V1Node | null;
  readonly nodesSynced: () => boolean;
  readonly log: Logger;
  readonly now: () => number;
  readonly counted: (what: { written?: 'create' | 'patch'; dropped?: DropReason | 'rejected' }, n?: number) => void;
}

export class KubeEventSink implements EventSink {
  readonly name = 'kube-events';
  private readonly planner: EventPlanner;
  /** Writes of a batch not done yet, kept across a retry of that batch. */
  private pending: { upto: number; writes: KubeEventWrite[] } | null = null;
  private readonly deps: KubeEventSinkDeps;
  private readonly reportingInstance: string;

  constructor(deps: KubeEventSinkDeps, limits: KubeEventLimits, reportingInstance: string) {
    this.deps = deps;
    this.reportingInstance = reportingInstance;
    this.planner = new EventPlanner(limits);
  }

  ready(): boolean {
    return this.deps.nodesSynced();
  }

  async deliver(batch: readonly EventRecord[]): Promise<void> {
    const upto = batch.at(-1)?.id ?? 0;
    let fresh = batch;
    if (this.pending !== null) {
      const p = this.pending;
      fresh = batch.filter((e) => e.id > p.upto);
      if (p.upto > upto) fresh = []; // cannot happen (the cursor only moves on success); never re-plan
    }
    if (fresh.length > 0) {
      const plan = this.planner.plan(fresh, (m) => this.nodeRef(m), this.deps.now());
      for (const [reason, n] of Object.entries(plan.dropped)) this.deps.counted({ dropped: reason as DropReason }, n);
      this.pending = { upto: Math.max(upto, this.pending?.upto ?? 0), writes: [...(this.pending?.writes ?? []), ...plan.writes] };
    }
    const p = this.pending;
    if (p === null) return;
    while (p.writes.length > 0) {
      await this.write(p.writes[0]!);
      p.writes.shift();
    }
    this.pending = null;
  }

  private nodeRef(machine: string): NodeRef | null {
    const n = this.deps.findNode(machine);
    const name = n?.metadata?.name;
    return name === undefined ? null : { name, uid: n?.metadata?.uid ?? null };
  }

  private async write(w: KubeEventWrite): Promise<void> {
    const s = w.series;
    try {
      if (w.op === 'create') {
        await this.deps.api.createNamespacedCustomObject({ ...EVENTS, body: eventBody(s, w.count, w.lastAt, this.reportingInstance) });
      } else {
        await this.deps.api.patchNamespacedCustomObject({ ...EVENTS, name: s.name, body: { series: { count: w.count, lastObservedTime: microTime(w.lastAt) } } }, mergePatch);
      }
      this.deps.counted({ written: w.op });
    } catch (err) {
      const status = statusOf(err);
      if (w.op === 'create' && status === 409) return; // written before a restart or a retry: the name is the event's
      if (w.op === 'patch' && status === 404) {
        // The object is gone (the API's Event TTL): the series goes on as a new object.
        s.name = eventName(s.node.name, w.lastAt, w.count);
        await this.write({ ...w, op: 'create' });
        return;
      }
      if (status === 400 || status === 422) {
        this.planner.forget(s.key);
        this.deps.counted({ dropped: 'rejected' });
        this.deps.log.warn({ node: s.node.name, reason: s.reason, err: apiMessage(err) }, 'the member API refused a Kubernetes Event; dropped');
        return;
      }
      const code = status === 0 ? 'NK_MEMBER_UNREACHABLE' : 'NK_KUBE_EVENT_WRITE_FAILED';
      throw new AppError(code, `${w.op} Event ${EVENT_NAMESPACE}/${s.name} (${s.reason} on Node ${s.node.name}): ${apiMessage(err)}`, { cause: err, context: { status } });
    }
  }
}
