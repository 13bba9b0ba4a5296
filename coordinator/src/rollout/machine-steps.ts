/**
 * One machine's way through a rollout: start its install, take its results, judge its
 * soak, roll it back. Called by the planner, which decides *whether* a machine may move;
 * these functions decide *how*.
 */
import { AGENT_PACKAGE } from '../packages/cluster-package-version.ts';
import { commandIdFor, isSilent, type Draft } from './draft.ts';
import { componentOrder, kubeletSkewProblem, sameVersion } from './skew.ts';
import type { InstallResultEvent, MachineView } from './types.ts';
import { TERMINAL_PHASES } from './types.ts';

/** Packages of the spec this machine still needs, in component order. */
export function packagesToChange(d: Draft, view: MachineView): string[] {
  const pending = d.spec.packages.filter((p) => !sameVersion(view.versions[p.package] ?? null, p.version)).map((p) => p.package);
  return componentOrder(pending);
}

function targetOf(d: Draft, pkg: string): string {
  const p = d.spec.packages.find((x) => x.package === pkg);
  if (p === undefined) throw new RangeError(`package ${pkg} is not in rollout "${d.name}"`);
  return p.version;
}

/** Issues the install of `pkg` on a machine (its first package, or the next one). */
export function startInstall(d: Draft, machine: string, pkg: string, first: { previous: Record<string, string | null> } | null): void {
  const p = d.progress(machine);
  const version = targetOf(d, pkg);
  const attempt = first === null ? p.attempt : p.attempt + 1;
  const previous = first === null ? p.previous : first.previous;
  const commandId = commandIdFor(d.name, machine, 'install', pkg, version, attempt);
  d.setMachine(machine, { phase: 'Installing', attempt, previous, step: { action: 'install', package: pkg, version }, commandId, soakFrom: null, reason: 'Installing', message: `installing ${pkg} ${version}` });
  d.actions.push({ kind: 'install', machine, package: pkg, version, commandId, previousVersion: previous[pkg] ?? null });
}

/** The step of a reboot rollout: one per machine, no package. */
export const REBOOT_STEP = { action: 'reboot', package: 'node', version: '' } as const;

/**
 * Starts a machine's reboot. Its id is the same on every replan (commandIdFor), so a
 * coordinator that dies between recording the reboot and saving the state starts the
 * very same reboot again, which the driver and the agent both know by that id.
 */
export function startReboot(d: Draft, machine: string): void {
  const p = d.progress(machine);
  const attempt = p.attempt + 1;
  const commandId = commandIdFor(d.name, machine, 'reboot', REBOOT_STEP.package, REBOOT_STEP.version, attempt);
  d.setMachine(machine, { phase: 'Installing', attempt, step: REBOOT_STEP, commandId, soakFrom: null, reason: 'Rebooting', message: 'cordon, drain, reboot, wait for a new boot, uncordon' });
  d.actions.push({ kind: 'reboot', machine, commandId });
}

/**
 * A reboot's result: the machine came back on a new boot (and the expected kernel) and
 * soaks; or it failed with the driver's reason (RebootFailed: old boot, old kernel, not
 * back in time; DrainStopped: nothing was rebooted). A reboot changes no package, so
 * there is never anything to roll back (`changed` stays empty).
 */
function applyRebootResult(d: Draft, ev: InstallResultEvent): void {
  if (ev.outcome === 'cancelled') {
    d.setMachine(ev.machine, { phase: 'Skipped', step: null, commandId: null, reason: 'Aborted', message: `not rebooted: ${ev.message}` });
    return;
  }
  if (ev.outcome !== 'installed' && ev.outcome !== 'already-installed') {
    d.setMachine(ev.machine, { phase: 'Failed', step: null, commandId: null, failedStep: ev.failedStep ?? 'reboot', reason: ev.reason ?? 'RebootFailed', message: ev.message }, true);
    return;
  }
  if (TERMINAL_PHASES.has(d.phase)) {
    d.setMachine(ev.machine, { phase: 'Skipped', step: null, commandId: null, reason: 'Aborted', message: `rebooted after the rollout stopped (${d.state.reason}): ${ev.message}` });
    return;
  }
  d.setMachine(ev.machine, { phase: 'Soaking', step: null, commandId: null, soakFrom: null, reason: 'Rebooted', message: `${ev.message}; soaking for ${d.spec.strategy.soakSeconds}s` });
}

