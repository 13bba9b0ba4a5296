/**
 * A real containerd killed on a node: the coordinator sees RuntimeNotReady, its rule
 * has the agent restart the runtime, and CRI answers healthy again. Real processes:
 * coordinator, agent, the node's own supervised containerd and kubelet stand-in.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CONTAINERD_BIN, containerdConfig } from './harness/containerd.ts';
import { DEBIAN_CNI_BIN_DIR } from './harness/host-root.ts';
import { createToken, nkctl, startCoordinator, waitFor, type CoordinatorProc } from './harness/processes.ts';
import { makeSupervisedNode, startNodeAgent, stopNode, type SupervisedNode } from './harness/supervised-node.ts';

let dir: string;
let coord: CoordinatorProc;
let node: SupervisedNode;

const machine = async () => JSON.parse((await nkctl(coord.nkctlConfig, ['get', 'machine', 'node-r', '-o', 'json'])).stdout);

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'nk-remediate-rt-'));
  coord = await startCoordinator(path.join(dir, 'coordinator'), ['--heartbeat-interval', '500', '--liveness-grace', '5000', '--liveness-recover', '500', '--fault-hold', '1', '--fault-clear', '2']);
  node = await makeSupervisedNode(dir, { name: 'node-r', machineId: '7'.repeat(32), kubeletVersion: 'v1.31.2' });
  // The node's own containerd, supervised like its kubelet, on the default socket path.
  await symlink(CONTAINERD_BIN, path.join(node.root, 'usr/bin/containerd'));
  const config = path.join(dir, 'containerd.toml');
  await writeFile(config, containerdConfig(path.join(node.root, 'run/containerd'), path.join(node.root, 'etc/cni/net.d'), DEBIAN_CNI_BIN_DIR));
  await node.services.define('containerd.service', { argv: ['/usr/bin/containerd', '--config', config] });
  await node.services.restart('containerd.service');
  const rule = {
    apiVersion: 'nodekeeper.io/v1alpha1', kind: 'RemediationRule', metadata: { name: 'runtime' },
    spec: { fault: 'RuntimeNotReady', forSeconds: 1, ladder: [{ action: 'RestartService', target: 'containerd.service', timeoutSeconds: 30, successWithinSeconds: 15 }, { action: 'CordonAndNotify' }], maxAttemptsPerMachine: 3, cooldownSeconds: 2 },
  };
  await writeFile(path.join(dir, 'rule.json'), JSON.stringify(rule));
  assert.equal((await nkctl(coord.nkctlConfig, ['apply', '-f', path.join(dir, 'rule.json')])).code, 0);
  const { token, caCertHash } = await createToken(coord.nkctlConfig, 1);
  startNodeAgent(node, { server: coord.url, token, caHash: caCertHash });
  await waitFor('node-r Ready', async () => (await machine()).status.phase === 'Ready', 60_000, 250);
});

after(async () => {
  await stopNode(node);
  await node?.services.stop('containerd.service');
  await coord?.stop();
  await rm(dir, { recursive: true, force: true });
});

test('a killed containerd is detected, restarted by the agent, and healthy over CRI again', { timeout: 120_000 }, async () => {
  const pid = (await node.services.running('containerd.service'))?.pid;
  assert.ok(pid !== undefined, 'containerd runs under the supervisor');
  process.kill(pid, 'SIGKILL');
  const down = await waitFor('RuntimeReady False', async () => {
    const m = await machine();
    return m.status.conditions.find((c: { type: string }) => c.type === 'RuntimeReady')?.status === 'False' && m;
  }, 30_000, 200);
  assert.match(down.status.containerd.reason, /ConnectionRefused|SocketNotFound|RuntimeUnavailable/);
  const back = await waitFor('RuntimeReady True again', async () => {
    const m = await machine();
    return m.status.conditions.find((c: { type: string }) => c.type === 'RuntimeReady')?.status === 'True' && m.status.phase === 'Ready' && m;
  }, 60_000, 250);
  assert.equal(back.status.containerd.runtimeName, 'containerd');
  const r = JSON.parse((await nkctl(coord.nkctlConfig, ['remediation', 'describe', 'node-r', '-o', 'json'])).stdout);
  assert.ok(r.history.some((h: { action: string; result: string }) => h.action === 'RestartService'), JSON.stringify(r.history));
  const now = await node.services.running('containerd.service');
  assert.ok(now !== null && now.pid !== pid, 'a new containerd process');
});
