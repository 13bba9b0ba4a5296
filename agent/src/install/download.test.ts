/**
 * Downloads against a real http server on port 0: the digest is computed while
 * streaming, and every way a transfer goes wrong has its own code and leaves no file.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { access, mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { hasCode } from '@nodekeeper/common';
import { downloadArtifact } from './download.ts';

const body = Buffer.alloc(256 * 1024, 7);
const sha = createHash('sha256').update(body).digest('hex');
let dir: string;
let server: http.Server;
let base: string;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'nk-download-'));
  server = http.createServer((req, res) => {
    if (req.url === '/ok') res.writeHead(200, { 'content-length': body.length }).end(body);
    // Chunked, no content-length: only the running count can catch an oversize body.
    else if (req.url === '/chunked-big') { res.writeHead(200); res.write(body); res.end(body); }
    else if (req.url === '/slow-drip') { res.writeHead(200); const t = setInterval(() => res.write('x'), 50); res.on('close', () => clearInterval(t)); }
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await rm(dir, { recursive: true, force: true });
});

const ref = (p: string, size = body.length) => ({ url: `${base}${p}`, sha256: sha, size });

test('streams to disk with the sha256 computed on the way', async () => {
  const dest = path.join(dir, 'ok');
  const got = await downloadArtifact(ref('/ok'), dest, { timeoutMs: 5000, allowHttp: true });
  assert.deepEqual(got, { file: dest, sha256: sha, bytes: body.length });
  assert.deepEqual(await readFile(dest), body);
});

test('a chunked body past the declared size is cut off with NK_INSTALL_TOO_LARGE', async () => {
  const dest = path.join(dir, 'big');
  await assert.rejects(downloadArtifact(ref('/chunked-big'), dest, { timeoutMs: 5000, allowHttp: true }), (e) => hasCode(e, 'NK_INSTALL_TOO_LARGE'));
  await assert.rejects(access(dest), { code: 'ENOENT' });
});

test('a body that keeps dripping past the deadline is a timeout, however lively', async () => {
  const dest = path.join(dir, 'drip');
  await assert.rejects(downloadArtifact(ref('/slow-drip'), dest, { timeoutMs: 300, idleTimeoutMs: 5000, allowHttp: true }), (e) => hasCode(e, 'NK_INSTALL_DOWNLOAD_TIMEOUT') && /did not finish/.test(e.message));
  await assert.rejects(access(dest), { code: 'ENOENT' });
});

test('plain http is refused unless the setup is insecure; a 404 is a download failure', async () => {
  await assert.rejects(downloadArtifact(ref('/ok'), path.join(dir, 'x'), { timeoutMs: 5000, allowHttp: false }), (e) => hasCode(e, 'NK_INSTALL_DOWNLOAD_FAILED') && /not https/.test(e.message));
  await assert.rejects(downloadArtifact(ref('/missing'), path.join(dir, 'y'), { timeoutMs: 5000, allowHttp: true }), (e) => hasCode(e, 'NK_INSTALL_DOWNLOAD_FAILED') && /HTTP 404/.test(e.message));
});
