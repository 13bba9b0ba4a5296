import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import http2 from 'node:http2';
import net from 'node:net';
import path from 'node:path';
import { defaultProbeConfig } from './config.ts';
import { createProbeContext } from './context.ts';
import { classifyCriError, probeRuntime } from './cri.ts';
import { CriCallError, GrpcStatus as status } from './cri-wire.ts';

const grpcError = (code: number, details: string) => new CriCallError(code, details);

test('classifyCriError maps a failed call to precise reasons', () => {
  const cases: Array<[number, string, string]> = [
    [status.UNAVAILABLE, 'No connection established. Last error: connect ECONNREFUSED /run/containerd/containerd.sock', 'ConnectionRefused'],
    [status.UNAVAILABLE, 'No connection established. Last error: connect ENOENT /x.sock', 'SocketNotFound'],
    [status.UNAVAILABLE, 'No connection established. Last error: connect EACCES /x.sock', 'PermissionDenied'],
    [status.UNAVAILABLE, 'Connection dropped', 'RuntimeUnavailable'],
    [status.DEADLINE_EXCEEDED, 'Deadline exceeded after 3.001s', 'DeadlineExceeded'],
    [status.UNIMPLEMENTED, 'unknown service runtime.v1.RuntimeService', 'CriNotImplemented'],
    [status.INTERNAL, 'oops', 'CriCallFailed'],
  ];
  for (const [code, details, reason] of cases) {
    const got = classifyCriError(grpcError(code, details));
    assert.equal(got.reason, reason, details);
    assert.ok(got.message.includes(details), got.message);
  }
  assert.match(classifyCriError(grpcError(status.INTERNAL, 'oops')).message, /INTERNAL/);
});

test('probeRuntime: no socket file is SocketNotFound; a plain file is NotASocket', async () => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'nk-cri-'));
  try {
    const ctx = createProbeContext({ ...defaultProbeConfig, hostRoot: root, runtime: { ...defaultProbeConfig.runtime, socket: '/cri.sock' } });
    const missing = await probeRuntime(ctx);
    assert.equal(missing.health, 'unhealthy');
    assert.equal(missing.reason, 'SocketNotFound');
    assert.deepEqual(missing.conditions, []);
    assert.equal(missing.version, null);

    await writeFile(path.join(root, 'cri.sock'), '');
    assert.equal((await probeRuntime(ctx)).reason, 'NotASocket');
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

/** A gRPC-ish HTTP/2 server on a unix socket in `root`, answering every call with `answer`. */
async function runtimeServer(root: string, answer: (stream: http2.ServerHttp2Stream) => void): Promise<{ close: () => Promise<void> }> {
  const server = http2.createServer();
  server.on('stream', answer);
  await new Promise<void>((resolve) => server.listen(path.join(root, 'cri.sock'), resolve));
  return { close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

test('probeRuntime against runtimes that answer badly: each a precise reason, never a hang', async () => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'nk-cri-'));
  const ctx = createProbeContext({ ...defaultProbeConfig, hostRoot: root, runtime: { ...defaultProbeConfig.runtime, socket: '/cri.sock', timeoutMs: 500 } });
  const cases: Array<[string, (s: http2.ServerHttp2Stream) => void, string, RegExp]> = [
    ['trailers-only UNIMPLEMENTED', (s) => s.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '12', 'grpc-message': 'unknown%20service%20runtime.v1.RuntimeService' }, { endStream: true }), 'CriNotImplemented', /unknown service runtime\.v1\.RuntimeService/],
    ['a 16 KB grpc-message', (s) => s.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '13', 'grpc-message': 'x'.repeat(16_384) }, { endStream: true }), 'CriCallFailed', /^CRI call failed \(INTERNAL\): x{1024}$/],
    ['HTTP 404', (s) => s.respond({ ':status': 404 }, { endStream: true }), 'CriNotImplemented', /HTTP status 404/],
    ['a message that is not protobuf', (s) => {
      s.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      s.on('wantTrailers', () => s.sendTrailers({ 'grpc-status': '0' }));
      s.end(Buffer.from([0, 0, 0, 0, 3, 0xff, 0xff, 0xff]));
    }, 'CriCallFailed', /INTERNAL.*malformed CRI response/],
    ['no grpc-status at all', (s) => {
      s.respond({ ':status': 200, 'content-type': 'application/grpc' });
      s.end(Buffer.from([0, 0, 0, 0, 0]));
    }, 'CriCallFailed', /without a grpc-status/],
    ['no answer', () => {}, 'DeadlineExceeded', /Deadline exceeded/],
  ];
  try {
    for (const [name, answer, reason, message] of cases) {
      const server = await runtimeServer(root, answer);
      try {
        const s = await probeRuntime(ctx);
        assert.equal(s.health, 'unhealthy', name);
        assert.equal(s.reason, reason, `${name}: ${s.message}`);
        assert.match(s.message, message, name);
        assert.deepEqual(s.conditions, [], name);
      } finally {
        await server.close();
      }
    }
    // A socket that is not HTTP/2 at all: accepted, then closed at once.
    const plain = net.createServer((c) => c.destroy());
    await new Promise<void>((resolve) => plain.listen(path.join(root, 'cri.sock'), resolve));
    try {
      const s = await probeRuntime(ctx);
      assert.equal(s.health, 'unhealthy');
      assert.match(s.reason, /^(RuntimeUnavailable|CriCallFailed)$/, s.message);
    } finally {
      await new Promise<void>((resolve) => plain.close(() => resolve()));
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
