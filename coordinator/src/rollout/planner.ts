/**
 * The rollout planner: a pure function of (persisted state, fleet view, results,
 * operator request, now) -> (actions, next state). No I/O, no clock, no hidden state:
 * a restarted coordinator calls it with the persisted state and carries on exactly
 * where it was. The controller persists `state` and records the commands of the
 * install/rollback actions in one transaction, then sends them (docs/rollouts.md).
 *
 * Architecture invariants kept here: 1 (availability budget: this rollout plus
 * everyone else never exceeds min(spec.maxUnavailable, the cluster's budget) because of
 * something this planner started) and 7 (version skew and component order).
 */
import { DEFAULT_SILENCE_TIMEOUT_MS, Draft, isSilent } from './draft.ts';
import { applyResult, continueInstall, continueRollback, isHeld, judgeSoak, packagesToChange, startInstall, startReboot } from './machine-steps.ts';
import { checkSkew, type SkewReason } from './skew.ts';
import { Ledger, type Partition } from '../budget/budget.ts';
import { resolveIntOrPercent } from '../budget/int-or-percent.ts';
import type { MachineView, OperatorRequest, PlanInput, PlanResult, WaitingReason } from './types.ts';
import { IN_FLIGHT, MACHINE_GONE, SETTLED, TERMINAL_PHASES, requestAllowed } from './types.ts';
import { describeWindow, windowOpen } from './window.ts';

/**
 * Plans one step of a rollout. Same input, same output: planning twice on the same
 * input yields the same actions and state.
 */
export function planStep(input: PlanInput): PlanResult {
  const d = new Draft(input);
  const partition = input.budget.partition ?? null;
  if (partition !== null) return holdForPartition(d, partition);
  for (const ev of input.events ?? []) applyResult(d, ev);
  settleGone(d);
  if (input.request !== undefined && input.request !== null) applyRequest(d, input.request);
  if (!TERMINAL_PHASES.has(d.phase) && d.phase !== 'RollingBack') {
    releaseHeld(d);
    for (const name of d.state.candidates) judgeSoak(d, name);
    applyFailurePolicy(d);
  }
  if (d.phase === 'RollingBack') planRollback(d);
  else if (d.phase === 'Pending' || d.phase === 'Canary' || d.phase === 'Soaking' || d.phase === 'Progressing') planForward(d);
  if (TERMINAL_PHASES.has(d.phase)) settleLeftovers(d);
  return d.finish();
}

/**
 * A suspected partition: the picture of the fleet cannot be trusted, so nothing starts
 * (no install, rollback or reboot), no soak is judged and results are left for the step
 * after the hold (the caller keeps them: applying one may start a machine's next package).
 * An operator's request still changes the phase: a pause or an abort stops the rollout
 * now, a resume or a rollback is recorded and acts when the hold ends (invariant 5).
 */
function holdForPartition(d: Draft, partition: Partition): PlanResult {
  if (d.input.request !== undefined && d.input.request !== null) applyRequest(d, d.input.request);
  if (TERMINAL_PHASES.has(d.phase)) settleLeftovers(d);
  else if (d.phase !== 'Paused') d.setWaiting({ reason: 'PartitionSuspected', message: `${partition.reason}: ${partition.message}; nothing starts until the hold ends` });
  return d.finish();
}

/**
 * Machines held between two packages (kubelet no longer allowed by the skew policy) go
 * on once it allows them; while one is held the rollout pauses with the reason.
 */
function releaseHeld(d: Draft): void {
  for (const name of d.state.candidates) {
    const step = d.progress(name).step;
    if (!isHeld(d, name) || step === null || continueInstall(d, name, step.package)) continue;
    if (d.phase !== 'Paused') {
      d.transition('Paused', 'SkewViolation', `${d.progress(name).message}. Fix it, then ${d.command('resume')}`, d.command('resume'), true);
    }
  }
}

/** The availability limit of this rollout: min(spec.maxUnavailable, the cluster's budget). */
export function unavailableLimit(input: Pick<PlanInput, 'rollout' | 'budget'>): number {
  const own = resolveIntOrPercent(input.rollout.spec.strategy.maxUnavailable, input.rollout.state.candidates.length, false);
  return Math.max(0, Math.min(own, input.budget.maxUnavailable));
}

