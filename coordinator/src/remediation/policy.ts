/**
 * The remediation policy: a pure function of (persisted state, fleet view, rules,
 * budget, settings, pause, results, now) -> (actions, next state). No I/O, no clock.
 * The controller persists `state` and records the commands in one transaction, then
 * sends them; a restarted coordinator calls it with the persisted state and goes on.
 *
 * Architecture invariants kept here: 1 (one availability budget shared with rollouts:
 * remediation never starts when it would take the fleet past it) and 5 (storm guard).
 * Order of a step: command results, the storm guard, running ladders (succeed, wait,
 * escalate), NeedsHuman machines restored, then new ladders within every budget.
 */
import { Ledger } from '../budget/budget.ts';
import { FAULT_TYPES, type Fault } from './faults.ts';
import { PolicyDraft, remediationCommandId } from './draft.ts';
import { silent } from './view-index.ts';
import type { RemediationRule } from './rules.ts';
import { resultDeadlineMs, type AgentCommandKind, type RemediationInput, type RemediationMachineView, type RemediationResult, type RemediationSettings } from './types.ts';

/** Plans one step. Same input, same output. */
export function planRemediation(input: RemediationInput): RemediationResult {
  checkSettings(input.settings);
  const d = new PolicyDraft(input);
  applyResults(d);
  judgeStorm(d);
  // The machines busy before the loop; each call changes only its own machine.
  for (const name of d.busy()) {
    const phase = d.get(name).phase;
    if (phase === 'Running') advance(d, name);
    else if (phase === 'NeedsHuman') releaseIfRestored(d, name);
  }
  startNew(d);
  return d.finish();
}

/** The storm limit on unhealthy machines: max(absolute, floor(percent% of the fleet)). */
export function maxUnhealthyFor(fleetSize: number, s: RemediationSettings['maxUnhealthy']): number {
  return Math.max(s.absolute, Math.floor((s.percent * fleetSize) / 100));
}

function checkSettings(s: RemediationSettings): void {
  if (!(Number.isInteger(s.maxConcurrent) && s.maxConcurrent >= 0)) throw new RangeError(`maxConcurrent must be an integer >= 0, got ${s.maxConcurrent}`);
  if (!(s.silentShareThreshold > 0 && s.silentShareThreshold <= 1)) throw new RangeError(`silentShareThreshold must be in (0, 1], got ${s.silentShareThreshold}`);
  if (!(s.maxUnhealthy.absolute >= 0 && s.maxUnhealthy.percent >= 0 && s.maxUnhealthy.percent <= 100)) throw new RangeError('maxUnhealthy: absolute >= 0 and percent in [0, 100]');
  if (!(s.stormCooldownSeconds >= 0)) throw new RangeError(`stormCooldownSeconds must be >= 0, got ${s.stormCooldownSeconds}`);
}

function applyResults(d: PolicyDraft): void {
  for (const r of d.input.results) {
    const m = d.find(r.machine);
    // Stale or duplicate, unless it answers the machine's last command: a fault can clear
    // (and the ladder end) before the command that cleared it reports, and the history
    // still records what that command did.
    if (m === undefined || m.commandId !== r.commandId || m.commandOutcome !== null) continue;
    d.put(r.machine, { ...m, commandOutcome: r.outcome, commandDoneAt: d.now });
    const action = d.rules.get(m.rule ?? '')?.ladder[m.step]?.action ?? 'none';
    d.history(r.machine, m.rule ?? '', m.step, action, `command ${r.outcome}: ${r.message}`);
    d.event(r.outcome === 'succeeded' ? 'Normal' : 'Warning', `machine/${r.machine}`, r.outcome === 'succeeded' ? 'StepCommandSucceeded' : 'StepCommandFailed', `${action} ${r.outcome}: ${r.message}`, m.rule, m.step);
  }
}

/**
 * Storm guard (invariant 5): too many unhealthy machines at once, or too many silent
 * agents at once, is a common cause (a bad package, a partition, the coordinator
 * itself), not node faults: nothing new starts until it has been calm for the cooldown.
 */
