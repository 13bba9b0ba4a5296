/**
 * One agent connection: hello (the credential checked again, the machine key
 * registered or matched), then reports, heartbeats and command answers, bound to the
 * one machine its credential speaks for (architecture invariant 4); and the rotation of
 * that credential over the live connection.
 */
import { isUtf8 } from 'node:buffer';
import type { WebSocket, RawData } from 'ws';
import { AppError, type Logger } from '@nodekeeper/common';
import {
  CloseCode,
  MAX_FRAME_BYTES,
  ProtocolErrorCode,
  decodeAgentMessage,
  encode,
  errorFrame,
  negotiateVersion,
  versionRange,
  MIN_PROTOCOL_VERSION,
  PROTOCOL_VERSION,
  type AgentMessage,
  type Command,
  type CoordinatorMessage,
  type MachineIdentity,
} from '@nodekeeper/protocol';
import type { Clock } from '../clock.ts';
import type { CommandDispatcher } from '../commands/dispatcher.ts';
import type { FleetView, AgentLink } from '../fleet/fleet-view.ts';
import type { Metrics } from '../metrics.ts';
import type { Store } from '../store/db.ts';
import type { MachineRecord } from '../store/types.ts';
import { TokenBucket } from './rate-limit.ts';
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

/** What a session is given of its authentication (store/machine-identity.ts `Authenticated`, narrowed). */
export interface SessionAuth {
  readonly machine: Pick<MachineRecord, 'name' | 'machineId' | 'credentialExpiresAt'>;
  readonly credential: string;
}

/** One agent connection: hello, then reports and heartbeats, bound to one machine. */
export class AgentSession implements AgentLink {
  private readonly ws: WebSocket;
  /** Only what a session needs of its machine: the whole record (its report, conditions) would stay alive per connection. */
  private readonly machine: Pick<MachineRecord, 'name' | 'machineId'>;
  private readonly deps: GatewayDeps;
  private readonly opts: GatewayOptions;
  private readonly bucket: TokenBucket;
  private phase: 'awaiting-hello' | 'ready' | 'closed' = 'awaiting-hello';
  private invalidFrames = 0;
  private lastSeq: number | null = null;
  private awaitingPong = false;
  private lastHeardAt: number;
  private lastRateWarning = 0;
  /** The credential this connection authenticated with: checked again at hello. */
  private credential: string | null;
  private credentialExpiresAt: number | null;
  /** A rotation sent and not yet confirmed saved by the agent. */
  private rotation: { id: string; expiresAt: number; sentAt: number } | null = null;
  private lastErrorLogAt = -Infinity;
  private errorsNotLogged = 0;
  /** Null once the hello came: a cleared timer would stay alive as long as the session. */
  private helloTimer: NodeJS.Timeout | null;
  /** Frees the admission slot: called once welcomed (or closed before). */
  private readonly onWelcomed: () => void;

  constructor(ws: WebSocket, auth: SessionAuth, deps: GatewayDeps, opts: GatewayOptions, onWelcomed: () => void, onClose: () => void) {
    this.ws = ws;
    this.onWelcomed = onWelcomed;
    this.lastHeardAt = deps.clock();
    this.machine = { name: auth.machine.name, machineId: auth.machine.machineId };
    this.credential = auth.credential;
    this.credentialExpiresAt = auth.machine.credentialExpiresAt ?? null;
    this.deps = deps;
    this.opts = opts;
    this.bucket = new TokenBucket(opts.rateLimit.perSecond, opts.rateLimit.burst, deps.clock());
    this.helloTimer = setTimeout(() => {
      this.fail(ProtocolErrorCode.unexpectedMessage, `no hello within ${HELLO_TIMEOUT_MS} ms`, CloseCode.protocolError);
    }, HELLO_TIMEOUT_MS).unref();
    ws.on('message', (data, isBinary) => this.onFrame(data, isBinary));
    ws.on('pong', () => {
      this.awaitingPong = false;
      this.lastHeardAt = this.deps.clock();
    });
    ws.on('error', (err) => {
      // ws reports frames beyond TRANSPORT_MAX_PAYLOAD here (and closes with 1009); anything else is a transport fault.
      const code = /max payload/i.test(err.message) ? ProtocolErrorCode.frameTooLarge : 'NK_GATEWAY_TRANSPORT';
      this.deps.metrics.framesRejected.inc({ code });
      this.log.warn({ err, code }, 'agent connection error');
    });
    ws.on('close', () => {
      clearTimeout(this.helloTimer ?? undefined);
      onWelcomed();
      this.phase = 'closed';
      this.deps.fleet.detach(this.machine.name, this);
      this.deps.metrics.connectedAgents.set(this.deps.fleet.connectedCount());
      onClose();
    });
  }

