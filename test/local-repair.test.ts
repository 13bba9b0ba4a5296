/**
 * Local self-repair in a real agent: with the coordinator gone for longer than
 * --local-repair-after, the agent restarts a dead kubelet by itself, within its budget,
 * and tells the coordinator when it is back.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startContainerdWithNetwork, type RunningContainerd } from './harness/containerd.ts';
import { createToken, nkctl, startCoordinator, waitFor, type CoordinatorProc } from './harness/processes.ts';
import { makeSupervisedNode, startNodeAgent, stopNode, type SupervisedNode } from './harness/supervised-node.ts';

const ARGS = ['--heartbeat-interval', '500', '--liveness-grace', '5000', '--liveness-recover', '500'];
let dir: string;
let coord: CoordinatorProc;
let containerd: RunningContainerd;
let node: SupervisedNode;

const machine = async () => JSON.parse((await nkctl(coord.nkctlConfig, ['get', 'machine', 'node-l', '-o', 'json'])).stdout);

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'nk-local-repair-'));
  containerd = await startContainerdWithNetwork(path.join(dir, 'containerd'));
  coord = await startCoordinator(path.join(dir, 'coordinator'), ARGS);
  node = await makeSupervisedNode(dir, { name: 'node-l', machineId: '8'.repeat(32), kubeletVersion: 'v1.31.2', runtimeSocket: containerd.socket });
  const { token, caCertHash } = await createToken(coord.nkctlConfig, 1);
  startNodeAgent(node, { server: coord.url, token, caHash: caCertHash, extraArgs: ['--local-repair-after', '1s', '--local-repair-budget', '2/1h'] });
  await waitFor('node-l Ready', async () => (await machine()).status.phase === 'Ready', 60_000, 250);
});

after(async () => {
  await stopNode(node);
  await coord?.stop();
  await containerd?.stop();
  await rm(dir, { recursive: true, force: true });
});

test('with the coordinator gone, the agent restarts a dead kubelet itself and reports it later', { timeout: 120_000 }, async () => {
  await coord.stop('SIGKILL');
  await new Promise((r) => setTimeout(r, 2000));
  const before = (await node.services.running('kubelet.service'))?.pid;
  await node.services.stop('kubelet.service');
  const restarted = await waitFor('the kubelet restarted locally', async () => {
    const now = await node.services.running('kubelet.service');
    return now !== null && now.pid !== before && now;
  }, 45_000, 200);
  assert.ok(restarted.pid > 0);

  coord = await startCoordinator(coord.dataDir, [...ARGS, '--port', String(coord.port)]);
  const m = await waitFor('the local repair reported', async () => {
    const x = await machine();
    return x.status.phase === 'Ready' && /local repairs while the coordinator was unreachable/.test(x.status.host?.message ?? '') && x;
  }, 60_000, 250);
  assert.match(m.status.host.message, /restarted kubelet\.service/);
});