/** True for a machine whose next install is held back (no command issued yet). */
export function isHeld(d: Draft, machine: string): boolean {
  const p = d.progress(machine);
  return p.phase === 'Installing' && p.commandId === null && p.step !== null;
}

/**
 * Issues a started machine's next package, unless it is kubelet and the control plane
 * no longer allows it (version-skew policy): then the machine holds, still counted as
 * unavailable, and the planner pauses the rollout until the install may go on.
 */
export function continueInstall(d: Draft, machine: string, pkg: string): boolean {
  const version = targetOf(d, pkg);
  const problem = pkg === 'kubelet' ? kubeletSkewProblem(version, d.input.controlPlaneVersion) : null;
  if (problem === null) {
    startInstall(d, machine, pkg, null);
    return true;
  }
  if (!isHeld(d, machine)) {
    d.setMachine(machine, { step: { action: 'install', package: pkg, version }, commandId: null, reason: 'HeldForSkew', message: `${pkg} ${version} held: ${problem}` }, true);
  }
  return false;
}

/**
 * Issues the rollback of the last package this rollout changed on the machine, or
 * finishes the machine RolledBack when nothing is left. A package with no earlier
 * version cannot be put back: it is left as is, with a warning.
 */
export function continueRollback(d: Draft, machine: string): void {
  let p = d.progress(machine);
  for (;;) {
    const pkg = p.changed.at(-1);
    if (pkg === undefined) {
      d.setMachine(machine, { phase: 'RolledBack', step: null, commandId: null, reason: 'RolledBack', message: 'every package this rollout changed is back at its earlier version' });
      return;
    }
    const version = p.previous[pkg] ?? null;
    if (version !== null) break;
    d.event('Warning', 'NoPreviousVersion', `machine ${machine}: ${pkg} had no version before this rollout, so it stays at ${targetOf(d, pkg)}`);
    d.machines.set(machine, { ...p, changed: p.changed.slice(0, -1) });
    p = d.progress(machine);
  }
  const pkg = p.changed.at(-1) ?? '';
  const version = p.previous[pkg] ?? '';
  const commandId = commandIdFor(d.name, machine, 'rollback', pkg, version, p.attempt);
  d.setMachine(machine, { phase: 'RollingBack', step: { action: 'rollback', package: pkg, version }, commandId, soakFrom: null, reason: 'RollingBack', message: `rolling ${pkg} back to ${version}` });
  d.actions.push({ kind: 'rollback', machine, package: pkg, version, commandId });
}

const FAILURE_REASON: Readonly<Record<string, string>> = {
  'rolled-back': 'InstallFailed',
  refused: 'InstallRefused',
  failed: 'InstallFailed',
  'timed-out': 'InstallTimedOut',
};

/**
 * Takes one command result. Results for any command but the one the machine waits on
 * (re-deliveries, results from before a restart) change nothing, so feeding the same
 * results twice is harmless.
 */
