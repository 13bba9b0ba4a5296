/**
 * Where agents connect. Authentication happens at the WebSocket upgrade (the machine
 * credential as a bearer token); after that the connection speaks for that machine
 * alone (architecture invariant 4). Every frame is size-limited, rate-limited and
 * validated; bad input is answered with a specific error frame and changes nothing.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { AppError } from '@nodekeeper/common';
import { CloseCode, MAX_FRAME_BYTES, ProtocolErrorCode } from '@nodekeeper/protocol';
import type { Authenticated } from '../store/machine-identity.ts';
import { UpgradeAdmission } from './admission.ts';
import { AgentSession, COORDINATOR_VERSION, type GatewayDeps, type GatewayOptions, type SessionAuth } from './agent-session.ts';

export { COORDINATOR_VERSION, type GatewayOptions };

/**
 * ws buffers frames up to this before our own size check runs, so an oversize frame
 * gets an NK_PROTO_FRAME_TOO_LARGE error frame before the 1009 close. Beyond it the
 * transport cuts the connection itself (a bare 1009) without reading the frame.
 */
const TRANSPORT_MAX_PAYLOAD = 2 * MAX_FRAME_BYTES;
/** Credential rotations started per ping round, so a fleet whose credentials all lapse together is spread out. */
const MAX_ROTATIONS_PER_ROUND = 200;

/** Reads `Authorization: Bearer <credential>`; null when absent or malformed. */
function bearer(req: IncomingMessage): string | null {
  const h = req.headers.authorization;
  if (typeof h !== 'string') return null;
  const m = /^Bearer ([^\s]{1,512})$/.exec(h);
  return m?.[1] ?? null;
}

const REASONS: Record<number, string> = { 400: 'Bad Request', 405: 'Method Not Allowed', 401: 'Unauthorized', 403: 'Forbidden', 429: 'Too Many Requests', 503: 'Service Unavailable' };

function refuseUpgrade(socket: Duplex, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
  const body = JSON.stringify({ code, message });
  const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  socket.end(
    `HTTP/1.1 ${status} ${REASONS[status] ?? 'Error'}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n${extra}\r\n${body}`,
  );
}

