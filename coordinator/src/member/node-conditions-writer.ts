/**
 * Keeps nodekeeper's conditions on the member Nodes (the decisions are node-conditions.ts';
 * this is the thin I/O around them). Every tick it works out, per machine, what its Node
 * should say and what differs from what the Node says (read from the member's Node
 * watch, never fetched per node); nodes that differ are queued and written through the
 * Node status subresource with a strategic merge patch keyed by `type`, so only our
 * condition types are ever sent and the kubelet's are never overwritten.
 *
 * Bounds, for fleets of thousands:
 *   - write on change only: a Node that already says the right thing costs nothing;
 *   - per node at most one write per `minIntervalMs`: changes meanwhile coalesce, and
 *     what is sent is worked out when it is sent, so the latest facts win;
 *   - at most `maxConcurrent` writes in flight across the fleet; the queue keeps one
 *     entry per node, in order;
 *   - a failed write is logged once per change of error, and retried after a backoff.
 * Nothing here awaits on the agents' path: the gateway only updates the fleet view.
 */
import { PatchStrategy, setHeaderOptions, type KubeConfig, type V1Node } from '@kubernetes/client-node';
import { AppError, type Logger } from '@nodekeeper/common';
import { apiMessage, KubeClients, statusOf } from '../host/kube-client.ts';
import type { MachineRecord } from '../model/machine.ts';
import { conditionPatchBody, desiredConditions, planConditionPatch, planConditionRemoval, type ConditionFacts } from './node-conditions.ts';

export interface NodeConditionsDeps {
  /** The machines (the fleet view's, fresh each call). */
  readonly machines: () => Iterable<MachineRecord>;
  /** One machine, fresh (when its write is due). */
  readonly machine: (name: string) => MachineRecord | undefined;
  /**
   * What a machine's conditions are derived from (report, liveness, faults, remediation
   * phase); null while that is not known yet (right after a start, before the faults are
   * derived), and then the Node is left as it is rather than written Unknown.
   */
  readonly facts: (m: MachineRecord) => ConditionFacts | null;
  /** The machine's Node from the member's Node watch, or null. */
  readonly findNode: (machine: string, machineId: string | null) => V1Node | null;
  /** PATCH nodes/NAME/status with a strategic merge patch; resolves with the Node the server returned. */
  readonly patchStatus: (node: string, body: unknown) => Promise<V1Node>;
  /** Wall clock: condition times are shown by Kubernetes, and compared with kubelet's. */
  readonly wallClock: () => number;
  readonly log: Logger;
  /** Told of every write's result (metrics). */
  readonly counted?: (result: 'ok' | 'failed') => void;
}

export interface NodeConditionsOptions {
  /** At most one write per node per this many ms (the first one is immediate). */
  readonly minIntervalMs: number;
  /** Writes in flight across the fleet, at most. */
  readonly maxConcurrent: number;
  /** How often the Nodes are compared with the facts. */
  readonly tickMs: number;
}

/** Retry of a failed write: doubles from minIntervalMs up to this. */
const MAX_BACKOFF_MS = 300_000;

interface Slot {
  /** When the next write may start. */
  nextAt: number;
  inFlight: boolean;
  failures: number;
  /** The last error logged, so each one is logged once. */
  error: string | null;
  /**
   * The Node as our last write returned it, with the resourceVersion the watch had
   * before it: until the watch moves past that version, the response is fresher than
   * the cache, and comparing with the cache would write the same change again.
   */
  written: { readonly before: string | undefined; readonly node: V1Node } | null;
  /** The machine whose Node this is (by the last tick). */
  machine: string;
  /** Seen in the last tick (slots of vanished machines are dropped). */
  seen: boolean;
  /**
   * The Node and facts last found to need no write: while both stay the same (the
   * watch's object, facts equal field by field) there is nothing to work out, which
   * keeps a steady tick over thousands of Nodes cheap. Time alone cannot make a Node
   * that needed no write need one (a transition time in the past stays in the past).
   */
  quiet: { readonly node: V1Node; readonly facts: ConditionFacts } | null;
}

export class NodeConditionsWriter {
  private readonly deps: NodeConditionsDeps;
  private readonly opts: NodeConditionsOptions;
  private readonly slots = new Map<string, Slot>();
  /** Node name -> machine name (null: the machine was deleted, remove our conditions), in the order they became due; one entry per node. */
  private readonly queue = new Map<string, string | null>();
  private active = 0;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private idleWaiters: Array<() => void> = [];
  /** Writes done, failed: for metrics and tests. */
  readonly counters = { writes: 0, failures: 0 };