export function applyResult(d: Draft, ev: InstallResultEvent): void {
  const p = d.machines.get(ev.machine);
  if (p === undefined || p.step === null || p.commandId !== ev.commandId) return;
  if (p.step.action === 'reboot') {
    if (p.phase === 'Installing') applyRebootResult(d, ev);
    return;
  }
  const { package: pkg, version } = p.step;
  const ok = ev.outcome === 'installed' || ev.outcome === 'already-installed';
  // After failed/timed-out the machine may or may not have switched: a rollback must try.
  const maybeChanged = ev.outcome === 'installed' || ev.outcome === 'failed' || ev.outcome === 'timed-out';

  if (p.phase === 'RollingBack' && p.step.action === 'rollback') {
    // The agent's package.rollback answers rolled-back when it switched back, already-installed when it was back already.
    const back = ok || ev.outcome === 'rolled-back';
    if (!back) {
      d.setMachine(ev.machine, { phase: 'Failed', step: null, commandId: null, counted: true, failedStep: ev.failedStep ?? null, reason: 'RollbackFailed', message: `rolling ${pkg} back to ${version} failed${ev.failedStep === undefined ? '' : ` at ${ev.failedStep}`}: ${ev.message}` }, true);
      return;
    }
    d.machines.set(ev.machine, { ...p, changed: p.changed.filter((x) => x !== pkg) });
    continueRollback(d, ev.machine);
    return;
  }
  if (p.phase !== 'Installing' || p.step.action !== 'install') return;
  if (ev.outcome === 'cancelled') {
    // Never sent: the machine was not touched, and the rollout that stopped says why.
    d.setMachine(ev.machine, { phase: 'Skipped', step: null, commandId: null, reason: 'Aborted', message: `${pkg} ${version} not installed: ${ev.message}` });
    return;
  }

  const changed = maybeChanged && !p.changed.includes(pkg) ? [...p.changed, pkg] : p.changed;
  d.machines.set(ev.machine, { ...p, changed });
  if (!ok) {
    const reason = FAILURE_REASON[ev.outcome] ?? 'InstallFailed';
    const where = ev.failedStep === undefined ? '' : ` at ${ev.failedStep}`;
    d.setMachine(ev.machine, { phase: 'Failed', step: null, commandId: null, failedStep: ev.failedStep ?? null, reason, message: `${pkg} ${version} failed${where}: ${ev.message}` }, true);
    return;
  }
  if (TERMINAL_PHASES.has(d.phase)) {
    d.setMachine(ev.machine, { phase: 'Skipped', step: null, commandId: null, reason: 'Aborted', message: `${pkg} ${version} installed after the rollout stopped (${d.state.reason}); not soaked` });
    return;
  }
  // The rest of the machine's packages follow in component order, unless rolling back.
  const order = componentOrder(d.spec.packages.map((x) => x.package));
  const view = d.views.get(ev.machine);
  const next = d.phase === 'RollingBack' ? undefined : order.slice(order.indexOf(pkg) + 1).find((x) => view === undefined || !sameVersion(view.versions[x] ?? null, targetOf(d, x)));
  if (next !== undefined) {
    continueInstall(d, ev.machine, next);
    return;
  }
  d.setMachine(ev.machine, { phase: 'Soaking', step: null, commandId: null, soakFrom: null, reason: 'Installed', message: `${pkg} ${version} installed; soaking for ${d.spec.strategy.soakSeconds}s` });
}

/**
 * What a soak judges. A rollout of the agent alone has a health of its own: the machine
 * connected and heard from (Ready or NotReady: liveness, not the node's components), and
 * its agent saying the target version. Kubelet, runtime and CNI are not what it changed,
 * and an agent upgrade must be able to reach a node whose kubelet is down.
 * Any other rollout: kubelet, runtime and CNI all healthy.
 */
export function soakHealth(d: Draft, view: MachineView): { healthy: boolean; since: number | null } {
  const agent = d.spec.packages.length > 0 && d.spec.packages.every((p) => p.package === AGENT_PACKAGE);
  if (!agent) return { healthy: view.healthy, since: view.healthySince };
  const heard = view.liveness.state === 'Ready' || view.liveness.state === 'NotReady';
  const healthy = view.connected && heard && sameVersion(view.versions[AGENT_PACKAGE] ?? null, targetOf(d, AGENT_PACKAGE));
  // The unbroken stretch is the soak's own (soakFrom, reset by any silence): no earlier bound.
  return { healthy, since: healthy ? 0 : null };
}

/**
 * Judges a soaking machine: it succeeds once healthy without a break for soakSeconds;
 * it fails when seen unhealthy after being seen healthy, or when never healthy within
 * the soak time. Silence is not health: the unbroken stretch starts again after it.
 */
export function judgeSoak(d: Draft, machine: string): void {
  const p = d.progress(machine);
  if (p.phase !== 'Soaking') return;
  const view = d.views.get(machine);
  const soakMs = d.spec.strategy.soakSeconds * 1000;
  if (isSilent(view) || view === undefined || !view.connected) {
    if (p.soakFrom !== null) d.machines.set(machine, { ...p, soakFrom: null });
    return;
  }
  const health = soakHealth(d, view);
  if (!health.healthy) {
    if (p.soakFrom !== null || d.now - p.since >= soakMs) {
      const why = p.soakFrom !== null ? 'became unhealthy during its soak' : `was not healthy within its ${d.spec.strategy.soakSeconds}s soak`;
      d.setMachine(machine, { phase: 'Failed', soakFrom: null, failedStep: 'soak', reason: 'UnhealthyDuringSoak', message: `${machine} ${why}` }, true);
    }
    return;
  }
  const soakFrom = p.soakFrom ?? d.now;
  const from = Math.max(soakFrom, health.since ?? d.now);
  if (d.now - from >= soakMs) {
    d.setMachine(machine, { phase: 'Succeeded', soakFrom: null, reason: 'Healthy', message: `healthy for ${d.spec.strategy.soakSeconds}s after the install` });
  } else if (p.soakFrom !== soakFrom) {
    d.machines.set(machine, { ...p, soakFrom });
  }
}
