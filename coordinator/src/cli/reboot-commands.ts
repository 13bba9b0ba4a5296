/**
 * `nkctl reboot create NAME ...`: a reboot rollout. It is a Rollout like any other, so it
 * is followed, paused, resumed and aborted with `nkctl rollout status|describe|pause|
 * resume|abort NAME` (one object, one set of verbs).
 */
import type { Command } from 'commander';
import { parseOutput } from './output.ts';
import { createRollout } from './package-commands.ts';
import { printObject, type CommandContext } from './command-context.ts';
import { rebootFromFlags, REBOOT_FLAG_DEFAULTS, type RebootFlags } from './reboot-spec.ts';

export function addRebootCommands(program: Command, ctx: CommandContext): void {
  const { io } = ctx;
  const reboot = program.command('reboot').description('Reboot machines one at a time (cordon, drain, reboot, new boot, uncordon); follow with "nkctl rollout status NAME".');
  reboot
    .command('create')
    .argument('<name>', 'rollout name')
    .description('Create a reboot rollout of the selected machines.')
    .option('--selector <k=v,...>', 'only machines with these labels')
    .option('--names <n1,n2,...>', 'only these machines')
    .option('--only-required', 'only machines whose agent reports that a reboot is required')
    .option('--canary <n|p%>', 'machines rebooted first, alone', REBOOT_FLAG_DEFAULTS.canary)
    .option('--soak <duration>', 'how long each machine must stay healthy after its reboot', REBOOT_FLAG_DEFAULTS.soak)
    .option('--batches <p1,p2,...>', 'cumulative percents of the machines per batch, ending at 100')
    .option('--batch-size <n>', 'fixed-size batches instead of --batches')
    .option('--max-unavailable <n|p%>', 'machines rebooting at once (the cluster budget caps it)', REBOOT_FLAG_DEFAULTS.maxUnavailable)
    .option('--max-failures <n|p%>', 'failed drains before the rollout pauses (a failed reboot always halts it)', REBOOT_FLAG_DEFAULTS.maxFailures)
    .option('--max-per-zone <n>', 'machines rebooting at once in one zone')
    .option('--window <[days ]HH:MM-HH:MM>', "when reboots may start, e.g. 'Mon-Fri 02:00-05:00'")
    .option('--time-zone <iana>', 'time zone of --window, e.g. Europe/Berlin (default UTC)')
    .option('--blocking-pods <selector>', 'pods matching this label selector on a Node hold its reboot')
    .option('--prometheus <url>', 'firing alerts in this Prometheus hold every reboot')
    .option('--alert-filter <regex>', 'alerts whose alertname matches are ignored')
    .option('--drain-timeout <duration>', 'how long the drain before a reboot may take (default 10m)')
    .option('--grace-period <duration>', "pods' termination grace period during the drain")
    .option('--force', 'drain pods no controller manages')
    .option('--delete-emptydir-data', 'drain pods with emptyDir volumes')
    .option('--reboot-timeout <duration>', 'how long a machine may take to come back on a new boot (default 15m)')
    .option('--dry-run', 'print the Rollout object instead of creating it')
    .option('-o, --output <format>', 'json or yaml')
    .action(async (name: string, opts: RebootFlags & { dryRun?: boolean; output?: string }, cmd: Command) => {
      const format = parseOutput(opts.output, ['table', 'json', 'yaml']);
      const object = rebootFromFlags(name, opts);
      if (opts.dryRun === true) {
        printObject(ctx, format === 'table' ? 'yaml' : format, object);
        return;
      }
      const created = await createRollout(ctx.client(cmd).api, { kind: 'Rollout', name, object: object as unknown as Record<string, unknown> });
      if (format !== 'table') printObject(ctx, format, created);
      else io.stdout(`rollout/${created.metadata.name} created (reboot)\nFollow it with: ${io.programName} rollout status ${created.metadata.name} -w\n`);
    });
}
