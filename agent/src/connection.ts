/**
 * The agent's one connection to the coordinator. It dials out (the agent never
 * listens), authenticates with its machine credential, says hello, and keeps the
 * connection alive:
 * - reconnects with exponential backoff and full jitter, capped, and honours a server's
 *   Retry-After (HTTP 503 at upgrade) or retryAfterMs (error frame);
 * - a watchdog redials a connection on which nothing (no frame, ping or pong) arrived
 *   for 3 heartbeats (at least `minWatchdogMs`), which catches half-open TCP connections
 *   and a wedged coordinator. It pings only a connection quiet for a third of that, so a
 *   fleet's idle connections cost the coordinator one pong per agent now and then.
 * - keeps the last TLS session ticket and offers it at the next dial, so a reconnect
 *   (after a coordinator restart, which keeps its ticket keys) is a resumed handshake:
 *   in a storm of thousands of agents, full handshakes are most of the coordinator's CPU.
 *   A ticket the coordinator no longer accepts just costs a full handshake, verified
 *   against the pinned CA as always.
 */
import { isIP, type createConnection } from 'node:net';
import tls from 'node:tls';
import { WebSocket, type RawData } from 'ws';
import { backoffDelay, type BackoffPolicy, type Logger } from '@nodekeeper/common';
import {
  AGENT_PATH,
  CloseCode,
  MAX_FRAME_BYTES,
  ProtocolErrorCode,
  decodeCoordinatorMessage,
  encode,
  errorFrame,
  type AgentMessage,
  type CoordinatorMessage,
  type Hello,
  type Welcome,
} from '@nodekeeper/protocol';

const HANDSHAKE_TIMEOUT_MS = 10_000;
/** Default least silence before the watchdog redials (see ConnectionOptions.minWatchdogMs). */
export const MIN_WATCHDOG_MS = 15_000;

export interface ConnectionOptions {
  readonly server: string;
  /** The machine credential to present; read at every dial (it is rotated over the connection). */
  readonly credential: () => string;
  readonly caPem: string | null;
  /**
   * The TLS context to dial with, built from caPem by whoever shares it among many
   * connections (the fleet simulator); absent, each connection builds one from caPem at
   * its first dial and keeps it (building one parses the CA: about 0.5 ms).
   */
  readonly secureContext?: tls.SecureContext;
  readonly backoff: BackoffPolicy;
  readonly log: Logger;
  /** Builds the hello for each new connection (identity may have changed). */
  readonly hello: () => Promise<Hello>;
  /** Called once a connection is welcomed; the caller starts reporting. */
  readonly onReady: (welcome: Welcome) => void;
  /** Called for every later valid message (command, resync, error). */
  readonly onMessage: (msg: CoordinatorMessage) => void;
  /** Called when a ready connection is lost. */
  readonly onLost: () => void;
  /** Called when the coordinator refuses the credential itself (revoked, unknown). */
  readonly onRefused?: (code: string, message: string) => void;
  readonly random?: () => number;
  /** Source address to dial from (the fleet simulator spreads agents over 127.0.0.x). */
  readonly localAddress?: string;
  /**
   * Least silence before the watchdog redials (default 15 s): a coordinator busy for a
   * few seconds (a restart's reconnect storm) must not make the fleet redial at once.
   */
  readonly minWatchdogMs?: number;
}

export class CoordinatorConnection {
  private readonly opts: ConnectionOptions;
  private ws: WebSocket | null = null;
  private ready = false;
  private stopped = false;
  private attempt = 0;
  private retryAfterMs = 0;
  private lastHeard = 0;
  private heartbeatMs = 10_000;
  private redialTimer: NodeJS.Timeout | null = null;
  private watchdogTimer: NodeJS.Timeout | null = null;
  /** The last TLS session ticket the coordinator sent, offered at the next dial. */
  private tlsSession: Buffer | undefined;
  private resumed: boolean | null = null;

  constructor(opts: ConnectionOptions) {
    this.opts = opts;
  }

  get isReady(): boolean {
    return this.ready;
  }