function applyRequest(d: Draft, request: OperatorRequest): void {
  if (!requestAllowed(d.phase, request)) {
    d.event('Warning', 'RequestIgnored', `"${request}" does nothing in phase ${d.phase}`);
    return;
  }
  if (request === 'pause') {
    d.transition('Paused', 'PausedByOperator', 'paused by an operator; machines in flight finish their step', d.command('resume'));
  } else if (request === 'resume') {
    // Failures so far are accepted: the threshold counts new ones from here.
    for (const [name, p] of d.machines) if (p.phase === 'Failed' && !p.counted) d.machines.set(name, { ...p, counted: true });
    d.state = { ...d.state, resumedAt: d.now };
    d.transition(d.state.resumeTo ?? 'Progressing', 'Resumed', 'resumed by an operator', null);
  } else if (request === 'abort') {
    if (d.spec.reboot !== undefined) d.transition('Failed', 'Aborted', 'aborted by an operator; nothing new starts (a reboot in progress finishes)', null, true);
    else d.transition('Failed', 'Aborted', `aborted by an operator; nothing new starts. To undo what was done: ${d.command('rollback')}`, d.command('rollback'), true);
  } else {
    d.transition('RollingBack', 'RollbackRequested', 'rollback requested by an operator', null, true);
  }
}

/** In the canary wave (or paused in it)? */
function inCanaryWave(d: Draft): boolean {
  if (d.state.canaryCount === 0) return false;
  const phase = d.phase === 'Paused' ? d.state.resumeTo : d.phase;
  return phase === 'Pending' || phase === 'Canary' || phase === 'Soaking';
}

/** A failed canary, or maxFailures reached: the spec's onFailure (Pause or Rollback). */
function applyFailurePolicy(d: Draft): void {
  const failed = d.state.candidates.filter((n) => {
    const p = d.progress(n);
    return p.phase === 'Failed' && !p.counted;
  });
  // Paused on the way back: the rollback resumes; new failures change nothing.
  if (failed.length === 0 || (d.phase === 'Paused' && d.state.resumeTo === 'RollingBack')) return;
  // A machine that did not come back as expected halts a reboot rollout at once, whatever
  // maxFailures says: rebooting the next one blindly is how a fleet gets bricked
  // (siderolabs/omni#1552). Nothing is sent again until an operator resumes.
  const rebootFailed = d.spec.reboot === undefined ? [] : failed.filter((n) => d.progress(n).reason === 'RebootFailed');
  if (rebootFailed.length > 0) {
    if (d.phase !== 'Paused' || d.state.reason !== 'RebootFailed') {
      const detail = rebootFailed.slice(0, 3).map((n) => `${n}: ${d.progress(n).message}`).join('; ');
      d.transition('Paused', 'RebootFailed', `${detail}. Nothing is rebooted again until an operator looks: fix the node, then ${d.command('resume')} (the failed machine is accepted, not rebooted again) or ${d.command('abort')}`, d.command('resume'), true);
    }
    return;
  }
  const canaries = new Set(d.state.candidates.slice(0, d.state.canaryCount));
  const canaryFailed = inCanaryWave(d) && failed.some((n) => canaries.has(n));
  const max = resolveIntOrPercent(d.spec.strategy.maxFailures, d.state.candidates.length, true);
  if (!canaryFailed && failed.length < max) return;
  const reason = canaryFailed ? 'CanaryFailed' : 'FailureThreshold';
  const detail = failed.slice(0, 3).map((n) => `${n}: ${d.progress(n).message}`).join('; ');
  const head = canaryFailed ? 'a canary failed' : `${failed.length} machine(s) failed (maxFailures ${max})`;
  if (d.spec.strategy.onFailure === 'Rollback') {
    d.transition('RollingBack', reason, `${head}; rolling back (${detail})`, null, true);
  } else if (d.phase !== 'Paused') {
    d.transition('Paused', reason, `${head}; paused (${detail}). Continue with ${d.command('resume')} or undo with ${d.command('rollback')}`, d.command('resume'), true);
  }
}