  constructor(deps: NodeConditionsDeps, opts: NodeConditionsOptions) {
    if (!(opts.minIntervalMs >= 0)) throw new RangeError(`minIntervalMs must be >= 0, got ${opts.minIntervalMs}`);
    if (!(opts.maxConcurrent >= 1)) throw new RangeError(`maxConcurrent must be >= 1, got ${opts.maxConcurrent}`);
    this.deps = deps;
    this.opts = opts;
  }

  start(): void {
    this.stopped = false;
    // A random first tick, so coordinators started together do not write together.
    const first = setTimeout(() => {
      this.tick();
      this.timer = setInterval(() => this.tick(), this.opts.tickMs);
      this.timer.unref();
    }, Math.floor(Math.random() * this.opts.tickMs));
    first.unref();
    this.timer = first;
  }

  /** Stops ticking; writes in flight finish (their results are dropped). */
  stop(): void {
    this.stopped = true;
    if (this.timer !== null) {
      clearTimeout(this.timer);
      clearInterval(this.timer);
    }
    this.timer = null;
    this.queue.clear();
  }

  /** Resolves once no write is queued or in flight (tests, shutdown). */
  idle(): Promise<void> {
    if (this.active === 0 && this.queue.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Compares every machine's Node with its facts and queues the ones that differ. */
  tick(): void {
    if (this.stopped) return;
    const now = this.deps.wallClock();
    for (const s of this.slots.values()) s.seen = false;
    for (const m of this.deps.machines()) {
      let node: V1Node | null;
      try {
        node = this.deps.findNode(m.name, m.machineId);
      } catch (err) {
        this.deps.log.warn({ err, machine: m.name }, 'cannot look up the Node of a machine');
        continue;
      }
      const name = node?.metadata?.name;
      if (node === null || name === undefined) continue; // not a Node (yet): nothing to write on
      const slot = this.slot(name, m.name);
      slot.seen = true;
      slot.machine = m.name;
      if (slot.inFlight || this.queue.has(name) || now < slot.nextAt) continue;
      if (this.plan(m, node, now) !== null) this.queue.set(name, m.name);
    }
    for (const [name, s] of this.slots) {
      if (s.seen || s.inFlight || this.queue.has(name)) continue;
      // A deleted machine: nodekeeper no longer manages its Node, so its conditions go
      // (left, they would say Unknown for ever and a health check would act on it).
      // A machine that lost its Node (renamed, deleted) is only forgotten.
      if (this.deps.machine(s.machine) === undefined) {
        if (now >= s.nextAt) this.queue.set(name, null);
      } else {
        this.slots.delete(name);
      }
    }
    this.pump();
  }

  private slot(name: string, machine: string): Slot {
    let s = this.slots.get(name);
    if (s === undefined) {
      s = { nextAt: 0, inFlight: false, failures: 0, error: null, written: null, machine, seen: true, quiet: null };
      this.slots.set(name, s);
    }
    return s;
  }

  /** The patch body that brings `node` to what the machine's facts say, or null when it says that already. */
  private plan(m: MachineRecord, cached: V1Node, now: number): unknown {
    const slot = this.slots.get(cached.metadata!.name!)!;
    let node = cached;
    if (slot.written !== null) {
      if (cached.metadata?.resourceVersion === slot.written.before) node = slot.written.node;
      else slot.written = null; // the watch has caught up (or someone else wrote): trust it
    }
    const facts = this.deps.facts(m);
    if (facts === null) return null;
    if (slot.quiet !== null && slot.quiet.node === node && sameFacts(slot.quiet.facts, facts)) return null;
    const patch = planConditionPatch(node.status?.conditions, desiredConditions(facts), now);
    slot.quiet = patch.length === 0 ? { node, facts } : null;
    return patch.length === 0 ? null : conditionPatchBody(patch);
  }

  private pump(): void {
    while (!this.stopped && this.active < this.opts.maxConcurrent && this.queue.size > 0) {
      const [name, machine] = this.queue.entries().next().value as [string, string];
      this.queue.delete(name);
      void this.write(name, machine);
    }
    if (this.active === 0 && this.queue.size === 0) for (const w of this.idleWaiters.splice(0)) w();
  }

  /** Works the patch out again now (the latest facts win) and sends it; `machineName` null: removes ours. */
  private async write(name: string, machineName: string | null): Promise<void> {
    const slot = this.slots.get(name);
    if (slot === undefined) return;
    const m = machineName === null ? undefined : this.deps.machine(machineName);
    const cached = machineName === null ? this.deps.findNode(name, null) : m === undefined ? null : this.deps.findNode(m.name, m.machineId);
    const now = this.deps.wallClock();
    let body: unknown = null;
    if (machineName === null) {
      const removal = cached === null || cached.metadata?.name !== name ? [] : planConditionRemoval((slot.written?.node ?? cached).status?.conditions);
      if (removal.length === 0) {
        this.slots.delete(name); // nothing of ours left on it (or no Node): done
        return;
      }
      body = { status: { conditions: removal } };
    } else if (m !== undefined && cached !== null && cached.metadata?.name === name) {
      body = this.plan(m, cached, now);
    }
    if (body === null) return; // nothing to send any more (pump, the only caller, goes on with the queue)
    slot.inFlight = true;
    slot.nextAt = now + this.opts.minIntervalMs;
    this.active += 1;
    try {
      const returned = await this.deps.patchStatus(name, body);
      this.deps.log.debug({ node: name, conditions: (body as ReturnType<typeof conditionPatchBody>).status.conditions.map((c) => ('$patch' in c ? `${c.type} removed` : `${c.type}=${c.status} ${c.reason}: ${c.message}`)) }, 'Node conditions written');
      if (machineName === null) this.deps.log.info({ node: name, machine: slot.machine }, 'machine deleted: its Node conditions removed');
      slot.written = { before: cached!.metadata?.resourceVersion, node: returned };
      this.counters.writes += 1;
      this.deps.counted?.('ok');
      if (slot.error !== null) this.deps.log.info({ node: name }, 'Node conditions written again');
      slot.error = null;
      slot.failures = 0;
    } catch (err) {
      this.counters.failures += 1;
      this.deps.counted?.('failed');
      slot.failures += 1;
      slot.written = null;
      const msg = (err as Error)?.message ?? String(err);
      const code = (err as { code?: unknown }).code;
      if (msg !== slot.error) this.deps.log.warn({ node: name, code, err: msg }, 'cannot write the Node conditions; retrying later');
      slot.error = msg;
      const backoff = Math.min(MAX_BACKOFF_MS, Math.max(1000, this.opts.minIntervalMs) * 2 ** Math.min(slot.failures - 1, 10));
      slot.nextAt = this.deps.wallClock() + backoff * (0.8 + Math.random() * 0.4);
    } finally {
      slot.inFlight = false;
      this.active -= 1;
      this.pump();
    }
  }
}

/** Field by field; the report and each fault by identity (the fleet view and the fault derivation keep unchanged ones). */
function sameFacts(a: ConditionFacts, b: ConditionFacts): boolean {
  if (a.revoked !== b.revoked || a.liveness !== b.liveness || a.report !== b.report || a.agentVersion !== b.agentVersion) return false;
  if ((a.remediation === null) !== (b.remediation === null)) return false;
  if (a.remediation !== null && b.remediation !== null
    && (a.remediation.phase !== b.remediation.phase || a.remediation.reason !== b.remediation.reason || a.remediation.message !== b.remediation.message)) return false;
  if (a.faults === null || b.faults === null) return a.faults === b.faults;
  return a.faults.length === b.faults.length && a.faults.every((f, i) => f === b.faults![i]);
}

const strategicMerge = setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch);

/**
 * PATCH nodes/NAME/status, strategic merge (RBAC: `nodes/status` `patch` in the member
 * cluster; see docs/kubernetes.md). Failures become NK_MEMBER_* errors.
 */
export function nodeStatusPatcher(kc: KubeConfig): (node: string, body: unknown) => Promise<V1Node> {
  const c = new KubeClients(kc);
  return async (node, body) => {
    try {
      return await c.core.patchNodeStatus({ name: node, body }, strategicMerge);
    } catch (err) {
      const status = statusOf(err);
      const code = status === 404 ? 'NK_MEMBER_NODE_NOT_FOUND' : status === 0 ? 'NK_MEMBER_UNREACHABLE' : 'NK_MEMBER_API_ERROR';
      throw new AppError(code, `write the conditions of node ${node}: ${apiMessage(err)}`, { cause: err });
    }
  };
}
