import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { status, type ServiceError } from '@grpc/grpc-js';
import { Metadata } from '@grpc/grpc-js';
import { defaultProbeConfig } from './config.ts';
import { createProbeContext } from './context.ts';
import { classifyGrpcError, probeRuntime } from './cri.ts';

function grpcError(code: status, details: string): ServiceError {
  return Object.assign(new Error(`${code} ${status[code]}: ${details}`), { code, details, metadata: new Metadata() });
}

test('classifyGrpcError maps what grpc-js says to precise reasons', () => {
  const cases: Array<[status, string, string]> = [
    [status.UNAVAILABLE, 'No connection established. Last error: connect ECONNREFUSED /run/containerd/containerd.sock', 'ConnectionRefused'],
    [status.UNAVAILABLE, 'No connection established. Last error: connect ENOENT /x.sock', 'SocketNotFound'],
    [status.UNAVAILABLE, 'No connection established. Last error: connect EACCES /x.sock', 'PermissionDenied'],
    [status.UNAVAILABLE, 'Connection dropped', 'RuntimeUnavailable'],
    [status.DEADLINE_EXCEEDED, 'Deadline exceeded after 3.001s', 'DeadlineExceeded'],
    [status.UNIMPLEMENTED, 'unknown service runtime.v1.RuntimeService', 'CriNotImplemented'],
    [status.INTERNAL, 'oops', 'CriCallFailed'],
  ];
  for (const [code, details, reason] of cases) {
    const got = classifyGrpcError(grpcError(code, details));
    assert.equal(got.reason, reason, details);
    assert.ok(got.message.includes(details), got.message);
  }
  assert.match(classifyGrpcError(grpcError(status.INTERNAL, 'oops')).message, /INTERNAL/);
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
