/**
 * Where the users of the availability budget meet, so that the rollout and remediation
 * controllers depend on this module and not on each other. Each user says once, at
 * start-up, how to read what it has out; every planning step reads them all afresh (no
 * copy to go stale, nothing a restart would lose: each user derives its holds from its
 * persisted state). No I/O, no timers.
 */
import { budgetFor, type FleetBudget, type Hold, type Partition, type UserBudget } from './budget.ts';
import type { IntOrPercent } from './int-or-percent.ts';

export class SharedBudget {
  /** The cluster's limit, parsed once (config.ts). */
  readonly maxUnavailable: IntOrPercent;
  readonly #sources: Array<() => readonly Hold[]> = [];
  #partition: () => Partition | null = () => null;

  constructor(maxUnavailable: IntOrPercent) {
    this.maxUnavailable = maxUnavailable;
  }

  /** A user of the budget: `read` says what it has out now (one Hold per rollout, say). */
  addUser(read: () => readonly Hold[]): void {
    this.#sources.push(read);
  }

  /** The partition detector (the remediation's storm guard): while it reports one, nothing starts. */
  setPartitionSource(read: () => Partition | null): void {
    this.#partition = read;
  }

  partition(): Partition | null {
    return this.#partition();
  }

  /** The whole budget now, over a fleet of `fleetSize` enrolled machines. */
  snapshot(fleetSize: number): FleetBudget {
    return { maxUnavailable: this.maxUnavailable, fleetSize, holds: this.#sources.flatMap((read) => read()), partition: this.#partition() };
  }

  /** What `user` sees of it: the limit and what everyone else has out. */
  for(user: string, fleetSize: number): UserBudget {
    return budgetFor(this.snapshot(fleetSize), user);
  }
}
