import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { defaultProbeConfig, type ProbeConfig } from './config.ts';
import { createProbeContext } from './context.ts';
import { checkHealthz } from './healthz.ts';
import { classifyHealthz, probeKubelet } from './kubelet.ts';

const FIXED = new Date('2026-01-02T03:04:05.000Z');

/** A real HTTP server on port 0 whose answer each test chooses. */
function serve(handler: http.RequestListener): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer(handler);
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}/healthz`,
        close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
      });
    });
  });
}

/** A port nothing listens on: bound, then released. */
async function freePort(): Promise<number> {
  const s = await serve(() => {});
  const port = Number(new URL(s.url).port);
  await s.close();
  return port;
}

describe('checkHealthz against a real server', () => {
  test('200 ok is healthy', async () => {
    const s = await serve((_req, res) => res.end('ok'));
    try {
      const outcome = await checkHealthz(s.url, 2000);
      assert.deepEqual(outcome, { kind: 'ok', status: 200 });
      assert.equal(classifyHealthz(s.url, outcome).reason, 'HealthzOk');
    } finally {
      await s.close();
    }
  });

  test('500 is HealthzFailed with the body\'s first line', async () => {
    const s = await serve((_req, res) => res.writeHead(500).end('[-]syncloop failed: reason withheld\nhealthz check failed\n'));
    try {
      const v = classifyHealthz(s.url, await checkHealthz(s.url, 2000));
      assert.equal(v.health, 'unhealthy');
      assert.equal(v.reason, 'HealthzFailed');
      assert.match(v.message, /answered 500: \[-\]syncloop failed: reason withheld$/);
    } finally {
      await s.close();
    }
  });

  test('200 with another body is HealthzFailed too', async () => {
    const s = await serve((_req, res) => res.end('not quite'));
    try {
      assert.equal(classifyHealthz(s.url, await checkHealthz(s.url, 2000)).reason, 'HealthzFailed');
    } finally {
      await s.close();
    }
  });

  test('nothing listening is HealthzRefused', async () => {
    const url = `http://127.0.0.1:${await freePort()}/healthz`;
    const v = classifyHealthz(url, await checkHealthz(url, 2000));
    assert.equal(v.reason, 'HealthzRefused');
    assert.equal(v.health, 'unhealthy');
  });

  test('a server that never answers is HealthzTimeout', async () => {
    const s = await serve(() => { /* hold the request open */ });
    try {
      const v = classifyHealthz(s.url, await checkHealthz(s.url, 150));
      assert.equal(v.reason, 'HealthzTimeout');
      assert.match(v.message, /within 150 ms/);
    } finally {
      await s.close();
    }
  });

  test('a non-http URL is a caller mistake', () => {
    assert.throws(() => checkHealthz('https://127.0.0.1:10250/healthz', 1000), TypeError);
  });
});

describe('probeKubelet with a binary under a host root', () => {
  let root = '';
  let server: { url: string; close: () => Promise<void> };
  const config = (): ProbeConfig => ({ ...defaultProbeConfig, hostRoot: root, kubelet: { ...defaultProbeConfig.kubelet, healthzUrl: server.url, timeoutMs: 2000 } });
  const writeKubelet = async (script: string): Promise<void> => {
    await writeFile(path.join(root, 'usr/bin/kubelet'), `#!/bin/sh\n${script}\n`);
    await chmod(path.join(root, 'usr/bin/kubelet'), 0o755);
  };

  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'nk-kubelet-'));
    await mkdir(path.join(root, 'usr/bin'), { recursive: true });
    server = await serve((_req, res) => res.end('ok'));
  });
  after(async () => {
    await server.close();
    await rm(root, { recursive: true, force: true });
  });

  test('healthy, with the version the binary prints', async () => {
    await writeKubelet('echo "Kubernetes v1.31.2"');
    const s = await probeKubelet(createProbeContext(config(), { clock: () => FIXED }));
    assert.equal(s.health, 'healthy');
    assert.equal(s.reason, 'HealthzOk');
    assert.deepEqual(s.version, { raw: 'Kubernetes v1.31.2', semver: '1.31.2', source: 'binary' });
    assert.equal(s.observedAt, '2026-01-02T03:04:05.000Z');
    assert.equal(s.service?.manager, 'none');
  });

  test('vendor version strings keep their raw form', async () => {
    await writeKubelet('echo "Kubernetes v1.34.1-eks-abc"');
    const s = await probeKubelet(createProbeContext(config()));
    assert.deepEqual(s.version, { raw: 'Kubernetes v1.34.1-eks-abc', semver: '1.34.1-eks-abc', source: 'binary' });
  });

  test('a binary that fails --version leaves the version unknown but healthz decides', async () => {
    await writeKubelet('echo "flag provided but not defined" >&2; exit 2');
    const s = await probeKubelet(createProbeContext(config()));
    assert.equal(s.health, 'healthy');
    assert.equal(s.version, null);
    assert.match(s.message, /version unknown: .*exited with code 2: flag provided but not defined/);
  });

  test('a missing binary is BinaryNotFound, healthz still probed', async () => {
    await rm(path.join(root, 'usr/bin/kubelet'));
    const s = await probeKubelet(createProbeContext(config()));
    assert.equal(s.health, 'unhealthy');
    assert.equal(s.reason, 'BinaryNotFound');
    assert.equal(s.version, null);
    assert.match(s.message, /answered ok/);
  });
});