/** Index range [start, end) of wave `w` in the candidate order. */
function waveRange(d: Draft, w: number): [number, number] {
  return [w === 0 ? 0 : (d.state.waves[w - 1] ?? 0), d.state.waves[w] ?? d.state.candidates.length];
}

function planForward(d: Draft): void {
  if (d.phase === 'Pending') {
    d.state = { ...d.state, startedAt: d.now };
    d.transition(d.state.canaryCount > 0 ? 'Canary' : 'Progressing', 'Started', `started on ${d.state.candidates.length} machine(s)`, null);
  }
  // The running wave: the first with an unsettled machine. Earlier waves are all settled.
  let w = 0;
  while (w < d.state.waves.length) {
    const [s, e] = waveRange(d, w);
    if (!d.state.candidates.slice(s, e).every((n) => SETTLED.has(d.progress(n).phase))) break;
    w++;
  }
  d.state = { ...d.state, wave: Math.min(w, Math.max(0, d.state.waves.length - 1)) };
  if (w >= d.state.waves.length) {
    const failed = d.state.candidates.filter((n) => d.progress(n).phase === 'Failed').length;
    const msg = failed > 0 ? `done; ${failed} machine(s) failed and were accepted` : 'every selected machine is at the target version or skipped';
    d.transition('Completed', failed > 0 ? 'CompletedWithFailures' : 'Completed', msg, null);
    return;
  }
  const [s, e] = waveRange(d, w);
  const wave = d.state.candidates.slice(s, e);
  const canaryWave = w === 0 && d.state.canaryCount > 0;
  if (!canaryWave && d.phase !== 'Progressing') {
    d.transition('Progressing', d.state.canaryCount > 0 ? 'CanariesSucceeded' : 'Progressing', `wave ${w + 1} of ${d.state.waves.length} starting`, null);
  }
  const progress = startWave(d, wave.filter((n) => d.progress(n).phase === 'Waiting'));
  if (canaryWave && (d.phase === 'Canary' || d.phase === 'Soaking')) {
    const soaking = wave.some((n) => d.progress(n).phase === 'Soaking') && !wave.some((n) => ['Waiting', 'Installing'].includes(d.progress(n).phase));
    if (soaking && d.phase === 'Canary') d.transition('Soaking', 'CanariesInstalled', `canaries installed; soaking for ${d.spec.strategy.soakSeconds}s`, null);
    if (!soaking && d.phase === 'Soaking') d.transition('Canary', 'CanariesInstalling', 'canaries installing', null);
  }
  pauseIfSilent(d, progress);
}

/** What stopped a machine from starting this step. */
interface Blocked {
  readonly machine: string;
  readonly why: WaitingReason;
}

/**
 * Starts what may start from `waiting` (in candidate order): skips machines already
 * at the target or that would be downgraded, pauses on a skew violation, and starts the
 * rest while the maintenance window, the availability budget and maxPerZone allow.
 * Returns the machines that were blocked.
 */
