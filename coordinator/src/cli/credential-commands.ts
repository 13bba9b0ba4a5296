/**
 * `nkctl credential create|list|revoke`: API credentials for people and tools, each
 * admin or read-only. The secret is printed once, at creation.
 */
import type { Command } from 'commander';
import { CliErrorCode, usageError } from './cli-errors.ts';
import { parseOutput } from './output.ts';
import { printObject, type CommandContext } from './command-context.ts';
import { renderTable } from './table.ts';

export function addCredentialCommands(program: Command, ctx: CommandContext): void {
  const { io, client } = ctx;
  const credential = program.command('credential').alias('credentials').description('Manage API credentials (admin or read-only) for nkctl and other clients.');
  credential
    .command('create')
    .description('Create an API credential and print it (shown this once only).')
    .requiredOption('--role <role>', 'admin or read-only')
    .option('--description <text>', 'who or what it is for', '')
    .option('-o, --output <format>', 'json or yaml')
    .action(async (opts: { role: string; description: string; output?: string }, cmd: Command) => {
      const format = parseOutput(opts.output, ['table', 'json', 'yaml']);
      if (opts.role !== 'admin' && opts.role !== 'read-only') throw usageError(CliErrorCode.usage, `invalid --role "${opts.role}": must be admin or read-only`);
      const created = await client(cmd).api.createApiCredential({ role: opts.role, description: opts.description });
      if (format !== 'table') {
        printObject(ctx, format, created);
        return;
      }
      io.stdout(`Credential:  ${created.credential}\nID:          ${created.id}\nRole:        ${created.role}\n\nIt is shown this once; keep it in a file only its user can read (nkctl --token-file).\n`);
    });
  credential
    .command('list')
    .alias('ls')
    .description('List API credentials (never their secrets), revoked ones included.')
    .option('-o, --output <format>', 'json or yaml')
    .action(async (opts: { output?: string }, cmd: Command) => {
      const format = parseOutput(opts.output, ['table', 'json', 'yaml']);
      const list = await client(cmd).api.listApiCredentials();
      if (format !== 'table') printObject(ctx, format, list);
      else if (list.items.length === 0) io.stderr('No API credentials found.\n');
      else io.stdout(renderTable(['ID', 'ROLE', 'DESCRIPTION', 'CREATED', 'STATE'], list.items.map((c) => [c.id, c.role, c.description, c.createdAt, c.revoked ? `Revoked ${c.revokedAt ?? ''}`.trim() : 'Active'])));
    });
  credential
    .command('revoke')
    .alias('delete')
    .argument('<id>', 'credential id (or the whole credential: only its id part is sent)')
    .description('Revoke an API credential: refused from its next request on. The last admin credential cannot be revoked.')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      // nka.<id>.<secret>: never send the secret.
      const parts = id.split('.');
      const res = await client(cmd).api.revokeApiCredential(parts.length === 3 ? parts[1] ?? id : id);
      io.stdout(`apicredential/${res.id} revoked\n`);
    });
}