  /** Whether the current connection's TLS handshake resumed a session (null: none yet, or plain ws). */
  get tlsResumed(): boolean | null {
    return this.resumed;
  }

  /** The pinned CA's TLS context, built at the first wss dial (ConnectionOptions.secureContext). */
  private context: tls.SecureContext | undefined;

  /** ws's own TLS dial (tls.connect, SNI only for a name), plus the session ticket kept. */
  private readonly tlsDial = ((options: tls.ConnectionOptions) => {
    const host = options.host ?? '';
    const ca = this.opts.caPem;
    if (this.context === undefined && ca !== null) this.context = this.opts.secureContext ?? tls.createSecureContext({ ca });
    const socket = tls.connect({
      ...options,
      ...(this.context === undefined ? {} : { secureContext: this.context }),
      // The request's path, which tls.connect would take for a Unix socket (ws clears it too).
      path: undefined,
      servername: options.servername ?? (isIP(host) === 0 ? host : ''),
      ...(this.tlsSession === undefined ? {} : { session: this.tlsSession }),
    });
    socket.on('session', (ticket: Buffer) => (this.tlsSession = ticket));
    socket.once('secureConnect', () => (this.resumed = socket.isSessionReused()));
    return socket;
  }) as unknown as typeof createConnection;

  start(): void {
    this.stopped = false;
    void this.dial();
  }