function startWave(d: Draft, waiting: readonly string[]): { started: number; blocked: Blocked[] } {
  const others = d.others();
  const ledger = new Ledger(unavailableLimit(d.input), [...d.ownUnavailable(), ...d.unavailableElsewhere()]);
  const zoneLoad = new Map<string, number>();
  for (const [name, p] of d.machines) {
    const zone = d.views.get(name)?.zone ?? null;
    if (IN_FLIGHT.has(p.phase) && zone !== null) zoneLoad.set(zone, (zoneLoad.get(zone) ?? 0) + 1);
  }
  const open = windowOpen(d.spec.strategy.window, d.now);
  const reboot = d.spec.reboot;
  // What a machine needs depends only on its versions of the spec's packages, and a
  // fleet has a handful of such sets: read each once per step, not once per machine
  // (a wave of thousands blocked by the budget is re-read on every tick).
  const moves = new Map<string, { todo: string[]; problems: SkewReason[] }>();
  const moveOf = (view: MachineView) => {
    const key = JSON.stringify(d.spec.packages.map((p) => view.versions[p.package] ?? null));
    let move = moves.get(key);
    if (move === undefined) {
      const todo = packagesToChange(d, view);
      const targets = Object.fromEntries(d.spec.packages.filter((p) => todo.includes(p.package)).map((p) => [p.package, p.version]));
      move = { todo, problems: todo.length === 0 ? [] : checkSkew({ controlPlane: d.input.controlPlaneVersion, targets, current: view.versions, allowDowngrade: d.spec.allowDowngrade }) };
      moves.set(key, move);
    }
    return move;
  };
  const blocked: Blocked[] = [];
  let started = 0;
  for (const name of waiting) {
    const view = d.views.get(name);
    if (view === undefined) {
      d.setMachine(name, { phase: 'Skipped', reason: MACHINE_GONE, message: `${name} is no longer enrolled` }, true);
      continue;
    }
    if (reboot !== undefined) {
      // A reboot rollout has no versions to compare: only whether the machine still needs it.
      if (reboot.onlyRequired && view.rebootRequired === false) {
        d.setMachine(name, { phase: 'Skipped', reason: 'RebootNotRequired', message: 'its agent no longer reports that a reboot is required' });
        continue;
      }
      const why = rebootBlock(d, name, view, open, others, ledger, zoneLoad);
      if (why !== null) {
        blocked.push({ machine: name, why });
        continue;
      }
      startReboot(d, name);
      ledger.take(name);
      if (view.zone !== null) zoneLoad.set(view.zone, (zoneLoad.get(view.zone) ?? 0) + 1);
      started++;
      continue;
    }
    const { todo, problems } = moveOf(view);
    if (todo.length === 0) {
      d.setMachine(name, { phase: 'Skipped', reason: 'AlreadyAtVersion', message: 'already at the target version(s)' });
      continue;
    }
    const skew = problems.find((r) => r.reason === 'KubeletSkew');
    if (skew !== undefined) {
      d.transition('Paused', 'SkewViolation', `${skew.message}. Fix it, then ${d.command('resume')}`, d.command('resume'), true);
      return { started, blocked };
    }
    if (problems.length > 0) {
      d.setMachine(name, { phase: 'Skipped', reason: problems[0]?.reason === 'Downgrade' ? 'DowngradeRefused' : 'UnreadableVersion', message: problems.map((r) => r.message).join('; ') }, true);
      continue;
    }
    if (!open && d.spec.strategy.window !== undefined) {
      blocked.push({ machine: name, why: { reason: 'OutsideWindow', message: `outside the maintenance window (${describeWindow(d.spec.strategy.window)})` } });
      continue;
    }
    if (isSilent(view) || !view.connected) {
      blocked.push({ machine: name, why: { reason: 'MachineUnreachable', message: `${name} is not connected (liveness ${view.liveness.state})` } });
      continue;
    }
    if (others.has(name)) {
      blocked.push({ machine: name, why: { reason: 'BusyElsewhere', message: `${name} is being changed by another rollout or a remediation` } });
      continue;
    }
    if (ledger.full(name)) {
      blocked.push({ machine: name, why: { reason: 'BudgetExhausted', message: ledger.describe() } });
      continue;
    }
    const max = d.spec.strategy.maxPerZone;
    if (max !== undefined && view.zone !== null && (zoneLoad.get(view.zone) ?? 0) >= max) {
      blocked.push({ machine: name, why: { reason: 'ZoneLimit', message: `zone ${view.zone} already has ${max} machine(s) in progress` } });
      continue;
    }
    const previous = Object.fromEntries(d.spec.packages.map((p) => [p.package, view.versions[p.package] ?? null]));
    startInstall(d, name, todo[0] ?? '', { previous });
    ledger.take(name);
    if (view.zone !== null) zoneLoad.set(view.zone, (zoneLoad.get(view.zone) ?? 0) + 1);
    started++;
  }
  d.setWaiting(blocked[0]?.why ?? null);
  if (reboot !== undefined) announceHold(d, blocked[0]);
  return { started, blocked };
}

