/**
 * Rollouts drain before a disruptive install and uncordon after, through the member
 * cluster's API: a real kube-apiserver and kube-controller-manager (disruption
 * controller), a real coordinator, agents with kubelet stand-ins under the supervisor,
 * real containerd. A node whose pods may move is cordoned, drained, upgraded and
 * uncordoned; a node whose pod a PodDisruptionBudget protects stops at the drain: the
 * install is never started, the rollout pauses with the budget's reason, and the node
 * is uncordoned. The rollout spec's drain options decide whether an emptyDir pod may go
 * (kubectl drain's rules), and a remediation ReinstallPackage step drains first too.
 * A test kubelet confirms evicted pods gone; drains wait for that.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, realpath, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { kubeletArtifact } from './harness/artifacts.ts';
import { startContainerdWithNetwork, type RunningContainerd } from './harness/containerd.ts';
import { startApiServer, startControllerManager, startEtcd, type ApiServer, type BinaryProc, type Etcd } from './harness/kube.ts';
import { createToken, nkctlOk, startCoordinator, waitFor, type CoordinatorProc } from './harness/processes.ts';
import { startTestKubelet, type TestKubelet } from './harness/test-kubelet.ts';
import { makeSupervisedNode, startNodeAgent, stopNode, type SupervisedNode } from './harness/supervised-node.ts';

type Obj = { metadata: { name: string }; status: Record<string, any> };

describe('rollouts drain before a disruptive install', { timeout: 600_000 }, () => {
  let dir: string;
  let etcd: Etcd;
  let member: ApiServer;
  let kcm: BinaryProc;
  let containerd: RunningContainerd;
  let coord: CoordinatorProc;
  let kubelet: TestKubelet;
  const nodes: SupervisedNode[] = [];

  const nk = (args: string[]) => nkctlOk(coord.nkctlConfig, args);
  const k = (args: string[], input?: string) => member.kubectl(args, input === undefined ? {} : { input });
  const json = (args: string[]) => JSON.parse(k([...args, '-o', 'json']));
  const now = () => new Date().toISOString();
  const unschedulable = (name: string) => json(['get', 'node', name]).spec.unschedulable === true;
  const podsOn = (node: string): string[] => json(['get', 'pods', '--field-selector', `spec.nodeName=${node}`]).items.map((p: Obj) => p.metadata.name);
  const machine = async (name: string) => (JSON.parse(await nk(['get', 'machines', '-o', 'json'])) as { items: Obj[] }).items.find((m) => m.metadata.name === name)!;
  const phaseOf = async (name: string) => ((JSON.parse(await nk(['rollout', 'list', '-o', 'json'])) as { items: Obj[] }).items.find((r) => r.metadata.name === name)?.status['phase'] as string | undefined);
  /** A ReplicaSet's pod (kubectl drain refuses unmanaged ones), with emptyDir data if asked. */
  const pod = (name: string, node: string, labels: Record<string, string>, emptyDir = false) => {
    k(['apply', '-f', '-'], JSON.stringify({
      apiVersion: 'v1', kind: 'Pod',
      metadata: { name, namespace: 'default', labels, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: `rs-${name}`, uid: '00000000-0000-0000-0000-000000000001', controller: true }] },
      spec: { nodeName: node, containers: [{ name: 'app', image: 'registry.invalid/app:1' }], ...(emptyDir ? { volumes: [{ name: 'scratch', emptyDir: {} }] } : {}) },
    }));
    k(['patch', 'pod', name, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: now() }] } })]);
  };

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nk-rollout-drain-'));
    etcd = await startEtcd(path.join(dir, 'etcd'));
    member = await startApiServer({ etcd, name: 'member', dir: path.join(dir, 'member') });
    kcm = await startControllerManager(member, ['disruption']);
    kubelet = startTestKubelet(member, { delayMs: 1000 });
    containerd = await startContainerdWithNetwork(path.join(dir, 'containerd'));
    coord = await startCoordinator(path.join(dir, 'coordinator'), coordArgs('4000'));
    const { token, caCertHash } = await createToken(coord.nkctlConfig, 2);
    for (const [i, name] of ['node-a', 'node-b'].entries()) {
      const n = await makeSupervisedNode(dir, { name, machineId: `${i + 1}`.repeat(32), kubeletVersion: 'v1.35.2', runtimeSocket: containerd.socket });
      startNodeAgent(n, { server: coord.url, token, caHash: caCertHash });
      nodes.push(n);
      k(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name } }));
      k(['patch', 'node', name, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: { conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', lastHeartbeatTime: now(), lastTransitionTime: now() }] } })]);
    }
    pod('web-a', 'node-a', { app: 'web' });
    pod('db-b', 'node-b', { app: 'db' });
    k(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: { name: 'db', namespace: 'default' }, spec: { minAvailable: 1, selector: { matchLabels: { app: 'db' } } } }));
    await waitFor('the disruption controller to protect db-b', () => json(['get', 'pdb', 'db']).status?.currentHealthy === 1, 60_000, 250);
    const good = await kubeletArtifact(path.join(dir, 'artifacts'), { version: 'v1.35.3' });
    await nk(['artifact', 'push', good.file, '--package', 'kubelet', '--version', '1.35.3']);
    await waitFor('two Ready machines at 1.35.2', async () => {
      const items = (JSON.parse(await nk(['get', 'machines', '-o', 'json'])) as { items: Obj[] }).items;
      return items.length === 2 && items.every((m) => m.status['phase'] === 'Ready' && m.status['kubelet']?.version === 'Kubernetes v1.35.2');
    }, 30_000);
  });

  const coordArgs = (drainTimeout: string) => [
    '--heartbeat-interval', '500', '--liveness-grace', '5000', '--liveness-recover', '500',
    '--member-kubeconfig', member.adminKubeconfig, '--drain-timeout', drainTimeout, '--max-unavailable', '2',
    // Remediation notices a fault within a second (the last test's reinstall).
    '--fault-hold', '1', '--fault-clear', '2',
  ];

  after(async () => {
    for (const n of nodes) await stopNode(n);
    await kubelet?.stop();
    await coord?.stop();
    await containerd?.stop();
    await kcm?.stop();
    await member?.stop();
    await etcd?.stop();
    if (process.env['NK_KEEP_TEST_DIRS'] === undefined && dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  // A rollout that installs soaks 5 s: the kubelet stand-in restarts with the install, and on a loaded
  // machine its first healthy report may come later than a 1 s soak allows (UnhealthyDuringSoak).
  test('a node whose pods may move is cordoned, drained, upgraded and uncordoned', async () => {
    // The spec's drain timeout beats the coordinator's --drain-timeout (4 s, for the budget test below):
    // the drain waits for web-a to be gone, and the test kubelet may be slow on a loaded machine.
    await nk(['rollout', 'create', 'kubelet-a', '--package', 'kubelet=1.35.3', '--names', 'node-a', '--canary', '0', '--soak', '5s', '--batches', '100', '--drain-timeout', '60s']);
    // While it runs, the node is cordoned before the install starts.
    await waitFor('node-a cordoned', () => unschedulable('node-a'), 30_000, 100);
    await waitFor('the rollout Completed', async () => (await phaseOf('kubelet-a')) === 'Completed', 60_000);
    assert.equal((await machine('node-a')).status['kubelet']?.version, 'Kubernetes v1.35.3');
    assert.equal(podsOn('node-a').some((p) => p === 'web-a'), false, 'web-a was evicted and is gone');
    await waitFor('node-a uncordoned after the install', () => !unschedulable('node-a'), 20_000, 100);
    const story = await nk(['describe', 'machine', 'node-a']);
    assert.match(story, /Drained.*rollout\/kubelet-a: Node node-a cordoned and drained before installing kubelet \(1 pods evicted\)/);
    assert.match(story, /Uncordoned.*rollout\/kubelet-a: Node node-a uncordoned after the install \(Succeeded\)/);
  });

  test('a PodDisruptionBudget stops the drain: the install never starts, the rollout pauses with the reason, the node is uncordoned', async () => {
    await nk(['rollout', 'create', 'kubelet-b', '--package', 'kubelet=1.35.3', '--names', 'node-b', '--canary', '0', '--soak', '1s', '--batches', '100', '--on-failure', 'pause']);
    await waitFor('node-b cordoned for the drain', () => unschedulable('node-b'), 30_000, 100);
    await waitFor('the rollout Paused', async () => (await phaseOf('kubelet-b')) === 'Paused', 60_000);
    const r = JSON.parse(await nk(['rollout', 'list', '-o', 'json'])).items.find((x: Obj) => x.metadata.name === 'kubelet-b');
    const m = r.status.machines.find((x: { name: string }) => x.name === 'node-b');
    assert.equal(m.phase, 'Failed');
    assert.match(m.message, /drain of node-b stopped after 4 s: eviction of default\/db-b refused by PodDisruptionBudget default\/db: .*disruption budget.*continue with: nkctl rollout resume kubelet-b .*; node uncordoned; the install was not started/);
    assert.equal(unschedulable('node-b'), false);
    assert.equal((await machine('node-b')).status['kubelet']?.version, 'Kubernetes v1.35.2', 'the package was never touched');
    assert.equal(json(['get', 'pod', 'db-b']).metadata.deletionTimestamp, undefined);
  });

  test('a coordinator killed mid-drain drains again after its restart, installs once, and uncordons', async () => {
    await nk(['rollout', 'abort', 'kubelet-b']);
    await coord.stop();
    const restarted = Date.now();
    coord = await startCoordinator(coord.dataDir, [...coordArgs('120000'), '--port', String(coord.port)]);
    await waitFor('node-b connected again', async () => Date.parse((await machine('node-b')).status['lastSeenTime'] ?? '0') > restarted, 90_000);
    await nk(['rollout', 'create', 'kubelet-b2', '--package', 'kubelet=1.35.3', '--names', 'node-b', '--canary', '0', '--soak', '5s', '--batches', '100']);
    await waitFor('node-b cordoned for the drain', () => unschedulable('node-b'), 30_000, 100);
    await coord.stop('SIGKILL');
    assert.equal(unschedulable('node-b'), true, 'killed mid-drain: the cordon is still there');
    coord = await startCoordinator(coord.dataDir, [...coordArgs('120000'), '--port', String(coord.port)]);
    // The budget is lifted while the restarted coordinator drains again.
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal(unschedulable('node-b'), true);
    k(['delete', 'pdb', 'db']);
    // A timeout here says where it stopped: the rollout, the machine's story and the log.
    await waitFor('the rollout Completed', async () => (await phaseOf('kubelet-b2')) === 'Completed', 90_000).catch(async (err: Error) => {
      const story = await Promise.all([nk(['rollout', 'describe', 'kubelet-b2']), nk(['describe', 'machine', 'node-b'])]).catch((e: Error) => [e.message]);
      throw new Error(`${err.message}\n${story.join('\n')}\ncoordinator log (tail):\n${coord.log().split('\n').filter((l) => /"level":(40|50)|drain|rollout|command/.test(l)).slice(-40).join('\n')}`);
    });
    assert.equal((await machine('node-b')).status['kubelet']?.version, 'Kubernetes v1.35.3');
    await waitFor('node-b uncordoned', () => !unschedulable('node-b'), 20_000, 100);
    // Drained once, after the restart (the first drain was killed), and installed once.
    const story = await nk(['describe', 'machine', 'node-b']);
    assert.equal((story.match(/Drained.*rollout\/kubelet-b2/g) ?? []).length, 1, story);
    assert.match(story, /Uncordoned.*rollout\/kubelet-b2: Node node-b uncordoned after the install \(Succeeded\)/);
  });

  test('a rollout aborted while its install waits behind a drain: the install is never sent, the drain stops, the node is uncordoned', async () => {
    // A pod a budget protects holds the drain of node-b (the drain timeout is 120 s now).
    pod('cache-b', 'node-b', { app: 'cache' });
    k(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: { name: 'cache', namespace: 'default' }, spec: { minAvailable: 1, selector: { matchLabels: { app: 'cache' } } } }));
    await waitFor('the disruption controller to protect cache-b', () => json(['get', 'pdb', 'cache']).status?.currentHealthy === 1, 60_000, 250);
    const next = await kubeletArtifact(path.join(dir, 'artifacts'), { version: 'v1.35.4' });
    await nk(['artifact', 'push', next.file, '--package', 'kubelet', '--version', '1.35.4']);
    await nk(['rollout', 'create', 'kubelet-c', '--package', 'kubelet=1.35.4', '--names', 'node-b', '--canary', '0', '--soak', '1s', '--batches', '100']);
    await waitFor('node-b cordoned for the drain', () => unschedulable('node-b'), 30_000, 100);
    await nk(['rollout', 'abort', 'kubelet-c']);
    // The budget goes away: a drain still running would now finish, and send the install.
    k(['delete', 'pdb', 'cache']);
    await waitFor('node-b uncordoned', () => !unschedulable('node-b'), 30_000, 100);
    await new Promise((r) => setTimeout(r, 5000));
    const r = JSON.parse(await nk(['rollout', 'list', '-o', 'json'])).items.find((x: Obj) => x.metadata.name === 'kubelet-c');
    assert.equal(r.status.phase, 'Failed');
    const m = r.status.machines.find((x: { name: string }) => x.name === 'node-b');
    assert.equal(m.phase, 'Skipped');
    assert.match(m.message, /never sent/);
    assert.equal((await machine('node-b')).status['kubelet']?.version, 'Kubernetes v1.35.3', 'the install never ran');
    assert.equal(json(['get', 'pod', 'cache-b']).metadata.deletionTimestamp, undefined, 'the drain stopped: cache-b was not evicted');
    assert.equal(unschedulable('node-b'), false);
    const story = await nk(['describe', 'machine', 'node-b']);
    assert.match(story, /DrainStopped.*rollout\/kubelet-c: drain of node-b stopped: the install was cancelled/);
    assert.doesNotMatch(story, /Drained.*rollout\/kubelet-c/);
  });

  test("the rollout spec's drain options: an emptyDir pod refuses the drain by name until deleteEmptyDirData allows it", async () => {
    pod('scratch-a', 'node-a', { app: 'scratch' }, true);
    await nk(['rollout', 'create', 'kubelet-d', '--package', 'kubelet=1.35.4', '--names', 'node-a', '--canary', '0', '--soak', '1s', '--batches', '100']);
    await waitFor('the rollout Paused', async () => (await phaseOf('kubelet-d')) === 'Paused', 60_000);
    const r = JSON.parse(await nk(['rollout', 'list', '-o', 'json'])).items.find((x: Obj) => x.metadata.name === 'kubelet-d');
    const m = r.status.machines.find((x: { name: string }) => x.name === 'node-a');
    assert.equal(m.phase, 'Failed');
    assert.match(m.message, /drain of node-a refused, nothing was evicted: default\/scratch-a \(it has emptyDir data \(scratch\).*node uncordoned; the install was not started/);
    assert.equal(unschedulable('node-a'), false);
    assert.equal(json(['get', 'pod', 'scratch-a']).metadata.deletionTimestamp, undefined, 'nothing was evicted');
    assert.equal((await machine('node-a')).status['kubelet']?.version, 'Kubernetes v1.35.3');
    assert.match(await nk(['describe', 'machine', 'node-a']), /DrainRefused.*rollout\/kubelet-d: drain of node-a refused/);
    await nk(['rollout', 'abort', 'kubelet-d']);

    const dry = await nk(['rollout', 'create', 'kubelet-e', '--package', 'kubelet=1.35.4', '--names', 'node-a', '--canary', '0', '--soak', '5s', '--batches', '100', '--drain-delete-emptydir-data', '--drain-timeout', '60s', '--dry-run', '-o', 'json']);
    assert.deepEqual(JSON.parse(dry).spec.drain, { deleteEmptyDirData: true, timeoutSeconds: 60 });
    await nk(['rollout', 'create', 'kubelet-e', '--package', 'kubelet=1.35.4', '--names', 'node-a', '--canary', '0', '--soak', '5s', '--batches', '100', '--drain-delete-emptydir-data', '--drain-timeout', '60s']);
    await waitFor('the rollout Completed', async () => (await phaseOf('kubelet-e')) === 'Completed', 60_000);
    assert.equal((await machine('node-a')).status['kubelet']?.version, 'Kubernetes v1.35.4');
    assert.equal(podsOn('node-a').includes('scratch-a'), false, 'scratch-a evicted and gone');
    await waitFor('node-a uncordoned after the install', () => !unschedulable('node-a'), 20_000, 100);
    assert.match(await nk(['describe', 'machine', 'node-a']), /Drained.*rollout\/kubelet-e: Node node-a cordoned and drained before installing kubelet \(1 pods evicted\)/);
  });

  test('a remediation ReinstallPackage step cordons and drains first, then installs, then uncordons', async () => {
    const a = nodes[0]!;
    await nk(['machine', 'pin', 'node-a', 'kubelet=1.35.4']);
    pod('app-a', 'node-a', { app: 'app' });
    const file = path.join(dir, 'rule.json');
    await writeFile(file, JSON.stringify({
      apiVersion: 'nodekeeper.io/v1alpha1', kind: 'RemediationRule', metadata: { name: 'kubelet-down' },
      spec: { fault: 'KubeletUnhealthy', forSeconds: 1, cooldownSeconds: 2, drain: { timeoutSeconds: 60 },
        ladder: [{ action: 'ReinstallPackage', target: 'kubelet', timeoutSeconds: 60, successWithinSeconds: 20 }, { action: 'CordonAndNotify' }] },
    }));
    await nk(['apply', '-f', file]);
    // The installed binary deleted and the kubelet restarted: it cannot start (KubeletUnhealthy, BinaryNotFound). The
    // reinstall re-stages the binary from the artifact and starts the kubelet again.
    await unlink(await realpath(path.join(a.root, 'usr/bin/kubelet')));
    await a.services.restart('kubelet.service').catch(() => {});
    await waitFor('node-a cordoned by the remediation drain', () => json(['get', 'node', 'node-a']).metadata.annotations?.['nodekeeper.io/cordoned-by'] === 'remediation-drain/kubelet-down', 60_000, 100);
    const story = await waitFor('the reinstall done and node-a uncordoned', async () => {
      const text = await nk(['describe', 'machine', 'node-a']);
      // The remediation records its step's result on its own tick, which may come just after the uncordon.
      return /Uncordoned.*remediation-drain\/kubelet-down: Node node-a uncordoned after the install \(Succeeded\)/.test(text) && /StepCommandSucceeded/.test(text) && text;
    }, 90_000, 500);
    assert.equal(unschedulable('node-a'), false);
    assert.equal(podsOn('node-a').includes('app-a'), false, 'app-a evicted and gone before the install');
    const drained = story.search(/Drained.*remediation-drain\/kubelet-down: reinstall: Node node-a cordoned and drained before installing kubelet \(1 pods evicted\)/);
    assert.ok(drained >= 0, story);
    await waitFor('node-a healthy again', async () => (await machine('node-a')).status['kubelet']?.health === 'healthy', 30_000, 250);
  });
});
