/**
 * `nkctl rollout create|list|describe|status|pause|resume|abort|rollback`. A stopped
 * rollout always says why and which command continues it; `status` exits 6 when the
 * rollout stopped short of Completed, so a CI job can gate on it.
 */
import type { Command } from 'commander';
import { AppError } from '@nodekeeper/common';
import { ApiClient } from './api-client.ts';
import { CliErrorCode } from './cli-errors.ts';
import { describeRollout } from './describe-rollout.ts';
import { parseDuration } from './duration.ts';
import { parseOutput } from './output.ts';
import { createRollout, loadDocuments, printObject } from './package-commands.ts';
import type { CommandContext } from './program.ts';
import { ROLLOUT_ACTIONS, TERMINAL_PHASES, type RolloutAction, type RolloutObject } from './rollout-objects.ts';
import { rolloutFromFlags, ROLLOUT_DEFAULTS, type RolloutFlags } from './rollout-spec.ts';
import { renderRollouts, renderStatus, renderStop } from './rollout-views.ts';
import { isStopped, watchRollout } from './rollout-watch.ts';

/** How many events `rollout describe` shows, newest last. */
const DESCRIBE_EVENTS = 20;

const collect = (value: string, previous: string[]): string[] => [...previous, value];

const ACTION_TEXT: Record<RolloutAction, { done: string; help: string }> = {
  pause: { done: 'paused', help: 'Pause a rollout: machines mid-install finish, no new ones start.' },
  resume: { done: 'resumed', help: 'Resume a paused rollout where it stopped.' },
  abort: { done: 'aborted', help: 'Stop a rollout for good, leaving every machine at the version it has now.' },
  rollback: { done: 'rolling back', help: 'Return every machine the rollout changed to its previous version.' },
};

/** Exit 6 (NK_CLI_ROLLOUT_STOPPED) unless the rollout completed. */
function stoppedError(r: RolloutObject): AppError {
  const phase = r.status?.phase ?? 'Pending';
  const reason = r.status?.reason ?? '';
  return new AppError(CliErrorCode.rolloutStopped, `rollout/${r.metadata.name} is ${phase}${reason === '' ? '' : ` (${reason})`}, not Completed`, { context: { phase } });
}

