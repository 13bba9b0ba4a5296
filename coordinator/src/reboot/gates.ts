/**
 * What holds a reboot rollout besides its window (kured's gates):
 *   - firing alerts: GET <prometheus>/api/v1/alerts; any alert in state `firing` whose
 *     alertname does NOT match the rollout's alertFilter holds the whole rollout (the
 *     filter names alerts to ignore, as kured's --alert-filter-regexp). A Prometheus that
 *     does not answer, or answers something else than its alerts, holds too: no news is
 *     not good news before a reboot.
 *   - blocking pods: a pod matching the rollout's blockingPods selector on a machine's
 *     Node holds that machine (kured's --blocking-pod-selector); finished pods do not.
 * The decisions (alertHold, podHolds) are pure; RebootGateChecker does the I/O on its
 * own timer and keeps the last answer, so the planner's step stays synchronous.
 */
import type { Logger } from '@nodekeeper/common';
import type { RebootSpec } from '../rollout/spec.ts';
import type { RebootGates, WaitingReason } from '../rollout/types.ts';

/** How often the gates of a running reboot rollout are read again. */
export const GATE_REFRESH_MS = 5_000;
const PROMETHEUS_TIMEOUT_MS = 5_000;
/** A pod list that does not answer in this time holds (and the next read tries again). */
const READ_TIMEOUT_MS = 10_000;

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took more than ${ms / 1000} s`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
const NAMED = 5;

/** One pod as the blocking-pods gate sees it. */
export interface PodFact {
  readonly namespace: string;
  readonly name: string;
  readonly node: string | null;
  readonly phase: string | null;
}

const held = (message: string): WaitingReason => ({ reason: 'RebootHeld', message });

/**
 * The hold a Prometheus alerts answer means: null when nothing fires (or all that fires
 * is filtered out); a hold naming the firing alerts, or saying the answer is unusable.
 */
export function alertHold(body: unknown, filter: RegExp | null, url: string): WaitingReason | null {
  const b = body as { status?: unknown; data?: { alerts?: unknown } } | null;
  if (b === null || typeof b !== 'object' || b.status !== 'success' || !Array.isArray(b.data?.alerts)) {
    return held(`Prometheus at ${url} did not answer with its alerts (status ${JSON.stringify((b as { status?: unknown } | null)?.status ?? null)}); holding until it does`);
  }
  const firing = new Set<string>();
  for (const a of b.data.alerts as unknown[]) {
    const alert = a as { labels?: Record<string, unknown>; state?: unknown } | null;
    if (alert?.state !== 'firing') continue;
    const name = typeof alert.labels?.['alertname'] === 'string' ? alert.labels['alertname'] : '(no alertname)';
    if (filter !== null && filter.test(name)) continue;
    firing.add(name);
  }
  if (firing.size === 0) return null;
  const names = [...firing].sort();
  return held(`${names.length} alert(s) firing in Prometheus at ${url}: ${names.slice(0, NAMED).join(', ')}${names.length > NAMED ? ` and ${names.length - NAMED} more` : ''}`);
}

/** Machines whose Node runs a pod matching the blocking selector (finished pods do not block). */
export function podHolds(pods: readonly PodFact[], selector: string, nodeOf: (machine: string) => string | null, machines: Iterable<string>): Map<string, WaitingReason> {
  const byNode = new Map<string, string[]>();
  for (const p of pods) {
    if (p.node === null || p.phase === 'Succeeded' || p.phase === 'Failed') continue;
    byNode.set(p.node, [...(byNode.get(p.node) ?? []), `${p.namespace}/${p.name}`]);
  }
  const out = new Map<string, WaitingReason>();
  for (const m of machines) {
    const node = nodeOf(m);
    const found = node === null ? undefined : byNode.get(node);
    if (found === undefined) continue;
    const names = found.sort();
    out.set(m, held(`blocking pods (${selector}) on Node ${node}: ${names.slice(0, NAMED).join(', ')}${names.length > NAMED ? ` and ${names.length - NAMED} more` : ''}`));
  }
  return out;
}

export interface GateCheckerDeps {
  /** Pods matching a label selector, every namespace; null without a member cluster. */
  readonly listPods: ((labelSelector: string) => Promise<PodFact[]>) | null;
  /** The Node name of a machine, or null when it has none. */
  readonly nodeOf: (machine: string) => string | null;
  readonly log: Logger;
  /** Told when a rollout's gates changed (the controller steps it). */
  readonly changed: (rollout: string) => void;
  readonly refreshMs?: number;
}

interface Entry {
  readonly key: string;
  gates: RebootGates;
  /** When the last read started, and when the last one that answered started. */
  checkedAt: number;
  readAt: number;
  checking: boolean;
}

/** Reads each reboot rollout's gates in the background and keeps the last answer. */
export class RebootGateChecker {
  private readonly d: GateCheckerDeps;
  private readonly entries = new Map<string, Entry>();

  constructor(deps: GateCheckerDeps) {
    this.d = deps;
  }

  /**
   * The gates of a reboot rollout as last read, and a new read started when they are
   * older than the refresh interval. Before the first read, the rollout is held.
   */
  gatesFor(rollout: string, spec: RebootSpec, candidates: readonly string[], now: number): RebootGates {
    const key = JSON.stringify([spec.prometheus, spec.blockingPods]);
    let e = this.entries.get(rollout);
    const none = spec.prometheus === null && spec.blockingPods === null;
    if (none) return { rollout: null, machines: new Map() };
    if (e === undefined || e.key !== key) {
      e = { key, gates: { rollout: held('checking alerts and blocking pods before the first reboot'), machines: new Map() }, checkedAt: 0, readAt: 0, checking: false };
      this.entries.set(rollout, e);
    }
    const refresh = this.d.refreshMs ?? GATE_REFRESH_MS;
    if (!e.checking && now - e.checkedAt >= refresh) {
      e.checking = true;
      e.checkedAt = now;
      const entry = e;
      void this.read(spec, candidates).then((gates) => {
        entry.readAt = now;
        if (JSON.stringify([gates.rollout, [...gates.machines]]) === JSON.stringify([entry.gates.rollout, [...entry.gates.machines]])) return;
        entry.gates = gates;
        this.d.changed(rollout);
      }).catch((err: unknown) => {
        this.d.log.error({ err, rollout }, 'reading reboot gates failed; holding and retrying');
        entry.gates = { rollout: held(`the gates could not be read: ${(err as Error).message}`), machines: new Map() };
      }).finally(() => {
        entry.checking = false;
      });
    }
    // An answer older than a few reads (rollouts were held, the reads hang) says nothing about now.
    if (e.readAt > 0 && now - e.readAt > 3 * refresh + READ_TIMEOUT_MS) return { rollout: held('re-reading alerts and blocking pods (the last answer is too old)'), machines: e.gates.machines };
    return e.gates;
  }

  /** Forgets a finished rollout. */
  forget(rollout: string): void {
    this.entries.delete(rollout);
  }

  private async read(spec: RebootSpec, candidates: readonly string[]): Promise<RebootGates> {
    let rollout: WaitingReason | null = null;
    if (spec.prometheus !== null) rollout = await this.alerts(spec.prometheus.url, spec.prometheus.alertFilter);
    let machines = new Map<string, WaitingReason>();
    if (spec.blockingPods !== null) {
      if (this.d.listPods === null) {
        rollout ??= held('blocking pods are set but there is no member cluster to read pods from (--member-kubeconfig)');
      } else {
        try {
          machines = podHolds(await withTimeout(this.d.listPods(spec.blockingPods), READ_TIMEOUT_MS, 'listing pods'), spec.blockingPods, this.d.nodeOf, candidates);
        } catch (err) {
          rollout ??= held(`cannot read blocking pods (${spec.blockingPods}) from the member cluster: ${(err as Error).message}`);
        }
      }
    }
    return { rollout, machines };
  }

  private async alerts(url: string, filter: string | null): Promise<WaitingReason | null> {
    const target = `${url.replace(/\/+$/, '')}/api/v1/alerts`;
    try {
      const res = await fetch(target, { signal: AbortSignal.timeout(PROMETHEUS_TIMEOUT_MS), headers: { accept: 'application/json' } });
      if (!res.ok) return held(`Prometheus at ${url} answered HTTP ${res.status}; holding until it answers`);
      return alertHold(await res.json(), filter === null ? null : new RegExp(filter), url);
    } catch (err) {
      this.d.log.warn({ err: (err as Error).message, url }, 'cannot read alerts');
      return held(`Prometheus at ${url} is unreachable (${(err as Error).message}); holding until it answers`);
    }
  }
}