export class AgentGateway {
  // UTF-8 is checked by the session (NK_PROTO_BAD_JSON, the connection stays), not by
  // ws, whose 1007 close carries no code of ours.
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: TRANSPORT_MAX_PAYLOAD, perMessageDeflate: false, skipUTF8Validation: true, clientTracking: false });
  private readonly deps: GatewayDeps;
  private readonly opts: GatewayOptions;
  private readonly sessions = new Set<AgentSession>();
  /** Sessions by machine, welcomed or not: a revocation or re-enrollment closes them all. */
  private readonly byMachine = new Map<string, Set<AgentSession>>();
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
      const now = deps.clock();
      const quietSince = now - intervalMs;
      let rotations = 0;
      for (const s of this.sessions) {
        s.ping(quietSince);
        if (rotations < MAX_ROTATIONS_PER_ROUND && s.rotateCredentialIfDue(now)) rotations += 1;
      }
    }, intervalMs).unref();
    // A handshake ws itself refuses (no key, a version other than 13, a method other than
    // GET) is answered in our error format rather than ws's plain text.
    this.wss.on('wsClientError', (err: Error, socket: Duplex) => {
      deps.metrics.upgradesRejected.inc({ code: 'NK_HTTP_BAD_REQUEST' });
      if (/method/i.test(err.message)) refuseUpgrade(socket, 405, 'NK_HTTP_METHOD_NOT_ALLOWED', `invalid WebSocket handshake: ${err.message}; agents connect with GET`);
      else refuseUpgrade(socket, 400, 'NK_HTTP_BAD_REQUEST', `invalid WebSocket handshake: ${err.message}`);
    });
    deps.fleet.onCredentialsVoided((name, reason) => {
      for (const s of [...(this.byMachine.get(name) ?? [])]) s.close(CloseCode.revoked, reason);
    });
  }

  /** Handles an HTTP upgrade request for AGENT_PATH (@nodekeeper/protocol). */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const { metrics, store, log, authFailures, clock } = this.deps;
    const started = performance.now();
    const source = req.socket.remoteAddress ?? 'unknown';
    if (this.sessions.size >= this.opts.maxConnections) {
      metrics.upgradesRejected.inc({ code: ProtocolErrorCode.tryAgainLater });
      const retryS = 5 + Math.floor(Math.random() * 25);
      refuseUpgrade(socket, 503, ProtocolErrorCode.tryAgainLater, 'coordinator is at its connection limit', { 'Retry-After': String(retryS) });
      return;
    }
    // A source that keeps failing is turned away before any hashing or store lookup.
    const blockedS = authFailures.retryAfterS(source, clock());
    if (blockedS > 0) {
      metrics.upgradesRejected.inc({ code: 'NK_AUTH_TOO_MANY_FAILURES' });
      refuseUpgrade(socket, 429, 'NK_AUTH_TOO_MANY_FAILURES', `too many failed authentication attempts from this address; retry after ${blockedS} s`, { 'Retry-After': String(blockedS) });
      return;
    }
    // The credential is checked before admission: an unauthenticated crowd never takes
    // the admission slots real agents need.
    const credential = bearer(req);
    let auth: Authenticated;
    try {
      if (credential === null) throw new AppError('NK_AUTH_CREDENTIAL_MISSING', 'an agent must present its machine credential as a bearer token');
      auth = store.authenticateMachineCredential(credential);
    } catch (err) {
      const code = err instanceof AppError ? err.code : 'NK_AUTH_CREDENTIAL_INVALID';
      if (code.startsWith('NK_STORE_')) {
        // Our fault, not the agent's: not a failed authentication, and worth a retry.
        metrics.upgradesRejected.inc({ code });
        refuseUpgrade(socket, 503, code, 'the coordinator cannot check credentials right now; retry later', { 'Retry-After': '10' });
        return;
      }
      authFailures.failed(source, clock());
      metrics.upgradesRejected.inc({ code });
      log.warn({ code, remote: source }, 'agent connection refused');
      refuseUpgrade(socket, code === 'NK_MACHINE_REVOKED' ? 403 : 401, code, err instanceof Error ? err.message : 'authentication failed');
      return;
    }
    const verdict = this.admission.judge(clock());
    if (!verdict.admit) {
      metrics.upgradesDeferred.inc({ reason: verdict.reason });
      refuseUpgrade(socket, 503, ProtocolErrorCode.tryAgainLater, `coordinator is admitting agents gradually (${verdict.reason}); retry after ${verdict.retryAfterS} s`, { 'Retry-After': String(verdict.retryAfterS) });
      return;
    }
    // Only this much of the record goes on: whatever a closure here captures stays alive
    // as long as the socket (the store's record carries the last report and conditions).
    const name = auth.machine.name;
    const sessionAuth: SessionAuth = { machine: { name, machineId: auth.machine.machineId, credentialExpiresAt: auth.machine.credentialExpiresAt ?? null }, credential: credential! };
    // From here the connection holds an admission slot until it is welcomed or gone.
    let settled = false;
    const settle = () => {
      if (!settled) this.admission.settled();
      settled = true;
    };
    socket.once('close', settle);
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      metrics.upgradeDuration.observe((performance.now() - started) / 1000);
      const session = new AgentSession(ws, sessionAuth, this.deps, this.opts, settle, () => {
        this.sessions.delete(session);
        const set = this.byMachine.get(name);
        set?.delete(session);
        if (set?.size === 0) this.byMachine.delete(name);
      });
      this.sessions.add(session);
      const set = this.byMachine.get(name) ?? new Set<AgentSession>();
      set.add(session);
      this.byMachine.set(name, set);
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

