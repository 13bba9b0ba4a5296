/**
 * `nkctl machine drain` with kubectl drain's rules, against a real kube-apiserver and
 * kube-controller-manager's disruption controller (PodDisruptionBudget status), with a
 * test kubelet that confirms an evicted pod gone only 3 s after its deletion starts:
 *   - pods no controller manages, pods with emptyDir data and orphaned DaemonSet pods
 *     refuse the whole drain, by name; nothing is evicted and the node is uncordoned;
 *   - --force and --delete-emptydir-data let them go; DaemonSet and static pods stay;
 *     the drain returns only once the evicted pods are gone;
 *   - the grace period: the pod's own, or --grace-period in the eviction;
 *   - a budget that blocks is retried until the timeout, then the drain stops naming
 *     the pod, the budget and the command that continues, and uncordons; a budget lifted
 *     mid-drain lets it finish; an nkctl drain interrupted mid-drain uncordons.
 */
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import Database from 'better-sqlite3';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startApiServer, startControllerManager, startEtcd, type ApiServer, type BinaryProc, type Etcd } from './harness/kube.ts';
import { BIN, nkctl, programEnv, startCoordinator, waitFor, type CoordinatorProc } from './harness/processes.ts';
import { daemonSet, readyNode, runningPod, startTestKubelet, type TestKubelet } from './harness/test-kubelet.ts';
import { createLogger } from '@nodekeeper/common';
import { readKubeconfig } from '../coordinator/src/host/kube-client.ts';
import { MemberCluster } from '../coordinator/src/member/member-cluster.ts';

/** How long the test kubelet takes to confirm a deleted pod gone. */
const KUBELET_DELAY_MS = 3000;

type Pod = { metadata: { name: string; deletionTimestamp?: string } };