/** Register `rollout` and its subcommands. */
export function addRolloutCommands(program: Command, ctx: CommandContext): void {
  const { io } = ctx;
  const rollout = program.command('rollout').description('Staged, health-gated upgrades of packages across machines.');

  rollout
    .command('create')
    .argument('[name]', 'rollout name (flags form)')
    .description('Create a rollout from -f FILE, or from flags: NAME --package kubelet=1.31.3 [...].')
    .option('-f, --filename <file>', 'Rollout objects (YAML or JSON, --- between documents), - for stdin')
    .option('--package <name=version>', 'package and target version, repeatable', collect, [])
    .option('--selector <k=v,...>', 'only machines with these labels')
    .option('--names <n1,n2,...>', 'only these machines')
    .option('--canary <n|p%>', 'machines upgraded first, alone', ROLLOUT_DEFAULTS.canary)
    .option('--soak <duration>', "how long each machine must stay healthy after its install", ROLLOUT_DEFAULTS.soak)
    .option('--batches <p1,p2,...>', 'cumulative percents of the machines per batch, ending at 100')
    .option('--batch-size <n>', 'fixed-size batches instead of --batches')
    .option('--max-unavailable <n|p%>', 'machines that may be upgrading or unhealthy at once', ROLLOUT_DEFAULTS.maxUnavailable)
    .option('--max-failures <n|p%>', 'failed machines before --on-failure acts', ROLLOUT_DEFAULTS.maxFailures)
    .option('--on-failure <pause|rollback>', 'what the rollout does when --max-failures is reached', ROLLOUT_DEFAULTS.onFailure)
    .option('--max-per-zone <n>', 'machines upgrading at once in one zone')
    .option('--window <[days ]HH:MM-HH:MM>', "when new installs may start, e.g. 'Sat,Sun 22:00-04:00'")
    .option('--time-zone <iana>', 'time zone of --window, e.g. Europe/Berlin (default UTC)')
    .option('--allow-downgrade', 'allow a target version older than the current one')
    .option('--drain-force', 'drains before disruptive installs also evict pods no controller manages')
    .option('--drain-delete-emptydir-data', 'drains also evict pods with emptyDir volumes (their data is deleted)')
    .option('--drain-grace-period <seconds>', "seconds each evicted pod gets to terminate (default: the pod's own)")
    .option('--drain-timeout <duration>', "how long each machine's drain may take (default: the coordinator's --drain-timeout)")
    .option('--dry-run', 'print the Rollout object instead of creating it')
    .option('-o, --output <format>', 'json or yaml')
    .action(async (name: string | undefined, opts: RolloutFlags & { filename?: string; dryRun?: boolean; output?: string }, cmd: Command) => {
      const format = parseOutput(opts.output, ['table', 'json', 'yaml']);
      let objects: { name: string; object: unknown }[];
      if (opts.filename !== undefined) {
        // Flags that shape a spec make no sense next to a file; say so instead of ignoring them.
        const shaping = ['package', 'selector', 'names', 'batches', 'batchSize', 'maxPerZone', 'allowDowngrade', 'drainForce', 'drainDeleteEmptydirData', 'drainGracePeriod', 'drainTimeout', 'window', 'timeZone'].filter((k) => {
          const v = (opts as unknown as Record<string, unknown>)[k];
          return Array.isArray(v) ? v.length > 0 : v !== undefined;
        });
        const defaulted = ['canary', 'soak', 'maxUnavailable', 'maxFailures', 'onFailure'].filter((k) => cmd.getOptionValueSource(k) === 'cli');
        if (name !== undefined || shaping.length + defaulted.length > 0) {
          throw new AppError(CliErrorCode.usage, '-f cannot be combined with a NAME or rollout flags; put them in the file');
        }
        objects = (await loadDocuments(ctx, opts.filename, ['Rollout'])).map((d) => ({ name: d.name, object: d.object }));
      } else {
        if (name === undefined) throw new AppError(CliErrorCode.usage, 'give a rollout NAME with --package NAME=VERSION, or -f FILE');
        objects = [{ name, object: rolloutFromFlags(name, opts) }];
      }
      if (opts.dryRun === true) {
        for (const o of objects) printObject(ctx, format === 'table' ? 'yaml' : format, o.object);
        return;
      }
      const { api } = ctx.client(cmd);
      for (const o of objects) {
        const created = await createRollout(api, { kind: 'Rollout', name: o.name, object: o.object as Record<string, unknown> });
        if (format !== 'table') printObject(ctx, format, created);
        else io.stdout(`rollout/${created.metadata.name} created\nFollow it with: ${io.programName} rollout status ${created.metadata.name} -w\n`);
      }
    });

  rollout
    .command('list')
    .alias('ls')
    .description('List rollouts with their phase and progress.')
    .option('-o, --output <format>', 'json or yaml')
    .action(async (opts: { output?: string }, cmd: Command) => {
      const format = parseOutput(opts.output, ['table', 'json', 'yaml']);
      const list = await ctx.client(cmd).api.listRollouts();
      if (format !== 'table') printObject(ctx, format, list);
      else if (list.items.length === 0) io.stderr('No rollouts found.\n');
      else io.stdout(renderRollouts(list.items, io.now()));
    });

  rollout
    .command('describe')
    .argument('<name>', 'rollout name')
    .description('Spec, strategy, status with reason and next command, every machine, recent events.')
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const { api } = ctx.client(cmd);
      const r = await api.getRollout(name);
      const events = await api.rolloutEvents(name, DESCRIBE_EVENTS);
      io.stdout(describeRollout(r, events.items, io.now()));
    });

  rollout
    .command('status')
    .argument('<name>', 'rollout name')
    .description('Phase, batch, progress and per-machine phases; -w follows it until it stops. Exit 6 if it stopped short of Completed.')
    .option('-w, --watch', 'follow (server-side watch) until Completed, RolledBack, Failed or Paused')
    .option('--interval <duration>', 'poll interval with -w, for a coordinator without server-side watch', '1s')
    .option('-o, --output <format>', 'json or yaml (the last state)')
    .action(async (name: string, opts: { watch?: boolean; interval: string; output?: string }, cmd: Command) => {
      const format = parseOutput(opts.output, ['table', 'json', 'yaml']);
      const intervalMs = parseDuration(opts.interval, '--interval');
      if (intervalMs < 10) throw new AppError(CliErrorCode.badDuration, `invalid --interval "${opts.interval}": must be at least 10ms`);
      const { api } = ctx.client(cmd);
      const quiet = format !== 'table';
      const r: RolloutObject = opts.watch !== true
        ? await api.getRollout(name)
        : await watchRollout({
          fetch: () => api.getRollout(name),
          list: () => api.listRollouts(name),
          watch: (rv, onEvent) => api.watch(ApiClient.watchPath(`/v1/rollouts?name=${encodeURIComponent(name)}`, rv), onEvent),
          ...(io.stdoutSize === undefined ? {} : { size: io.stdoutSize }),
          sleep: io.sleep,
          // Machine-readable: follow quietly, print the last state once.
          write: quiet ? () => {} : io.stdout,
          warn: io.stderr,
          tty: io.stdoutIsTty && !quiet,
          now: io.now,
          intervalMs,
        });
      if (quiet) printObject(ctx, format, r);
      else if (opts.watch !== true) io.stdout(renderStatus(r, io.now()));
      const phase = r.status?.phase ?? 'Pending';
      if (format === 'table' && (isStopped(r) || TERMINAL_PHASES.has(phase))) io.stdout(renderStop(r));
      // Still moving without -w is not a failure; stopped short of Completed is.
      if (isStopped(r) && phase !== 'Completed') throw stoppedError(r);
    });

  for (const action of ROLLOUT_ACTIONS) {
    rollout
      .command(action)
      .argument('<name>', 'rollout name')
      .description(ACTION_TEXT[action].help)
      .option('-o, --output <format>', 'json or yaml')
      .action(async (name: string, opts: { output?: string }, cmd: Command) => {
        const format = parseOutput(opts.output, ['table', 'json', 'yaml']);
        const r = await ctx.client(cmd).api.rolloutAction(name, action);
        if (format !== 'table') {
          printObject(ctx, format, r);
          return;
        }
        io.stdout(`rollout/${r.metadata.name} ${ACTION_TEXT[action].done} (phase ${r.status?.phase ?? 'Pending'})\n`);
        if (r.status?.continueWith !== undefined && r.status.continueWith !== null) io.stdout(`To continue: ${r.status.continueWith}\n`);
      });
  }
}
