import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '@nodekeeper/common';
import type { ApiHandler } from '../server/http-api.ts';
import { clientAddress } from '../server/http-util.ts';
import { CLIENT_ADDRESS_HEADER, SECRET_HEADER } from './worker-ipc.ts';
import { workerOnly, writerProxy } from './writer-proxy.ts';

const log = createLogger({ name: 'test', level: 'silent' });
const dir = mkdtempSync(join(tmpdir(), 'nk-proxy-test-'));
const socketPath = join(dir, 'writer.sock');
const secret = 'per-start-secret';

// The writer's app, as the real one sees requests: it answers what it was given.
const app = (req: http.IncomingMessage, res: http.ServerResponse) => {
  if (req.url === '/stream') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('first\n');
    const t = setTimeout(() => res.end('second\n'), 300);
    res.on('close', () => clearTimeout(t));
    return;
  }
  const hash = createHash('sha256');
  let bytes = 0;
  req.on('data', (c: Buffer) => {
    bytes += c.length;
    hash.update(c);
  });
  req.on('end', () => {
    const body = JSON.stringify({ method: req.method, url: req.url, client: clientAddress(req), bytes, sha256: hash.digest('hex'), custom: req.headers['x-custom'] ?? null, hop: req.headers['keep-alive'] ?? null });
    res.writeHead(201, { 'content-type': 'application/json', 'set-cookie': ['a=1', 'b=2'], 'x-answer': 'yes' }).end(body);
  });
};
const api: ApiHandler = Object.assign(app, {
  checkContinue: (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (req.headers.authorization !== 'Bearer ok') {
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"code":"NK_AUTH_CREDENTIAL_INVALID"}');
      return;
    }
    res.writeContinue();
    app(req, res);
  },
  checkExpectation: (_req: http.IncomingMessage, res: http.ServerResponse) => void res.writeHead(417).end(),
});

const writer = http.createServer(workerOnly(api, secret));
writer.on('checkContinue', workerOnly(api, secret).checkContinue);
const proxy = writerProxy(socketPath, secret, log);
const worker = http.createServer(proxy);
worker.on('checkContinue', proxy.checkContinue);
await new Promise<void>((r) => writer.listen(socketPath, r));
await new Promise<void>((r) => worker.listen(0, '127.0.0.1', r));
const port = (worker.address() as AddressInfo).port;
after(() => {
  worker.close();
  writer.close();
  rmSync(dir, { recursive: true, force: true });
});

function request(opts: http.RequestOptions, body?: Buffer): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, agent: false, ...opts }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('a request goes through with its method, path, body and end-to-end headers; the answer comes back whole', async () => {
  const body = Buffer.alloc(3 * 1024 * 1024, 7);
  const r = await request({ method: 'PUT', path: '/v1/artifacts/x?y=1', headers: { 'x-custom': 'kept', 'keep-alive': 'timeout=5', connection: 'keep-alive' } }, body);
  assert.equal(r.status, 201);
  const seen = JSON.parse(r.text);
  assert.deepEqual(seen, { method: 'PUT', url: '/v1/artifacts/x?y=1', client: '127.0.0.1', bytes: body.length, sha256: createHash('sha256').update(body).digest('hex'), custom: 'kept', hop: null });
  assert.deepEqual(r.headers['set-cookie'], ['a=1', 'b=2']);
  assert.equal(r.headers['x-answer'], 'yes');
});

test('the client address is the one the worker saw: a client cannot name its own, nor pass the secret on', async () => {
  const r = await request({ method: 'GET', path: '/', headers: { [CLIENT_ADDRESS_HEADER]: '6.6.6.6', [SECRET_HEADER]: 'guess' } });
  assert.equal(r.status, 201);
  assert.equal(JSON.parse(r.text).client, '127.0.0.1');
});

test('an answer streams: the first chunk arrives before the writer ends it', async () => {
  const first = await new Promise<{ chunk: string; ended: boolean }>((resolve, reject) => {
    let ended = false;
    const req = http.get({ host: '127.0.0.1', port, path: '/stream', agent: false }, (res) => {
      res.once('data', (c: Buffer) => resolve({ chunk: c.toString('utf8'), ended }));
      res.on('end', () => (ended = true));
    });
    req.on('error', reject);
  });
  assert.deepEqual(first, { chunk: 'first\n', ended: false });
});

test('Expect: 100-continue is decided by the writer: a refusal comes before any body is sent', async () => {
  const status = await new Promise<number>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'PUT', path: '/upload', agent: false, headers: { expect: '100-continue', 'content-length': '10' } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('continue', () => reject(new Error('the body was invited')));
    req.on('error', reject);
  });
  assert.equal(status, 401);
  const ok = await new Promise<number>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'PUT', path: '/upload', agent: false, headers: { expect: '100-continue', 'content-length': '10', authorization: 'Bearer ok' } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('continue', () => req.end(Buffer.alloc(10)));
    req.on('error', reject);
  });
  assert.equal(ok, 201);
});

test('the writer socket refuses a request without the secret, or with another, with 403 NK_GATEWAY_FORBIDDEN', async () => {
  for (const headers of [{}, { [SECRET_HEADER]: 'per-start-secreT' }, { [SECRET_HEADER]: '' }]) {
    const r = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = http.request({ socketPath, method: 'GET', path: '/', headers }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString('utf8')));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(r.status, 403);
    assert.equal(JSON.parse(r.text).code, 'NK_GATEWAY_FORBIDDEN');
  }
});

test('a writer that does not answer gives 502 NK_GATEWAY_WRITER_UNAVAILABLE, not a hang or a crash', async () => {
  const lost = writerProxy(join(dir, 'nobody.sock'), secret, log);
  const s = http.createServer(lost);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const r = await new Promise<{ status: number; text: string }>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: (s.address() as AddressInfo).port, path: '/', agent: false }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    }).on('error', reject);
  });
  s.close();
  assert.equal(r.status, 502);
  assert.equal(JSON.parse(r.text).code, 'NK_GATEWAY_WRITER_UNAVAILABLE');
});
