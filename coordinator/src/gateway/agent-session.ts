/**
 * The logic of one agent connection: hello (the credential checked again, the machine
 * key registered or matched), then reports, heartbeats and command answers, bound to the
 * one machine its credential speaks for (architecture invariant 4); and the rotation of
 * that credential over the live connection. The socket and the frame checks are the
 * transport's (agent-transport.ts), in this process or in a gateway worker.
 */
import { AppError, type Logger } from '@nodekeeper/common';
import {
  CloseCode,
  ProtocolErrorCode,
  negotiateVersion,
  versionRange,
  MIN_PROTOCOL_VERSION,
  PROTOCOL_VERSION,
  type AgentMessage,
  type Command,
  type MachineIdentity,
} from '@nodekeeper/protocol';
import type { Clock } from '../clock.ts';
import type { CommandDispatcher } from '../commands/dispatcher.ts';
import type { FleetView, AgentLink } from '../fleet/fleet-view.ts';
import type { Metrics } from '../metrics.ts';
import type { Store } from '../store/db.ts';
import type { MachineRecord } from '../store/types.ts';
import type { SessionPort, TransportSink } from './agent-transport.ts';
import { packageVersion } from '../version.ts';
import type { AdmissionOptions } from './admission.ts';
import type { SourceLimiter } from './source-limiter.ts';

/** Sent in `welcome`: the version this coordinator was released as. */
export const COORDINATOR_VERSION = packageVersion();
/** An agent must say hello this soon after connecting. */
const HELLO_TIMEOUT_MS = 10_000;
/** An unconfirmed rotation is sent again after this long. */
const ROTATION_RETRY_MS = 60_000;
/** `error` frames from one agent are logged at most once per this interval; the rest are counted. */
const AGENT_ERROR_LOG_INTERVAL_MS = 10_000;

export interface GatewayOptions {
  readonly heartbeatIntervalMs: number;
  readonly rateLimit: { readonly perSecond: number; readonly burst: number };
  readonly maxInvalidFrames: number;
  readonly maxConnections: number;
  readonly admission: AdmissionOptions;
  /** Lifetime of a machine credential; a third before its end the agent gets a new one. */
  readonly machineCredentialTtlMs: number;
}

export interface GatewayDeps {
  readonly store: Store;
  readonly fleet: FleetView;
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly commands: CommandDispatcher;
  /** Failed authentications per source address (shared with enrollment). */
  readonly authFailures: SourceLimiter;
  /** Runs the handling of each frame (the coordinator labels its store writes with it). */
  readonly runAs?: <T>(fn: () => T) => T;
}

/**
 * The gateway, as its sessions see it: methods on one object, not closures per session
 * (a closure and its context stay alive as long as the connection).
 */
export interface SessionOwner {
  /** The session's admission slot is free (called once per session: welcomed, failed or closed). */
  slotFreed(): void;
  /** The connection is gone; `port` is the one the session spoke through. */
  sessionClosed(session: AgentSession, port: SessionPort): void;
}

/** What a session is given of its authentication (store/machine-identity.ts `Authenticated`, narrowed). */
export interface SessionAuth {
  readonly machine: Pick<MachineRecord, 'name' | 'machineId' | 'credentialExpiresAt'>;
  readonly credential: string;
}

/**
 * The logic half of one agent connection: hello, then reports and heartbeats, bound to
 * one machine. It speaks through a SessionPort: the transport half in this process, or
 * a worker's over IPC (gateway-workers.ts); it never touches the socket.
 */
