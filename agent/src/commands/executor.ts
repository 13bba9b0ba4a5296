/**
 * Runs the coordinator's commands (`package.install`, `package.rollback`, `probe.now`,
 * and the repairs `service.restart`, `config.restore`, `node.reboot`), each id at most once. A command's result is stored durably before it is sent; a
 * re-delivered id is answered from the store; an id still running is answered with
 * progress. Installs and rollbacks of one package never overlap. Recovery of what a
 * killed agent left behind runs first, and every command waits for it.
 */
import type { Logger } from '@nodekeeper/common';
import {
  checkConfigRestoreParams,
  checkInstallParams,
  checkNodeRebootParams,
  checkRollbackParams,
  checkServiceRestartParams,
  CommandKind,
  type AgentMessage,
  type Command,
  type CommandResult,
  type InstallParams,
} from '@nodekeeper/protocol';
import { InstallErrorCode } from '../install/codes.ts';
import type { Installer, InstallOutcome } from '../install/installer.ts';
import type { Journal } from '../install/journal.ts';
import { RepairErrorCode } from '../repair/codes.ts';
import type { Repairer, RepairOutcome } from '../repair/repairer.ts';
import { CommandStore } from './command-store.ts';

export interface ExecutorDeps {
  readonly installer: Installer;
  readonly journal: Journal;
  readonly store: CommandStore;
  readonly log: Logger;
  /** Sends a frame; false when there is no ready connection (the result waits for flush()). */
  send(msg: AgentMessage): boolean;
  /**
   * `probe.now`: probes at once and sends a full report through the agent's report path;
   * resolves with a message for the result. Without it, `probe.now` is unsupported.
   */
  probeNow?(): Promise<string>;
  /** Runs the repair kinds; without it they are unsupported. */
  readonly repair?: Repairer;
}

type Kind = (typeof CommandKind)[keyof typeof CommandKind];
type RepairKind = typeof CommandKind.serviceRestart | typeof CommandKind.configRestore | typeof CommandKind.nodeReboot;
const KINDS: ReadonlySet<string> = new Set(Object.values(CommandKind));
const REPAIR_KINDS: ReadonlySet<string> = new Set([CommandKind.serviceRestart, CommandKind.configRestore, CommandKind.nodeReboot]);

interface Running {
  /**
   * What it changes, one command at a time: a package name (installs, rollbacks), `unit:<name>`,
   * `path:<host path>` or `node` (repairs); null for commands that change nothing (probe.now).
   */
  readonly pkg: string | null;
  step: string;
  message: string;
  readonly done: Promise<CommandResult>;
}

export class CommandExecutor {
  private readonly d: ExecutorDeps;
  private recovering: Promise<void> = Promise.resolve();
  private readonly running = new Map<string, Running>();
  /** Commands whose interrupted install recover() is finishing right now. */
  private readonly recoveringIds = new Set<string>();
  /** Results finished while no connection was ready; sent by flush(). */
  private readonly outbox = new Map<string, CommandResult>();

  constructor(deps: ExecutorDeps) {
    this.d = deps;
  }

  /**
   * Finishes or rolls back every install a previous run left unfinished, recording each
   * outcome as its command's result (sent on the next flush), after `first` settles. Call once, at start.
   */
  recover(first: Promise<void> = Promise.resolve()): Promise<void> {
    this.recovering = (async () => {
      // What must be settled before the journal is read (the agent's own upgrade); its fault is logged, not fatal.
      await first.catch((err: unknown) => this.d.log.error({ err }, 'self-upgrade start-up check failed'));
      const { records, quarantined } = await this.d.journal.scan();
      for (const q of quarantined) {
        // Reported where the coordinator sees it: the command's own result (sent now or on flush).
        this.d.log.error({ command: q.commandId, file: q.file, problem: q.problem }, 'install journal record unreadable; quarantined, its command answered NK_INSTALL_JOURNAL_CORRUPT');
        if (q.commandId === null || (await this.d.store.get(q.commandId)) !== null) continue;
        const message = `the install journal of this command was unreadable (${q.problem}); it was moved to ${q.file} (quarantine) and the install was not recovered: check the package on this node`;
        await this.finishFrame(q.commandId, fail(q.commandId, InstallErrorCode.journalCorrupt, message));
      }
      for (const rec of records) {
        const log = this.d.log.child({ command: rec.commandId, pkg: rec.params.package });
        try {
          if ((await this.d.store.get(rec.commandId)) !== null) {
            // Killed between storing the result and removing the journal: already finished.
            await this.d.journal.remove(rec.commandId);
            continue;
          }
          log.warn({ step: rec.step, rollingBack: rec.failure !== undefined }, `recovering a${rec.kind === 'rollback' ? ' rollback' : 'n install'} interrupted by an agent restart`);
          this.recoveringIds.add(rec.commandId);
          const outcome = await this.d.installer.recover(rec, (step, message) => this.progress(rec.commandId, step, message));
          log.info({ outcome: outcome.result.outcome, active: outcome.result.activeVersion }, 'recovered');
          await this.finishOutcome(rec.commandId, outcome, rec.kind === 'rollback' ? CommandKind.rollback : CommandKind.install);
        } catch (err) {
          // One record's fault does not stop the others; this one is retried at the next start.
          log.error({ err }, 'recovering this install failed; going on with the others');
        } finally {
          this.recoveringIds.delete(rec.commandId);
        }
      }
    })();
    return this.recovering;
  }