function judgeStorm(d: PolicyDraft): void {
  const s = d.input.settings;
  const n = d.views.size;
  // Silent agents and unhealthy machines (view-index.ts), a rollout's excepted: they are expected to blink.
  // Silent counts the connections already lost too: they go first in a partition, a
  // liveness grace (40 s) before the machines turn Unknown, and repairs must not go out then.
  const quiet = countOutside(d.index.silent, d.others);
  const unhealthy = countOutside(d.index.faulty, d.others);
  const limit = maxUnhealthyFor(n, s.maxUnhealthy);
  let why: { reason: string; message: string } | null = null;
  if (n > 0 && quiet >= s.minSilentForPartition && quiet / n >= s.silentShareThreshold) {
    why = { reason: 'PartitionSuspected', message: `${quiet} of ${n} agents silent or disconnected at once (threshold ${Math.round(s.silentShareThreshold * 100)}%): a partition or a coordinator-side fault, not node faults` };
  } else if (unhealthy > limit) {
    why = { reason: 'TooManyUnhealthy', message: `${unhealthy} of ${n} machines unhealthy, more than maxUnhealthy ${limit}: a common cause is likely` };
  }
  const st = d.storm;
  if (why !== null) {
    if (!st.active || st.reason !== why.reason) {
      d.actions.push({ kind: 'setStorm', active: true, ...why });
      d.event('Warning', 'remediation', 'StormGuard', `no new remediation: ${why.message}`);
    }
    d.storm = { active: true, ...why, since: st.active ? st.since : d.now, calmSince: null };
    return;
  }
  if (!st.active) return;
  const calmSince = st.calmSince ?? d.now;
  if (d.now - calmSince >= s.stormCooldownSeconds * 1000) {
    d.storm = { active: false, reason: 'Calm', message: `calm for ${s.stormCooldownSeconds}s after ${st.reason}`, since: d.now, calmSince: null };
    d.actions.push({ kind: 'setStorm', active: false, reason: 'StormOver', message: d.storm.message });
    d.event('Normal', 'remediation', 'StormOver', `remediation resumes: ${d.storm.message}`);
  } else {
    d.storm = { ...st, calmSince };
  }
}

function countOutside(names: Iterable<string>, others: ReadonlySet<string>): number {
  let n = 0;
  for (const name of names) if (!others.has(name)) n++;
  return n;
}

function faultOf(v: RemediationMachineView | undefined, rule: RemediationRule): Fault | undefined {
  return v?.faults.find((f) => f.type === rule.fault);
}

/**
 * A running ladder: success when the fault is Clear; escalate on failure, on no result by
 * the command's deadline, or on no recovery within successWithinSeconds of the command's
 * success. A step whose command is still out is not judged: it may yet succeed.
 */
function advance(d: PolicyDraft, name: string): void {
  const m = d.get(name);
  const rule = d.rules.get(m.rule ?? '');
  const view = d.views.get(name);
  if (rule === undefined || view === undefined) {
    d.set(name, { phase: 'Idle', reason: 'RemediationAbandoned', message: rule === undefined ? `rule "${m.rule}" no longer exists` : 'machine left the fleet view' }, true);
    return;
  }
  const fault = faultOf(view, rule);
  if (fault === undefined || fault.status === 'Clear') return cleared(d, name, rule);
  if (m.stepStartedAt === null) {
    issue(d, name, rule, view); // a held step: try again
    return;
  }
  const step = rule.ladder[m.step];
  if (step === undefined) return escalate(d, name, rule, view, 'step missing from the rule (it was edited)');
  if (m.commandOutcome === 'failed' || m.commandOutcome === 'timed-out') return escalate(d, name, rule, view, `${step.action} ${m.commandOutcome}`);
  if (m.commandId !== null && m.commandOutcome === null) {
    const command = COMMAND_OF[step.action];
    if (command === undefined || d.now - m.stepStartedAt < resultDeadlineMs(command, step.timeoutSeconds)) return; // still out: wait for it
    const message = `${step.action} gave no result by its deadline (never delivered: the agent was unreachable)`;
    d.actions.push({ kind: 'cancelCommand', machine: name, commandId: m.commandId, message });
    return escalate(d, name, rule, view, message);
  }
  // While the facts say healthy (Clearing), let the hysteresis finish before judging.
  const from = m.commandDoneAt ?? m.stepStartedAt;
  if (d.now - from >= step.successWithinSeconds * 1000 && fault.status !== 'Clearing') return escalate(d, name, rule, view, `${rule.fault} still ${fault.status} ${step.successWithinSeconds}s after ${step.action}`);
}