export class AgentSession implements AgentLink, TransportSink {
  private readonly port: SessionPort;
  /** Only what a session needs of its machine: the whole record (its report, conditions) would stay alive per connection. */
  private readonly machine: Pick<MachineRecord, 'name' | 'machineId'>;
  private readonly deps: GatewayDeps;
  private readonly opts: GatewayOptions;
  private phase: 'awaiting-hello' | 'ready' | 'closed' = 'awaiting-hello';
  private lastSeq: number | null = null;
  /** The credential this connection authenticated with: checked again at hello. */
  private credential: string | null;
  private credentialExpiresAt: number | null;
  /** A rotation sent and not yet confirmed saved by the agent. */
  private rotation: { id: string; expiresAt: number; sentAt: number } | null = null;
  private lastErrorLogAt = -Infinity;
  private errorsNotLogged = 0;
  /** Null once the hello came: a cleared timer would stay alive as long as the session. */
  private helloTimer: NodeJS.Timeout | null;
  private readonly owner: SessionOwner;
  /** Holds an admission slot: until welcomed, failed or closed, whichever comes first. */
  private slotHeld = true;

  constructor(port: SessionPort, auth: SessionAuth, deps: GatewayDeps, opts: GatewayOptions, owner: SessionOwner) {
    this.port = port;
    this.owner = owner;
    this.machine = { name: auth.machine.name, machineId: auth.machine.machineId };
    this.credential = auth.credential;
    this.credentialExpiresAt = auth.machine.credentialExpiresAt ?? null;
    this.deps = deps;
    this.opts = opts;
    this.helloTimer = setTimeout(() => {
      this.fail(ProtocolErrorCode.unexpectedMessage, `no hello within ${HELLO_TIMEOUT_MS} ms`, CloseCode.protocolError);
    }, HELLO_TIMEOUT_MS).unref();
  }

  /**
   * The session's logger, made when something is logged: kept per session, a child
   * logger and its bindings cost every connection a few hundred bytes for good.
   */
  private get log(): Logger {
    return this.deps.log.child({ machine: this.machine.name });
  }

  /** The machine this session speaks for. */
  get machineName(): string {
    return this.machine.name;
  }

  /** Frees the admission slot (idempotent). */
  private releaseSlot(): void {
    if (!this.slotHeld) return;
    this.slotHeld = false;
    this.owner.slotFreed();
  }

  /** The connection is gone: the machine is detached and the admission slot freed. */
  closed(): void {
    clearTimeout(this.helloTimer ?? undefined);
    this.releaseSlot();
    this.phase = 'closed';
    this.deps.fleet.detach(this.machine.name, this);
    this.deps.metrics.connectedAgents.set(this.deps.fleet.connectedCount());
    this.owner.sessionClosed(this, this.port);
  }

  resync(): void {
    this.port.send({ type: 'resync' });
  }

  /**
   * Sends the agent a new credential when a third of the current one's life is left
   * (or it predates expiry). The old one keeps working until the agent confirms it saved
   * the new one, so a crash on either side loses nothing. True when one was sent.
   */
  rotateCredentialIfDue(now: number): boolean {
    if (this.phase !== 'ready') return false;
    if (this.rotation !== null && now - this.rotation.sentAt < ROTATION_RETRY_MS) return false;
    const ttl = this.opts.machineCredentialTtlMs;
    if (this.credentialExpiresAt !== null && now < this.credentialExpiresAt - ttl / 3) return false;
    try {
      const next = this.deps.store.issueNextCredential(this.machine.name, ttl);
      this.rotation = { id: next.id, expiresAt: next.expiresAt, sentAt: now };
      this.port.send({ type: 'credential', credential: next.credential, expiresInMs: ttl });
      this.log.info('sent the agent a new credential');
      return true;
    } catch (err) {
      this.log.warn({ err }, 'cannot rotate the machine credential now; will try again');
      return false;
    }
  }

  sendCommand(command: Command): boolean {
    if (this.phase !== 'ready' || !this.port.open) return false;
    this.port.send(command);
    return true;
  }

  close(code: number, reason: string): void {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    this.port.close(code, reason);
  }

  private fail(code: string, message: string, closeCode: number, retryAfterMs?: number): void {
    this.phase = 'closed';
    // The admission slot is free at once, not when the close handshake ends: a slow or
    // gone peer holds a closing socket for up to ws's 30 s, and in a storm 500 such
    // slots closed the door to everyone.
    clearTimeout(this.helloTimer ?? undefined);
    this.helloTimer = null;
    this.releaseSlot();
    this.port.fail(code, message, closeCode, retryAfterMs);
  }

