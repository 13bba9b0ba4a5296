/**
 * The availability budget, architecture invariant 1, in one place: machines made
 * unavailable by nodekeeper (upgrading, draining, remediating, failed-not-yet-restored)
 * never exceed the cluster's limit, across every rollout and the remediation together.
 * Pure: the fleet's size, each user's holds, the partition state and the limit in; the
 * machines that may start out, and why the others may not, out.
 *
 * The rollout planner and the remediation policy each plan their own starts in their
 * own order, with their own gates between (window, zone, skew, cooldown), so they take
 * the budget in two parts: budgetFor() (what everyone else has out, and the limit) and a
 * Ledger (the running count as they start machines). admit() is the two put together,
 * for a caller with no gates of its own; budget.property.test.ts checks the rules on it
 * and on users taking turns through one SharedBudget (the planners' own property tests
 * check them against their own definitions).
 */
import { resolveIntOrPercent, type IntOrPercent } from './int-or-percent.ts';

/** What one user of the budget (a rollout, the remediation) has out now. */
export interface Hold {
  /** `rollout/<name>`, or `remediation`. */
  readonly user: string;
  /** Machines it is changing, or may still change by itself: nobody else may start them. */
  readonly machines: readonly string[];
  /**
   * Machines it made unavailable and released, not healthy again (failed-not-yet-restored,
   * rollout/holds.ts): still out, but free to others (starting one adds nothing).
   */
  readonly counted: readonly string[];
}

/** A suspected partition-wide outage (the storm guard's PartitionSuspected). */
export interface Partition {
  readonly reason: string;
  readonly message: string;
}

/** Everything the budget is decided from. */
export interface FleetBudget {
  /** The cluster's limit, parsed once (config.ts). */
  readonly maxUnavailable: IntOrPercent;
  /** Enrolled machines (revoked ones left out): the total a percent is of. */
  readonly fleetSize: number;
  readonly holds: readonly Hold[];
  /** While set, nothing starts: the picture of the fleet cannot be trusted. */
  readonly partition: Partition | null;
}

/** One user's share: the limit and what everyone else has out. */
export interface UserBudget {
  /** The cluster-wide maximum of machines nodekeeper may make unavailable at once. */
  readonly maxUnavailable: number;
  /** Machines the others hold (never started by this user: BusyElsewhere). */
  readonly unavailableNow: readonly string[];
  /** Machines out because of the others though nobody holds them (failed-not-yet-restored). */
  readonly countedNow: readonly string[];
  /** The fleet-wide hold, as in FleetBudget (nothing starts while it is set). */
  readonly partition: Partition | null;
}

/** The cluster's limit in machines: percents round down, never below 1 (int-or-percent.ts). */
export function clusterLimit(maxUnavailable: IntOrPercent, fleetSize: number): number {
  return resolveIntOrPercent(maxUnavailable, Math.max(1, fleetSize), false);
}

/** What `user` sees of the budget: the limit, the others' holds and the others' counted machines. */
export function budgetFor(budget: FleetBudget, user: string): UserBudget {
  const held = new Set<string>();
  const counted: string[] = [];
  for (const h of budget.holds) {
    if (h.user === user) continue;
    for (const m of h.machines) held.add(m);
    for (const m of h.counted) counted.push(m);
  }
  return { maxUnavailable: clusterLimit(budget.maxUnavailable, budget.fleetSize), unavailableNow: [...held], countedNow: counted, partition: budget.partition };
}

/**
 * The running count of machines out while a planner starts machines. Every machine in it
 * counts once, whoever has it out, and whether or not the fleet still knows it (a held
 * machine that went silent or was never seen is out until someone says otherwise).
 */
export class Ledger {
  readonly limit: number;
  readonly #out: Set<string>;

  constructor(limit: number, out: Iterable<string>) {
    this.limit = limit;
    this.#out = new Set(out);
  }

  get size(): number {
    return this.#out.size;
  }

  has(name: string): boolean {
    return this.#out.has(name);
  }

  /**
   * Whether starting `name` would take the fleet past the limit. A machine that already
   * counts adds nothing; `counts` says whether it does when the caller judges that
   * itself (a rollback counts only its own machines as already out).
   */
  full(name: string, counts: boolean = this.#out.has(name)): boolean {
    return !counts && this.#out.size + 1 > this.limit;
  }

  /** Counts `name` as out (it was just started). */
  take(name: string): void {
    this.#out.add(name);
  }

  /** "N machine(s) unavailable of at most L": the BudgetExhausted message's core. */
  describe(): string {
    return `${this.#out.size} machine(s) unavailable of at most ${this.limit}`;
  }
}

/** Why a machine may not start out now, as far as the budget is concerned. */
export interface Refusal {
  readonly machine: string;
  readonly reason: 'PartitionSuspected' | 'BusyElsewhere' | 'BudgetExhausted';
  readonly message: string;
}

/**
 * Of `candidates` (in the caller's order), the machines `user` may start out now, given
 * what it has out itself (`own`), and why each other one may not.
 */
export function admit(budget: FleetBudget, user: string, own: readonly string[], candidates: readonly string[]): { admitted: string[]; refused: Refusal[] } {
  if (budget.partition !== null) {
    const { reason, message } = budget.partition;
    return { admitted: [], refused: candidates.map((machine) => ({ machine, reason: 'PartitionSuspected', message: `${reason}: ${message}` })) };
  }
  const share = budgetFor(budget, user);
  const others = new Set(share.unavailableNow);
  // Out: what this user has out, and every user's holds and counted machines (its own too).
  const ledger = new Ledger(share.maxUnavailable, [...own, ...budget.holds.flatMap((h) => [...h.machines, ...h.counted])]);
  const admitted: string[] = [];
  const refused: Refusal[] = [];
  for (const machine of candidates) {
    if (others.has(machine)) refused.push({ machine, reason: 'BusyElsewhere', message: `${machine} is held by another rollout or a remediation` });
    else if (ledger.full(machine)) refused.push({ machine, reason: 'BudgetExhausted', message: ledger.describe() });
    else {
      ledger.take(machine);
      admitted.push(machine);
    }
  }
  return { admitted, refused };
}
