/**
 * `nkctl remediation describe MACHINE`, laid out like `kubectl describe`: the phase and
 * why, each fault with its status, reason and age, where the machine stands on its
 * rule's ladder, the per-machine budget (attempts, cooldown), whether it is cordoned or
 * paused, its history and its recent events. Pure: objects and a clock in, text out.
 */
import { RULE_DEFAULTS, type Event as EventObject, type Remediation as RemediationObject, type RemediationRule as RemediationRuleObject } from '@nodekeeper/api';
import { humanDuration } from './duration.ts';
import { block, eventsSection, faultsTable, timeAndAge, type Line } from './describe-machine.ts';
import { ageSince } from './machines-view.ts';
import { ladderText, seconds } from './remediation-views.ts';
import { renderTable } from './table.ts';

function ladderLines(r: RemediationObject, rule: RemediationRuleObject | undefined): Line[] {
  if (r.rule === null) return [['Rule', '']];
  if (rule === undefined) {
    // The rule was deleted or replaced since: say what is known.
    return [['Rule', `${r.rule} (no longer defined)`], ['Step', r.step === null ? '' : `${r.step + 1}${r.action === null ? '' : `: ${r.action}`}`]];
  }
  const n = rule.spec.ladder.length;
  const step = r.step === null ? '' : `${r.step + 1} of ${n}${r.action === null ? '' : `: ${r.action}`}`;
  return [
    ['Rule', `${r.rule} (fault ${rule.spec.fault}, ${rule.status?.source ?? 'unknown'} rule${rule.spec.dryRun === true ? ', dry run' : ''})`],
    ['Ladder', ladderText(rule, r.step)],
    ['Step', step],
  ];
}

function budgetText(r: RemediationObject, rule: RemediationRuleObject | undefined, now: number): Line[] {
  const max = rule?.spec.maxAttemptsPerMachine ?? (rule === undefined ? null : RULE_DEFAULTS.maxAttemptsPerMachine);
  const window = rule?.spec.attemptWindowSeconds ?? RULE_DEFAULTS.attemptWindowSeconds;
  const attempts = max === null ? `${r.attempts}` : `${r.attempts} of ${max} per ${seconds(window)}`;
  const until = r.cooldownUntil === null ? null : Date.parse(r.cooldownUntil);
  const cooldown = until === null || Number.isNaN(until) || until <= now ? 'none' : `until ${r.cooldownUntil} (${humanDuration(until - now)} left)`;
  return [['Attempts', attempts], ['Cooldown', cooldown]];
}

/** The whole description of one machine's remediation and its events (oldest first). */
export function describeRemediation(r: RemediationObject, rule: RemediationRuleObject | undefined, events: readonly EventObject[], now: number): string {
  const out: string[] = [];
  out.push(block([
    ['Machine', r.machine],
    ['Phase', `${r.phase} since ${timeAndAge(r.since, now)}`],
    ['Reason', r.reason === '' ? '' : `${r.reason}: ${r.message}`],
    ...ladderLines(r, rule),
    ['Command', r.commandId ?? ''],
    ...budgetText(r, rule, now),
    ['Cordoned', r.cordoned ? 'yes: the node is cordoned until a human restores it' : 'no'],
    ['Paused', r.paused ? 'yes: no step starts on this machine (nkctl remediation resume ' + r.machine + ')' : 'no'],
  ], 0));
  out.push(faultsTable('Faults', r.faults, now, 0));
  out.push(
    r.history.length === 0
      ? 'History:  <none>'
      : 'History:\n' + renderTable(
          ['At', 'Rule', 'Step', 'Action', 'Result'],
          r.history.map((h) => [`${h.at} (${ageSince(h.at, now, '?')} ago)`, h.rule, String(h.step + 1), h.action, h.result]),
          { describe: true, indent: 2 },
        ).trimEnd(),
  );
  out.push(eventsSection(events, now));
  return out.map((o) => o.replace(/\n$/, '')).join('\n') + '\n';
}
