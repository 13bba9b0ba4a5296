/**
 * Kubernetes Events (events.k8s.io/v1) on member Nodes, against the reference
 * kube-apiserver: a real coordinator whose member credential has only the RBAC the docs
 * give, reaching the API through a TCP forwarder the test can cut; a real agent with a
 * kubelet stand-in and a real containerd for the remediation case. Other coordinator
 * events are appended to its SQLite file by the test, as its controllers would (the sink
 * reads the table by id, whoever wrote it).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { stringify as toYaml } from 'yaml';
import { KUBE_EVENTS_RBAC_RULES } from '../coordinator/src/member/kube-events.ts';
import { REPORTING_CONTROLLER } from '../coordinator/src/member/kube-events-plan.ts';
import { recordEvents, type LoggedEvent } from './harness/event-log.ts';
import { startContainerdWithNetwork, type RunningContainerd } from './harness/containerd.ts';
import { installKubeletStandin } from './harness/kubelet-standin.ts';
import { startApiServer, startEtcd, type ApiServer, type Etcd } from './harness/kube.ts';
import { createToken, nkctlOk, startCoordinator, waitFor, type CoordinatorProc } from './harness/processes.ts';
import { makeSupervisedNode, startNodeAgent, stopNode, type SupervisedNode } from './harness/supervised-node.ts';
import { startTcpProxy, type TcpProxy } from './harness/tcp-proxy.ts';

interface KubeEvent {
  metadata: { name: string };
  regarding: { kind: string; name: string; uid?: string };
  reason: string;
  action: string;
  note: string;
  type: string;
  reportingController: string;
  reportingInstance: string;
  eventTime: string;
  series?: { count: number; lastObservedTime: string };
}

describe('Kubernetes Events on member Nodes', { timeout: 400_000 }, () => {
  let dir: string;
  let etcd: Etcd;
  let member: ApiServer;
  let proxy: TcpProxy;
  let containerd: RunningContainerd;
  let coord: CoordinatorProc;
  let node: SupervisedNode | null = null;
  let coordArgs: string[];
  const user = { name: 'nk-coordinator', token: randomBytes(24).toString('hex'), groups: ['nk:coordinators'] };
  const k = (args: string[], input?: string) => member.kubectl(args, input === undefined ? {} : { input });
  const apply = (obj: unknown) => k(['apply', '-f', '-'], JSON.stringify(obj));
  const now = () => new Date().toISOString();
  const makeNode = (name: string) => {
    apply({ apiVersion: 'v1', kind: 'Node', metadata: { name } });
    k(['patch', 'node', name, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: { conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', lastHeartbeatTime: now(), lastTransitionTime: now() }] } })]);
  };
  /** Our Events about a Node, as events.k8s.io/v1 objects. */
  const eventsOf = (nodeName: string): KubeEvent[] =>
    (JSON.parse(k(['get', 'events.v1.events.k8s.io', '-n', 'default', '-o', 'json'])).items as KubeEvent[])
      .filter((e) => e.regarding?.name === nodeName && e.reportingController === REPORTING_CONTROLLER);
  const ours = (): KubeEvent[] => (JSON.parse(k(['get', 'events.v1.events.k8s.io', '-n', 'default', '-o', 'json'])).items as KubeEvent[])
    .filter((e) => e.reportingController === REPORTING_CONTROLLER);
  const record = (events: LoggedEvent[]) => recordEvents(coord.dataDir, events);
  const metric = async (name: string, labels: string) => {
    const text = await (await fetch(new URL('/metrics', coord.url))).text();
    const m = new RegExp(`^${name}\\{${labels}\\} (\\d+)$`, 'm').exec(text);
    return m === null ? 0 : Number(m[1]);
  };

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nk-kube-events-'));
    etcd = await startEtcd(path.join(dir, 'etcd'));
    member = await startApiServer({ etcd, name: 'member', dir: path.join(dir, 'member'), users: [user] });
    // The member credential: reading and cordoning Nodes (what the coordinator did
    // before), plus exactly the rules docs/kubernetes.md gives for Events.
    apply({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: 'nk-nodes' }, rules: [{ apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch', 'patch'] }] });
    apply({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: 'nk-nodes' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'nk-nodes' }, subjects: [{ kind: 'User', name: user.name }] });
    apply({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'nk-events', namespace: 'default' }, rules: KUBE_EVENTS_RBAC_RULES });
    apply({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'nk-events', namespace: 'default' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'nk-events' }, subjects: [{ kind: 'User', name: user.name }] });
    proxy = await startTcpProxy(Number(new URL(member.url).port));
    const kubeconfig = path.join(dir, 'member-coordinator.kubeconfig');
    await writeFile(kubeconfig, toYaml({
      apiVersion: 'v1', kind: 'Config', 'current-context': 'member',
      clusters: [{ name: 'member', cluster: { server: `https://127.0.0.1:${proxy.port}`, 'certificate-authority-data': Buffer.from(member.caPem).toString('base64') } }],
      users: [{ name: 'user', user: { token: user.token } }],
      contexts: [{ name: 'member', context: { cluster: 'member', user: 'user' } }],
    }), { mode: 0o600 });
    for (const n of ['node-a', 'node-s', 'node-b', 'node-k']) makeNode(n);
    containerd = await startContainerdWithNetwork(path.join(dir, 'containerd'));
    coordArgs = [
      '--insecure', '--member-kubeconfig', kubeconfig, '--kube-events-node-burst', '15',
      '--heartbeat-interval', '500', '--liveness-grace', '5000', '--liveness-recover', '500',
      '--fault-hold', '1', '--fault-clear', '2', '--storm-cooldown', '3',
    ];
    coord = await startCoordinator(path.join(dir, 'coordinator'), coordArgs);
  });

  after(async () => {
    if (node !== null) await stopNode(node);
    await coord?.stop();
    await containerd?.stop();
    await proxy?.close();
    await member?.stop();
    await etcd?.stop();
    if (process.env['NK_KEEP_TEST_DIRS'] === undefined) await rm(dir, { recursive: true, force: true });
  });

  test('a remediation on a broken node shows as Events on its Node (kubectl get events, kubectl events --for)', async () => {
    const { token } = await createToken(coord.nkctlConfig, 1);
    node = await makeSupervisedNode(dir, { name: 'node-a', machineId: 'a'.repeat(32), kubeletVersion: 'v1.31.2', runtimeSocket: containerd.socket });
    startNodeAgent(node, { server: coord.url, token });
    const step = (action: string, target?: string) => ({ action, ...(target === undefined ? {} : { target }), timeoutSeconds: 20, successWithinSeconds: 6 });
    const rule = {
      apiVersion: 'nodekeeper.io/v1alpha1', kind: 'RemediationRule', metadata: { name: 'kubelet-sick' },
      spec: { fault: 'KubeletUnhealthy', forSeconds: 1, ladder: [step('RestartService', 'kubelet.service'), step('CordonAndNotify')], maxAttemptsPerMachine: 3, cooldownSeconds: 2 },
    };
    await writeFile(path.join(dir, 'rule.json'), JSON.stringify(rule));
    await nkctlOk(coord.nkctlConfig, ['apply', '-f', path.join(dir, 'rule.json')]);
    await waitFor('node-a Ready', async () => JSON.parse(await nkctlOk(coord.nkctlConfig, ['get', 'machine', 'node-a', '-o', 'json'])).status.phase === 'Ready', 40_000, 250);
    // Its kubelet now serves a failing healthz: a restart does not help, a human must.
    await installKubeletStandin(node.root, { version: 'v1.31.2', healthz: 'fail' });
    await node.services.restart('kubelet.service');
    const events = await waitFor('NeedsHuman and the cordon as Events on Node node-a', () => {
      const list = eventsOf('node-a');
      return list.some((e) => e.reason === 'NeedsHuman') && list.some((e) => e.reason === 'Cordoned') && list;
    }, 120_000, 500);
    const uid = JSON.parse(k(['get', 'node', 'node-a', '-o', 'json'])).metadata.uid;
    const needsHuman = events.find((e) => e.reason === 'NeedsHuman')!;
    assert.equal(needsHuman.type, 'Warning');
    assert.equal(needsHuman.action, 'Remediate');
    assert.deepEqual({ kind: needsHuman.regarding.kind, name: needsHuman.regarding.name, uid: needsHuman.regarding.uid }, { kind: 'Node', name: 'node-a', uid });
    assert.match(needsHuman.reportingInstance, /^nodekeeper-coordinator-/);
    assert.match(needsHuman.metadata.name, /^node-a\.[0-9a-f]+$/);
    assert.match(needsHuman.note, /rule kubelet-sick/);
    assert.ok(events.some((e) => e.reason === 'StepStarted' && e.action === 'Remediate'), JSON.stringify(events.map((e) => e.reason)));
    assert.equal(events.find((e) => e.reason === 'Cordoned')!.action, 'Drain');
    // What an operator types.
    const table = k(['get', 'events', '--field-selector', 'involvedObject.name=node-a']);
    assert.match(table, /NeedsHuman/);
    assert.match(table, /node\/node-a/);
    const forNode = k(['events', '--for', 'node/node-a']);
    assert.match(forNode, /NeedsHuman/);
    assert.match(k(['describe', 'node', 'node-a']), /Warning\s+NeedsHuman\s+.*nodekeeper/);
    await stopNode(node);
    node = null;
  });

  test('a repeated event becomes one Event with a series, not one object per repeat', async () => {
    const patchesBefore = await metric('nodekeeper_kube_events_written_total', 'op="patch"');
    const same = { object: 'machine/node-s', type: 'Warning' as const, reason: 'StepStarted', message: 'rule flappy step 1: RestartService kubelet.service' };
    record([same, same, same, same, same]);
    await waitFor('a series of 5', () => eventsOf('node-s').find((e) => e.series?.count === 5), 20_000, 250);
    record([same, same]);
    record([{ ...same, message: 'rule flappy step 2: CordonAndNotify' }]);
    const list = await waitFor('the series grown to 7 and the other step', () => {
      const l = eventsOf('node-s');
      return l.length === 2 && l.some((e) => e.series?.count === 7) && l;
    }, 20_000, 250);
    const series = list.find((e) => e.series !== undefined)!;
    assert.ok(Date.parse(series.series!.lastObservedTime) >= Date.parse(series.eventTime));
    assert.equal(list.filter((e) => e.note === same.message).length, 1, 'seven repeats are one object');
    assert.equal(await metric('nodekeeper_kube_events_written_total', 'op="patch"') - patchesBefore, 1, 'the two repeats read together are one patch');
  });

  test('a burst of many different events is bounded per Node, and what is left out is counted', async () => {
    const before = await metric('nodekeeper_kube_events_dropped_total', 'reason="rate"');
    record(Array.from({ length: 60 }, (_, i) => ({ object: 'machine/node-b', reason: 'StepStarted', message: `rule burst step 1: attempt ${i}` })));
    await waitFor('45 dropped by the rate limit', async () => (await metric('nodekeeper_kube_events_dropped_total', 'reason="rate"')) - before >= 45, 20_000, 250);
    await waitFor('15 written', () => eventsOf('node-b').length >= 15, 20_000, 250);
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(eventsOf('node-b').length, 15, 'the per-Node burst (--kube-events-node-burst 15), one token per 5 minutes after it');
    assert.equal(await metric('nodekeeper_kube_events_dropped_total', 'reason="rate"') - before, 45);
    // Events of other kinds (agent connections, pins) never reach Kubernetes.
    record([{ object: 'machine/node-b', reason: 'AgentConnected', message: 'connected from 127.0.0.1' }, { object: 'rollout/r1', reason: 'Paused', message: 'rollout paused' }]);
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal(eventsOf('node-b').length, 15);
  });

  test('the member API down: events wait, and a kill -9 before sending neither loses nor repeats them', async () => {
    // The sink is running (its Node cache filled) before the cut.
    record([{ object: 'machine/node-s', reason: 'Drained', message: 'Node node-s cordoned and drained (warm-up)' }]);
    await waitFor('the warm-up Event', () => eventsOf('node-s').some((e) => e.note.includes('warm-up')), 30_000, 250);
    const total = ours().length;
    await proxy.cut();
    record([{ object: 'machine/node-k', type: 'Warning', reason: 'RebootFailed', message: 'node-k came back on the old boot' }]);
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal(eventsOf('node-k').length, 0, 'nothing could be written');
    // Retried with backoff (1 s, 2 s...), but said once: the error did not change.
    assert.equal(coord.log().split('\n').filter((l) => l.includes('event sink cannot deliver')).length, 1, coord.log().slice(-3000));
    await coord.stop('SIGKILL');
    coord = await startCoordinator(coord.dataDir, coordArgs);
    await new Promise((r) => setTimeout(r, 2000));
    await proxy.restore();
    const list = await waitFor('the event delivered once the API is back', () => eventsOf('node-k').length > 0 && eventsOf('node-k'), 60_000, 250);
    assert.equal(list.length, 1);
    assert.equal(list[0]!.reason, 'RebootFailed');
    assert.equal(list[0]!.action, 'Reboot');
    // Another restart re-sends nothing already delivered.
    await coord.stop('SIGTERM');
    coord = await startCoordinator(coord.dataDir, coordArgs);
    record([{ object: 'machine/node-k', reason: 'RebootSucceeded', message: 'node-k is back on a new boot' }]);
    await waitFor('the newer event', () => eventsOf('node-k').some((e) => e.reason === 'RebootSucceeded'), 30_000, 250);
    assert.equal(ours().length, total + 2, 'exactly the two new Events, nothing repeated');
    // A kill -9 after sending and before saving the cursor: simulated by moving the saved
    // cursor back over both events. They are sent again, and their names make that a no-op.
    await coord.stop('SIGKILL');
    const db = new Database(path.join(coord.dataDir, 'state.db'));
    try {
      const hi = (db.prepare("SELECT max(id) AS hi FROM events WHERE object = 'machine/node-k'").get() as { hi: number }).hi;
      assert.equal(db.prepare("UPDATE sink_cursors SET after_id = ? WHERE name = 'kube-events'").run(hi - 2).changes, 1);
    } finally {
      db.close();
    }
    coord = await startCoordinator(coord.dataDir, coordArgs);
    await waitFor('the cursor past them again', () => {
      const d = new Database(path.join(coord.dataDir, 'state.db'), { readonly: true });
      try {
        const row = d.prepare("SELECT after_id AS at, (SELECT max(id) FROM events WHERE object = 'machine/node-k') AS hi FROM sink_cursors WHERE name = 'kube-events'").get() as { at: number; hi: number };
        return row.at >= row.hi;
      } finally {
        d.close();
      }
    }, 30_000, 250);
    assert.equal(ours().length, total + 2, 'a repeat after a crash creates no second object');
  });
});
