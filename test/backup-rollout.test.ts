/**
 * Disaster recovery mid-rollout, with real processes: a canary rollout of the kubelet is
 * under way on three real agents when `nkctl backup create` takes a backup; the
 * coordinator is then killed -9 and its data dir is gone. `nodekeeper-coordinator
 * restore` puts the backup into a fresh data dir, a coordinator starts on it at the same
 * address, and the agents reconnect on their own (their machine credentials and the CA
 * they pinned are in the backup) and the rollout resumes to completion.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { kubeletArtifact } from './harness/artifacts.ts';
import { startContainerdWithNetwork, type RunningContainerd } from './harness/containerd.ts';
import { restore } from './harness/coordinator-install.ts';
import { createToken, nkctl, nkctlOk, startCoordinator, waitFor, type CoordinatorProc } from './harness/processes.ts';
import { makeSupervisedNode, startNodeAgent, stopNode, type SupervisedNode } from './harness/supervised-node.ts';

type Obj = { metadata: { name: string }; status: Record<string, any> };

const ARGS = ['--heartbeat-interval', '500', '--liveness-grace', '5000', '--liveness-recover', '500', '--control-plane-version', 'v1.32.1', '--max-unavailable', '1'];

describe('a backup taken mid-rollout, restored into a fresh data dir', { timeout: 240_000 }, () => {
  let dir: string;
  let coord: CoordinatorProc;
  let containerd: RunningContainerd;
  const nodes: SupervisedNode[] = [];

  const machines = async (c: CoordinatorProc) => (JSON.parse(await nkctlOk(c.nkctlConfig, ['get', 'machines', '-o', 'json'])) as { items: Obj[] }).items;
  const rollout = async (c: CoordinatorProc, name: string) =>
    (JSON.parse(await nkctlOk(c.nkctlConfig, ['rollout', 'list', '-o', 'json'])) as { items: Obj[] }).items.find((r) => r.metadata.name === name)!;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nk-backup-rollout-'));
    containerd = await startContainerdWithNetwork(path.join(dir, 'containerd'));
    coord = await startCoordinator(path.join(dir, 'coordinator'), ARGS);
    const { token, caCertHash } = await createToken(coord.nkctlConfig, 3);
    for (const [i, name] of ['node-a', 'node-b', 'node-c'].entries()) {
      const n = await makeSupervisedNode(dir, { name, machineId: `${i + 7}`.repeat(32), kubeletVersion: 'v1.31.2', runtimeSocket: containerd.socket });
      startNodeAgent(n, { server: coord.url, token, caHash: caCertHash });
      nodes.push(n);
    }
    const good = await kubeletArtifact(path.join(dir, 'artifacts'), { version: 'v1.31.3' });
    await nkctlOk(coord.nkctlConfig, ['artifact', 'push', good.file, '--package', 'kubelet', '--version', '1.31.3']);
    await waitFor('three Ready machines at 1.31.2', async () => {
      const items = await machines(coord);
      return items.length === 3 && items.every((m) => m.status['phase'] === 'Ready' && m.status['kubelet']?.version === 'Kubernetes v1.31.2');
    }, 60_000);
  });

  after(async () => {
    for (const n of nodes) await stopNode(n);
    await coord?.stop();
    await containerd?.stop();
    if (process.env['NK_KEEP_TEST_DIRS'] === undefined) await rm(dir, { recursive: true, force: true });
  });

  test('the agents reconnect to the restored coordinator and the rollout completes', async () => {
    await nkctlOk(coord.nkctlConfig, ['rollout', 'create', 'kubelet-1-31-3', '--package', 'kubelet=1.31.3', '--canary', '1', '--soak', '4s', '--batches', '50,100', '--max-unavailable', '1']);
    await waitFor('the canary done, the rollout still under way', async () => {
      const r = await rollout(coord, 'kubelet-1-31-3');
      return r.status['phase'] === 'Progressing' && r.status['counts'].succeeded >= 1 && r.status['counts'].succeeded < 3;
    }, 90_000, 200);
    const file = path.join(dir, 'mid-rollout.tar.gz');
    await nkctlOk(coord.nkctlConfig, ['backup', 'create', '-o', file]);
    const caHash = coord.caHash;
    const port = coord.port;
    // The machine is lost: the coordinator dies and its data dir with it.
    await coord.stop('SIGKILL');
    await rm(coord.dataDir, { recursive: true, force: true });

    const fresh = path.join(dir, 'restored');
    const r = restore(file, fresh);
    assert.equal(r.status, 0, r.stderr);
    coord = await startCoordinator(fresh, [...ARGS, '--port', String(port)]);
    assert.equal(coord.caHash, caHash, 'the CA the agents pinned');

    const watch = await nkctl(coord.nkctlConfig, ['rollout', 'status', 'kubelet-1-31-3', '-w', '--interval', '500ms']);
    assert.equal(watch.code, 0, `${watch.stdout}\n${watch.stderr}\n${coord.log().slice(-3000)}`);
    const done = await rollout(coord, 'kubelet-1-31-3');
    assert.equal(done.status['phase'], 'Completed');
    const items = await waitFor('every machine Ready at 1.31.3 on the restored coordinator', async () => {
      const list = await machines(coord);
      return list.every((m) => m.status['phase'] === 'Ready' && m.status['kubelet']?.version === 'Kubernetes v1.31.3') && list;
    }, 60_000);
    assert.deepEqual(items.map((m) => m.metadata.name).sort(), ['node-a', 'node-b', 'node-c']);
    // Reconnected with the credentials they had: no agent enrolled again.
    for (const n of nodes) assert.equal(n.agent!.log().split('\n').filter((l) => l.includes('"enrolled; the bootstrap token')).length, 1, `${n.name} enrolled once`);
  });
});
