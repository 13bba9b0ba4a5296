/**
 * The writer's side of `--gateway-workers N`: forks the workers (worker-main.ts), gives
 * them the listen address and the TLS material over IPC, turns their upgrades into the
 * gateway's admit/open calls and their messages into the sessions' logic halves, and
 * restarts a worker that dies (its sessions are detached first; their agents reconnect
 * to the live workers). State and liveness stay here, with one owner.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { encode, type CoordinatorMessage } from '@nodekeeper/protocol';
import type { Logger } from '@nodekeeper/common';
import type { Metrics } from '../metrics.ts';
import type { TlsMaterial } from '../tls/pki.ts';
import type { TicketKeySet } from '../tls/ticket-keys.ts';
import type { AgentGateway } from './agent-gateway.ts';
import type { AgentSession, SessionAuth } from './agent-session.ts';
import type { SessionPort } from './agent-transport.ts';
import { parseWorkerMessage, type WorkerMessage, type WorkerSetup, type WriterMessage } from './worker-ipc.ts';

const RESTART_FIRST_MS = 1000;
const RESTART_CAP_MS = 30_000;
/** A worker that ran this long before dying starts its backoff over. */
const HEALTHY_RUN_MS = 60_000;

export interface GatewayWorkersDeps {
  readonly gateway: AgentGateway;
  readonly metrics: Metrics;
  readonly log: Logger;
  /** The program a worker runs (`<entry> gateway-worker`): the coordinator's own entry. */
  readonly entry: string;
}

/** The setup every worker gets; `worker` and `port` are filled in per worker. */
export type SharedSetup = Omit<WorkerSetup, 't' | 'worker' | 'port' | 'tls' | 'tickets'>;

/** A session of a worker, seen from the writer: its logic half talks to the socket over IPC. */
class RemotePort implements SessionPort {
  open = true;
  private readonly post: (m: WriterMessage) => void;
  private readonly session: number;

  constructor(post: (m: WriterMessage) => void, session: number) {
    this.post = post;
    this.session = session;
  }

  send(msg: CoordinatorMessage): void {
    if (!this.open) return;
    if (msg.type === 'welcome') this.post({ t: 'welcomed', session: this.session });
    this.post({ t: 'send', session: this.session, frame: encode(msg) });
  }

  reject(code: string, message: string): void {
    if (this.open) this.post({ t: 'reject', session: this.session, code, message });
  }

  fail(code: string, message: string, closeCode: number, retryAfterMs?: number): void {
    if (!this.open) return;
    this.open = false;
    this.post({ t: 'fail', session: this.session, code, message, closeCode, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) });
  }

  close(code: number, reason: string): void {
    if (!this.open) return;
    this.open = false;
    this.post({ t: 'close', session: this.session, code, reason });
  }
}

interface Worker {
  readonly index: number;
  child: ChildProcess | null;
  startedAt: number;
  failures: number;
  /** Admitted, the WebSocket not open yet: the admission slot is held. */
  readonly pending: Map<number, { auth: SessionAuth; settle: () => void }>;
  readonly sessions: Map<number, { session: AgentSession; port: RemotePort }>;
  connections: { agents: number; other: number };
  listening: ((port: number) => void) | null;
}

export class GatewayWorkers {
  private readonly deps: GatewayWorkersDeps;
  private readonly shared: SharedSetup;
  private readonly workers: Worker[];
  private tls: TlsMaterial | null;
  private tickets: TicketKeySet | null;
  private port = 0;
  private stopped = false;
  private readonly restartTimers = new Set<NodeJS.Timeout>();

  constructor(deps: GatewayWorkersDeps, count: number, shared: SharedSetup, tls: TlsMaterial | null, tickets: TicketKeySet | null) {
    this.deps = deps;
    this.shared = shared;
    this.tls = tls;
    this.tickets = tickets;
    this.workers = Array.from({ length: count }, (_, index) => ({ index, child: null, startedAt: 0, failures: 0, pending: new Map(), sessions: new Map(), connections: { agents: 0, other: 0 }, listening: null }));
  }

  /**
   * Starts the workers on the shared host and `port` and resolves with the port once all listen. With
   * port 0 the writer binds it first (SO_REUSEPORT) to learn a free port, the workers
   * bind the same, and the writer's listener closes: it never accepts a connection.
   */
  async start(port: number): Promise<number> {
    const host = this.shared.host;
    let holder: ReturnType<typeof createServer> | null = null;
    if (port === 0) {
      holder = createServer((s) => s.destroy());
      await new Promise<void>((resolve, reject) => {
        holder!.once('error', reject);
        holder!.listen({ host, port: 0, reusePort: true }, () => resolve());
      });
      port = (holder.address() as AddressInfo).port;
    }
    this.port = port;
    try {
      await Promise.all(this.workers.map((w) => new Promise<number>((resolve, reject) => {
        w.listening = resolve;
        this.spawn(w);
        w.child!.once('exit', (code, signal) => reject(new Error(`gateway worker ${w.index} exited (${code ?? signal}) before listening`)));
      })));
    } finally {
      holder?.close();
    }
    return port;
  }

  /** Open connections of all workers, for the nodekeeper_http_connections gauge. */
  connections(): { agents: number; other: number } {
    let agents = 0;
    let other = 0;
    for (const w of this.workers) {
      agents += w.connections.agents;
      other += w.connections.other;
    }
    return { agents, other };
  }

