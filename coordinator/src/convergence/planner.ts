/**
 * The convergence planner: pure. From the ClusterPackageVersion (with its updateStrategy),
 * the pins, what machines run and the rollouts that exist, it decides which rollout to
 * create, supersede, pause or resume, so desired versions converge by themselves as a
 * MachineConfigPool's rendered config does. The rollouts themselves still do the work
 * (RolloutController.create: the same gates, shared budget and skew guard).
 *
 * Per package there is at most one live converger rollout, and none while a hand-made
 * rollout changes that package: two rollouts of one package would fight over machines.
 * The ClusterPackageVersion's track goes first; pins (one track per pinned machine)
 * follow in name order.
 */
import { sameVersion, strategyFields } from '../packages/cluster-package-version.ts';
import { ROLLOUT_API_VERSION } from '../rollout/spec.ts';
import { REQUEST_ALLOWED, TERMINAL_PHASES } from '../rollout/types.ts';
import type { UpdateStrategyInput } from '../model/packages.ts';
import {
  CPV_TRACK, DEFAULT_CONVERGE_OPTIONS, FINAL_REFUSALS, MANAGED_BY, MANAGED_BY_LABEL,
  type ConvergeAction, type ConvergeInput, type ConvergeMachine, type ConvergePlan, type DesiredPackage, type ManagedRollout, type PackageConvergence,
} from './types.ts';

/** Longest rollout name the Rollout schema accepts. */
const MAX_NAME = 253;

interface Track {
  /** CPV_TRACK or the pinned machine's name. */
  readonly id: string;
  readonly version: string;
  readonly key: string;
  readonly refusalKey: string;
  /** Machines not at the track's version, in name order. */
  readonly behind: readonly string[];
}

/** Machines the CPV's track of `pkg` covers: selected, and not pinned to another version. */
export function followsCpv(m: ConvergeMachine, pkg: DesiredPackage): boolean {
  if (pkg.version === null || pkg.strategy === null) return false;
  const match = pkg.strategy.selector?.matchLabels ?? {};
  for (const k in match) if (m.labels[k] !== match[k]) return false;
  const pin = m.pins[pkg.name];
  return pin === undefined || same(pin, pkg.version);
}

/** True when machine `m` runs `version` of `pkg`. */
export function atVersion(m: ConvergeMachine, pkg: string, version: string): boolean {
  const v = m.versions[pkg] ?? null;
  return v !== null && same(v, version);
}

/**
 * sameVersion, remembered: a fleet reports a handful of version strings, and reading one
 * as semver is most of what a pass over the machines costs. Bounded: cleared when full.
 */
const sameness = new Map<string, boolean>();
function same(a: string, b: string): boolean {
  const key = `${a}\n${b}`;
  let answer = sameness.get(key);
  if (answer === undefined) {
    if (sameness.size >= 4096) sameness.clear();
    answer = sameVersion(a, b);
    sameness.set(key, answer);
  }
  return answer;
}

/** What a package's convergence reads of the machines: the only part of a step that walks the fleet. */
interface FleetStand {
  /** Machines that follow the CPV's track (reported, selected, not pinned elsewhere)... */
  readonly followers: number;
  /** ...those at the CPV's version, and the others by name, in machine order. */
  readonly atDesired: number;
  readonly behind: readonly string[];
  /** Machines pinned to another version than the CPV's, in machine order: each its own track. */
  readonly pins: ReadonlyArray<{ readonly machine: string; readonly version: string; readonly behind: boolean }>;
}

/**
 * Per machines array (inputs are immutable), per package and what selects its followers:
 * worked out once, so steps over the same machines (the controller passes the same array
 * while no machine's versions, pins or labels moved) do not walk the fleet again.
 */
const stands = new WeakMap<readonly ConvergeMachine[], Map<string, FleetStand>>();

function standOf(machines: readonly ConvergeMachine[], pkg: DesiredPackage): FleetStand {
  let known = stands.get(machines);
  if (known === undefined) {
    known = new Map();
    stands.set(machines, known);
  }
  const key = JSON.stringify([pkg.name, pkg.version, pkg.strategy === null ? null : pkg.strategy.selector?.matchLabels ?? {}]);
  let stand = known.get(key);
  if (stand === undefined) {
    let followers = 0;
    let atDesired = 0;
    const behind: string[] = [];
    const pins: Array<FleetStand['pins'][number]> = [];
    for (const m of machines) {
      if (pkg.version !== null && m.reported && followsCpv(m, pkg)) {
        followers++;
        if (atVersion(m, pkg.name, pkg.version)) atDesired++;
        else behind.push(m.name);
      }
      const pin = m.pins[pkg.name];
      if (pin !== undefined && !(pkg.version !== null && same(pin, pkg.version))) pins.push({ machine: m.name, version: pin, behind: m.reported && !atVersion(m, pkg.name, pin) });
    }
    stand = { followers, atDesired, behind, pins };
    known.set(key, stand);
  }
  return stand;
}

