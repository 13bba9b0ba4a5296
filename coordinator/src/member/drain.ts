/**
 * A drain with kubectl drain's rules (k8s.io/kubectl/pkg/drain): list the node's pods,
 * decide with drain-rules.ts (pure), refuse the whole drain when a pod may not go, else
 * evict through the Eviction API (PodDisruptionBudgets honoured: a 429 is retried with
 * capped, jittered backoff) and wait until every evicted pod is gone (deleted, or
 * replaced by a pod of the same name with another UID, as kubectl's waitForDelete), all
 * within one timeout. Cordoning is the caller's (MemberCluster.cordon), so a drain can
 * serve a rollout, a remediation step, a reboot or `nkctl machine drain` alike.
 */
import { ApiException, type AppsV1Api, type CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { AppError, backoffDelay, jittered, type BackoffPolicy } from '@nodekeeper/common';
import { apiMessage, statusOf } from '../host/kube-client.ts';
import { blockingBudget, daemonSetKey, planDrain, podId, refusalLines } from './drain-rules.ts';

/** The drain options every caller passes (the shared shape of issue 12). */
export interface DrainOptions {
  readonly force: boolean;
  readonly deleteEmptyDirData: boolean;
  /** The whole drain: evictions refused by budgets, and the wait for pods to go. */
  readonly timeoutMs: number;
  /** null: each pod's own terminationGracePeriodSeconds; else passed in the Eviction's deleteOptions. */
  readonly gracePeriodSeconds: number | null;
  readonly progress?: (line: string) => void;
  /** Asked between rounds; a reason ends the drain at once (NK_DRAIN_CANCELLED). */
  readonly stop?: () => string | null;
  /** The command an operator runs to go on when the drain stops (default: `nkctl machine drain NODE ...`). */
  readonly continueWith?: string;
}

/**
 * What a finished drain did. `refused` is empty when drain() returns: a refusal throws
 * NK_DRAIN_REFUSED, whose context.refused names each pod with its reasons.
 */
export interface DrainResult {
  readonly evicted: readonly string[];
  readonly skipped: readonly string[];
  readonly refused: readonly string[];
}

/** 429s are retried from 1 s, doubling, capped at 10 s, full jitter (never below POLL_FLOOR_MS). */
export const EVICTION_BACKOFF: BackoffPolicy = Object.freeze({ baseMs: 1000, capMs: 10_000 });
/** How often evicted pods are checked for being gone (kubectl polls every second). */
const POLL_MS = 1000;
const POLL_FLOOR_MS = 250;
/** How often a backoff pause asks `stop`. */
const STOP_POLL_MS = 500;

export interface DrainDeps {
  readonly core: CoreV1Api;
  readonly apps: AppsV1Api;
  readonly random?: () => number;
}

interface Blocked {
  readonly pod: string;
  readonly budget: string | null;
  readonly message: string;
}

interface Evicted {
  readonly id: string;
  readonly uid: string | undefined;
}

/** Drains a (cordoned) node. Throws NK_DRAIN_REFUSED, NK_DRAIN_BLOCKED, NK_DRAIN_TIMEOUT, NK_DRAIN_CANCELLED or NK_MEMBER_*. */
export async function drainNode(deps: DrainDeps, node: string, o: DrainOptions): Promise<DrainResult> {
  if (!(Number.isFinite(o.timeoutMs) && o.timeoutMs > 0)) throw new RangeError(`timeoutMs must be > 0, got ${o.timeoutMs}`);
  if (o.gracePeriodSeconds !== null && !(Number.isInteger(o.gracePeriodSeconds) && o.gracePeriodSeconds >= 0)) throw new RangeError(`gracePeriodSeconds must be null or an integer >= 0, got ${o.gracePeriodSeconds}`);
  const progress = o.progress ?? (() => {});
  const stop = o.stop ?? (() => null);
  const random = deps.random ?? Math.random;
  const started = Date.now();
  const deadline = started + o.timeoutMs;
  const secs = Math.round(o.timeoutMs / 1000);
  const continueWith = o.continueWith ?? continueCommand(node, o);

  const pods = await podsOn(deps.core, node);
  const daemonSets = await existingDaemonSets(deps.apps, pods);
  const plan = planDrain(pods, o, (key) => daemonSets.has(key));
  const skipped = plan.skip.map((s) => `${s.id} (${s.reason})`);
  if (plan.refuse.length > 0) {
    const refused = refusalLines(plan);
    throw new AppError('NK_DRAIN_REFUSED', `drain of ${node} refused, nothing was evicted: ${refused.join('; ')}`, { context: { node, refused } });
  }
  for (const e of plan.evict) if (e.note !== null) progress(`${e.id}: ${e.note}`);

  const pending = [...plan.evict];
  const evicted: string[] = [];
  // Pods whose eviction was accepted (or which were terminating already), until gone.
  const going = new Map<string, Evicted>(plan.wait.map((w) => [w.id, { id: w.id, uid: w.pod.metadata?.uid }]));
  let blocked = null as Blocked | null;
  let round = 0;
  for (;;) {
    const why = stop();
    if (why !== null) throw new AppError('NK_DRAIN_CANCELLED', `drain of ${node} stopped: ${why}`, { context: { node } });
    for (let i = pending.length - 1; i >= 0; i -= 1) {
      const { pod, id } = pending[i]!;
      const outcome = await evict(deps.core, pod, o.gracePeriodSeconds);
      if (outcome.kind === 'blocked') {
        if ((blocked as Blocked | null)?.message !== outcome.message) progress(`eviction of ${id} refused: ${outcome.message}`);
        blocked = { pod: id, budget: outcome.budget, message: outcome.message };
        continue;
      }
      pending.splice(i, 1);
      if (outcome.kind === 'evicted') {
        evicted.push(id);
        going.set(id, { id, uid: pod.metadata?.uid });
        progress(`evicted ${id}`);
      }
    }
    if (pending.length === 0) blocked = null;
    if (going.size > 0) {
      const gone = await goneOf(deps.core, node, [...going.values()]);
      for (const id of gone) going.delete(id);
    }
    if (pending.length === 0 && going.size === 0) return { evicted, skipped, refused: [] };
    const now = Date.now();
    if (now >= deadline) {
      if (blocked !== null) {
        const budget = blocked.budget === null ? 'a PodDisruptionBudget' : `PodDisruptionBudget ${blocked.pod.split('/')[0]}/${blocked.budget}`;
        throw new AppError('NK_DRAIN_BLOCKED', `drain of ${node} stopped after ${secs} s: eviction of ${blocked.pod} refused by ${budget}: ${blocked.message}; continue with: ${continueWith}`, {
          context: { node, pod: blocked.pod, budget: blocked.budget, pending: pending.map((p) => p.id), continueWith },
        });
      }
      const left = [...going.keys()];
      throw new AppError('NK_DRAIN_TIMEOUT', `drain of ${node} stopped after ${secs} s: evicted pods still terminating: ${left.join(', ')}; continue with: ${continueWith}`, {
        context: { node, pending: left, continueWith },
      });
    }
    const wait = pending.length > 0 ? Math.max(POLL_FLOOR_MS, backoffDelay(EVICTION_BACKOFF, Math.min(round, 30), random)) : jittered(POLL_MS, 0.1, random);
    round += pending.length > 0 ? 1 : 0;
    await pause(Math.min(wait, Math.max(0, deadline - now)), stop);
  }
}

/** Sleeps `ms`, waking early when `stop` gives a reason (a cancelled drain stops within STOP_POLL_MS). */
async function pause(ms: number, stop: () => string | null): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until && stop() === null) await new Promise((r) => setTimeout(r, Math.min(STOP_POLL_MS, until - Date.now())));
}

