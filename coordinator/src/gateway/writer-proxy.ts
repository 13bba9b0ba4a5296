/**
 * Both ends of the worker -> writer HTTP path. A gateway worker answers no API request
 * itself: it streams each one (method, path, headers minus hop-by-hop, body) to the
 * writer's unix socket and the answer back (status, headers, body), so watch streams
 * and large uploads pass as they come. The writer's socket serves only requests that
 * carry the per-start secret; the client address header is believed there alone.
 */
import http from 'node:http';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Logger } from '@nodekeeper/common';
import type { ApiHandler } from '../server/http-api.ts';
import { setClientAddress } from '../server/http-util.ts';
import { CLIENT_ADDRESS_HEADER, SECRET_HEADER } from './worker-ipc.ts';

/** RFC 9110 section 7.6.1, plus our own headers, which only a worker sets. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authenticate', 'proxy-authorization', SECRET_HEADER, CLIENT_ADDRESS_HEADER]);

function endToEnd(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const named = new Set(String(headers.connection ?? '').toLowerCase().split(',').map((s) => s.trim()).filter((s) => s !== ''));
  const out: http.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !HOP_BY_HOP.has(k) && !named.has(k)) out[k] = v;
  return out;
}

function answer(res: http.ServerResponse, status: number, code: string, message: string): void {
  const body = JSON.stringify({ code, message });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
}

/** The worker's request handler: every request goes to the writer at `socketPath`. */
export function writerProxy(socketPath: string, secret: string, log: Logger): ApiHandler {
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
  const forward = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const headers = endToEnd(req.headers);
    headers[SECRET_HEADER] = secret;
    headers[CLIENT_ADDRESS_HEADER] = req.socket.remoteAddress ?? 'unknown';
    const up = http.request({ socketPath, agent, method: req.method, path: req.url, headers });
    // `Expect: 100-continue` went on: the writer's checks decide whether the body is invited.
    up.on('continue', () => res.writeContinue());
    up.on('response', (answerIn) => {
      res.writeHead(answerIn.statusCode ?? 502, answerIn.statusMessage, endToEnd(answerIn.headers));
      answerIn.pipe(res);
      answerIn.on('error', () => res.destroy());
    });
    up.on('error', (err) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      log.warn({ err, code: 'NK_GATEWAY_WRITER_UNAVAILABLE' }, 'the writer did not answer a proxied request');
      answer(res, 502, 'NK_GATEWAY_WRITER_UNAVAILABLE', 'the coordinator\'s writer process did not answer; retry');
    });
    // The client went away (a watch closed, an upload abandoned): so does the request upstream.
    res.on('close', () => {
      if (!res.writableFinished) up.destroy();
    });
    req.pipe(up);
  };
  return Object.assign(forward, { checkContinue: forward, checkExpectation: forward });
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * The writer's handler on its unix socket: a request without the secret gets 403; with
 * it, the worker's client address header is the request's client address.
 */
export function workerOnly(api: ApiHandler, secret: string): ApiHandler {
  const expected = digest(secret);
  const allowed = (req: http.IncomingMessage, res: http.ServerResponse): boolean => {
    const given = req.headers[SECRET_HEADER];
    if (typeof given !== 'string' || !timingSafeEqual(digest(given), expected)) {
      answer(res, 403, 'NK_GATEWAY_FORBIDDEN', 'this socket serves the coordinator\'s gateway workers only');
      return false;
    }
    const address = req.headers[CLIENT_ADDRESS_HEADER];
    if (typeof address === 'string' && address.length <= 64) setClientAddress(req, address);
    return true;
  };
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (allowed(req, res)) api(req, res);
  };
  return Object.assign(handler, {
    checkContinue: (req: http.IncomingMessage, res: http.ServerResponse) => {
      if (allowed(req, res)) api.checkContinue(req, res);
    },
    checkExpectation: (req: http.IncomingMessage, res: http.ServerResponse) => {
      if (allowed(req, res)) api.checkExpectation(req, res);
    },
  });
}