/**
 * The fault cleared: the ladder ends, credited to the last step that ran. A step still
 * held (not issued) never ran, and a fault that clears before any step ran cleared on
 * its own.
 */
function cleared(d: PolicyDraft, name: string, rule: RemediationRule): void {
  const m = d.get(name);
  const ran = m.stepStartedAt !== null ? m.step : m.step - 1;
  const action = rule.ladder[ran]?.action;
  const cooldownUntil = d.now + rule.cooldownSeconds * 1000;
  if (ran < 0 || action === undefined) {
    d.history(name, rule.name, m.step, 'none', 'fault cleared before any step ran');
    d.set(name, { phase: 'Idle', reason: 'ClearedOnItsOwn', message: `${rule.fault} cleared before any step of rule ${rule.name} ran`, cooldownUntil });
    return;
  }
  d.history(name, rule.name, ran, action, 'fault cleared');
  const held = ran === m.step ? '' : ` (step ${m.step + 1}, ${rule.ladder[m.step]?.action}, was held and never ran)`;
  d.set(name, { phase: 'Idle', reason: 'Remediated', message: `${rule.fault} cleared after step ${ran + 1} (${action}) of rule ${rule.name}${held}`, cooldownUntil });
}

/** Whether a step may be issued now; null when it may, else why not. */
function holdReason(d: PolicyDraft, name: string, view: RemediationMachineView, needsAgent: boolean): { reason: string; message: string } | null {
  if (d.storm.active) return { reason: 'HeldByStormGuard', message: `storm guard active (${d.storm.reason}): the next step waits` };
  if (d.input.pause.cluster) return { reason: 'Paused', message: 'remediation is paused cluster-wide' };
  if (d.paused.has(name)) return { reason: 'Paused', message: `remediation is paused on ${name}` };
  if (d.others.has(name)) return { reason: 'HeldByRollout', message: `${name} is held by a rollout` };
  if (needsAgent && (!view.connected || silent(view))) return { reason: 'AgentUnreachable', message: `${name} is not connected (liveness ${view.liveness.state})` };
  return null;
}

function escalate(d: PolicyDraft, name: string, rule: RemediationRule, view: RemediationMachineView, why: string): void {
  const m = d.get(name);
  d.history(name, rule.name, m.step, rule.ladder[m.step]?.action ?? 'none', `failed: ${why}`);
  const next = m.step + 1;
  if (next >= rule.ladder.length) {
    d.set(name, { phase: 'NeedsHuman', reason: 'LadderExhausted', message: `every step of rule ${rule.name} failed; ${story(d, name)}`, commandId: null, stepStartedAt: null, commandOutcome: null }, true);
    return;
  }
  d.set(name, { phase: 'Running', step: next, reason: 'Escalated', message: `step ${m.step + 1} failed (${why}); escalating to ${rule.ladder[next]?.action}`, commandId: null, stepStartedAt: null, commandOutcome: null, commandDoneAt: null }, true);
  issue(d, name, rule, view);
}

/** The whole story for a human: each step and its result. */
function story(d: PolicyDraft, name: string): string {
  return d.get(name).history.map((h) => `${new Date(h.at).toISOString()} ${h.rule} step ${h.step + 1} ${h.action}: ${h.result}`).join('; ');
}