/** What a rollout is made for; a different key for the same track means it is superseded. */
function keyOf(version: string, s: UpdateStrategyInput, selector: boolean): string {
  return JSON.stringify({ version, ...(selector ? { selector: s.selector?.matchLabels ?? {} } : {}), strategy: strategyFields(s) });
}

function tracksOf(pkg: DesiredPackage, s: UpdateStrategyInput, stand: FleetStand, generation: number): Track[] {
  const out: Track[] = [];
  if (pkg.version !== null) out.push({ id: CPV_TRACK, version: pkg.version, key: keyOf(pkg.version, s, true), refusalKey: `g${generation}`, behind: stand.behind });
  for (const p of stand.pins) out.push({ id: p.machine, version: p.version, key: keyOf(p.version, s, false), refusalKey: p.version, behind: p.behind ? [p.machine] : [] });
  return out;
}

const live = (r: ManagedRollout) => r.rollout !== null && !TERMINAL_PHASES.has(r.rollout.phase);

function nextName(pkg: string, track: string, generation: number, taken: ReadonlySet<string>): string {
  if (track === CPV_TRACK) {
    const base = `${pkg}-g${generation}`;
    if (!taken.has(base)) return base;
    for (let n = 2; ; n++) if (!taken.has(`${base}-${n}`)) return `${base}-${n}`;
  }
  for (let n = 1; ; n++) if (!taken.has(`pin-${track}-${pkg}-${n}`)) return `pin-${track}-${pkg}-${n}`;
}

