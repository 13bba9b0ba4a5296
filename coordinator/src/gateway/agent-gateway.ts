/**
 * Where agents connect. Authentication happens at the WebSocket upgrade (the machine
 * credential as a bearer token); after that the connection speaks for that machine
 * alone (architecture invariant 4). Every frame is size-limited, rate-limited and
 * validated (agent-transport.ts); bad input is answered with a specific error frame and
 * changes nothing.
 *
 * The gateway is the writer's: it admits upgrades and owns every session's logic half,
 * whether the socket is in this process (handleUpgrade) or in a gateway worker
 * (gateway-workers.ts calls admit and open over IPC).
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { AppError } from '@nodekeeper/common';
import { CloseCode, ProtocolErrorCode } from '@nodekeeper/protocol';
import type { Authenticated } from '../store/machine-identity.ts';
import { UpgradeAdmission, type AdmissionVerdict } from './admission.ts';
import { AgentSession, COORDINATOR_VERSION, type GatewayDeps, type GatewayOptions, type SessionAuth, type SessionOwner } from './agent-session.ts';
import { AgentTransport, type SessionPort, type TransportCounters } from './agent-transport.ts';
import { agentWebSocketServer, bearer, refuseUpgrade, type UpgradeRefusal } from './upgrade.ts';

export { COORDINATOR_VERSION, type GatewayOptions };

/** Credential rotations started per ping round, so a fleet whose credentials all lapse together is spread out. */
const MAX_ROTATIONS_PER_ROUND = 200;

/** The writer's answer to an upgrade: admitted (holding an admission slot until settled), or refused. */
export type UpgradeVerdict =
  | { readonly ok: true; readonly auth: SessionAuth; readonly settle: () => void }
  | ({ readonly ok: false } & UpgradeRefusal);

/** The frame counters of this process's transports, straight into /metrics. */
export function metricCounters(metrics: GatewayDeps['metrics']): TransportCounters {
  return { received: metrics.frameReceived, rejected: (code) => metrics.framesRejected.inc({ code }) };
}

export class AgentGateway implements SessionOwner {
  private readonly wss;
  private readonly deps: GatewayDeps;
  private readonly opts: GatewayOptions;
  private readonly sessions = new Set<AgentSession>();
  /** The transports of this process (in-process mode): pinged here. */
  private readonly local = new Set<AgentTransport>();
  /** Sessions by machine, welcomed or not: a revocation or re-enrollment closes them all (mostly one: an array, not a Set). */
  private readonly byMachine = new Map<string, AgentSession[]>();
  private readonly pingTimer: NodeJS.Timeout;
  private readonly admission: UpgradeAdmission;
  private readonly counters: TransportCounters;

  constructor(deps: GatewayDeps, opts: GatewayOptions) {
    this.deps = deps;
    this.opts = opts;
    this.counters = metricCounters(deps.metrics);
    this.admission = new UpgradeAdmission(opts.admission, deps.clock());
    this.wss = agentWebSocketServer((code) => deps.metrics.upgradesRejected.inc({ code }));
    // ws-level pings find dead TCP connections that never say goodbye; a session that
    // sent anything within the interval is alive, and is not pinged. (A worker pings its own.)
    const intervalMs = Math.max(1000, opts.heartbeatIntervalMs);
    this.pingTimer = setInterval(() => {
      const now = deps.clock();
      const quietSince = now - intervalMs;
      // forEach, not for-of: this runs too rarely to be optimized, and unoptimized for-of
      // over a Set makes an iterator result per element (two a machine a round).
      this.local.forEach((t) => t.ping(quietSince));
      let rotations = 0;
      this.sessions.forEach((s) => {
        if (rotations < MAX_ROTATIONS_PER_ROUND && s.rotateCredentialIfDue(now)) rotations += 1;
      });
    }, intervalMs).unref();
    deps.fleet.onCredentialsVoided((name, reason) => {
      for (const s of this.byMachine.get(name) ?? []) s.close(CloseCode.revoked, reason);
    });
  }

