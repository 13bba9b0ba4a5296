/**
 * A raw HTTP/1.1 client over TLS for hostile-input tests: the request is written byte
 * for byte as given (any method, any request target, any header, a body that does not
 * match its Content-Length), which node's http client refuses to send. The answer is
 * parsed just enough to check it: status, headers, body (Content-Length or chunked),
 * with interim 1xx answers skipped.
 */
import tls from 'node:tls';

export interface RawRequest {
  readonly method: string;
  /** The request target exactly as it goes on the wire. */
  readonly target: string;
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly body: Buffer | null;
  /** Omit the Content-Length header that matches the body. */
  readonly noContentLength?: boolean;
}

export interface RawResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

export type RawResult = { readonly kind: 'answer'; readonly response: RawResponse } | { readonly kind: 'no-answer'; readonly error: string; readonly received: string };

/** The bytes of `r` on the wire (always `Connection: close`, so the answer ends the socket). */
export function encodeRequest(r: RawRequest, host: string): Buffer {
  const lines = [`${r.method} ${r.target} HTTP/1.1`, `Host: ${host}`, 'Connection: close'];
  for (const [k, v] of r.headers) lines.push(`${k}: ${v}`);
  if (r.body !== null && r.noContentLength !== true) lines.push(`Content-Length: ${r.body.length}`);
  // A chunked request without a body still ends: an unfinished request would only wait
  // for the server's timeout, which is the client's fault, not the server's.
  const chunkedEnd = r.body === null && r.headers.some(([k, v]) => k.toLowerCase() === 'transfer-encoding' && /chunked/i.test(v)) ? '0\r\n\r\n' : '';
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n${chunkedEnd}`, 'latin1'), r.body ?? Buffer.alloc(0)]);
}

interface Parsed { response: RawResponse; complete: boolean }

/** Parses the first final (non-1xx) answer in `buf`; null while its head is incomplete. */
function parse(buf: Buffer, method: string, ended: boolean): Parsed | null {
  let offset = 0;
  for (;;) {
    const headEnd = buf.indexOf('\r\n\r\n', offset);
    if (headEnd < 0) return null;
    const head = buf.subarray(offset, headEnd).toString('latin1').split('\r\n');
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head[0] ?? '')?.[1] ?? NaN);
    if (!Number.isInteger(status)) throw new Error(`not an HTTP status line: ${JSON.stringify((head[0] ?? '').slice(0, 200))}`);
    const headers: Record<string, string> = {};
    for (const line of head.slice(1)) {
      const i = line.indexOf(':');
      if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    const bodyStart = headEnd + 4;
    if (status >= 100 && status < 200 && status !== 101) {
      offset = bodyStart;
      continue;
    }
    if (method === 'HEAD' || status === 101 || status === 204 || status === 304) return { response: { status, headers, body: Buffer.alloc(0) }, complete: true };
    const rest = buf.subarray(bodyStart);
    if (headers['transfer-encoding']?.toLowerCase() === 'chunked') {
      const chunks: Buffer[] = [];
      let p = 0;
      for (;;) {
        const nl = rest.indexOf('\r\n', p);
        if (nl < 0) return { response: { status, headers, body: Buffer.concat(chunks) }, complete: false };
        const size = parseInt(rest.subarray(p, nl).toString('latin1'), 16);
        if (size === 0) return { response: { status, headers, body: Buffer.concat(chunks) }, complete: true };
        if (rest.length < nl + 2 + size) return { response: { status, headers, body: Buffer.concat(chunks) }, complete: false };
        chunks.push(rest.subarray(nl + 2, nl + 2 + size));
        p = nl + 2 + size + 2;
      }
    }
    const length = headers['content-length'];
    if (length !== undefined) {
      const n = Number(length);
      return { response: { status, headers, body: rest.subarray(0, n) }, complete: rest.length >= n };
    }
    return { response: { status, headers, body: rest }, complete: ended };
  }
}

/** Sends `r` to host:port over TLS trusting `ca`; resolves with the answer or why there was none. */
export function rawRequest(host: string, port: number, ca: string, r: RawRequest, timeoutMs = 15_000): Promise<RawResult> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let done = false;
    const socket = tls.connect({ host, port, ca, servername: host === '127.0.0.1' ? undefined : host });
    const finish = (ended: boolean, error?: string) => {
      if (done) return;
      const buf = Buffer.concat(chunks);
      let parsed: Parsed | null = null;
      try {
        parsed = parse(buf, r.method, ended);
      } catch (err) {
        done = true;
        socket.destroy();
        resolve({ kind: 'no-answer', error: (err as Error).message, received: buf.subarray(0, 300).toString('latin1') });
        return;
      }
      if (parsed?.complete === true || (ended && parsed !== null)) {
        done = true;
        socket.destroy();
        resolve({ kind: 'answer', response: parsed.response });
      } else if (ended) {
        done = true;
        resolve({ kind: 'no-answer', error: error ?? 'the connection closed without an answer', received: buf.subarray(0, 300).toString('latin1') });
      }
    };
    const timer = setTimeout(() => {
      finish(true, `no complete answer within ${timeoutMs} ms`);
      socket.destroy();
    }, timeoutMs);
    socket.once('secureConnect', () => {
      // The server may answer and close before the whole body is written (a refusal of a
      // large upload): a write error then is not a failure, the answer is what counts.
      socket.write(encodeRequest(r, `${host}:${port}`), () => undefined);
    });
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      finish(false);
    });
    socket.on('error', (err) => finish(true, err.message));
    socket.on('close', () => {
      clearTimeout(timer);
      finish(true);
    });
  });
}