  private reject(code: string, message: string): void {
    this.port.reject(code, message);
  }

  /** A message the transport half validated. */
  message(message: AgentMessage): void {
    if (this.phase === 'closed') return;
    // A heartbeat after the welcome is contact only (memory, and a last-seen time the
    // write batcher stores later under its own label), as a worker's batched heartbeats
    // are: it goes around runAs, whose AsyncLocalStorage frame costs about half a KB of
    // garbage a call, on the path every agent takes every heartbeat (bench/README.md,
    // "CPU per frame over wss").
    try {
      if (message.type === 'heartbeat' && this.phase === 'ready') this.heartbeat();
      else (this.deps.runAs ?? ((fn) => fn()))(() => this.handle(message));
    } catch (err) {
      // A frame we could not persist (say, a command result on a full disk) is not
      // acknowledged: the agent reconnects later, the open command is re-delivered and
      // answered again from the agent's journal. Never a crash (invariant 11).
      this.log.warn({ err, type: message.type }, 'could not handle an agent frame; asking the agent to come back later');
      this.fail(ProtocolErrorCode.tryAgainLater, 'the coordinator cannot record this now; reconnect later', CloseCode.tryAgainLater, 5000);
    }
  }

  /** Heartbeats a worker batched: only contact (gateway-workers.ts). */
  heartbeat(): void {
    if (this.phase === 'ready') this.deps.fleet.touch(this.machine.name);
  }

  private identityMatches(identity: MachineIdentity): boolean {
    return identity.machineId === this.machine.machineId && identity.hostname === this.machine.name;
  }

  private handle(msg: AgentMessage): void {
    const { fleet } = this.deps;
    if (this.phase === 'awaiting-hello') {
      if (msg.type !== 'hello') {
        this.reject(ProtocolErrorCode.unexpectedMessage, `expected hello first, got ${msg.type}`);
        return;
      }
      clearTimeout(this.helloTimer ?? undefined);
      this.helloTimer = null;
      if (!this.recheckCredential(msg.publicKey)) return;
      const version = negotiateVersion(msg.minProtocolVersion, msg.maxProtocolVersion);
      if (version === null) {
        this.fail(ProtocolErrorCode.unsupportedVersion, `agent speaks protocol ${versionRange(msg.minProtocolVersion, msg.maxProtocolVersion)}; this coordinator speaks ${versionRange(MIN_PROTOCOL_VERSION, PROTOCOL_VERSION)}`, CloseCode.unsupportedVersion);
        return;
      }
      if (!this.identityMatches(msg.identity)) {
        this.fail(ProtocolErrorCode.identityMismatch, `credential was issued to ${this.machine.name} (${this.machine.machineId}); hello claims ${msg.identity.hostname} (${msg.identity.machineId})`, CloseCode.protocolError);
        return;
      }
      this.phase = 'ready';
      fleet.attach(this.machine.name, this, msg.agentVersion);
      this.deps.metrics.connectedAgents.set(fleet.connectedCount());
      this.releaseSlot();
      this.log.info({ agentVersion: msg.agentVersion }, 'agent connected');
      this.port.send({
        type: 'welcome',
        protocolVersion: version,
        machine: this.machine.name,
        heartbeatIntervalMs: this.opts.heartbeatIntervalMs,
        coordinatorVersion: COORDINATOR_VERSION,
      });
      this.deps.commands.machineConnected(this.machine.name);
      return;
    }
    fleet.touch(this.machine.name);
    switch (msg.type) {
      case 'hello':
        this.reject(ProtocolErrorCode.unexpectedMessage, 'hello was already received on this connection');
        return;
      case 'heartbeat':
        return;
      case 'report': {
        if (msg.report.identity !== undefined && !this.identityMatches(msg.report.identity)) {
          this.fail(ProtocolErrorCode.identityMismatch, `this connection reports for ${this.machine.name} only`, CloseCode.protocolError);
          return;
        }
        if (!msg.full && this.lastSeq !== null && msg.seq !== this.lastSeq + 1) {
          const expected = this.lastSeq + 1;
          this.lastSeq = null;
          this.reject(ProtocolErrorCode.reportOutOfSequence, `report delta ${msg.seq} is not the expected ${expected}; send a full report`);
          this.resync();
          return;
        }
        if (!msg.full && this.lastSeq === null) {
          this.resync();
          return;
        }
        this.lastSeq = msg.seq;
        if (!fleet.report(this.machine.name, msg.full, msg.report)) this.lastSeq = null;
        return;
      }
      case 'command.progress':
      case 'command.result': {
        // Only this machine's own commands: a connection cannot answer for another (invariant 4).
        const known = msg.type === 'command.progress' ? this.deps.commands.progress(this.machine.name, msg) : this.deps.commands.result(this.machine.name, msg);
        if (!known) this.reject(ProtocolErrorCode.unexpectedMessage, `no command ${msg.commandId} was sent to this machine`);
        return;
      }
      case 'credential.saved':
        this.credentialSaved(msg.credentialId);
        return;
      case 'error':
        this.agentError(msg.code, msg.message);
        return;
    }
  }