/** What keeps a machine of a reboot rollout from starting now (window, gates, reachability, budget, zone), or null. */
function rebootBlock(d: Draft, name: string, view: MachineView, open: boolean, others: ReadonlySet<string>, ledger: Ledger, zoneLoad: ReadonlyMap<string, number>): WaitingReason | null {
  if (!open && d.spec.strategy.window !== undefined) return { reason: 'OutsideWindow', message: `outside the maintenance window (${describeWindow(d.spec.strategy.window)})` };
  const held = d.input.gates?.rollout ?? null;
  if (held !== null) return held;
  const pods = d.input.gates?.machines.get(name);
  if (pods !== undefined) return pods;
  if (isSilent(view) || !view.connected) return { reason: 'MachineUnreachable', message: `${name} is not connected (liveness ${view.liveness.state})` };
  if (others.has(name)) return { reason: 'BusyElsewhere', message: `${name} is being changed by another rollout or a remediation` };
  if (ledger.full(name)) return { reason: 'BudgetExhausted', message: ledger.describe() };
  const max = d.spec.strategy.maxPerZone;
  if (max !== undefined && view.zone !== null && (zoneLoad.get(view.zone) ?? 0) >= max) return { reason: 'ZoneLimit', message: `zone ${view.zone} already has ${max} machine(s) in progress` };
  return null;
}

/** Waiting reasons that hold a reboot: each new one is recorded once as a RebootHeld event. */
const REBOOT_HOLDS: ReadonlySet<string> = new Set(['OutsideWindow', 'RebootHeld']);

/**
 * Records a RebootHeld event when a reboot rollout starts waiting for a new hold reason
 * (window closed, alerts firing, Prometheus unreachable, blocking pods), on the machine
 * it holds, so Kubernetes Events and notifications show why nothing reboots.
 */
function announceHold(d: Draft, first: Blocked | undefined): void {
  if (first === undefined || !REBOOT_HOLDS.has(first.why.reason)) return;
  const before = d.input.rollout.state.waiting;
  if (before?.reason === first.why.reason && before.message === first.why.message) return;
  d.actions.push({ kind: 'event', type: 'Warning', object: `machine/${first.machine}`, reason: 'RebootHeld', message: `rollout ${d.name}: ${first.why.message}` });
}

/**
 * Rolls back, in candidate order and within the budget, every machine this rollout
 * changed; machines not yet started are skipped. Ends RolledBack, or Failed when a
 * rollback failed. Machines still installing finish first and are then rolled back.
 */
function planRollback(d: Draft): void {
  for (const name of d.state.candidates) {
    if (d.progress(name).phase === 'Waiting') d.setMachine(name, { phase: 'Skipped', reason: 'RolloutRolledBack', message: 'not started: the rollout is rolling back' });
  }
  const others = d.others();
  const own = d.ownUnavailable();
  const ledger = new Ledger(unavailableLimit(d.input), [...own, ...d.unavailableElsewhere()]);
  const blocked: Blocked[] = [];
  let started = 0;
  for (const name of d.state.candidates) {
    const p = d.progress(name);
    const rollable = ['Succeeded', 'Soaking', 'Failed', 'Skipped'].includes(p.phase) || isHeld(d, name);
    if (!rollable || p.reason === 'RollbackFailed' || p.reason === MACHINE_GONE) continue;
    if (p.phase === 'Skipped' && p.changed.length === 0) continue;
    if (p.changed.length === 0) {
      if (p.phase === 'Installing') d.setMachine(name, { phase: 'Failed', step: null, counted: true, reason: 'HeldForSkew', message: p.message });
      d.setMachine(name, { phase: 'RolledBack', reason: 'NothingToRollBack', message: 'this rollout left nothing switched on the machine' });
      continue;
    }
    const view = d.views.get(name);
    if (isSilent(view) || view?.connected !== true) {
      blocked.push({ machine: name, why: { reason: 'MachineUnreachable', message: `${name} is not connected; its rollback waits` } });
      continue;
    }
    if (others.has(name)) {
      blocked.push({ machine: name, why: { reason: 'BusyElsewhere', message: `${name} is being changed by another rollout or a remediation; its rollback waits` } });
      continue;
    }
    // Rolling back a machine that already counts (soaking, failed, silent) adds nothing.
    if (ledger.full(name, own.has(name))) {
      blocked.push({ machine: name, why: { reason: 'BudgetExhausted', message: ledger.describe() } });
      continue;
    }
    continueRollback(d, name);
    ledger.take(name);
    started++;
  }
  d.setWaiting(blocked[0]?.why ?? null);
  const busy = d.state.candidates.some((n) => ['Installing', 'RollingBack'].includes(d.progress(n).phase) && !isHeld(d, n));
  if (!busy && blocked.length === 0 && started === 0) {
    const failed = d.state.candidates.filter((n) => d.progress(n).reason === 'RollbackFailed');
    if (failed.length > 0) d.transition('Failed', 'RollbackFailed', `rolling back failed on ${failed.join(', ')}; see "nkctl describe machine" for each`, null, true);
    else d.transition('RolledBack', 'RolledBack', 'every machine this rollout changed is back at its earlier version', null);
    return;
  }
  pauseIfSilent(d, { started, blocked });
}