const COMMAND_OF: Readonly<Record<string, AgentCommandKind>> = { RestartService: 'service.restart', RestoreConfig: 'config.restore', ReinstallPackage: 'package.install', Reboot: 'node.reboot' };

/** Issues the machine's current step (held while the guard, a pause, a rollout or silence says so). */
function issue(d: PolicyDraft, name: string, rule: RemediationRule, view: RemediationMachineView): void {
  const m = d.get(name);
  const step = rule.ladder[m.step];
  if (step === undefined) throw new RangeError(`rule ${rule.name} has no step ${m.step}`);
  if (d.input.dryRun || rule.dryRun) {
    // Switched to dry run mid-ladder: the next step happens on paper only, the ladder ends.
    d.actions.push({ kind: 'wouldRemediate', machine: name, rule: rule.name, step: m.step, action: step.action, target: step.target, message: `dry run: would ${step.action} ${step.target ?? ''}`.trim() });
    d.set(name, { phase: 'Idle', reason: 'DryRun', message: `dry run: stopped before step ${m.step + 1} (${step.action})` });
    return;
  }
  const hold = holdReason(d, name, view, step.action !== 'CordonAndNotify');
  if (hold !== null) return d.wait(name, hold.reason, hold.message, rule.name);
  if (step.action === 'CordonAndNotify') {
    d.history(name, rule.name, m.step, step.action, 'cordoned; a human is needed');
    const message = `rule ${rule.name}: ${rule.fault} not repaired; cordoned. ${story(d, name)}`;
    d.actions.push({ kind: 'cordon', machine: name, rule: rule.name, message });
    d.set(name, { phase: 'NeedsHuman', reason: 'CordonedNeedsHuman', message, cordoned: true, commandId: null, stepStartedAt: d.now, commandOutcome: null }, true);
    return;
  }
  const params: Record<string, string> = {};
  if (step.action === 'RestartService' && step.target !== null) params.unit = step.target;
  if (step.action === 'RestoreConfig' && step.target !== null) params.package = step.target;
  if (step.action === 'ReinstallPackage' && step.target !== null) {
    const version = view.desired[step.target];
    if (version === undefined) {
      d.set(name, { stepStartedAt: d.now, reason: 'StepSkipped', message: `no desired version of ${step.target} is known` });
      return escalate(d, name, rule, view, `no desired version of ${step.target}`);
    }
    Object.assign(params, { package: step.target, version });
  }
  const commandId = remediationCommandId(name, rule.name, m.ladders, m.step);
  const command = COMMAND_OF[step.action];
  if (command === undefined) throw new RangeError(`no command for ${step.action}`);
  d.actions.push({ kind: 'command', machine: name, commandId, command, params, timeoutSeconds: step.timeoutSeconds, rule: rule.name, step: m.step });
  d.set(name, { phase: 'Running', reason: 'StepStarted', message: `step ${m.step + 1}/${rule.ladder.length} of rule ${rule.name}: ${step.action}${step.target === null ? '' : ` ${step.target}`} for ${rule.fault}`, commandId, stepStartedAt: d.now, commandOutcome: null, commandDoneAt: null });
}

/** A NeedsHuman machine whose fault has cleared (someone fixed it) goes back to Idle. */
function releaseIfRestored(d: PolicyDraft, name: string): void {
  const m = d.get(name);
  const rule = d.rules.get(m.rule ?? '');
  const view = d.views.get(name);
  if (view === undefined) return;
  const fault = rule === undefined ? undefined : faultOf(view, rule);
  if (fault !== undefined && fault.status !== 'Clear') return;
  d.set(name, { phase: 'Idle', reason: 'Restored', message: `${rule?.fault ?? 'the fault'} is clear again${m.cordoned ? '; uncordon is left to the operator' : ''}`, cordoned: false, cooldownUntil: d.now + (rule?.cooldownSeconds ?? 0) * 1000 });
}

