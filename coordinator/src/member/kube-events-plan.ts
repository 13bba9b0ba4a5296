/**
 * Which coordinator events become Kubernetes Events (events.k8s.io/v1) on a member
 * Node, and how they are folded into series and bounded in rate. Pure: the sink
 * (kube-events.ts) does the API calls.
 *
 * Series follow client-go's events library (k8s.io/client-go/tools/events): events
 * alike in (regarding, reason, action, note, type) within 6 minutes of the last one are
 * one Event object whose `series.count` and `series.lastObservedTime` grow (a patch),
 * not new objects. New objects are bounded like client-go's EventSourceObjectSpamFilter
 * (a token bucket per Node: burst 25, one token per 5 minutes) plus one bucket for the
 * whole coordinator (burst 100, 5 per second); an event over either is dropped and counted.
 * https://github.com/kubernetes/client-go/blob/master/tools/record/events_cache.go
 */
import { microTime } from '../clock.ts';
import { TokenBucket } from '../gateway/rate-limit.ts';
import type { EventRecord } from '../model/records.ts';

export const REPORTING_CONTROLLER = 'nodekeeper.io/coordinator';
/** client-go's series window (tools/events: finishTime). */
export const SERIES_WINDOW_MS = 6 * 60_000;
/** The API refuses a note longer than 1 kB (validation noteLengthLimit). */
export const NOTE_MAX_BYTES = 1024;
/** Where Events about cluster-scoped objects (Nodes) live; what `kubectl get events` shows. */
export const EVENT_NAMESPACE = 'default';

export interface KubeEventLimits {
  /** New Event objects per Node: burst, then one per `nodeRefillMs`. */
  readonly nodeBurst: number;
  readonly nodeRefillMs: number;
  /** New Event objects for the whole coordinator: burst, then `perSecond`. */
  readonly burst: number;
  readonly perSecond: number;
  /** Events older than this when read are dropped (Kubernetes keeps Events 1 h by default). */
  readonly maxAgeMs: number;
  /** Series remembered at most (the oldest are forgotten first). */
  readonly maxSeries: number;
}

export const DEFAULT_KUBE_EVENT_LIMITS: KubeEventLimits = Object.freeze({
  nodeBurst: 25, nodeRefillMs: 300_000, burst: 100, perSecond: 5, maxAgeMs: 3_600_000, maxSeries: 4096,
});

const DRAIN = new Set(['Cordoned', 'CordonFailed', 'Drained', 'DrainStopped', 'DrainRefused', 'Uncordoned', 'UncordonFailed']);
const REBOOT = new Set(['RebootRequested', 'RebootStarted', 'RebootSucceeded', 'RebootFailed', 'RebootHeld']);
const REMEDIATE = new Set([
  'StepStarted', 'StepSkipped', 'StepSucceeded', 'StepFailed', 'NeedsHuman', 'Remediated', 'LadderExhausted', 'RemediationAbandoned',
  'RemediationStepImpossible', 'CommandCancelled', 'DryRun', 'Escalated', 'ClearedOnItsOwn', 'AttemptsExhausted', 'CordonedNeedsHuman',
]);

/** The machine a coordinator event is about (`machine/<name>`), else null. */
export function machineOf(object: string): string | null {
  return object.startsWith('machine/') && object.length > 'machine/'.length ? object.slice('machine/'.length) : null;
}

/**
 * The Event `action` for a coordinator event about a machine, or null when it is not
 * one Kubernetes needs (agent connections, credential rotations, pins...).
 * Rollout and remediation steps are told apart by how their controllers word them.
 */
export function kubeEventAction(e: Pick<EventRecord, 'reason' | 'message'>): string | null {
  if (DRAIN.has(e.reason)) return 'Drain';
  if (REBOOT.has(e.reason)) return 'Reboot';
  if (e.message.startsWith('rollout ')) return 'Rollout';
  if (REMEDIATE.has(e.reason) || /^rule \S+( step \d+)?: /.test(e.message)) return 'Remediate';
  return null;
}

/** The message cut to the API's 1 kB limit on a character boundary, marked when cut. */
export function boundedNote(message: string): string {
  if (Buffer.byteLength(message, 'utf8') <= NOTE_MAX_BYTES) return message;
  const mark = ' [...]';
  let out = '';
  let bytes = Buffer.byteLength(mark);
  for (const ch of message) {
    const n = Buffer.byteLength(ch);
    if (bytes + n > NOTE_MAX_BYTES) break;
    out += ch;
    bytes += n;
  }
  return out + mark;
}

/**
 * `<node>.<hex nanoseconds>` as client-go names Events. The event's id fills the
 * sub-millisecond digits, so a name is unique and the same on a repeat after a crash
 * (the create then answers 409 and nothing is doubled).
 */
export function eventName(node: string, atMs: number, id: number): string {
  return `${node}.${(BigInt(Math.floor(atMs)) * 1_000_000n + BigInt(id % 1_000_000)).toString(16)}`;
}

export interface NodeRef {
  readonly name: string;
  readonly uid: string | null;
}

