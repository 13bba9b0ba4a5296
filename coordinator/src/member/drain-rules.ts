/**
 * What a drain does with each pod on a node: kubectl drain's rules
 * (k8s.io/kubectl/pkg/drain, filters.go), as a pure function of the pods, the options
 * and which DaemonSets exist. The I/O (list, evict, wait) is in drain.ts.
 *   - mirror (static) pods: skipped, the API cannot delete them (the kubelet owns them);
 *   - finished pods (Succeeded, Failed): skipped, they hold no work (kubectl deletes
 *     them; leaving them changes nothing for a reinstall or a reboot);
 *   - DaemonSet pods: skipped when their DaemonSet exists (it would recreate them at
 *     once, ignoring the cordon); a pod whose DaemonSet is gone is an orphan: evicted
 *     with `force`, refused without;
 *   - pods already terminating: not evicted again, but waited for;
 *   - pods with emptyDir volumes: refused unless `deleteEmptyDirData` (their data is lost);
 *   - pods no controller manages: refused unless `force` (nothing recreates them);
 *   - everything else: evicted through the Eviction API.
 * A refusal refuses the whole drain: nothing is evicted (as kubectl), and every refused
 * pod is named with all its reasons, so one answer says everything to fix.
 */
import type { V1Pod } from '@kubernetes/client-node';

/** How a drain may treat pods that kubectl would refuse, and how long it may take. */
export interface DrainRuleOptions {
  /** Evict pods no controller manages (and orphaned DaemonSet pods). */
  readonly force: boolean;
  /** Evict pods with emptyDir volumes (their data is deleted). */
  readonly deleteEmptyDirData: boolean;
}

/** The drain options as written (all optional): the contract's schema (@nodekeeper/api). */
export { DrainSpecSchema, type DrainSpecInput } from '@nodekeeper/api';
import type { DrainSpecInput } from '@nodekeeper/api';

/** A drain spec with its defaults applied (what the store keeps). */
export interface DrainSpec {
  readonly force: boolean;
  readonly deleteEmptyDirData: boolean;
  /** Absent: the coordinator's --drain-timeout. */
  readonly timeoutSeconds?: number;
  /** Absent: each pod's own terminationGracePeriodSeconds. */
  readonly gracePeriodSeconds?: number;
}

export const DRAIN_SPEC_DEFAULTS: DrainSpec = Object.freeze({ force: false, deleteEmptyDirData: false });

export function drainSpecWithDefaults(d: DrainSpecInput | undefined): DrainSpec {
  return {
    force: d?.force ?? DRAIN_SPEC_DEFAULTS.force,
    deleteEmptyDirData: d?.deleteEmptyDirData ?? DRAIN_SPEC_DEFAULTS.deleteEmptyDirData,
    ...(d?.timeoutSeconds === undefined ? {} : { timeoutSeconds: d.timeoutSeconds }),
    ...(d?.gracePeriodSeconds === undefined ? {} : { gracePeriodSeconds: d.gracePeriodSeconds }),
  };
}

/** A stored drain spec (maybe absent, from before it existed) to drain() options. */
export function drainOptionsOf(d: Partial<DrainSpec> | undefined, defaultTimeoutMs: number): { force: boolean; deleteEmptyDirData: boolean; timeoutMs: number; gracePeriodSeconds: number | null } {
  return {
    force: d?.force === true,
    deleteEmptyDirData: d?.deleteEmptyDirData === true,
    timeoutMs: typeof d?.timeoutSeconds === 'number' ? d.timeoutSeconds * 1000 : defaultTimeoutMs,
    gracePeriodSeconds: typeof d?.gracePeriodSeconds === 'number' ? d.gracePeriodSeconds : null,
  };
}

export type PodVerdict =
  | { readonly kind: 'evict'; readonly pod: V1Pod; readonly id: string; readonly note: string | null }
  | { readonly kind: 'wait'; readonly pod: V1Pod; readonly id: string }
  | { readonly kind: 'skip'; readonly id: string; readonly reason: string }
  | { readonly kind: 'refuse'; readonly id: string; readonly reasons: readonly string[] };

export interface DrainPlan {
  /** Pods to evict; `note` says why an exception applied (force, deleteEmptyDirData). */
  readonly evict: ReadonlyArray<Extract<PodVerdict, { kind: 'evict' }>>;
  /** Pods terminating already: waited for, not evicted again. */
  readonly wait: ReadonlyArray<Extract<PodVerdict, { kind: 'wait' }>>;
  readonly skip: ReadonlyArray<Extract<PodVerdict, { kind: 'skip' }>>;
  /** Non-empty: the drain must evict nothing. */
  readonly refuse: ReadonlyArray<Extract<PodVerdict, { kind: 'refuse' }>>;
}

export const MIRROR_POD_ANNOTATION = 'kubernetes.io/config.mirror';

export function podId(pod: V1Pod): string {
  return `${pod.metadata?.namespace ?? ''}/${pod.metadata?.name ?? ''}`;
}

