/**
 * How remediation reads in a terminal: the fleet header (pause, dry run, storm guard),
 * the `remediation list` table, the rules table, and the cells `get machines` borrows.
 * Pure: objects and a clock in, text out.
 */
import { humanDuration } from './duration.ts';
import { ageSince, faultsCell } from './machines-view.ts';
import { RULE_DEFAULTS, type RemediationFleetStatus, type Remediation as RemediationObject, type RemediationRule as RemediationRuleObject } from '@nodekeeper/api';
import { renderTable } from './table.ts';

/** A whole number of seconds as kubectl writes durations: `60s`, `10m`, `24h`. */
export function seconds(s: number): string {
  return s === 0 ? '0s' : humanDuration(s * 1000);
}

/**
 * The lines printed above the list when something holds remediation back: a cluster
 * pause, dry run, the storm guard. Each says why and which command undoes it. Empty
 * when remediation runs normally.
 */
export function fleetHeader(s: RemediationFleetStatus, now: number, program = 'nkctl'): string {
  const lines: string[] = [];
  if (s.paused) lines.push(`Remediation is PAUSED cluster-wide: no new step starts (resume with: ${program} remediation resume)`);
  if (s.dryRun) lines.push(`Dry run is ON: rules record what they would do, nothing is executed (turn off with: ${program} remediation dry-run off)`);
  if (s.storm.active) {
    const why = [s.storm.reason, s.storm.message].filter((x) => x !== '').join(': ');
    lines.push(`Storm guard ACTIVE for ${ageSince(s.storm.since, now, '<unknown>')}: ${why === '' ? 'no reason given' : why}; no new remediation starts until it ends`);
  }
  return lines.map((l) => l + '\n').join('');
}

/** `In flight: 2/5` with the flags, for `describe` and `-o wide`-like summaries. */
export function fleetSummary(s: RemediationFleetStatus): string {
  return `In flight: ${s.inFlight}/${s.maxConcurrent}`;
}

function ruleFor(rules: readonly RemediationRuleObject[], name: string | null): RemediationRuleObject | undefined {
  return name === null ? undefined : rules.find((r) => r.metadata.name === name);
}

/** STEP: 1-based, `2/3` when the rule's ladder is known; `-` when no ladder runs. */
export function stepCell(r: { step: number | null; rule: string | null }, rules: readonly RemediationRuleObject[]): string {
  if (r.step === null) return '-';
  const rule = ruleFor(rules, r.rule);
  return rule === undefined ? String(r.step + 1) : `${r.step + 1}/${rule.spec.ladder.length}`;
}

function attemptsCell(r: RemediationObject, rules: readonly RemediationRuleObject[]): string {
  const rule = ruleFor(rules, r.rule);
  return rule === undefined ? String(r.attempts) : `${r.attempts}/${rule.spec.maxAttemptsPerMachine ?? RULE_DEFAULTS.maxAttemptsPerMachine}`;
}

/** PHASE, with `,Paused` and `,Cordoned` as kubectl appends `,SchedulingDisabled`. */
export function phaseCell(r: { phase: string; paused?: boolean; cordoned: boolean }): string {
  return [r.phase, r.paused === true ? 'Paused' : '', r.cordoned ? 'Cordoned' : ''].filter((x) => x !== '').join(',');
}

/** MACHINE PHASE RULE STEP ACTION FAULTS ATTEMPTS AGE MESSAGE */
export function renderRemediations(items: readonly RemediationObject[], rules: readonly RemediationRuleObject[], now: number): string {
  return renderTable(
    ['MACHINE', 'PHASE', 'RULE', 'STEP', 'ACTION', 'FAULTS', 'ATTEMPTS', 'AGE', 'MESSAGE'],
    items.map((r) => [
      r.machine,
      phaseCell(r),
      r.rule ?? '-',
      stepCell(r, rules),
      r.action ?? '-',
      faultsCell(r.faults),
      attemptsCell(r, rules),
      ageSince(r.since, now, '-'),
      r.reason === '' ? r.message : r.message === '' ? r.reason : `${r.reason}: ${r.message}`,
    ]),
  );
}

/** `RestartService > ReinstallPackage > CordonAndNotify`; the current step in brackets when given. */
export function ladderText(rule: RemediationRuleObject, current: number | null = null): string {
  return rule.spec.ladder.map((s, i) => {
    const text = s.target === undefined || s.target === null ? s.action : `${s.action}(${s.target})`;
    return i === current ? `[${text}]` : text;
  }).join(' > ');
}

/** NAME FAULT FOR LADDER ATTEMPTS COOLDOWN SOURCE DRY-RUN; unset fields show the coordinator's defaults. */
export function renderRules(items: readonly RemediationRuleObject[]): string {
  return renderTable(
    ['NAME', 'FAULT', 'FOR', 'LADDER', 'ATTEMPTS', 'COOLDOWN', 'SOURCE', 'DRY-RUN'],
    items.map((r) => {
      const s = r.spec;
      const max = s.maxAttemptsPerMachine ?? RULE_DEFAULTS.maxAttemptsPerMachine;
      const window = s.attemptWindowSeconds ?? RULE_DEFAULTS.attemptWindowSeconds;
      return [
        r.metadata.name,
        s.fault,
        seconds(s.forSeconds ?? RULE_DEFAULTS.forSeconds),
        ladderText(r),
        `${max}/${seconds(window)}`,
        seconds(s.cooldownSeconds ?? RULE_DEFAULTS.cooldownSeconds),
        r.status?.source ?? '-',
        String(s.dryRun ?? RULE_DEFAULTS.dryRun),
      ];
    }),
  );
}
