/**
 * Cordon and drain through the member cluster's API, against a real kube-apiserver and
 * the real kube-controller-manager's disruption controller (which keeps
 * PodDisruptionBudget status). Pods are created through the API and marked Running and
 * Ready as their kubelet would; the test also plays the kubelet's part of confirming a
 * deleted pod is gone. A PDB that refuses evictions makes the drain wait, then stop
 * with the budget's reason and uncordon; a budget lifted mid-drain lets it finish.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startApiServer, startControllerManager, startEtcd, type ApiServer, type BinaryProc, type Etcd } from './harness/kube.ts';
import { nkctl, nkctlOk, startCoordinator, waitFor, type CoordinatorProc } from './harness/processes.ts';
import { daemonSet, readyNode, runningPod, startTestKubelet, type TestKubelet } from './harness/test-kubelet.ts';

describe('cordon and drain through the member API', { timeout: 300_000 }, () => {
  let dir: string;
  let etcd: Etcd;
  let member: ApiServer;
  let kcm: BinaryProc;
  let coord: CoordinatorProc;
  let kubelet: TestKubelet;
  const k = (args: string[], input?: string) => member.kubectl(args, input === undefined ? {} : { input });
  const json = (args: string[]) => JSON.parse(k([...args, '-o', 'json']));
  const apply = (obj: unknown) => k(['apply', '-f', '-'], JSON.stringify(obj));
  /** A pod bound to the node, Running and Ready (a ReplicaSet's unless said), from the shared test kubelet harness. */
  const pod = (name: string, node: string, labels: Record<string, string>, owner: { kind: string; name: string } = { kind: 'ReplicaSet', name: 'web' }) =>
    runningPod(member, name, node, { labels, owner, terminationGracePeriodSeconds: 1 });
  const unschedulable = (name: string) => json(['get', 'node', name]).spec.unschedulable === true;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nk-drain-'));
    etcd = await startEtcd(path.join(dir, 'etcd'));
    member = await startApiServer({ etcd, name: 'member', dir: path.join(dir, 'member') });
    kcm = await startControllerManager(member, ['disruption']);
    coord = await startCoordinator(path.join(dir, 'coordinator'), ['--member-kubeconfig', member.adminKubeconfig]);
    // The kubelet's part: a pod marked for deletion is stopped and confirmed gone (the drain waits for it).
    kubelet = startTestKubelet(member, { delayMs: 0 });
    readyNode(member, 'node-1');
    readyNode(member, 'node-2');
  });

  after(async () => {
    await kubelet?.stop();
    await coord?.stop();
    await kcm?.stop();
    await member?.stop();
    await etcd?.stop();
  });

  test('a PodDisruptionBudget that refuses evictions stops the drain with its reason, and the node is uncordoned', async () => {
    pod('web-1', 'node-1', { app: 'web' });
    pod('web-2', 'node-1', { app: 'web' });
    apply({ apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: { name: 'web', namespace: 'default' }, spec: { minAvailable: 2, selector: { matchLabels: { app: 'web' } } } });
    await waitFor('the disruption controller to judge the budget', () => {
      const s = json(['get', 'pdb', 'web']).status;
      return s?.observedGeneration === 1 && s.currentHealthy === 2 && s.disruptionsAllowed === 0;
    }, 60_000, 250);
    const started = Date.now();
    const r = await nkctl(coord.nkctlConfig, ['machine', 'drain', 'node-1', '--timeout', '5s']);
    assert.notEqual(r.code, 0);
    assert.ok(Date.now() - started >= 4000, 'the drain waited on the budget before stopping');
    assert.match(r.stderr, /drain of node-1 stopped after 5 s: eviction of default\/web-\d refused by PodDisruptionBudget default\/web: .*disruption budget/);
    assert.match(r.stderr, /NK_DRAIN_BLOCKED/);
    assert.match(r.stderr, /node uncordoned/);
    assert.equal(unschedulable('node-1'), false, 'nodekeeper never leaves its own cordon behind');
    assert.equal(json(['get', 'pods']).items.filter((p: { metadata: { deletionTimestamp?: string } }) => !p.metadata.deletionTimestamp).length, 2, 'nothing was evicted');
  });

  test('a drain waits while the budget refuses, and finishes once it allows; DaemonSet pods stay', async () => {
    daemonSet(member, 'agent');
    pod('agent-ds', 'node-1', { app: 'agent' }, { kind: 'DaemonSet', name: 'agent' });
    const drain = nkctl(coord.nkctlConfig, ['machine', 'drain', 'node-1', '--timeout', '60s']);
    await waitFor('the drain to cordon the node', () => unschedulable('node-1'), 20_000, 100);
    await new Promise((r) => setTimeout(r, 2500));
    // The budget is lifted (an operator scales up, or removes it): the waiting drain proceeds.
    k(['delete', 'pdb', 'web']);
    const r = await drain;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /node\/node-1 drained: 2 pods evicted; left: default\/agent-ds \(DaemonSet pod\)/);
    // The drain returned once the evicted pods were gone.
    assert.deepEqual(json(['get', 'pods']).items.map((p: { metadata: { name: string } }) => p.metadata.name), ['agent-ds']);
    assert.equal(unschedulable('node-1'), true, 'a drained node stays cordoned until uncordoned');
    assert.match(await nkctlOk(coord.nkctlConfig, ['machine', 'uncordon', 'node-1']), /node\/node-1 uncordoned/);
    assert.equal(unschedulable('node-1'), false);
  });

  test("an operator's own cordon is never undone by nodekeeper", async () => {
    k(['cordon', 'node-2']);
    assert.match(await nkctlOk(coord.nkctlConfig, ['machine', 'cordon', 'node-2']), /already-cordoned/);
    assert.match(await nkctlOk(coord.nkctlConfig, ['machine', 'uncordon', 'node-2']), /not-ours/);
    assert.equal(unschedulable('node-2'), true);
    const missing = await nkctl(coord.nkctlConfig, ['machine', 'cordon', 'no-such-node']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /NK_MEMBER_NODE_NOT_FOUND/);
  });
});