/** The pod's managing controller (the owner reference with controller: true), as metav1.GetControllerOf. */
export function controllerOf(pod: V1Pod): { kind: string; name: string } | null {
  const ref = pod.metadata?.ownerReferences?.find((o) => o.controller === true);
  return ref === undefined ? null : { kind: ref.kind, name: ref.name };
}

/** `namespace/name` of the DaemonSet that manages the pod, or null: what the caller must look up. */
export function daemonSetKey(pod: V1Pod): string | null {
  const c = controllerOf(pod);
  return c !== null && c.kind === 'DaemonSet' ? `${pod.metadata?.namespace ?? ''}/${c.name}` : null;
}

function finished(pod: V1Pod): boolean {
  return pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
}

/** One pod's verdict. `daemonSetExists` answers for the pod's DaemonSet (only asked for DaemonSet pods). */
export function classifyPod(pod: V1Pod, o: DrainRuleOptions, daemonSetExists: (key: string) => boolean): PodVerdict {
  const id = podId(pod);
  if (pod.metadata?.annotations?.[MIRROR_POD_ANNOTATION] !== undefined) return { kind: 'skip', id, reason: 'static pod' };
  if (finished(pod)) return { kind: 'skip', id, reason: `finished (${pod.status?.phase})` };
  const ds = daemonSetKey(pod);
  if (ds !== null && daemonSetExists(ds)) return { kind: 'skip', id, reason: 'DaemonSet pod' };
  // Going away already: evicting again changes nothing, but the drain waits for it.
  if (pod.metadata?.deletionTimestamp !== undefined && pod.metadata.deletionTimestamp !== null) return { kind: 'wait', pod, id };
  const notes: string[] = [];
  const reasons: string[] = [];
  if (ds !== null) {
    // kubectl: an orphan (its DaemonSet is gone) goes only with --force.
    if (o.force) notes.push(`orphaned: DaemonSet ${ds} not found, evicted by force`);
    else reasons.push(`its DaemonSet ${ds} does not exist (an orphan; force evicts it)`);
  }
  const emptyDirs = (pod.spec?.volumes ?? []).filter((v) => v.emptyDir !== undefined && v.emptyDir !== null).map((v) => v.name);
  if (emptyDirs.length > 0) {
    if (o.deleteEmptyDirData) notes.push(`emptyDir ${emptyDirs.join(', ')} deleted (deleteEmptyDirData)`);
    else reasons.push(`it has emptyDir data (${emptyDirs.join(', ')}) that eviction deletes (deleteEmptyDirData allows it)`);
  }
  if (controllerOf(pod) === null) {
    if (o.force) notes.push('no controller: evicted by force, nothing recreates it');
    else reasons.push('no controller manages it, nothing would recreate it (force allows it)');
  }
  if (reasons.length > 0) return { kind: 'refuse', id, reasons };
  return { kind: 'evict', pod, id, note: notes.length > 0 ? notes.join('; ') : null };
}

/** Every pod's verdict, in the order given. Pure. */
export function planDrain(pods: readonly V1Pod[], o: DrainRuleOptions, daemonSetExists: (key: string) => boolean): DrainPlan {
  const plan = { evict: [] as Array<Extract<PodVerdict, { kind: 'evict' }>>, wait: [] as Array<Extract<PodVerdict, { kind: 'wait' }>>, skip: [] as Array<Extract<PodVerdict, { kind: 'skip' }>>, refuse: [] as Array<Extract<PodVerdict, { kind: 'refuse' }>> };
  for (const pod of pods) {
    const v = classifyPod(pod, o, daemonSetExists);
    switch (v.kind) {
      case 'evict': plan.evict.push(v); break;
      case 'wait': plan.wait.push(v); break;
      case 'skip': plan.skip.push(v); break;
      case 'refuse': plan.refuse.push(v); break;
    }
  }
  return plan;
}

/** `ns/name (reason; reason)` for each refused pod: the text NK_DRAIN_REFUSED carries. */
export function refusalLines(plan: DrainPlan): string[] {
  return plan.refuse.map((r) => `${r.id} (${r.reasons.join('; ')})`);
}

/**
 * The budget a 429 names: the API server's Status has a cause of type DisruptionBudget
 * whose message reads "The disruption budget NAME needs ...". Null when it names none.
 */
export function blockingBudget(status: unknown): string | null {
  if (status === null || typeof status !== 'object') return null;
  const causes = (status as { details?: { causes?: unknown } }).details?.causes;
  if (!Array.isArray(causes)) return null;
  for (const c of causes as Array<{ reason?: unknown; type?: unknown; message?: unknown }>) {
    const m = typeof c.message === 'string' ? /disruption budget ([a-z0-9]([-a-z0-9.]*[a-z0-9])?)/.exec(c.message) : null;
    if (m !== null) return m[1]!;
  }
  return null;
}