/** The fault and rule that would start a ladder on this machine now, if any. */
function due(d: PolicyDraft, view: RemediationMachineView): { fault: Fault; rule: RemediationRule } | null {
  for (const type of FAULT_TYPES) {
    const fault = view.faults.find((f) => f.type === type);
    const rule = d.input.rules.find((r) => r.fault === type);
    if (fault === undefined || rule === undefined || fault.status !== 'Active') continue;
    if (d.now - fault.since >= rule.forSeconds * 1000) return { fault, rule };
  }
  return null;
}

/** New ladders, oldest fault first, within the storm guard, pauses and every budget. */
function startNew(d: PolicyDraft): void {
  if (d.storm.active || d.input.pause.cluster) return; // the storm/pause itself is the recorded reason
  const candidates: { view: RemediationMachineView; fault: Fault; rule: RemediationRule }[] = [];
  for (const view of d.index.withActive) { // nothing is due on a machine without an Active fault
    if (d.get(view.name).phase !== 'Idle') continue;
    const hit = due(d, view);
    if (hit !== null) candidates.push({ view, ...hit });
  }
  if (candidates.length === 0) return;
  candidates.sort((a, b) => a.fault.since - b.fault.since || (a.view.name < b.view.name ? -1 : a.view.name > b.view.name ? 1 : 0));
  const ledger = new Ledger(d.input.budget.maxUnavailable, [...d.ours(), ...d.others, ...(d.input.budget.countedNow ?? [])]);
  let inFlight = d.inFlight();
  for (const { view, fault, rule } of candidates) {
    const name = view.name;
    const m = d.get(name);
    const first = rule.ladder[0];
    if (first === undefined) continue;
    const hold = holdReason(d, name, view, first.action !== 'CordonAndNotify');
    if (hold !== null) {
      d.wait(name, hold.reason, hold.message, rule.name);
      continue;
    }
    if (d.now < m.cooldownUntil) {
      d.wait(name, 'CoolingDown', `${rule.fault} is back; cooling down until ${new Date(m.cooldownUntil).toISOString()}`, rule.name);
      continue;
    }
    const attempts = m.attempts.filter((t) => d.now - t < rule.attemptWindowSeconds * 1000);
    if (attempts.length >= rule.maxAttemptsPerMachine) {
      d.set(name, { phase: 'NeedsHuman', rule: rule.name, reason: 'AttemptsExhausted', message: `${rule.fault} came back after ${attempts.length} ladder(s) of rule ${rule.name} within ${rule.attemptWindowSeconds}s; ${story(d, name)}`, attempts }, true);
      continue;
    }
    if (d.input.dryRun || rule.dryRun) {
      const key = `${rule.name}@${fault.since}`;
      if (m.dryRunNoted === key) continue;
      d.put(name, { ...m, dryRunNoted: key });
      d.actions.push({ kind: 'wouldRemediate', machine: name, rule: rule.name, step: 0, action: first.action, target: first.target, message: `dry run: ${rule.fault} (${fault.reason}) would start rule ${rule.name} with ${first.action}` });
      d.event('Normal', `machine/${name}`, 'WouldRemediate', `dry run: ${rule.fault} (${fault.reason}: ${fault.message}) would start rule ${rule.name} with ${first.action}`, rule.name, 0);
      continue;
    }
    if (inFlight >= d.input.settings.maxConcurrent) {
      d.wait(name, 'ConcurrencyLimit', `${inFlight} remediation(s) in flight, the fleet cap is ${d.input.settings.maxConcurrent}`, rule.name);
      continue;
    }
    if (ledger.full(name)) {
      d.wait(name, 'BudgetExhausted', `${ledger.size} machine(s) unavailable (remediations and rollouts together) of at most ${ledger.limit}`, rule.name);
      continue;
    }
    d.put(name, { ...m, rule: rule.name, step: 0, ladders: m.ladders + 1, attempts: [...attempts, d.now], commandId: null, stepStartedAt: null, commandOutcome: null, commandDoneAt: null });
    d.history(name, rule.name, 0, 'none', `ladder started: ${rule.fault} (${fault.reason}: ${fault.message})`);
    ledger.take(name);
    inFlight++;
    issue(d, name, rule, view);
  }
}
