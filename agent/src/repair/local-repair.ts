/**
 * Local self-repair (off by default): when the coordinator has been unreachable longer
 * than `--local-repair-after` and the kubelet or the runtime is down (probe not healthy
 * AND its service known and not active), the agent restarts it itself, at most
 * `--local-repair-budget N/period` times (all units together). Every action goes to the
 * durable RepairLog (source `local`), so an agent restart neither refills the budget nor
 * forgets to tell; the next full report after a reconnect carries a summary in its host
 * section's message (no protocol change), and the records are then marked reported.
 *
 * The decision is a pure function of (facts, history, now); LocalRepairer is the thin I/O.
 */
import type { Logger } from '@nodekeeper/common';
import type { NodeReport, ServiceState } from '@nodekeeper/protocol';
import type { RepairLog, RepairRecord } from './repair-log.ts';
import type { Repairer } from './repairer.ts';

export interface LocalRepairPolicy {
  /** How long the coordinator must have been unreachable. */
  readonly afterMs: number;
  readonly budget: { readonly count: number; readonly periodMs: number };
}

export interface ComponentFacts {
  readonly unit: string;
  readonly healthy: boolean;
  readonly service: ServiceState | null;
}

export type LocalDecision =
  | { readonly act: 'restart'; readonly unit: string }
  | { readonly act: 'none'; readonly why: 'connected' | 'healthy' | 'unknown-service' | 'budget-spent' };

/** True when the component is down in a way a restart can fix: unhealthy and its service known not active. */
export function isDown(c: ComponentFacts): boolean {
  return !c.healthy && c.service !== null && c.service.activeState !== null && c.service.activeState !== 'active';
}

/**
 * What to do now, for the first down component in order (runtime before kubelet: the
 * kubelet needs the runtime). Pure: `unreachableForMs` is on the agent's own clock, and
 * `history` holds the times (ms) of earlier local repairs.
 */
export function decideLocalRepair(policy: LocalRepairPolicy, unreachableForMs: number, components: readonly ComponentFacts[], history: readonly number[], now: number): LocalDecision {
  if (unreachableForMs < policy.afterMs) return { act: 'none', why: 'connected' };
  const down = components.find(isDown);
  if (down === undefined) return { act: 'none', why: components.some((c) => !c.healthy) ? 'unknown-service' : 'healthy' };
  const used = history.filter((t) => t > now - policy.budget.periodMs && t <= now).length;
  if (used >= policy.budget.count) return { act: 'none', why: 'budget-spent' };
  return { act: 'restart', unit: down.unit };
}

export interface LocalRepairerDeps {
  readonly policy: LocalRepairPolicy;
  readonly repairer: Repairer;
  readonly record: RepairLog;
  readonly log: Logger;
  readonly clock?: () => number;
  /** How long a local restart waits for its probe (default 30 s). */
  readonly timeoutMs?: number;
}

export class LocalRepairer {
  private readonly d: LocalRepairerDeps;
  private running = false;
  private lastWhy: string | null = null;

  constructor(deps: LocalRepairerDeps) {
    this.d = deps;
  }

  /**
   * One look after a probe round: restarts at most one unit. Returns the decision (tests,
   * logs). Never throws: a failure is logged and recorded by the repairer.
   */
  async tick(report: Pick<NodeReport, 'kubelet' | 'runtime'>, unreachableForMs: number): Promise<LocalDecision> {
    if (this.running) return { act: 'none', why: 'connected' };
    this.running = true;
    try {
      const now = (this.d.clock ?? Date.now)();
      const history = (await this.d.record.all()).filter((r) => r.source === 'local' && r.kind === 'service.restart').map((r) => Date.parse(r.at));
      const components: ComponentFacts[] = [
        { unit: report.runtime.service?.unit ?? 'containerd.service', healthy: report.runtime.health === 'healthy', service: report.runtime.service },
        { unit: report.kubelet.service?.unit ?? 'kubelet.service', healthy: report.kubelet.health === 'healthy', service: report.kubelet.service },
      ];
      const decision = decideLocalRepair(this.d.policy, unreachableForMs, components, history, now);
      if (decision.act === 'restart') {
        this.d.log.warn({ unit: decision.unit, unreachableForMs }, 'coordinator unreachable and a component is down: restarting it locally');
        const o = await this.d.repairer.restartService({ unit: decision.unit, timeoutMs: this.d.timeoutMs ?? 30_000 }, { source: 'local' });
        this.d.log.info({ unit: decision.unit, outcome: o.result.outcome }, 'local repair done');
      } else if (decision.why === 'budget-spent' && this.lastWhy !== 'budget-spent') {
        // Logged on the transition only: a dead kubelet must not flood the log every probe round.
        this.d.log.error({ budget: this.d.policy.budget }, 'a component is down but the local repair budget is spent; waiting for the coordinator or a human');
      }
      this.lastWhy = decision.act === 'none' ? decision.why : null;
      return decision;
    } catch (err) {
      this.d.log.error({ err }, 'local repair failed');
      return { act: 'none', why: 'healthy' };
    } finally {
      this.running = false;
    }
  }

  /** Local repairs not yet reported, oldest first. */
  async unreported(): Promise<RepairRecord[]> {
    return (await this.d.record.all()).filter((r) => r.source === 'local' && r.reported === false);
  }

  /** Marks `records` (by time and target) as reported. */
  async markReported(records: readonly RepairRecord[]): Promise<void> {
    const keys = new Set(records.map((r) => `${r.at}|${r.target}`));
    await this.d.record.update((all) => all.map((r) => (r.source === 'local' && keys.has(`${r.at}|${r.target}`) ? { ...r, reported: true } : r)));
  }
}

/** One line for a report's host message: what the agent did by itself while disconnected. */
export function summarizeLocalRepairs(records: readonly RepairRecord[]): string {
  if (records.length === 0) return '';
  const items = records.slice(-10).map((r) => `${r.at} restarted ${r.target}: ${r.outcome}`);
  return `local repairs while the coordinator was unreachable (${records.length}): ${items.join('; ')}`;
}
