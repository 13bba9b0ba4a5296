/**
 * `nkctl delete KIND NAME` for every kind that can go (docs/nkctl.md): rollouts (finished
 * ones), artifacts (unreferenced ones; the bytes go too), tokens (revoked: an enrollment
 * with it is refused from then on, and retention drops it later), machines (as
 * `nkctl machine delete`). `delete remediationrule` is registered with the remediation
 * commands. The coordinator checks the rules and names what stands in the way.
 */
import type { Command } from 'commander';
import { CliErrorCode, usageError } from './cli-errors.ts';
import type { CommandContext } from './command-context.ts';

const SHA256 = /^(sha256:)?([0-9a-f]{64})$/;

/** Adds the kinds to the `delete` command (made by addRemediationCommands), or makes it. */
export function addDeleteCommands(program: Command, ctx: CommandContext): void {
  const { io } = ctx;
  const del = program.commands.find((c) => c.name() === 'delete') ?? program.command('delete').description('Delete a resource.');
  del
    .command('rollout')
    .aliases(['rollouts', 'ro'])
    .argument('<name>', 'rollout name')
    .description('Delete a finished rollout (Completed, Failed or RolledBack) and keep its events; a running one is refused: abort it first.')
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      await ctx.client(cmd).api.deleteRollout(name);
      io.stdout(`rollout/${name} deleted\n`);
    });
  del
    .command('artifact')
    .aliases(['artifacts'])
    .argument('<digest>', 'sha256:<hex> or <hex>, as `nkctl artifact list` shows it')
    .description('Delete a stored artifact and its bytes; refused while the ClusterPackageVersion, a pin or an unfinished rollout uses it.')
    .action(async (digest: string, _opts: unknown, cmd: Command) => {
      const hex = SHA256.exec(digest)?.[2];
      if (hex === undefined) throw usageError(CliErrorCode.usage, `"${digest.slice(0, 80)}" is not an artifact digest: give sha256:<64 hex digits>`);
      await ctx.client(cmd).api.deleteArtifact(hex);
      io.stdout(`artifact/sha256:${hex} deleted\n`);
    });
  del
    .command('token')
    .aliases(['tokens'])
    .argument('<id>', 'token id (the part before the dot)')
    .description('Delete (revoke) a bootstrap token: no machine enrolls with it any more.')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      // Accept the whole token too, and never send its secret: only the id part.
      const res = await ctx.client(cmd).api.revokeToken(id.split('.')[0] ?? id);
      io.stdout(`token/${res.id} deleted\n`);
    });
  del
    .command('machine')
    .aliases(['machines'])
    .argument('<name>', 'machine name')
    .option('--force', 'delete it even while a rollout holds it')
    .description('Delete a machine gone for good (as nkctl machine delete).')
    .action(async (name: string, opts: { force?: boolean }, cmd: Command) => {
      const r = await ctx.client(cmd).api.deleteMachine(name, opts.force === true);
      io.stdout(`machine/${r.name} deleted (${r.commands} commands, ${r.observations} observations)\n`);
    });
}