  /** Sends a message if a welcomed connection is up; false otherwise. */
  send(msg: AgentMessage): boolean {
    if (!this.ready || this.ws === null || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(encode(msg));
    return true;
  }

  /** Closes the connection (1001, going away); resolves once the socket is closed. */
  stop(): Promise<void> {
    this.stopped = true;
    if (this.redialTimer !== null) clearTimeout(this.redialTimer);
    this.stopWatchdog();
    const ws = this.ws;
    this.ws = null;
    if (ws === null || ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
    ws.close(CloseCode.goingAway, 'agent stopping');
    return closed;
  }

  private url(): string {
    const u = new URL(AGENT_PATH, this.opts.server);
    u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
    return u.toString();
  }

  private async dial(): Promise<void> {
    if (this.stopped) return;
    const { log } = this.opts;
    let hello: Hello;
    try {
      hello = await this.opts.hello();
    } catch (err) {
      log.error({ err }, 'cannot build hello; retrying');
      this.scheduleRedial();
      return;
    }
    // stop() may have come while the hello was being built.
    if (this.stopped) return;
    const ws = new WebSocket(this.url(), {
      headers: { Authorization: `Bearer ${this.opts.credential()}` },
      maxPayload: MAX_FRAME_BYTES,
      perMessageDeflate: false,
      handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
      ...(this.url().startsWith('wss:') ? { createConnection: this.tlsDial } : {}),
      ...(this.opts.localAddress === undefined ? {} : { localAddress: this.opts.localAddress }),
    });
    this.ws = ws;
    let welcomed = false;
    const welcomeTimer = setTimeout(() => {
      if (!welcomed) {
        log.warn('no welcome from the coordinator in time; redialling');
        ws.terminate();
      }
    }, HANDSHAKE_TIMEOUT_MS);

    ws.on('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.length < 16 && chunks.push(c));
      res.on('end', () => {
        let code = `HTTP_${res.statusCode}`;
        let message = res.statusMessage ?? '';
        try {
          const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { code?: unknown; message?: unknown };
          if (typeof body.code === 'string') code = body.code;
          if (typeof body.message === 'string') message = body.message;
        } catch {
          // not our JSON error body: keep the HTTP status
        }
        const retryAfter = Number(res.headers['retry-after']);
        if (Number.isFinite(retryAfter) && retryAfter > 0) this.retryAfterMs = Math.min(retryAfter, 3600) * 1000;
        if (res.statusCode === 401 || res.statusCode === 403) {
          log.error({ code, status: res.statusCode }, `coordinator refused this machine's credential: ${message}`);
          this.opts.onRefused?.(code, message);
        } else {
          log.warn({ code, status: res.statusCode }, `connection refused: ${message}`);
        }
        ws.terminate();
      });
    });
    ws.on('open', () => {
      this.lastHeard = Date.now();
      ws.send(encode(hello));
    });
    ws.on('message', (data: RawData, isBinary: boolean) => {
      this.lastHeard = Date.now();
      if (isBinary) {
        ws.send(encode(errorFrame(ProtocolErrorCode.binaryFrame, 'binary frames are not part of the protocol')));
        return;
      }
      const decoded = decodeCoordinatorMessage(Buffer.isBuffer(data) ? data : Buffer.from(data as ArrayBuffer));
      if (!decoded.ok) {
        // The coordinator is the trusted side, but its frames are validated all the same.
        log.warn({ code: decoded.error.code }, `invalid frame from coordinator: ${decoded.error.message}`);
        ws.send(encode(errorFrame(decoded.error.code, decoded.error.message)));
        return;
      }
      const msg = decoded.message;
      if (msg.type === 'error' && msg.retryAfterMs !== undefined) this.retryAfterMs = msg.retryAfterMs;
      if (!welcomed) {
        if (msg.type === 'welcome') {
          welcomed = true;
          clearTimeout(welcomeTimer);
          this.ready = true;
          this.attempt = 0;
          this.retryAfterMs = 0;
          this.heartbeatMs = msg.heartbeatIntervalMs;
          this.startWatchdog(ws);
          log.info({ machine: msg.machine, protocol: msg.protocolVersion }, 'connected to coordinator');
          this.opts.onReady(msg);
        } else if (msg.type === 'error') {
          log.error({ code: msg.code }, `coordinator refused the hello: ${msg.message}`);
        }
        return;
      }
      this.opts.onMessage(msg);
    });
    const heard = () => {
      this.lastHeard = Date.now();
    };
    ws.on('pong', heard);
    ws.on('ping', heard);
    ws.on('error', (err) => {
      log.warn({ err: { message: err.message } }, 'connection error');
    });
    ws.on('close', (code, reason) => {
      clearTimeout(welcomeTimer);
      this.stopWatchdog();
      const wasReady = this.ready;
      this.ready = false;
      if (this.ws === ws) this.ws = null;
      if (wasReady) {
        log.warn({ code, reason: reason.toString() }, 'connection to coordinator lost');
        this.opts.onLost();
      }
      if (code === CloseCode.revoked) this.opts.onRefused?.('NK_MACHINE_REVOKED', reason.toString());
      this.scheduleRedial();
    });
  }

  private scheduleRedial(): void {
    if (this.stopped) return;
    const delay = backoffDelay(this.opts.backoff, this.attempt, this.opts.random, this.retryAfterMs);
    this.attempt += 1;
    this.retryAfterMs = 0;
    this.opts.log.debug({ delayMs: delay, attempt: this.attempt }, 'redialling');
    this.redialTimer = setTimeout(() => void this.dial(), delay);
  }

  /** Terminates the socket when nothing was heard for 3 heartbeats; pings when quiet for one. */
  private startWatchdog(ws: WebSocket): void {
    this.stopWatchdog();
    const watchdogMs = Math.max(3 * this.heartbeatMs, this.opts.minWatchdogMs ?? MIN_WATCHDOG_MS);
    // Checks come once a heartbeat: ping once a third of the limit has passed, less half a
    // heartbeat so the check that finds it is not one interval late (two pings before giving up).
    this.watchdogTimer = setInterval(() => {
      const silentMs = Date.now() - this.lastHeard;
      if (silentMs > watchdogMs) {
        this.opts.log.warn({ silentMs }, 'coordinator stopped answering; redialling');
        ws.terminate();
        return;
      }
      if (silentMs >= watchdogMs / 3 - this.heartbeatMs / 2 && ws.readyState === WebSocket.OPEN) ws.ping();
    }, this.heartbeatMs);
  }

  private stopWatchdog(): void {
    if (this.watchdogTimer !== null) clearInterval(this.watchdogTimer);
    this.watchdogTimer = null;
  }
}