  /** Handles one `command` frame. Resolves with the result frame (or null for progress only). */
  async handle(cmd: Command): Promise<CommandResult | null> {
    await this.recovering.catch(() => {});
    const unsupported = !KINDS.has(cmd.kind) || (cmd.kind === CommandKind.probeNow && this.d.probeNow === undefined) || (REPAIR_KINDS.has(cmd.kind) && this.d.repair === undefined);
    if (unsupported) {
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
    switch (cmd.kind as Kind) {
      case CommandKind.rollback:
        return this.runRollback(cmd.commandId, cmd.params);
      case CommandKind.probeNow:
        return this.runProbeNow(cmd.commandId);
      case CommandKind.install:
        return this.runInstall(cmd.commandId, cmd.params, cmd.timeoutMs);
      case CommandKind.serviceRestart:
      case CommandKind.configRestore:
      case CommandKind.nodeReboot:
        return this.runRepair(cmd.commandId, cmd.kind as RepairKind, cmd.params);
    }
  }

  /** Validates and runs a repair command, records and sends its result (a RepairResult). */
  async runRepair(commandId: string, kind: RepairKind, raw: unknown): Promise<CommandResult> {
    const repair = this.d.repair;
    if (repair === undefined) throw new TypeError(`${kind} needs ExecutorDeps.repair`);
    const badParams = (message: string) => this.finishFrame(commandId, fail(commandId, RepairErrorCode.badParams, message), kind);
    switch (kind) {
      case CommandKind.serviceRestart: {
        const c = checkServiceRestartParams(raw);
        if (!c.ok) return badParams(c.message);
        return this.runRepairExclusive(commandId, `unit:${c.params.unit}`, `restart ${c.params.unit}`, kind, () => repair.restartService(c.params, { commandId }));
      }
      case CommandKind.configRestore: {
        const c = checkConfigRestoreParams(raw);
        if (!c.ok) return badParams(c.message);
        return this.runRepairExclusive(commandId, `path:${c.params.path}`, `restore ${c.params.path}`, kind, () => repair.restoreConfig(c.params, { commandId }));
      }
      case CommandKind.nodeReboot: {
        const c = checkNodeRebootParams(raw);
        if (!c.ok) return badParams(c.message);
        return this.runRepairExclusive(commandId, 'node', 'reboot the node', kind, () => repair.reboot(commandId, c.params));
      }
    }
  }

  private async runRepairExclusive(commandId: string, key: string, what: string, kind: Kind, work: () => Promise<RepairOutcome>): Promise<CommandResult> {
    const busy = [...this.running.entries()].find(([, r]) => r.pkg === key || (key === 'node' && r.pkg !== null) || r.pkg === 'node');
    if (busy !== undefined) {
      return this.finishFrame(commandId, fail(commandId, RepairErrorCode.busy, `command ${busy[0]} is running on ${busy[1].pkg}; one change of it at a time`), kind);
    }
    const entry: Running = { pkg: key, step: 'accepted', message: what, done: work().then((o) => this.finishOutcome(commandId, o, kind)) };
    this.running.set(commandId, entry);
    try {
      return await entry.done;
    } finally {
      this.running.delete(commandId);
    }
  }

  /** Validates and runs an install, records and sends its result. */
  async runInstall(commandId: string, raw: unknown, timeoutMs?: number): Promise<CommandResult> {
    const checked = checkInstallParams(raw);
    if (!checked.ok) return this.finishFrame(commandId, fail(commandId, InstallErrorCode.badParams, checked.message));
    const params: InstallParams = checked.params;
    const problem = paramsProblem(params);
    if (problem !== null) return this.finishFrame(commandId, fail(commandId, InstallErrorCode.badParams, problem));
    return this.runExclusive(commandId, params.package, `install ${params.package} ${params.version}`, CommandKind.install, () =>
      this.d.installer.install(commandId, params, (step, message) => this.progress(commandId, step, message), timeoutMs === undefined ? {} : { downloadTimeoutMs: timeoutMs }),
    );
  }

  /** Validates and runs a `package.rollback`, records and sends its result. */
  async runRollback(commandId: string, raw: unknown): Promise<CommandResult> {
    const checked = checkRollbackParams(raw);
    if (!checked.ok) return this.finishFrame(commandId, fail(commandId, InstallErrorCode.badParams, checked.message), CommandKind.rollback);
    const params = checked.params;
    if (params.manifest.name !== params.package) {
      return this.finishFrame(commandId, fail(commandId, InstallErrorCode.badParams, `params.package "${params.package}" differs from manifest.name "${params.manifest.name}"`), CommandKind.rollback);
    }
    return this.runExclusive(commandId, params.package, `roll back ${params.package}`, CommandKind.rollback, () =>
      this.d.installer.rollbackPackage(commandId, params, (step, message) => this.progress(commandId, step, message)),
    );
  }

  /** Probes and sends a full report now; answers ok with the agent's message. Stored like any result. */
  private async runProbeNow(commandId: string): Promise<CommandResult> {
    const probeNow = this.d.probeNow;
    if (probeNow === undefined) throw new TypeError('probe.now needs ExecutorDeps.probeNow');
    const done = probeNow().then(
      (message): CommandResult => ({ type: 'command.result', commandId, ok: true, result: { message } }),
      // Probes report node faults as results; a throw here is the agent's own fault, and it is answered.
      (err: unknown) => fail(commandId, 'NK_AGENT_PROBE_FAILED', `probing failed: ${(err as Error)?.message ?? String(err)}`),
    );
    const entry: Running = { pkg: null, step: 'probe', message: 'probing', done: done.then((frame) => this.finishFrame(commandId, frame, CommandKind.probeNow)) };
    this.running.set(commandId, entry);
    try {
      return await entry.done;
    } finally {
      this.running.delete(commandId);
    }
  }

  /** Runs `work` as the one command changing `pkg` (else NK_INSTALL_BUSY), then records its outcome. */
  private async runExclusive(commandId: string, pkg: string, what: string, kind: Kind, work: () => Promise<InstallOutcome>): Promise<CommandResult> {
    const busy = [...this.running.entries()].find(([, r]) => r.pkg === pkg);
    if (busy !== undefined) {
      return this.finishFrame(commandId, fail(commandId, InstallErrorCode.busy, `command ${busy[0]} is changing ${pkg}; one install or rollback per package at a time`), kind);
    }
    const entry: Running = { pkg, step: 'accepted', message: what, done: work().then((outcome) => this.finishOutcome(commandId, outcome, kind)) };
    this.running.set(commandId, entry);
    try {
      return await entry.done;
    } finally {
      this.running.delete(commandId);
    }
  }

  /**
   * Waits, at most `timeoutMs`, for the start-up recovery and every running command to end;
   * resolves with the ids still running then (those being recovered included). At a stop,
   * what is still running is left to its journal: the next start's recover() finishes or
   * undoes it, as after a kill.
   */
  async settle(timeoutMs: number): Promise<string[]> {
    const all = Promise.allSettled([this.recovering, ...[...this.running.values()].map((r) => r.done)]);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<void>((resolve) => { timer = setTimeout(resolve, timeoutMs); });
    try {
      await Promise.race([all, timedOut]);
    } finally {
      clearTimeout(timer);
    }
    return [...this.recoveringIds, ...this.running.keys()];
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

  private finishOutcome(commandId: string, o: InstallOutcome | RepairOutcome, kind: Kind): Promise<CommandResult> {
    const frame: CommandResult = o.error === null
      ? { type: 'command.result', commandId, ok: true, result: { ...o.result } }
      : { type: 'command.result', commandId, ok: false, result: { ...o.result }, error: { code: o.error.code, message: o.error.message.slice(0, 4000) } };
    return this.finishFrame(commandId, frame, kind);
  }

  /** Stores the result, then drops the journal, then sends: a kill between leaves a state recovery understands. */
  private async finishFrame(commandId: string, frame: CommandResult, kind: Kind = CommandKind.install): Promise<CommandResult> {
    await this.d.store.put({ commandId, kind, finishedAt: new Date().toISOString(), frame });
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
