/**
 * A gateway worker's agent connections: the upgrade asks the writer to admit it (the
 * writer runs the connection cap, the source limiter, the credential check and admission
 * control, as in-process), then the transport half (agent-transport.ts) runs here and
 * every valid message goes to the writer. Heartbeats, only contact, go in batches.
 * Nothing here decides anything about a machine: the writer owns all state.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { droppedLogLines, type Logger } from '@nodekeeper/common';
import { AgentTransport, type TransportCounters } from './agent-transport.ts';
import { agentWebSocketServer, bearer, refuseUpgrade } from './upgrade.ts';
import type { WorkerMessage, WorkerMetrics, WorkerSetup, WriterMessage } from './worker-ipc.ts';

/** How long heartbeats are gathered before one IPC message carries them. */
const HEARTBEAT_BATCH_MS = 100;
/** How often metric increments go to the writer. */
const METRICS_INTERVAL_MS = 1000;

interface Connection {
  phase: 'asking' | 'upgrading' | 'open' | 'closed';
  readonly req: IncomingMessage;
  readonly socket: Duplex;
  readonly head: Buffer;
  readonly started: number;
  transport: AgentTransport | null;
  welcomed: boolean;
}

const add = (m: Record<string, number>, k: string, n = 1) => {
  m[k] = (m[k] ?? 0) + n;
};

export class WorkerGateway {
  private readonly send: (m: WorkerMessage) => void;
  private readonly setup: WorkerSetup;
  private readonly log: Logger;
  private readonly wss;
  private readonly connections = new Map<number, Connection>();
  private nextId = 1;
  private heartbeats: number[] = [];
  private readonly timers: NodeJS.Timeout[];
  private metrics = WorkerGateway.emptyMetrics();
  /** Log lines this process had dropped at the last report (@nodekeeper/common's count). */
  private droppedReported = droppedLogLines();
  private readonly counters: TransportCounters = {
    received: (type) => add(this.metrics.received, type),
    rejected: (code) => add(this.metrics.rejected, code),
  };

  constructor(setup: WorkerSetup, send: (m: WorkerMessage) => void, log: Logger, openConnections: () => { agents: number; other: number }) {
    this.setup = setup;
    this.send = send;
    this.log = log;
    this.wss = agentWebSocketServer((code) => add(this.metrics.upgradesRejected, code));
    const pingMs = Math.max(1000, setup.heartbeatIntervalMs);
    this.timers = [
      setInterval(() => this.flushHeartbeats(), HEARTBEAT_BATCH_MS),
      setInterval(() => {
        const quietSince = Date.now() - pingMs;
        for (const c of this.connections.values()) c.transport?.ping(quietSince);
      }, pingMs),
      setInterval(() => {
        const dropped = droppedLogLines();
        this.send({ t: 'metrics', ...this.metrics, logLinesDropped: dropped - this.droppedReported, connections: openConnections() });
        this.droppedReported = dropped;
        this.metrics = WorkerGateway.emptyMetrics();
      }, METRICS_INTERVAL_MS),
    ];
    for (const t of this.timers) t.unref();
  }

  private static emptyMetrics(): { -readonly [K in keyof Omit<WorkerMetrics, 'connections' | 'logLinesDropped'>]: K extends 'upgradeSeconds' | 'handshakeSeconds' ? number[] : WorkerMetrics[K] } {
    return { received: {}, rejected: {}, upgradesRejected: {}, upgradeSeconds: [], handshakeSeconds: [], connectionsRefused: 0 };
  }

  /** Counted for the writer's /metrics: a TLS handshake, a connection refused over the cap. */
  handshake(seconds: number): void {
    this.metrics.handshakeSeconds.push(seconds);
  }

  refused(): void {
    this.metrics.connectionsRefused += 1;
  }

  /** An upgrade to the agent path: held until the writer answers. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const id = this.nextId++;
    const c: Connection = { phase: 'asking', req, socket, head, started: performance.now(), transport: null, welcomed: false };
    this.connections.set(id, c);
    socket.once('close', () => {
      // Once open, the transport reports its own close.
      if (c.phase === 'asking' || c.phase === 'upgrading') this.gone(id, c);
    });
    this.send({ t: 'upgrade', session: id, credential: bearer(req), source: req.socket.remoteAddress ?? 'unknown' });
  }

  /** What the writer says about a connection, or to all of them. */
  fromWriter(m: WriterMessage): void {
    if (m.t === 'setup' || m.t === 'tls' || m.t === 'tickets') return; // the server's, not the connections'
    const c = this.connections.get(m.session);
    if (c === undefined) return; // gone meanwhile: the writer hears `closed`
    switch (m.t) {
      case 'admitted':
        if (c.phase === 'asking') this.upgrade(m.session, m.machine, c);
        return;
      case 'refused':
        if (c.phase !== 'asking') return;
        c.phase = 'closed';
        this.connections.delete(m.session);
        refuseUpgrade(c.socket, m.refusal);
        return;
      case 'welcomed':
        c.welcomed = true;
        return;
      case 'send':
        c.transport?.sendText(m.frame);
        return;
      case 'reject':
        c.transport?.reject(m.code, m.message);
        return;
      case 'fail':
        c.transport?.fail(m.code, m.message, m.closeCode, m.retryAfterMs);
        return;
      case 'close':
        c.transport?.close(m.code, m.reason);
        return;
    }
  }

  private upgrade(id: number, machine: string, c: Connection): void {
    c.phase = 'upgrading';
    this.wss.handleUpgrade(c.req, c.socket, c.head, (ws) => {
      if (c.phase !== 'upgrading') return;
      c.phase = 'open';
      this.metrics.upgradeSeconds.push((performance.now() - c.started) / 1000);
      const transport = new AgentTransport(ws, machine, this.setup.transport, this.counters, Date.now, this.log);
      c.transport = transport;
      transport.sink = {
        message: (message) => {
          if (message.type === 'heartbeat' && c.welcomed) this.heartbeats.push(id);
          else this.send({ t: 'message', session: id, message });
        },
        closed: () => this.gone(id, c),
      };
      this.send({ t: 'opened', session: id });
    });
  }

  private gone(id: number, c: Connection): void {
    if (c.phase === 'closed') return;
    c.phase = 'closed';
    this.connections.delete(id);
    this.send({ t: 'closed', session: id });
  }

  private flushHeartbeats(): void {
    if (this.heartbeats.length === 0) return;
    const sessions = this.heartbeats;
    this.heartbeats = [];
    this.send({ t: 'heartbeats', sessions });
  }

  /** Closes every agent connection (the writer is gone or stopping). */
  close(code: number, reason: string): void {
    for (const t of this.timers) clearInterval(t);
    for (const c of this.connections.values()) c.transport?.close(code, reason);
    this.wss.close();
  }
}