/**
 * A silent machine counts against the budget and keeps the rollout waiting; once it has
 * been silent for the timeout while the rollout needs it (in flight, next to start, or
 * holding budget that a start needs), the rollout pauses with the reason rather than
 * exceed the budget or wait without saying why.
 */
function pauseIfSilent(d: Draft, progress: { started: number; blocked: readonly Blocked[] }): void {
  if (d.phase === 'Paused' || TERMINAL_PHASES.has(d.phase)) return;
  const timeout = d.input.options?.silenceTimeoutMs ?? DEFAULT_SILENCE_TIMEOUT_MS;
  const silentLong = (name: string): boolean => {
    const v: MachineView | undefined = d.views.get(name);
    if (!isSilent(v)) return false;
    const since = Math.max(v?.liveness.since ?? d.progress(name).since, d.state.resumedAt ?? -Infinity);
    return d.now - since >= timeout;
  };
  const culprits = new Set<string>();
  for (const [name, p] of d.machines) if (IN_FLIGHT.has(p.phase) && silentLong(name)) culprits.add(name);
  if (progress.started === 0) {
    // Every start the budget blocked is blocked by the same machines: look at them once
    // (once per blocked machine made a step quadratic in the fleet).
    let budgetHolders = false;
    for (const b of progress.blocked) {
      if (b.why.reason === 'MachineUnreachable' && silentLong(b.machine)) culprits.add(b.machine);
      if (b.why.reason === 'BudgetExhausted') budgetHolders = true;
    }
    if (budgetHolders) for (const n of d.ownUnavailable()) if (silentLong(n)) culprits.add(n);
  }
  if (culprits.size === 0) return;
  const names = [...culprits].sort();
  d.transition('Paused', 'MachineSilent', `${names.slice(0, 5).join(', ')} silent for ${Math.round(timeout / 1000)}s or more; a silent machine counts against the availability budget, so the rollout pauses rather than exceed it. When the machine is back (or removed): ${d.command('resume')}`, d.command('resume'), true);
}

/**
 * A machine deleted mid-rollout (`nkctl machine delete --force`) will never answer: its
 * commands went with it. Left in flight it would keep the rollout waiting (then paused,
 * MachineSilent, after every resume) and keep its name held; so it is settled at once,
 * in flight or not, and nothing more is planned for it, not even a rollback.
 */
function settleGone(d: Draft): void {
  for (const name of d.state.candidates) {
    const p = d.progress(name);
    if (d.views.has(name) || p.phase === 'Waiting' || p.phase === 'RolledBack' || p.reason === MACHINE_GONE) continue;
    const phase = p.phase === 'Installing' || p.phase === 'Soaking' ? 'Skipped' : p.phase === 'RollingBack' ? 'Failed' : p.phase;
    d.setMachine(name, { phase, step: null, commandId: null, soakFrom: null, counted: true, reason: MACHINE_GONE, message: `${name} was deleted from the fleet while ${p.phase} here; nothing more is done on it` }, true);
  }
}

/** A rollout that stopped leaves no machine waiting without a reason. */
function settleLeftovers(d: Draft): void {
  for (const name of d.state.candidates) {
    const p = d.progress(name);
    if (p.phase === 'Waiting') d.setMachine(name, { phase: 'Skipped', reason: d.state.reason === 'Aborted' ? 'Aborted' : `Rollout${d.phase}`, message: `not started: the rollout is ${d.phase} (${d.state.reason})` });
    else if (p.phase === 'Soaking' || isHeld(d, name)) d.setMachine(name, { phase: 'Skipped', step: null, soakFrom: null, reason: 'Aborted', message: `partly or wholly installed, but the rollout stopped (${d.state.reason}) before its soak ended` });
  }
}
