/**
 * The pieces of an agent's WebSocket upgrade that run where the socket is: the bearer
 * parse, the refusal in our error format, and the ws server's settings. Shared by the
 * in-process gateway (agent-gateway.ts) and a gateway worker (worker-gateway.ts).
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type Server } from 'ws';
import { MAX_FRAME_BYTES } from '@nodekeeper/protocol';
import { AgentSocket } from './agent-transport.ts';

/**
 * ws buffers frames up to this before our own size check runs, so an oversize frame
 * gets an NK_PROTO_FRAME_TOO_LARGE error frame before the 1009 close. Beyond it the
 * transport cuts the connection itself (a bare 1009) without reading the frame.
 */
const TRANSPORT_MAX_PAYLOAD = 2 * MAX_FRAME_BYTES;

/** Reads `Authorization: Bearer <credential>`; null when absent or malformed. */
export function bearer(req: IncomingMessage): string | null {
  const h = req.headers.authorization;
  if (typeof h !== 'string') return null;
  const m = /^Bearer ([^\s]{1,512})$/.exec(h);
  return m?.[1] ?? null;
}

const REASONS: Record<number, string> = { 400: 'Bad Request', 405: 'Method Not Allowed', 401: 'Unauthorized', 403: 'Forbidden', 429: 'Too Many Requests', 503: 'Service Unavailable' };

/** A refused upgrade: what the writer decided, answered on the socket. */
export interface UpgradeRefusal {
  readonly status: number;
  readonly code: string;
  readonly message: string;
  readonly retryAfterS?: number;
}

export function refuseUpgrade(socket: Duplex, r: UpgradeRefusal): void {
  const body = JSON.stringify({ code: r.code, message: r.message });
  const extra = r.retryAfterS === undefined ? '' : `Retry-After: ${r.retryAfterS}\r\n`;
  socket.end(
    `HTTP/1.1 ${r.status} ${REASONS[r.status] ?? 'Error'}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n${extra}\r\n${body}`,
  );
}

/**
 * The agents' ws server. UTF-8 is checked by the transport (NK_PROTO_BAD_JSON, the
 * connection stays), not by ws, whose 1007 close carries no code of ours. A handshake ws
 * itself refuses (no key, a version other than 13, a method other than GET) is answered
 * in our error format rather than ws's plain text, and counted by `refused`.
 */
export function agentWebSocketServer(refused: (code: string) => void): Server<typeof AgentSocket> {
  const wss = new WebSocketServer({ WebSocket: AgentSocket, noServer: true, maxPayload: TRANSPORT_MAX_PAYLOAD, perMessageDeflate: false, skipUTF8Validation: true, clientTracking: false });
  wss.on('wsClientError', (err: Error, socket: Duplex) => {
    refused('NK_HTTP_BAD_REQUEST');
    if (/method/i.test(err.message)) refuseUpgrade(socket, { status: 405, code: 'NK_HTTP_METHOD_NOT_ALLOWED', message: `invalid WebSocket handshake: ${err.message}; agents connect with GET` });
    else refuseUpgrade(socket, { status: 400, code: 'NK_HTTP_BAD_REQUEST', message: `invalid WebSocket handshake: ${err.message}` });
  });
  return wss;
}
