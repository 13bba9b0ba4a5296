/**
 * The coordinator's listening server (https, or http with --insecure) and its limits
 * against slow or greedy clients (invariant 11: a slow reader must not take the
 * coordinator down):
 * - a TLS handshake and a request's headers must arrive within headersTimeoutMs of
 *   connecting (a slowloris client trickling headers is answered 408 and closed);
 * - a whole request, body included, within requestTimeoutMs;
 * - an idle keep-alive connection is closed after keepAliveTimeoutMs;
 * - at most maxConnections connections that are not agent WebSockets. Agents have their
 *   own cap in the gateway; an upgraded connection leaves this count, so tens of
 *   thousands of agents never starve nkctl, and an HTTP flood never starves agents
 *   already connected.
 * Node checks the header and request deadlines every connectionsCheckingInterval (30 s
 * by default), so that interval is derived from the header timeout.
 */
import http from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import type { Logger } from '@nodekeeper/common';
import type { HttpLimits } from '../config.ts';
import type { TlsMaterial } from '../tls/pki.ts';
import type { ApiHandler } from './http-api.ts';
import { requestUrl } from './http-util.ts';
import { answerClientError, endWithError } from './socket-answers.ts';

export interface ServerHooks {
  /** A WebSocket upgrade to the agent path. */
  readonly agentUpgrade: (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void;
  /** The pathname upgrades are accepted on. */
  readonly agentPath: string;
  /** Counted for /metrics: a connection refused over the cap. */
  readonly refused: () => void;
  /** Observed for /metrics: a TLS handshake completed in this many seconds. */
  readonly handshake?: (seconds: number) => void;
  /**
   * How long a TLS session (ticket) may be resumed, in seconds. Node's default is 300 s:
   * too short for tickets kept across restarts and rotations (tls/ticket-keys.ts).
   */
  readonly tlsSessionSeconds?: number;
  readonly log: Logger;
}

export interface CoordinatorServer {
  readonly server: http.Server | https.Server;
  /** Connections open now: agent WebSockets and all others. */
  connections(): { agents: number; other: number };
}

const TIMEOUT_ANSWER = 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n';

/** Creates (but does not start) the server with its limits and the agents' upgrade path. */
export function createCoordinatorServer(tls: Pick<TlsMaterial, 'certPem' | 'keyPem'> | null, api: ApiHandler, limits: HttpLimits, hooks: ServerHooks): CoordinatorServer {
  const timing = {
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    connectionsCheckingInterval: Math.max(100, Math.min(5_000, Math.floor(limits.headersTimeoutMs / 4))),
  };
  const server = tls === null
    ? http.createServer(timing, api)
    : https.createServer({
      ...timing, cert: tls.certPem, key: tls.keyPem, handshakeTimeout: limits.headersTimeoutMs,
      // Node's default session context is a hash of process.argv: a restart with any flag
      // changed would refuse every ticket (full handshakes for the whole fleet).
      sessionIdContext: 'nodekeeper-coordinator',
      ...(hooks.tlsSessionSeconds === undefined ? {} : { sessionTimeout: hooks.tlsSessionSeconds }),
    }, api);
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;

  // TLS handshake times: from the TCP connection to the secure one. The TLS socket is
  // not the TCP socket 'connection' saw; the peer address and port join them. Kept in
  // start order, and a handshake still waiting after its timeout is over (Node has
  // destroyed the socket) is forgotten at the next connection: no listener per socket.
  const handshakes = new Map<string, number>();
  const peer = (s: { remoteAddress?: string | undefined; remotePort?: number | undefined }) => `${s.remoteAddress}|${s.remotePort}`;
  const handshakeStarted = (socket: Duplex) => {
    const now = performance.now();
    for (const [key, at] of handshakes) {
      if (now - at <= limits.headersTimeoutMs) break;
      handshakes.delete(key);
    }
    const key = peer(socket as Duplex & { remoteAddress?: string; remotePort?: number });
    handshakes.delete(key);
    handshakes.set(key, now);
  };
  server.on('secureConnection', (tlsSocket: { remoteAddress?: string | undefined; remotePort?: number | undefined }) => {
    const key = peer(tlsSocket);
    const started = handshakes.get(key);
    handshakes.delete(key);
    if (started !== undefined) hooks.handshake?.((performance.now() - started) / 1000);
  });

  // One listener function for every socket ('close' comes once): a closure per socket
  // would stay alive as long as the connection (thousands of agents).
  let open = 0;
  let agents = 0;
  const connectionClosed = () => (open -= 1);
  const agentClosed = () => (agents -= 1);
  server.on('connection', (socket: Duplex) => {
    if (open - agents >= limits.maxConnections) {
      hooks.refused();
      socket.destroy();
      return;
    }
    open += 1;
    socket.on('close', connectionClosed);
    if (tls !== null) handshakeStarted(socket);
  });
  server.on('upgrade', (req, socket: Duplex, head: Buffer) => {
    socket.on('error', destroyOnError);
    // requestUrl, not new URL: a target such as `//` must not throw in a listener.
    if (requestUrl(req)?.pathname !== hooks.agentPath) {
      endWithError(socket, 404, 'NK_HTTP_NOT_FOUND', `no WebSocket endpoint here; agents connect to ${hooks.agentPath}`);
      return;
    }
    // From here the connection is the gateway's (its own cap and admission control).
    agents += 1;
    socket.on('close', agentClosed);
    hooks.agentUpgrade(req, socket, head);
  });
  server.on('checkContinue', api.checkContinue);
  server.on('checkExpectation', api.checkExpectation);
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    // A header or request deadline passed: say so (as Node does without this listener).
    if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT' && socket.writable) {
      hooks.log.debug({ code: err.code }, 'slow HTTP client cut off');
      socket.end(TIMEOUT_ANSWER);
      return;
    }
    // Anything else the parser refused gets an answer with a code, not a reset.
    answerClientError(err, socket);
  });
  // node closes a CONNECT it has no listener for without a word; this is no proxy.
  server.on('connect', (_req, socket: Duplex) => {
    socket.on('error', () => socket.destroy());
    endWithError(socket, 405, 'NK_HTTP_METHOD_NOT_ALLOWED', 'CONNECT is not allowed: the coordinator is not a proxy');
  });
  return { server, connections: () => ({ agents, other: open - agents }) };
}

/** An upgraded socket's 'error': destroy it (shared by every socket; `this` is the socket). */
function destroyOnError(this: Duplex): void {
  this.destroy();
}
