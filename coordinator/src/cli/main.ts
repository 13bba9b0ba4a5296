/**
 * nkctl's entry point: run the command tree, turn every failure into one stderr line
 * `error: <message> (<NK_CODE>)` and an exit code (see cli-errors.ts, docs/nkctl.md).
 */
import { basename } from 'node:path';
import { CommanderError } from 'commander';
import { CliErrorCode, ExitCode, errorLine, exitCodeFor } from './cli-errors.ts';
import { buildProgram, type CliIo } from './program.ts';
import { packageVersion } from '../version.ts';

/** `kubectl nodekeeper` when started through the kubectl plugin name, else `nkctl`. */
export function programNameFor(argv1: string | undefined): string {
  return argv1 !== undefined && basename(argv1) === 'kubectl-nodekeeper' ? 'kubectl nodekeeper' : 'nkctl';
}

/** Run nkctl with `args` (without node and script); resolves to the exit code. */
export async function main(args: readonly string[], io: CliIo): Promise<number> {
  const program = buildProgram(io);
  // Commander reports to us instead of exiting, so every failure goes through one path.
  const configure = (cmd: typeof program): void => {
    cmd.exitOverride();
    cmd.configureOutput({ writeOut: io.stdout, writeErr: io.stderr, outputError: () => {} });
    for (const sub of cmd.commands) configure(sub);
  };
  configure(program);
  try {
    await program.parseAsync([...args], { from: 'user' });
    return ExitCode.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version are not failures; `nkctl` with no command printed help to stderr.
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return ExitCode.ok;
      if (err.code === 'commander.help' || err.code === 'commander.executeSubCommandAsync') return ExitCode.usage;
      io.stderr(`error: ${err.message.replace(/^error: /, '')} (${CliErrorCode.usage})\n`);
      return ExitCode.usage;
    }
    io.stderr(errorLine(err) + '\n');
    return exitCodeFor(err);
  }
}

/** The process entry: real stdout/stderr, environment and clock. */
export async function run(): Promise<void> {
  const io: CliIo = {
    stdout: (t) => void process.stdout.write(t),
    stderr: (t) => void process.stderr.write(t),
    env: process.env,
    cwd: process.cwd(),
    now: () => Date.now(),
    programName: programNameFor(process.argv[1]),
    version: packageVersion(),
    readStdin: async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks).toString('utf8');
    },
    stdoutIsTty: process.stdout.isTTY === true,
    stdoutSize: () => ({ rows: process.stdout.rows ?? 24, columns: process.stdout.columns ?? 80 }),
    stderrIsTty: process.stderr.isTTY === true,
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  };
  // exitCode, not exit(): let stdout drain when piped.
  process.exitCode = await main(process.argv.slice(2), io);
}