/** `nkctl machine drain NODE` with the same options and twice the timeout. */
export function continueCommand(node: string, o: Pick<DrainOptions, 'force' | 'deleteEmptyDirData' | 'timeoutMs' | 'gracePeriodSeconds'>): string {
  return ['nkctl machine drain', node, ...(o.force ? ['--force'] : []), ...(o.deleteEmptyDirData ? ['--delete-emptydir-data'] : []),
    ...(o.gracePeriodSeconds === null ? [] : [`--grace-period ${o.gracePeriodSeconds}`]), `--timeout ${Math.ceil((2 * o.timeoutMs) / 60_000)}m`].join(' ');
}

async function podsOn(core: CoreV1Api, node: string): Promise<V1Pod[]> {
  try {
    return (await core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${node}` })).items;
  } catch (err) {
    throw memberError(`list pods on ${node}`, err);
  }
}

/** The DaemonSets (`ns/name`) that manage pods on the node and exist; a 404 means an orphan. */
async function existingDaemonSets(apps: AppsV1Api, pods: readonly V1Pod[]): Promise<Set<string>> {
  const keys = new Set(pods.map(daemonSetKey).filter((k): k is string => k !== null));
  const exist = new Set<string>();
  for (const key of keys) {
    const [namespace, name] = key.split('/') as [string, string];
    try {
      await apps.readNamespacedDaemonSet({ name, namespace });
      exist.add(key);
    } catch (err) {
      if (statusOf(err) !== 404) throw memberError(`read DaemonSet ${key}`, err);
    }
  }
  return exist;
}

type EvictOutcome = { kind: 'evicted' } | { kind: 'gone' } | { kind: 'blocked'; budget: string | null; message: string };

async function evict(core: CoreV1Api, pod: V1Pod, gracePeriodSeconds: number | null): Promise<EvictOutcome> {
  const name = pod.metadata!.name!;
  const namespace = pod.metadata!.namespace!;
  try {
    await core.createNamespacedPodEviction({
      name, namespace,
      body: { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name, namespace }, ...(gracePeriodSeconds === null ? {} : { deleteOptions: { gracePeriodSeconds } }) },
    });
    return { kind: 'evicted' };
  } catch (err) {
    const status = statusOf(err);
    if (status === 404) return { kind: 'gone' };
    // 429: a budget says no for now; 500: several budgets select the pod (kubectl retries both).
    if (status === 429 || status === 500) return { kind: 'blocked', budget: blockingBudget(statusBody(err)), message: apiMessage(err) };
    throw memberError(`evict ${namespace}/${name}`, err);
  }
}

/** Ids of the pods that are gone: no pod of that name on the node, or one with another UID. */
async function goneOf(core: CoreV1Api, node: string, going: readonly Evicted[]): Promise<string[]> {
  const now = new Map((await podsOn(core, node)).map((p) => [podId(p), p.metadata?.uid]));
  return going.filter((g) => !now.has(g.id) || now.get(g.id) !== g.uid).map((g) => g.id);
}

function statusBody(err: unknown): unknown {
  if (!(err instanceof ApiException)) return null;
  const body = err.body as unknown;
  if (typeof body !== 'string') return body;
  try {
    return JSON.parse(body) as unknown;
  } catch {
    return null;
  }
}

export function memberError(what: string, err: unknown): AppError {
  if (err instanceof AppError) return err;
  const status = statusOf(err);
  const code = status === 404 ? 'NK_MEMBER_NODE_NOT_FOUND' : status === 0 ? 'NK_MEMBER_UNREACHABLE' : 'NK_MEMBER_API_ERROR';
  return new AppError(code, `${what}: ${apiMessage(err)}`, { cause: err });
}
