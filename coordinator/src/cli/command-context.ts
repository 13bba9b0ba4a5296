/**
 * What nkctl's command modules share with the program that builds them: the injected io,
 * the lazily resolved API client, and printing an object as -o json|yaml. Its own module,
 * so program.ts imports the command modules and they import this, never program.ts.
 */
import type { Command } from 'commander';
import type { ApiClient } from './api-client.ts';
import type { ConnectionConfig } from './config.ts';
import { toJson, toYaml, type OutputFormat } from './output.ts';

/** Everything nkctl touches outside itself, injected so tests can run it in-process too. */
export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
  readonly now: () => number;
  /** `nkctl`, or `kubectl nodekeeper` when run as a kubectl plugin. */
  readonly programName: string;
  readonly version: string;
  /** All of stdin, for `-f -`. */
  readonly readStdin: () => Promise<string>;
  /** Terminals get redrawn status and upload progress; pipes get plain lines. */
  readonly stdoutIsTty: boolean;
  /** The terminal's rows and columns when stdout is one (live views fit it); absent: 24x80. */
  readonly stdoutSize?: () => { readonly rows: number; readonly columns: number };
  readonly stderrIsTty: boolean;
  readonly sleep: (ms: number) => Promise<void>;
}

/** What the command modules share: the io and the lazily resolved API client. */
export interface CommandContext {
  readonly io: CliIo;
  readonly client: (cmd: Command) => { api: ApiClient; cfg: ConnectionConfig };
}

/** An API object as `-o json` or `-o yaml` prints it. */
export function printObject(ctx: CommandContext, format: OutputFormat, obj: unknown): void {
  ctx.io.stdout(format === 'yaml' ? toYaml(obj) : toJson(obj));
}
