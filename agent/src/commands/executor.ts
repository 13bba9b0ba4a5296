/**
 * Runs the coordinator's commands, each id at most once. A command's result is stored
 * durably before it is sent; a re-delivered id is answered from the store; an id still
 * running is answered with progress. Installs of one package never overlap. Recovery of
 * installs a killed agent left behind runs first, and every command waits for it.
 */
import type { Logger } from '@nodekeeper/common';
import { checkInstallParams, CommandKind, type AgentMessage, type Command, type CommandResult, type InstallParams } from '@nodekeeper/protocol';
import { InstallErrorCode } from '../install/codes.ts';
import type { Installer, InstallOutcome } from '../install/installer.ts';
import type { Journal } from '../install/journal.ts';
import { CommandStore } from './command-store.ts';

export interface ExecutorDeps {
  readonly installer: Installer;
  readonly journal: Journal;
  readonly store: CommandStore;
  readonly log: Logger;
  /** Sends a frame; false when there is no ready connection (the result waits for flush()). */
  send(msg: AgentMessage): boolean;
}

interface Running {
  readonly pkg: string;
  step: string;
  message: string;
  readonly done: Promise<CommandResult>;
}

export class CommandExecutor {
  private readonly d: ExecutorDeps;
  private recovering: Promise<void> = Promise.resolve();
  private readonly running = new Map<string, Running>();
  /** Results finished while no connection was ready; sent by flush(). */
  private readonly outbox = new Map<string, CommandResult>();

  constructor(deps: ExecutorDeps) {
    this.d = deps;
  }

  /**
   * Finishes or rolls back every install a previous run left unfinished, recording each
   * outcome as its command's result (sent on the next flush). Call once, at start.
   */
  recover(): Promise<void> {
    this.recovering = (async () => {
      for (const rec of await this.d.journal.unfinished()) {
        const log = this.d.log.child({ command: rec.commandId, pkg: rec.params.package });
        if ((await this.d.store.get(rec.commandId)) !== null) {
          // Killed between storing the result and removing the journal: already finished.
          await this.d.journal.remove(rec.commandId);
          continue;
        }
        log.warn({ step: rec.step, rollingBack: rec.failure !== undefined }, 'recovering an install interrupted by an agent restart');
        const outcome = await this.d.installer.recover(rec, (step, message) => this.progress(rec.commandId, step, message));
        log.info({ outcome: outcome.result.outcome, active: outcome.result.activeVersion }, 'recovered');
        await this.finish(rec.commandId, outcome);
      }
    })();
    return this.recovering;
  }

  /** Handles one `command` frame. Resolves with the result frame (or null for progress only). */
  async handle(cmd: Command): Promise<CommandResult | null> {
    await this.recovering.catch(() => {});
    if (cmd.kind !== CommandKind.install) {
      const frame = fail(cmd.commandId, 'NK_AGENT_COMMAND_UNSUPPORTED', `this agent does not support command "${cmd.kind}"`);
      this.d.send(frame);
      return frame;
    }
    if (!CommandStore.validId(cmd.commandId)) {
      const frame = fail(cmd.commandId, InstallErrorCode.badParams, 'the command id must be 1-128 characters of [A-Za-z0-9._-]');
      this.d.send(frame);
      return frame;
    }
    const stored = await this.d.store.get(cmd.commandId);
    if (stored !== null) {
      this.d.send(stored.frame);
      return stored.frame;
    }
    const live = this.running.get(cmd.commandId);
    if (live !== undefined) {
      this.d.send({ type: 'command.progress', commandId: cmd.commandId, step: live.step, message: `still running: ${live.message}` });
      return null;
    }
    return this.runInstall(cmd.commandId, cmd.params, cmd.timeoutMs);
  }

  /** Validates and runs an install, records and sends its result. */
  async runInstall(commandId: string, raw: unknown, timeoutMs?: number): Promise<CommandResult> {
    const checked = checkInstallParams(raw);
    if (!checked.ok) return this.finishFrame(commandId, fail(commandId, InstallErrorCode.badParams, checked.message));
    const params: InstallParams = checked.params;
    const problem = paramsProblem(params);
    if (problem !== null) return this.finishFrame(commandId, fail(commandId, InstallErrorCode.badParams, problem));
    const busy = [...this.running.entries()].find(([, r]) => r.pkg === params.package);
    if (busy !== undefined) {
      return this.finishFrame(commandId, fail(commandId, InstallErrorCode.busy, `command ${busy[0]} is installing ${params.package}; one install per package at a time`));
    }
    const entry: Running = {
      pkg: params.package,
      step: 'accepted',
      message: `install ${params.package} ${params.version}`,
      done: (async () => {
        const outcome = await this.d.installer.install(commandId, params, (step, message) => this.progress(commandId, step, message), timeoutMs === undefined ? {} : { downloadTimeoutMs: timeoutMs });
        return this.finish(commandId, outcome);
      })(),
    };
    this.running.set(commandId, entry);
    try {
      return await entry.done;
    } finally {
      this.running.delete(commandId);
    }
  }

  /** Sends results that finished while disconnected. Call when a connection becomes ready. */
  flush(): void {
    for (const [id, frame] of this.outbox) if (this.d.send(frame)) this.outbox.delete(id);
  }

  private progress(commandId: string, step: string, message: string): void {
    const live = this.running.get(commandId);
    if (live !== undefined) {
      live.step = step;
      live.message = message;
    }
    this.d.send({ type: 'command.progress', commandId, step, message: message.slice(0, 4000) });
  }

  private finish(commandId: string, o: InstallOutcome): Promise<CommandResult> {
    const frame: CommandResult = o.error === null
      ? { type: 'command.result', commandId, ok: true, result: { ...o.result } }
      : { type: 'command.result', commandId, ok: false, result: { ...o.result }, error: { code: o.error.code, message: o.error.message.slice(0, 4000) } };
    return this.finishFrame(commandId, frame);
  }

  /** Stores the result, then drops the journal, then sends: a kill between leaves a state recovery understands. */
  private async finishFrame(commandId: string, frame: CommandResult): Promise<CommandResult> {
    await this.d.store.put({ commandId, kind: CommandKind.install, finishedAt: new Date().toISOString(), frame });
    await this.d.journal.remove(commandId);
    if (!this.d.send(frame)) this.outbox.set(commandId, frame);
    return frame;
  }
}

function fail(commandId: string, code: string, message: string): CommandResult {
  return { type: 'command.result', commandId, ok: false, error: { code, message: message.slice(0, 4000) } };
}

/** What the schema cannot say: the params must agree with themselves. */
function paramsProblem(p: InstallParams): string | null {
  if (p.manifest.name !== p.package) return `params.package "${p.package}" differs from manifest.name "${p.manifest.name}"`;
  if (p.manifest.format === 'binary' && p.manifest.binaryName === undefined) return 'a binary package needs manifest.binaryName';
  return null;
}