describe('drains with kubectl drain rules', { timeout: 300_000 }, () => {
  let dir: string;
  let etcd: Etcd;
  let member: ApiServer;
  let kcm: BinaryProc;
  let coord: CoordinatorProc;
  let kubelet: TestKubelet;
  const k = (args: string[], input?: string) => member.kubectl(args, input === undefined ? {} : { input });
  const json = (args: string[]) => JSON.parse(k([...args, '-o', 'json']));
  const podsOn = (node: string): Pod[] => json(['get', 'pods', '--field-selector', `spec.nodeName=${node}`]).items;
  const unschedulable = (name: string) => json(['get', 'node', name]).spec.unschedulable === true;
  const rs = (name: string) => ({ kind: 'ReplicaSet', name });

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nk-drain-rules-'));
    etcd = await startEtcd(path.join(dir, 'etcd'));
    member = await startApiServer({ etcd, name: 'member', dir: path.join(dir, 'member') });
    kcm = await startControllerManager(member, ['disruption']);
    coord = await startCoordinator(path.join(dir, 'coordinator'), ['--member-kubeconfig', member.adminKubeconfig]);
    kubelet = startTestKubelet(member, { delayMs: KUBELET_DELAY_MS });
    for (const n of ['node-1', 'node-2', 'node-3']) readyNode(member, n);
  });

  after(async () => {
    await kubelet?.stop();
    await coord?.stop();
    await kcm?.stop();
    await member?.stop();
    await etcd?.stop();
    if (process.env['NK_KEEP_TEST_DIRS'] === undefined && dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  test('unmanaged, emptyDir and orphaned DaemonSet pods refuse the drain by name: nothing is evicted, the node is uncordoned', async () => {
    daemonSet(member, 'agent');
    runningPod(member, 'web-1', 'node-1', { owner: rs('web') });
    runningPod(member, 'solo', 'node-1');
    runningPod(member, 'cache', 'node-1', { owner: rs('cache'), emptyDir: true });
    runningPod(member, 'agent-1', 'node-1', { owner: { kind: 'DaemonSet', name: 'agent' } });
    runningPod(member, 'ghost', 'node-1', { owner: { kind: 'DaemonSet', name: 'gone' } });
    runningPod(member, 'static-1', 'node-1', { mirror: true });
    const r = await nkctl(coord.nkctlConfig, ['machine', 'drain', 'node-1', '--timeout', '20s']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /NK_DRAIN_REFUSED/);
    assert.match(r.stderr, /drain of node-1 refused, nothing was evicted/);
    assert.match(r.stderr, /default\/solo \(no controller manages it/);
    assert.match(r.stderr, /default\/cache \(it has emptyDir data \(scratch\)/);
    assert.match(r.stderr, /default\/ghost \(its DaemonSet default\/gone does not exist/);
    assert.doesNotMatch(r.stderr, /web-1|agent-1|static-1/, 'only the refused pods are named');
    assert.match(r.stderr, /node uncordoned/);
    assert.equal(unschedulable('node-1'), false);
    assert.deepEqual(podsOn('node-1').filter((p) => p.metadata.deletionTimestamp !== undefined), [], 'nothing was evicted');
  });

  test('--force and --delete-emptydir-data let them go; DaemonSet and static pods stay; the drain returns once the pods are gone', async () => {
    const started = Date.now();
    const r = await nkctl(coord.nkctlConfig, ['machine', 'drain', 'node-1', '--force', '--delete-emptydir-data', '--timeout', '60s']);
    const returned = Date.now();
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /node\/node-1 drained: 4 pods evicted; left: default\/agent-1 \(DaemonSet pod\), default\/static-1 \(static pod\)/);
    // The test kubelet confirms a pod gone 3 s after its eviction: the drain waited for it.
    assert.ok(returned - started >= KUBELET_DELAY_MS, `returned after ${returned - started} ms, before the pods could be gone`);
    assert.deepEqual(podsOn('node-1').map((p) => p.metadata.name).sort(), ['agent-1', 'static-1'], 'the evicted pods are gone when the drain returns');
    for (const id of ['default/web-1', 'default/solo', 'default/cache', 'default/ghost']) {
      const t = kubelet.terminating.get(id);
      assert.ok(t?.goneAt !== null && t?.goneAt !== undefined && t.goneAt <= returned, `${id} gone before the drain returned`);
    }
    assert.equal(unschedulable('node-1'), true, 'a drained node stays cordoned until uncordoned');
  });

  test("the grace period: each pod's own by default, --grace-period's when given", async () => {
    runningPod(member, 'slow-1', 'node-3', { owner: rs('slow'), terminationGracePeriodSeconds: 13 });
    const a = await nkctl(coord.nkctlConfig, ['machine', 'drain', 'node-3', '--timeout', '60s']);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(kubelet.terminating.get('default/slow-1')?.gracePeriodSeconds, 13);
    assert.equal((await nkctl(coord.nkctlConfig, ['machine', 'uncordon', 'node-3'])).code, 0);
    runningPod(member, 'slow-2', 'node-3', { owner: rs('slow'), terminationGracePeriodSeconds: 13 });
    const b = await nkctl(coord.nkctlConfig, ['machine', 'drain', 'node-3', '--grace-period', '4', '--timeout', '60s']);
    assert.equal(b.code, 0, b.stderr);
    assert.equal(kubelet.terminating.get('default/slow-2')?.gracePeriodSeconds, 4);
    const bad = await nkctl(coord.nkctlConfig, ['machine', 'drain', 'node-3', '--grace-period', 'soon']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /invalid --grace-period "soon"/);
  });

  test('a pod replaced under the same name (another UID) counts as gone, as kubectl waitForDelete', async () => {
    assert.equal((await nkctl(coord.nkctlConfig, ['machine', 'uncordon', 'node-3'])).code, 0);
    runningPod(member, 'sts-0', 'node-3', { owner: { kind: 'StatefulSet', name: 'sts' } });
    const uid = json(['get', 'pod', 'sts-0']).metadata.uid as string;
    const drain = nkctl(coord.nkctlConfig, ['machine', 'drain', 'node-3', '--timeout', '60s']);
    await waitFor('sts-0 evicted', () => json(['get', 'pod', 'sts-0']).metadata.deletionTimestamp !== undefined, 20_000, 50);
    // Before the test kubelet would confirm it (3 s), its controller's replacement appears under the same name.
    k(['delete', 'pod', 'sts-0', '--grace-period=0', '--force', '--wait=false']);
    runningPod(member, 'sts-0', 'node-3', { owner: { kind: 'StatefulSet', name: 'sts' } });
    const r = await drain;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /node\/node-3 drained: 1 pods evicted/);
    const now = json(['get', 'pod', 'sts-0']).metadata;
    assert.notEqual(now.uid, uid, 'the replacement is still there, and the drain did not wait for it');
    assert.equal(now.deletionTimestamp, undefined);
    k(['delete', 'pod', 'sts-0', '--grace-period=0', '--force']);
  });

  test('a budget that blocks is retried until the timeout, then the drain stops naming the pod, the budget and the command that continues; the node is uncordoned', async () => {
    runningPod(member, 'db-1', 'node-2', { owner: rs('db'), labels: { app: 'db' } });
    runningPod(member, 'db-2', 'node-2', { owner: rs('db'), labels: { app: 'db' } });
    k(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: { name: 'db', namespace: 'default' }, spec: { minAvailable: 2, selector: { matchLabels: { app: 'db' } } } }));
    await waitFor('the disruption controller to judge the budget', () => {
      const s = json(['get', 'pdb', 'db']).status;
      return s?.observedGeneration === 1 && s.currentHealthy === 2 && s.disruptionsAllowed === 0;
    }, 60_000, 250);
    const started = Date.now();
    const r = await nkctl(coord.nkctlConfig, ['machine', 'drain', 'node-2', '--timeout', '6s']);
    assert.notEqual(r.code, 0);
    assert.ok(Date.now() - started >= 6000, 'the drain retried until its timeout');
    assert.match(r.stderr, /NK_DRAIN_BLOCKED/);
    assert.match(r.stderr, /drain of node-2 stopped after 6 s: eviction of default\/db-\d refused by PodDisruptionBudget default\/db: .*disruption budget/);
    assert.match(r.stderr, /continue with: nkctl machine drain node-2 --timeout 1m/);
    assert.match(r.stderr, /node uncordoned/);
    assert.equal(unschedulable('node-2'), false);
    assert.deepEqual(podsOn('node-2').filter((p) => p.metadata.deletionTimestamp !== undefined), []);
  });

  test('an nkctl drain interrupted mid-drain stops evicting and uncordons the node', async () => {
    // The budget still refuses db-1 and db-2: the drain is waiting on it when nkctl goes away.
    const child = spawn(process.execPath, [BIN.nkctl, 'machine', 'drain', 'node-2', '--timeout', '60s'], { env: programEnv({ NKCTL_CONFIG: coord.nkctlConfig }), stdio: 'ignore' });
    await waitFor('the drain to cordon node-2', () => unschedulable('node-2'), 20_000, 100);
    child.kill('SIGKILL');
    await waitFor('node-2 uncordoned once the client is gone', () => !unschedulable('node-2'), 20_000, 100);
    assert.deepEqual(podsOn('node-2').filter((p) => p.metadata.deletionTimestamp !== undefined), [], 'nothing evicted');
    const db = new Database(path.join(coord.dataDir, 'state.db'), { readonly: true });
    try {
      const events = db.prepare("SELECT reason, message FROM events WHERE object = 'machine/node-2' ORDER BY id").all() as Array<{ reason: string; message: string }>;
      assert.ok(events.some((e) => e.reason === 'DrainStopped' && /drain of node-2 stopped: the client went away; node uncordoned/.test(e.message)), JSON.stringify(events));
    } finally {
      db.close();
    }
  });

  test('a budget lifted mid-drain lets the drain finish', async () => {
    const drain = nkctl(coord.nkctlConfig, ['machine', 'drain', 'node-2', '--timeout', '60s']);
    await waitFor('the drain to cordon node-2', () => unschedulable('node-2'), 20_000, 100);
    await new Promise((res) => setTimeout(res, 2500));
    assert.deepEqual(podsOn('node-2').filter((p) => p.metadata.deletionTimestamp !== undefined), [], 'the budget holds the evictions');
    k(['delete', 'pdb', 'db']);
    const r = await drain;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /node\/node-2 drained: 2 pods evicted/);
    assert.deepEqual(podsOn('node-2'), []);
  });

  test("remediation's CordonAndNotify takes over its reinstall's cordon, whichever call lands first, so the node stays cordoned for the human", async () => {
    readyNode(member, 'node-4');
    const m = new MemberCluster(readKubeconfig(member.adminKubeconfig).kc, { log: createLogger({ name: 'test', level: 'silent' }), drainTimeoutMs: 60_000 });
    const mark = () => json(['get', 'node', 'node-4']).metadata.annotations?.['nodekeeper.io/cordoned-by'];
    const takeOver = (x: string) => x.startsWith('remediation-drain/');
    for (const order of ['uncordon first', 'cordon first']) {
      assert.equal(await m.cordon('node-4', 'remediation-drain/r'), 'cordoned');
      let human = false;
      const keep = () => (human ? 'a human is needed' : null);
      // The reinstall ends and its uncordon starts; meanwhile the ladder reaches CordonAndNotify.
      const calls = order === 'uncordon first'
        ? [m.uncordon('node-4', 'remediation-drain/r', keep), (human = true, m.cordon('node-4', 'remediation/r', takeOver))]
        : [(human = true, m.cordon('node-4', 'remediation/r', takeOver)), m.uncordon('node-4', 'remediation-drain/r', keep)];
      const results = await Promise.all(calls);
      assert.ok(unschedulable('node-4'), `${order}: ${JSON.stringify(results)}`);
      assert.equal(mark(), 'remediation/r', order);
      // The human restores it: nodekeeper's own uncordon by that mark works, an operator's cordon would stay.
      assert.equal(await m.uncordon('node-4', 'remediation/r'), 'uncordoned');
    }
    m.stop();
  });
});
