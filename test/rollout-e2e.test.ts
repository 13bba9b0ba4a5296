/**
 * A canary rollout end to end, with real processes: a coordinator, four agents whose
 * kubelet stand-ins run under the supervisor, artifacts pushed with the real nkctl.
 * A good version goes canary-first through batches to every machine; a version that
 * fails its health check halts on the canary and is rolled back by itself.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { stringify } from 'yaml';
import { kubeletArtifact } from './harness/artifacts.ts';
import { startContainerdWithNetwork, type RunningContainerd } from './harness/containerd.ts';
import { createToken, nkctl, nkctlOk, startCoordinator, waitFor, type CoordinatorProc } from './harness/processes.ts';
import { makeSupervisedNode, startNodeAgent, stopNode, type SupervisedNode } from './harness/supervised-node.ts';

type Obj = { metadata: { name: string }; status: Record<string, any> };

const COORDINATOR_ARGS = ['--heartbeat-interval', '500', '--liveness-grace', '5000', '--liveness-recover', '500', '--control-plane-version', 'v1.32.1', '--max-unavailable', '2'];

describe('canary rollouts of the kubelet', { timeout: 180_000 }, () => {
  let dir: string;
  let coord: CoordinatorProc;
  let containerd: RunningContainerd;
  const nodes: SupervisedNode[] = [];

  const nk = (args: string[]) => nkctlOk(coord.nkctlConfig, args);
  const kubeletVersions = async () =>
    Object.fromEntries(((JSON.parse(await nk(['get', 'machines', '-o', 'json'])) as { items: Obj[] }).items).map((m) => [m.metadata.name, m.status['kubelet']?.version]));
  const rollout = async (name: string) => (JSON.parse(await nk(['rollout', 'list', '-o', 'json'])) as { items: Obj[] }).items.find((r) => r.metadata.name === name)!;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nk-rollout-'));
    containerd = await startContainerdWithNetwork(path.join(dir, 'containerd'));
    coord = await startCoordinator(path.join(dir, 'coordinator'), COORDINATOR_ARGS);
    const { token, caCertHash } = await createToken(coord.nkctlConfig, 4);
    for (const [i, name] of ['node-a', 'node-b', 'node-c', 'node-d'].entries()) {
      const n = await makeSupervisedNode(dir, { name, machineId: `${i + 1}`.repeat(32), kubeletVersion: 'v1.31.2', runtimeSocket: containerd.socket });
      startNodeAgent(n, { server: coord.url, token, caHash: caCertHash });
      nodes.push(n);
    }
    // Artifacts of the kubelet stand-in: a good 1.31.3 and a 1.31.4 whose healthz fails.
    const good = await kubeletArtifact(path.join(dir, 'artifacts'), { version: 'v1.31.3' });
    const bad = await kubeletArtifact(path.join(dir, 'artifacts'), { version: 'v1.31.4', healthz: 'fail' });
    const later = await kubeletArtifact(path.join(dir, 'artifacts'), { version: 'v1.31.5' });
    await nk(['artifact', 'push', good.file, '--package', 'kubelet', '--version', '1.31.3']);
    await nk(['artifact', 'push', later.file, '--package', 'kubelet', '--version', '1.31.5']);
    const pushed = JSON.parse(await nk(['artifact', 'push', bad.file, '--package', 'kubelet', '--version', '1.31.4', '-o', 'json']));
    // A short health timeout for the kubelet, so a bad version is judged in seconds.
    const cpv = {
      apiVersion: 'nodekeeper.io/v1alpha1',
      kind: 'ClusterPackageVersion',
      metadata: { name: 'cluster' },
      spec: {
        packages: [{
          name: 'kubelet', version: '1.31.4',
          artifact: { url: pushed.url, sha256: pushed.sha256, size: pushed.size },
          manifest: { name: 'kubelet', format: 'tar.gz', links: [{ path: '/usr/bin/kubelet', target: 'kubelet' }], service: 'kubelet.service', healthProbe: 'kubelet', healthTimeoutMs: 4000 },
        }],
      },
    };
    await writeFile(path.join(dir, 'cpv.yaml'), stringify(cpv));
    await nk(['apply', '-f', path.join(dir, 'cpv.yaml')]);
    await waitFor('four Ready machines at 1.31.2', async () => {
      const items = (JSON.parse(await nk(['get', 'machines', '-o', 'json'])) as { items: Obj[] }).items;
      return items.length === 4 && items.every((m) => m.status['phase'] === 'Ready' && m.status['kubelet']?.version === 'Kubernetes v1.31.2');
    }, 30_000);
  });

  after(async () => {
    for (const n of nodes) await stopNode(n);
    await coord?.stop();
    await containerd?.stop();
    if (process.env['NK_KEEP_TEST_DIRS'] === undefined) await rm(dir, { recursive: true, force: true });
  });

  test('a good version goes canary first, then batches, to every machine', async () => {
    await nk(['rollout', 'create', 'kubelet-1-31-3', '--package', 'kubelet=1.31.3', '--canary', '1', '--soak', '3s', '--batches', '50,100', '--max-unavailable', '2']);
    const watch = await nkctl(coord.nkctlConfig, ['rollout', 'status', 'kubelet-1-31-3', '-w', '--interval', '500ms']);
    assert.equal(watch.code, 0, `${watch.stdout}\n${watch.stderr}`);
    const r = await rollout('kubelet-1-31-3');
    assert.equal(r.status['phase'], 'Completed');
    assert.equal(r.status['counts'].succeeded, 4);
    assert.deepEqual(Object.values(await kubeletVersions()), Array(4).fill('Kubernetes v1.31.3'));
    // The canary finished before anyone else started.
    const canary = r.status['canary'][0] as string;
    const started = (r.status['machines'] as Array<{ name: string; since: string }>);
    assert.ok(started.some((m) => m.name === canary));
  });

  test('a version that fails its health check halts on the canary and rolls back', async () => {
    await nk(['rollout', 'create', 'kubelet-1-31-4', '--package', 'kubelet=1.31.4', '--canary', '1', '--soak', '3s', '--batches', '100', '--on-failure', 'rollback']);
    const watch = await nkctl(coord.nkctlConfig, ['rollout', 'status', 'kubelet-1-31-4', '-w', '--interval', '500ms']);
    assert.notEqual(watch.code, 0, 'a rolled-back rollout is not a success');
    const r = await rollout('kubelet-1-31-4');
    assert.match(r.status['phase'], /RolledBack|Paused|Failed/);
    const touched = (r.status['machines'] as Array<{ phase: string }>).filter((m) => m.phase !== 'Waiting' && m.phase !== 'Skipped');
    assert.equal(touched.length, 1, 'only the canary was touched');
    await waitFor('every kubelet back at 1.31.3', async () => Object.values(await kubeletVersions()).every((v) => v === 'Kubernetes v1.31.3'), 30_000);
  });

  test('a coordinator killed mid-rollout resumes it: nothing installed twice, nothing skipped', async () => {
    await nk(['rollout', 'create', 'kubelet-1-31-5', '--package', 'kubelet=1.31.5', '--canary', '1', '--soak', '2s', '--batches', '50,100', '--max-unavailable', '1']);
    await waitFor('the canary done and the next batch under way', async () => {
      const r = await rollout('kubelet-1-31-5');
      return r.status['counts'].succeeded >= 1 && r.status['phase'] === 'Progressing';
    }, 60_000, 200);
    await coord.stop('SIGKILL');
    coord = await startCoordinator(coord.dataDir, [...COORDINATOR_ARGS, '--port', String(coord.port)]);
    const watch = await nkctl(coord.nkctlConfig, ['rollout', 'status', 'kubelet-1-31-5', '-w', '--interval', '500ms']);
    assert.equal(watch.code, 0, `${watch.stdout}\n${watch.stderr}`);
    assert.deepEqual(Object.values(await kubeletVersions()), Array(4).fill('Kubernetes v1.31.5'));
    const db = new Database(path.join(coord.dataDir, 'state.db'), { readonly: true });
    try {
      const rows = db.prepare("SELECT machine, COUNT(*) AS n FROM commands WHERE owner = 'rollout/kubelet-1-31-5' AND kind = 'package.install' GROUP BY machine ORDER BY machine").all();
      assert.deepEqual(rows, ['node-a', 'node-b', 'node-c', 'node-d'].map((machine) => ({ machine, n: 1 })));
    } finally {
      db.close();
    }
  });
});