  /**
   * Decides an upgrade from `source` presenting `credential`: the connection cap, the
   * source's failed authentications, the credential, then admission control.
   */
  admit(credential: string | null, source: string): UpgradeVerdict {
    const { metrics, store, log, authFailures, clock } = this.deps;
    if (this.sessions.size >= this.opts.maxConnections) {
      metrics.upgradesRejected.inc({ code: ProtocolErrorCode.tryAgainLater });
      return { ok: false, status: 503, code: ProtocolErrorCode.tryAgainLater, message: 'coordinator is at its connection limit', retryAfterS: 5 + Math.floor(Math.random() * 25) };
    }
    // A source that keeps failing is turned away before any hashing or store lookup.
    const blockedS = authFailures.retryAfterS(source, clock());
    if (blockedS > 0) {
      metrics.upgradesRejected.inc({ code: 'NK_AUTH_TOO_MANY_FAILURES' });
      return { ok: false, status: 429, code: 'NK_AUTH_TOO_MANY_FAILURES', message: `too many failed authentication attempts from this address; retry after ${blockedS} s`, retryAfterS: blockedS };
    }
    // A full door refuses before the credential check (admission.ts, refuseIfFull); any
    // other admission is decided after it: an unauthenticated crowd never takes the
    // admission slots real agents need.
    const full = this.admission.refuseIfFull(clock());
    if (full !== null && !full.admit) return this.deferred(full);
    let auth: Authenticated;
    try {
      if (credential === null) throw new AppError('NK_AUTH_CREDENTIAL_MISSING', 'an agent must present its machine credential as a bearer token');
      auth = store.authenticateMachineCredential(credential);
    } catch (err) {
      const code = err instanceof AppError ? err.code : 'NK_AUTH_CREDENTIAL_INVALID';
      metrics.upgradesRejected.inc({ code });
      if (code.startsWith('NK_STORE_')) {
        // Our fault, not the agent's: not a failed authentication, and worth a retry.
        return { ok: false, status: 503, code, message: 'the coordinator cannot check credentials right now; retry later', retryAfterS: 10 };
      }
      authFailures.failed(source, clock());
      log.warn({ code, remote: source }, 'agent connection refused');
      return { ok: false, status: code === 'NK_MACHINE_REVOKED' ? 403 : 401, code, message: err instanceof Error ? err.message : 'authentication failed' };
    }
    const verdict = this.admission.judge(clock());
    if (!verdict.admit) return this.deferred(verdict);
    // Only this much of the record goes on: whatever a closure here captures stays alive
    // as long as the socket (the store's record carries the last report and conditions).
    // The fleet view's copies of the name and id where equal: one copy a machine, not one a holder.
    const own = this.deps.fleet.ownStrings(auth.machine.name);
    const name = own?.name ?? auth.machine.name;
    const machineId = own?.machineId === auth.machine.machineId ? own.machineId : auth.machine.machineId;
    const sessionAuth: SessionAuth = { machine: { name, machineId, credentialExpiresAt: auth.machine.credentialExpiresAt ?? null }, credential: credential! };
    // From here the connection holds an admission slot until it is welcomed or gone.
    let settled = false;
    const settle = () => {
      if (!settled) this.admission.settled();
      settled = true;
    };
    return { ok: true, auth: sessionAuth, settle };
  }

  /** The answer to an upgrade admission control deferred. */
  private deferred(verdict: Extract<AdmissionVerdict, { admit: false }>): UpgradeVerdict {
    this.deps.metrics.upgradesDeferred.inc({ reason: verdict.reason });
    this.deps.fleet.admissionRefused();
    return { ok: false, status: 503, code: ProtocolErrorCode.tryAgainLater, message: `coordinator is admitting agents gradually (${verdict.reason}); retry after ${verdict.retryAfterS} s`, retryAfterS: verdict.retryAfterS };
  }

  /**
   * Joins an admitted connection's port to a new session (the logic half), registered by
   * machine. The session holds the verdict's admission slot from here (the verdict's
   * settle must not be called for it any more).
   */
  open(auth: SessionAuth, port: SessionPort): AgentSession {
    const name = auth.machine.name;
    const session = new AgentSession(port, auth, this.deps, this.opts, this);
    this.sessions.add(session);
    const list = this.byMachine.get(name);
    if (list === undefined) this.byMachine.set(name, [session]);
    else list.push(session);
    return session;
  }

  slotFreed(): void {
    this.admission.settled();
  }

  sessionClosed(session: AgentSession, port: SessionPort): void {
    this.sessions.delete(session);
    if (port instanceof AgentTransport) this.local.delete(port);
    const name = session.machineName;
    const list = this.byMachine.get(name)?.filter((s) => s !== session) ?? [];
    if (list.length === 0) this.byMachine.delete(name);
    else this.byMachine.set(name, list);
  }

  /** Handles an HTTP upgrade request for AGENT_PATH (@nodekeeper/protocol), in this process. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const started = performance.now();
    const verdict = this.admit(bearer(req), req.socket.remoteAddress ?? 'unknown');
    if (!verdict.ok) {
      refuseUpgrade(socket, verdict);
      return;
    }
    // Until the session exists, a socket closed mid-upgrade frees the slot; then the session does.
    socket.on('close', verdict.settle);
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      socket.removeListener('close', verdict.settle);
      this.deps.metrics.upgradeDuration.observe((performance.now() - started) / 1000);
      const transport = new AgentTransport(ws, verdict.auth.machine.name, this.opts, this.counters, this.deps.clock, this.deps.log);
      this.local.add(transport);
      transport.sink = this.open(verdict.auth, transport);
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
