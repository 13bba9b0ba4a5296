/**
 * The transport half of an agent connection: everything that touches the socket and
 * the frame bytes. Size, rate limit, binary and UTF-8 checks, decoding against the
 * protocol's schemas, invalid-frame counting and error frames, ws pings, send and close.
 * What a valid message means is the logic half's (agent-session.ts); the two meet at
 * `TransportSink` and `SessionPort`, in one process or across the gateway IPC
 * (gateway-workers.ts), so a frame is judged by the same code in both modes.
 */
import { isUtf8 } from 'node:buffer';
import { WebSocket, type RawData } from 'ws';
import type { Logger } from '@nodekeeper/common';
import { CloseCode, MAX_FRAME_BYTES, ProtocolErrorCode, decodeAgentMessage, encode, errorFrame, type AgentMessage, type CoordinatorMessage } from '@nodekeeper/protocol';
import { TokenBucket } from './rate-limit.ts';

/** Where a transport hands what it received: the logic half, here or in the writer. */
export interface TransportSink {
  /** A frame that passed every check. */
  message(msg: AgentMessage): void;
  /** The connection is gone (either side closed it). */
  closed(): void;
}

/** What the logic half needs of the connection (AgentTransport, or its proxy over IPC). */
export interface SessionPort {
  send(msg: CoordinatorMessage): void;
  /** Answers a bad message with an error frame; too many and the connection goes. */
  reject(code: string, message: string): void;
  /** Sends a fatal error frame (with a retry hint when given) and closes. */
  fail(code: string, message: string, closeCode: number, retryAfterMs?: number): void;
  close(code: number, reason: string): void;
  readonly open: boolean;
}

/** Counted for /metrics (in a worker, summed and sent to the writer). */
export interface TransportCounters {
  received(type: string): void;
  rejected(code: string): void;
}

export interface TransportOptions {
  readonly rateLimit: { readonly perSecond: number; readonly burst: number };
  readonly maxInvalidFrames: number;
}

/**
 * An agent's WebSocket (the agents' ws server makes these, upgrade.ts). It carries its
 * transport, so the socket's listeners are functions shared by every connection rather
 * than closures of each: a closure and its context live as long as the connection.
 */
export class AgentSocket extends WebSocket {
  transport: AgentTransport | null = null;
}

export class AgentTransport implements SessionPort {
  private readonly ws: AgentSocket;
  private readonly opts: TransportOptions;
  private readonly counters: TransportCounters;
  private readonly clock: () => number;
  private readonly baseLog: Logger;
  private readonly bucket: TokenBucket;
  /** Set once the logic half is joined; frames before that cannot arrive (it is set in the upgrade callback). */
  sink: TransportSink | null = null;
  /** For log lines: the machine the credential speaks for. */
  private readonly machine: string;
  private closed = false;
  private invalidFrames = 0;
  private awaitingPong = false;
  private lastHeardAt: number;
  private lastRateWarning = 0;

  constructor(ws: AgentSocket, machine: string, opts: TransportOptions, counters: TransportCounters, clock: () => number, log: Logger) {
    this.ws = ws;
    this.machine = machine;
    this.opts = opts;
    this.counters = counters;
    this.clock = clock;
    this.baseLog = log;
    this.lastHeardAt = clock();
    this.bucket = new TokenBucket(opts.rateLimit.perSecond, opts.rateLimit.burst, this.lastHeardAt);
    ws.transport = this;
    ws.on('message', AgentTransport.#onMessage);
    ws.on('pong', AgentTransport.#onPong);
    ws.on('error', AgentTransport.#onError);
    ws.on('close', AgentTransport.#onClose);
  }

  // The socket's listeners (`this` is the socket).
  static #onMessage(this: WebSocket, data: RawData, isBinary: boolean): void {
    (this as AgentSocket).transport?.onFrame(data, isBinary);
  }

  static #onPong(this: WebSocket): void {
    const t = (this as AgentSocket).transport;
    if (t === null) return;
    t.awaitingPong = false;
    t.lastHeardAt = t.clock();
  }

  static #onError(this: WebSocket, err: Error): void {
    const t = (this as AgentSocket).transport;
    if (t === null) return;
    // ws reports frames beyond its maxPayload here (and closes with 1009); anything else is a transport fault.
    const code = /max payload/i.test(err.message) ? ProtocolErrorCode.frameTooLarge : 'NK_GATEWAY_TRANSPORT';
    t.counters.rejected(code);
    t.log.warn({ err, code }, 'agent connection error');
  }

  static #onClose(this: WebSocket): void {
    const t = (this as AgentSocket).transport;
    if (t === null) return;
    t.closed = true;
    t.sink?.closed();
  }

  /** Made when something is logged: a child logger kept per connection costs a few hundred bytes for good. */
  private get log(): Logger {
    return this.baseLog.child({ machine: this.machine });
  }

  get open(): boolean {
    return !this.closed && this.ws.readyState === this.ws.OPEN;
  }

  /** Pings a connection heard from last before `quietSince`; drops one that missed the last ping. */
  ping(quietSince: number): void {
    if (this.closed) return;
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

  send(msg: CoordinatorMessage): void {
    this.sendText(encode(msg));
  }

  /** An encoded frame (from the writer over IPC, already encoded there). */
  sendText(frame: string): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(frame);
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.ws.close(code, reason);
  }

  fail(code: string, message: string, closeCode: number, retryAfterMs?: number): void {
    this.counters.rejected(code);
    this.log.warn({ code }, message);
    this.send(errorFrame(code, message, retryAfterMs === undefined ? { fatal: true } : { fatal: true, retryAfterMs }));
    this.close(closeCode, code);
  }

  reject(code: string, message: string): void {
    this.invalidFrames += 1;
    this.counters.rejected(code);
    if (this.invalidFrames > this.opts.maxInvalidFrames) {
      this.fail(code, `too many invalid frames (${this.invalidFrames}); last: ${message}`, CloseCode.protocolError);
      return;
    }
    this.log.debug({ code }, message);
    this.send(errorFrame(code, message));
  }

  private onFrame(data: RawData, isBinary: boolean): void {
    if (this.closed) return;
    const now = this.clock();
    this.lastHeardAt = now;
    const size = Buffer.isBuffer(data) ? data.length : Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : data.byteLength;
    if (size > MAX_FRAME_BYTES) {
      this.fail(ProtocolErrorCode.frameTooLarge, `frame of ${size} bytes exceeds the limit of ${MAX_FRAME_BYTES}`, CloseCode.messageTooBig);
      return;
    }
    if (!this.bucket.take(now)) {
      this.counters.rejected(ProtocolErrorCode.rateLimited);
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
    this.counters.received(decoded.message.type);
    this.sink?.message(decoded.message);
  }
}