  /** A renewed serving certificate, for every worker (and the ones started later). */
  pushTls(m: TlsMaterial): void {
    this.tls = m;
    this.broadcast({ t: 'tls', certPem: m.certPem, keyPem: m.keyPem });
  }

  pushTickets(keys: TicketKeySet): void {
    this.tickets = keys;
    this.broadcast({ t: 'tickets', keys });
  }

  /** Stops the workers: the IPC channel closes and each exits, closing its agents' connections. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.restartTimers) clearTimeout(t);
    await Promise.all(this.workers.map(async (w) => {
      const child = w.child;
      if (child === null || child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.disconnect();
      const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(kill);
    }));
  }

  private broadcast(m: WriterMessage): void {
    for (const w of this.workers) if (w.child?.connected === true) w.child.send(m);
  }

  private spawn(w: Worker): void {
    const log = this.deps.log.child({ worker: w.index });
    // stdout is the coordinator's listening line: a worker writes nothing there.
    const child = fork(this.deps.entry, ['gateway-worker'], { serialization: 'advanced', stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    w.child = child;
    w.startedAt = Date.now();
    const post = (m: WriterMessage) => {
      if (child.connected) child.send(m);
    };
    post({ t: 'setup', worker: w.index, port: this.port, tls: this.tls === null ? null : { certPem: this.tls.certPem, keyPem: this.tls.keyPem }, tickets: this.tickets, ...this.shared });
    child.on('message', (raw) => {
      const parsed = parseWorkerMessage(raw);
      if (!parsed.ok) {
        log.error({ problem: parsed.problem }, 'malformed message from a gateway worker dropped');
        return;
      }
      try {
        this.receive(w, parsed.message, post);
      } catch (err) {
        log.error({ err, t: parsed.message.t }, 'a gateway worker message could not be handled');
      }
    });
    child.on('error', (err) => log.warn({ err }, 'gateway worker IPC error'));
    child.once('exit', (code, signal) => this.exited(w, child, code, signal));
  }

  private receive(w: Worker, m: WorkerMessage, post: (m: WriterMessage) => void): void {
    const { gateway } = this.deps;
    switch (m.t) {
      case 'listening':
        w.listening?.(m.port);
        w.listening = null;
        return;
      case 'upgrade': {
        const verdict = gateway.admit(m.credential, m.source);
        if (!verdict.ok) {
          const { ok: _ok, ...refusal } = verdict;
          post({ t: 'refused', session: m.session, refusal });
          return;
        }
        w.pending.set(m.session, { auth: verdict.auth, settle: verdict.settle });
        post({ t: 'admitted', session: m.session, machine: verdict.auth.machine.name });
        return;
      }
      case 'opened': {
        const p = w.pending.get(m.session);
        if (p === undefined) return;
        w.pending.delete(m.session);
        const port = new RemotePort(post, m.session);
        w.sessions.set(m.session, { session: gateway.open(p.auth, port), port });
        return;
      }
      case 'message':
        w.sessions.get(m.session)?.session.message(m.message);
        return;
      case 'heartbeats':
        for (const id of m.sessions) w.sessions.get(id)?.session.heartbeat();
        return;
      case 'closed': {
        w.pending.get(m.session)?.settle();
        w.pending.delete(m.session);
        const s = w.sessions.get(m.session);
        if (s === undefined) return;
        w.sessions.delete(m.session);
        s.port.open = false;
        s.session.closed();
        return;
      }
      case 'metrics':
        this.count(w, m);
        return;
    }
  }

  private count(w: Worker, m: Extract<WorkerMessage, { t: 'metrics' }>): void {
    const { metrics } = this.deps;
    for (const [type, n] of Object.entries(m.received)) metrics.frameReceived(type, n);
    for (const [code, n] of Object.entries(m.rejected)) metrics.framesRejected.inc({ code }, n);
    for (const [code, n] of Object.entries(m.upgradesRejected)) metrics.upgradesRejected.inc({ code }, n);
    for (const s of m.upgradeSeconds) metrics.upgradeDuration.observe(s);
    for (const s of m.handshakeSeconds) metrics.tlsHandshakeDuration.observe(s);
    if (m.connectionsRefused > 0) metrics.httpConnectionsRefused.inc(m.connectionsRefused);
    if (m.logLinesDropped > 0) metrics.logLinesDropped.inc(m.logLinesDropped);
    w.connections = m.connections;
  }

  /** A worker died: its sessions are detached (their agents redial the others) and it is started again with backoff. */
  private exited(w: Worker, child: ChildProcess, code: number | null, signal: string | null): void {
    if (w.child !== child) return;
    w.child = null;
    w.connections = { agents: 0, other: 0 };
    for (const p of w.pending.values()) p.settle();
    w.pending.clear();
    const sessions = [...w.sessions.values()];
    w.sessions.clear();
    for (const s of sessions) {
      s.port.open = false;
      s.session.closed();
    }
    if (this.stopped) return;
    w.failures = Date.now() - w.startedAt >= HEALTHY_RUN_MS ? 0 : w.failures + 1;
    const delay = Math.min(RESTART_CAP_MS, RESTART_FIRST_MS * 2 ** Math.max(0, w.failures - 1));
    this.deps.log.error({ worker: w.index, code, signal, sessions: sessions.length, restartInMs: delay }, 'gateway worker exited; its agents reconnect to the others, and it is started again');
    const timer = setTimeout(() => {
      this.restartTimers.delete(timer);
      if (!this.stopped) this.spawn(w);
    }, delay);
    this.restartTimers.add(timer);
  }
}
