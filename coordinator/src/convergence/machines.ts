/**
 * The convergence planner's machines (ConvergeMachine, sorted by name), kept from the
 * fleet view with work proportional to what changed, not to the fleet (issue 15, item 3):
 * only machines the fleet view said moved (touched(): report, pins, labels, agent
 * version, revocation, deletion) are read again, and a machine whose versions, pins,
 * labels and reported flag say the same keeps its object. While none changed the very
 * same array is handed out, and the planner reuses what it worked out of it (planner.ts,
 * standOf). Which packages' versions are read follows the ClusterPackageVersion and the
 * pins; when that list moves, every machine is read again. No I/O: a restart rebuilds
 * it. The property test (machines.test.ts) holds it to the full rebuild.
 */
import { observedVersion } from '../packages/cluster-package-version.ts';
import type { MachineRecord } from '../model/machine.ts';
import type { ConvergeMachine } from './types.ts';

/** What the machines are read from (the FleetView). */
export interface FleetSource {
  get(name: string): MachineRecord | undefined;
  values(): Iterable<MachineRecord>;
}

/** The planner's view of a stored machine, for `packages`. */
export function convergeMachine(m: MachineRecord, packages: readonly string[]): ConvergeMachine {
  const versions: Record<string, string | null> = {};
  for (const p of packages) versions[p] = observedVersion(m, p)?.raw ?? null;
  const pins: Record<string, string> = {};
  for (const [p, o] of Object.entries(m.packageOverrides ?? {})) pins[p] = o.version;
  // Versions are known once the agent reported (the agent's own comes with its hello, before).
  return { name: m.name, labels: m.labels, reported: m.report !== null, versions, pins };
}

const byName = (a: ConvergeMachine, b: ConvergeMachine) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

export class ConvergeMachines {
  readonly #byName = new Map<string, ConvergeMachine>();
  /** Machines pinning each package (a package only pins name is still converged). */
  readonly #pinned = new Map<string, number>();
  /** Sorted by name, and each one's place in it; null after a machine came or went. */
  #sorted: ConvergeMachine[] = [];
  #place: Map<string, number> | null = null;
  /** Machines whose object was replaced since `#sorted` was built. */
  readonly #replaced = new Set<string>();
  #dirty = new Set<string>();
  #all = true;
  #packagesKey: string | null = null;
  #packages: readonly string[] = [];

  /** The machine may have changed in the fleet view. */
  touched(name: string): void {
    if (!this.#all) this.#dirty.add(name);
  }

  /** Packages some machine pins, by name. */
  pinnedPackages(): string[] {
    return [...this.#pinned.keys()].sort();
  }

  /** Reads again the machines touched since the last call (all of them the first time). */
  refresh(fleet: FleetSource): void {
    if (this.#all) return this.#rebuild(fleet);
    const names = this.#dirty;
    this.#dirty = new Set();
    for (const name of names) this.#read(name, fleet.get(name));
  }

  /**
   * The machines not revoked, sorted by name, with the versions of `packages` (the
   * ClusterPackageVersion's, then every package a pin names: refresh() first, then
   * pinnedPackages()): the same array while no machine's changed.
   */
  machines(fleet: FleetSource, packages: readonly string[]): readonly ConvergeMachine[] {
    const key = packages.join('\n');
    if (key !== this.#packagesKey) {
      this.#packagesKey = key;
      this.#packages = [...packages];
      this.#rebuild(fleet);
    }
    if (this.#place === null) {
      this.#sorted = [...this.#byName.values()].sort(byName);
      this.#place = new Map(this.#sorted.map((m, i) => [m.name, i]));
    } else if (this.#replaced.size > 0) {
      // The same names: the objects that moved replaced where they stand, in a new array.
      const next = this.#sorted.slice();
      for (const name of this.#replaced) next[this.#place.get(name) as number] = this.#byName.get(name) as ConvergeMachine;
      this.#sorted = next;
    }
    this.#replaced.clear();
    return this.#sorted;
  }

  #rebuild(fleet: FleetSource): void {
    this.#all = false;
    this.#dirty.clear();
    const seen = new Set<string>();
    for (const m of fleet.values()) {
      seen.add(m.name);
      this.#read(m.name, m);
    }
    for (const name of [...this.#byName.keys()]) if (!seen.has(name)) this.#read(name, undefined);
  }

  #read(name: string, m: MachineRecord | undefined): void {
    const had = this.#byName.get(name);
    const next = m === undefined || m.revokedAt !== null ? undefined : convergeMachine(m, this.#packages);
    if (had !== undefined && next !== undefined && sameMachine(had, next)) return;
    if (had !== undefined) this.#pin(had, -1);
    if (next === undefined) {
      if (had !== undefined) {
        this.#byName.delete(name);
        this.#place = null;
      }
      return;
    }
    this.#pin(next, 1);
    this.#byName.set(name, next);
    if (had === undefined) this.#place = null;
    else this.#replaced.add(name);
  }

  #pin(m: ConvergeMachine, by: 1 | -1): void {
    for (const p of Object.keys(m.pins)) {
      const n = (this.#pinned.get(p) ?? 0) + by;
      if (n === 0) this.#pinned.delete(p);
      else this.#pinned.set(p, n);
    }
  }
}

function sameMachine(a: ConvergeMachine, b: ConvergeMachine): boolean {
  return a.reported === b.reported && sameRecord(a.versions, b.versions) && sameRecord(a.pins, b.pins) && (a.labels === b.labels || sameRecord(a.labels, b.labels));
}

function sameRecord(a: Readonly<Record<string, string | null>>, b: Readonly<Record<string, string | null>>): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) if (a[k] !== b[k] || !(k in b)) return false;
  return true;
}
