/**
 * Where agents connect. Authentication happens at the WebSocket upgrade (the machine
 * credential as a bearer token); after that the connection speaks for that machine
 * alone (architecture invariant 4). Every frame is size-limited, rate-limited and
 * validated; bad input is answered with a specific error frame and changes nothing.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket, type RawData } from 'ws';
import { AppError, type Logger } from '@nodekeeper/common';
import {
  CloseCode,
  MAX_FRAME_BYTES,
  ProtocolErrorCode,
  decodeAgentMessage,
  encode,
  errorFrame,
  negotiateVersion,
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
import { UpgradeAdmission, type AdmissionOptions } from './admission.ts';

export const AGENT_PATH = '/v1/agent/connect';
export const COORDINATOR_VERSION = '0.1.0';
/** An agent must say hello this soon after connecting. */
const HELLO_TIMEOUT_MS = 10_000;

export interface GatewayOptions {
  readonly heartbeatIntervalMs: number;
  readonly rateLimit: { readonly perSecond: number; readonly burst: number };
  readonly maxInvalidFrames: number;
  readonly maxConnections: number;
  readonly admission: AdmissionOptions;
}

interface GatewayDeps {
  readonly store: Store;
  readonly fleet: FleetView;
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly commands: CommandDispatcher;
  /** Runs the handling of each frame (the coordinator labels its store writes with it). */
  readonly runAs?: <T>(fn: () => T) => T;
}

/** Reads `Authorization: Bearer <credential>`; null when absent or malformed. */
function bearer(req: IncomingMessage): string | null {
  const h = req.headers.authorization;
  if (typeof h !== 'string') return null;
  const m = /^Bearer ([^\s]{1,512})$/.exec(h);
  return m?.[1] ?? null;
}

function refuseUpgrade(socket: Duplex, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
  const body = JSON.stringify({ code, message });
  const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  socket.end(
    `HTTP/1.1 ${status} ${status === 401 ? 'Unauthorized' : status === 403 ? 'Forbidden' : 'Service Unavailable'}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n${extra}\r\n${body}`,
  );
}

export class AgentGateway {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES, perMessageDeflate: false });
  private readonly deps: GatewayDeps;
  private readonly opts: GatewayOptions;
  private readonly sessions = new Set<AgentSession>();
  private readonly pingTimer: NodeJS.Timeout;
  private readonly admission: UpgradeAdmission;

  constructor(deps: GatewayDeps, opts: GatewayOptions) {
    this.deps = deps;
    this.opts = opts;
    this.admission = new UpgradeAdmission(opts.admission, deps.clock());
    // ws-level pings find dead TCP connections that never say goodbye; a session that
    // sent anything within the interval is alive, and is not pinged.
    const intervalMs = Math.max(1000, opts.heartbeatIntervalMs);
    this.pingTimer = setInterval(() => {
      const quietSince = deps.clock() - intervalMs;
      for (const s of this.sessions) s.ping(quietSince);
    }, intervalMs).unref();
  }

  /** Handles an HTTP upgrade request for AGENT_PATH. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const { metrics, store, log } = this.deps;
    if (this.sessions.size >= this.opts.maxConnections) {
      metrics.upgradesRejected.inc({ code: ProtocolErrorCode.tryAgainLater });
      const retryS = 5 + Math.floor(Math.random() * 25);
      refuseUpgrade(socket, 503, ProtocolErrorCode.tryAgainLater, 'coordinator is at its connection limit', { 'Retry-After': String(retryS) });
      return;
    }
    const verdict = this.admission.judge(this.deps.clock());
    if (!verdict.admit) {
      metrics.upgradesDeferred.inc({ reason: verdict.reason });
      refuseUpgrade(socket, 503, ProtocolErrorCode.tryAgainLater, `coordinator is admitting agents gradually (${verdict.reason}); retry after ${verdict.retryAfterS} s`, { 'Retry-After': String(verdict.retryAfterS) });
      return;
    }
    // From here the connection holds an admission slot until it is welcomed or gone.
    let settled = false;
    const settle = () => {
      if (!settled) this.admission.settled();
      settled = true;
    };
    const credential = bearer(req);
    let machine: MachineRecord;
    try {
      if (credential === null) throw new AppError('NK_AUTH_CREDENTIAL_MISSING', 'an agent must present its machine credential as a bearer token');
      machine = store.authenticateMachine(credential);
    } catch (err) {
      const code = err instanceof AppError ? err.code : 'NK_AUTH_CREDENTIAL_INVALID';
      metrics.upgradesRejected.inc({ code });
      log.warn({ code, remote: req.socket.remoteAddress }, 'agent connection refused');
      refuseUpgrade(socket, code === 'NK_MACHINE_REVOKED' ? 403 : 401, code, err instanceof Error ? err.message : 'authentication failed');
      settle();
      return;
    }
    socket.once('close', settle);
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      const session = new AgentSession(ws, machine, this.deps, this.opts, settle, () => this.sessions.delete(session));
      this.sessions.add(session);
    });
  }

  /** Closes every agent connection (shutdown). */
  close(): void {
    clearInterval(this.pingTimer);
    this.admission.stop();
    for (const s of this.sessions) s.close(CloseCode.goingAway, 'coordinator shutting down');
    this.wss.close();
  }
}

/** One agent connection: hello, then reports and heartbeats, bound to one machine. */
class AgentSession implements AgentLink {
  private readonly ws: WebSocket;
  private readonly machine: MachineRecord;
  private readonly deps: GatewayDeps;
  private readonly opts: GatewayOptions;
  private readonly bucket: TokenBucket;
  private readonly log: Logger;
  private phase: 'awaiting-hello' | 'ready' | 'closed' = 'awaiting-hello';
  private invalidFrames = 0;
  private lastSeq: number | null = null;
  private awaitingPong = false;
  private lastHeardAt: number;
  private lastRateWarning = 0;
  private readonly helloTimer: NodeJS.Timeout;
  /** Frees the admission slot: called once welcomed (or closed before). */
  private readonly onWelcomed: () => void;

  constructor(ws: WebSocket, machine: MachineRecord, deps: GatewayDeps, opts: GatewayOptions, onWelcomed: () => void, onClose: () => void) {
    this.ws = ws;
    this.onWelcomed = onWelcomed;
    this.lastHeardAt = deps.clock();
    this.machine = machine;
    this.deps = deps;
    this.opts = opts;
    this.log = deps.log.child({ machine: machine.name });
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
      // ws reports oversize frames here (and closes with 1009); anything else is a transport fault.
      const code = /max payload/i.test(err.message) ? ProtocolErrorCode.frameTooLarge : 'NK_GATEWAY_TRANSPORT';
      this.deps.metrics.framesRejected.inc({ code });
      this.log.warn({ err, code }, 'agent connection error');
    });
    ws.on('close', () => {
      clearTimeout(this.helloTimer);
      onWelcomed();
      this.phase = 'closed';
      this.deps.fleet.detach(this.machine.name, this);
      this.deps.metrics.connectedAgents.set(this.deps.fleet.connectedCount());
      onClose();
    });
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
      clearTimeout(this.helloTimer);
      const version = negotiateVersion(msg.minProtocolVersion, msg.maxProtocolVersion);
      if (version === null) {
        this.fail(ProtocolErrorCode.unsupportedVersion, `agent speaks protocol ${msg.minProtocolVersion}-${msg.maxProtocolVersion}; this coordinator speaks 1`, CloseCode.unsupportedVersion);
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
      case 'error':
        this.log.warn({ code: msg.code }, `agent reported an error: ${msg.message}`);
        return;
    }
  }
}