/** Decides one step of convergence for every package. Same input, same output. */
export function planConvergence(input: ConvergeInput): ConvergePlan {
  const opts = input.options ?? DEFAULT_CONVERGE_OPTIONS;
  const actions: ConvergeAction[] = [];
  const packages: PackageConvergence[] = [];
  const taken = new Set([...input.rollouts.map((r) => r.name), ...input.managed.map((r) => r.name)]);

  for (const pkg of input.packages) {
    const stand = standOf(input.machines, pkg);
    const { followers, atDesired } = stand;
    const report = (state: PackageConvergence['state'], reason: string, message: string, rollout: string | null = null) =>
      packages.push({ name: pkg.name, desired: pkg.version, state, reason, message, machines: followers, atDesired, rollout });
    const s = pkg.strategy;
    if (s === null) {
      report('Unmanaged', 'NoUpdateStrategy', 'no updateStrategy: versions move only by rollouts made by hand');
      continue;
    }
    const tracks = tracksOf(pkg, s, stand, input.generation);
    const mine = input.managed.filter((r) => r.package === pkg.name);
    const running = mine.filter(live);

    if (s.paused === true) {
      for (const r of running) if (REQUEST_ALLOWED.pause.has(r.rollout!.phase)) actions.push({ kind: 'pause', name: r.name, package: pkg.name });
      report('Paused', 'UpdateStrategyPaused', 'updateStrategy.paused is true: no new step starts', running[0]?.name ?? null);
      continue;
    }

    // A live rollout made for another target than its track's now is superseded.
    let superseding = false;
    for (const r of running) {
      const track = tracks.find((t) => t.id === r.track);
      if (track !== undefined && track.key === r.specKey) continue;
      superseding = true;
      const phase = r.rollout!.phase;
      const why = track === undefined ? 'its target is gone' : `the target is now ${pkg.name}=${track.version} (generation ${input.generation})`;
      if (s.onSupersede === 'Rollback') {
        if (phase !== 'RollingBack' && REQUEST_ALLOWED.rollback.has(phase)) {
          actions.push({ kind: 'supersede', name: r.name, request: 'rollback', package: pkg.name, generation: input.generation, message: `superseded: ${why}; rolling back what it changed first (onSupersede: Rollback)` });
        }
      } else {
        actions.push({ kind: 'supersede', name: r.name, request: 'abort', package: pkg.name, generation: input.generation, message: `superseded: ${why}; the new rollout takes over from where machines are (onSupersede: Keep)` });
      }
    }
    if (superseding) {
      report('Converging', 'Superseding', `superseding ${running.map((r) => r.name).join(', ')}`, running[0]?.name ?? null);
      continue;
    }
    const current = running[0];
    if (current !== undefined) {
      const r = current.rollout!;
      if (current.pausedByUs && r.phase === 'Paused') {
        actions.push({ kind: 'resume', name: current.name, package: pkg.name });
        report('Converging', 'Resumed', `resuming ${current.name}: updateStrategy.paused is false`, current.name);
      } else if (r.phase === 'Paused') {
        report('Degraded', 'RolloutPaused', `${current.name} is paused: ${r.reason}: ${r.message}`, current.name);
      } else {
        report('Converging', 'RollingOut', `${current.name} is ${r.phase}`, current.name);
      }
      continue;
    }
    const other = input.rollouts.find((r) => !TERMINAL_PHASES.has(r.phase) && r.packages.includes(pkg.name) && !mine.some((x) => x.name === r.name));
    if (other !== undefined) {
      report('Converging', 'WaitingForRollout', `waiting for rollout ${other.name} (not made by convergence), which changes ${pkg.name}`, other.name);
      continue;
    }

    let degraded: { reason: string; message: string } | null = null;
    let created: string | null = null;
    for (const t of tracks) {
      if (t.behind.length === 0) continue;
      const where = t.id === CPV_TRACK ? `generation ${input.generation}` : `the pin of ${t.id}`;
      const refusal = input.refusals.find((x) => x.package === pkg.name && x.track === t.id && x.key === t.refusalKey);
      if (refusal !== undefined && (FINAL_REFUSALS.has(refusal.code) || input.now < refusal.at + opts.retryBaseMs)) {
        const again = FINAL_REFUSALS.has(refusal.code) ? 'not retried until the target changes' : `retrying in ${Math.ceil((refusal.at + opts.retryBaseMs - input.now) / 1000)}s`;
        degraded ??= { reason: 'RolloutRefused', message: `${pkg.name}=${t.version} for ${where} was refused (${refusal.code}): ${refusal.message}; ${again}` };
        continue;
      }
      // After a failed rollout, or one that completed and left the same machines behind
      // (an agent that reports no version, a reinstall by hand), the next try waits, and
      // longer each time: never a loop of rollouts. A machine the last one did not cover
      // (enrolled later) starts at once.
      const history = mine.filter((r) => r.track === t.id && r.specKey === t.key && r.rollout !== null);
      const last = history.at(-1)?.rollout;
      if (last !== undefined && last !== null && (last.phase !== 'Completed' || t.behind.every((m) => m in last.machines))) {
        const retryAt = last.since + Math.min(opts.retryMaxMs, opts.retryBaseMs * 2 ** Math.min(20, history.length - 1));
        if (input.now < retryAt) {
          const what = last.phase === 'Completed' ? `${last.name} completed but ${t.behind.length} machine(s) are still not at ${t.version}` : `${last.name} ended ${last.phase} (${last.reason})`;
          degraded ??= { reason: last.phase === 'Completed' ? 'StillBehind' : 'RolloutFailed', message: `${what}; retrying in ${Math.ceil((retryAt - input.now) / 1000)}s` };
          continue;
        }
      }
      const name = nextName(pkg.name, t.id, input.generation, taken);
      if (name.length > MAX_NAME) {
        degraded ??= { reason: 'NameTooLong', message: `the rollout name for ${where} would be longer than ${MAX_NAME} characters` };
        continue;
      }
      taken.add(name);
      actions.push({
        kind: 'create', name, package: pkg.name, track: t.id, generation: input.generation, version: t.version, specKey: t.key, refusalKey: t.refusalKey, machines: t.behind,
        object: {
          apiVersion: ROLLOUT_API_VERSION,
          kind: 'Rollout',
          metadata: { name, labels: { [MANAGED_BY_LABEL]: MANAGED_BY } },
          spec: { packages: [{ package: pkg.name, version: t.version }], selector: { names: [...t.behind] }, strategy: strategyFields(s) },
        },
      });
      created = name;
      break;
    }
    if (created !== null) report('Converging', 'RolloutCreated', `created ${created}`, created);
    else if (degraded !== null) report('Degraded', degraded.reason, degraded.message);
    else if (pkg.version === null) report('Converged', 'PinsConverged', 'every pinned machine runs its pinned version');
    else report('Converged', 'AllAtDesired', `${atDesired}/${followers} machine(s) at ${pkg.version}`);
  }
  return { actions, packages };
}