/** One Event object as the coordinator knows it. */
export interface Series {
  readonly key: string;
  name: string;
  readonly node: NodeRef;
  readonly reason: string;
  readonly action: string;
  readonly note: string;
  readonly type: 'Normal' | 'Warning';
  readonly firstAt: number;
  lastAt: number;
  count: number;
}

export type KubeEventWrite =
  | { readonly op: 'create'; readonly series: Series; readonly count: number; readonly lastAt: number }
  | { readonly op: 'patch'; readonly series: Series; readonly count: number; readonly lastAt: number };

export type DropReason = 'rate' | 'stale' | 'no-node';

export interface Plan {
  readonly writes: KubeEventWrite[];
  readonly dropped: Partial<Record<DropReason, number>>;
}

/** The events.k8s.io/v1 object for a new series (with `series` once it has repeated). */
export function eventBody(s: Series, count: number, lastAt: number, reportingInstance: string): Record<string, unknown> {
  return {
    apiVersion: 'events.k8s.io/v1', kind: 'Event',
    metadata: { name: s.name, namespace: EVENT_NAMESPACE },
    eventTime: microTime(s.firstAt),
    ...(count > 1 ? { series: { count, lastObservedTime: microTime(lastAt) } } : {}),
    reportingController: REPORTING_CONTROLLER,
    reportingInstance,
    action: s.action,
    reason: s.reason,
    note: s.note,
    type: s.type,
    regarding: { kind: 'Node', apiVersion: 'v1', name: s.node.name, ...(s.node.uid === null ? {} : { uid: s.node.uid }) },
  };
}

/** Keeps series and rate buckets between batches; plans the API writes of each batch. */
export class EventPlanner {
  private readonly series = new Map<string, Series>();
  private readonly nodeBuckets = new Map<string, TokenBucket>();
  private readonly all: TokenBucket;
  private readonly limits: KubeEventLimits;

  constructor(limits: KubeEventLimits = DEFAULT_KUBE_EVENT_LIMITS, now = Date.now()) {
    this.limits = limits;
    this.all = new TokenBucket(limits.perSecond, limits.burst, now);
  }

  /**
   * Plans a batch: `nodeOf` maps a machine to its Node (null: none known). Repeats
   * within the batch are folded, so each series costs at most one write per batch.
   */
  plan(batch: readonly EventRecord[], nodeOf: (machine: string) => NodeRef | null, now: number): Plan {
    const dropped: Partial<Record<DropReason, number>> = {};
    const drop = (r: DropReason) => (dropped[r] = (dropped[r] ?? 0) + 1);
    // By object, not key: a series that ends inside the batch and a new one of the same
    // key both need their write.
    const created = new Set<Series>();
    const touched = new Set<Series>();
    this.expire(now);
    for (const e of batch) {
      const machine = machineOf(e.object);
      if (machine === null) continue;
      const action = kubeEventAction(e);
      if (action === null) continue;
      if (now - e.at > this.limits.maxAgeMs) {
        drop('stale');
        continue;
      }
      const node = nodeOf(machine);
      if (node === null) {
        drop('no-node');
        continue;
      }
      const note = boundedNote(e.message);
      const key = JSON.stringify([node.name, node.uid, e.reason, action, note, e.type]);
      const known = this.series.get(key);
      if (known !== undefined && e.at - known.lastAt <= SERIES_WINDOW_MS) {
        known.count += 1;
        known.lastAt = Math.max(known.lastAt, e.at);
        touched.add(known);
        continue;
      }
      // The Node's bucket first, as client-go's spam filter (per source and object) comes
      // before the client's overall limit; a Node token is spent even if the overall one refuses.
      if (!this.nodeBucket(node.name, now).take(now) || !this.all.take(now)) {
        drop('rate');
        continue;
      }
      const s: Series = { key, name: eventName(node.name, e.at, e.id), node, reason: e.reason, action, note, type: e.type, firstAt: e.at, lastAt: e.at, count: 1 };
      this.series.delete(key); // re-inserted last: the Map's order is the age order
      this.series.set(key, s);
      created.add(s);
      touched.add(s);
    }
    const writes: KubeEventWrite[] = [...touched].map((s) => ({ op: created.has(s) ? 'create' : 'patch', series: s, count: s.count, lastAt: s.lastAt }));
    while (this.series.size > this.limits.maxSeries) this.series.delete(this.series.keys().next().value!);
    return { writes, dropped };
  }

  /** A series whose object is gone (expired by the API's TTL): the next repeat starts a new one. */
  forget(key: string): void {
    this.series.delete(key);
  }

  private expire(now: number): void {
    for (const [k, s] of this.series) if (now - s.lastAt > SERIES_WINDOW_MS) this.series.delete(k);
  }

  private nodeBucket(node: string, now: number): TokenBucket {
    let b = this.nodeBuckets.get(node);
    if (b === undefined) {
      b = new TokenBucket(1000 / this.limits.nodeRefillMs, this.limits.nodeBurst, now);
      this.nodeBuckets.set(node, b);
      // Buckets of Nodes long gone are forgotten; a full one is the same as a new one.
      if (this.nodeBuckets.size > this.limits.maxSeries) this.nodeBuckets.delete(this.nodeBuckets.keys().next().value!);
    }
    return b;
  }
}
