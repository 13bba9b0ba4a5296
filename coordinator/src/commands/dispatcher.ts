/**
 * Commands to agents. A command is recorded in the store before it is sent, so a
 * coordinator restart knows what is in flight; it is (re)delivered whenever its machine
 * connects, and agents run each id at most once, answering a re-delivery with the
 * recorded result. A connection may only report on its own machine's commands
 * (architecture invariant 4).
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from '@nodekeeper/common';
import type { Command, CommandProgress, CommandResult } from '@nodekeeper/protocol';
import type { Clock } from '../clock.ts';
import type { Store } from '../store/db.ts';
import type { CommandRecord } from '../model/commands.ts';

/** Extra time past a command's own timeout before the coordinator gives up on hearing back. */
const RESULT_GRACE_MS = 30_000;

/** Delivers a command frame to a machine's live connection; false when it has none. */
export type Deliver = (machine: string, command: Command) => boolean;

export type CommandListener = (command: CommandRecord) => void;

/** Whether a recorded command may be delivered now (false: something must happen first, such as a drain). */
export type DeliveryGate = (command: CommandRecord) => boolean;

export interface NewCommand {
  /** A caller-chosen id makes recording idempotent (the rollout planner's ids are deterministic). */
  readonly id?: string;
  readonly machine: string;
  readonly kind: string;
  readonly params: Record<string, unknown>;
  readonly owner: string | null;
  readonly timeoutMs: number;
}

export class CommandDispatcher {
  private readonly store: Store;
  private readonly clock: Clock;
  private readonly log: Logger;
  private deliver: Deliver = () => false;
  private gate: DeliveryGate = () => true;
  private readonly listeners = new Set<CommandListener>();
  private readonly connectListeners = new Set<(machine: string) => void>();
  private progressListener: (id: string, step: string) => void = () => {};

  constructor(deps: { store: Store; clock: Clock; log: Logger }) {
    this.store = deps.store;
    this.clock = deps.clock;
    this.log = deps.log;
  }

  /** Wires the transport (the gateway) in; set once at start-up. */
  setTransport(deliver: Deliver): void {
    this.deliver = deliver;
  }

  /** Holds back commands the gate does not release yet; they are sent by sendById once it does. */
  setGate(gate: DeliveryGate): void {
    this.gate = gate;
  }

  /** Finishes an open command as Failed without sending it (its precondition failed); listeners hear of it. */
  fail(id: string, error: { code: string; message: string }, result: Record<string, unknown> | null = null): boolean {
    const finished = this.store.finishCommand(id, { state: 'Failed', error, result, message: error.message });
    if (finished) this.notify(id);
    return finished;
  }

  /**
   * Fails an open command that was never sent, so it never will be (its owner gave up
   * on it: an aborted rollout, an abandoned repair step); false when it was sent already
   * or is finished. Listeners hear of it. Checked and written in one synchronous step.
   */
  cancelUnsent(id: string, error: { code: string; message: string }, result: Record<string, unknown> | null = null): boolean {
    const c = this.store.getCommand(id);
    if (c === null || c.state !== 'Pending' || c.sentAt !== null) return false;
    return this.fail(id, error, result);
  }

  /** Called with every command that finished (succeeded, failed or timed out). */
  onFinished(listener: CommandListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Called with every progress frame accepted (the install timings of /metrics); set once at start-up. */
  onProgress(listener: (id: string, step: string) => void): void {
    this.progressListener = listener;
  }

  /** Records a command, then sends it if the machine is connected (else on its next connect). */
  issue(c: NewCommand): CommandRecord {
    const record = this.record(c);
    this.sendById(record.id);
    return this.store.getCommand(record.id) ?? record;
  }

  /**
   * Records a command without sending it (for callers that record it in their own
   * transaction, then call sendById after the commit). With an explicit id it is
   * idempotent: an existing command of that id is returned unchanged.
   */
  record(c: NewCommand): CommandRecord {
    const id = c.id ?? `c-${this.clock().toString(36)}-${randomBytes(5).toString('hex')}`;
    const existing = this.store.getCommand(id);
    if (existing !== null) {
      if (existing.machine !== c.machine || existing.kind !== c.kind) throw new TypeError(`command id ${id} is already used for another machine or kind`);
      return existing;
    }
    return this.store.createCommand({ id, machine: c.machine, kind: c.kind, params: c.params, owner: c.owner, timeoutMs: c.timeoutMs });
  }

  /** Sends a recorded command if it is still open and its machine is connected. */
  sendById(id: string): void {
    const c = this.store.getCommand(id);
    if (c !== null && (c.state === 'Pending' || c.state === 'Sent' || c.state === 'Running')) this.send(c);
  }

  /** Re-delivers every open command of a machine that just connected. */
  machineConnected(machine: string): void {
    for (const l of this.connectListeners) l(machine);
    for (const c of this.store.openCommands(machine)) this.send(c);
  }

  /** Called with each machine whose agent connected (a reboot waiting on it notes when). */
  onConnected(listener: (machine: string) => void): void {
    this.connectListeners.add(listener);
  }

  /** A progress frame from `machine`'s connection; false when it is not that machine's command. */
  progress(machine: string, msg: CommandProgress): boolean {
    const c = this.store.getCommand(msg.commandId);
    if (c === null || c.machine !== machine) return false;
    this.store.markCommandProgress(c.id, msg.step, msg.message);
    this.progressListener(c.id, msg.step);
    return true;
  }

  /** A result frame from `machine`'s connection; false when it is not that machine's command. */
  result(machine: string, msg: CommandResult): boolean {
    const c = this.store.getCommand(msg.commandId);
    if (c === null || c.machine !== machine) return false;
    const finished = this.store.finishCommand(c.id, {
      state: msg.ok ? 'Succeeded' : 'Failed',
      result: msg.result ?? null,
      error: msg.error ?? null,
      message: msg.error?.message ?? (typeof msg.result?.['message'] === 'string' ? (msg.result['message'] as string) : ''),
    });
    if (finished) this.notify(c.id);
    return true;
  }

  /** Gives up on commands whose result is overdue; call on a timer. */
  expire(): void {
    const now = this.clock();
    for (const c of this.store.openCommands()) {
      const since = c.sentAt ?? c.createdAt;
      // Pending commands wait for their machine to connect: only sent ones can be overdue.
      if (c.sentAt !== null && now - since > c.timeoutMs + RESULT_GRACE_MS) {
        const message = `no result within ${Math.round((c.timeoutMs + RESULT_GRACE_MS) / 1000)} s of sending`;
        if (this.store.finishCommand(c.id, { state: 'TimedOut', error: { code: 'NK_COMMAND_TIMED_OUT', message }, message })) {
          this.log.warn({ command: c.id, machine: c.machine }, message);
          this.notify(c.id);
        }
      }
    }
  }

  private send(c: CommandRecord): void {
    if (!this.gate(c)) return;
    const frame: Command = { type: 'command', commandId: c.id, kind: c.kind, params: { ...c.params }, timeoutMs: c.timeoutMs };
    if (!this.deliver(c.machine, frame)) return;
    try {
      this.store.markCommandSent(c.id);
    } catch (err) {
      // Delivered but not marked (the store is failing): the command stays Pending and is
      // delivered again at the next connect; the agent answers a known id from its journal.
      this.log.warn({ err, command: c.id }, 'command sent but not marked Sent');
    }
  }

  private notify(id: string): void {
    const done = this.store.getCommand(id);
    if (done === null) return;
    for (const l of this.listeners) {
      try {
        l(done);
      } catch (err) {
        this.log.error({ err, command: id }, 'command listener failed');
      }
    }
  }
}