  /**
   * The session's logger, made when something is logged: kept per session, a child
   * logger and its bindings cost every connection a few hundred bytes for good.
   */
  private get log(): Logger {
    return this.deps.log.child({ machine: this.machine.name });
  }

  /** Pings a session heard from last before `quietSince`; drops one that missed the last ping. */
  ping(quietSince: number): void {
    if (this.phase === 'closed') return;
    if (this.lastHeardAt > quietSince) {
      this.awaitingPong = false;
      return;
    }
    if (this.awaitingPong) {
      this.log.warn('agent stopped answering pings; dropping the connection');
      this.ws.terminate();
      return;
    }
    this.awaitingPong = true;
    this.ws.ping();
  }

  resync(): void {
    this.send({ type: 'resync' });
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
      this.send({ type: 'credential', credential: next.credential, expiresInMs: ttl });
      this.log.info('sent the agent a new credential');
      return true;
    } catch (err) {
      this.log.warn({ err }, 'cannot rotate the machine credential now; will try again');
      return false;
    }
  }

  sendCommand(command: Command): boolean {
    if (this.phase !== 'ready' || this.ws.readyState !== this.ws.OPEN) return false;
    this.send(command);
    return true;
  }

  close(code: number, reason: string): void {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    this.ws.close(code, reason);
  }

  private send(msg: CoordinatorMessage): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(encode(msg));
  }

  private fail(code: string, message: string, closeCode: number): void {
    this.deps.metrics.framesRejected.inc({ code });
    this.log.warn({ code }, message);
    this.send(errorFrame(code, message, { fatal: true }));
    this.close(closeCode, code);
  }

  /** A bad frame: answer it; too many and the connection goes. */
  private reject(code: string, message: string): void {
    this.invalidFrames += 1;
    this.deps.metrics.framesRejected.inc({ code });
    if (this.invalidFrames > this.opts.maxInvalidFrames) {
      this.fail(code, `too many invalid frames (${this.invalidFrames}); last: ${message}`, CloseCode.protocolError);
      return;
    }
    this.log.debug({ code }, message);
    this.send(errorFrame(code, message));
  }

  private onFrame(data: RawData, isBinary: boolean): void {
    if (this.phase === 'closed') return;
    const now = this.deps.clock();
    this.lastHeardAt = now;
    const size = Buffer.isBuffer(data) ? data.length : Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : data.byteLength;
    if (size > MAX_FRAME_BYTES) {
      this.fail(ProtocolErrorCode.frameTooLarge, `frame of ${size} bytes exceeds the limit of ${MAX_FRAME_BYTES}`, CloseCode.messageTooBig);
      return;
    }
    if (!this.bucket.take(now)) {
      this.deps.metrics.framesRejected.inc({ code: ProtocolErrorCode.rateLimited });
      this.invalidFrames += 1;
      if (this.invalidFrames > this.opts.maxInvalidFrames * 10) {
        this.fail(ProtocolErrorCode.rateLimited, 'message rate limit exceeded persistently', CloseCode.rateLimited);
      } else if (now - this.lastRateWarning > 1000) {
        this.lastRateWarning = now;
        this.send(errorFrame(ProtocolErrorCode.rateLimited, `more than ${this.opts.rateLimit.perSecond} messages/s; frames are being dropped`, { retryAfterMs: 1000 }));
      }
      return;
    }
    if (isBinary) {
      this.reject(ProtocolErrorCode.binaryFrame, 'binary frames are not part of the protocol; send JSON text');
      return;
    }
    const frame = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(new Uint8Array(data));
    if (!isUtf8(frame)) {
      this.reject(ProtocolErrorCode.badJson, 'frame is not valid UTF-8 text');
      return;
    }
    const decoded = decodeAgentMessage(frame);
    if (!decoded.ok) {
      this.reject(decoded.error.code, decoded.error.message);
      return;
    }
    this.deps.metrics.framesReceived.inc({ type: decoded.message.type });
    const message = decoded.message;
    try {
      (this.deps.runAs ?? ((fn) => fn()))(() => this.handle(message));
    } catch (err) {
      // A frame we could not persist (say, a command result on a full disk) is not
      // acknowledged: the agent reconnects later, the open command is re-delivered and
      // answered again from the agent's journal. Never a crash (invariant 11).
      this.log.warn({ err, type: message.type }, 'could not handle an agent frame; asking the agent to come back later');
      this.deps.metrics.framesRejected.inc({ code: ProtocolErrorCode.tryAgainLater });
      this.send(errorFrame(ProtocolErrorCode.tryAgainLater, 'the coordinator cannot record this now; reconnect later', { fatal: true, retryAfterMs: 5000 }));
      this.close(CloseCode.tryAgainLater, ProtocolErrorCode.tryAgainLater);
    }
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
      this.onWelcomed();
      this.log.info({ agentVersion: msg.agentVersion }, 'agent connected');
      this.send({
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