  /**
   * At hello the credential is checked again: a revocation, reset or re-enrollment since
   * the upgrade voids it. A machine key in the hello is registered if the machine has
   * none, and must match the registered one otherwise. False when the session failed.
   */
  private recheckCredential(publicKey: string | undefined): boolean {
    const { store } = this.deps;
    try {
      const again = store.authenticateMachineCredential(this.credential);
      if (again.machine.name !== this.machine.name) throw new AppError('NK_AUTH_CREDENTIAL_INVALID', 'machine credential is not valid');
      this.credentialExpiresAt = again.machine.credentialExpiresAt ?? null;
      if (publicKey !== undefined && store.registerMachineKey(this.machine.name, publicKey) === 'different') {
        this.fail(
          ProtocolErrorCode.machineKeyMismatch,
          `this hello presents a machine key other than the one registered for ${this.machine.name}; if the node lost its key, an admin runs 'nkctl machine reset ${this.machine.name}'`,
          CloseCode.revoked,
        );
        return false;
      }
    } catch (err) {
      const code = err instanceof AppError ? err.code : 'NK_AUTH_CREDENTIAL_INVALID';
      this.fail(code, `credential no longer accepted: ${(err as Error).message}`, CloseCode.revoked);
      return false;
    }
    // Not needed again on this connection; do not keep the secret around.
    this.credential = null;
    return true;
  }

  private credentialSaved(id: string): void {
    if (this.rotation === null || this.rotation.id !== id) {
      this.reject(ProtocolErrorCode.unexpectedMessage, `credential ${id} is not the one this connection sent`);
      return;
    }
    try {
      if (this.deps.store.confirmCredential(this.machine.name, id)) this.credentialExpiresAt = this.rotation.expiresAt;
      this.rotation = null;
    } catch (err) {
      // Stays pending: the agent presenting it at its next connection confirms it too.
      this.log.warn({ err }, 'cannot record the rotated credential now');
    }
  }

  /** An agent's `error` frame: counted always, logged at most once per interval (its text is the agent's to choose). */
  private agentError(code: string, message: string): void {
    this.deps.metrics.agentErrors.inc();
    const now = this.deps.clock();
    if (now - this.lastErrorLogAt < AGENT_ERROR_LOG_INTERVAL_MS) {
      this.errorsNotLogged += 1;
      return;
    }
    this.lastErrorLogAt = now;
    const more = this.errorsNotLogged;
    this.errorsNotLogged = 0;
    this.log.warn({ code: code.slice(0, 64), notLogged: more }, `agent reported an error: ${message.slice(0, 512)}`);
  }
}
