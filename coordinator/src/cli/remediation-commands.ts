/**
 * `nkctl remediation list|describe|pause|resume|dry-run`, `get remediationrules` and
 * `delete remediationrule`. The coordinator decides and acts; these commands show why
 * it did (or did not) and let an operator hold it back: cluster-wide, per machine, or
 * by dry run, which records what would have been done and does nothing.
 */
import type { Command } from 'commander';
import { CliErrorCode, usageError } from './cli-errors.ts';
import { describeRemediation } from './describe-remediation.ts';
import { parseOutput } from './output.ts';
import { printObject, type CommandContext } from './command-context.ts';
import type { RemediationFleetStatus, Remediation as RemediationObject } from '@nodekeeper/api';
import { fleetHeader, fleetSummary, phaseCell, renderRemediations, renderRules } from './remediation-views.ts';

/** How many events `remediation describe` shows, newest last. */
const DESCRIBE_EVENTS = 20;

const FLEET_TEXT = {
  pause: 'paused cluster-wide: no new step starts anywhere; commands already sent finish',
  resume: 'resumed cluster-wide',
} as const;

/** One line after a cluster-wide change: what holds remediation back now, if anything. */
function fleetLine(s: RemediationFleetStatus): string {
  const flags = [s.paused ? 'paused' : 'running', s.dryRun ? 'dry run' : '', s.storm.active ? `storm guard active (${s.storm.reason})` : ''];
  return `Remediation: ${flags.filter((f) => f !== '').join(', ')}; ${fleetSummary(s).toLowerCase()}\n`;
}

function machineLine(r: RemediationObject, action: 'pause' | 'resume'): string {
  const done = action === 'pause' ? 'paused: no step starts on it; a command already sent finishes' : 'resumed';
  return `remediation/${r.machine} ${done} (phase ${phaseCell(r)})\n`;
}

/** Register `remediation`, `get remediationrules` and `delete remediationrule`. */
export function addRemediationCommands(program: Command, get: Command, ctx: CommandContext): void {
  const { io } = ctx;
  const remediation = program
    .command('remediation')
    .aliases(['remediations', 'rem'])
    .description('Automatic repair of on-host faults: what runs where and why, pause, resume, dry run.');

  remediation
    .command('list')
    .alias('ls')
    .description('Machines with a remediation or an open fault; a header says when pause, dry run or the storm guard holds remediation back.')
    .option('-o, --output <format>', 'json or yaml (the RemediationList)')
    .action(async (opts: { output?: string }, cmd: Command) => {
      const format = parseOutput(opts.output, ['table', 'json', 'yaml']);
      const { api } = ctx.client(cmd);
      const list = await api.listRemediations();
      if (format !== 'table') {
        printObject(ctx, format, list);
        return;
      }
      // The rules give STEP and ATTEMPTS their bounds (2/3); only needed for the table.
      const rules = list.items.some((r) => r.rule !== null) ? (await api.listRemediationRules()).items : [];
      io.stdout(fleetHeader(list.status, io.now(), io.programName));
      if (list.items.length === 0) io.stderr('No remediations: every machine is Idle without faults.\n');
      else io.stdout(renderRemediations(list.items, rules, io.now()));
    });

  remediation
    .command('describe')
    .argument('<machine>', 'machine name')
    .description('Faults, the ladder position, attempts and cooldown, cordon, the history and recent events of one machine.')
    .option('-o, --output <format>', 'json or yaml (the Remediation)')
    .action(async (machine: string, opts: { output?: string }, cmd: Command) => {
      const format = parseOutput(opts.output, ['table', 'json', 'yaml']);
      const { api } = ctx.client(cmd);
      const r = await api.getRemediation(machine);
      if (format !== 'table') {
        printObject(ctx, format, r);
        return;
      }
      const [rules, events] = await Promise.all([
        r.rule === null ? Promise.resolve([]) : api.listRemediationRules().then((l) => l.items),
        api.machineEvents(machine, DESCRIBE_EVENTS),
      ]);
      io.stdout(describeRemediation(r, rules.find((x) => x.metadata.name === r.rule), events.items, io.now()));
    });

  for (const action of ['pause', 'resume'] as const) {
    remediation
      .command(action)
      .argument('[machine]', 'one machine; without it, cluster-wide')
      .description(action === 'pause'
        ? 'Hold remediation back, cluster-wide or on one machine: no new step starts, a command already sent finishes.'
        : 'Let remediation continue, cluster-wide or on one machine.')
      .option('-o, --output <format>', 'json or yaml')
      .action(async (machine: string | undefined, opts: { output?: string }, cmd: Command) => {
        const format = parseOutput(opts.output, ['table', 'json', 'yaml']);
        const { api } = ctx.client(cmd);
        if (machine === undefined) {
          const s = await api.remediationFleetAction(action);
          if (format !== 'table') printObject(ctx, format, s);
          else io.stdout(`remediation ${FLEET_TEXT[action]}\n${fleetLine(s)}`);
          return;
        }
        const r = await api.remediationMachineAction(machine, action);
        if (format !== 'table') printObject(ctx, format, r);
        else io.stdout(machineLine(r, action));
      });
  }

  remediation
    .command('dry-run')
    .argument('<on|off>', 'on: rules only record what they would do; off: they act')
    .description('Switch dry run: every rule records what it would have done (an event) and executes nothing.')
    .option('-o, --output <format>', 'json or yaml')
    .action(async (value: string, opts: { output?: string }, cmd: Command) => {
      const format = parseOutput(opts.output, ['table', 'json', 'yaml']);
      if (value !== 'on' && value !== 'off') throw usageError(CliErrorCode.usage, `dry-run takes on or off, got "${value}"`);
      const s = await ctx.client(cmd).api.setRemediationDryRun(value === 'on');
      if (format !== 'table') printObject(ctx, format, s);
      else io.stdout(`remediation dry run ${s.dryRun ? 'on: rules record what they would do, nothing is executed' : 'off: rules act'}\n${fleetLine(s)}`);
    });

  get
    .command('remediationrules')
    .aliases(['remediationrule', 'rules', 'rule'])
    .description('Remediation rules: which fault starts which ladder, with budgets; SOURCE says default or applied.')
    .option('-o, --output <format>', 'json or yaml (the objects to edit and apply)')
    .action(async (opts: { output?: string }, cmd: Command) => {
      const format = parseOutput(opts.output, ['table', 'json', 'yaml']);
      const list = await ctx.client(cmd).api.listRemediationRules();
      if (format !== 'table') printObject(ctx, format, list);
      else if (list.items.length === 0) io.stderr('No remediation rules found.\n');
      else io.stdout(renderRules(list.items));
    });

  const del = program.command('delete').description('Delete a resource.');
  del
    .command('remediationrule')
    .aliases(['remediationrules', 'rule', 'rules'])
    .argument('<name>', 'rule name')
    .description("Delete an applied remediation rule: the fault's default rule applies again.")
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const res = await ctx.client(cmd).api.deleteRemediationRule(name);
      io.stdout(`remediationrule/${res.name} deleted\n`);
    });
}
