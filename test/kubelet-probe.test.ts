/**
 * The kubelet probe against the kubelet stand-in installed in a host root: a real
 * process serving healthz and answering --version, as the kubelet does.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rm, mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createProbeContext } from '../agent/src/probes/context.ts';
import { probeKubelet } from '../agent/src/probes/kubelet.ts';
import type { ProbeConfig } from '../agent/src/probes/config.ts';
import { installKubeletStandin, startKubeletStandin, type RunningKubeletStandin } from './harness/kubelet-standin.ts';
import { makeHostRoot, type HostRoot } from './harness/host-root.ts';

let dir = '';
let node: HostRoot;
let kubelet: RunningKubeletStandin;
let config: ProbeConfig;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'nk-kubelet-'));
  node = await makeHostRoot(path.join(dir, 'node'), { machineId: 'c0ffee00c0ffee00c0ffee00c0ffee02', hostname: 'node-k' });
  await installKubeletStandin(node.root, { version: '1.31.2' });
  kubelet = await startKubeletStandin(node.root, { port: 0 });
  config = { ...node.config, kubelet: { ...node.config.kubelet, healthzUrl: kubelet.url } };
});
after(async () => {
  await kubelet?.stop();
  await rm(dir, { recursive: true, force: true });
});

test('the stand-in kubelet is healthy and reports its version', async () => {
  const s = await probeKubelet(createProbeContext(config));
  assert.equal(s.health, 'healthy', s.message);
  assert.equal(s.reason, 'HealthzOk');
  assert.deepEqual(s.version, { raw: 'Kubernetes v1.31.2', semver: '1.31.2', source: 'binary' });
  assert.equal(s.service?.manager, 'none');
});

test('stopped: HealthzRefused, the version still read from the binary', async () => {
  await kubelet.stop();
  const s = await probeKubelet(createProbeContext(config));
  assert.equal(s.health, 'unhealthy');
  assert.equal(s.reason, 'HealthzRefused');
  assert.equal(s.version?.semver, '1.31.2');
});

test('binary removed: BinaryNotFound', async () => {
  await rm(path.join(node.root, 'usr/bin/kubelet'));
  const s = await probeKubelet(createProbeContext(config));
  assert.equal(s.health, 'unhealthy');
  assert.equal(s.reason, 'BinaryNotFound');
  assert.equal(s.version, null);
  assert.match(s.message, /refused/);
});
