/**
 * Answers written straight to a socket, where node's http server gives no response
 * object: a request its parser refused (`clientError`), an upgrade or CONNECT request
 * for a path that is not the agents'. They keep the API's error format
 * (`{code, message}`, docs/errors.md), so a client always learns what was wrong instead
 * of meeting a reset connection.
 */
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';

/** Writes one complete JSON error answer and closes the connection. */
export function endWithError(socket: Duplex, status: number, code: string, message: string): void {
  // A write to a socket the peer already dropped must not become an unhandled 'error'.
  if (socket.listenerCount('error') === 0) socket.on('error', () => socket.destroy());
  const body = `${JSON.stringify({ code, message }, null, 2)}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n${body}`,
  );
}

/**
 * For the server's `clientError`: node's parser refused the request (a malformed request
 * line, header or Content-Length; headers over the size limit). Answered 431 or 400, as
 * node itself would, but with a code; a connection already answering, or already gone,
 * is only closed.
 */
export function answerClientError(err: Error & { code?: string | undefined }, socket: Duplex): void {
  const answering = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent === true;
  // A request that timed out is only closed, as before: the HTTP timeouts decide that.
  // Only the HTTP parser's refusals (HPE_*) are answered: a TLS handshake that failed or
  // timed out has no HTTP to answer in, and a reset connection no one to answer to.
  if (!(err.code ?? '').startsWith('HPE_') || !socket.writable || answering) {
    socket.destroy();
    return;
  }
  if (err.code === 'HPE_HEADER_OVERFLOW') {
    endWithError(socket, 431, 'NK_HTTP_HEADERS_TOO_LARGE', 'the request line and headers exceed the size limit (16 KiB)');
    return;
  }
  endWithError(socket, 400, 'NK_HTTP_BAD_REQUEST', `malformed HTTP request (${err.code ?? 'parse error'})`);
}
